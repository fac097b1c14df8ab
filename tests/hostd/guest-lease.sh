# Guest side of tests/checks.d/55-hostd-lease.sh: hint passes while the
# host daemon, then the agent, are stalled past the module's hold timeout
# and grace; fhfill then takes the memory the pass held and checks that
# no page of it is punched when the stalled side goes on. "FH <step>"
# lines are the host's cues.
insmod /lib/freehint/freehint.ko hold_timeout_ms=3000 report_grace_ms=2000 ||
	{ echo "FAIL lease-insmod: insmod failed"; exit 1; }
freehint-agent -d -v --transport virtio-serial >/run/agent.log 2>&1 &
agent=$!
up() { cut -d' ' -f1 /proc/uptime; }
st() { sed -n "s/^$1 //p" /proc/freehint/stats; }
# What fhfill takes: all but 400 MiB of the guest's memory, so it needs
# the memory the pass held.
fill_mb() { echo $(($(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo) / 1024 - 400)); }
diag() {
	cat /run/agent.log
	grep -E "^hold_" /proc/freehint/stats
	grep -E "^Mem" /proc/meminfo
	dmesg | grep -v -E "^\[ *[0-3]\." | tail -20
}
wait_capture() {
	_n=0
	while [ "$(st hold_captured_bytes)" = "$1" ]; do
		sleep 0.2
		_n=$((_n + 1))
		[ $_n -gt 300 ] && return 1
	done
	return 0
}
# ready N CASE: say FH READYn to the host, which starts pass N, and wait
# until the module captured blocks for it; without, CASE fails.
ready() {
	_c0=$(st hold_captured_bytes)
	echo "FH READY$1 $(up)"
	wait_capture "$_c0" ||
		{ echo "FAIL $2: no capture"; diag; exit 1; }
}
fail=0

# 1: the host stalls (SIGSTOP) right after asking for the pass.
ready 1 lease-host-stall
echo "FH CAPTURING1 $(up)"
sleep 8
echo "FH FILL1 $(up)"
if fhfill "$(fill_mb)" 25; then
	echo "PASS lease-host-stall-no-page-lost"
else
	echo "FAIL lease-host-stall-no-page-lost: pages punched after the module gave them back"
	fail=1
fi
echo "FH DONE1 $(up)"
sleep 3

# 2: the host stalls briefly so that the agent has batches read and not
# sent; then the agent stalls past the timeout, with report_grace_ms
# lowered after its handshake and its reads.
ready 2 lease-agent-stall
echo "FH CAPTURING2 $(up)"
sleep 2
kill -STOP $agent
echo 100 >/sys/module/freehint/parameters/report_grace_ms
echo "FH AGENT-STOPPED $(up)"
sleep 8
# The stopped agent keeps up to a quarter of memory in flight (the
# module's cap): that is not for fhfill to take.
fhfill $(($(fill_mb) - $(fill_mb) / 4 - 100)) 25 >/run/fill2.log 2>&1 &
fill=$!
_n=0
while ! grep -q filled /run/fill2.log && [ $_n -lt 600 ]; do sleep 0.1; _n=$((_n + 1)); done
kill -CONT $agent
echo "FH AGENT-CONT $(up)"
if wait $fill; then
	echo "PASS lease-agent-stall-no-page-lost"
else
	echo "FAIL lease-agent-stall-no-page-lost: pages punched after the module gave them back"
	fail=1
fi
cat /run/fill2.log
echo "FH DONE2 $(up)"

# 3: clocks. The guest's clocks run 10% fast (adjtimex's largest tick),
# its wall clock steps an hour, and the agent dies (SIGKILL) while
# freehintd punches its first batch in slow pieces, so the module's grace
# from the close is all that protects the pages; the host pauses the
# guest (QMP stop, cont) meanwhile. No page fhfill takes may be punched.
echo 2000 >/sys/module/freehint/parameters/report_grace_ms
adjtimex -t 11000 >/dev/null
date -s "@$(($(date +%s) + 3600))" >/dev/null
ready 3 lease-clock-skew
_n=0
until grep -q "hint pass 3: captured" /run/agent.log || [ $_n -gt 600 ]; do
	sleep 0.1
	_n=$((_n + 1))
done
sleep 0.3
kill -9 $agent
echo "FH KILLED3 $(up)"
sleep 6
if fhfill "$(fill_mb)" 15; then
	echo "PASS lease-clock-skew-no-page-lost"
else
	echo "FAIL lease-clock-skew-no-page-lost: pages punched after the module gave them back"
	fail=1
fi
adjtimex -t 10000 >/dev/null
echo "FH DONE3 $(up)"
grep -E "hint pass|lease|given back|rejected" /run/agent.log | head -40
grep -E "^(hold|report)_" /proc/freehint/stats | tr '\n' ' '; echo
if dmesg | grep -E -q "BUG:|WARNING:|Oops|invoked oom-killer"; then
	echo "FAIL lease-dmesg-clean: kernel complained"; dmesg | tail -30; fail=1
else
	echo "PASS lease-dmesg-clean"
fi
exit $fail
