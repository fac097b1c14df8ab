#!/bin/sh
# freehintd's memory map of real QEMUs, with a hostile agent (fh-hostile)
# on each VM's channel:
#  smm:  q35 with SMM and SeaBIOS, attached while QEMU is paused (-S, when
#        SMRAM, SMBASE and TSEG look like plain RAM), then booted: REPORTED
#        batches naming them get OUT_OF_RANGE and SMRAM's bytes stay as the
#        firmware wrote them; plain RAM of the same VM is discarded.
#  numa: two NUMA nodes, each on its own memfd backend (libvirt's name
#        ram-node1 for one): discard mode; a range in each backend is
#        punched there and nowhere else; a range crossing from one
#        backend into the other is refused (OUT_OF_RANGE).
#  dead: a QEMU (fh-fakeqemu) that exits while its monitor stays up (a
#        child holds it): freehintd closes the backing at once and never
#        serves the next agent against the dead map.
# Run with the plain daemon, then the ASan+UBSan build. FREEHINTD=path
# runs only that daemon binary (the test must fail with the code before
# the checks).
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/guest/lib.sh
L=${FH_MAP_LABEL:-hostd-map}

command -v qemu-system-x86_64 >/dev/null ||
    skip $L "no qemu-system-x86_64"
make -s all hostd-tests >/dev/null 2>&1 ||
    { fail $L "build"; exit 1; }
if [ -z "${FREEHINTD:-}" ]; then
	FREEHINTD=build/freehintd sh "$0"
	rc=$?
	if make -s SAN=1 all >/dev/null 2>&1; then
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		    FREEHINTD=build-san/freehintd FH_MAP_LABEL=$L-asan \
		    sh "$0" || rc=1
	else
		fail $L-asan "SAN=1 build"
		rc=1
	fi
	exit $rc
fi
daemon=$FREEHINTD
hostile=build/tests/hostd/fh-hostile
MiB=1048576

t=$(mktemp -d /tmp/fh-map.XXXXXX)
s=$(mktemp -d /dev/shm/fh-map.XXXXXX)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	for n in smm numa; do
		[ -f "$t/$n.pid" ] && kill "$(cat "$t/$n.pid")" 2>/dev/null
	done
	wait 2>/dev/null
	[ "$FH_FAILED" = 0 ] || cp "$t/daemon.log" /tmp/fh-map-last.log 2>/dev/null
	rm -rf "$t" "$s"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

qmp() { tests/hostd/qmp.py "$@"; }
# qemu NAME ARGS...: a paused QEMU with monitors NAME.qmp (freehintd's)
# and NAME.qmp2 (the test's).
qemu() {
	n=$1
	shift
	qemu-system-x86_64 -display none -nodefaults -S "$@" \
	    -qmp "unix:$t/$n.qmp,server=on,wait=off" \
	    -qmp "unix:$t/$n.qmp2,server=on,wait=off" \
	    -daemonize -pidfile "$t/$n.pid"
}
logged() { grep -q "$1" "$t/daemon.log"; }
# status VM EXPR: EXPR (Python, v = that VM in status --json).
status() {
	build/freehintctl -s "$t/ctl" status --json | python3 -c '
import json, sys
v = {x["name"]: x for x in json.load(sys.stdin)["vms"]}[sys.argv[1]]
print(eval(sys.argv[2]))' "$1" "$2"
}
# agent LABEL VM ARGS...: fh-hostile on VM's channel (stdin: its script);
# its cases reported.
agent() {
	l=$1 n=$2
	shift 2
	$hostile "$t/$n.chan" "$@" >"$t/$l.out" 2>&1
	sed "s/^\(PASS\|FAIL\) /\1 $L-$l:/" "$t/$l.out" |
	    grep -E '^(PASS|FAIL)'
	grep -q '^FAIL' "$t/$l.out" && FH_FAILED=1
	grep -qE '^(PASS|FAIL)' "$t/$l.out" ||
	    fail "$L-$l" "no case ran: $(cat "$t/$l.out")"
}

