#!/bin/sh
# Migration of larger idle guests (issue 16's guest sizes: 2 and 4 GiB;
# 512 MiB is 20-migration), at unlimited bandwidth as 20-migration, each
# its own section. Most of such a guest is free, so reading (and, on a
# memfd, allocating again) pages that hold nothing is where time goes.
d=$(dirname "$0")/..
rc=0
for gib in 2 4; do
	python3 -B "$d/migration.py" "$@" --mem $((gib * 1024)) \
	    --section "24-migration-${gib}g" || rc=1
done
exit $rc
