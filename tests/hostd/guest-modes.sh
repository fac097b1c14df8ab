# Guest side of tests/checks.d/52-hostd-modes.sh: the module and the agent
# over virtio-serial; dirty and free 300 MiB, then keep printing the
# module's counters ("FHSTAT key value") while the host measures.
insmod /lib/freehint/freehint.ko || exit 1
mount -o remount,size=460M /tmp
dd if=/dev/urandom of=/run/seed bs=1M count=1 2>/dev/null
stats() {
	grep -E '^(page_poisoning|poison_value|init_on_free|init_on_alloc|report_acked_bytes|report_registered|report_off_reason|hold_bytes|hold_zeroed_pages) ' \
	    /proc/freehint/stats | sed 's/^/FHSTAT /'
}
stats
freehint-agent -d -v --transport virtio-serial >/run/agent.log 2>&1 &
sleep 2
echo "FH FILL"
i=0
while [ $i -lt 300 ]; do cat /run/seed; i=$((i + 1)); done >/tmp/fill
rm -f /tmp/fill
echo "FH FREED"
i=0
while [ $i -lt 240 ]; do
	sleep 1
	stats
	i=$((i + 1))
done
cat /run/agent.log
