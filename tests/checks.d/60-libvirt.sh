#!/bin/sh
# libvirt integration against a real libvirtd and real QEMU (TCG): the
# libvirt source alone (tests/libvirt/vlprobe), then freehintd with the
# agent and freehint.ko in the guest, then the hook script. Starts a
# private libvirtd (tests/libvirt/env.sh) and removes everything at the
# end, whatever happens. Logs in build/libvirt-check/.
cd "$(dirname "$0")/../.." || exit 1
. tests/guest/lib.sh

out=$FHROOT/build/libvirt-check
V="virsh -q -c qemu:///system"
DOM=fh-lv1
[ "$(id -u)" -eq 0 ] || skip "libvirt: needs root"
command -v libvirtd >/dev/null || skip "libvirt: libvirtd not installed"
guest_require
rm -rf "$out"
mkdir -p "$out"
probe_pid= hostd_pid= feed_pid=
cleanup() {
	[ -n "$feed_pid" ] && kill "$feed_pid" 2>/dev/null
	[ -n "$probe_pid" ] && kill "$probe_pid" 2>/dev/null
	[ -n "$hostd_pid" ] && kill "$hostd_pid" 2>/dev/null
	tests/libvirt/env.sh down >/dev/null 2>&1
}
trap cleanup EXIT INT TERM

if ! make -s all >"$out/make.log" 2>&1 || ! make -s kmod >>"$out/make.log" 2>&1 ||
    ! tests/libvirt/build.sh "$out/vlprobe" >>"$out/make.log" 2>&1; then
	fail libvirt-build "see $out/make.log"
	exit 1
fi
if ! tests/libvirt/env.sh up >"$out/env.log" 2>&1; then
	fail libvirt-env "libvirtd does not start: $(tail -n 3 "$out/env.log")"
	exit 1
fi

# The guest: freehint.ko and the agent on the channel, then memory is
# dirtied and freed again so that reporting has something to give back.
cat >"$out/guest.sh" <<'GUEST'
insmod /lib/freehint/freehint.ko || echo "FHGUEST no module"
freehint-agent -d --transport virtio-serial >/tmp/agent.log 2>&1 &
echo FHGUEST READY
sleep 2
# Three rounds, numbered: the host takes the first round whose fill it
# sees before the free.
for i in 1 2 3; do
	dd if=/dev/urandom of=/tmp/fill bs=1M count=96 2>/dev/null
	echo "FHGUEST FILLED $i"
	sleep 6
	rm -f /tmp/fill
	echo "FHGUEST FREED $i"
	sleep 20
done
while :; do sleep 1; done
GUEST
if ! guest_build "$out/guest.cpio.gz" -s "$out/guest.sh" -m kmod/freehint.ko \
    -b build/freehint-agent >"$out/mkinitrd.log" 2>&1; then
	fail libvirt-guest "mkinitrd: see $out/mkinitrd.log"
	exit 1
fi
tests/libvirt/mkdomain.sh -n $DOM -i "$out/guest.cpio.gz" -d "$out" -m 384 \
    >"$out/$DOM.xml"
tests/libvirt/mkdomain.sh -n fh-lv-bad -i "$out/guest.cpio.gz" -d "$out" -P -C \
    >"$out/fh-lv-bad.xml"

# ---- the libvirt source alone ----
mkfifo "$out/probe.in"
sleep 600 >"$out/probe.in" &
feed_pid=$!
"$out/vlprobe" qemu:///system v <"$out/probe.in" >"$out/probe.out" \
    2>"$out/probe.err" &
probe_pid=$!
probe() { echo "$*" >"$out/probe.in"; }
has() { grep -q -- "$1" "$out/probe.out"; }

$V define "$out/$DOM.xml" >/dev/null && $V define "$out/fh-lv-bad.xml" >/dev/null &&
    $V start $DOM >/dev/null && $V start fh-lv-bad >/dev/null ||
    { fail libvirt-start "virsh start failed"; exit 1; }
qpid=$(cat /run/libvirt/qemu/$DOM.pid)
if wait_for 10 has "^ADD $DOM source=libvirt pid=$qpid channel=$out/$DOM.chan cid=0 backing=1 shared=1 mtree=ok unservable=-$"; then
	pass libvirt-source-finds-domain