# smm: 256 MiB below 4 GiB; QEMU 7.2's q35 has extended-tseg-mbytes 16.
qemu smm -machine q35,smm=on,memory-backend=mem0 -m 256M \
    -object memory-backend-memfd,id=mem0,size=256M,share=on ||
    { fail $L "qemu (smm) did not start"; exit 1; }
# numa: node 0 on m0 (128 MiB), node 1 on ram-node1 (64 MiB).
qemu numa -machine pc -m 192M -smp 2 \
    -object memory-backend-memfd,id=m0,size=128M,share=on \
    -object memory-backend-memfd,id=ram-node1,size=64M,share=on \
    -numa node,nodeid=0,cpus=0,memdev=m0 \
    -numa node,nodeid=1,cpus=1,memdev=ram-node1 ||
    { fail $L "qemu (numa) did not start"; exit 1; }
# dead: the fake QEMU's monitor is served by its child.
head -c $((8 * MiB)) /dev/urandom >"$s/dead"
cp "$s/dead" "$t/dead.orig"
cp build/tests/hostd/fh-fakeqemu "$t/qemu-system-fake"
FH_FAKEQEMU_FORK=1 "$t/qemu-system-fake" "$t/dead.qmp" "$s/dead" rw \
    >"$t/dead.fake" 2>&1 &
pids="$pids $!"
wait_for 10 grep -q '^ready' "$t/dead.fake" ||
    { fail $L "fake QEMU did not start"; exit 1; }
dead_pid=$(sed -n 's/^ready .* pid \([0-9]*\) child.*/\1/p' "$t/dead.fake")
dead_child=$(sed -n 's/^ready .* child \([0-9]*\)/\1/p' "$t/dead.fake")
pids="$pids $dead_child"

# Data around the ranges the numa agent reports, in both backends.
numa_pid=$(cat "$t/numa.pid")
for size in $((128 * MiB)) $((64 * MiB)); do
	tests/hostd/backing.py "$numa_pid" $size fill $((30 * MiB)) $((6 * MiB))
done

"$daemon" -d -v --vsock-port 0 --control "$t/ctl" --min-order 4 \
    --hint-min-order 4 --max-faults 1000 \
    --vm "name=smm,qmp=$t/smm.qmp,channel=$t/smm.chan" \
    --vm "name=numa,qmp=$t/numa.qmp,channel=$t/numa.chan" \
    --vm "name=dead,qmp=$t/dead.qmp,channel=$t/dead.chan" \
    >"$t/daemon.log" 2>&1 &
dpid=$!
pids="$pids $dpid"

# --- smm
if wait_for 20 logged "vm smm: .* MiB of RAM"; then
	pass "$L-smm:map-read-while-paused"
else
	fail $L-smm:map-read-while-paused "$(tail -n 5 "$t/daemon.log")"
fi
smm_pid=$(cat "$t/smm.pid")
smram() {
	tests/hostd/backing.py "$smm_pid" $((256 * MiB)) sum 0xa0000 0x20000
}
qmp "$t/smm.qmp2" exec cont >/dev/null
# SeaBIOS puts its SMM handler in SMRAM at 0xa0000, then locks it.
sum0= i=0
while [ $i -lt 120 ]; do
	sleep 0.5
	i=$((i + 1))
	sum1=$(smram)
	case $sum1 in *data) [ "$sum1" = "$sum0" ] && break ;; esac
	sum0=$sum1
done
case $sum0 in
*data) pass "$L-smm:firmware-wrote-smram" ;;
*) fail $L-smm:firmware-wrote-smram "$sum0" ;;
esac
# SMBASE (0x30000, 128 KiB), SMRAM (0xa0000, 128 KiB), TSEG (the top
# 16 MiB below 4 GiB), each named by 64 KiB ranges at its edges (in
# 4 KiB pages: KIND PFN NPAGES EXPECT).
agent smm-refused smm script range - <<EOF
reported 0x30 16 OUT_OF_RANGE
reported 0x40 16 OUT_OF_RANGE
reported 0xa0 16 OUT_OF_RANGE
reported 0xb0 16 OUT_OF_RANGE
reported 0xf000 16 OUT_OF_RANGE
reported 0xfff0 16 OUT_OF_RANGE
EOF
agent smm-ram smm script range - <<EOF
reported 0x1000 16 applied
EOF
if [ "$(smram)" = "$sum0" ]; then
	pass "$L-smm:smram-unchanged"
