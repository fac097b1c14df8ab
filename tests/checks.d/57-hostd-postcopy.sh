#!/bin/sh
# A real postcopy migration between two QEMUs on this machine, with one
# freehintd serving both (VMs src and dst) and the module and the agent in
# the guest (tests/hostd/guest-postcopy.sh), which keeps dirtying and
# freeing memory and printing the checksum of 32 MiB it keeps:
#  - the source discards before the migration (discard mode works here);
#  - while postcopy runs, nothing is punched on the destination (its
#    reclaimed bytes stay 0 and batches that reach it are refused with
#    the reason), nor on the source after the switchover;
#  - after the migration the guest runs on the destination with its kept
#    memory intact, and only there are holes punched again.
# FREEHINTD=path runs another daemon binary (the test must fail with the
# code before the checks).
set -u
cd "$(dirname "$0")/../.." || exit 1
FHROOT=$(pwd)
. tests/hostd/e2e.sh
guest_step hostd-postcopy all kmod
daemon=${FREEHINTD:-build/freehintd}

t=$(mktemp -d /tmp/fh-postcopy.XXXXXX)
dpid=
cleanup() {
	[ -n "$dpid" ] && kill "$dpid" 2>/dev/null
	qemu_kill "$t" src dst
	wait 2>/dev/null
	[ "$FH_FAILED" = 0 ] || cp "$t/daemon.log" /tmp/fh-postcopy-last.log
	rm -rf "$t"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

qmp() { tests/hostd/qmp.py "$@"; }
# status VM EXPR: EXPR (Python, v = that VM in status --json).
status() {
	build/freehintctl -s "$t/ctl" status --json | python3 -c '
import json, sys
v = {x["name"]: x for x in json.load(sys.stdin)["vms"]}[sys.argv[1]]
print(eval(sys.argv[2]))' "$1" "$2"
}
mig_status() {
	qmp "$t/$1.qmp2" exec query-migrate | python3 -c '
import json, sys
print(json.load(sys.stdin).get("status", "none"))'
}
dump() {
	echo "# daemon log:"
	grep -v 'agent stats' "$t/daemon.log" | tail -n 30
	for n in src dst; do
		echo "# $n guest:"
		grep -av "FH SUM" "$t/$n.log" | tail -n 10
	done
}

guest_build "$t/initrd.cpio.gz" -m kmod/freehint.ko -b build/freehint-agent \
    -s tests/hostd/guest-postcopy.sh >"$t/mkinitrd.log" 2>&1 ||
    { fail hostd-postcopy "initrd build failed"; exit 1; }
# The same machine on both sides; the destination waits for the stream.
for n in src dst; do
	extra=
	[ $n = dst ] && extra="-incoming unix:$t/mig.sock"
	tests/guest/run-guest.sh -b -m 256 -t 400 -q "$t/$n.qmp" \
	    -c "$t/$n.chan" -p "$t/$n.pid" -i "$t/initrd.cpio.gz" \
	    -l "$t/$n.log" -- -qmp "unix:$t/$n.qmp2,server=on,wait=off" \
	    $extra ||
	    { fail hostd-postcopy "QEMU ($n) did not start"; exit 1; }
done
"$daemon" -d -v --vsock-port 0 --control "$t/ctl" \
    --vm "name=src,qmp=$t/src.qmp,channel=$t/src.chan" \
    --vm "name=dst,qmp=$t/dst.qmp,channel=$t/dst.chan" \
    >"$t/daemon.log" 2>&1 &
dpid=$!

e2e_wait_log "$t/src.log" "FH SUM" 120 ||
    { fail hostd-postcopy "the guest did not start"; dump; exit 1; }
if wait_for 60 sh -c "[ \$(build/freehintctl -s $t/ctl status --json |
    python3 -c 'import json,sys
print([v for v in json.load(sys.stdin)[\"vms\"] if v[\"name\"] == \"src\"][0][\"reclaimed_bytes\"])') -gt 0 ]"; then
	pass "hostd-postcopy:source-discards-before ($(status src 'v["reclaimed_bytes"] >> 20') MiB)"
else
	fail hostd-postcopy:source-discards-before "$(status src 'v')"
	dump
	exit 1
fi

for n in src dst; do
	qmp "$t/$n.qmp2" exec migrate-set-capabilities \
	    '{"capabilities": [{"capability": "postcopy-ram", "state": true}]}' \
	    >/dev/null || fail hostd-postcopy "postcopy-ram on $n"
done
# Slow enough that postcopy lasts a while under TCG.
qmp "$t/src.qmp2" exec migrate-set-parameters \
    '{"max-bandwidth": 8388608, "max-postcopy-bandwidth": 2097152}' >/dev/null
qmp "$t/src.qmp2" exec migrate "{\"uri\": \"unix:$t/mig.sock\"}" >/dev/null
sleep 2
qmp "$t/src.qmp2" exec migrate-start-postcopy >/dev/null
wait_for 20 sh -c "[ \"\$(tests/hostd/qmp.py $t/dst.qmp2 exec query-migrate)\" != '{}' ] &&
    tests/hostd/qmp.py $t/dst.qmp2 exec query-migrate | grep -q postcopy-active" ||
    fail hostd-postcopy:postcopy-started "$(mig_status dst)"

# While postcopy runs: the destination punches nothing.
n=0 worst=0 src_at=$(status src 'v["reclaimed_bytes"]') src_worst=0
while [ "$(mig_status dst)" = postcopy-active ] && [ $n -lt 600 ]; do
	r=$(status dst 'v["reclaimed_bytes"]')
	[ "$r" -gt "$worst" ] && worst=$r
	r=$(( $(status src 'v["reclaimed_bytes"]') - src_at ))
	[ "$r" -gt "$src_worst" ] && src_worst=$r
	n=$((n + 1))
	sleep 0.2
done
if [ $n -ge 5 ]; then
	pass "hostd-postcopy:postcopy-ran ($n samples)"
else
	fail hostd-postcopy:postcopy-ran "only $n samples during postcopy"
fi
wait_for 120 sh -c "tests/hostd/qmp.py $t/dst.qmp2 exec query-migrate | grep -q completed" ||
    fail hostd-postcopy:completed "$(mig_status dst)"
refused=$(grep -c 'vm dst: batch [0-9]* rejected: HOST_ERROR: postcopy migration' "$t/daemon.log")
if [ "$worst" = 0 ] && [ "$refused" -gt 0 ]; then
	pass "hostd-postcopy:destination-nothing-punched ($refused batches refused)"
else
	fail hostd-postcopy:destination-nothing-punched "reclaimed up to $worst bytes, $refused batches refused"
fi
if [ "$src_worst" = 0 ] && grep -q 'vm src: postcopy: discards stopped' "$t/daemon.log"; then
	pass "hostd-postcopy:source-nothing-punched-after-switchover"
else
	fail hostd-postcopy:source-nothing-punched-after-switchover "$src_worst bytes"
fi

# The guest runs on the destination with its memory intact.
sums_before=$(grep -ac "FH SUM" "$t/dst.log")
wait_for 60 sh -c "[ \$(grep -ac 'FH SUM' $t/dst.log) -ge $((sums_before + 3)) ]"
want=$(sed -n 's/.*FH SUM \([0-9a-f]*\).*/\1/p' "$t/src.log" | head -n 1)
got=$(sed -n 's/.*FH SUM \([0-9a-f]*\).*/\1/p' "$t/src.log" "$t/dst.log" | sort -u)
if [ -n "$want" ] && [ "$got" = "$want" ] &&
    [ "$(grep -ac 'FH SUM' "$t/dst.log")" -ge 3 ]; then
	pass "hostd-postcopy:guest-memory-intact ($(grep -ac 'FH SUM' "$t/dst.log") checksums on the destination)"
else
	fail hostd-postcopy:guest-memory-intact "checksums: $(echo "$got" | wc -l), $(grep -ac 'FH SUM' "$t/dst.log") on the destination"
fi
# Afterwards: discards again where the guest runs, never on the source.
if wait_for 60 sh -c "[ \$(build/freehintctl -s $t/ctl status --json |
    python3 -c 'import json,sys
print([v for v in json.load(sys.stdin)[\"vms\"] if v[\"name\"] == \"dst\"][0][\"reclaimed_bytes\"])') -gt 0 ]" &&
    grep -q 'vm dst: postcopy over, the guest runs here' "$t/daemon.log" &&
    grep -q 'vm src: postcopy over, the guest does not run here' "$t/daemon.log"; then
	pass "hostd-postcopy:destination-discards-after ($(status dst 'v["reclaimed_bytes"] >> 20') MiB)"
else
	fail hostd-postcopy:destination-discards-after "$(grep 'postcopy' "$t/daemon.log" | tail -n 4)"
fi
if kill -0 "$dpid" 2>/dev/null; then
	kill "$dpid"
	wait "$dpid" && pass hostd-postcopy:daemon-exit ||
	    fail hostd-postcopy:daemon-exit "status $?"
else
	fail hostd-postcopy:daemon-exit "freehintd died"
fi
dpid=
[ "$FH_FAILED" = 0 ] || dump
exit "$FH_FAILED"
