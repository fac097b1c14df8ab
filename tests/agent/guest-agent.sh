#!/bin/sh
# Inside the guest (tests/checks.d/40-agent-guest.sh): freehint-agent with
# the real freehint.ko against fh-testhost, over a unix socket and over
# AF_VSOCK through vsock_loopback (CID 1). Prints PASS/FAIL lines.
set -u
FAILED=0
ok() { echo "PASS agent-guest-$1"; }
ko() { echo "FAIL agent-guest-$1: $2"; FAILED=1; }
st() { awk -v k="$1" '$1 == k { print $2 }' /proc/freehint/stats; }
show() { sed "s/^/  $1| /" "$2"; }
# wait_for FILE PATTERN SECONDS
wait_for() {
	_i=0
	while ! grep -q -- "$2" "$1" 2>/dev/null; do
		_i=$((_i + 1))
		[ $_i -gt $(($3 * 10)) ] && return 1
		sleep 0.1
	done
}

# The module is missing: one clear line, exit 78 (the unit does not restart).
freehint-agent -d >/tmp/a0.log 2>&1
rc=$?
if [ $rc = 78 ] && grep -q "freehint.ko is not loaded: /proc/freehint/report: No such file or directory; modprobe freehint" /tmp/a0.log &&
	[ "$(wc -l </tmp/a0.log)" = 1 ]; then
	ok module-missing
else
	ko module-missing "exit $rc"; show a0 /tmp/a0.log
fi

# Scenario 1 starts before the module, with --wait-module.
fh-testhost -l unix:/tmp/h1.sock --reject-every 3 --hint-after 4 \
	--pass-limit 32M --pass-min-order 0 --snapshot --until-reported 6 \
	--until-passes 1 --timeout 120 >/tmp/h1.log 2>&1 &
H=$!
sleep 0.3
freehint-agent -d -v --wait-module --transport unix --unix-path /tmp/h1.sock \
	--report-defer-rate 0 \
	--stats-interval 1 >/tmp/a1.log 2>&1 &
A=$!
sleep 1
if grep -q "waiting for freehint.ko" /tmp/a1.log && kill -0 $A; then
	ok wait-module
else
	ko wait-module "agent did not wait"; show a1 /tmp/a1.log
fi
insmod /lib/freehint/freehint.ko || { ko insmod "insmod failed"; exit 1; }
modprobe vsock_loopback || ko vsock-loopback "modprobe failed"

# Free memory in large blocks, again and again, so that page reporting has
# something to report.
(while :; do fhmem dirty 48 >/dev/null 2>&1; sleep 0.3; done) &
CHURN=$!

f0=$(st report_failed_batches) a0=$(st report_acked_bytes)
r0=$(st hold_released_bytes)
wait $H
hrc=$?
sleep 0.5
kill -TERM $A
wait $A
arc=$?
show host1 /tmp/h1.log
show agent1 /tmp/a1.log
if [ $hrc = 0 ] && grep -q "^HELLO conn=1 .*page_size=4096" /tmp/h1.log; then
	ok unix-handshake-report-roundtrip
else
	ko unix-handshake-report-roundtrip "fh-testhost exit $hrc"
fi
[ "$(st report_acked_bytes)" -gt "$a0" ] && ok report-acked-to-module ||
	ko report-acked-to-module "report_acked_bytes $a0 -> $(st report_acked_bytes)"
# Every third batch was rejected: the agent failed it back to the module.
[ "$(st report_failed_batches)" -gt "$f0" ] && ok rejected-failed-to-module ||
	ko rejected-failed-to-module "report_failed_batches $f0 -> $(st report_failed_batches)"
if grep -q "^PASS_DONE" /tmp/h1.log && grep -q "kind=HELD.*last=1" /tmp/h1.log &&
	[ "$(st hold_released_bytes)" -gt "$r0" ] && [ "$(st hold_bytes)" = 0 ]; then
	ok hint-pass-release
else
	ko hint-pass-release "hold_bytes $(st hold_bytes) released $r0 -> $(st hold_released_bytes)"
fi
grep -q "^STATS free_bytes=[1-9]" /tmp/h1.log && grep -q "kind=HINT" /tmp/h1.log &&
	ok snapshot-stats || ko snapshot-stats "no Stats or HINT batch"
[ $arc = 0 ] && grep -q "stopping: SIGTERM" /tmp/a1.log && ok sigterm-clean ||
	ko sigterm-clean "agent exit $arc"

# Scenario 2: the host drops the link with batches in flight, then sends
# garbage; the agent hangs up and reconnects. Batches in flight when the
# link dropped may be being discarded by the host until their deadline:
# the agent answers "fail" only once their lease (send + grace_ms) is
# over, and the module, which keeps read batches while the file is open,
# never times them out.
f0=$(st report_failed_batches)
t0=$(st report_timeouts)
fh-testhost -l unix:/tmp/h2.sock --drop-after 2 --garbage 2 \
	--until-connections 3 --until-reported 2 --timeout 120 >/tmp/h2.log 2>&1 &
