#!/bin/sh
# Benchmark figures are traceable: every section in docs/bench/ names the
# commit it measured (a "<!-- provenance commit=HASH ... -->" line, written
# by bench/benchlib.py) and that commit is an ancestor of HEAD, and
# docs/benchmarks.md is exactly what bench/assemble.sh makes of the
# sections. Then the two checks are shown to refuse a bad section and an
# edited page.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/guest/lib.sh
git rev-parse --verify -q HEAD >/dev/null 2>&1 ||
	skip bench-provenance "not a git checkout: no history to check against"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# section_ok FILE: prints why FILE's provenance is wrong, or nothing.
section_ok() {
	n=$(grep -c '^<!-- provenance commit=' "$1")
	if [ "$n" -ne 1 ]; then
		echo "$n provenance lines (want 1)"
		return
	fi
	c=$(sed -n 's/^<!-- provenance commit=\([0-9a-f]\{40\}\) .*-->$/\1/p' "$1")
	if [ -z "$c" ]; then
		echo "the provenance line names no full commit hash"
	elif ! git cat-file -e "$c^{commit}" 2>/dev/null; then
		echo "commit $c is not in this repository"
	elif ! git merge-base --is-ancestor "$c" HEAD; then
		echo "commit $c is not an ancestor of HEAD"
	elif ! grep -q '^Measured at commit `'"$(echo "$c" | cut -c1-12)"'`' "$1"; then
		echo "no 'Measured at commit' sentence for $c"
	fi
}

# assembled_ok FILE: prints how FILE differs from the assembled sections.
assembled_ok() {
	sh bench/assemble.sh --stdout >"$tmp/assembled.md" || echo "bench/assemble.sh failed"
	diff -u "$tmp/assembled.md" "$1" | head -n 20
}

found=0
for s in docs/bench/*.md; do
	[ -f "$s" ] || continue
	found=1
	why=$(section_ok "$s")
	if [ -z "$why" ]; then
		pass "bench-provenance:$(basename "$s" .md)"
	else
		fail "bench-provenance:$(basename "$s" .md)" "$why"
	fi
done
[ "$found" = 1 ] || fail bench-provenance:sections "no docs/bench/*.md"

why=$(assembled_ok docs/benchmarks.md)
if [ -z "$why" ]; then
	pass bench-provenance:assembled
else
	fail bench-provenance:assembled "docs/benchmarks.md differs from bench/assemble.sh --stdout (run it without --stdout): $why"
fi

# The checks themselves: a section measured at a commit HEAD does not
# descend from, one without provenance, and a hand-edited page.
first=$(ls docs/bench/*.md | head -n 1)
sed 's/^<!-- provenance commit=[0-9a-f]*/<!-- provenance commit='"$(printf '%040d' 0)"'/' \
    "$first" >"$tmp/bad.md"
grep -v '^<!-- provenance' "$first" >"$tmp/none.md"
sed '$s/$/ (edited)/' docs/benchmarks.md >"$tmp/edited.md"
if [ -n "$(section_ok "$tmp/bad.md")" ] && [ -n "$(section_ok "$tmp/none.md")" ] &&
    [ -n "$(assembled_ok "$tmp/edited.md")" ]; then
	pass bench-provenance:refuses-bad-input
else
	fail bench-provenance:refuses-bad-input "a bad commit, a missing provenance line or an edited page went through"
fi
[ "$FH_FAILED" = 0 ]
