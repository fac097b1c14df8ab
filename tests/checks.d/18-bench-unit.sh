#!/bin/sh
# The benchmarks' pure parts (bench/test_*.py: option parsing, the guest's
# verdict lines, statistics, tables and verdicts), one case per line; the
# benchmarks themselves run with make bench.
set -u
cd "$(dirname "$0")/../.." || exit 1
command -v python3 >/dev/null || { echo "SKIP bench-unit: python3 not installed"; exit 77; }
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
python3 -B -m unittest discover -s bench -p 'test_*.py' -v >"$tmp" 2>&1
rc=$?
# "test_x (module.Class.test_x) ... ok" -> "PASS bench-unit:module.Class.test_x"
sed -n 's/^test_[a-z0-9_]* (\(.*\)) \.\.\. ok$/PASS bench-unit:\1/p
s/^test_[a-z0-9_]* (\(.*\)) \.\.\. \(FAIL\|ERROR\)$/FAIL bench-unit:\1: \2 (see below)/p' "$tmp"
if [ "$rc" -ne 0 ]; then
	cat "$tmp"
	grep -q '^FAIL ' "$tmp" || echo "FAIL bench-unit: unittest exit $rc"
fi
exit $rc
