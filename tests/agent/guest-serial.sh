#!/bin/sh
# Inside the guest: freehint-agent over a real virtio-serial port to
# fh-testhost on the build machine, which connects only after a while:
# meanwhile the port reads EOF and the agent must back off, not spin.
set -u
FAILED=0
ok() { echo "PASS agent-serial-$1"; }
ko() { echo "FAIL agent-serial-$1: $2"; FAILED=1; }
st() { awk -v k="$1" '$1 == k { print $2 }' /proc/freehint/stats; }

insmod /lib/freehint/freehint.ko || { ko insmod "insmod failed"; exit 1; }
[ -e /dev/virtio-ports/org.freehint.agent.0 ] || ko port "no virtio port"
(while :; do fhmem dirty 48 >/dev/null 2>&1; sleep 0.3; done) &
CHURN=$!
a0=$(st report_acked_bytes)
freehint-agent -d -v --transport virtio-serial --backoff-max 2000 \
	>/tmp/a.log 2>&1 &
A=$!
sleep 6
n=$(grep -c "retry in" /tmp/a.log)
# 6 s with a 2 s cap: a handful of attempts, never a spin.
if kill -0 $A && [ "$n" -ge 1 ] && [ "$n" -le 12 ]; then
	ok no-host-backoff
else
	ko no-host-backoff "$n retries in 6 s"
fi
echo "FHSERIAL READY"
i=0
while [ "$(st report_acked_bytes)" -le "$a0" ] && [ $i -lt 900 ]; do
	sleep 0.1
	i=$((i + 1))
done
sleep 1
if [ "$(st report_acked_bytes)" -gt "$a0" ] &&
	grep -q "connected over virtio-serial /dev/virtio-ports/org.freehint.agent.0" /tmp/a.log; then
	ok report-roundtrip
else
	ko report-roundtrip "report_acked_bytes $a0 -> $(st report_acked_bytes)"
fi
kill -TERM $A
wait $A
rc=$?
[ $rc = 0 ] && ok sigterm || ko sigterm "exit $rc"
sed 's/^/  agent| /' /tmp/a.log | grep -v "retry in" | tail -n 30
kill $CHURN
exit $FAILED
