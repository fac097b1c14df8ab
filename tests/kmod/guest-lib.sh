# Shell helpers of the small guest scripts of 30-kmod-guest.sh (copied into
# the guest as /lib/freehint/guest-lib.sh; busybox sh).
st=0
ok() { echo "PASS $1"; }
no() { echo "FAIL $1: $2"; st=1; }
stat_of() { awk -v k="$1" '$1 == k { print $2 }' /proc/freehint/stats; }
# dmesg_clean NAME: no oops, warning or list corruption since boot.
dmesg_clean() {
	if dmesg | grep -E -q "BUG:|WARNING:|Oops|general protection|list_(add|del) corruption"; then
		no "$1" "kernel complained:"
		dmesg | grep -E -A5 "BUG:|WARNING:|Oops|general protection|corruption"
	else
		ok "$1"
	fi
}
# balloon_bound NAME: virtio_balloon is bound to a device and no probe failed.
balloon_bound() {
	if ls /sys/bus/virtio/drivers/virtio_balloon/ 2>/dev/null | grep -q '^virtio'; then
		ok "$1-balloon-bound"
	else
		no "$1-balloon-bound" "no device under /sys/bus/virtio/drivers/virtio_balloon/"
	fi
	if dmesg | grep -q "probe of .* failed"; then
		no "$1-no-probe-failure" "$(dmesg | grep 'probe of .* failed')"
	else
		ok "$1-no-probe-failure"
	fi
}
