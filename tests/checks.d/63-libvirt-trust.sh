#!/bin/sh
# What freehintd may take from libvirt, and what libvirt may not do to it,
# against the real libvirtd (tests/libvirt/env.sh; run under
# flock /tmp/freehint-libvirt.lock) and real QEMU:
#   hook:     the libvirt hook installed: each of its calls during
#             "virsh start" is answered within 1 s (libvirtd holds the
#             domain meanwhile; freehintd must not ask libvirtd about it);
#             start times with and without the hook are measured;
#   impostor: a process that took a domain's channel path from QEMU is
#             refused, QEMU's own channel is taken; a static VM's channel
#             served by another user than QEMU's is refused;
#   stall:    libvirtd SIGSTOPped while a hook notify asks for a domain:
#             a static VM's batches are still acknowledged within 1 s and
#             status answers within 1 s;
#   hostdev:  a domain with a <hostdev>, defined in libvirtd and read
#             back, is judged DMA (record-only); a running one (libvirt's
#             test driver) makes freehintd record-only with the reason.
# FREEHINTD=path runs another daemon binary (the old one, to see it fail).
# Logs in build/libvirt-trust/.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/guest/lib.sh
. tests/hostd/lib.sh

out=$FHROOT/build/libvirt-trust
V="virsh -q -c qemu:///system"
HOOKDIR=/etc/libvirt/hooks/qemu.d
HOOK=$HOOKDIR/fh-trust-test
SECS=14
freehintd=${FREEHINTD:-build/freehintd}
[ "$(id -u)" -eq 0 ] || skip libvirt-trust "needs root"
command -v libvirtd >/dev/null || skip libvirt-trust "libvirtd not installed"
guest_require libvirt-trust
rm -rf "$out"
mkdir -p "$out"
hostd_pid= imp_pid= imp2_pid= hpid= ppid= probe_pid= hostd2_pid= lvpid=
cleanup() {
	[ -n "$lvpid" ] && kill -CONT "$lvpid" 2>/dev/null
	for p in $hostd_pid $imp_pid $imp2_pid $hpid $ppid $probe_pid $hostd2_pid; do
		kill "$p" 2>/dev/null
	done
	[ -f "$out/h.pid" ] && kill "$(cat "$out/h.pid")" 2>/dev/null
	rm -f "$HOOK"
	rmdir "$HOOKDIR" /etc/libvirt/hooks 2>/dev/null
	tests/libvirt/env.sh down >/dev/null 2>&1
	wait 2>/dev/null
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if ! make -s all hostd-tests >"$out/make.log" 2>&1 ||
    ! tests/libvirt/build.sh "$out/vlprobe" >>"$out/make.log" 2>&1; then
	fail libvirt-trust-build "see $out/make.log"
	exit 1
fi
printf 'echo FHGUEST READY\nwhile :; do sleep 1; done\n' >"$out/guest.sh"
if ! guest_build "$out/guest.cpio.gz" -s "$out/guest.sh" \
    >"$out/mkinitrd.log" 2>&1; then
	fail libvirt-trust-guest "mkinitrd: see $out/mkinitrd.log"
	exit 1
fi
for d in fh-lt1 fh-lt2; do
	tests/libvirt/mkdomain.sh -n $d -i "$out/guest.cpio.gz" -d "$out" \
	    -m 128 >"$out/$d.xml"
done

# The hook, installed before libvirtd starts (it looks for hooks then):
# a wrapper that times each call of host-daemon/hooks/freehint.
mkdir -p "$HOOKDIR"
# freehintctl as the hook runs it, with what it answered.
cat >"$out/ctl-wrap.sh" <<WRAP
#!/bin/sh
res=\$($FHROOT/build/freehintctl "\$@" 2>&1)
rc=\$?
echo "\$rc \$*: \$res" >>$out/hook.ctl
exit \$rc
WRAP
chmod 755 "$out/ctl-wrap.sh"
cat >"$out/hook.conf" <<CONF
FREEHINTCTL=$out/ctl-wrap.sh
FREEHINT_CONTROL=$out/ctl.sock
CONF
cat >"$HOOK" <<HOOK
#!/bin/sh
case \$1 in fh-lt*) ;; *) cat >/dev/null; exit 0 ;; esac
t0=\$(date +%s%N)
FREEHINT_HOOK_CONF=$out/hook.conf $FHROOT/host-daemon/hooks/freehint "\$@" 2>>$out/hook.err
echo "\$1 \$2 \$(( (\$(date +%s%N) - t0) / 1000000 ))" >>$out/hook.times
exit 0
HOOK
chmod 755 "$HOOK"
if ! tests/libvirt/env.sh down >/dev/null 2>&1 ||
    ! tests/libvirt/env.sh up >"$out/env.log" 2>&1; then
	fail libvirt-trust-env "libvirtd does not start: $(tail -n 3 "$out/env.log")"
	exit 1