else
	fail libvirt-source-finds-domain "$(cat "$out/probe.out")"
fi
if wait_for 5 has "^ADD fh-lv-bad .*unservable=guest memory is private: add <memoryBacking>.*no freehint channel: add <channel"; then
	pass libvirt-source-unservable
else
	fail libvirt-source-unservable "$(grep fh-lv-bad "$out/probe.out")"
fi
probe "notify started $DOM"
probe "notify bogus $DOM"
probe "notify start ../x"
probe "hmp $DOM gpa2hva 0x100000"
if wait_for 5 has "^NOTIFY 0 $DOM: started noted" && wait_for 2 has "^NOTIFY -1 unknown event" &&
    wait_for 2 has "^NOTIFY -1 bad domain name" && wait_for 2 has "^HMP 0 Host virtual address"; then
	pass libvirt-source-notify-hmp
else
	fail libvirt-source-notify-hmp "$(grep -E '^(NOTIFY|HMP)' "$out/probe.out")"
fi
# libvirtd restarts: nothing is removed, nothing added twice.
tests/libvirt/env.sh restart >>"$out/env.log" 2>&1
if wait_for 15 grep -q "connected to qemu:///system, 2 running" "$out/probe.err" &&
    ! has "^REMOVE" && [ "$(grep -c "^ADD $DOM" "$out/probe.out")" = 1 ]; then
	pass libvirt-source-libvirtd-restart
else
	fail libvirt-source-libvirtd-restart "$(tail -n 5 "$out/probe.err")"
fi
$V destroy fh-lv-bad >/dev/null
if wait_for 5 has "^REMOVE fh-lv-bad"; then
	pass libvirt-source-destroy
else
	fail libvirt-source-destroy "no REMOVE"
fi
probe quit
wait $probe_pid
probe_pid=
kill $feed_pid
feed_pid=

# ---- freehintd, the agent and the kernel module ----
ctl="build/freehintctl -s $out/ctl.sock"
build/freehintd -d -v --libvirt-uri qemu:///system --control "$out/ctl.sock" \
    >"$out/freehintd.log" 2>&1 &
hostd_pid=$!
st() { $ctl status >"$out/status.txt" 2>&1 && grep -q -- "$1" "$out/status.txt"; }
if wait_for 20 st "$DOM"; then
	pass libvirt-freehintd-finds-domain
else
	fail libvirt-freehintd-finds-domain "$(cat "$out/status.txt")"
fi
# A domain freehintd cannot serve (private memory, no channel): status
# says why and what to add to its XML, in the table and in JSON.
$V start fh-lv-bad >/dev/null
mem_fix="guest memory is private: add <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>"
chan_fix="no freehint channel: add <channel type='unix'><source mode='bind'/><target type='virtio' name='org.freehint.agent.0'/></channel>"
bad_line() {
	$ctl status >"$out/status-bad.txt" 2>&1 &&
	    grep -A1 "^fh-lv-bad  *no  *record-only " "$out/status-bad.txt" |
	    grep -qF "mode: $mem_fix; $chan_fix"
}
if wait_for 20 bad_line; then
	pass libvirt-status-unservable
else
	fail libvirt-status-unservable "$(cat "$out/status-bad.txt")"
fi
# json-c writes '/' as '\/'.
bad_json='"name": "fh-lv-bad", "connected": false, "transport": "[a-z-]*", "mode": "record-only", "mode_reason": "guest memory is private: '
if $ctl status --json >"$out/status-bad.json" 2>&1 &&
    grep -qF -- "$(echo "$mem_fix; $chan_fix" | sed 's|/|\\/|g')" "$out/status-bad.json" &&
    grep -q -- "$bad_json" "$out/status-bad.json"; then
	pass libvirt-status-unservable-json
else
	fail libvirt-status-unservable-json "$(grep -o '{ "name": "fh-lv-bad[^}]*' "$out/status-bad.json")"
fi
$V destroy fh-lv-bad >/dev/null
wait_for 5 sh -c "! $ctl status | grep -q fh-lv-bad"

