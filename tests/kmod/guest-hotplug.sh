# Guest side of the hot-unplug test. The VM has a virtio-mem-pci device with
# nothing plugged and memhp_default_state=offline on the command line. The
# host plugs 384 MiB (three 128 MiB memory blocks) when it reads "FHHP
# plug"; the last is onlined into ZONE_MOVABLE while snapshots are read in
# a loop and holds capture; a capture then takes nothing from it. The other
# two are onlined into ZONE_NORMAL and captured: offlining one fails while
# a batch in it is in flight and succeeds once that is answered (the
# memory notifier gives the held blocks back). At "FHHP unplug keep=KEEP" the
# host asks for all but KEEP bytes back (a Normal block the kernel put a
# slab page in cannot be unplugged), with the capture still held and
# snapshots read in a loop: the unplug must complete. The captures skip
# reported blocks, as the agent's do (movable allocations, docs/kmod.md).
. /lib/freehint/guest-lib.sh
MEM=/sys/devices/system/memory
memtotal() { awk '$1 == "MemTotal:" { print $2 }' /proc/meminfo; }
# Free pages of ZONE_MOVABLE (0 while it is empty).
movable_free() {
	awk '/^Node/ { z = ($4 == "Movable") } z && $1 == "pages" && $2 == "free" { print $3; exit }' /proc/zoneinfo
}
offline_blocks() {
	for b in $MEM/memory*; do
		[ "$(cat "$b/state")" = offline ] && echo "${b##*memory}"
	done | sort -n
}
# wait_until SECONDS COMMAND...: poll every 0.2 s.
wait_until() {
	n=$(($1 * 5)) i=0
	shift
	while [ $i -lt $n ]; do
		"$@" 2>/dev/null && return 0
		sleep 0.2
		i=$((i + 1))
	done
	return 1
}
three_offline() { [ "$(offline_blocks | wc -l)" -ge 3 ]; }
mem_ge() { [ "$(memtotal)" -ge "$1" ]; }
mem_le() { [ "$(memtotal)" -le "$1" ]; }

modprobe virtio_mem || { no hotplug-modprobe "modprobe virtio_mem failed"; exit 1; }
insmod /lib/freehint/freehint.ko hold_timeout_ms=600000 report_grace_ms=1000 ||
	{ no hotplug-insmod "insmod failed"; exit 1; }
m0=$(memtotal)
(while :; do cat /proc/freehint/blocks >/dev/null || exit 1; done) &
snap=$!
/bin/fhbusy hold >/tmp/fhbusy.log 2>&1 &
busy=$!

echo "FHHP plug"
wait_until 180 three_offline || { no hotplug-plugged "no 3 offline memory blocks"; exit 1; }
set -- $(offline_blocks)
ba=$1 bb=$2 bm=$3
echo online_movable >$MEM/memory$bm/state || no hotplug-online-movable "memory$bm"
if wait_until 60 mem_ge $((m0 + 120 * 1024)); then
	ok hotplug-plugged
else
	no hotplug-plugged "MemTotal $(memtotal) kB, was $m0 kB"
fi
sleep 3
kill $busy
wait $busy 2>/dev/null

# A capture held across unplug: nothing of it from ZONE_MOVABLE.
mf0=$(movable_free)
exec 3<>/proc/freehint/hold
echo "capture min_order=0 limit=64M skip_reported" >&3 || no hotplug-capture "capture failed"
mf1=$(movable_free)
echo "hotplug: held $(stat_of hold_bytes) bytes; Movable free pages $mf0 -> $mf1"
if [ "$(stat_of hold_bytes)" -gt 0 ] && [ "$mf1" -ge $((mf0 - 4096)) ]; then
	ok hotplug-hold-not-movable
else
	no hotplug-hold-not-movable "Movable free pages $mf0 -> $mf1, hold_bytes $(stat_of hold_bytes)"
fi

echo release >&3

# The other two blocks go to ZONE_NORMAL and are captured at once. The
# kernel's own unmovable allocations go to ZONE_NORMAL as soon as it
# exists, and a block with one of them cannot go offline whatever freehint
# does: the snapshot loop (which forks) pauses, the capture takes the zone
# down to its low watermark, and with two blocks one usually stays clean.
kill -STOP $snap
echo 0 >/sys/module/freehint/parameters/hold_reserve_mb
echo online_kernel >$MEM/memory$ba/state &&
	echo online_kernel >$MEM/memory$bb/state &&
	echo "capture min_order=0 limit=320M skip_reported" >&3 ||
	no hotplug-online-kernel-capture "memory$ba, memory$bb"
