#!/bin/sh
# Overhead: guest churn throughput with and without freehint.
exec python3 -B "$(dirname "$0")/../overhead.py" "$@"
