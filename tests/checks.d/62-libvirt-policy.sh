#!/bin/sh
# The policy that follows the VM, against a real libvirtd: a domain whose
# XML carries freehint metadata (discard=off, min-order=10) is served with
# that policy, nothing is punched while the guest frees memory; `virsh
# metadata` then turns discard on without restarting anything, and the
# next memory the guest frees is given back. Run it under the libvirt
# lock (flock /tmp/freehint-libvirt.lock), like 60-libvirt.
cd "$(dirname "$0")/../.." || exit 1
. tests/guest/lib.sh

out=$FHROOT/build/libvirt-policy
V="virsh -q -c qemu:///system"
DOM=fh-lvpol
NS=https://freehint.org/xmlns/libvirt/1
[ "$(id -u)" -eq 0 ] || skip "libvirt-policy: needs root"
command -v libvirtd >/dev/null || skip "libvirt-policy: libvirtd not installed"
guest_require
rm -rf "$out"
mkdir -p "$out"
hostd_pid=
cleanup() {
	[ -n "$hostd_pid" ] && kill "$hostd_pid" 2>/dev/null
	$V destroy $DOM >/dev/null 2>&1
	$V undefine $DOM >/dev/null 2>&1
	tests/libvirt/env.sh down >/dev/null 2>&1
}
trap cleanup EXIT INT TERM

if ! make -s all >"$out/make.log" 2>&1 || ! make -s kmod >>"$out/make.log" 2>&1; then
	fail libvirt-policy-build "see $out/make.log"
	exit 1
fi
if ! tests/libvirt/env.sh up >"$out/env.log" 2>&1; then
	fail libvirt-policy-env "libvirtd does not start: $(tail -n 3 "$out/env.log")"
	exit 1
fi

# The guest dirties and frees 64 MiB every few seconds, for ever.
cat >"$out/guest.sh" <<'GUEST'
insmod /lib/freehint/freehint.ko || echo "FHGUEST no module"
freehint-agent -d --transport virtio-serial >/tmp/agent.log 2>&1 &
sleep 2
n=0
while :; do
	dd if=/dev/urandom of=/tmp/fill bs=1M count=64 2>/dev/null
	rm -f /tmp/fill
	n=$((n + 1))
	echo "FHGUEST FREED $n"
	sleep 4
done
GUEST
if ! guest_build "$out/guest.cpio.gz" -s "$out/guest.sh" -m kmod/freehint.ko \
    -b build/freehint-agent >"$out/mkinitrd.log" 2>&1; then
	fail libvirt-policy-guest "mkinitrd: see $out/mkinitrd.log"
	exit 1
fi
tests/libvirt/mkdomain.sh -n $DOM -i "$out/guest.cpio.gz" -d "$out" -m 320 |
    sed "s|</name>|&<metadata><fh:policy xmlns:fh='$NS'><fh:discard>off</fh:discard><fh:min-order>10</fh:min-order></fh:policy></metadata>|" \
    >"$out/$DOM.xml"

ctl="build/freehintctl -s $out/ctl.sock"
build/freehintd -d -v --libvirt-uri qemu:///system --control "$out/ctl.sock" \
    >"$out/freehintd.log" 2>&1 &
hostd_pid=$!
$V define "$out/$DOM.xml" >/dev/null && $V start $DOM >/dev/null ||
    { fail libvirt-policy-start "virsh start failed"; exit 1; }

# js EXPR: EXPR of the domain's status --json entry v.
js() {
	$ctl status --json 2>/dev/null | python3 -c "import json, sys
v = [x for x in json.load(sys.stdin)['vms'] if x['name'] == '$DOM'][0]
print($1)" 2>/dev/null
}
is() { [ "$(js "$1")" = "$2" ]; }
# freed N: the guest has freed memory N more times since now.
freed() {
	_from=$(grep -c "FHGUEST FREED" "$out/$DOM.log" 2>/dev/null)
	wait_for 60 sh -c "[ \$(grep -c 'FHGUEST FREED' '$out/$DOM.log') -ge $((_from + $1)) ]"
}

if wait_for 30 is 'v["policy"]["discard"], v["policy"]["min-order"], v["policy"]["overrides"]' \
    "False 10 {'min-order': 'metadata', 'discard': 'metadata'}"; then
	pass libvirt-policy-from-metadata
else
	fail libvirt-policy-from-metadata "$(js 'v.get("policy")')"
fi
if wait_for 120 is 'v["connected"]' True && freed 3 &&
    [ "$(js 'v["ranges_applied"] > 0')" = True ] && is 'v["reclaimed_bytes"]' 0; then
	pass libvirt-policy-discard-off-punches-nothing
else
	fail libvirt-policy-discard-off-punches-nothing \
	    "$(js 'v["connected"], v["ranges_applied"], v["reclaimed_bytes"]')"
fi
# The domain's metadata changes on the running domain: the event.
$V metadata $DOM $NS --key fh --live \
    --set "<policy><discard>on</discard></policy>" >"$out/virsh-metadata.log" 2>&1
if wait_for 10 is 'v["policy"]["discard"], v["policy"]["min-order"], v["policy"]["overrides"]' \
    "True 9 {'discard': 'metadata'}"; then
	pass libvirt-policy-metadata-change
else
	fail libvirt-policy-metadata-change "$(js 'v.get("policy")') $(cat "$out/virsh-metadata.log")"
fi
if freed 2 && wait_for 20 is 'v["reclaimed_bytes"] >= 32 << 20' True; then
	pass "libvirt-policy-discard-on-punches ($(($(js 'v["reclaimed_bytes"]') >> 20)) MiB)"
else
	fail libvirt-policy-discard-on-punches "$(js 'v["reclaimed_bytes"]')"
fi
$V metadata $DOM $NS --live --remove >>"$out/virsh-metadata.log" 2>&1
if wait_for 10 is 'v["policy"]["overrides"]' "{}"; then
	pass libvirt-policy-metadata-removed
else
	fail libvirt-policy-metadata-removed "$(js 'v.get("policy")')"
fi
if kill -0 "$hostd_pid" 2>/dev/null; then
	pass libvirt-policy-daemon-alive
else
	fail libvirt-policy-daemon-alive "freehintd exited: $(tail -n 5 "$out/freehintd.log")"
fi
exit "${FH_FAILED:-0}"