else
	fail $L-smm:smram-unchanged "$sum0 -> $(smram)"
fi
st=$(status smm '"%s|%s" % (v["mode"], v["backing"])')
[ "$st" = "discard|memfd" ] && pass "$L-smm:status ($st)" ||
    fail $L-smm:status "$st"

# --- numa
wait_for 20 logged "vm numa: .* MiB of RAM"
st=$(status numa '"%s|%s" % (v["mode"], v["backing"])')
[ "$st" = "discard|memfd" ] && pass "$L-numa:status ($st)" ||
    fail $L-numa:status "$st $(grep 'vm numa' "$t/daemon.log" | tail -n 3)"
# 32 MiB into node 0 (gpa 32 MiB) and into node 1 (gpa 160 MiB); then
# 2 MiB from node 0's last MiB into node 1's first.
agent numa-punched numa script range - <<EOF
reported 0x2000 512 applied
reported 0xa000 512 applied
EOF
agent numa-crossing numa script range - <<EOF
reported 0x7f00 512 OUT_OF_RANGE
EOF
want="0x1e00000+0x200000 0x2200000+0x200000"
for size in 128 64; do
	got=$(tests/hostd/backing.py "$numa_pid" $((size * MiB)) extents \
	    0 $((size * MiB)))
	if [ "$got" = "$want" ]; then
		pass "$L-numa:backing-${size}m-punched-exactly"
	else
		fail "$L-numa:backing-${size}m-punched-exactly" \
		    "data extents '$got', expected '$want'"
	fi
done

# --- dead
wait_for 20 logged "vm dead: .* MiB of RAM"
# freehintd's worker holds the backing (privsep), the parent none.
holds() {
	for p in $dpid $(pgrep -P "$dpid"); do
		ls -l "/proc/$p/fd" 2>/dev/null
	done | grep -q "$s/dead"
}
if holds && [ "$(status dead 'v["mode"]')" = discard ]; then
	pass "$L-dead:served-while-alive"
else
	fail $L-dead:served-while-alive "$(status dead 'v["mode_reason"]')"
fi
kill "$dead_pid"
i=0
while holds && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
if ! holds; then
	pass "$L-dead:backing-closed"
else
	fail $L-dead:backing-closed "freehintd still holds $s/dead"
fi
st=$(status dead '"%s|%s" % (v["mode"], v["mode_reason"])')
case $st in
"record-only|QEMU process $dead_pid exited") pass "$L-dead:status ($st)" ;;
*) fail $L-dead:status "$st" ;;
esac
# The monitor still answers; a new agent is not served against the map:
# refused (its listener is no live QEMU's) or told record-only.
timeout 60 $hostile "$t/dead.chan" deputy $((8 * MiB)) record-only \
    >"$t/dead-agent.out" 2>&1
if grep -q 'welcome mode 1\|^FAIL deputy:nothing-discarded' "$t/dead-agent.out"; then
	fail $L-dead:agent-not-served "$(grep FAIL "$t/dead-agent.out")"
else
	pass $L-dead:agent-not-served
fi
if cmp -s "$s/dead" "$t/dead.orig"; then
	pass "$L-dead:file-untouched"
else
	fail $L-dead:file-untouched "the dead VM's RAM changed"
fi

if kill -0 "$dpid" 2>/dev/null; then
	kill "$dpid"
	wait "$dpid" && pass "$L:daemon-exit" ||
	    fail $L:daemon-exit "status $?"
else
	fail $L:daemon-exit "freehintd died: $(tail -n 5 "$t/daemon.log")"
fi
[ "$FH_FAILED" = 0 ] || { echo "# daemon log:"; tail -n 40 "$t/daemon.log"; }
exit "$FH_FAILED"
