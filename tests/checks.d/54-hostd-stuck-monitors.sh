#!/bin/sh
# No QEMU monitor can stall freehintd. Beside a healthy real QEMU VM (h,
# memfd RAM; fh-hostile plays its agent on the channel and checks that
# every REPORTED batch is acknowledged APPLIED within 1 s), freehintd
# serves VMs whose monitors are stuck:
#   silent: a socket that accepts and never writes a byte
#   mute:   greets, negotiates, then answers nothing (and is not QEMU)
#   full:   a listener whose backlog is full: it never accepts
#   late:   no listener at first; a real QEMU appears 3 s later
#   stopped: a real QEMU, SIGSTOPped before freehintd starts, SIGCONTed
#            7 s later
# Meanwhile a watchdog-like client asks for "status" every 200 ms: every
# answer must come within 1 s. Then each stuck VM is record-only with the
# reason in status, and the late and stopped VMs are served.
# FREEHINTD=path runs another daemon binary (the old one, to see it fail).
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/hostd/lib.sh

hostd_step hostd-stuck /dev/shm/fh-stuck all hostd-tests
SECS=16
dpid= hpid= ppid= fpids=
cleanup() {
	[ -f "$t/stopped.pid" ] && kill -CONT "$(cat "$t/stopped.pid")" 2>/dev/null
	for p in $dpid $hpid $ppid $fpids; do
		kill -9 "$p" 2>/dev/null
	done
	step_end "$t" h late stopped
}
trap cleanup EXIT
trap 'exit 1' INT TERM

vm_memfd hostd-stuck "$t" h 128M
vm_memfd hostd-stuck "$t" stopped 64M
kill -STOP "$(cat "$t/stopped.pid")"
for m in silent mute full; do
	tests/hostd/fake-monitor.py $m "$t/$m.qmp" >"$t/$m.out" 2>&1 &
	fpids="$fpids $!"
done
wait_for 5 test -S "$t/full.qmp" -a -S "$t/silent.qmp" -a -S "$t/mute.qmp"
wait_for 5 grep -q "backlog full" "$t/full.out"

# The healthy VM's agent: pfn 0x2000 is 32 MiB into its RAM.
build/tests/hostd/fh-hostile "$t/h.chan" timed $SECS 0x2000 >"$t/h.out" 2>&1 &
hpid=$!
"$freehintd" -d -v --vsock-port 0 --control "$t/ctl" \
    --vm "name=h,qmp=$t/h.qmp,channel=$t/h.chan" \
    --vm "name=silent,qmp=$t/silent.qmp" \
    --vm "name=mute,qmp=$t/mute.qmp" \
    --vm "name=full,qmp=$t/full.qmp" \
    --vm "name=late,qmp=$t/late.qmp" \
    --vm "name=stopped,qmp=$t/stopped.qmp" >"$t/d.log" 2>&1 &
dpid=$!
tests/hostd/status-poll.py "$t/ctl" $SECS "$t/poll" &
ppid=$!

sleep 3
vm_start "$t" late 64M -object memory-backend-memfd,id=mem0,size=64M,share=on
sleep 4
kill -CONT "$(cat "$t/stopped.pid")"
wait $hpid
hpid=
wait $ppid
ppid=

relay "$t/h.out" hostd-stuck:healthy
grep '^#' "$t/h.out"
grep -q '^PASS timed:acked-within-1s' "$t/h.out" ||
    fail hostd-stuck:healthy "the healthy VM was not served: $(tail -n 3 "$t/h.out")"

read -r worst n <"$t/poll" 2>/dev/null || { worst=99999 n=0; }
if [ "$n" -ge $((SECS * 5 / 2)) ] && [ "$worst" -lt 1000 ]; then
	pass "hostd-stuck:status-within-1s ($n answers, slowest $worst ms)"
else
	fail hostd-stuck:status-within-1s "$n answers, slowest $worst ms"
fi

# Nothing waits on the daemon for long: the old one answers nothing.
ctl() { timeout 3 build/freehintctl -s "$t/ctl" "$@"; }
# status VM FIELD: one field of one VM's status.
status() {
	ctl status --json 2>/dev/null | python3 -c '
import json, sys
v = {x["name"]: x for x in json.load(sys.stdin)["vms"]}[sys.argv[1]]
print(v[sys.argv[2]])' "$1" "$2"
}
# reason VM TEXT: VM is record-only and says why.
reason() {
	[ "$(status "$1" mode)" = record-only ] &&
	    status "$1" mode_reason | grep -q -- "$2"
}
served() { [ "$(status "$1" mode)" = discard ]; }

# within SECONDS COMMAND...: COMMAND succeeds within SECONDS of wall time
# (wait_for counts tries, and a try may take the 3 s of ctl's timeout).
within() {
	_end=$(($(date +%s) + $1))
	shift
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		[ "$(date +%s)" -ge $_end ] && return 1
		sleep 0.2
	done
}
check() {
	name=$1
	shift
	if within 8 "$@"; then
		pass "hostd-stuck:$name"
	else
		fail "hostd-stuck:$name" "$(ctl status 2>&1 | tail -n 8)"
	fi
}
check silent-failed reason silent "did not greet within"
check full-failed reason full "listen backlog full"
# mute's reason alternates: "not a QEMU" while connected, the timeout
# from its loss until the next greeting.
check mute-failed reason mute "did not answer 'migrate-set-capabilities'\\|is not a QEMU process"
check mute-timeout grep -q "vm mute: the monitor did not answer 'migrate-set-capabilities' within 5000 ms" "$t/d.log"
check mute-not-qemu grep -q "vm mute: the monitor's listener (pid [0-9]*, [^)]*python[^)]*) is not a QEMU process" "$t/d.log"
check late-served served late
check stopped-served served stopped
check healthy-served served h
if [ "$(status h reclaimed_bytes)" -ge 2097152 ] 2>/dev/null &&
    [ "$(status h ranges_rejected)" = 0 ]; then
	pass "hostd-stuck:healthy-reclaimed ($(status h reclaimed_bytes) bytes)"
else
	fail hostd-stuck:healthy-reclaimed "$(ctl status 2>&1)"
fi
# A stuck monitor is tried again, with backoff: more than once, not in a
# loop.
n=$(grep -c "vm silent: the monitor did not greet" "$t/d.log")
if [ "$n" -ge 2 ] && [ "$n" -le 8 ]; then
	pass "hostd-stuck:reconnect-backoff ($n attempts)"
else
	fail hostd-stuck:reconnect-backoff "$n failed greetings logged"
fi

kill "$dpid"
# A daemon stuck in a system call does not act on SIGTERM: 5 s, then KILL.
(sleep 5 && kill -9 "$dpid") 2>/dev/null &
killer=$!
wait "$dpid"
rc=$?
kill "$killer" 2>/dev/null
dpid=
if [ $rc = 0 ]; then
	pass hostd-stuck:daemon-exit
else
	fail hostd-stuck:daemon-exit "status $rc: $(tail -n 5 "$t/d.log")"
fi
[ "${FH_FAILED:-0}" = 0 ] || { echo "# freehintd log:"; tail -n 40 "$t/d.log"; }
exit "${FH_FAILED:-0}"
