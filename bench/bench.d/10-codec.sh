#!/bin/sh
# Codec: range batch encode/decode throughput and wire size.
exec python3 -B "$(dirname "$0")/../codec.py" "$@"
