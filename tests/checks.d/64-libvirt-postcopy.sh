#!/bin/sh
# A real postcopy migration between two libvirtd instances on this machine
# (tests/libvirt/twohosts.sh), a freehintd on each, the module and the
# agent in the guest (tests/hostd/guest-postcopy.sh: it keeps dirtying
# and freeing memory and prints the checksum of 32 MiB it keeps).
# `virsh migrate --live --postcopy`, then `virsh migrate-postcopy`:
#  - the source discards before the migration (discard mode works here);
#  - B's freehintd pauses discards from the incoming migration's start;
#    while postcopy runs it punches nothing (its reclaimed bytes stay 0,
#    status says why, batches that reach it are refused), nor does A's
#    after the switchover;
#  - the guest runs on B with its kept memory intact, and B discards
#    again once the migration is over.
# Run it under the libvirt lock (flock /tmp/freehint-libvirt.lock), like
# the other 6x steps. Logs in build/libvirt-postcopy/.
cd "$(dirname "$0")/../.." || exit 1
. tests/guest/lib.sh
. tests/libvirt/twohosts.sh

out=$FHROOT/build/libvirt-postcopy
DOM=fhm-pc1
L=libvirt-postcopy
th_init $L "$out" $DOM
th_up

# val HOST 'KEY...': the domain's KEYs in HOST's status --json, on one
# line ("" when the domain is not there).
val() {
	build/freehintctl -s "$out/$1/ctl.sock" status --json 2>/dev/null |
	    python3 -c '
import json, sys
v = [x for x in json.load(sys.stdin)["vms"] if x["name"] == sys.argv[1]]
print(" ".join(str(v[0].get(k, "")) for k in sys.argv[2].split()) if v else "")' $DOM "$2"
}
# reclaimed HOST: HOST has discarded something and is not paused.
reclaimed() {
	[ -z "$(val $1 discard_paused)" ] && [ "$(val $1 reclaimed_bytes)" -gt 0 ]
}
# reason HOST: the domain's state and reason on HOST ("running (post-copy)").
reason() { virsh -q -c "$(uri $1)" domstate --reason $DOM 2>/dev/null; }
in_postcopy() { reason $1 | grep -q post-copy; }
paused() { [ -n "$(val $1 discard_paused)" ]; }
job_running() { $VA domjobinfo $DOM 2>/dev/null | grep -q Unbounded; }
dump() {
	for h in a b; do
		echo "# $h: freehintd:"
		grep -v 'agent stats' "$out/$h/freehintd.log" | grep "$DOM" | tail -n 12
		echo "# $h: guest:"
		grep -av "FH SUM" "$out/$h/lib/fh/$DOM.log" 2>/dev/null | tail -n 6
	done
}

if ! guest_build "$out/guest.cpio.gz" -s tests/hostd/guest-postcopy.sh \
    -m kmod/freehint.ko -b build/freehint-agent >"$out/mkinitrd.log" 2>&1; then
	fail $L-guest "mkinitrd: see $out/mkinitrd.log"
	exit 1
fi
tests/libvirt/mkdomain.sh -n $DOM -i "$out/guest.cpio.gz" \
    -d /var/lib/libvirt/fh -m 256 >"$out/$DOM.xml"
if ! $VA create "$out/$DOM.xml" >"$out/create.log" 2>&1; then
	fail $L-start "$(cat "$out/create.log")"
	exit 1
fi
la=$out/a/lib/fh/$DOM.log lb=$out/b/lib/fh/$DOM.log
if wait_for 120 grep -q "FH SUM" "$la" && wait_for 90 reclaimed a; then
	pass "$L-source-discards-before ($(($(val a reclaimed_bytes) >> 20)) MiB)"
else
	fail $L-source-discards-before "reclaimed $(val a reclaimed_bytes); $(tail -n 3 "$la")"
	dump
	exit 1
fi

# ---- the migration: live, slow enough that postcopy lasts a while under
# TCG (most pages are left for it: the agent reconnects on B and sends
# batches meanwhile); switched to postcopy as soon as the job runs (QEMU 7.2 under TCG
# loses guest writes made during a live precopy, 61-libvirt-migrate.sh) ----
t0=$(date +%s)
timeout 400 $VA migrate --live --postcopy --unsafe --verbose \
    --bandwidth 1 --postcopy-bandwidth 1 $DOM "$(uri b)" \
    --migrateuri tcp:$ADDR_B >"$out/migrate.log" 2>&1 &
mig_pid=$!
th_bg $mig_pid
# The job shows before libvirt has set QEMU's postcopy capability, which
# migrate-postcopy needs: asked until QEMU takes it.
switch() { $VA migrate-postcopy $DOM >"$out/migrate-postcopy.log" 2>&1; }
wait_for 60 job_running ||
    fail $L-job "no migration job on A: $(cat "$out/migrate.log")"
# B knows the incoming domain before the switchover, its discards paused
# from the start (the switchover's event comes after the guest runs on
# B). Its memory map is read only once the migration is over: libvirt
# runs a monitor command as a job that modifies the domain, which the
# incoming migration's job does not allow.
if wait_for 120 paused b; then
	pass "$L-destination-paused-before-switchover ($(val b discard_paused))"