fi
lvpid=$(cat /run/freehint-test-libvirt/libvirtd.pid)

# ---- impostor: fh-lt2's channel path taken from QEMU ----
$V define "$out/fh-lt1.xml" >/dev/null && $V define "$out/fh-lt2.xml" >/dev/null &&
    $V start fh-lt2 >/dev/null ||
    { fail libvirt-trust-start "virsh start fh-lt2 failed"; exit 1; }
q2=$(cat /run/libvirt/qemu/fh-lt2.pid)
rm -f "$out/fh-lt2.chan"
python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(4)
while True:
    c, _ = s.accept()
    print("accepted", flush=True)
' "$out/fh-lt2.chan" >"$out/impostor.out" 2>&1 &
imp_pid=$!
wait_for 5 test -S "$out/fh-lt2.chan"

# ---- the static VM beside them, with its agent ----
vm_start "$out" h 128M -object memory-backend-memfd,id=mem0,size=128M,share=on ||
    { fail libvirt-trust "qemu did not start"; exit 1; }
# A static VM (h's QEMU, on its second monitor) whose channel is served
# by a process of another user than QEMU's.
mkdir -m 1777 "$out/nobody"
setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(4)
while True:
    s.accept()
' "$out/nobody/imp.chan" >"$out/imp.out" 2>&1 &
imp2_pid=$!
wait_for 5 test -S "$out/nobody/imp.chan"
"$freehintd" -d -v --vsock-port 0 --control "$out/ctl.sock" \
    --libvirt-uri qemu:///system \
    --vm "name=h,qmp=$out/h.qmp,channel=$out/h.chan" \
    --vm "name=imp,qmp=$out/h.qmp2,channel=$out/nobody/imp.chan" \
    >"$out/freehintd.log" 2>&1 &
hostd_pid=$!
ctl() { timeout 3 build/freehintctl -s "$out/ctl.sock" "$@"; }
# field VM FIELD: one field of one VM's status.
field() {
	ctl status --json 2>/dev/null | python3 -c '
import json, sys
v = {x["name"]: x for x in json.load(sys.stdin)["vms"]}[sys.argv[1]]
print(v[sys.argv[2]])' "$1" "$2"
}
refused="vm fh-lt2: channel: its listener (pid $imp_pid, uid 0) is not the VM's QEMU (pid $q2): refused"
if wait_for 20 grep -qF "$refused" "$out/freehintd.log" &&
    [ "$(field fh-lt2 connected)" = False ]; then
	pass libvirt-trust-impostor-refused
else
	fail libvirt-trust-impostor-refused "$(grep fh-lt2 "$out/freehintd.log" | tail -n 3)"
fi
hq=$(cat "$out/h.pid")
refused="vm imp: channel: its listener (pid $imp2_pid, uid 65534) is not a process of the user of QEMU (pid $hq): refused"
if wait_for 20 grep -qF "$refused" "$out/freehintd.log" &&
    [ "$(field imp connected)" = False ]; then
	pass libvirt-trust-static-other-user-refused
