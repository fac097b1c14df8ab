#!/bin/sh
# Reclaim: RssShmem after a free, QEMU free-page-reporting and freehint.
exec python3 "$(dirname "$0")/../reclaim.py" "$@"
