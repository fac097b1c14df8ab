#!/bin/sh
# systemd/freehintd.service: `systemd-analyze verify` on a copy whose
# ExecStart is the built binary (--man=no: the pages are not installed
# here), the `systemd-analyze security` report and its exposure, the
# sandbox still allowing what freehintd needs, and `make install-hostd`
# into a staging directory. (PID 1 is not systemd on the build machines:
# the unit itself cannot be started here.)
set -u
cd "$(dirname "$0")/../.." || exit 1
top=$(pwd)
command -v systemd-analyze >/dev/null ||
	{ echo "SKIP hostd-unit: systemd-analyze not installed"; exit 77; }
make -s build/freehintd build/freehintctl >/dev/null ||
	{ echo "FAIL hostd-unit-build"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rc=0
unit=$tmp/freehintd.service
sed "s|@SBINDIR@|$top/build|" systemd/freehintd.service >"$unit"
if systemd-analyze verify --man=no "$unit" >"$tmp/verify.log" 2>&1 &&
	! grep -q . "$tmp/verify.log"; then
	echo "PASS hostd-unit-verify"
else
	echo "FAIL hostd-unit-verify: systemd-analyze verify says:"
	cat "$tmp/verify.log"
	rc=1
fi
if systemd-analyze security --offline=true "$unit" >"$tmp/sec.log" 2>&1; then
	# The report, for the log: one line per setting that is not at best.
	grep -a '✗' "$tmp/sec.log" | sed 's/^/# /; s/  */ /g'
	score=$(grep -a "Overall exposure level" "$tmp/sec.log")
	echo "PASS hostd-unit-security: ${score#*: }"
	# Worse than 4 means a hardening key went missing (2.7 when written;
	# the capabilities freehintd needs cost the rest).
	level=$(echo "$score" | sed -n 's/.*exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	if [ -z "$level" ] || [ "${level%%.*}" -ge 4 ]; then
		echo "FAIL hostd-unit-exposure: ${level:-no level}"
		rc=1
	fi
else
	echo "SKIP hostd-unit-security: systemd-analyze security --offline unsupported"
fi

# The sandbox must still let freehintd do its job: open QEMU's
# /proc/PID/map_files (CAP_SYS_ADMIN, ptrace access), punch holes
# (fallocate), talk over AF_UNIX and listen on AF_VSOCK.
value() { sed -n "s/^$1=//p" "$unit" | tail -n 1; }
# expand GROUP: every system call a SystemCallFilter group allows.
expand() {
	systemd-analyze syscall-filter "$1" 2>/dev/null | sed -n 's/^ *//p' |
	    while read -r s; do
		case $s in
		"$1" | "" | \#*) ;;
		@*) expand "$s" ;;
		*) echo "$s" ;;
		esac
	    done
}
need_ok=1
for c in CAP_SYS_ADMIN CAP_SYS_PTRACE; do
	value CapabilityBoundingSet | grep -qw "$c" ||
	    { echo "FAIL hostd-unit-needs: $c not in CapabilityBoundingSet"; need_ok=0; }
done
for a in AF_UNIX AF_VSOCK; do
	value RestrictAddressFamilies | grep -qw "$a" ||
	    { echo "FAIL hostd-unit-needs: $a not in RestrictAddressFamilies"; need_ok=0; }
done
filter=$(value SystemCallFilter)
: >"$tmp/allowed"
for g in $filter; do
	case $g in
	@*) expand "$g" >>"$tmp/allowed" ;;
	*) echo "$g" >>"$tmp/allowed" ;;
	esac
done
for s in fallocate openat connect bind listen accept4 fstatfs; do
	grep -qx "$s" "$tmp/allowed" ||
	    { echo "FAIL hostd-unit-needs: SystemCallFilter=$filter refuses $s"; need_ok=0; }
done
if [ $need_ok = 1 ]; then
	echo "PASS hostd-unit-needs (caps, address families, $(sort -u "$tmp/allowed" | wc -l) system calls)"
else
	rc=1
fi

if make -s install-hostd DESTDIR="$tmp/stage" PREFIX=/usr >"$tmp/install.log" 2>&1 &&
	[ -x "$tmp/stage/usr/sbin/freehintd" ] &&
	[ -x "$tmp/stage/usr/bin/freehintctl" ] &&
	grep -q "^ExecStart=/usr/sbin/freehintd$" "$tmp/stage/lib/systemd/system/freehintd.service" &&
	[ -f "$tmp/stage/usr/share/man/man8/freehintd.8" ] &&
	[ -f "$tmp/stage/usr/share/man/man5/freehintd.conf.5" ] &&
	"$tmp/stage/usr/sbin/freehintd" -n -f "$(find "$tmp/stage" -name freehintd.conf.example)" \
	    >>"$tmp/install.log" 2>&1; then
	echo "PASS hostd-install"
else
	echo "FAIL hostd-install: see below"
	cat "$tmp/install.log"
	rc=1
fi

# freehintd.conf(5): every key the daemon dumps is documented, and the
# page's example is a configuration the daemon accepts.
man5=man/freehintd.conf.5
sed -n '/^\.nf/,/^\.fi/p' $man5 | sed '1d;$d;s/\\-/-/g' >"$tmp/example.conf"
missing=
for k in $(build/freehintd --dump-config -f "$tmp/example.conf" \
    --libvirt-uri qemu:///system | awk '{ print $1 }' | sort -u); do
	sed 's/\\-/-/g' $man5 | grep -q "^\.BI* $k\( \|$\)" || missing="$missing $k"
done
if [ -n "$missing" ]; then
	echo "FAIL hostd-conf-man: keys not in $man5:$missing"
	rc=1
elif ! build/freehintd -n -f "$tmp/example.conf" >"$tmp/n.log" 2>&1; then
	echo "FAIL hostd-conf-man: the example is refused: $(cat "$tmp/n.log")"
	rc=1
elif LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z $man5 2>&1 | grep .; then
	echo "FAIL hostd-conf-man: groff warnings above"
	rc=1
else
	echo "PASS hostd-conf-man"
fi
exit $rc
