#!/bin/sh
# The benchmark guests' script (/test.sh of tests/guest/mkinitrd.sh, whose
# /init mounts the file systems, loads virtio_console and powers off when
# this returns). The kernel command line says what to run:
#   bench.run=migrate|reclaim|busy|churn
#   bench.check_mib=MIB  migrate: memory memcheck fills and checks (64)
#   bench.rate=MIBS      migrate: memcheck's dirty rate, 0 for idle (0)
#   bench.dirty=PERCENT  migrate: RAM dirtied, then freed, first (60)
#   bench.frag=MIB       migrate: instead, MIB written and every other
#                        32 KiB of it freed (bench/guest/frag.c)
#   bench.balloon=1    load virtio_balloon (QEMU's hinting and reporting)
#   bench.freehint=1   load freehint.ko and start freehint-agent
#   bench.churn=SECONDS    churn: each workload's time (20)
#   bench.churn_mib=MIB    churn: the size of a round (128)
#   bench.churn_runs=LIST  churn: the workloads, one after another, comma
#                          separated: full (back to back), paced:MIB_S,
#                          bursty:BUSY:IDLE (bench/guest/churn.c) (full)
#   bench.churn_gap=S      churn: seconds between two workloads (5)
#   bench.defer=MIBS   the agent's --report-defer-rate (its default if unset)
#   bench.headroom=MIB the agent's --report-headroom (its default if unset)
# The host follows the serial console: every line it needs starts with
# "BENCH ".
run=none balloon=0 freehint=0 churn=20 defer= headroom=
churn_mib=128 churn_runs=full churn_gap=5
check_mib=64 rate=0 dirty_pct=60 frag_mib=0
for a in $(cat /proc/cmdline); do
	case "$a" in
	bench.run=*) run=${a#*=} ;;
	bench.balloon=*) balloon=${a#*=} ;;
	bench.freehint=*) freehint=${a#*=} ;;
	bench.churn=*) churn=${a#*=} ;;
	bench.churn_mib=*) churn_mib=${a#*=} ;;
	bench.churn_runs=*) churn_runs=${a#*=} ;;
	bench.churn_gap=*) churn_gap=${a#*=} ;;
	bench.defer=*) defer=${a#*=} ;;
	bench.headroom=*) headroom=${a#*=} ;;
	bench.check_mib=*) check_mib=${a#*=} ;;
	bench.rate=*) rate=${a#*=} ;;
	bench.dirty=*) dirty_pct=${a#*=} ;;
	bench.frag=*) frag_mib=${a#*=} ;;
	esac
done

# Pages the guest really uses: its RAM less its free memory.
used() {
	t=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
	f=$(awk '/^MemFree:/ {print $2}' /proc/meminfo)
	echo "BENCH used_kib=$((t - f)) total_kib=$t free_kib=$f"
}

# Non-idle CPU time of the whole guest, in clock ticks (USER_HZ).
cpu() {
	awk '/^cpu / {print "BENCH cpu_ticks=" $2+$3+$4+$7+$8+$9}' /proc/stat
}

# bench_time NAME: dirty's "wrote N MiB in S s" as "BENCH NAME_ms=MS".
bench_time() {
	awk -v n="$1" '/^dirty: wrote/ { printf "BENCH %s_ms=%.0f\n", n, $6 * 1000 }'
}

# The guest's side of a footprint: memory in use, free memory in blocks
# page reporting takes (order 9, 2 MiB, and up: QEMU's and freehint's
# alike, on x86) and the agent's own memory (anonymous pages and page
# tables).
memstate() {
	awk '/^MemTotal:/ { t = $2 } /^MemFree:/ { f = $2 }
	    END { printf "BENCH used_kib=%d\n", t - f }' /proc/meminfo
	awk '{ m = 4; for (i = 5; i <= NF; i++) { if (i >= 14) s += $i * m; m *= 2 } }
	    END { printf "BENCH free_big_kib=%d\n", s }' /proc/buddyinfo
	p=$(pidof freehint-agent) &&
		awk '/^(RssAnon|VmPTE):/ { s += $2 }
		    END { printf "BENCH agent_kib=%d\n", s }' "/proc/$p/status"
}

finish() {
	echo "BENCH done"
	exit 0
}

[ "$balloon" = 1 ] && modprobe virtio_balloon
if [ "$freehint" = 1 ]; then
	insmod /lib/freehint/freehint.ko || echo "BENCH error insmod freehint"
	freehint-agent -d --transport virtio-serial \
		${defer:+--report-defer-rate "$defer"} \
		${headroom:+--report-headroom "$headroom"} >/run/agent.log 2>&1 &
fi
# Let boot-time page reporting and the agent settle.
sleep 2
echo "BENCH booted"

case "$run" in
migrate)
	# Memory the destination checks (bench/migration.py asks it on the
	# port), then free memory that is not zero: dirtied, then freed.
	memcheck "$check_mib" "$rate" /dev/virtio-ports/org.freehint.bench.0 \
	    2>&1 | tee /tmp/memcheck.log &
	while ! grep -q "memcheck filled" /tmp/memcheck.log 2>/dev/null; do
		grep -q "memcheck:" /tmp/memcheck.log 2>/dev/null && break
		sleep 0.2
	done
	if [ "$frag_mib" -gt 0 ]; then
		# Free memory in pieces no reporting order reaches; frag keeps
		# the other half until the guest goes.
		frag "$frag_mib" 32 >/tmp/frag.log 2>&1 &
		while ! grep -q "frag: ready" /tmp/frag.log; do
			grep -q "frag: .*:" /tmp/frag.log && break
			sleep 0.2
		done
	else
		dirty "$dirty_pct"
	fi
	sleep 1
	used
	echo "BENCH ready"
	;;
