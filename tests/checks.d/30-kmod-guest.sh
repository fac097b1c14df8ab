#!/bin/sh
# freehint.ko for real: checkpatch --strict, then QEMU guests (TCG is fine);
# main, integrity and hotplug in parallel, with the small ones one after
# the other beside them:
#   main      blocks snapshot vs /proc/buddyinfo, report channel (ack, fail,
#             timeout + grace, EBUSY, poll), hold (capture, shrinker, no OOM,
#             in-flight kept, release, close + grace), rmmod with files open
#   integrity 60 s of checksummed memory churn under reporting and holds
#             with the scribbling module build (blocks filled with 0x5a as
#             soon as they are read)
#   hotplug   virtio-mem memory (onlined movable) plugged and unplugged
#             while snapshots are read in a loop and holds capture: holds
#             take no movable memory, the unplug completes (QEMU's
#             qom-get size reaches 0), no oops
#   balloon   virtio_balloon with free page reporting loaded first: freehint
#             still loads, the balloon stays bound and owns reporting
#   balloon-after  freehint loaded first: it leaves the slot free and the
#             balloon binds
#   balloon-rearm  freehint owns reporting, a reporting balloon is
#             hot-plugged (QMP device_add): rearm gives the slot up, the
#             balloon binds
#   poison    page_poison=1: no page reporting unless report_poison_ok=1
#   limits    blocks 0400 (a real uid 65534 open gets EACCES), the bounded
#             snapshot, bounded timeout parameters, limit= that would wrap
# Exit 0 pass, 77 skip, 1 fail. Logs in build/kmod-guest/.
set -u
cd "$(dirname "$0")/../.." || exit 1
FHROOT=$(pwd)
. tests/guest/lib.sh
guest_require kmod-guest

out=$FHROOT/build/kmod-guest
mkdir -p "$out"
kver=$(guest_kver)
[ -e "/lib/modules/$kver/build/Makefile" ] ||
	skip kmod-guest "no kernel headers for $kver"

start=$(date +%s)
if make -s kmod kmod-scribble kmod-tests >"$out/make.log" 2>&1; then
	pass kmod-build
else
	fail kmod-build "make kmod kmod-scribble kmod-tests failed:"
	tail -n 30 "$out/make.log"
	exit 1
fi

# checkpatch.pl and its data files come from Debian's linux-source tarball;
# extracting them takes ~10 s, so they are cached under build/.
cp_dir=$FHROOT/build/kernel-src/linux-source-6.1/scripts
src_tar=$(ls /usr/src/linux-source-6.1.tar.* 2>/dev/null | head -n 1)
if [ ! -f "$cp_dir/checkpatch.pl" ] && [ -n "$src_tar" ]; then
	mkdir -p "$FHROOT/build/kernel-src"
	tar -xf "$src_tar" -C "$FHROOT/build/kernel-src" \
		linux-source-6.1/scripts/checkpatch.pl \
		linux-source-6.1/scripts/spelling.txt \
		linux-source-6.1/scripts/const_structs.checkpatch
