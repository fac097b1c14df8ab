# Guest side of tests/checks.d/30-kmod-guest.sh: snapshot, report and hold
# tests, then unload with files open. Runs as /test.sh in the guest.
fail=0
note() { echo "$*"; }
insmod /lib/freehint/freehint.ko report_timeout_ms=2000 report_grace_ms=1000 ||
	{ echo "FAIL kmod-insmod: insmod failed"; exit 1; }
echo "PASS kmod-insmod"
for t in buddyinfo appear minorder; do
	/bin/fhsnap $t || fail=1
done
/bin/fhreport 2000 1000 || fail=1
/bin/fhhold 1000 || fail=1

if dmesg | grep -E -q "invoked oom-killer|Out of memory|Killed process"; then
	echo "FAIL kmod-no-oom: the OOM killer ran"; fail=1
else
	echo "PASS kmod-no-oom"
fi

# Unload with a reader blocked in read(): removing the files waits for
# every read in progress, so the module must wake it first. rmmod must be
# done within the timeout plus the grace (2 + 1 s).
cat /proc/freehint/report >/dev/null 2>&1 &
reader=$!
sleep 1
t0=$(cut -d' ' -f1 /proc/uptime)
rmmod freehint &
rm_pid=$!
n=0
while kill -0 $rm_pid 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
if kill -0 $rm_pid 2>/dev/null; then
	echo "FAIL kmod-rmmod-blocked-reader: rmmod still running after 10 s"
	echo "FHGUEST EXIT 1"
	poweroff -f
fi
wait $rm_pid
rc=$?
t1=$(cut -d' ' -f1 /proc/uptime)
wait $reader 2>/dev/null
if [ $rc -eq 0 ]; then
	echo "rmmod with a blocked reader took $(awk "BEGIN { print $t1 - $t0 }") s"
	echo "PASS kmod-rmmod-blocked-reader"
else
	echo "FAIL kmod-rmmod-blocked-reader: rmmod exit $rc"; fail=1
fi
insmod /lib/freehint/freehint.ko report_timeout_ms=2000 report_grace_ms=1000 ||
	{ echo "FAIL kmod-reinsmod: insmod failed"; exit 1; }

# Unload with both channels open and a hold batch in flight: rmmod closes
# the files and waits for the grace period.
exec 3<>/proc/freehint/hold
echo "capture min_order=9 limit=16M" >&3
dd bs=4096 count=1 <&3 2>/dev/null | head -n 1
exec 4<>/proc/freehint/report
t0=$(cut -d' ' -f1 /proc/uptime)
if rmmod freehint; then
	t1=$(cut -d' ' -f1 /proc/uptime)
	echo "rmmod took $(awk "BEGIN { print $t1 - $t0 }") s"
	echo "PASS kmod-rmmod-while-open"
else
	echo "FAIL kmod-rmmod-while-open: rmmod failed"; fail=1
fi
if echo release >&3 2>/dev/null; then
	echo "FAIL kmod-file-dead-after-rmmod: write after rmmod succeeded"; fail=1
else
	echo "PASS kmod-file-dead-after-rmmod"
fi
exec 3>&- 4>&-
if insmod /lib/freehint/freehint.ko && grep -q "report_registered 1" /proc/freehint/stats &&
	rmmod freehint; then
	echo "PASS kmod-reload"
else
	echo "FAIL kmod-reload: second insmod/rmmod cycle failed"; fail=1
fi
if dmesg | grep -E -q "BUG:|WARNING:|Oops|general protection|list_(add|del) corruption"; then
	echo "FAIL kmod-dmesg-clean: kernel complained:"; dmesg | grep -E -A5 "BUG:|WARNING:|Oops"; fail=1
else
	echo "PASS kmod-dmesg-clean"
fi
exit $fail
