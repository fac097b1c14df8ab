# Guest side of tests/checks.d/56-hostd-migration-pass.sh: the module and
# the agent over virtio-serial, then fragmented free memory (32 KiB holes
# in a fill of all but 100 MiB of MemTotal) whose kept half fh-fragsum
# checks every 2 s, before and after the migration ("FRAG verify ok|BAD").
insmod /lib/freehint/freehint.ko || exit 1
freehint-agent -d --transport virtio-serial >/run/agent.log 2>&1 &
sleep 2
t=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
# The module's hold counters, for a failure's report.
while sleep 2; do grep '^hold_' /proc/freehint/stats | sed 's/^/FHSTAT /'; done &
fh-fragsum $((t / 1024 - 100)) 32
