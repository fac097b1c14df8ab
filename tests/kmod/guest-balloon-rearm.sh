# Guest side of the rearm test: freehint owns page reporting (no balloon at
# boot), then the host hot-plugs a free-page-reporting balloon when it reads
# "FHBR add". The next "rearm" must give the slot up, so that
# virtio_balloon binds.
. /lib/freehint/guest-lib.sh
insmod /lib/freehint/freehint.ko || { no balloon-rearm-insmod "insmod failed"; exit 1; }
[ "$(stat_of report_owner)" = freehint ] && ok balloon-rearm-owner-freehint-first ||
	no balloon-rearm-owner-freehint-first "report_owner $(stat_of report_owner)"
# The first reporting pass (2 s after registering) finds no reader and
# ends at once; rearm does nothing while a pass is due or running.
sleep 4
echo "FHBR add"
i=0
until grep -qs 0x0005 /sys/bus/virtio/devices/*/device || [ $i -ge 300 ]; do
	sleep 0.2
	i=$((i + 1))
done
if grep -qs 0x0005 /sys/bus/virtio/devices/*/device; then
	ok balloon-rearm-device-appeared
else
	no balloon-rearm-device-appeared "no virtio balloon device after 60 s"
	exit 1
fi
exec 4<>/proc/freehint/report
i=0
while [ "$(stat_of report_registered)" = 1 ] && [ $i -lt 20 ]; do
	echo rearm >&4
	sleep 1
	i=$((i + 1))
done
echo "stats: $(grep -E '^report_(registered|owner|off_reason|rearms) ' /proc/freehint/stats | tr '\n' ' ')"
[ "$(stat_of report_registered)" = 0 ] && [ "$(stat_of report_off_reason)" = balloon ] &&
	ok balloon-rearm-gives-slot-up ||
	no balloon-rearm-gives-slot-up "report_registered $(stat_of report_registered), report_off_reason $(stat_of report_off_reason)"
exec 4>&-
modprobe virtio_balloon || no balloon-rearm-modprobe "modprobe virtio_balloon failed"
balloon_bound balloon-rearm
[ "$(stat_of report_owner)" = other ] && ok balloon-rearm-owner-other ||
	no balloon-rearm-owner-other "report_owner $(stat_of report_owner)"
rmmod freehint || no balloon-rearm-rmmod "rmmod failed"
dmesg_clean balloon-rearm-dmesg-clean
exit $st
