#!/bin/sh
# Packaging: `make deb` builds freehint-agent, freehintd and freehint-dkms
# with no lintian error; each holds its files, all at the one version;
# dpkg-buildflags reach the compiler (CPPFLAGS: fortified calls); the unit
# does not pull in libvirtd; `make install` honours SYSCONFDIR and
# `make uninstall` removes what it installed; freehintd builds without
# libvirt.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/guest/lib.sh
command -v dpkg-buildpackage >/dev/null && command -v dh_dkms >/dev/null &&
    command -v lintian >/dev/null ||
	skip deb "debhelper, dh-dkms or lintian not installed (scripts/install-deps.sh)"
version=$(make -s --no-print-directory version)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if make -s deb >"$tmp/deb.log" 2>&1; then
	pass "deb:build+lintian ($(grep -c '^W:' build/deb/lintian.log) warnings)"
else
	fail deb:build+lintian "$(tail -n 20 "$tmp/deb.log")"
	exit 1
fi

# has PKG FILE...: the package holds each file.
has() {
	p=$1
	shift
	deb=build/deb/${p}_${version}_$(
	    [ "$p" = freehint-dkms ] && echo all || dpkg --print-architecture).deb
	[ -f "$deb" ] || { fail "deb:$p" "no $deb"; return; }
	dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|' >"$tmp/$p.list"
	missing=
	for f in "$@"; do
		grep -qx "$f" "$tmp/$p.list" || missing="$missing $f"
	done
	if [ -n "$missing" ]; then
		fail "deb:$p" "missing:$missing"
	elif [ "$(dpkg-deb -f "$deb" Version)" != "$version" ]; then
		fail "deb:$p" "version $(dpkg-deb -f "$deb" Version), not $version"
	else
		pass "deb:$p"
	fi
	mkdir -p "$tmp/$p"
	dpkg-deb -x "$deb" "$tmp/$p"
	dpkg-deb -e "$deb" "$tmp/$p/DEBIAN"
}
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd)
has freehint-agent /usr/sbin/freehint-agent "$unitdir/freehint-agent.service" \
    /usr/share/man/man8/freehint-agent.8.gz /etc/freehint/agent.conf.example
has freehintd /usr/sbin/freehintd /usr/bin/freehintctl \
    "$unitdir/freehintd.service" /usr/share/man/man8/freehintd.8.gz \
    /usr/share/man/man8/freehintctl.8.gz /usr/share/man/man5/freehintd.conf.5.gz \
    /etc/libvirt/hooks/qemu.d/freehint /usr/lib/sysusers.d/freehintd.conf
has freehint-dkms "/usr/src/freehint-$version/dkms.conf" \
    "/usr/src/freehint-$version/freehint_main.c" "/usr/src/freehint-$version/Kbuild"

# One version: programs, DKMS, man pages.
hd=$tmp/freehintd
seen="$("$tmp/freehint-agent/usr/sbin/freehint-agent" -V) $("$hd/usr/sbin/freehintd" -V)"
seen="$seen $(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' \
    "$tmp/freehint-dkms/usr/src/freehint-$version/dkms.conf")"
for m in "$hd"/usr/share/man/man*/*.gz "$tmp"/freehint-agent/usr/share/man/man8/*.gz; do
	seen="$seen $(zcat "$m" | sed -n 's/^\.TH .*"freehint \([^"]*\)".*/\1/p; s/^\.Os freehint //p')"
done
bad=$(echo "$seen" | tr ' ' '\n' | grep -v -e "^$version\$" -e '^freehint' -e '^$')
if [ -z "$bad" ] && [ "$(echo "$seen" | tr ' ' '\n' | grep -c "^$version\$")" -eq 7 ]; then
	pass "deb:one-version ($version)"
else
	fail deb:one-version "saw: $seen"
fi

if grep -qx /etc/libvirt/hooks/qemu.d/freehint "$hd/DEBIAN/conffiles" &&
    grep -q systemd-sysusers "$hd/DEBIAN/postinst"; then
	pass deb:hook-conffile+sysusers
else
	fail deb:hook-conffile+sysusers "$(cat "$hd/DEBIAN/conffiles")"
fi
unit=$hd$unitdir/freehintd.service
if grep -q '^After=.*libvirtd.service' "$unit" &&
    ! grep -Eq '^(Wants|Requires|BindsTo|Requisite)=.*libvirtd' "$unit"; then
	pass deb:unit-no-libvirtd
else
	fail deb:unit-no-libvirtd "$(grep -E '^(After|Wants|Requires)=' "$unit")"
fi
# CPPFLAGS carry -D_FORTIFY_SOURCE=2: fortified calls in the binaries.
if objdump -T "$hd/usr/sbin/freehintd" | grep -q '__[a-z]*_chk' &&
    objdump -T "$tmp/freehint-agent/usr/sbin/freehint-agent" | grep -q '__[a-z]*_chk'; then
	pass deb:buildflags
else
	fail deb:buildflags "no _chk symbol: CPPFLAGS did not reach the compiler"
fi

# Without libvirt, another SYSCONFDIR, pkg-config's --cflags on the line.
alt=build/alt
if make -s O=$alt WITH_LIBVIRT=no SYSCONFDIR=/opt/fh $alt/freehintd \
    $alt/freehint-agent >"$tmp/alt.log" 2>&1 &&
    ! ldd $alt/freehintd | grep -q libvirt &&
    $alt/freehintd --dump-config 2>&1 | grep -q . &&
    grep -q /opt/fh/freehint/freehintd.conf $alt/freehintd &&
    grep -q /opt/fh/freehint/agent.conf $alt/freehint-agent &&
    make -s -n O=$alt -B $alt/host-daemon/control.o |
    grep -q -- "$(pkg-config --cflags json-c)"; then
	pass deb:make-options
else
	fail deb:make-options "$(tail -n 10 "$tmp/alt.log")"
fi
rm -rf $alt

make -s install DESTDIR="$tmp/stage" PREFIX=/usr SYSCONFDIR=/etc >"$tmp/i.log" 2>&1
n=$(find "$tmp/stage" -type f | wc -l)
make -s uninstall DESTDIR="$tmp/stage" PREFIX=/usr SYSCONFDIR=/etc >>"$tmp/i.log" 2>&1
left=$(find "$tmp/stage" -type f)
if [ "$n" -gt 20 ] && [ -z "$left" ]; then
	pass "deb:make-uninstall ($n files)"
else
	fail deb:make-uninstall "installed $n, left: $left $(tail -n 5 "$tmp/i.log")"
fi
exit "${FH_FAILED:-0}"
