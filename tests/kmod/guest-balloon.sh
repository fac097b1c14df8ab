# Guest side of the "reporting already taken" test: virtio_balloon with
# free page reporting registers first, freehint must still load, leave
# the balloon alone and say who owns page reporting.
. /lib/freehint/guest-lib.sh
modprobe virtio_balloon || { echo "FAIL balloon-modprobe: no virtio_balloon"; exit 1; }
if insmod /lib/freehint/freehint.ko; then
	echo "PASS balloon-insmod-still-loads"
else
	echo "FAIL balloon-insmod-still-loads: insmod failed"; exit 1
fi
if grep -q "^report_registered 0" /proc/freehint/stats; then
	echo "PASS balloon-report-registered-0"
else
	echo "FAIL balloon-report-registered-0: $(grep report_registered /proc/freehint/stats)"; st=1
fi
if dmesg | grep -q "freehint: page reporting unavailable"; then
	echo "PASS balloon-dmesg-says-so"
else
	echo "FAIL balloon-dmesg-says-so: no message"; st=1
fi
if cat /proc/freehint/report 2>/dev/null; then
	echo "FAIL balloon-report-open-enodev: open succeeded"; st=1
else
	echo "PASS balloon-report-open-enodev"
fi
balloon_bound balloon
[ "$(stat_of report_owner)" = other ] && ok balloon-owner-other ||
	no balloon-owner-other "report_owner $(stat_of report_owner)"
[ "$(stat_of report_off_reason)" = balloon ] && ok balloon-off-reason ||
	no balloon-off-reason "report_off_reason $(stat_of report_off_reason)"
head -3 /proc/freehint/blocks >/dev/null && rmmod freehint && echo "PASS balloon-rmmod" ||
	{ echo "FAIL balloon-rmmod: rmmod failed"; st=1; }
exit $st
