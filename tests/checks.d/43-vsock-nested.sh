#!/bin/sh
# AF_VSOCK across a real VM boundary, by nesting (this machine has no
# vhost-vsock): an outer guest with vhost_vsock and this machine's root
# over 9p runs freehintd and a QEMU for an inner guest with
# vhost-vsock-pci,guest-cid=3; the inner guest's freehint-agent talks to
# freehintd over vsock only. The VM is identified by its CID, status shows
# transport vsock, the inner QEMU's RssShmem drops after the inner guest
# frees memory, and a connection from CID 1, which no VM owns, is refused.
# No AF_VSOCK socket is opened on this machine itself. The inner guest
# boots in 85-105 s (TCG inside TCG) on an idle machine: the limits are
# for a loaded one.
set -u
cd "$(dirname "$0")/../.." || exit 1
FHROOT=$(pwd)
. tests/guest/lib.sh
guest_require vsock-nested
[ -r /usr/share/qemu/qboot.rom ] || skip vsock-nested "no qboot.rom"
make -s all kmod >/dev/null 2>&1 || { fail vsock-nested "make all kmod failed"; exit 1; }
kv=$(guest_kver)
d=$(mktemp -d /tmp/fh-nest.XXXXXX)
chmod 0755 "$d"
trap 'rm -rf "$d"' EXIT

guest_build "$d/inner.cpio.gz" -m kmod/freehint.ko -b build/freehint-agent \
    -s tests/vsock/inner.sh >"$d/mk.log" 2>&1 ||
	{ fail vsock-nested "inner initrd: $(tail -n 5 "$d/mk.log")"; exit 1; }
# The outer guest's modules beyond mkinitrd's, in load order.
mods=
for m in 9p 9pnet_virtio vhost_vsock; do
	modprobe -S "$kv" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
done | awk '!seen[$0]++' >"$d/paths"
while read -r p; do
	mods="$mods -m $p"
	basename "$p"
done <"$d/paths" >"$d/outer-modules"
echo "$FHROOT" >"$d/fh-top"
echo "$kv" >"$d/fh-kver"
# shellcheck disable=SC2086
guest_build "$d/outer.cpio.gz" $mods -f "$d/outer-modules:/outer-modules" \
    -f "$d/fh-top:/fh-top" -f "$d/fh-kver:/fh-kver" \
    -f "$d/inner.cpio.gz:/inner.cpio.gz" -s tests/vsock/outer.sh \
    >>"$d/mk.log" 2>&1 ||
	{ fail vsock-nested "outer initrd: $(tail -n 5 "$d/mk.log")"; exit 1; }

start=$(date +%s)
tests/guest/run-guest.sh -m 1536 -t 1800 -i "$d/outer.cpio.gz" -l "$d/outer.log" \
    -a "mitigations=off nokaslr" -- -bios /usr/share/qemu/qboot.rom \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
echo "# outer guest ran $(($(date +%s) - start)) s"
if ! grep -aq "FHO DONE" "$d/outer.log"; then
	fail vsock-nested "the outer guest did not finish"
	tail -n 40 "$d/outer.log"
	exit 1
fi
sed -n 's/.*FHO \(PASS\|FAIL\) \(.*\)/\1 vsock-nested:\2/p' "$d/outer.log" | tr -d '\r'
if grep -aq "FHO FAIL" "$d/outer.log"; then
	FH_FAILED=1
	sed -n '/^--- inner/,$p' "$d/outer.log" | tail -n 60
fi
exit "${FH_FAILED:-0}"
