#!/bin/sh
# The lease between freehint.ko, the agent and freehintd under stalls, in
# a real 2 GiB guest over virtio-serial with memfd RAM (hold_timeout_ms
# 3000 and report_grace_ms 2000 in the guest, freehintd punching in slow
# pieces): a hint pass while freehintd is SIGSTOPped past the module's
# timeout and grace, then one while the agent is stopped with batches read
# and not sent; then one with the guest's clocks 10% fast and stepped, the
# agent killed while freehintd punches and the guest paused. In each, a
# guest program then takes the memory the pass held; none of its pages
# may be punched.
# Before the lease fix both lost pages (the read-ahead batch was freed by
# the module's timeout and then sent with a fresh deadline).
set -u
cd "$(dirname "$0")/../.." || exit 1
FHROOT=$(pwd)
. tests/hostd/e2e.sh
e2e_step hostd-lease /tmp/fh-lease all kmod kmod-tests
ctl="$FHROOT/build/freehintctl -s $d/ctl"
guest_build "$d/initrd.cpio.gz" -m "$FHROOT/kmod/freehint.ko" \
    -b "$FHROOT/build/freehint-agent" -b "$FHROOT/build/tests/kmod/fhfill" \
    -s "$FHROOT/tests/hostd/guest-lease.sh" >"$d/mkinitrd.log" 2>&1 ||
	{ fail hostd-lease "initrd build failed"; exit 1; }
"$FHROOT/tests/guest/run-guest.sh" -b -m 2048 -t 400 -q "$d/qmp" \
    -c "$d/chan" -p "$d/qemu.pid" -i "$d/initrd.cpio.gz" -l "$d/guest.log" \
    -- -qmp "unix:$d/qmp2,server=on,wait=off" ||
	{ fail hostd-lease "guest did not start"; exit 1; }
FREEHINTD_TEST_DISCARD_DELAY_MS=300 "$FHROOT/build/freehintd" -d \
    --vsock-port 0 --control "$d/ctl" \
    --vm "name=lease,qmp=$d/qmp,channel=$d/chan" >"$d/freehintd.log" 2>&1 &
dpid=$!
# freehintd is two processes (privsep): both stall, or the worker that
# serves the agent would go on.
hostd_signal() {
	kill "-$1" "$dpid" $(pgrep -P "$dpid") 2>/dev/null
}

# hint_then_stop N: a hint pass, and freehintd stopped as soon as the
# guest is capturing, before the pass's first batch is sent.
hint_then_stop() {
	_n=0
	until $ctl hint lease >/dev/null 2>&1; do
		_n=$((_n + 1))
		[ $_n -gt 100 ] && return 1
		sleep 0.3
	done
	echo "$(date +%T.%N | cut -c1-12) hint pass asked"
	e2e_wait_log "$d/guest.log" "FH CAPTURING$1" 60 || return 1
	hostd_signal STOP
	echo "$(date +%T.%N | cut -c1-12) freehintd stopped"
}

die() {
	fail hostd-lease "$1"
	hostd_signal CONT
	sleep 1
	tr -d '\r' <"$d/guest.log" | grep -a -v '^\[' | tail -n 60
	tail -n 30 "$d/freehintd.log"
	exit 1
}

step() {
	e2e_wait_log "$d/guest.log" "$1" "$2" ||
		die "no '$1' from the guest within $2 s"
	echo "$(date +%T.%N | cut -c1-12) guest: $1"
}

step "FH READY1" 120
e2e_wait_log "$d/freehintd.log" "vm lease: agent" 60 ||
	die "the agent never said Hello"
hint_then_stop 1 || die "no hint pass"
step "fhfill: filled" 120
hostd_signal CONT
step "FH DONE1" 120
$ctl release lease >/dev/null 2>&1
step "FH READY2" 60
hint_then_stop 2 || die "no second hint pass"
step "FH AGENT-STOPPED" 60
hostd_signal CONT
step "FH DONE2" 120
$ctl release lease >/dev/null 2>&1
reclaimed() {
	$ctl status --json | python3 -c 'import json,sys
print(json.load(sys.stdin)["vms"][0]["reclaimed_bytes"])'
}
r0=$(reclaimed)
step "FH READY3" 60
until $ctl hint lease >/dev/null 2>&1; do sleep 0.3; done
step "FH KILLED3" 120
"$FHROOT/tests/hostd/qmp.py" "$d/qmp2" exec stop >/dev/null
sleep 3
"$FHROOT/tests/hostd/qmp.py" "$d/qmp2" exec cont >/dev/null
echo "$(date +%T.%N | cut -c1-12) guest paused 3 s"
step "FH DONE3" 120
r1=$(reclaimed)
# The check means something only if freehintd punched up to its deadline.
if [ "$r1" -gt "$r0" ]; then
	pass "hostd-lease:clock-skew-punched ($(((r1 - r0) >> 20)) MiB before the deadline)"
else
	fail hostd-lease:clock-skew-punched "reclaimed_bytes $r0 -> $r1"
fi
e2e_wait_log "$d/guest.log" "FHGUEST EXIT" 60
tr -d '\r' <"$d/guest.log" | grep -a -E '^(PASS|FAIL) |fhfill|hint pass|lease|given back'
grep -E "hint pass|too late|rejected" "$d/freehintd.log" | head -20
# Each agent connection has the map read again (issue 13): the guest may
# have been rebooted, or its memory changed, since the last read.
if grep -q "vm lease: reading the memory map again" "$d/freehintd.log"; then
	pass hostd-lease:map-read-at-hello
else
	fail hostd-lease:map-read-at-hello "no map refresh after the Hello"
fi
if kill -0 "$dpid" 2>/dev/null; then
	pass hostd-lease:freehintd-alive
else
	fail hostd-lease:freehintd-alive "freehintd died"
fi
tr -d '\r' <"$d/guest.log" | grep -a -q '^FAIL ' && FH_FAILED=1
tr -d '\r' <"$d/guest.log" | grep -a -q '^PASS lease-clock-skew-no-page-lost' ||
	{ fail hostd-lease "the guest's checks did not all run"; }
exit "${FH_FAILED:-0}"
