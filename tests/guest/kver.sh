#!/bin/sh
# Print the guest kernel version: the newest kernel under /lib/modules that
# has a build link (installed headers). Never the build machine's uname -r.
set -eu
v=
for d in /lib/modules/*/build; do
	[ -e "$d" ] || continue
	v="$v $(basename "$(dirname "$d")")"
done
[ -n "$v" ] || { echo "kver.sh: no kernel with headers under /lib/modules" >&2; exit 1; }
printf '%s\n' $v | sort -V | tail -n 1
