#!/bin/sh
# Inside the guest: freehint-agent over a real virtio-serial port to
# fh-testhost on the build machine, which connects only after a while:
# meanwhile the port reads EOF and the agent must back off, not spin.
# Then freehintd's vsock listener over vsock_loopback: an unknown CID is
# refused.
set -u
FAILED=0
ok() { echo "PASS agent-serial-$1"; }
ko() { echo "FAIL agent-serial-$1: $2"; FAILED=1; }
st() { awk -v k="$1" '$1 == k { print $2 }' /proc/freehint/stats; }
# wait_log FILE PATTERN TENTHS: until FILE has PATTERN, or TENTHS tenths
# of a second.
wait_log() {
	i=0
	until grep -q "$2" "$1" || [ $i -ge "$3" ]; do
		sleep 0.1
		i=$((i + 1))
	done
}

insmod /lib/freehint/freehint.ko || { ko insmod "insmod failed"; exit 1; }
[ -e /dev/virtio-ports/org.freehint.agent.0 ] || ko port "no virtio port"
(while :; do fhmem dirty 48 >/dev/null 2>&1; sleep 0.3; done) &
CHURN=$!
a0=$(st report_acked_bytes)
freehint-agent -d -v --transport virtio-serial --backoff-max 2000 \
	--report-defer-rate 0 \
	>/tmp/a.log 2>&1 &
A=$!
# From its first retry (a loaded TCG guest may take seconds to get
# there), 10 s with a 2 s cap: a handful of attempts, never a spin.
wait_log /tmp/a.log "retry in" 600
n0=$(grep -c "retry in" /tmp/a.log)
sleep 10
n=$(($(grep -c "retry in" /tmp/a.log) - n0))
if kill -0 $A && [ "$n0" -ge 1 ] && [ "$n" -ge 1 ] && [ "$n" -le 15 ]; then
	ok no-host-backoff
else
	ko no-host-backoff "$n retries in 10 s after the first ($n0)"
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

# freehintd's AF_VSOCK listener, for real, inside this guest (never on the
# build machine): over vsock_loopback the agent's peer CID is 1, which no
# VM owns, so freehintd must refuse each connection and log it, and the
# agent must back off and keep trying, neither side dying of it.
modprobe vsock_loopback || ko vsock-loopback "modprobe failed"
freehintd -d -v --vsock-port 7701 --control /tmp/fhd.ctl \
	--vm name=nine,qmp=/tmp/none.qmp,cid=9 >/tmp/d.log 2>&1 &
D=$!
wait_log /tmp/d.log "listening on vsock port 7701" 50
freehint-agent -d -v --transport vsock --vsock-cid 1 --vsock-port 7701 \
	--backoff-max 1000 >/tmp/av.log 2>&1 &
A=$!
sleep 5
n=$(grep -c "vsock: connection from unknown cid 1 refused" /tmp/d.log)
r=$(grep -c "retry in" /tmp/av.log)
st_line=$(freehintctl -s /tmp/fhd.ctl status 2>&1 | awk '$1 == "nine"')
# 5 s with a 1 s cap: a few refused attempts, no spin, nobody served.
if kill -0 $D && kill -0 $A && [ "$n" -ge 2 ] && [ "$n" -le 12 ] &&
	[ "$r" -ge 2 ] && ! grep -q "welcomed" /tmp/av.log &&
	[ "$(echo "$st_line" | awk '{ print $2 }')" = no ]; then
	ok vsock-unknown-cid-refused
else
	ko vsock-unknown-cid-refused "$n refusals, $r agent retries, status: $st_line"
	sed 's/^/  freehintd| /' /tmp/d.log | tail -n 20
	sed 's/^/  agent-vsock| /' /tmp/av.log | tail -n 20
fi
kill -TERM $A
wait $A
arc=$?

# --transport auto: vsock connects and freehintd refuses (no Welcome), so
# the next attempt goes to virtio-serial first, where the host's test peer
# (started on "FHSERIAL AUTO") welcomes it. Before, auto went back to
# vsock for ever.
echo "FHSERIAL AUTO"
freehint-agent -d -v --transport auto --vsock-cid 1 --vsock-port 7701 \
	--backoff-max 1000 >/tmp/aa.log 2>&1 &
AA=$!
wait_log /tmp/aa.log "welcomed" 300
if grep -q "auto tries virtio-serial first" /tmp/aa.log &&
	grep -q "virtio-serial.*welcomed" /tmp/aa.log; then
	ok auto-falls-back-to-serial
else
	ko auto-falls-back-to-serial "no Welcome over virtio-serial in 30 s"
	sed 's/^/  agent-auto| /' /tmp/aa.log | grep -v "retry in" | tail -n 20
fi
kill -TERM $AA $D
wait $AA
wait $D
drc=$?
[ $arc = 0 ] && [ $drc = 0 ] && ok vsock-sigterm ||
	ko vsock-sigterm "agent exit $arc, freehintd exit $drc"
kill $CHURN
exit $FAILED
