# Helpers of the host daemon's black-box tests (sourced, from the top of
# the tree; with tests/guest/lib.sh's, which they use).
. "${FHROOT:-$(pwd)}/tests/guest/lib.sh"

# qemu_require NAME: exit 77 (a SKIP line) without QEMU.
qemu_require() {
	command -v qemu-system-x86_64 >/dev/null ||
	    skip "$1" "no qemu-system-x86_64"
}

# hostd_step NAME PREFIX TARGET...: the start of a step that runs
# freehintd beside firmware-only QEMUs: SKIP without QEMU, TARGETs built
# (or FAIL), $freehintd the daemon (FREEHINTD=path runs another binary),
# $t a fresh directory PREFIX.XXXXXX.
hostd_step() {
	_fh_name=$1 _fh_prefix=$2
	shift 2
	qemu_require "$_fh_name"
	step_make "$_fh_name" "$@"
	freehintd=${FREEHINTD:-build/freehintd}
	t=$(mktemp -d "$_fh_prefix.XXXXXX")
}

# vm_start DIR NAME MEM BACKING-OPTS...: a firmware-only QEMU with two
# monitors (NAME.qmp for freehintd, NAME.qmp2 for the test).
vm_start() {
	d=$1 n=$2 mem=$3
	shift 3
	qemu-system-x86_64 -display none -machine pc,memory-backend=mem0 \
	    -m "$mem" "$@" -nodefaults \
	    -qmp "unix:$d/$n.qmp,server=on,wait=off" \
	    -qmp "unix:$d/$n.qmp2,server=on,wait=off" \
	    -daemonize -pidfile "$d/$n.pid"
}

# vm_memfd STEP DIR NAME MEM [OPTS...]: vm_start with MEM of shared
# memfd RAM; when QEMU does not start, a FAIL line for STEP and exit 1.
vm_memfd() {
	_fh_step=$1 _fh_d=$2 _fh_n=$3 _fh_mem=$4
	shift 4
	vm_start "$_fh_d" "$_fh_n" "$_fh_mem" \
	    -object "memory-backend-memfd,id=mem0,size=$_fh_mem,share=on" "$@" ||
	    { fail "$_fh_step" "qemu did not start"; exit 1; }
}

