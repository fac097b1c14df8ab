#!/bin/sh
# The pass a migration starts by itself, at freehintd's defaults, in a
# real guest (freehint.ko and the agent over virtio-serial, 512 MiB on a
# shared memfd) whose free memory lies in 32 KiB holes: QEMU migrates it
# to a second QEMU at its default bandwidth, freehintd starts the hint
# pass on the MIGRATION event, and the migration does not send what the
# pass held; the guest's kept memory checks out on the destination
# (tests/hostd/fh-fragsum.c).
# FREEHINTD, FREEHINT_KO and FREEHINT_AGENT run it against other builds;
# FH_KEEP=1 keeps its directory (logs, the progress of the migration).
set -u
cd "$(dirname "$0")/../.." || exit 1
FHROOT=$(pwd)
. tests/hostd/e2e.sh
guest_require hostd-migration-pass
make -s all kmod hostd-tests >/dev/null 2>&1 ||
    { fail hostd-migration-pass "make all kmod hostd-tests failed"; exit 1; }
freehintd=${FREEHINTD:-build/freehintd}
ko=${FREEHINT_KO:-kmod/freehint.ko}
agent=${FREEHINT_AGENT:-build/freehint-agent}

t=$(mktemp -d /tmp/fh-migpass.XXXXXX)
dpid=
cleanup() {
	[ -n "$dpid" ] && kill "$dpid" 2>/dev/null
	for n in src dst; do
		[ -s "$t/$n.pid" ] && kill "$(cat "$t/$n.pid")" 2>/dev/null
	done
	[ -n "${FH_KEEP:-}" ] || rm -rf "$t"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
qmp() { tests/hostd/qmp.py "$@"; }
dump() {
	echo "# freehintd.log"
	grep -v 'debug: vm src: event' "$t/d.log" | tail -n 12
	echo "# tick (0.2 s), ram.normal, ram.duplicate"
	tr '\n' ';' <"$t/progress" 2>/dev/null
	echo
	for n in src dst; do
		echo "# $n guest"
		tail -n 6 "$t/$n.log" 2>/dev/null
	done
}

guest_build "$t/initrd.cpio.gz" -m "$ko" -b "$agent" \
    -b build/tests/hostd/fh-fragsum \
    -s tests/hostd/guest-migration-pass.sh >"$t/mkinitrd.log" 2>&1 ||
    { fail hostd-migration-pass "initrd build failed"; exit 1; }
tests/guest/run-guest.sh -b -t 400 -q "$t/qmp" -c "$t/chan" \
    -p "$t/src.pid" -i "$t/initrd.cpio.gz" -l "$t/src.log" -- \
    -qmp "unix:$t/qmp2,server=on,wait=off" ||
    { fail hostd-migration-pass "the source QEMU did not start"; exit 1; }
"$freehintd" -d -v --vsock-port 0 --control "$t/ctl" \
    --vm "name=src,qmp=$t/qmp,channel=$t/chan" >"$t/d.log" 2>&1 &
dpid=$!
if ! e2e_wait_log "$t/d.log" "vm src: agent " 120 ||
    ! e2e_wait_log "$t/src.log" "FRAG verify ok" 300; then
	fail hostd-migration-pass "the guest did not get ready"
	dump
	exit 1
fi
free_kib=$(sed -n 's/.*FRAG free_kib=\([0-9]*\).*/\1/p' "$t/src.log")
used=$(((512 * 1024 - free_kib) / 4))
bw() {
	qmp "$t/qmp2" exec query-migrate-parameters | python3 -c 'import json, sys
print(json.load(sys.stdin)["max-bandwidth"])'
}
bw_before=$(bw)

# A bandwidth at which sending the free memory is quicker than the pass
# (10 GiB/s, beyond freehintd's 1 GiB/s link): no pass, QEMU left alone.
# The migration goes to a pipe nobody reads for 20 s, and is cancelled
# once freehintd has decided. First a Stats of the fragmented guest
# (stats-interval-ms is 2000): the pass is weighed on the agent's last.
sleep 3
qmp "$t/qmp2" exec migrate-set-parameters '{"max-bandwidth": 10737418240}' \
    >/dev/null
qmp "$t/qmp2" exec migrate '{"uri": "exec:sleep 20; cat >/dev/null"}' \
    >/dev/null
if e2e_wait_log "$t/d.log" "vm src: no hint pass: at 1024 MiB/s" 30 &&
    ! grep -q "hint pass 1 started\|bandwidth held" "$t/d.log" &&
    [ "$(bw)" = 10737418240 ]; then
	pass hostd-migration-pass:unpaid-left-alone
else
	fail hostd-migration-pass:unpaid-left-alone "$(bw)"
	dump
fi
qmp "$t/qmp2" exec migrate_cancel >/dev/null
cancelled() { qmp "$t/qmp2" exec query-migrate | grep -q '"cancelled"'; }
if ! wait_for 40 cancelled || ! e2e_wait_log "$t/d.log" "migration finished" 10
then
	fail hostd-migration-pass:cancelled "$(qmp "$t/qmp2" exec query-migrate)"
	dump
	exit 1
fi
qmp "$t/qmp2" exec migrate-set-parameters \
    "{\"max-bandwidth\": $bw_before}" >/dev/null

# The destination: the same guest, waiting for the migration.
tests/guest/run-guest.sh -b -t 400 -q "$t/dqmp" -c "$t/dchan" \
    -p "$t/dst.pid" -i "$t/initrd.cpio.gz" -l "$t/dst.log" -- \
    -qmp "unix:$t/dqmp2,server=on,wait=off" \
    -incoming "unix:$t/mig.sock" ||
    { fail hostd-migration-pass "the destination QEMU did not start"; exit 1; }
wait_for 30 test -S "$t/mig.sock" ||
    { fail hostd-migration-pass "the destination does not listen"; exit 1; }
# Both QEMUs run TCG, a vCPU and the migration thread each busy, on a
# machine that may have two cores: freehintd then waits for a CPU, and
# QEMU sends at full speed until the MIGRATION event is answered (a
# fresh-clone run sent 22 MiB more than the pass allowed, the time for
# freehintd to be scheduled). On a host a VM does not own every core;
# here its threads (the migration thread inherits the main thread's)
# yield to freehintd, which is what the step measures.
for n in src dst; do
	for task in /proc/"$(cat "$t/$n.pid")"/task/*; do
		renice -n 10 -p "${task##*/}" >/dev/null 2>&1
	done
