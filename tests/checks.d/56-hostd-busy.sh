#!/bin/sh
# Reclaim from a busy guest (issue 14), in a real 512 MiB guest with
# memfd RAM, freehint.ko, the agent and freehintd with their defaults:
# fhfill takes 280 MiB and frees it while fhchurn keeps allocating and
# freeing 40 MiB (checking a stamp in every page). QEMU's RssShmem must
# drop by more than half of the 280 MiB within 12 s, and the churn must
# find every page as it left it. (Not all of it: the kernel reports free
# blocks of 2 MiB and up, and the churn's pages keep some of the freed
# memory in smaller pieces; QEMU's own free page reporting gives back
# about as much, bench/reclaim.py.) Before the headroom policy the agent failed every
# batch back while the guest allocated faster than 64 MiB/s, and the
# drop was nil: FH_BUSY_AGENT=path runs this with another agent binary,
# to show that.
set -u
cd "$(dirname "$0")/../.." || exit 1
FHROOT=$(pwd)
. tests/hostd/e2e.sh
guest_require hostd-busy
make -s all kmod kmod-tests >/dev/null 2>&1 ||
	{ fail hostd-busy "make all kmod kmod-tests failed"; exit 1; }

d=$(mktemp -d /tmp/fh-busy.XXXXXX)
dpid=
cleanup() {
	[ -n "$dpid" ] && kill "$dpid" 2>/dev/null
	[ -f "$d/qemu.pid" ] && kill "$(cat "$d/qemu.pid")" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$d"
}
trap cleanup EXIT
guest_build "$d/initrd.cpio.gz" -m "$FHROOT/kmod/freehint.ko" \
    -b "${FH_BUSY_AGENT:-$FHROOT/build/freehint-agent}" \
    -b "$FHROOT/build/tests/kmod/fhfill" -b "$FHROOT/build/tests/kmod/fhchurn" \
    -s "$FHROOT/tests/hostd/guest-busy.sh" >"$d/mkinitrd.log" 2>&1 ||
	{ fail hostd-busy "initrd build failed"; exit 1; }
"$FHROOT/tests/guest/run-guest.sh" -b -m 512 -t 300 -q "$d/qmp" \
    -c "$d/chan" -p "$d/qemu.pid" -i "$d/initrd.cpio.gz" -l "$d/guest.log" ||
	{ fail hostd-busy "guest did not start"; exit 1; }
qpid=$(cat "$d/qemu.pid")
"$FHROOT/build/freehintd" -d --vsock-port 0 --control "$d/ctl" \
    --vm "name=busy,qmp=$d/qmp,channel=$d/chan" >"$d/freehintd.log" 2>&1 &
dpid=$!

die() {
	fail hostd-busy "$1"
	tr -d '\r' <"$d/guest.log" | grep -a -v '^\[' | tail -n 40
	tail -n 20 "$d/freehintd.log"
	exit 1
}

e2e_wait_log "$d/guest.log" "FH FILLED" 150 || die "no fill"
filled=$(e2e_rss "$qpid")
e2e_wait_log "$d/guest.log" "FH FREED" 60 || die "no free"
before=$(e2e_rss "$qpid")
low=$before
n=0
while [ $n -lt 120 ]; do
	sleep 0.1
	n=$((n + 1))
	r=$(e2e_rss "$qpid")
	[ "$r" -lt "$low" ] && low=$r
done
echo "RssShmem: $filled kB filled, $before kB at the free, $low kB lowest in 12 s"
drop=$((before - low))
if [ "$drop" -ge 143360 ]; then
	pass "hostd-busy:rss-drop ($((drop / 1024)) MiB of 280 freed)"
else
	fail hostd-busy:rss-drop "RssShmem $before -> $low kB ($((drop / 1024)) MiB)"
fi
e2e_wait_log "$d/guest.log" "FHGUEST EXIT" 120 || die "the guest did not finish"
tr -d '\r' <"$d/guest.log" | grep -a -v '^\[' | tail -n 80
if tr -d '\r' <"$d/guest.log" | grep -a -q '^fhchurn: [0-9]* rounds of 40 MiB, 0 bad pages'; then
	pass "hostd-busy:churn-intact ($(tr -d '\r' <"$d/guest.log" | grep -a -o '^fhchurn: [0-9]* rounds'))"
else
	fail hostd-busy:churn-intact "$(tr -d '\r' <"$d/guest.log" | grep -a '^fhchurn' || echo 'no result')"
fi
if kill -0 "$dpid" 2>/dev/null; then
	pass hostd-busy:freehintd-alive
else
	fail hostd-busy:freehintd-alive "freehintd died"
fi
exit "${FH_FAILED:-0}"
