#!/bin/sh
# Reclaim from a busy guest (issue 14), in a real 512 MiB guest with
# memfd RAM: fhfill takes 280 MiB and frees it while fhchurn keeps
# allocating and freeing 40 MiB (checking a stamp in every page). The
# same guest runs twice: with QEMU's own free-page-reporting (the
# reference), then with freehint.ko, the agent and freehintd on their
# defaults. QEMU's RssShmem is sampled from the fill until 12 s after the
# free, and what it fell below its highest before the free counts.
# freehint must give back more than half of the 280 MiB, and each churn
# must find every page as it left it. (Not all of the 280 MiB: the kernel
# reports free blocks of 2 MiB and up, and the churn's pages keep some of
# the freed memory in smaller pieces, for both.) The two are printed side
# by side; which gives back more, and how soon, is a target that
# bench/reclaim.py judges on medians of repeated runs (issue 14), not
# this one run of each.
# FH_BUSY_AGENT=path runs this with another agent binary (an older one
# failed every batch back while the guest allocated fast: nothing came
# back).
set -u
cd "$(dirname "$0")/../.." || exit 1
FHROOT=$(pwd)
. tests/hostd/e2e.sh
guest_require hostd-busy
make -s all kmod kmod-tests >/dev/null 2>&1 ||
	{ fail hostd-busy "make all kmod kmod-tests failed"; exit 1; }
# How much each mechanism gives back depends on how the guest's other
# pages landed among the 280 MiB (both report only free blocks of 2 MiB
# and up, and the kernel reports what a first pass leaves 2 s later only
# if that pass ran out of budget): QEMU's reporting alone gave back 238 to
# 274 MiB in four runs on a 2-core build machine, freehint 234 to 274,
# and once 222 in a CI run where QEMU gave 264. One run of each cannot
# rank them; it can tell nothing at all (the older agent) from reclaim.
WINDOW_MS=12000

