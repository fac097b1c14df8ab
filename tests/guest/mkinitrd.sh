#!/bin/sh
# Build a test initramfs for tests/guest/run-guest.sh.
#
#   mkinitrd.sh -o OUT.cpio.gz [-m MODULE.ko[:NAME.ko]]... [-b BINARY]...
#               [-f SRC:DEST]... [-k KVER] -s SCRIPT
#
# Contents: busybox-static with all its applets, /lib/modules/$KVER with the
# virtio, virtio-serial, vsock, balloon and virtio-mem modules and a depmod index, the
# given modules under /lib/freehint/ (insmod /lib/freehint/NAME.ko), the
# given binaries under /bin/ with the shared libraries ldd lists, extra
# files, SCRIPT as /test.sh and an /init that prints "FHGUEST EXIT <status>"
# after SCRIPT and powers off.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out= script= kver=
mods= bins= files=
nl='
'
usage() { sed -n '2,13p' "$0" >&2; exit 2; }
while getopts o:m:b:f:s:k:h opt; do
	case $opt in
	o) out=$OPTARG ;;
	m) mods="$mods$OPTARG$nl" ;;
	b) bins="$bins$OPTARG$nl" ;;
	f) files="$files$OPTARG$nl" ;;
	s) script=$OPTARG ;;
	k) kver=$OPTARG ;;
	*) usage ;;
	esac
done
[ -n "$out" ] && [ -n "$script" ] || usage
[ -n "$kver" ] || kver=$("$here/kver.sh")
busybox=$(command -v busybox || true)
[ -x /bin/busybox ] && busybox=/bin/busybox
[ -n "$busybox" ] || { echo "mkinitrd.sh: busybox-static missing" >&2; exit 1; }

stage=$(mktemp -d "${TMPDIR:-/tmp}/fhinitrd.XXXXXX")
# mktemp made it 0700: the guest's / must be searchable by every user.
chmod 0755 "$stage"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/bin "$stage"/sbin "$stage"/proc "$stage"/sys "$stage"/dev \
	"$stage"/tmp "$stage"/run "$stage"/lib/freehint "$stage"/etc
cp "$busybox" "$stage/bin/busybox"
for a in $("$busybox" --list); do
	[ -e "$stage/bin/$a" ] || ln -s busybox "$stage/bin/$a"
done

# Kernel modules the guests need, with their dependencies.
want="virtio_pci virtio_console vsock vmw_vsock_virtio_transport_common
vsock_loopback vmw_vsock_virtio_transport virtio_balloon virtio_mem"
for m in $want; do
	modprobe -S "$kver" --show-depends "$m" 2>/dev/null |
		awk '$1 == "insmod" { print $2 }'
done | sort -u | while read -r ko; do
	dest="$stage${ko}"
	mkdir -p "$(dirname "$dest")"
	case $ko in
	*.xz) xz -dc "$ko" >"${dest%.xz}" ;;
	*.zst) zstd -qdc "$ko" >"${dest%.zst}" ;;
	*) cp "$ko" "$dest" ;;
	esac
done
for f in modules.order modules.builtin modules.builtin.modinfo; do
	[ -e "/lib/modules/$kver/$f" ] && cp "/lib/modules/$kver/$f" "$stage/lib/modules/$kver/"
done
depmod -b "$stage" "$kver"

printf '%s' "$mods" | while IFS= read -r m; do
	[ -n "$m" ] || continue
	src=${m%%:*} name=$(basename "$src")
	case $m in *:*) name=${m#*:} ;; esac
	cp "$src" "$stage/lib/freehint/$name"
done

copy_with_libs() {
	cp "$1" "$stage/bin/"
	ldd "$1" 2>/dev/null | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' |
		while read -r lib; do
			mkdir -p "$stage$(dirname "$lib")"
			cp -L "$lib" "$stage$lib"
		done
}
printf '%s' "$bins" | while IFS= read -r b; do
	[ -n "$b" ] && copy_with_libs "$b"
done
printf '%s' "$files" | while IFS= read -r f; do
	[ -n "$f" ] || continue
	mkdir -p "$stage$(dirname "${f#*:}")"
	cp -a "${f%%:*}" "$stage${f#*:}"
done

cp "$script" "$stage/test.sh"
chmod 0755 "$stage/test.sh"
cat >"$stage/init" <<'INIT'
#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
modprobe virtio_pci 2>/dev/null
modprobe virtio_console 2>/dev/null
mkdir -p /dev/virtio-ports
for i in 1 2 3 4 5 6 7 8 9 10; do
	grep -qs 0x0003 /sys/bus/virtio/devices/*/device || break
	ls /sys/class/virtio-ports/*/name >/dev/null 2>&1 && break
	sleep 0.2
done
for d in /sys/class/virtio-ports/*; do
	[ -e "$d/name" ] || continue
	ln -sf "/dev/${d##*/}" "/dev/virtio-ports/$(cat "$d/name")"
done
sh /test.sh
st=$?
sync
echo "FHGUEST EXIT $st"
poweroff -f
INIT
chmod 0755 "$stage/init"
(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) | gzip -1 >"$out"
