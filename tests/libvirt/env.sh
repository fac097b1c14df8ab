#!/bin/sh
# A private libvirtd on the build machine (see TESTING-IN-VMS.md), for
# tests and benchmarks. Idempotent.
#
#   tests/libvirt/env.sh up      configure and start virtlogd + libvirtd
#   tests/libvirt/env.sh down    destroy leftover fh-* domains, stop what
#                                up started, restore qemu.conf
#   tests/libvirt/env.sh status
#   tests/libvirt/env.sh users   only the users libvirt's QEMU driver needs
#
# qemu.conf is replaced only while the environment is up (the original is
# kept beside it). Exits 77 when libvirt is not installed.
set -eu

STATE=${FHLV_STATE:-/run/freehint-test-libvirt}
CONF=/etc/libvirt/qemu.conf
MARK="# freehint test environment"
VIRSH="virsh -q -c qemu:///system"

die() { echo "env.sh: $*" >&2; exit 1; }

running() { [ -s "$1" ] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }

# libvirt's built-in defaults (user libvirt-qemu) are parsed before
# qemu.conf: without the user, the QEMU driver does not start.
users() {
	getent group kvm >/dev/null || groupadd -r kvm
	getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
	getent passwd libvirt-qemu >/dev/null || useradd -r -g kvm \
	    -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
}

up() {
	command -v libvirtd >/dev/null && command -v virsh >/dev/null &&
	    command -v virtlogd >/dev/null || { echo "env.sh: libvirt not installed" >&2; exit 77; }
	[ "$(id -u)" -eq 0 ] || die "must run as root"
	mkdir -p "$STATE" /var/log/libvirt /var/run/libvirt /var/lib/libvirt \
	    /etc/libvirt
	users
	if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
		[ -e "$STATE/qemu.conf.orig" ] || cp -p "$CONF" "$STATE/qemu.conf.orig"
	fi
	[ -e "$CONF" ] || : >"$STATE/qemu.conf.none"
	cat >"$CONF" <<CONF
$MARK: TCG guests as root, nothing that needs a full host.
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
CONF
	if ! running "$STATE/virtlogd.pid"; then
		virtlogd -d -p "$STATE/virtlogd.pid"
	fi
	if ! running "$STATE/libvirtd.pid"; then
		libvirtd -d -p "$STATE/libvirtd.pid" 2>/dev/null
	fi
	i=0
	until $VIRSH version >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 100 ] || die "libvirtd does not answer"
		sleep 0.1
	done
}

# Restart libvirtd only (QEMU processes keep running).
restart() {
	running "$STATE/libvirtd.pid" && kill "$(cat "$STATE/libvirtd.pid")"
	i=0
	while running "$STATE/libvirtd.pid"; do
		i=$((i + 1))
		[ $i -lt 100 ] || die "libvirtd does not stop"
		sleep 0.1
	done
	rm -f "$STATE/libvirtd.pid"
	up
}

down() {
	if running "$STATE/libvirtd.pid"; then
		for d in $($VIRSH list --all --name 2>/dev/null | grep '^fh-' || true); do
			$VIRSH destroy "$d" >/dev/null 2>&1 || true
			$VIRSH undefine "$d" >/dev/null 2>&1 || true
		done
	fi
	for p in libvirtd virtlogd; do
		if running "$STATE/$p.pid"; then
			kill "$(cat "$STATE/$p.pid")" 2>/dev/null || true
			i=0
			while running "$STATE/$p.pid" && [ $i -lt 50 ]; do
				i=$((i + 1))
				sleep 0.1
			done
		fi
		rm -f "$STATE/$p.pid"
	done
	if [ -e "$STATE/qemu.conf.orig" ]; then
		mv "$STATE/qemu.conf.orig" "$CONF"
	elif [ -e "$STATE/qemu.conf.none" ]; then
		rm -f "$CONF" "$STATE/qemu.conf.none"
	fi
	rmdir "$STATE" 2>/dev/null || true
}

status() {
	for p in virtlogd libvirtd; do
		if running "$STATE/$p.pid"; then
			echo "$p: running, pid $(cat "$STATE/$p.pid")"
		else
			echo "$p: not running"
		fi
	done
}

case ${1:-} in
up) up ;;
users) users ;;
down) down ;;
restart) restart ;;
status) status ;;
*) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
