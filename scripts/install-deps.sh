#!/bin/sh
# Install the Debian 12 packages freehint needs to build, test, demo and
# benchmark. Idempotent: does nothing when everything is present.
#
# Usage: scripts/install-deps.sh [build|test|all]   (default: all)
set -eu

build="build-essential pkg-config clang libclang-rt-14-dev libevent-dev \
libprotobuf-c-dev protobuf-c-compiler libsystemd-dev libvirt-dev \
libcmocka-dev libjson-c-dev libxml2-dev"
guest="linux-image-amd64 linux-headers-amd64 busybox-static cpio kmod \
qemu-system-x86 qemu-utils"
virt="libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients"
tools="valgrind gnuplot-nox systemd python3 linux-source-6.1 xz-utils strace \
dkms prometheus debhelper dh-dkms lintian debootstrap"

case "${1:-all}" in
build)	want="$build" ;;
test|all)	want="$build $guest $virt $tools" ;;
*)	echo "usage: $0 [build|test|all]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
	    grep -q '^install ok installed$'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages:$missing" >&2
	echo "install-deps: run this script as root to install them" >&2
	exit 1
fi
echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "install-deps: done"
