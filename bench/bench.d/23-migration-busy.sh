#!/bin/sh
# Migration of a busy guest (issue 16): it rewrites its checked pattern at
# --busy-rate MiB/s (32 by default) while it migrates at 1 Gbit/s, so
# QEMU sends dirtied pages again and the destination checks every word.
exec python3 -B "$(dirname "$0")/../migration.py" "$@" \
    --workload busy --bandwidth 1g --section 23-migration-busy
