#!/bin/sh
# Guest script of tests/kmod/migrate-loop.py (/test.sh of mkinitrd.sh):
# memory churn (fhmem dirties and frees 96 MiB every second) with freehint
# in one of these modes (kernel command line mig.mode=):
#   none       no module (the control)
#   idle       module loaded, nobody reads it
#   agent      module + freehint-agent on virtio-serial (no host attached:
#              it reads every report batch and fails it at once)
#   ack        module + fhbusy ack (every report batch acknowledged)
#   hold       module + fhbusy hold (capture/read/ack/release loop)
#   ackhold    both fhbusy loops
# Prints "FHMIG beat N UPTIME" every second: the host watches it advance.
mode=none
for a in $(cat /proc/cmdline); do
	case "$a" in mig.mode=*) mode=${a#*=} ;; esac
done
echo "FHMIG mode=$mode"
[ "$mode" = none ] || insmod /lib/freehint/freehint.ko ||
	echo "FHMIG no module"
case $mode in
agent) freehint-agent -d -v --transport virtio-serial >/tmp/agent.log 2>&1 & ;;
ack | ackhold) fhbusy ack & ;;
esac
case $mode in *hold) fhbusy hold & ;; esac
(while :; do fhmem dirty 96 >/dev/null; sleep 1; done) &
i=0
while :; do
	i=$((i + 1))
	echo "FHMIG beat $i $(cut -d' ' -f1 /proc/uptime)"
	sleep 1
done
