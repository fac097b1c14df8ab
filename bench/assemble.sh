#!/bin/sh
# Assemble docs/benchmarks.md from bench/header.md and the sections the
# benchmarks wrote into docs/bench/*.md, in name order; nothing else
# writes that page.
#   bench/assemble.sh           write docs/benchmarks.md
#   bench/assemble.sh --stdout  print what it would write
set -u
cd "$(dirname "$0")/.." || exit 1
assemble() {
	cat bench/header.md
	for s in docs/bench/*.md; do
		[ -f "$s" ] || continue
		echo
		cat "$s"
	done
}
case "${1:-}" in
--stdout) assemble ;;
"")
	assemble >docs/benchmarks.md.tmp && mv docs/benchmarks.md.tmp docs/benchmarks.md
	echo "wrote docs/benchmarks.md"
	;;
*)
	echo "usage: bench/assemble.sh [--stdout]" >&2
	exit 2
	;;
esac
