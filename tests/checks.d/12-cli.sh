#!/bin/sh
# The three programs' command lines: -h/--help prints the usage on stdout
# and exits 0, -V/--version prints "NAME VERSION", an unknown option is a
# usage error (exit 2, usage on stderr), every long option of the usage is
# in the program's man page, every key of freehintd.conf(5) is printed by
# --dump-config, and neither help nor version is a configuration file key.
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
	build/$p --no-such-option >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -ne 2 ]; then
		fail "cli:$p:bad-option" "exit status $rc (expected 2)"
	elif [ -s "$tmp/out" ] || ! grep -q "^usage: $p " "$tmp/err"; then
		fail "cli:$p:bad-option" "usage not on stderr alone"
	else
		pass "cli:$p:bad-option"
	fi
	# Options in the usage the man page does not explain: roff writes a
	# dash as \- and mdoc's Fl adds the first one.
	missing=""
	for o in $(build/$p --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u); do
		sed 's/\\-/-/g' "man/$p.8" |
		    grep -qE -- "${o#-}([^a-z0-9-]|\$)" || missing="$missing $o"
	done
	if [ -z "$missing" ]; then
		pass "cli:$p:options-in-man-page"
	else
		fail "cli:$p:options-in-man-page" "not in man/$p.8:$missing"
	fi
done

# Every key freehintd.conf(5) documents is one --dump-config prints (those
# without a default once given a value).
cat >"$tmp/all.conf" <<CONF
vm name=cli,qmp=/nonexistent/qmp.sock
control-group root
admin-group root
libvirt-uri test:///default
metrics-listen 127.0.0.1:9848
CONF
missing=""
if build/freehintd -f "$tmp/all.conf" --dump-config >"$tmp/dump" 2>"$tmp/err"; then
	for k in $(sed -n 's/\\-/-/g; s/^\.BI \([a-z][a-z0-9-]*\) .*/\1/p' \
	    man/freehintd.conf.5); do
		grep -q "^$k " "$tmp/dump" || missing="$missing $k"
	done
	if [ -z "$missing" ] && [ -s "$tmp/dump" ]; then
		pass cli:freehintd:conf-keys-in-dump-config
	else
		fail cli:freehintd:conf-keys-in-dump-config \
		    "not printed:$missing"
	fi
else
	fail cli:freehintd:conf-keys-in-dump-config "$(cat "$tmp/err")"
fi
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
# A VM name goes into log lines and status rows: a control character in
# it is refused with the reason, before anything starts.
if ! build/freehintd -n --vm "$(printf 'name=a\nb,qmp=/x')" \
    >"$tmp/out" 2>"$tmp/err" &&
    grep -q "name has a control character (0x0a)" "$tmp/err"; then
	pass cli:freehintd:vm-name-control-char
else
	fail cli:freehintd:vm-name-control-char "$(cat "$tmp/out" "$tmp/err")"
fi
# punch-workers: 1 to 64, on the command line and in the file alike; the
# default is what --dump-config prints without it.
bad=""
for n in 0 65 -1 4x ""; do
	build/freehintd -n -f /dev/null --punch-workers "$n" >/dev/null 2>"$tmp/err" ||
	    grep -q "punch-workers: bad value '$n'" "$tmp/err" || bad="$bad [$n]"
	build/freehintd -n -f /dev/null --punch-workers "$n" >/dev/null 2>&1 &&
	    bad="$bad [$n accepted]"
	printf 'punch-workers %s\n' "$n" >"$tmp/pw.conf"
	build/freehintd -n -f "$tmp/pw.conf" >/dev/null 2>&1 &&
	    bad="$bad [$n accepted in the file]"
done
for n in 1 64; do
	[ "$(build/freehintd -f /dev/null --punch-workers $n --dump-config |
	    sed -n 's/^punch-workers //p')" = $n ] || bad="$bad [$n refused]"
	printf 'punch-workers %s\n' $n >"$tmp/pw.conf"
	[ "$(build/freehintd -f "$tmp/pw.conf" --dump-config |
	    sed -n 's/^punch-workers //p')" = $n ] ||
	    bad="$bad [$n refused in the file]"
done
[ "$(build/freehintd -f /dev/null --dump-config |
    sed -n 's/^punch-workers //p')" = 4 ] || bad="$bad [default not 4]"
if [ -z "$bad" ]; then
	pass cli:freehintd:punch-workers-bounds
else
	fail cli:freehintd:punch-workers-bounds "$bad"
fi
exit "${FH_FAILED:-0}"
