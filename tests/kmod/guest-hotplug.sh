# Guest side of the hot-unplug test. The VM has a virtio-mem-pci device with
# nothing plugged, and memhp_default_state=online_movable on the command
# line: plugged memory is onlined into ZONE_MOVABLE. The host plugs 256 MiB
# when it reads "FHHP plug" and asks for all of it back at "FHHP unplug".
# Meanwhile snapshots are read in a loop and holds capture; a hold must
# never take movable memory, and the unplug must complete.
. /lib/freehint/guest-lib.sh
memtotal() { awk '$1 == "MemTotal:" { print $2 }' /proc/meminfo; }
# Free pages of ZONE_MOVABLE (0 while it is empty).
movable_free() {
	awk '/^Node/ { z = ($4 == "Movable") } z && $1 == "pages" && $2 == "free" { print $3; exit }' /proc/zoneinfo
}
# wait_kb CMP KB SECONDS: until MemTotal is -ge/-le KB.
wait_kb() {
	i=0
	while [ $i -lt $(($3 * 5)) ]; do
		[ "$(memtotal)" "$1" "$2" ] && return 0
		sleep 0.2
		i=$((i + 1))
	done
	return 1
}

modprobe virtio_mem || { no hotplug-modprobe "modprobe virtio_mem failed"; exit 1; }
insmod /lib/freehint/freehint.ko hold_timeout_ms=600000 report_grace_ms=1000 ||
	{ no hotplug-insmod "insmod failed"; exit 1; }
m0=$(memtotal)
(while :; do cat /proc/freehint/blocks >/dev/null || exit 1; done) &
snap=$!
/bin/fhbusy hold >/tmp/fhbusy.log 2>&1 &
busy=$!

echo "FHHP plug"
if wait_kb -ge $((m0 + 200 * 1024)) 180; then
	ok hotplug-plugged
else
	no hotplug-plugged "MemTotal $(memtotal) kB, was $m0 kB"
fi
echo "hotplug: MemTotal $m0 -> $(memtotal) kB, Movable free $(movable_free) pages"
sleep 3
kill $busy
wait $busy 2>/dev/null

# A capture held across the unplug, one batch of it in flight.
mf0=$(movable_free)
exec 3<>/proc/freehint/hold
echo "capture min_order=0 limit=192M" >&3 || no hotplug-capture "capture failed"
mf1=$(movable_free)
echo "hotplug: held $(stat_of hold_bytes) bytes; Movable free pages $mf0 -> $mf1"
if [ "$(stat_of hold_bytes)" -gt 0 ] && [ "$mf1" -ge $((mf0 - 4096)) ]; then
	ok hotplug-hold-not-movable
else
	no hotplug-hold-not-movable "Movable free pages $mf0 -> $mf1, hold_bytes $(stat_of hold_bytes)"
fi
dd bs=4096 count=1 <&3 2>/dev/null | head -n 1

echo "FHHP unplug"
if wait_kb -le $((m0 + 8 * 1024)) 240; then
	ok hotplug-unplugged
else
	no hotplug-unplugged "MemTotal $(memtotal) kB, was $m0 kB before the plug"
fi
echo "hotplug: MemTotal $(memtotal) kB, hold_bytes $(stat_of hold_bytes), snapshots $(stat_of snapshots)"
if kill -0 $snap 2>/dev/null; then
	ok hotplug-snapshots-kept-working
else
	no hotplug-snapshots-kept-working "reading /proc/freehint/blocks failed"
fi
kill $snap
echo release >&3
exec 3>&-
rmmod freehint || no hotplug-rmmod "rmmod failed"
dmesg_clean hotplug-dmesg-clean
exit $st