H=$!
sleep 0.3
freehint-agent -d -v --transport unix --unix-path /tmp/h2.sock \
	--report-defer-rate 0 \
	--backoff-max 2000 >/tmp/a2.log 2>&1 &
A=$!
wait $H
hrc=$?
show host2 /tmp/h2.log
if [ $hrc = 0 ] && kill -0 $A && grep -q "too many protocol errors" /tmp/a2.log &&
	grep -q "^ERROR code=9 fatal=1" /tmp/h2.log; then
	ok disconnect-garbage-reconnect
else
	ko disconnect-garbage-reconnect "fh-testhost exit $hrc"
	show agent2 /tmp/a2.log
fi
# The module's grace (report_grace_ms, 10 s by default) from the send.
wait_for /tmp/a2.log "lease over, given back" 20
if [ "$(st report_failed_batches)" -gt "$f0" ] &&
	[ "$(st report_timeouts)" = "$t0" ] &&
	grep -q "lease over, given back" /tmp/a2.log; then
	ok disconnect-inflight-failed-after-lease
else
	ko disconnect-inflight-failed-after-lease "report_failed_batches $f0 -> $(st report_failed_batches), timeouts $t0 -> $(st report_timeouts)"
	show agent2 /tmp/a2.log
fi
kill -TERM $A
wait $A

# Scenario 3: the host goes away in the middle of a hint pass. Order 0:
# the pass skips what page reporting took, and by now that may be every
# larger block; small ones are always left.
fh-testhost -l unix:/tmp/h3.sock --hint-after 1 --pass-limit 64M \
	--pass-min-order 0 \
	--batch-ranges 8 --drop-after-held 1 --until-lost 1 --timeout 120 \
	>/tmp/h3.log 2>&1 &
H=$!
sleep 0.3
freehint-agent -d -v --transport unix --unix-path /tmp/h3.sock \
	--report-defer-rate 0 \
	>/tmp/a3.log 2>&1 &
A=$!
wait $H
hrc=$?
# In-flight blocks come back after the module's grace.
sleep $(($(cat /sys/module/freehint/parameters/report_grace_ms) / 1000 + 1))
if [ $hrc = 0 ] && [ "$(st hold_bytes)" = 0 ] && kill -0 $A &&
	grep -q "kind=HELD ranges=[1-9]" /tmp/h3.log &&
	grep -q "released (host disconnected)" /tmp/a3.log; then
	ok hint-pass-disconnect-releases
else
	ko hint-pass-disconnect-releases "exit $hrc, hold_bytes $(st hold_bytes)"
	show host3 /tmp/h3.log
	show agent3 /tmp/a3.log
fi
kill -TERM $A
wait $A

# Scenario 3b: a pass that captures nothing (no block fits 1 KiB) ends
# with an empty last batch, which waits for the host's Ack: it has no
# lease to expire at once as if the host had not answered.
fh-testhost -l unix:/tmp/h3b.sock --hint-after 1 --pass-limit 1K \
	--pass-min-order 0 --until-passes 1 --timeout 120 >/tmp/h3b.log 2>&1 &
H=$!
sleep 0.3
freehint-agent -d -v --transport unix --unix-path /tmp/h3b.sock \
	--report-defer-rate 0 >/tmp/a3b.log 2>&1 &
A=$!
wait $H
hrc=$?
sleep 0.5
if [ $hrc = 0 ] && grep -q "^PASS_DONE .*held_bytes=0" /tmp/h3b.log &&
	grep -q "kind=HELD ranges=0 .*last=1" /tmp/h3b.log &&
	grep -q "captured in" /tmp/a3b.log &&
	! grep -q "within the lease\|within its lease" /tmp/a3b.log; then
	ok hint-pass-empty-acked
else
	ko hint-pass-empty-acked "fh-testhost exit $hrc"
	show host3b /tmp/h3b.log
	show agent3b /tmp/a3b.log
fi
kill -TERM $A
wait $A

# Scenario 4: SIGTERM while the host keeps a pass: released on the way out.
fh-testhost -l unix:/tmp/h4.sock --hint-after 1 --pass-limit 32M \
	--pass-min-order 0 --keep-pass --until-passes 2 --timeout 120 \
	>/tmp/h4.log 2>&1 &
H=$!
sleep 0.3
freehint-agent -d --transport unix --unix-path /tmp/h4.sock \
	--report-defer-rate 0 >/tmp/a4.log 2>&1 &
