#!/bin/sh
# Build tests/libvirt/vlprobe into $1 (default build/tests/vlprobe) from
# the libvirt source (host-daemon/libvirt*.c) and libfreehint.a: make
# must have run.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/build/tests/vlprobe}
mkdir -p "$(dirname "$out")"
# shellcheck disable=SC2046
cc -std=gnu11 -O1 -g -Wall -Wextra -Wno-unused-parameter -Werror \
	-D_GNU_SOURCE -I"$root/build/proto" -I"$root/proto" -I"$root/lib" \
	-I"$root/host-daemon" $(pkg-config --cflags libxml-2.0) -o "$out" \
	"$root/tests/libvirt/vlprobe.c" "$root"/host-daemon/libvirt*.c \
	"$root/build/libfreehint.a" \
	$(pkg-config --libs libvirt libvirt-qemu libevent libprotobuf-c \
	libxml-2.0) -pthread
