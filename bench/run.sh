#!/bin/sh
# Run the benchmarks (all, or those whose name contains $1) and rebuild
# docs/benchmarks.md from the sections they write into docs/bench/.
set -u
cd "$(dirname "$0")/.." || exit 1
pattern=${1:-}
rc=0
for b in bench/bench.d/*.sh; do
	name=$(basename "$b" .sh)
	case "$name" in *"$pattern"*) ;; *) continue ;; esac
	echo "=== bench $name"
	if ! sh "$b"; then
		echo "--- bench $name FAILED"
		rc=1
	fi
done
{
	cat bench/header.md
	for s in docs/bench/*.md; do
		[ -f "$s" ] || continue
		echo
		cat "$s"
	done
} >docs/benchmarks.md
echo "wrote docs/benchmarks.md"
exit $rc