A=$!
wait_for /tmp/h4.log PASS_DONE 60
sleep 0.5
held=$(st hold_bytes)
kill -TERM $A
wait $A
arc=$?
sleep 3
if [ "$held" -gt 0 ] && [ "$(st hold_bytes)" = 0 ] && [ $arc = 0 ] &&
	grep -q "released (agent stops)" /tmp/a4.log; then
	ok sigterm-releases-hold
else
	ko sigterm-releases-hold "held $held, then $(st hold_bytes), exit $arc"
	show agent4 /tmp/a4.log
fi
kill $H
wait $H

# Scenario 5: real AF_VSOCK over vsock_loopback, chosen by --transport
# auto after a SIGHUP reload: the agent starts on a dead unix path.
printf 'transport unix\nunix-path /tmp/nobody.sock\nvsock-cid 1\nreport-defer-rate 0\n' \
	>/tmp/a5.conf
fh-testhost -l vsock:7700 --until-reported 2 --timeout 120 >/tmp/h5.log 2>&1 &
H=$!
sleep 0.3
freehint-agent -d -v -f /tmp/a5.conf --vsock-port 7700 >/tmp/a5.log 2>&1 &
A=$!
# A SIGHUP before the agent has its handler would kill it: wait for it.
wait_for /tmp/a5.log "started (unix)" 60
sleep 1
printf 'transport auto\nvsock-cid 1\nreport-defer-rate 0\n' >/tmp/a5.conf
kill -HUP $A
wait $H
hrc=$?
if [ $hrc = 0 ] && grep -q "configuration reloaded, reconnecting" /tmp/a5.log &&
	grep -q "connected over vsock 1:7700" /tmp/a5.log; then
	ok reload-vsock-loopback-auto
else
	ko reload-vsock-loopback-auto "fh-testhost exit $hrc"
	show host5 /tmp/h5.log
	show agent5 /tmp/a5.log
fi
kill -TERM $A
wait $A

# Scenario 6: report-defer-rate (16 MiB/s here, well under the churn's
# rate; off by default). While a churn with no pauses allocates faster than
# that, kernel batches are failed back and nothing is sent; once it stops,
# the memory it left free is reported after all.
kill $CHURN
wait $CHURN 2>/dev/null
(while :; do fhmem dirty 48 >/dev/null 2>&1; done) &
CHURN=$!
fh-testhost -l unix:/tmp/h6.sock --until-reported 1 --timeout 120 \
	>/tmp/h6.log 2>&1 &
H=$!
sleep 0.3
a0=$(st report_acked_bytes)
freehint-agent -d -v --transport unix --unix-path /tmp/h6.sock \
	--report-defer-rate 16 >/tmp/a6.log 2>&1 &
A=$!
# The module may still keep scenario 5's last batch through its grace time.
wait_for /tmp/a6.log "failed back: the guest is allocating fast" 40
sleep 3
d=$(grep -c "failed back: the guest is allocating fast" /tmp/a6.log)
a1=$(st report_acked_bytes)
if [ "$d" -ge 1 ] && [ "$a1" = "$a0" ] && kill -0 $H; then
	ok defer-while-allocating-fast
else
	ko defer-while-allocating-fast "$d deferred, acked $a0 -> $a1"
	show agent6 /tmp/a6.log
fi
kill $CHURN
wait $CHURN 2>/dev/null
wait $H
hrc=$?
# fh-testhost exits 0 once a REPORTED batch came (it leaves without
# waiting for its Ack to reach the module).
if [ $hrc = 0 ]; then
	ok reported-once-quiet
else
	ko reported-once-quiet "fh-testhost exit $hrc"
	show host6 /tmp/h6.log
	show agent6 /tmp/a6.log
fi
kill -TERM $A
wait $A

# Scenario 7: memory freed while no agent runs. The kernel's pass finds no
# reader and goes idle until some later large free; the agent's "rearm"
# at its first connection gets it reported (unless the kernel was about
# to look anyway: the module's own test, fhreport, checks the rearm of an
# idle kernel).
sleep 3
fhmem dirty 64 >/dev/null 2>&1
sleep 4
r0=$(st report_rearms) b0=$(st report_batches)
fh-testhost -l unix:/tmp/h7.sock --until-reported 1 --timeout 60 \
	>/tmp/h7.log 2>&1 &
H=$!
sleep 0.3
freehint-agent -d -v --transport unix --unix-path /tmp/h7.sock \
	>/tmp/a7.log 2>&1 &
A=$!
wait $H
hrc=$?
if [ $hrc = 0 ] && [ "$(st report_batches)" -gt "$b0" ] &&
	grep -q "asked the kernel to re-arm page reporting" /tmp/a7.log; then
	ok rearm-reports-what-was-freed-before
else
	ko rearm-reports-what-was-freed-before "fh-testhost exit $hrc, rearms $r0 -> $(st report_rearms)"
	show host7 /tmp/h7.log
	show agent7 /tmp/a7.log
fi
kill -TERM $A
wait $A
exit $FAILED
