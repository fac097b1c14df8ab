#!/bin/sh
# freehintd against a hostile guest: two real (firmware-only) QEMU VMs with
# discardable memory; fh-hostile listens where each VM's virtio-serial
# chardev would be. VM a is attacked (out of range, a canary ivshmem BAR,
# unaligned, overlapping, oversized, truncated, garbage, floods); VM b is a
# well-behaved guest that must keep being served meanwhile. Runs the plain
# daemon, then under valgrind, then the ASan+UBSan build.
cd "$(dirname "$0")/../.." || exit 1
. tests/hostd/lib.sh

command -v qemu-system-x86_64 >/dev/null ||
    { echo "SKIP hostd-hostile: no qemu-system-x86_64"; exit 77; }
make -s all hostd-tests >/dev/null 2>&1 ||
    { echo "FAIL hostd-hostile: build"; exit 1; }

rc=0
hostile_run plain build/freehintd || rc=1
if command -v valgrind >/dev/null; then
	hostile_run valgrind build/freehintd \
	    "valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect" || rc=1
else
	echo "SKIP hostd-hostile-valgrind: no valgrind"
fi
if make -s SAN=1 all >/dev/null 2>&1; then
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    hostile_run asan build-san/freehintd || rc=1
else
	echo "FAIL hostd-hostile-asan: SAN=1 build"
	rc=1
fi
exit $rc
