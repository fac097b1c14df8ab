#!/bin/sh
# Migration at the link rates a user has (QEMU's max-bandwidth at 1 and
# 10 Gbit/s), each its own section beside 20-migration (unlimited). The
# caller's options come first, so these sections' own options win.
d=$(dirname "$0")/..
rc=0
for bw in 1g 10g; do
	python3 -B "$d/migration.py" "$@" --bandwidth $bw \
	    --section "21-migration-$bw" || rc=1
done
exit $rc