reclaim)
	cpu
	dirty 70 | bench_time fill
	echo "BENCH freed"
	cpu
	# The host samples for 10 s after the free: stay up a little longer.
	sleep 10
	memstate
	cpu
	sleep 1
	# The cost of faulting the memory back in: the same dirtying again,
	# now onto whatever the host discarded.
	dirty 70 | bench_time refill
	finish
	;;
busy)
	# A busy guest (issue 14): fhfill dirties 280 MiB, then fhchurn
	# starts to allocate, check and free 40 MiB over and over, and keeps
	# on while fhfill frees its 280 MiB 10 s later.
	# Huge pages are off below 512 MiB of RAM; fhchurn asks for them.
	echo madvise >/sys/kernel/mm/transparent_hugepage/enabled
	fhfill 280 12 >/tmp/fill.log 2>&1 &
	fill=$!
	while ! grep -q filled /tmp/fill.log; do sleep 0.2; done
	fhchurn 40 40 >/tmp/churn.log 2>&1 &
	churn=$!
	cpu
	wait $fill
	echo "BENCH freed"
	cpu
	sleep 12
	cpu
	wait $churn
	sed 's/^/BENCH /' /tmp/churn.log
	finish
	;;
churn)
	# Each workload starts with "BENCH churn-start NAME" and ends with
	# churn's line (or its error), the first 3 s after boot.
	sleep 3
	for w in $(echo "$churn_runs" | tr , ' '); do
		case "$w" in
		full) opts= ;;
		paced:*) opts="-r ${w#paced:}" ;;
		bursty:*:*)
			b=${w#bursty:}
			opts="-b ${b%:*} -i ${b#*:}"
			;;
		*)
			echo "BENCH error unknown churn workload '$w'"
			continue
			;;
		esac
		echo "BENCH churn-start $w"
		# shellcheck disable=SC2086 # $opts is churn's options, split
		churn $opts "$churn" "$churn_mib" 2>&1 | sed 's/^/BENCH /'
		sleep "$churn_gap"
	done
	finish
	;;
*)
	echo "BENCH error unknown run '$run'"
	finish
	;;
esac
while :; do sleep 3600; done
