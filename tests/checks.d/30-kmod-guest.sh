#!/bin/sh
# freehint.ko for real: checkpatch --strict, then three QEMU guests (TCG is
# fine) booted in parallel:
#   main      blocks snapshot vs /proc/buddyinfo, report channel (ack, fail,
#             timeout + grace, EBUSY, poll), hold (capture, shrinker, no OOM,
#             in-flight kept, release, close + grace), rmmod with files open
#   integrity 60 s of checksummed memory churn under reporting and holds
#             with the scribbling module build (blocks filled with 0x5a as
#             soon as they are read)
#   balloon   virtio_balloon owns page reporting: freehint still loads
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
	# shellcheck disable=SC2086
	if perl "$cp_dir/checkpatch.pl" --strict --no-tree -q -f $srcs >"$out/checkpatch.log" 2>&1; then
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
guest_build "$out/balloon.cpio.gz" -m kmod/freehint.ko \
	-s tests/kmod/guest-balloon.sh ||
	{ fail kmod-initrd "mkinitrd.sh failed"; exit 1; }

# init_on_alloc=0: Debian zeroes every allocation by default, which would
# hide both the "zero" work of a capture and stale data in reused pages.
echo "booting 3 guests (main, integrity, balloon); about 90 s with TCG"
guest_run "$out/main.log" "$out/main.cpio.gz" -a init_on_alloc=0 -t 300 &
p_main=$!
guest_run "$out/integrity.log" "$out/integrity.cpio.gz" \
	-a init_on_alloc=0 -t 300 &
p_int=$!
guest_run "$out/balloon.log" "$out/balloon.cpio.gz" -t 120 \
	-- -device virtio-balloon-pci,free-page-reporting=on &
p_bal=$!

for g in main:$p_main integrity:$p_int balloon:$p_bal; do
	name=${g%%:*}
	rc=0
	wait "${g#*:}" || rc=$?
	log=$out/$name.log
	echo "--- guest $name (exit $rc, log $log)"
	tr -d '\r' <"$log" | grep -a -E '^(PASS|FAIL|SKIP) |^(report|hold|integrity|buddyinfo|after free|reallocated|rmmod)[: ]'
	if [ "$rc" -ne 0 ] && ! tr -d '\r' <"$log" | grep -a -q '^FAIL '; then
		fail "guest-$name" "guest exited $rc (124: timeout, 125: no FHGUEST EXIT line: crash?)"
		tr -d '\r' <"$log" | tail -n 30
	elif [ "$rc" -ne 0 ]; then
		FH_FAILED=1
	fi
done
echo "kmod guest tests took $(($(date +%s) - start)) s"
exit $FH_FAILED
