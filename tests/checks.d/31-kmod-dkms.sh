#!/bin/sh
# kmod/dkms.conf works with the real dkms: `dkms add` and `dkms build` of
# the module's sources, as a user would install them, for the guest
# kernel, in a private dkms tree (--dkmstree/--sourcetree: the machine's
# /usr/src and /var/lib/dkms are not touched). The module it builds is
# GPL, for that kernel, and dkms.conf's version is the project's.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/guest/lib.sh
command -v dkms >/dev/null || skip kmod-dkms "dkms not installed"
kv=$(guest_kver 2>/dev/null) || skip kmod-dkms "no kernel headers under /lib/modules"
version=$(sed -n 's/^VERSION := //p' Makefile)
pkgver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' kmod/dkms.conf)
if [ "$pkgver" = "$version" ]; then
	pass kmod-dkms:version
else
	fail kmod-dkms:version "dkms.conf says $pkgver, the Makefile $version"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=$tmp/src/freehint-$pkgver
mkdir -p "$src" "$tmp/tree"
# What a user copies to /usr/src: the sources and build files, no objects.
cp kmod/*.c kmod/*.h kmod/Kbuild kmod/Makefile kmod/dkms.conf "$src/"
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
exit "${FH_FAILED:-0}"