echo 32 >/sys/module/freehint/parameters/hold_reserve_mb
bs=$(($(sed 's/^/0x/' $MEM/block_size_bytes) / 4096))
echo "hotplug: MemTotal $m0 -> $(memtotal) kB; memory$ba $(cat $MEM/memory$ba/valid_zones), memory$bb $(cat $MEM/memory$bb/valid_zones), memory$bm $(cat $MEM/memory$bm/valid_zones); held $(stat_of hold_bytes) bytes"
batch=$(dd bs=4096 count=1 <&3 2>/dev/null)
id=$(echo "$batch" | awk 'NR == 1 { print $2 }')
pfn=$(echo "$batch" | awk 'NR == 2 { print $1 }')
# The block with the in-flight batch first, then the other one.
if [ -n "$pfn" ] && [ $((pfn / bs)) = "$bb" ]; then
	bn=$bb bo=$ba
else
	bn=$ba bo=$bb
fi
echo "hotplug: batch $id in flight, first block $pfn (memory$((pfn / bs)))"

# Every held block, "0xPFN ORDER" per line, for telling whose page an
# isolation failure showed: batch $id stays in flight, the others are read
# and failed at once (then they are "done", still held).
echo "$batch" | awk 'NR > 1' >/tmp/held
while b=$(dd bs=4096 count=1 <&3 2>/dev/null) && [ -n "$b" ]; do
	echo "$b" | awk 'NR > 1' >>/tmp/held
	echo "fail $(echo "$b" | awk 'NR == 1 { print $2 }')" >&3
done
echo "hotplug: $(wc -l </tmp/held) held blocks listed"

# offline_try BLOCK: 0 if it went offline; 1 if refused after isolating
# it (freehint's notifier, or its in-flight pages); 2 if the isolation
# refused a page that is not in a held block (a kernel allocation in a
# ZONE_NORMAL block: then this block proves nothing); 3 if it refused a
# page of a held block.
offline_try() {
	d0=$(dmesg | grep -c "page dumped because")
	echo offline >$MEM/memory$1/state 2>/dev/null && return 0
	dmesg | grep "page dumped because" | tail -n +$((d0 + 1)) | grep -q . || return 1
	p=$(dmesg | sed -n 's/.* pfn:\(0x[0-9a-f]*\).*/\1/p' | tail -n 1)
	echo "hotplug: memory$1 refused at pfn $p: $(dmesg | grep 'flags:' | tail -n 1)"
	while read -r s o; do
		[ $((p)) -ge $((s)) ] && [ $((p)) -lt $((s + (1 << o))) ] && return 3
	done </tmp/held
	return 2
}
if [ $((pfn / bs)) = "$bn" ]; then
	offline_try $bn
	rc=$?
	if [ $rc = 1 ]; then
		ok hotplug-offline-refused-in-flight
	elif [ $rc = 2 ]; then
		echo "SKIP hotplug-offline-refused-in-flight: a kernel slab page is in memory$bn"
	else
		no hotplug-offline-refused-in-flight "memory$bn: offline_try returned $rc, wanted 1"
	fi
	echo "fail $id" >&3 || no hotplug-fail-batch "fail $id refused"
else
	no hotplug-offline-refused-in-flight "the in-flight batch $id is in no Normal block ($pfn)"
fi
o0=$(stat_of hold_offlined_bytes)
offline_try $bn
rc=$?
if [ $rc = 2 ]; then
	echo "hotplug: a kernel slab page is in memory$bn, trying memory$bo"
	offline_try $bo
	rc=$?
fi
echo "hotplug: hold_offlined_bytes $o0 -> $(stat_of hold_offlined_bytes), hold_bytes $(stat_of hold_bytes)"
if [ $rc = 0 ] && [ "$(stat_of hold_offlined_bytes)" -gt "${o0:-0}" ]; then
	ok hotplug-offline-with-hold
elif [ $rc = 2 ]; then
	echo "SKIP hotplug-offline-with-hold: kernel slab pages in both Normal blocks"
else
	no hotplug-offline-with-hold "offline_try returned $rc, hold_offlined_bytes $o0 -> $(stat_of hold_offlined_bytes)"
	dmesg | grep -A3 "page:" | tail -n 4
fi
# Both Normal blocks offline before the unplug (the notifier gives the
# held blocks back), except one that keeps a kernel slab page: virtio-mem
# could not unplug that one with or without freehint, so it stays plugged.
keep=0
for b in $ba $bb; do
	[ "$(cat $MEM/memory$b/state)" = online ] || continue
	offline_try $b
	rc=$?
	if [ $rc = 2 ]; then
		echo "hotplug: memory$b keeps a kernel slab page and stays plugged"
		keep=$((keep + bs * 4096))
	elif [ $rc != 0 ]; then
		no hotplug-offline-normal "memory$b: offline_try returned $rc"
	fi
done
kill -CONT $snap

echo "FHHP unplug keep=$keep end"
if wait_until 240 mem_le $((m0 + keep / 1024 + 8 * 1024)); then
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
