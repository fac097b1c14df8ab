#!/bin/sh
# Migration of a guest whose free memory lies in 32 KiB pieces (issue 14's
# fragmented guest), at 1 Gbit/s: the case where only a hint pass that
# holds small blocks keeps free memory off the wire.
exec python3 -B "$(dirname "$0")/../migration.py" "$@" \
    --workload fragmented --bandwidth 1g --section 22-migration-fragmented
