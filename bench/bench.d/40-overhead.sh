#!/bin/sh
# Overhead: what reporting costs a churning guest (full speed, paced,
# bursty), no reporting, QEMU's free-page-reporting and freehint.
exec python3 -B "$(dirname "$0")/../overhead.py" "$@"
