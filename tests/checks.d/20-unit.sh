#!/bin/sh
# Unit tests: plain, under valgrind, and under ASan+UBSan.
cd "$(dirname "$0")/../.." || exit 1
rc=0
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

# run LABEL CMD...: run the unit tests, prefixing each case with LABEL.
run() {
	label=$1
	shift
	"$@" >"$tmp" 2>&1 || rc=1
	sed "s/^\(PASS\|FAIL\) /\1 $label/" "$tmp"
}

make -s -j2 unit-tests >/dev/null || { echo "FAIL unit-build"; exit 1; }
run "" tests/run-unit.sh build/tests/test_*
run "valgrind:" env VALGRIND=1 tests/run-unit.sh build/tests/test_*
make -s -j2 SAN=1 unit-tests >/dev/null || { echo "FAIL asan-build"; exit 1; }
run "asan:" env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 tests/run-unit.sh build-san/tests/test_*
exit $rc
