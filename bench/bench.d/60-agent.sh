#!/bin/sh
# Agent: freehint-agent's memory and CPU in the guest, idle and reporting.
exec python3 -B "$(dirname "$0")/../agent.py" "$@"
