#!/bin/sh
# make demo: boot the built-in guest (Debian's kernel, busybox, freehint.ko,
# freehint-agent) with memfd memory under QEMU, serve it with freehintd,
# have it dirty and free 300 MiB, and show what the host got back; then
# migrate it to /dev/null without and with a hint pass.
set -eu
cd "$(dirname "$0")/.."
FHROOT=$(pwd)

if [ "$(id -u)" -eq 0 ]; then
	scripts/install-deps.sh all
else
	scripts/install-deps.sh all || echo "demo: carrying on with what is installed"
fi
echo "== building"
make -s -j2 all >/dev/null
make -s kmod >/dev/null
. tests/hostd/e2e.sh

d=$(mktemp -d /tmp/freehint-demo.XXXXXX)
trap 'e2e_stop "$d"; rm -rf "$d"' EXIT INT TERM
echo "== booting a 512 MiB guest (TCG) with freehint.ko and freehint-agent;"
echo "   freehintd serves it over virtio-serial (logs in $d while it runs)"
if ! e2e_run "$d"; then
	echo "demo: the scenario did not complete; last logs:" >&2
	tail -n 20 "$d/freehintd.log" "$d/guest.log" >&2
	exit 1
fi
mib() { echo $(($1 / 1024)); }
echo
echo "== the guest dirtied 300 MiB in tmpfs, then deleted it"
echo "   QEMU's memory (RssShmem): $(mib "$E2E_RSS_START") MiB before,"
echo "   $(mib "$E2E_RSS_BEFORE") MiB with the data, $(mib "$E2E_RSS_AFTER") MiB a few seconds after freeing"
echo
echo "== freehintctl status"
echo "$E2E_STATUS"
echo
echo "== migration of the guest to /dev/null (after dirtying and freeing 300 MiB again)"
printf '   %-28s %10s pages %8s MiB sent\n' "without freehint:" \
    "$E2E_PLAIN_NORMAL" $((E2E_PLAIN_BYTES / 1048576))
printf '   %-28s %10s pages %8s MiB sent\n' "with a hint pass:" \
    "$E2E_HINT_NORMAL" $((E2E_HINT_BYTES / 1048576))
echo "   (held by the guest during the pass: $((${E2E_HELD:-0} / 1048576)) MiB)"