fi
if [ -f "$cp_dir/checkpatch.pl" ]; then
	srcs=$(ls kmod/*.c kmod/*.h | grep -v '\.mod\.c$')
	# CAMELCASE: the page type helpers (__SetPageOffline()...) are made
	# by token pasting in page-flags.h, which checkpatch cannot see, so
	# every user of them gets this CHECK (drivers/virtio/virtio_mem.c too).
	# shellcheck disable=SC2086
	if perl "$cp_dir/checkpatch.pl" --strict --no-tree --ignore CAMELCASE \
		-q -f $srcs >"$out/checkpatch.log" 2>&1; then
		pass kmod-checkpatch-strict
	else
		fail kmod-checkpatch-strict "see below"
		cat "$out/checkpatch.log"
	fi
else
	echo "SKIP kmod-checkpatch-strict: linux-source-6.1 tarball not installed"
fi

B=$FHROOT/build/tests/kmod
guest_build "$out/main.cpio.gz" -m kmod/freehint.ko -b "$B/fhsnap" \
	-b "$B/fhmem" -b "$B/fhreport" -b "$B/fhhold" \
	-s tests/kmod/guest-main.sh &&
guest_build "$out/integrity.cpio.gz" \
	-m "$FHROOT/build/kmod-scribble/freehint.ko:freehint-scribble.ko" \
	-b "$B/fhinteg" -s tests/kmod/guest-integrity.sh &&
guest_build "$out/hotplug.cpio.gz" -m kmod/freehint.ko -b "$B/fhbusy" \
	-f tests/kmod/guest-lib.sh:/lib/freehint/guest-lib.sh \
	-s tests/kmod/guest-hotplug.sh &&
guest_build "$out/limits.cpio.gz" -m kmod/freehint.ko -b "$B/fhuser" \
	-f tests/kmod/guest-lib.sh:/lib/freehint/guest-lib.sh \
	-s tests/kmod/guest-limits.sh ||
	{ fail kmod-initrd "mkinitrd.sh failed"; exit 1; }
for g in balloon balloon-after balloon-rearm poison; do
	guest_build "$out/$g.cpio.gz" -m kmod/freehint.ko \
		-f tests/kmod/guest-lib.sh:/lib/freehint/guest-lib.sh \
		-s "tests/kmod/guest-$g.sh" ||
		{ fail kmod-initrd "mkinitrd.sh failed"; exit 1; }
done

# The host side of the hotplug guest: plug 384 MiB at "FHHP plug", ask for
# all but KEEP bytes back at "FHHP unplug keep=KEEP end" and wait for QEMU's plugged
# size to get there (0 unless a kernel slab page pins a Normal block).
# Prints its own PASS/FAIL lines; returns the guest's status.
hp_log=$out/hotplug.log hp_qmp=$out/hotplug.qmp
hp_qmp_exec() { python3 tests/hostd/qmp.py "$hp_qmp" exec "$@"; }
hotplug_host() {
	rm -f "$hp_qmp" "$out/hotplug.pid"
	guest_run "$hp_log" "$out/hotplug.cpio.gz" -b -p "$out/hotplug.pid" \
		-q "$hp_qmp" -x 2G -t 540 -a "memhp_default_state=offline" \
		-- -object memory-backend-ram,id=vmem0,size=512M \
		-device virtio-mem-pci,id=vm0,memdev=vmem0,requested-size=0 \
		-action shutdown=pause ||
		return 125
	if wait_for 180 grep -a -q "FHHP plug" "$hp_log"; then
		hp_qmp_exec qom-set \
			'{"path": "vm0", "property": "requested-size", "value": 402653184}' >/dev/null
	fi
	if wait_for 300 grep -a -q "FHHP unplug keep=[0-9]* end" "$hp_log"; then
		# KEEP: a ZONE_NORMAL block with a kernel slab page in it.
		_hp_keep=$(sed -n 's/.*FHHP unplug keep=\([0-9][0-9]*\) end.*/\1/p' "$hp_log" | tail -n 1)
		echo "hotplug host: requested-size ${_hp_keep:-0}"
		hp_qmp_exec qom-set \
			"{\"path\": \"vm0\", \"property\": \"requested-size\", \"value\": ${_hp_keep:-0}}" >/dev/null ||
			echo "FAIL kmod-hotplug-requested-size: qom-set failed"
		_hp_i=0 _hp_size=
		while [ $_hp_i -lt 240 ]; do
			_hp_size=$(hp_qmp_exec qom-get '{"path": "vm0", "property": "size"}' 2>/dev/null)
			[ "$_hp_size" = "${_hp_keep:-0}" ] && break
			sleep 1
			_hp_i=$((_hp_i + 1))
		done
		if [ "$_hp_size" = "${_hp_keep:-0}" ]; then
			echo "hotplug host: size $_hp_size after $_hp_i s"
			echo "PASS kmod-hotplug-unplug-completes"
		else
			echo "FAIL kmod-hotplug-unplug-completes: virtio-mem size $_hp_size bytes 240 s after requested-size ${_hp_keep:-0}"
		fi
	fi
	wait_for 300 grep -a -q "FHGUEST EXIT" "$hp_log"
	_hp_st=$(sed -n 's/.*FHGUEST EXIT \([0-9][0-9]*\).*/\1/p' "$hp_log" | tail -n 1)
	# shutdown=pause kept QEMU for the queries above; a hung guest too.
	hp_qmp_exec quit >/dev/null 2>&1 ||
		kill "$(cat "$out/hotplug.pid")" 2>/dev/null
	return "${_hp_st:-124}"
}

