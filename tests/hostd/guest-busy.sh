# Guest side of tests/checks.d/56-hostd-busy.sh: a busy guest. fhfill
# takes 280 MiB; then fhchurn starts to allocate, check and free 40 MiB
# over and over, and keeps on while fhfill frees its 280 MiB. The agent
# runs with its defaults. "FH <step>" lines are the host's cues. (A churn
# that runs while the 280 MiB are being taken leaves its pages among
# them, and the freed memory in pieces below the kernel's reporting
# order, which no page reporting gives back.)
insmod /lib/freehint/freehint.ko || exit 1
# The kernel turns huge pages off below 512 MiB of RAM; fhchurn asks for
# them (madvise), as large heaps do, and so allocates fast.
echo madvise >/sys/kernel/mm/transparent_hugepage/enabled
freehint-agent -d -v --transport virtio-serial >/run/agent.log 2>&1 &
agent=$!
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
grep -E "report batch" /run/agent.log | tail -n 30
cat /proc/buddyinfo
grep -E "^report_" /proc/freehint/stats
kill $agent
wait $agent
exit $rc
