# Guest side of the limits test: /proc/freehint/blocks is root only and
# its snapshot bounded; timeouts and the grace period have an upper bound
# on load and on write; capture's limit= refuses values that would wrap.
. /lib/freehint/guest-lib.sh
P=/sys/module/freehint/parameters
ko=/lib/freehint/freehint.ko

for a in report_timeout_ms=600001 report_grace_ms=4294967295 hold_timeout_ms=4294967296; do
	if insmod $ko "$a" 2>/dev/null; then
		no "limits-insmod-refuses-${a%%=*}" "insmod $a loaded"; rmmod freehint
	else
		ok "limits-insmod-refuses-${a%%=*}"
	fi
done
insmod $ko || { no limits-insmod "insmod failed"; exit 1; }
v="$(cat $P/report_timeout_ms) $(cat $P/report_grace_ms) $(cat $P/hold_timeout_ms)"
[ "$v" = "5000 10000 60000" ] && ok limits-defaults-kept || no limits-defaults-kept "$v"
for p in report_timeout_ms report_grace_ms hold_timeout_ms; do
	old=$(cat $P/$p)
	bad=
	for x in 600001 4294967295 4294967296 -1; do
		if echo "$x" >$P/$p 2>/dev/null; then bad="$bad $x"; fi
	done
	[ "$(cat $P/$p)" = "$old" ] || bad="$bad (now $(cat $P/$p))"
	[ -z "$bad" ] && ok "limits-$p-write-bounded" || no "limits-$p-write-bounded" "accepted:$bad"
	if echo 600000 >$P/$p && [ "$(cat $P/$p)" = 600000 ]; then
		ok "limits-$p-write-max"
	else
		no "limits-$p-write-max" "600000 refused"
	fi
	echo "$old" >$P/$p
done

# Root only: mode 0400, and a real unprivileged open fails.
mode=$(stat -c %a /proc/freehint/blocks)
[ "$mode" = 400 ] && ok limits-blocks-mode-0400 || no limits-blocks-mode-0400 "mode $mode"
out=$(/bin/fhuser 65534 /proc/freehint/stats)
[ "$out" = "open ok" ] && ok limits-nonroot-opens-stats ||
	no limits-nonroot-opens-stats "control: uid 65534 cannot open stats: $out"
out=$(/bin/fhuser 65534 /proc/freehint/blocks)
rc=$?
[ $rc = 0 ] && ok limits-blocks-nonroot-eacces ||
	no limits-blocks-nonroot-eacces "uid 65534: $out (exit $rc)"

# Bounded snapshot: the cap holds and the output says it was cut.
full=$(grep -vc '^#' /proc/freehint/blocks)
t0=$(stat_of snapshots_truncated)
if echo 100 >$P/blocks_max_entries; then
	cat /proc/freehint/blocks >/tmp/blocks
	n=$(grep -vc '^#' /tmp/blocks)
	last=$(tail -n 1 /tmp/blocks)
	echo "blocks: $full blocks uncapped, $n with max 100, last line '$last'"
	if [ "$full" -gt 100 ] && [ "$n" = 100 ] && [ "${last#\# truncated}" != "$last" ] &&
		head -n 1 /tmp/blocks | grep -q "max_entries=100"; then
		ok limits-blocks-capped
	else
		no limits-blocks-capped "$n blocks of $full, last line '$last'"
	fi
	[ "$(stat_of snapshots_truncated)" -gt "${t0:-0}" ] && ok limits-stats-truncated ||
		no limits-stats-truncated "snapshots_truncated $(stat_of snapshots_truncated)"
else
	no limits-blocks-capped "no blocks_max_entries parameter"
fi
bad=
for x in 0 16777217 -1; do
	echo "$x" >$P/blocks_max_entries 2>/dev/null && bad="$bad $x"
done
[ -z "$bad" ] && ok limits-max-entries-bounded || no limits-max-entries-bounded "accepted:$bad"
echo 262144 >$P/blocks_max_entries 2>/dev/null
cat /proc/freehint/blocks >/tmp/blocks
if [ "$(grep -vc '^#' /tmp/blocks)" -gt 100 ] && ! grep -q '^# truncated' /tmp/blocks; then
	ok limits-blocks-uncapped-whole
else
	no limits-blocks-uncapped-whole "$(grep -vc '^#' /tmp/blocks) blocks, $(grep '^# truncated' /tmp/blocks)"
fi

# limit= values beyond 2^64 - 1 are refused, not wrapped.
exec 3<>/proc/freehint/hold
for v in 99999999999999999999 18446744073709551616 17179869184G 16E 16384P; do
	if printf 'capture min_order=9 limit=%s\n' "$v" >&3 2>/dev/null; then
		no "limits-capture-limit-$v" "accepted, hold_bytes $(stat_of hold_bytes)"
		echo release >&3
	else
		ok "limits-capture-limit-$v"
	fi
done
if printf 'capture min_order=9 limit=64M\n' >&3 && [ "$(stat_of hold_bytes)" -gt 0 ] &&
	[ "$(stat_of hold_bytes)" -le 67108864 ]; then
	ok limits-capture-limit-64M
else
	no limits-capture-limit-64M "hold_bytes $(stat_of hold_bytes)"
fi
echo release >&3
exec 3>&-
rmmod freehint || no limits-rmmod "rmmod failed"
dmesg_clean limits-dmesg-clean
exit $st