else
	fail libvirt-trust-static-other-user-refused "$(grep 'vm imp' "$out/freehintd.log" | tail -n 3)"
fi

# ---- hook: virsh start with the hook, then without ----
t0=$(date +%s%N)
$V start fh-lt1 >/dev/null || fail libvirt-trust-hook "virsh start fh-lt1 failed"
with=$((($(date +%s%N) - t0) / 1000000))
lt1_connected() { [ "$(field fh-lt1 connected)" = True ]; }
if wait_for 20 lt1_connected; then
	pass libvirt-trust-qemu-channel-taken
else
	fail libvirt-trust-qemu-channel-taken "$(ctl status 2>&1 | tail -n 4)"
fi
$V destroy fh-lt1 >/dev/null
chmod 644 "$HOOK"
t0=$(date +%s%N)
$V start fh-lt1 >/dev/null
without=$((($(date +%s%N) - t0) / 1000000))
chmod 755 "$HOOK"
slow=$(awk '$3 >= 1000' "$out/hook.times" 2>/dev/null)
calls=$(awk '{ print $2 }' "$out/hook.times" 2>/dev/null | tr '\n' ' ')
# fh-lt2 started before freehintd: its calls were refused, as they must.
refusals=$(grep -v '^0 ' "$out/hook.ctl" 2>/dev/null | grep ' fh-lt1: ')
if [ -s "$out/hook.times" ] && [ -z "$slow" ] && [ -z "$refusals" ] &&
    grep -q "fh-lt1 prepare" "$out/hook.times" &&
    grep -q "fh-lt1 started" "$out/hook.times" &&
    grep -q "^0 .*notify started fh-lt1:" "$out/hook.ctl"; then
	pass "libvirt-trust-hook-prompt (start ${with} ms with the hook, ${without} ms without; calls: $calls)"
else
	fail libvirt-trust-hook-prompt "slow calls: ${slow:-none}; refused: ${refusals:-none}; $(cat "$out/hook.err" 2>/dev/null); start ${with} ms with, ${without} ms without"
fi
echo "# hook calls (domain, operation, ms):"
sed 's/^/#   /' "$out/hook.times" 2>/dev/null

# ---- stall: libvirtd stopped while freehintd asks about a domain ----
# The static VM's agent comes now, so that its timed run spans the stall.
build/tests/hostd/fh-hostile "$out/h.chan" timed $SECS 0x2000 >"$out/h.out" 2>&1 &
hpid=$!
h_connected() { [ "$(field h connected)" = True ]; }
wait_for 20 h_connected
tests/hostd/status-poll.py "$out/ctl.sock" 10 "$out/poll" &
ppid=$!
sleep 1
kill -STOP "$lvpid"
t0=$(date +%s%N)
ctl notify started fh-lt1 >"$out/notify.out" 2>&1
nrc=$?
nms=$((($(date +%s%N) - t0) / 1000000))
sleep 7
kill -CONT "$lvpid"
wait $ppid
ppid=
wait $hpid
hpid=
grep -E '^(PASS|FAIL) ' "$out/h.out" | sed 's/^\(PASS\|FAIL\) /\1 libvirt-trust-stall:healthy:/'
grep -q '^FAIL' "$out/h.out" && FH_FAILED=1
grep -q '^PASS timed:acked-within-1s' "$out/h.out" ||
    fail libvirt-trust-stall:healthy "the static VM was not served: $(tail -n 3 "$out/h.out")"
read -r worst n <"$out/poll" 2>/dev/null || { worst=99999 n=0; }
if [ "$n" -ge 25 ] && [ "$worst" -lt 1000 ] && [ $nrc = 0 ] && [ $nms -lt 1000 ]; then
	pass "libvirt-trust-stall:status-within-1s ($n answers, slowest $worst ms; notify $nms ms)"