# The host side of the balloon-rearm guest: hot-plug a balloon with free
# page reporting at "FHBR add". Returns the guest's status.
br_log=$out/balloon-rearm.log br_qmp=$out/balloon-rearm.qmp
balloon_rearm_host() {
	rm -f "$br_qmp" "$out/balloon-rearm.pid"
	guest_run "$br_log" "$out/balloon-rearm.cpio.gz" -b \
		-p "$out/balloon-rearm.pid" -q "$br_qmp" -t 240 || return 125
	if wait_for 120 grep -a -q "FHBR add" "$br_log"; then
		python3 tests/hostd/qmp.py "$br_qmp" exec device_add \
			'{"driver": "virtio-balloon-pci", "id": "bal0", "free-page-reporting": true}' >/dev/null ||
			echo "FAIL kmod-balloon-rearm-device-add: QMP device_add failed"
	fi
	wait_for 180 grep -a -q "FHGUEST EXIT" "$br_log"
	_br_st=$(sed -n 's/.*FHGUEST EXIT \([0-9][0-9]*\).*/\1/p' "$br_log" | tail -n 1)
	[ -n "$_br_st" ] || kill "$(cat "$out/balloon-rearm.pid")" 2>/dev/null
	return "${_br_st:-124}"
}

# The small guests one after the other; each one's status in NAME.rc.
small_guests() {
	guest_run "$out/balloon.log" "$out/balloon.cpio.gz" -t 120 \
		-- -device virtio-balloon-pci,free-page-reporting=on
	echo $? >"$out/balloon.rc"
	guest_run "$out/balloon-after.log" "$out/balloon-after.cpio.gz" -t 120 \
		-- -device virtio-balloon-pci,free-page-reporting=on
	echo $? >"$out/balloon-after.rc"
	balloon_rearm_host >"$out/balloon-rearm.host" 2>&1
	echo $? >"$out/balloon-rearm.rc"
	guest_run "$out/poison.log" "$out/poison.cpio.gz" -t 120 -a page_poison=1
	echo $? >"$out/poison.rc"
	guest_run "$out/limits.log" "$out/limits.cpio.gz" -t 180
	echo $? >"$out/limits.rc"
}

# init_on_alloc=0: Debian zeroes every allocation by default, which would
# hide both the "zero" work of a capture and stale data in reused pages.
echo "booting 8 guests (main, integrity, hotplug; balloon, balloon-after, balloon-rearm, poison, limits); about 4 min with TCG"
guest_run "$out/main.log" "$out/main.cpio.gz" -a init_on_alloc=0 -t 300 &
p_main=$!
guest_run "$out/integrity.log" "$out/integrity.cpio.gz" \
	-a init_on_alloc=0 -t 300 &
p_int=$!
hotplug_host >"$out/hotplug.host" 2>&1 &
p_hp=$!
rm -f "$out"/*.rc
small_guests &
p_small=$!

wait $p_small
for g in main:$p_main integrity:$p_int hotplug:$p_hp balloon: \
	balloon-after: balloon-rearm: poison: limits:; do
	name=${g%%:*}
	rc=0
	if [ -n "${g#*:}" ]; then
		wait "${g#*:}" || rc=$?
	else
		rc=$(cat "$out/$name.rc" 2>/dev/null || echo 125)
	fi
	log=$out/$name.log
	echo "--- guest $name (exit $rc, log $log)"
	tr -d '\r' <"$log" | grep -a -E '^(PASS|FAIL|SKIP) |^(report|hold|hotplug|integrity|buddyinfo|blocks|stats|after free|reallocated|rmmod)[: ]'
	if [ -f "$out/$name.host" ]; then
		cat "$out/$name.host"
		grep -q '^FAIL ' "$out/$name.host" && FH_FAILED=1
	fi
	if [ "$rc" -ne 0 ] && ! tr -d '\r' <"$log" | grep -a -q '^FAIL '; then
		fail "guest-$name" "guest exited $rc (124: timeout, 125: no FHGUEST EXIT line: crash?)"
		tr -d '\r' <"$log" | tail -n 30
	elif [ "$rc" -ne 0 ]; then
		FH_FAILED=1
	fi
done
echo "kmod guest tests took $(($(date +%s) - start)) s"
exit $FH_FAILED
