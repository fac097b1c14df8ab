#!/bin/sh
# Reclaim: RssShmem after a free, QEMU free-page-reporting and freehint.
exec python3 -B "$(dirname "$0")/../reclaim.py" "$@"
