#!/bin/sh
# Guest script of the agent benchmark (bench/agent.py): /test.sh of
# tests/guest/mkinitrd.sh. Loads freehint.ko, starts freehint-agent on the
# virtio-serial port, then samples the agent once a second through one
# idle phase and one phase of heavy reporting (churn dirtying and freeing
# memory in a loop). Kernel command line:
#   bench.seconds=S      length of each phase (default 60)
#   bench.churn_mib=M    memory churn allocates, dirties and frees (256)
#   bench.settle=S       wait after starting the agent (default 5)
# Every line the host reads starts with "BENCH ".
secs=60 mib=256 settle=5
for a in $(cat /proc/cmdline); do
	case "$a" in
	bench.seconds=*) secs=${a#*=} ;;
	bench.churn_mib=*) mib=${a#*=} ;;
	bench.settle=*) settle=${a#*=} ;;
	esac
done

# One line per sample: the agent's memory (KiB), CPU (clock ticks and ns
# on CPU), write()/read() traffic, the module's reporting counters and
# the whole guest's CPU ticks. Fields the agent no longer has are absent,
# which the host treats as the agent having died. Counters are printed
# with %s or %.0f: busybox awk's %d stops at 2^31.
sample() {
	awk -v phase="$1" -v t="$2" '
	FILENAME ~ /status$/ && $1 == "VmRSS:" { rss = $2 }
	FILENAME ~ /status$/ && $1 == "VmHWM:" { hwm = $2 }
	FILENAME ~ /[0-9]\/stat$/ { ut = $14; st = $15 }
	FILENAME ~ /schedstat$/ { ns = $1 }
	FILENAME ~ /io$/ { io[substr($1, 1, length($1) - 1)] = $2 }
	FILENAME == "/proc/freehint/stats" { k[$1] = $2 }
	FILENAME == "/proc/stat" && $1 == "cpu" {
		busy = $2 + $3 + $4 + $7 + $8 + $9; idle = $5 + $6
	}
	END {
		printf "BENCH sample phase=%s t=%s", phase, t
		if (rss != "")
			printf " rss=%s hwm=%s ut=%s st=%s ns=%s wchar=%s" \
			    " syscw=%s rchar=%s syscr=%s", rss, hwm, ut, st, ns,
			    io["wchar"], io["syscw"], io["rchar"], io["syscr"]
		printf " kbatches=%s kblocks=%s kbytes=%s kacked=%s" \
		    " kfailed=%s ktimeouts=%s busy=%.0f idle=%.0f\n",
		    k["report_batches"], k["report_blocks"], k["report_bytes"],
		    k["report_acked_bytes"], k["report_failed_batches"],
		    k["report_timeouts"], busy, idle
	}' /proc/"$pid"/status /proc/"$pid"/stat /proc/"$pid"/schedstat \
		/proc/"$pid"/io /proc/freehint/stats /proc/stat 2>/dev/null
}

# Samples once a second for $secs seconds (phase $1), timed by the clock
# rather than by sleep 1, so that a slow sample does not stretch the phase.
phase() {
	echo "BENCH phase $1 start"
	t0=$(cut -d. -f1 /proc/uptime)
	sample "$1" 0
	n=1
	while [ "$n" -le "$secs" ]; do
		while [ $(($(cut -d. -f1 /proc/uptime) - t0)) -lt "$n" ]; do
			sleep 0.2
		done
		sample "$1" "$n"
		n=$((n + 1))
	done
	echo "BENCH phase $1 end"
}

if ! insmod /lib/freehint/freehint.ko; then
	echo "BENCH error insmod freehint.ko"
	exit 1
fi
# Deferral off: the churn is what the agent's reporting path must carry
# here; with the default the agent would give those batches back unsent.
freehint-agent -d --transport virtio-serial --report-defer-rate 0 \
	>/run/agent.log 2>&1 &
pid=$!
sleep "$settle"
echo "BENCH agent pid=$pid churn_mib=$mib seconds=$secs"
sed -n 's/^/BENCH kstats /p' /proc/freehint/stats

phase idle
# churn runs a little longer than the phase so that the last sample still
# sees it working.
churn $((secs + 3)) "$mib" >/run/churn.log 2>&1 &
cpid=$!
phase heavy
wait "$cpid"
sed 's/^/BENCH /' /run/churn.log
echo "BENCH agent welcomes=$(grep -c welcomed /run/agent.log)"
sed -n 's/^/BENCH agentlog /p' /run/agent.log | tail -n 20
kill "$pid"
wait "$pid"
echo "BENCH agent exit=$?"
echo "BENCH done"