# hostile_run LABEL FREEHINTD [WRAPPER]: the whole scenario once.
hostile_run() {
	label=$1 daemon=$2 wrap=${3:-}
	t=$(mktemp -d /dev/shm/fh-hostile.XXXXXX)
	ok=1
	# The canary: a memory backend exposed as an ivshmem BAR, and VM b's
	# file-backed RAM, both filled with a pattern we keep a copy of.
	head -c 4194304 /dev/urandom >"$t/canary"
	cp "$t/canary" "$t/canary.orig"
	head -c 134217728 /dev/urandom >"$t/b.ram"
	vm_start "$t" a 256M \
	    -object memory-backend-memfd,id=mem0,size=256M,share=on \
	    -object "memory-backend-file,id=canary,size=4M,share=on,mem-path=$t/canary" \
	    -device ivshmem-plain,memdev=canary -device VGA
	# VM b stays paused (-S): no firmware writes, so that its whole RAM
	# file can be compared byte for byte.
	vm_start "$t" b 128M -S \
	    -object "memory-backend-file,id=mem0,size=128M,share=on,mem-path=$t/b.ram"
	cp "$t/b.ram" "$t/b.orig"
	# The firmware assigns the BARs; wait until the canary is mapped.
	i=0
	while :; do
		canary=$(tests/hostd/qmp.py "$t/a.qmp2" hmp 'info mtree -f' |
		    sed -n '/AS "memory"/,/^$/s/^ *\([0-9a-f]*\)-.*(prio [0-9]*, ram): canary.*/\1/p' |
		    head -n 1)
		[ -n "$canary" ] && [ "$canary" != 0000000000000000 ] && break
		i=$((i + 1))
		[ $i -gt 50 ] && break
		sleep 0.2
	done
	[ -n "$canary" ] || { echo "FAIL hostd-hostile-$label: canary BAR not mapped"; ok=0; }
	blocks_before=$(stat -c %b "$t/canary")

	build/tests/hostd/fh-hostile "$t/a.chan" hostile 0x10000000 "0x$canary" \
	    >"$t/a.out" 2>&1 &
	apid=$!
	build/tests/hostd/fh-hostile "$t/b.chan" steady 8 0x2000 \
	    >"$t/b.out" 2>&1 &
	bpid=$!
	sleep 0.3
	$wrap "$daemon" -d -v --vsock-port 0 --control "$t/ctl" \
	    --max-batch-bytes 32M --max-batches-per-sec 50 --max-faults 8 \
	    --vm "name=a,qmp=$t/a.qmp,channel=$t/a.chan" \
	    --vm "name=b,qmp=$t/b.qmp,channel=$t/b.chan" \
	    >"$t/daemon.log" 2>&1 &
	dpid=$!
	wait $apid
	wait $bpid
	sed "s/^\(PASS\|FAIL\) /\1 hostd-hostile-$label:/" "$t/a.out" "$t/b.out" |
	    grep -E '^(PASS|FAIL)'
	grep -q '^FAIL' "$t/a.out" "$t/b.out" && ok=0
	[ "$(grep -c '^PASS' "$t/a.out")" -ge 20 ] || ok=0

	st=$(build/freehintctl -s "$t/ctl" status --json)
	if kill -0 $dpid 2>/dev/null && echo "$st" | python3 -c '
import json, sys
v = {x["name"]: x for x in json.load(sys.stdin)["vms"]}
assert v["a"]["ranges_rejected"] > 0 and v["b"]["ranges_rejected"] == 0
assert v["b"]["reclaimed_bytes"] >= 2 << 20 and v["a"]["mode"] == "discard"
assert isinstance(v["a"]["ram_bytes"], int) and v["a"]["ram_bytes"] > 250 << 20
'; then
		echo "PASS hostd-hostile-$label:daemon-alive-status"
	else
		echo "FAIL hostd-hostile-$label:daemon-alive-status: $st"
		ok=0
	fi
	# freehintctl status NAME: one VM; exit 6 when it shows an error
	# (a's rejected batches), 0 when not (b), 4 for no such VM, and
	# --json before the verb as after it.
	c="build/freehintctl -s $t/ctl"
	$c status a >"$t/st-a" 2>&1
	rc_a=$?
	$c --json status b >"$t/st-b" 2>&1
	rc_b=$?
	$c status nosuch >/dev/null 2>&1
	rc_n=$?
	if [ $rc_a -eq 6 ] && [ $rc_b -eq 0 ] && [ $rc_n -eq 4 ] &&
	    grep -q "^a " "$t/st-a" && ! grep -q "^b " "$t/st-a" &&
	    python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))["vms"]
assert [x["name"] for x in v] == ["b"] and v[0]["last_error"] == ""
' "$t/st-b"; then
		echo "PASS hostd-hostile-$label:status-name-exit"
	else
		echo "FAIL hostd-hostile-$label:status-name-exit: a $rc_a, b $rc_b, nosuch $rc_n: $(cat "$t/st-a" "$t/st-b")"
		ok=0
	fi
	if cmp -s "$t/canary" "$t/canary.orig" &&
	    [ "$(stat -c %b "$t/canary")" = "$blocks_before" ]; then
		echo "PASS hostd-hostile-$label:canary-untouched"
	else
		echo "FAIL hostd-hostile-$label:canary-untouched"
		ok=0
	fi
	# VM b: exactly pfn 0x2000 (2 MiB at 32 MiB) is a hole; the HINT
	# right after it and everything else is intact.
	if python3 - "$t/b.ram" "$t/b.orig" <<'PY'
import sys
a = open(sys.argv[1], "rb").read()
b = open(sys.argv[2], "rb").read()
s, e = 0x2000 << 12, (0x2000 + 512) << 12
assert len(a) == len(b)
assert a[s:e] == bytes(e - s), "reported range not discarded"
assert a[:s] == b[:s] and a[e:] == b[e:], "memory outside the range changed"
PY
	then
		echo "PASS hostd-hostile-$label:exact-discard"
	else
		echo "FAIL hostd-hostile-$label:exact-discard"
		ok=0
	fi
	kill $dpid 2>/dev/null
	wait $dpid
	drc=$?
	if [ $drc -ne 0 ]; then
		echo "FAIL hostd-hostile-$label:daemon-exit: status $drc"
		tail -n 40 "$t/daemon.log"
		ok=0
	else
		echo "PASS hostd-hostile-$label:daemon-exit"
	fi
	for n in a b; do
		[ -f "$t/$n.pid" ] && kill "$(cat "$t/$n.pid")" 2>/dev/null
	done
	[ $ok = 1 ] || { echo "# daemon log:"; tail -n 30 "$t/daemon.log"; }
	rm -rf "$t"
	[ $ok = 1 ]
}