else
	fail libvirt-trust-stall:status-within-1s "$n answers, slowest $worst ms; notify exit $nrc in $nms ms: $(cat "$out/notify.out")"
fi
lt1_listed() { ctl status 2>/dev/null | grep -q '^fh-lt1 '; }
if wait_for 20 lt1_listed; then
	pass libvirt-trust-stall:domain-kept
else
	fail libvirt-trust-stall:domain-kept "$(ctl status 2>&1 | tail -n 4)"
fi

# ---- hostdev: defined in libvirtd, read back ----
sed -e "s|<name>fh-lt1</name>|<name>fh-lt-dma</name>|" -e '/<uuid>/d' \
    -e "s|$out/fh-lt1.chan|$out/fh-lt-dma.chan|" \
    -e "s|</devices>|<hostdev mode='subsystem' type='pci' managed='no'><source><address domain='0x0000' bus='0x06' slot='0x02' function='0x0'/></source></hostdev></devices>|" \
    "$out/fh-lt1.xml" >"$out/fh-lt-dma.xml"
$V define "$out/fh-lt-dma.xml" >/dev/null 2>"$out/define.err"
$V dumpxml fh-lt-dma >"$out/fh-lt-dma.live.xml" 2>>"$out/define.err"
mkfifo "$out/probe.in"
sleep 60 >"$out/probe.in" &
feed=$!
"$out/vlprobe" "test://$FHROOT/tests/libvirt/data/test-node-hostdev.xml" \
    <"$out/probe.in" >"$out/probe.out" 2>"$out/probe.err" &
probe_pid=$!
echo "xml $out/fh-lt-dma.live.xml" >"$out/probe.in"
echo "xml $out/fh-lt1.xml" >"$out/probe.in"
dma="a <hostdev> device is assigned to the guest: it DMAs into guest memory"
if wait_for 10 grep -qF "XML 0 channel=$out/fh-lt-dma.chan cid=0 shared=1 dma=$dma unservable=-" "$out/probe.out" &&
    grep -qF "XML 0 channel=$out/fh-lt1.chan cid=0 shared=1 dma=- unservable=-" "$out/probe.out"; then
	pass libvirt-trust-hostdev-xml
else
	fail libvirt-trust-hostdev-xml "$(cat "$out/define.err" "$out/probe.out")"
fi
if wait_for 10 grep -qF "DMA fh-dma $dma" "$out/probe.out"; then
	pass libvirt-trust-hostdev-source
else
	fail libvirt-trust-hostdev-source "$(cat "$out/probe.out" "$out/probe.err" | tail -n 5)"
fi
echo quit >"$out/probe.in"
kill $feed 2>/dev/null
wait $probe_pid
probe_pid=
"$freehintd" -d -v --vsock-port 0 --control "$out/ctl2.sock" \
    --libvirt-uri "test://$FHROOT/tests/libvirt/data/test-node-hostdev.xml" \
    >"$out/freehintd2.log" 2>&1 &
hostd2_pid=$!
dma_status() {
	timeout 3 build/freehintctl -s "$out/ctl2.sock" status >"$out/status2.txt" 2>&1 &&
	    grep -A1 "^fh-dma .* record-only " "$out/status2.txt" | grep -qF "$dma"
}
if wait_for 10 dma_status; then
	pass libvirt-trust-hostdev-record-only
else
	fail libvirt-trust-hostdev-record-only "$(cat "$out/status2.txt")"
fi
kill $hostd2_pid
wait $hostd2_pid
hostd2_pid=

kill $hostd_pid
wait $hostd_pid
rc=$?
hostd_pid=
[ $rc = 0 ] || fail libvirt-trust-exit "freehintd exited $rc"
[ "$FH_FAILED" = 0 ] || { echo "# freehintd log:"; tail -n 30 "$out/freehintd.log"; }
exit $FH_FAILED
