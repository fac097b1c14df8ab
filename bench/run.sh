#!/bin/sh
# Run the benchmarks (all, or those whose name contains $1; further
# arguments go to each) and rebuild docs/benchmarks.md from the sections
# they write into docs/bench/ (bench/assemble.sh).
set -u
cd "$(dirname "$0")/.." || exit 1
pattern=${1:-}
[ $# -gt 0 ] && shift
rc=0
for b in bench/bench.d/*.sh; do
	name=$(basename "$b" .sh)
	case "$name" in *"$pattern"*) ;; *) continue ;; esac
	echo "=== bench $name"
	if ! sh "$b" "$@"; then
		echo "--- bench $name FAILED"
		rc=1
	fi
done
sh bench/assemble.sh || rc=1
exit $rc