d=$(mktemp -d /tmp/fh-busy.XXXXXX)
dpid= qpid=
stop() {
	[ -n "$dpid" ] && kill "$dpid" 2>/dev/null
	[ -n "$qpid" ] && kill "$qpid" 2>/dev/null
	wait 2>/dev/null
	dpid= qpid=
}
cleanup() {
	stop
	rm -rf "$d"
}
trap cleanup EXIT
guest_build "$d/initrd.cpio.gz" -m "$FHROOT/kmod/freehint.ko" \
    -b "${FH_BUSY_AGENT:-$FHROOT/build/freehint-agent}" \
    -b "$FHROOT/build/tests/kmod/fhfill" -b "$FHROOT/build/tests/kmod/fhchurn" \
    -s "$FHROOT/tests/hostd/guest-busy.sh" >"$d/mkinitrd.log" 2>&1 ||
	{ fail hostd-busy "initrd build failed"; exit 1; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# busy_run qemu|freehint: one guest; its RssShmem from the fill on goes
# to $d/RUN.curve ("ms kB"), when the free was seen to $d/RUN.freed, its
# console to $d/RUN/guest.log; why it failed to $d/why.
busy_run() {
	_m=$1 _r=$d/$1
	mkdir -p "$_r"
	if [ "$_m" = qemu ]; then
		set -- -a fhbusy.ref=qemu -- \
		    -device virtio-balloon-pci,free-page-reporting=on
	else
		set -- -c "$_r/chan"
	fi
	"$FHROOT/tests/guest/run-guest.sh" -b -m 512 -t 300 -q "$_r/qmp" \
	    -p "$_r/qemu.pid" -i "$d/initrd.cpio.gz" -l "$_r/guest.log" "$@" ||
		{ echo "guest did not start" >"$d/why"; return 1; }
	qpid=$(cat "$_r/qemu.pid")
	if [ "$_m" = freehint ]; then
		"$FHROOT/build/freehintd" -d --vsock-port 0 --control "$_r/ctl" \
		    --vm "name=busy,qmp=$_r/qmp,channel=$_r/chan" \
		    >"$_r/freehintd.log" 2>&1 &
		dpid=$!
	fi
	e2e_wait_log "$_r/guest.log" "FH FILLED" 150 || { echo "no fill" >"$d/why"; return 1; }
	# From the fill on: on a loaded machine the kernel may report
	# before the cue that fhfill has exited reaches the console.
	_t0=$(now_ms) _freed=
	: >"$_r.curve"
	while :; do
		_t=$(($(now_ms) - _t0))
		echo "$_t $(e2e_rss "$qpid")" >>"$_r.curve"
		[ -z "$_freed" ] && grep -aq "FH FREED" "$_r/guest.log" &&
			_freed=$_t && echo "$_t" >"$_r.freed"
		[ -n "$_freed" ] && [ "$_t" -ge $((_freed + WINDOW_MS)) ] && break
		[ -z "$_freed" ] && [ "$_t" -ge 60000 ] &&
			{ echo "no free" >"$d/why"; return 1; }
		sleep 0.1
	done
	e2e_wait_log "$_r/guest.log" "FHGUEST EXIT" 120 ||
		{ echo "the guest did not finish" >"$d/why"; return 1; }
}

# curve RUN [BY_MS]: "drop_kB ms at_kB": the largest drop of RssShmem
# after its highest before the free was seen (up to BY_MS after it), when
# (ms after the free was seen, negative if before) it was first reached,
# and that highest value.
curve() {
	awk -v f="$(cat "$d/$1.freed")" -v by="${2:-999999999}" '
	{ t[NR] = $1 - f; r[NR] = $2 }
	$1 < f && $2 > at { at = $2; top = NR }
	END {
		for (i = top; i <= NR; i++)
			if (t[i] <= by && at - r[i] > drop) {
				drop = at - r[i]
				when = t[i]
			}
		print drop + 0, when + 0, at + 0
	}' "$d/$1.curve"
}

# churn_result RUN: the churn's verdict line, or nothing.
churn_result() {
	tr -d '\r' <"$d/$1/guest.log" | grep -a '^fhchurn: '
}

for run in qemu freehint; do
	busy_run $run
	rc=$?
	[ "$run" = freehint ] && ! kill -0 "$dpid" 2>/dev/null && dead=1
	stop
	if [ $rc -ne 0 ]; then
		fail "hostd-busy:$run" "$(cat "$d/why")"
		tr -d '\r' <"$d/$run/guest.log" | grep -a -v '^\[' | tail -n 40
		[ -f "$d/$run/freehintd.log" ] && tail -n 20 "$d/$run/freehintd.log"
		exit 1
	fi
	tr -d '\r' <"$d/$run/guest.log" | grep -a -v '^\[' | tail -n 70
	if churn_result $run | grep -q '^fhchurn: [0-9]* rounds of 40 MiB, 0 bad pages'; then
		pass "hostd-busy:$run-churn-intact ($(churn_result $run | grep -o '^fhchurn: [0-9]* rounds'))"
	else
		fail "hostd-busy:$run-churn-intact" "$(churn_result $run || echo 'no result')"
	fi
done

set -- $(curve qemu)
qdrop=$1 qt=$2 qat=$3
set -- $(curve freehint)
fdrop=$1 ft=$2 fat=$3
set -- $(curve freehint $((qt + 2000)))
fdrop_by=$1
echo "RssShmem drop in $((WINDOW_MS / 1000)) s after the free:" \
    "QEMU free-page-reporting $((qdrop / 1024)) MiB of $((qat / 1024))" \
    "(reached at $qt ms), freehint $((fdrop / 1024)) MiB of" \
    "$((fat / 1024)) (reached at $ft ms), freehint $((fdrop_by / 1024))" \
    "MiB by $((qt + 2000)) ms"
if [ "$fdrop" -ge 143360 ]; then
	pass "hostd-busy:rss-drop ($((fdrop / 1024)) MiB of 280 freed)"
else
	fail hostd-busy:rss-drop "$((fdrop / 1024)) MiB of 280 freed"
fi
# freehintd refuses an empty batch (but a pass's last HELD one) as
# MALFORMED; the agent must never send one.
if grep -q 'empty batch' "$d/freehint/freehintd.log"; then
	fail hostd-busy:no-empty-batch "$(grep -m1 'empty batch' "$d/freehint/freehintd.log")"
else
	pass hostd-busy:no-empty-batch
fi
grep -c 'rejected' "$d/freehint/freehintd.log" | sed 's/^/freehintd: rejected batches logged: /'
if [ -z "${dead:-}" ]; then
	pass hostd-busy:freehintd-alive
else
	fail hostd-busy:freehintd-alive "freehintd died"
fi
exit "${FH_FAILED:-0}"
