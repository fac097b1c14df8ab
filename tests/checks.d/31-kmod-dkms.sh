#!/bin/sh
# kmod/dkms.conf works with the real dkms: `dkms add` and `dkms build` of
# the module's sources, as `make install-dkms` (and the freehint-dkms
# package) installs them, for the guest kernel, in a private dkms tree
# (--dkmstree/--sourcetree: the machine's /usr/src and /var/lib/dkms are
# not touched). The module it builds is GPL, for that kernel, and
# dkms.conf's version is the project's. A kernel of another series is not
# skipped in silence: the build fails and says why.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/guest/lib.sh
command -v dkms >/dev/null || skip kmod-dkms "dkms not installed"
kv=$(guest_kver 2>/dev/null) || skip kmod-dkms "no kernel headers under /lib/modules"
version=$(make -s --no-print-directory version)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# What a user gets in /usr/src: the sources and build files, no objects.
make -s install-dkms DESTDIR="$tmp" DKMS_SRCDIR="/src/freehint-$version" \
    >"$tmp/install.log" 2>&1 || { fail kmod-dkms:install "$(cat "$tmp/install.log")"; exit 1; }
src=$tmp/src/freehint-$version
pkgver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$src/dkms.conf")
if [ "$pkgver" = "$version" ] && [ ! -e "$src/freehint.o" ]; then
	pass kmod-dkms:version
else
	fail kmod-dkms:version "dkms.conf says $pkgver, the project $version"
fi
mkdir -p "$tmp/tree"
dk() { dkms "$@" --dkmstree "$tmp/tree" --sourcetree "$tmp/src"; }
if dk add -m freehint -v "$pkgver" >"$tmp/add.log" 2>&1; then
	pass kmod-dkms:add
else
	fail kmod-dkms:add "$(tail -n 5 "$tmp/add.log")"
	exit 1
fi
if dk build -m freehint -v "$pkgver" -k "$kv" \
    --kernelsourcedir "/lib/modules/$kv/build" >"$tmp/build.log" 2>&1; then
	pass kmod-dkms:build
else
	fail kmod-dkms:build "$(tail -n 15 "$tmp/build.log")"
	find "$tmp/tree" -name make.log -exec tail -n 20 {} \;
	exit 1
fi
ko=$(find "$tmp/tree/freehint/$pkgver/$kv" -name 'freehint.ko*' | head -n 1)
if [ -n "$ko" ] &&
    [ "$(modinfo -F license "$ko")" = GPL ] &&
    modinfo -F vermagic "$ko" | grep -q "^$kv "; then
	pass "kmod-dkms:module (${ko##*/}, $kv)"
else
	fail kmod-dkms:module "no GPL module for $kv: '${ko:-none}'"
fi
if dk status -m freehint -v "$pkgver" 2>/dev/null | grep -q "built"; then
	pass kmod-dkms:status
else
	fail kmod-dkms:status "$(dk status 2>&1)"
fi

# A newer kernel: the same headers with a 6.12 version.h (a tree of links,
# one file replaced). dkms must try, fail, and say why.
new=6.12.0-1-amd64
ksrc=$tmp/ksrc
cp -rs "$(readlink -f "/lib/modules/$kv/build")/." "$ksrc"
vh=$ksrc/include/generated/uapi/linux/version.h
rm -f "$vh"
sed 's/^#define LINUX_VERSION_PATCHLEVEL .*/#define LINUX_VERSION_PATCHLEVEL 12/' \
    "/lib/modules/$kv/build/include/generated/uapi/linux/version.h" >"$vh"
if dk build -m freehint -v "$pkgver" -k "$new" --kernelsourcedir "$ksrc" \
    >"$tmp/new.log" 2>&1; then
	fail kmod-dkms:other-kernel "dkms build for $new succeeded or was skipped: $(tail -n 5 "$tmp/new.log")"
elif grep -q "Bad return status" "$tmp/new.log" &&
    grep -q "supports Linux 6.1.x only" "$tmp/tree/freehint/$pkgver/build/make.log"; then
	pass "kmod-dkms:other-kernel (fails loudly on $new)"
else
	fail kmod-dkms:other-kernel "$(tail -n 10 "$tmp/new.log")"
fi
if dk status -m freehint -v "$pkgver" -k "$new" 2>/dev/null | grep -q installed; then
	fail kmod-dkms:other-kernel-status "$(dk status -k "$new" 2>&1)"
else
	pass kmod-dkms:other-kernel-status
fi
exit "${FH_FAILED:-0}"
