#!/bin/sh
# The busiest VM cannot delay another's discards. Two real (firmware-only)
# QEMU VMs with memfd RAM, freehintd punching in slow pieces (300 ms each,
# FREEHINTD_TEST_DISCARD_DELAY_MS): fh-hostile floods VM a with REPORTED
# batches of two 30 MiB ranges, four in flight, then sends one batch of six
# whose deadline passes while it is punched (its Ack must say which ranges
# were punched whole); VM b's agent checks that each of its batches is
# acknowledged APPLIED within 1 s. With the discards on the event loop
# (before the punch workers) b waited behind a's queue, up to 1.5 s.
# FREEHINTD=path runs another daemon binary (the old one, to see it fail).
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/hostd/lib.sh

hostd_step hostd-punch /dev/shm/fh-punch all hostd-tests
SECS=10
dpid= apid= bpid=
cleanup() {
	for p in $dpid $apid $bpid; do
		kill -9 "$p" 2>/dev/null
	done
	step_end "$t" a b
}
trap cleanup EXIT
trap 'exit 1' INT TERM

vm_memfd hostd-punch "$t" a 256M
vm_memfd hostd-punch "$t" b 128M

build/tests/hostd/fh-hostile "$t/a.chan" flood $SECS 2 >"$t/a.out" 2>&1 &
apid=$!
# pfn 0x2000 is 32 MiB into b's RAM.
build/tests/hostd/fh-hostile "$t/b.chan" timed $SECS 0x2000 >"$t/b.out" 2>&1 &
bpid=$!
sleep 0.3
FREEHINTD_TEST_DISCARD_DELAY_MS=300 "$freehintd" -d -v --vsock-port 0 \
    --control "$t/ctl" \
    --vm "name=a,qmp=$t/a.qmp,channel=$t/a.chan" \
    --vm "name=b,qmp=$t/b.qmp,channel=$t/b.chan" >"$t/daemon.log" 2>&1 &
dpid=$!
wait $apid
wait $bpid
apid= bpid=
cat "$t/a.out" "$t/b.out" | grep '^#'
sed 's/^\(PASS\|FAIL\) /\1 hostd-punch:/' "$t/a.out" "$t/b.out" |
    grep -E '^(PASS|FAIL)'
[ "$(cat "$t/a.out" "$t/b.out" | grep -c '^PASS')" -ge 6 ] ||
    fail hostd-punch "fewer than the 6 cases passed"

# The partial batch counts in status: a's reclaimed bytes include it.
st=$(build/freehintctl -s "$t/ctl" status --json)
if echo "$st" | python3 -c '
import json, sys
v = {x["name"]: x for x in json.load(sys.stdin)["vms"]}
assert v["a"]["reclaimed_bytes"] >= 60 << 20, v["a"]
assert v["a"]["ranges_applied"] > 0 and v["b"]["ranges_rejected"] == 0
'; then
	pass hostd-punch:status
else
	fail hostd-punch:status "$st"
fi
kill "$dpid"
wait "$dpid"
drc=$?
dpid=
[ $drc -eq 0 ] && pass hostd-punch:daemon-exit ||
    fail hostd-punch:daemon-exit "status $drc"
grep -q '^FAIL' "$t/a.out" "$t/b.out" && FH_FAILED=1
[ "${FH_FAILED:-0}" = 1 ] && { tail -n 30 "$t/daemon.log"; exit 1; }
exit 0
