#!/bin/sh
# freehintd end to end in a real guest (freehint.ko + freehint-agent over
# virtio-serial, memfd RAM): after the guest dirties and frees 300 MiB,
# QEMU's RssShmem drops by most of it within a few seconds; a migration to
# /dev/null with a hint pass sends far fewer pages than one without.
set -u
cd "$(dirname "$0")/../.." || exit 1
FHROOT=$(pwd)
. tests/hostd/e2e.sh
guest_require hostd-e2e
make -s all kmod >/dev/null 2>&1 || { fail hostd-e2e "make all kmod failed"; exit 1; }

d=$(mktemp -d /tmp/fh-e2e.XXXXXX)
trap 'e2e_stop "$d"; rm -rf "$d"' EXIT
if ! e2e_run "$d"; then
	fail hostd-e2e "scenario did not complete"
	tail -n 20 "$d/freehintd.log" "$d/guest.log"
	exit 1
fi
drop=$((E2E_RSS_BEFORE - E2E_RSS_AFTER))
if [ "$drop" -ge 204800 ]; then
	pass "hostd-e2e:rss-drop ($((drop / 1024)) MiB)"
else
	fail hostd-e2e:rss-drop "RssShmem $E2E_RSS_BEFORE -> $E2E_RSS_AFTER kB"
fi
if echo "$E2E_STATUS" | grep -q '^demo *virtio-serial *discard'; then
	pass hostd-e2e:status
else
	fail hostd-e2e:status "$E2E_STATUS"
fi
# Privilege separation: the worker that served the agent and punched
# runs as no root, with no capability, in its empty root, and holds the
# guest's RAM; the parent passed it on and kept none.
case $E2E_WORKER in
"uid 0 "* | *"capeff 0000000000000000 nnp 1 root /run/freehint/empty worker-memfds 0 "*)
	fail hostd-e2e:privsep "$E2E_WORKER" ;;
"uid "*" capeff 0000000000000000 nnp 1 root /run/freehint/empty worker-memfds "*" parent-memfds 0")
	pass "hostd-e2e:privsep ($E2E_WORKER)" ;;
*)
	fail hostd-e2e:privsep "$E2E_WORKER" ;;
esac
if [ "$E2E_PLAIN_NORMAL" -gt 0 ] &&
    [ $((E2E_HINT_NORMAL * 2)) -lt "$E2E_PLAIN_NORMAL" ]; then
	pass "hostd-e2e:migration-hint ($E2E_PLAIN_NORMAL -> $E2E_HINT_NORMAL pages)"
else
	fail hostd-e2e:migration-hint "pages without $E2E_PLAIN_NORMAL, with $E2E_HINT_NORMAL"
fi
if [ "${E2E_HINT_AGAIN:-0}" = 1 ]; then
	pass hostd-e2e:hint-again-same-pass
else
	fail hostd-e2e:hint-again-same-pass "a second hint did not keep the pass"
fi
if [ "${E2E_RELEASED:-0}" = 1 ]; then
	pass hostd-e2e:release-after-migration
else
	fail hostd-e2e:release-after-migration "held blocks not released within 5 s"
fi
exit "${FH_FAILED:-0}"
