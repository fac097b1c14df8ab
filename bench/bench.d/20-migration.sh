#!/bin/sh
# Migration: pages sent with no hinting, QEMU free-page-hint and freehint.
exec python3 -B "$(dirname "$0")/../migration.py" "$@"
