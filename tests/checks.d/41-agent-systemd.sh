#!/bin/sh
# systemd/freehint-agent.service: `systemd-analyze verify` on a copy whose
# ExecStart is the built binary (--man=no: the page is not installed here),
# `systemd-analyze security` exposure, and `make install-agent` into a
# staging directory.
set -u
cd "$(dirname "$0")/../.." || exit 1
top=$(pwd)
command -v systemd-analyze >/dev/null ||
	{ echo "SKIP agent-unit: systemd-analyze not installed"; exit 77; }
make -s build/freehint-agent >/dev/null || { echo "FAIL agent-unit-build"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rc=0
unit=$tmp/freehint-agent.service
sed "s|@SBINDIR@|$top/build|" systemd/freehint-agent.service >"$unit"
if systemd-analyze verify --man=no "$unit" >"$tmp/verify.log" 2>&1 &&
	! grep -q . "$tmp/verify.log"; then
	echo "PASS agent-unit-verify"
else
	echo "FAIL agent-unit-verify: systemd-analyze verify says:"
	cat "$tmp/verify.log"
	rc=1
fi
if systemd-analyze security --offline=true "$unit" >"$tmp/sec.log" 2>&1; then
	score=$(grep -a "Overall exposure level" "$tmp/sec.log")
	echo "PASS agent-unit-security: ${score#*: }"
	# Worse than MEDIUM (5.x) means a hardening key went missing.
	level=$(echo "$score" | sed -n 's/.*exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	if [ -n "$level" ] && [ "${level%%.*}" -ge 5 ]; then
		echo "FAIL agent-unit-exposure: $level"
		rc=1
	fi
else
	echo "SKIP agent-unit-security: systemd-analyze security --offline unsupported"
fi
if make -s install-agent DESTDIR="$tmp/stage" PREFIX=/usr >"$tmp/install.log" 2>&1 &&
	[ -x "$tmp/stage/usr/sbin/freehint-agent" ] &&
	grep -q "^ExecStart=/usr/sbin/freehint-agent$" "$tmp/stage/lib/systemd/system/freehint-agent.service" &&
	[ -f "$tmp/stage/usr/share/man/man8/freehint-agent.8" ] &&
	"$tmp/stage/usr/sbin/freehint-agent" -n -f "$tmp/stage/etc/freehint/agent.conf.example"; then
	echo "PASS agent-install"
else
	echo "FAIL agent-install: see below"
	cat "$tmp/install.log"
	rc=1
fi
exit $rc
