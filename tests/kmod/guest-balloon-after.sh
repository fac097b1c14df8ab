# Guest side of the other load order: freehint first, then virtio_balloon
# on a VM with a free-page-reporting balloon (virtio_pci is loaded by
# /init, so the balloon's virtio device exists but is not bound yet). The
# balloon must bind and own page reporting.
. /lib/freehint/guest-lib.sh
ls /sys/bus/virtio/drivers/virtio_balloon/ 2>/dev/null | grep -q '^virtio' &&
	no balloon-after-unbound-first "virtio_balloon already bound before the test"
insmod /lib/freehint/freehint.ko || { no balloon-after-insmod "insmod failed"; exit 1; }
ok balloon-after-insmod
echo "stats: $(grep -E '^report_(registered|owner|off_reason) ' /proc/freehint/stats | tr '\n' ' ')"
[ "$(stat_of report_registered)" = 0 ] && ok balloon-after-slot-left-free ||
	no balloon-after-slot-left-free "report_registered $(stat_of report_registered): freehint took the slot"
[ "$(stat_of report_off_reason)" = balloon ] && ok balloon-after-off-reason ||
	no balloon-after-off-reason "report_off_reason $(stat_of report_off_reason)"
modprobe virtio_balloon || no balloon-after-modprobe "modprobe virtio_balloon failed"
balloon_bound balloon-after
[ "$(stat_of report_owner)" = other ] && ok balloon-after-owner-other ||
	no balloon-after-owner-other "report_owner $(stat_of report_owner)"
rmmod freehint && ok balloon-after-rmmod || no balloon-after-rmmod "rmmod failed"
dmesg_clean balloon-after-dmesg-clean
exit $st
