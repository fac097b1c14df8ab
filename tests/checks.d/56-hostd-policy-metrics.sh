#!/bin/sh
# freehintctl set on a running VM changes what its next batch is judged
# by (UNALIGNED under the old order, applied under the new, and back);
# bad requests change nothing; discard=off punches nothing. The metrics
# of the served VM pass promtool before and after, match status --json,
# and idle scrapers neither stop the daemon nor keep it from scraping.
cd "$(dirname "$0")/../.." || exit 1
. tests/hostd/lib.sh
. tests/hostd/policy.sh

command -v qemu-system-x86_64 >/dev/null ||
    { echo "SKIP hostd-policy: no qemu-system-x86_64"; exit 77; }
command -v promtool >/dev/null ||
    { echo "SKIP hostd-policy: no promtool (Debian's prometheus)"; exit 77; }
make -s all hostd-tests >/dev/null 2>&1 ||
    { echo "FAIL hostd-policy: build"; exit 1; }

d=
POLICY_DPID= POLICY_GPID=
trap '[ -f "$d/p.pid" ] && kill "$(cat "$d/p.pid")" 2>/dev/null
kill $POLICY_DPID $POLICY_GPID 2>/dev/null; rm -rf "$d"' EXIT
# A guest that went away makes a write to its FIFO fail, not kill us.
trap "" PIPE
rc=0
d=$(mktemp -d /dev/shm/fh-policy.XXXXXX)
policy_run "$d" build/freehintd || rc=1
rm -rf "$d"
# Again with the ASan+UBSan daemon: every request and scrape above.
if make -s SAN=1 all >/dev/null 2>&1; then
	d=$(mktemp -d /dev/shm/fh-policy.XXXXXX)
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	policy_run "$d" build-san/freehintd >"$d.out" 2>&1 || rc=1
	sed 's/^\(PASS\|FAIL\) hostd-policy:/\1 hostd-policy-asan:/' "$d.out"
	rm -f "$d.out"
else
	echo "FAIL hostd-policy-asan: SAN=1 build"
	rc=1
fi
exit $rc
