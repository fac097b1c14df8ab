#!/bin/sh
# The three programs' command lines: -h/--help prints the usage on stdout
# and exits 0, -V/--version prints "NAME VERSION", an unknown option is a
# usage error (non-zero, usage on stderr), and neither help nor version is
# a configuration file key.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/guest/lib.sh
make -s all >/dev/null 2>&1 || { fail cli "make all failed"; exit 1; }
version=$(make -s --no-print-directory version)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'help\n' >"$tmp/help.conf"

for p in freehintd freehint-agent freehintctl; do
	for h in -h --help; do
		if out=$(build/$p $h 2>"$tmp/err") && [ ! -s "$tmp/err" ] &&
		    echo "$out" | grep -q "^usage: $p "; then
			pass "cli:$p:$h"
		else
			fail "cli:$p:$h" "status $?, stdout '$out'"
		fi
	done
	for v in -V --version; do
		out=$(build/$p $v 2>/dev/null)
		if [ "$out" = "$p $version" ]; then
			pass "cli:$p:$v"
		else
			fail "cli:$p:$v" "'$out' (expected '$p $version')"
		fi
	done
	if build/$p --no-such-option >"$tmp/out" 2>"$tmp/err"; then
		fail "cli:$p:bad-option" "exit status 0"
	elif [ -s "$tmp/out" ] || ! grep -q "^usage: $p " "$tmp/err"; then
		fail "cli:$p:bad-option" "usage not on stderr alone"
	else
		pass "cli:$p:bad-option"
	fi
done
# "help" in a configuration file is not an option to act on: freehintd
# and the agent reject it as they do any unknown key.
if ! build/freehintd -n -f "$tmp/help.conf" >"$tmp/out" 2>"$tmp/err" &&
    grep -q "help: not allowed here" "$tmp/err" && [ ! -s "$tmp/out" ]; then
	pass cli:freehintd:help-not-a-key
else
	fail cli:freehintd:help-not-a-key "$(cat "$tmp/out" "$tmp/err")"
fi
if ! build/freehint-agent -n -f "$tmp/help.conf" >"$tmp/out" 2>"$tmp/err" &&
    grep -q "^freehint-agent: .*unknown key 'help'" "$tmp/err" &&
    [ ! -s "$tmp/out" ]; then
	pass cli:freehint-agent:help-not-a-key
else
	fail cli:freehint-agent:help-not-a-key "$(cat "$tmp/out" "$tmp/err")"
fi
exit "${FH_FAILED:-0}"