rss() { awk '/^RssShmem/ { print $2 }' /proc/"$qpid"/status; }
# The baseline is read while the guest still holds its 96 MiB: read after
# the free, page reporting may already have given the memory back. A
# round whose free the host saw too late is skipped.
round=
for i in 1 2 3; do
	wait_for 60 grep -q "FHGUEST FILLED $i" "$out/$DOM.log" || break
	before=$(rss)
	grep -q "FHGUEST FREED $i" "$out/$DOM.log" && continue
	round=$i
	break
done
[ -n "$round" ] && wait_for 30 grep -q "FHGUEST FREED $round" "$out/$DOM.log"
# Reporting runs by itself; give it a few seconds under TCG.
reclaimed() { [ "$(rss)" -lt $((before - 32768)) ]; }
if [ -z "$round" ]; then
	fail libvirt-reclaims "no round of the guest's fill was read before its free: $(grep -a FHGUEST "$out/$DOM.log" | tr '\n' ' ')"
elif wait_for 30 reclaimed; then
	pass libvirt-reclaims "round $round: RssShmem ${before} kB -> $(rss) kB"
else
	fail libvirt-reclaims "RssShmem ${before} kB -> $(rss) kB; $(tail -n 3 "$out/freehintd.log")"
fi
# freehintd must see libvirtd go and reconnect: a second "connected" line
# (the first is from its start), with the domain still there.
reconnected() {
	[ "$(grep -c "connected to qemu:///system, 1 running" "$out/freehintd.log")" -ge 2 ]
}
tests/libvirt/env.sh restart >>"$out/env.log" 2>&1
if wait_for 15 reconnected && st "$DOM"; then
	pass libvirt-freehintd-libvirtd-restart
else
	fail libvirt-freehintd-libvirtd-restart "$(cat "$out/status.txt")"
fi
if $V save $DOM "$out/$DOM.save" >/dev/null 2>&1 &&
    grep -q "$DOM: migration started" "$out/freehintd.log" &&
    grep -q "$DOM: migration finished" "$out/freehintd.log"; then
	pass libvirt-save-hint-release
else
	fail libvirt-save-hint-release "$(grep "$DOM" "$out/freehintd.log" | tail -n 5)"
fi
if wait_for 5 sh -c "! $ctl status | grep -q $DOM"; then
	pass libvirt-saved-removed
else
	fail libvirt-saved-removed "$(cat "$out/status.txt")"
fi
$V restore "$out/$DOM.save" >/dev/null 2>&1
wait_for 10 st "$DOM" || fail libvirt-restore "not back in status"
$V destroy $DOM >/dev/null
if wait_for 5 sh -c "! $ctl status | grep -q $DOM"; then
	pass libvirt-destroy-removes
else
	fail libvirt-destroy-removes "$(cat "$out/status.txt")"
fi

# ---- the hook ----
hook=host-daemon/hooks/freehint
cat >"$out/hook.conf" <<CONF
FREEHINTCTL=$FHROOT/build/freehintctl
FREEHINT_CONTROL=$out/ctl.sock
CONF
export FREEHINT_HOOK_CONF="$out/hook.conf"
$V start $DOM >/dev/null
wait_for 10 st "$DOM"
if $hook $DOM release end - <"$out/$DOM.xml" && ! st "$DOM"; then
	pass libvirt-hook-release
else
	fail libvirt-hook-release "$(cat "$out/status.txt")"
fi
if $hook $DOM started begin - <"$out/$DOM.xml" && wait_for 5 st "$DOM"; then
	pass libvirt-hook-started
else
	fail libvirt-hook-started "$(cat "$out/status.txt")"
fi
kill $hostd_pid
wait $hostd_pid
hostd_pid=
t0=$(date +%s)
$hook $DOM stopped end - <"$out/$DOM.xml"
r1=$?
echo 'sleep 30' >"$out/hang.sh"
chmod +x "$out/hang.sh"
printf 'FREEHINTCTL=%s\n' "$out/hang.sh" >"$out/hook.conf"
$hook $DOM prepare begin - <"$out/$DOM.xml"
r2=$?
t=$(($(date +%s) - t0))
if [ $r1 = 0 ] && [ $r2 = 0 ] && [ $t -le 5 ]; then
	pass libvirt-hook-daemon-down "exit 0 in ${t} s"
else
	fail libvirt-hook-daemon-down "exit $r1/$r2 after ${t} s"
fi
exit $FH_FAILED