done
qmp "$t/qmp2" exec migrate "{\"uri\": \"unix:$t/mig.sock\"}" >/dev/null
# Once the pass holds what it will, the rest is copied with the guest
# paused: QEMU 7.2 under TCG loses guest writes made during a live
# migration (tests/checks.d/61-libvirt-migrate.sh says more), and the
# destination would then check a corrupted guest. A pass slower than
# migration-hold-ms (a loaded machine) ends the hold first: the migration
# then goes at full speed, and the guest must not run during it either
# (a fresh-clone run's destination crashed when it did).
e2e_wait_log "$t/d.log" "hint pass 1 over\|migration bandwidth back" 60 &&
    qmp "$t/qmp2" exec stop >/dev/null
n=0
while :; do
	m=$(qmp "$t/qmp2" exec query-migrate)
	# Pages sent whole and zero pages, every 0.2 s, for a failure's report.
	echo "$m" | python3 -c 'import json, sys
r = json.load(sys.stdin).get("ram", {})
print(sys.argv[1], r.get("normal"), r.get("duplicate"))' "$n" >>"$t/progress"
	case $m in
	*'"completed"'* | *'"failed"'* | *'"cancelled"'*) break ;;
	esac
	n=$((n + 1))
	[ $n -gt 1500 ] && break
	sleep 0.2
done
normal=$(echo "$m" | python3 -c 'import json, sys
print(json.load(sys.stdin).get("ram", {}).get("normal", -1))')
case $m in
*'"completed"'*)
	pass "hostd-migration-pass:completed ($normal pages sent)" ;;
*)
	fail hostd-migration-pass:completed "$m"
	dump
	exit 1
	;;
esac
if grep -q "hint pass 1 started" "$t/d.log"; then
	pass hostd-migration-pass:pass-on-migration-event
else
	fail hostd-migration-pass:pass-on-migration-event "no pass seen"
fi
# What the pass held was not sent whole: QEMU sent at most what the
# guest uses and the free memory the pass left, plus half of what it
# held (the guest's own writes during the migration are sent again).
# Without the pass it sends nearly all of used + free. The product's
# target, at most 1.1 times the pages used, is judged on medians by
# bench/migration.py (docs/bench/20-migration.md), not here: on this
# machine the same build gives 1.00-1.01 in some runs and 1.12-1.20 in
# others (4d3a349 too), by what the module's floor (ZONE_DMA, the low
# watermark and hold_reserve_mb, kmod/hold.c) leaves free and what the
# running guest dirties.
held=$(sed -n 's/.*hint pass 1 over after .*, \([0-9]*\) MiB held.*/\1/p' "$t/d.log" | head -n 1)
held=$((${held:-0} * 256))
free=$((free_kib / 4))
if [ "$normal" -ge 0 ] && [ "$held" -gt 0 ] &&
    [ "$normal" -le $((used + free - held / 2)) ]; then
	pass "hostd-migration-pass:pages-sent ($normal <= $used used + $free free - $held held / 2; $(python3 -c "print('%.2f' % ($normal / $used))") x used)"
else
	fail hostd-migration-pass:pages-sent \
	    "$normal pages sent, over $used used + $free free - $held held / 2"
	dump
fi
# The agent keeps to the host's batch rate (Welcome.max_batches_per_sec):
# a pass whose batches are acknowledged quickly went past it, was refused
# RATE_LIMITED (a fault) and could lose its agent.
if grep -q RATE_LIMITED "$t/d.log"; then
	fail hostd-migration-pass:within-rate "$(grep -m 3 RATE_LIMITED "$t/d.log")"
else
	pass hostd-migration-pass:within-rate
fi
# What freehintd held down during the pass is given back.
bw_after=$(bw)
if [ "$bw_after" = "$bw_before" ]; then
	pass "hostd-migration-pass:bandwidth-restored ($bw_after)"
else
	fail hostd-migration-pass:bandwidth-restored "$bw_after, was $bw_before"
fi
# Two checks of the kept memory on the destination, none bad.
qmp "$t/dqmp2" exec cont >/dev/null
if wait_for 60 sh -c "[ \$(grep -ac 'FRAG verify ok' '$t/dst.log') -ge 2 ]" &&
    ! grep -aq "FRAG verify BAD" "$t/dst.log" "$t/src.log"; then
	pass hostd-migration-pass:memory-intact
else
	fail hostd-migration-pass:memory-intact "$(grep -a FRAG "$t/dst.log" | tail -n 3)"
	dump
fi
[ "$FH_FAILED" = 0 ]
