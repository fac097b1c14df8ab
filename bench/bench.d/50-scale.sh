#!/bin/sh
# Scale: freehintd with 100 and 1000 VMs from the load generator.
exec python3 -B "$(dirname "$0")/../scale.py" "$@"
