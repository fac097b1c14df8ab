#!/bin/sh
# A real Debian 12 guest with systemd as PID 1 (tests/systemd/): the
# freehint-agent package installed with dpkg, `systemctl enable --now
# freehint-agent` under the unit's own sandbox, talking to freehintd on
# this machine over virtio-serial. Memory the guest frees comes back
# (QEMU's RssShmem drops); SIGSTOP past WatchdogSec restarts the agent; a
# freehintd restart is followed by a reconnection; without the module the
# unit settles with the reason in `systemctl status`; the journal has the
# agent's warnings at warning priority. Then freehintd.service from the
# freehintd package runs in the same guest under its full sandbox, for a
# fake QEMU and a deputy agent, and discards. The guest reports its own cases
# as "FHT PASS|FAIL" lines on the console.
set -u
cd "$(dirname "$0")/../.." || exit 1
FHROOT=$(pwd)
. tests/guest/lib.sh
guest_require systemd-guest
command -v debootstrap >/dev/null || skip systemd-guest "debootstrap not installed"
command -v dpkg-buildpackage >/dev/null || skip systemd-guest "debhelper not installed"
kv=$(guest_kver)
make -s all kmod hostd-tests >/dev/null 2>&1 || { fail systemd-guest "make all kmod failed"; exit 1; }
version=$(make -s --no-print-directory version)
agent_deb=build/deb/freehint-agent_${version}_$(dpkg --print-architecture).deb
# 16-deb built the packages already unless a tracked file changed since.
newest=$(git ls-files -z | xargs -0 stat -c %Y 2>/dev/null | sort -n | tail -n 1)
if [ ! -f "$agent_deb" ] || [ "$(stat -c %Y "$agent_deb")" -lt "${newest:-0}" ]; then
	make -s deb >/dev/null 2>&1 || { fail systemd-guest "make deb failed"; exit 1; }
fi

d=$(mktemp -d /tmp/fh-sd.XXXXXX)
dpid=
cleanup() {
	[ -n "$dpid" ] && kill "$dpid" 2>/dev/null
	[ -s "$d/qemu.pid" ] && kill "$(cat "$d/qemu.pid")" 2>/dev/null
	rm -rf "$d"
}
trap cleanup EXIT
rss() { sed -n 's/^RssShmem:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$qpid/status"; }
# wait_fht WHAT SECONDS: until the guest printed "FHT WHAT".
wait_fht() { wait_for "$2" grep -aq "FHT $1" "$d/guest.log"; }
start_hostd() {
	build/freehintd -d --vsock-port 0 --control "$d/ctl" \
	    --vm "name=sd,qmp=$d/qmp,channel=$d/chan" >>"$d/freehintd.log" 2>&1 &
	dpid=$!
}

printf 'transport virtio-serial\n' >"$d/agent.conf"
start=$(date +%s)
if ! tests/systemd/mkimage.sh -o "$d" -k "$kv" \
    -d "$agent_deb" \
    -d "build/deb/freehintd_${version}_$(dpkg --print-architecture).deb" \
    -u build/tests/hostd/fh-fakeqemu:/usr/local/lib/fh/fh-fakeqemu \
    -u build/tests/hostd/fh-hostile:/usr/local/lib/fh/fh-hostile \
    -u "$d/agent.conf:/etc/freehint/agent.conf" \
    -u tests/systemd/guest-test.sh:/usr/local/sbin/fh-guest-test \
    -u tests/systemd/fh-test.service:/etc/systemd/system/fh-test.service \
    -e fh-test.service >"$d/mkimage.log" 2>&1; then
	fail systemd-guest:image "$(tail -n 20 "$d/mkimage.log")"
	exit 1
fi
pass "systemd-guest:image ($(($(date +%s) - start)) s)"

tests/guest/run-guest.sh -b -m 512 -t 600 -q "$d/qmp" -c "$d/chan" \
    -p "$d/qemu.pid" -i "$d/initrd.cpio.gz" -l "$d/guest.log" \
    -a "root=/dev/vda rw systemd.show_status=0" -- \
    -drive "file=$d/root.img,if=virtio,format=raw" || {
	fail systemd-guest "QEMU did not start"
	exit 1
}
qpid=$(cat "$d/qemu.pid")
start_hostd

if wait_fht BOOTED 300; then
	pass "systemd-guest:boot ($(grep -a 'FHT BOOTED' "$d/guest.log" | sed 's/.*BOOTED //'))"
else
	fail systemd-guest:boot "no FHT BOOTED; $(tail -n 20 "$d/guest.log")"
	exit 1
fi
if wait_fht FILLED 120; then
	sleep 1
	before=$(rss)
	wait_fht FREED 60
	after=$before
	n=0
	while [ $n -lt 40 ] && [ $((before - after)) -lt 102400 ]; do
		sleep 0.5
		n=$((n + 1))
		after=$(rss)
	done
	if [ $((before - after)) -ge 102400 ]; then
		pass "systemd-guest:memory-back ($(((before - after) / 1024)) MiB)"
	else
		fail systemd-guest:memory-back "RssShmem $before -> $after kB"
	fi
	status=$(build/freehintctl -s "$d/ctl" status 2>&1)
	echo "$status" | grep -q '^sd *virtio-serial' &&
	    pass systemd-guest:status || fail systemd-guest:status "$status"
fi
if wait_fht RESTART-HOSTD 200; then
	kill "$dpid"
	wait "$dpid" 2>/dev/null
	start_hostd
fi
wait_fht DONE 300 || fail systemd-guest:done "the guest did not finish"
sed -n 's/.*FHT \(PASS\|FAIL\) \(.*\)/\1 systemd-guest:\2/p' "$d/guest.log" | tr -d '\r'
grep -aq "FHT FAIL" "$d/guest.log" && FH_FAILED=1
if [ "${FH_FAILED:-0}" != 0 ]; then
	echo "--- guest log"
	tail -n 60 "$d/guest.log"
	echo "--- freehintd log"
	tail -n 20 "$d/freehintd.log"
fi
exit "${FH_FAILED:-0}"
