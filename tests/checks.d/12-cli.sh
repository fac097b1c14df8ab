#!/bin/sh
# The three programs' command lines: -h/--help prints the usage on stdout
# and exits 0, -V/--version prints "NAME VERSION", an unknown option is a
# usage error (exit 2, usage on stderr), so is a bad value given on a
# daemon's command line (in the file it is a configuration error, 1),
# every long option the program accepts (its struct option table) is in
# its --help and its man page, every key of freehintd.conf(5) is printed
# by --dump-config, and neither help nor version is a configuration file
# key.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/guest/lib.sh
make -s all >/dev/null 2>&1 || { fail cli "make all failed"; exit 1; }
version=$(make -s --no-print-directory version)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'help\n' >"$tmp/help.conf"

# The source of each program's struct option table.
src_freehintd=host-daemon/main.c
src_freehint_agent=guest-agent/main.c
src_freehintctl=host-daemon/freehintctl.c

# The long option names of the struct option table(s) in file $1.
long_options() {
	sed -n '/struct option [a-z_]*\[\] = {/,/^};/p' "$1" |
	    grep -oE '\{ "[a-z][a-z0-9-]*"' | sed 's/^{ "//; s/"$//'
}

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
	# Every long option the program accepts, from its source: in --help
	# and in the man page (roff writes a dash as \- and mdoc's Fl adds
	# the first one), as a whole word ("--config" is not "--dump-config").
	eval "src=\$src_$(echo $p | tr - _)"
	opts=$(long_options "$src")
	build/$p --help >"$tmp/help"
	sed 's/\\-/-/g' "man/$p.8" >"$tmp/man"
	nohelp=""
	noman=""
	for o in $opts; do
		grep -qE -- "(^|[^a-z0-9-])--$o([^a-z0-9-]|\$)" "$tmp/help" ||
		    nohelp="$nohelp --$o"
		grep -qE -- "(^|[^a-z0-9-])--?$o([^a-z0-9-]|\$)" "$tmp/man" ||
		    noman="$noman --$o"
	done
	# A table moved or reformatted must not pass as one with nothing.
	for w in "help:$nohelp:$p --help" "man-page:$noman:man/$p.8"; do
		name=${w%%:*} rest=${w#*:}
		missing=${rest%%:*} where=${rest#*:}
		if ! echo "$opts" | grep -qx help; then
			fail "cli:$p:options-in-$name" "no struct option table in $src"
		elif [ -n "$missing" ]; then
			fail "cli:$p:options-in-$name" "not in $where:$missing"
		else
			pass "cli:$p:options-in-$name"
		fi
	done
done

# A bad value on a daemon's command line is a usage error (2) that names
# the option; the same value in the configuration file is a configuration
# error (1).
for c in "freehintd punch-workers 0" "freehintd min-order 21" \
    "freehintd vsock-port x" "freehint-agent max-inflight 0" \
    "freehint-agent transport carrier-pigeon"; do
	set -- $c
	build/$1 -n -f /dev/null --$2 "$3" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	printf '%s %s\n' "$2" "$3" >"$tmp/bad.conf"
	build/$1 -n -f "$tmp/bad.conf" >/dev/null 2>&1
	frc=$?
	if [ "$rc" -ne 2 ]; then
		fail "cli:$1:bad-value:$2" "exit status $rc (expected 2)"
	elif [ -s "$tmp/out" ] || ! grep -q "^$1: $2: " "$tmp/err"; then
		fail "cli:$1:bad-value:$2" \
		    "not one line naming $2 on stderr: $(cat "$tmp/out" "$tmp/err")"
	elif [ "$frc" -ne 1 ]; then
		fail "cli:$1:bad-value:$2" \
		    "in the file: exit status $frc (expected 1)"
	else
		pass "cli:$1:bad-value:$2"
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