else
	fail $L-destination-paused-before-switchover "$(grep "$DOM" "$out/b/freehintd.log" | tail -n 3)"
fi
wait_for 60 switch || fail $L-switch "$(cat "$out/migrate-postcopy.log")"

# While B runs the guest in postcopy: B punches nothing and says why; A
# punches nothing from the switchover on.
wait_for 60 in_postcopy b || fail $L-postcopy-started "B: $(reason b)"
src_at=$(val a reclaimed_bytes)
n=0 worst=0 unpaused=0 src_worst=0 paused=
while kill -0 $mig_pid 2>/dev/null && in_postcopy b; do
	# One status read: reclaimed bytes, then why paused (to the end).
	v=$(val b 'reclaimed_bytes discard_paused')
	r=${v%% *} p=${v#* }
	[ "$p" = "$v" ] && p=
	[ -n "$r" ] && [ "$r" -gt "$worst" ] && worst=$r
	if [ -n "$p" ]; then
		paused=$p
	elif [ -n "$r" ]; then
		unpaused=$((unpaused + 1))
	fi
	r=$(val a reclaimed_bytes)
	[ -n "$r" ] && [ $((r - src_at)) -gt "$src_worst" ] && src_worst=$((r - src_at))
	n=$((n + 1))
	sleep 0.2
done
if wait $mig_pid; then
	pass "$L-migrated (in $(($(date +%s) - t0)) s)"
else
	fail $L-migrated "$(tail -n 3 "$out/migrate.log")"
fi
mig_pid=
if [ $n -ge 5 ]; then
	pass "$L-postcopy-ran ($n samples)"
else
	fail $L-postcopy-ran "only $n samples while B was in postcopy"
fi
# Batches that reach B meanwhile are refused: for the pause, or for the
# map not read yet.
refused=$(sed -n "1,/libvirt: $DOM: postcopy migration finished/p" \
    "$out/b/freehintd.log" | grep -c "vm $DOM: batch [0-9]* rejected")
if [ "$worst" = 0 ] && [ $unpaused = 0 ] && [ "$refused" -gt 0 ]; then
	pass "$L-destination-nothing-punched ($refused batches refused: $paused)"
else
	fail $L-destination-nothing-punched "reclaimed up to $worst bytes, $unpaused of $n samples without a pause, $refused batches refused"
fi
if [ "$src_worst" = 0 ] &&
    grep -q "vm $DOM: postcopy: discards stopped" "$out/a/freehintd.log"; then
	pass $L-source-nothing-punched-after-switchover
else
	fail $L-source-nothing-punched-after-switchover "$src_worst bytes"
fi

# The guest runs on B with its memory intact, and B discards again.
if $VB domstate $DOM 2>/dev/null | grep -q running &&
    ! $VA domstate $DOM >/dev/null 2>&1; then
	pass "$L-moved (runs on B only)"
else
	fail $L-moved "A: $($VA domstate $DOM 2>&1), B: $($VB domstate $DOM 2>&1)"
fi
sums_before=$(grep -ac "FH SUM" "$lb")
wait_for 60 sh -c "[ \$(grep -ac 'FH SUM' '$lb') -ge $((sums_before + 3)) ]"
want=$(sed -n 's/.*FH SUM \([0-9a-f]*\).*/\1/p' "$la" | head -n 1)
got=$(sed -n 's/.*FH SUM \([0-9a-f]*\).*/\1/p' "$la" "$lb" | sort -u)
if [ -n "$want" ] && [ "$got" = "$want" ] && [ "$(grep -ac 'FH SUM' "$lb")" -ge 3 ] &&
    ! grep -qE 'BUG:|Oops|Kernel panic' "$lb"; then
	pass "$L-guest-memory-intact ($(grep -ac 'FH SUM' "$lb") checksums on B)"
else
	fail $L-guest-memory-intact "checksums: $(echo "$got" | wc -l), $(grep -ac 'FH SUM' "$lb") on B; $(grep -m 3 -E 'BUG:|Oops|Kernel panic' "$lb" | tr '\n' ' ')"
fi
if wait_for 60 reclaimed b &&
    grep -q "vm $DOM: postcopy over, the guest runs here" "$out/b/freehintd.log"; then
	pass "$L-destination-discards-after ($(($(val b reclaimed_bytes) >> 20)) MiB)"
else
	fail $L-destination-discards-after "reclaimed $(val b reclaimed_bytes), paused: $(val b discard_paused)"
fi
# The migration's own hint pass held it back through libvirt
# (virDomainMigrateSetMaxSpeed, from freehintd's worker through its
# parent): the bandwidth libvirt had (--bandwidth 1: 1 MiB/s) read back,
# and given back once the pass was over.
hold=$(grep "vm $DOM: migration bandwidth\|vm $DOM: cannot hold" "$out/a/freehintd.log")
if echo "$hold" | grep -q "held at [0-9]* bytes/s (was 1048576)" &&
    echo "$hold" | grep -q "back to 1048576 bytes/s"; then
	pass $L-source-hold-through-libvirt
else
	fail $L-source-hold-through-libvirt "${hold:-no hold logged}"
fi
[ "$FH_FAILED" = 0 ] || dump
exit $FH_FAILED
