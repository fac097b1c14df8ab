#!/bin/sh
# A "host" of its own on the build machine, for a real libvirt-to-libvirt
# migration: a network namespace and a mount + UTS namespace in which
# /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt and
# /var/cache/libvirt are directories under DIR, with its own virtlogd and
# libvirtd (host UUID and hostname of its own, so that libvirt does not
# take the other instance for itself). libvirtd's sockets are in DIR/sock,
# which every namespace sees.
#
#   nshost.sh up DIR NETNS HOSTNAME UUID   start; prints nothing
#   nshost.sh exec DIR CMD...              run CMD inside the host
#   nshost.sh down DIR                     stop everything up started
#
# The network namespace NETNS must exist. DIR/holder.pid is a process
# that keeps the mount namespace; it exits by itself after an hour.
set -eu

self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")

die() { echo "nshost.sh: $*" >&2; exit 1; }
running() { [ -s "$1" ] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }

# The bind mounts, run inside the new mount namespace.
setup() {
	dir=$1 name=$2
	for p in etc:/etc/libvirt run:/run/libvirt lib:/var/lib/libvirt \
	    log:/var/log/libvirt cache:/var/cache/libvirt; do
		mkdir -p "$dir/${p%%:*}" "${p#*:}"
		mount --bind "$dir/${p%%:*}" "${p#*:}"
	done
	hostname "$name"
	ip link set lo up
}

up() {
	dir=$1 netns=$2 name=$3 uuid=$4
	mkdir -p "$dir/etc" "$dir/sock"
	cat >"$dir/etc/libvirtd.conf" <<CONF
unix_sock_dir = "$dir/sock"
host_uuid = "$uuid"
auth_unix_rw = "none"
log_outputs = "3:file:$dir/libvirtd.log"
CONF
	# The same settings as tests/libvirt/env.sh, and nothing of the
	# build machine's own /etc/libvirt (no networks to autostart).
	cat >"$dir/etc/qemu.conf" <<CONF
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
CONF
	: >"$dir/etc/virtlogd.conf"
	"$(dirname "$self")/env.sh" users
	mkfifo "$dir/ready"
	ip netns exec "$netns" unshare -m -u --propagation private \
	    sh -c "'$self' setup '$dir' '$name' && echo ok >'$dir/ready' &&
	        exec sleep 3600" >"$dir/holder.log" 2>&1 &
	echo $! >"$dir/holder.pid"
	read -r ok <"$dir/ready" || die "namespace setup failed"
	rm -f "$dir/ready"
	[ "$ok" = ok ] || die "namespace setup failed: $(cat "$dir/holder.log")"
	run "$dir" virtlogd -d -p "$dir/virtlogd.pid" -f "$dir/etc/virtlogd.conf"
	run "$dir" libvirtd -d -p "$dir/libvirtd.pid" \
	    -f "$dir/etc/libvirtd.conf" 2>>"$dir/libvirtd.err"
	i=0
	until virsh -q -c "qemu+unix:///system?socket=$dir/sock/libvirt-sock" \
	    version >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 100 ] || die "libvirtd in $dir does not answer"
		sleep 0.1
	done
}

run() {
	dir=$1
	shift
	running "$dir/holder.pid" || die "no host in $dir"
	nsenter -t "$(cat "$dir/holder.pid")" -m -u -n "$@"
}

down() {
	dir=$1
	for p in libvirtd virtlogd holder; do
		if running "$dir/$p.pid"; then
			kill "$(cat "$dir/$p.pid")" 2>/dev/null || true
			i=0
			while running "$dir/$p.pid" && [ $i -lt 50 ]; do
				i=$((i + 1))
				sleep 0.1
			done
			running "$dir/$p.pid" && kill -9 "$(cat "$dir/$p.pid")"
		fi
		rm -f "$dir/$p.pid"
	done
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
setup) [ $# -eq 2 ] && setup "$@" ;;
up) [ $# -eq 4 ] || die "usage: up DIR NETNS HOSTNAME UUID"; up "$@" ;;
exec)
	# exec: the caller's $! is the command's own pid.
	[ $# -ge 2 ] || die "usage: exec DIR CMD..."
	running "$1/holder.pid" || die "no host in $1"
	dir=$1
	shift
	exec nsenter -t "$(cat "$dir/holder.pid")" -m -u -n "$@"
	;;
down) [ $# -eq 1 ] || die "usage: down DIR"; down "$@" ;;
*) sed -n '2,15p' "$0" >&2; exit 2 ;;
esac
