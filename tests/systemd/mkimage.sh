#!/bin/sh
# A Debian 12 guest with systemd as PID 1, for tests/checks.d/42-systemd-guest.sh.
#
#   mkimage.sh -o DIR -k KVER -d DEB... [-u FILE:DEST]... [-e UNIT]...
#
# The debootstrap root (minbase, systemd, udev and the programs' shared
# libraries) is made once and cached under $FH_CACHE (default
# /var/cache/freehint-tests), keyed on the release and the package list.
# Each call copies it, installs the given .deb files with dpkg, adds
# freehint.ko built for KVER under /lib/modules/KVER/updates/ (the image
# carries no compiler: DKMS is tested in 31-kmod-dkms), the extra files,
# enables the units given with -e, and writes DIR/root.img (ext4) and DIR/initrd.cpio.gz, whose /init loads
# virtio and ext4 and switches to /sbin/init on /dev/vda.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
release=bookworm
include=systemd,systemd-sysv,udev,kmod,procps,libevent-2.1-7,libprotobuf-c1,libjson-c5,libsystemd0,libvirt0
out= kver= debs= files= units=
nl='
'
while getopts o:k:d:u:e: opt; do
	case $opt in
	o) out=$OPTARG ;;
	k) kver=$OPTARG ;;
	d) debs="$debs $OPTARG" ;;
	u) files="$files$OPTARG$nl" ;;
	e) units="$units $OPTARG" ;;
	*) sed -n '2,5p' "$0" >&2; exit 2 ;;
	esac
done
[ -n "$out" ] && [ -n "$kver" ] || { sed -n '2,5p' "$0" >&2; exit 2; }

cache=${FH_CACHE:-/var/cache/freehint-tests}
key=$(echo "$release minbase $include" | sha256sum | cut -c1-12)
base=$cache/debootstrap-$release-$key
if [ ! -e "$base/.complete" ]; then
	mkdir -p "$cache"
	rm -rf "$base.tmp"
	debootstrap --variant=minbase --include="$include" "$release" \
	    "$base.tmp" >"$cache/debootstrap-$key.log" 2>&1 || {
		tail -n 20 "$cache/debootstrap-$key.log" >&2
		exit 1
	}
	rm -rf "$base.tmp/var/cache/apt/archives"/*.deb
	touch "$base.tmp/.complete"
	mv "$base.tmp" "$base"
fi
[ -z "${FH_CACHE_ONLY:-}" ] || exit 0

mkdir -p "$out"
root=$out/root
rm -rf "$root"
cp -a "$base" "$root"
rm -f "$root/.complete"
mkdir -p "$root/tmp/debs"
# shellcheck disable=SC2086
cp $debs "$root/tmp/debs/"
chroot "$root" sh -c 'dpkg -i /tmp/debs/*.deb' >"$out/dpkg.log" 2>&1 || {
	tail -n 20 "$out/dpkg.log" >&2
	exit 1
}
rm -rf "$root/tmp/debs"
# The tests start the daemons themselves; no login prompt, no timers.
chroot "$root" systemctl disable freehint-agent.service freehintd.service \
    >/dev/null 2>&1 || :
chroot "$root" systemctl mask serial-getty@ttyS0.service getty@tty1.service \
    apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
    fstrim.timer >/dev/null 2>&1 || :
printf '%s' "$files" | while IFS= read -r f; do
	[ -n "$f" ] || continue
	mkdir -p "$root$(dirname "${f#*:}")"
	cp -p "${f%%:*}" "$root${f#*:}"
done
echo fh-guest >"$root/etc/hostname"
for u in $units; do
	chroot "$root" systemctl enable "$u" >/dev/null 2>&1
done

# freehint.ko and a modules index; the virtio drivers come from the initrd.
mdir=$root/lib/modules/$kver
mkdir -p "$mdir/updates"
cp "$top/kmod/freehint.ko" "$mdir/updates/"
for f in modules.order modules.builtin modules.builtin.modinfo; do
	cp "/lib/modules/$kver/$f" "$mdir/"
done
depmod -b "$root" "$kver"

rm -f "$out/root.img"
mkfs.ext4 -q -F -L fhroot -d "$root" "$out/root.img" 1G
rm -rf "$root"

# The initrd: busybox, the drivers for the disk, the console and the
# channel (in load order), and an /init that switches to the disk.
ird=$out/initrd
rm -rf "$ird"
mkdir -p "$ird/bin" "$ird/proc" "$ird/sys" "$ird/dev" "$ird/newroot" "$ird/ko"
cp /bin/busybox "$ird/bin/busybox"
for a in sh mount umount insmod sleep switch_root cat; do
	ln -s busybox "$ird/bin/$a"
done
for m in virtio_pci virtio_blk ext4 virtio_console; do
	modprobe -S "$kver" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
done | awk '!seen[$0]++' | while read -r ko; do
	cp "$ko" "$ird/ko/"
	echo "/ko/${ko##*/}" >>"$ird/ko/order"
done
cat >"$ird/init" <<'INIT'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for ko in $(cat /ko/order); do insmod "$ko"; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
mount -t ext4 -o rw /dev/vda /newroot || { echo "FHGUEST no root"; exit 1; }
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
INIT
chmod 0755 "$ird/init"
(cd "$ird" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) |
    gzip -1 >"$out/initrd.cpio.gz"
rm -rf "$ird"
