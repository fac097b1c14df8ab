# Guest side of tests/checks.d/56-hostd-busy.sh: a busy guest. fhfill
# takes 280 MiB; then fhchurn starts to allocate, check and free 40 MiB
# over and over, and keeps on while fhfill frees its 280 MiB. With
# fhbusy.ref=qemu on the command line the guest gives its memory back
# through QEMU's free-page-reporting (virtio_balloon), the reference;
# otherwise through freehint.ko and the agent, on their defaults. "FH
# <step>" lines are the host's cues. (A churn that runs while the 280 MiB
# are being taken leaves its pages among them, and the freed memory in
# pieces below the kernel's reporting order, which no page reporting
# gives back.)
ref=
grep -q 'fhbusy.ref=qemu' /proc/cmdline && ref=qemu
if [ "$ref" = qemu ]; then
	modprobe virtio_balloon || exit 1
else
	insmod /lib/freehint/freehint.ko || exit 1
fi
# The kernel turns huge pages off below 512 MiB of RAM; fhchurn asks for
# them (madvise), as large heaps do, and so allocates fast.
echo madvise >/sys/kernel/mm/transparent_hugepage/enabled
if [ -z "$ref" ]; then
	freehint-agent -d -v --transport virtio-serial >/run/agent.log 2>&1 &
	agent=$!
fi
fhfill 280 14 >/run/fill.log 2>&1 &
fill=$!
while ! grep -q filled /run/fill.log; do sleep 0.2; done
echo "FH FILLED $(cut -d" " -f1 /proc/uptime)"
fhchurn 40 45 >/run/churn.log 2>&1 &
churn=$!
wait $fill
echo "FH FREED $(cut -d" " -f1 /proc/uptime)"
cat /run/fill.log
sleep 20
echo "FH MEASURED"
wait $churn
rc=$?
cat /run/churn.log
cat /proc/buddyinfo
[ -n "$ref" ] && exit $rc
grep -E "report batch|re-arm|not sent" /run/agent.log | tail -n 40
grep -E "^report_" /proc/freehint/stats
kill $agent
wait $agent
exit $rc
