# freehintctl set and the metrics listener against a precise guest
# (sourced by tests/checks.d/56-hostd-policy-metrics.sh). A firmware-only
# QEMU with memfd RAM; fh-hostile in script mode plays its agent and sends
# the batches we write to a FIFO, one at a time, so that the policy can be
# changed between two batches.
#   policy_run DIR FREEHINTD   prints PASS/FAIL lines; non-zero on failure

# The Nth check line of the scripted guest, within 20 s.
policy_wait() {
	_n=0
	while ! grep -q "^\(PASS\|FAIL\) $2:$3\$\|^\(PASS\|FAIL\) $2:$3:" "$1"; do
		_n=$((_n + 1))
		[ $_n -gt 200 ] && return 1
		sleep 0.1
	done
	grep -q "^PASS $2:$3\$" "$1"
}

# policy_check NAME: one case, from the exit status of what follows.
policy_check() {
	_name=$1
	shift
	if "$@"; then
		echo "PASS hostd-policy:$_name"
	else
		echo "FAIL hostd-policy:$_name"
		POLICY_FAILED=1
	fi
}

# The scripted guest's next batch; wait for its Ack.
policy_batch() {
	POLICY_N=$((POLICY_N + 1))
	echo "$1" >&3
	policy_wait "$POLICY_D/guest.out" s "$POLICY_N"
}

policy_json() {
	$POLICY_CTL status --json | python3 -c "import json, sys
v = [x for x in json.load(sys.stdin)['vms'] if x['name'] == 'p'][0]
print($1)"
}

policy_scrape() {
	python3 - "$POLICY_PORT" <<'PY'
import sys, urllib.request
r = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1],
                           timeout=10)
assert r.status == 200
assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
sys.stdout.write(r.read().decode())
PY
}

# policy_metric FILE SERIES: the value of one series in a scrape.
policy_metric() {
	# From the environment: awk -v would unescape the backslashes.
	S=$2 awk '$1 == ENVIRON["S"] { print $2 }' "$1"
}

policy_same_families() {
	$POLICY_CTL metrics | grep '^# TYPE' >"$POLICY_D/ctl.types" &&
	    grep '^# TYPE' "$POLICY_D/m0" | cmp -s - "$POLICY_D/ctl.types"
}

policy_shows_set() {
	[ "$(policy_json 'v["policy"]["min-order"], v["policy"]["overrides"]')" = \
	    "8 {'min-order': 'set'}" ]
}

# policy_refused WORDS...: exit 2 and the daemon's reason on stderr.
policy_refused() {
	$POLICY_CTL set p "$@" >"$POLICY_D/bad.out" 2>&1
	[ $? -eq 2 ] && grep -q 'freehintctl: set: ' "$POLICY_D/bad.out"
}

policy_unknown_vm() {
	$POLICY_CTL set nosuchvm min-order=8 2>/dev/null
	[ $? -eq 4 ]
}

# A member of the control group only: status yes, set no (exit 5).
policy_reader_denied() {
	# 6: status read, and a VM shows an error (the refused batches).
	setpriv --reuid=nobody --regid=nogroup --clear-groups \
	    $POLICY_CTL status >/dev/null
	_rc=$?
	[ $_rc -eq 0 ] || [ $_rc -eq 6 ] || return 1
	setpriv --reuid=nobody --regid=nogroup --clear-groups \
	    $POLICY_CTL set p min-order=8 2>/dev/null
	[ $? -eq 5 ] && [ "$(policy_json 'v["policy"]["min-order"]')" = 9 ]
}

policy_scrape_again() {
	policy_scrape >"$POLICY_D/m2" 2>/dev/null && return 0
	sleep 6
	policy_scrape >"$POLICY_D/m2"
}

policy_run() {
	POLICY_D=$1
	_daemon=$2
	POLICY_FAILED=0
	POLICY_N=0
	POLICY_CTL="build/freehintctl -s $POLICY_D/ctl"
	# A port of our own: the kernel picks one, we give it back and use it.
	POLICY_PORT=$(python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	chmod 0755 "$POLICY_D"
	# A second VM (the same QEMU's other monitor) named to break the
	# exposition: quotes, a backslash, braces, a non-ASCII byte (a control
	# character is refused at parse time, as libvirt refuses it).
	POLICY_EVIL=$(printf 'e"v\\il{vm="x"}\377')
	vm_start "$POLICY_D" p 128M \
	    -object memory-backend-memfd,id=mem0,size=128M,share=on
	mkfifo "$POLICY_D/fifo"
	build/tests/hostd/fh-hostile "$POLICY_D/p.chan" script s - \
	    <"$POLICY_D/fifo" >"$POLICY_D/guest.out" 2>&1 &
	POLICY_GPID=$!
	exec 3>"$POLICY_D/fifo"
	sleep 0.3
	"$_daemon" -d -v --vsock-port 0 --control "$POLICY_D/ctl" \
	    --control-group nogroup --metrics-listen "127.0.0.1:$POLICY_PORT" \
	    --vm "name=p,qmp=$POLICY_D/p.qmp,channel=$POLICY_D/p.chan" \
	    --vm "name=$POLICY_EVIL,qmp=$POLICY_D/p.qmp2" \
	    >"$POLICY_D/daemon.log" 2>&1 3>&- &
	POLICY_DPID=$!
	_n=0
	until grep -q '^PASS script:welcome' "$POLICY_D/guest.out"; do
		_n=$((_n + 1))
		[ $_n -gt 200 ] && break
		sleep 0.1
	done
	# Once the map is read the VM is served in discard mode.
	_n=0
	until [ "$(policy_json 'v["mode"]' 2>/dev/null)" = discard ]; do
		_n=$((_n + 1))
		[ $_n -gt 100 ] && break
		sleep 0.1
	done

	# A daemon that did not start fails here, with its log, rather
	# than as a string of unexplained failures after it.
	if ! kill -0 $POLICY_DPID 2>/dev/null; then
		echo "FAIL hostd-policy:daemon-started"
		tail -n 30 "$POLICY_D/daemon.log"
		exec 3>&-
		return 1
	fi
	policy_scrape >"$POLICY_D/m0" 2>"$POLICY_D/m0.err"
	policy_check metrics-before-promtool \
	    promtool check metrics <"$POLICY_D/m0"
	policy_check metrics-ctl-same-families policy_same_families

	# 256 pages at 0x2100: whole blocks of order 8, not of order 9.
	policy_check unaligned-at-order-9 \
	    policy_batch "reported 0x2100 0x100 UNALIGNED"
	policy_check set-min-order-8 $POLICY_CTL set p min-order=8
	policy_check policy-json-shows-set policy_shows_set
	_r0=$(policy_json 'v["reclaimed_bytes"]')
	policy_check applied-at-order-8 \
	    policy_batch "reported 0x2100 0x100 applied"
	_r1=$(policy_json 'v["reclaimed_bytes"]')
	policy_check applied-batch-discarded [ "$((_r1 - _r0))" -eq 1048576 ]
	policy_check set-min-order-9 $POLICY_CTL set p min-order=9
	policy_check unaligned-again-at-order-9 \
	    policy_batch "reported 0x2300 0x100 UNALIGNED"

	# Refused, whole: nothing of a request with one bad word changes.
	_before=$(policy_json 'v["policy"]')
	for _bad in "min-order=21" "min-order=8 discard=maybe" "bogus=1" \
	    "min-order" "max-bytes-per-sec=0" "min-order=8 max-batches-per-sec=x"; do
		# shellcheck disable=SC2086
		policy_check "refused:$(echo "$_bad" | tr ' =' '+:')" \
		    policy_refused $_bad
	done
	policy_check refused-unknown-vm policy_unknown_vm
	policy_check refused-changed-nothing \
	    [ "$(policy_json 'v["policy"]')" = "$_before" ]
	policy_check refused-batch-judged-as-before \
	    policy_batch "reported 0x2500 0x100 UNALIGNED"
	# The control group may read, not change: set needs admin.
	policy_check set-denied-to-reader policy_reader_denied

	# discard=off: applied and counted, nothing punched; on again.
	policy_check set-discard-off $POLICY_CTL set p discard=off
	_r0=$(policy_json 'v["reclaimed_bytes"]')
	policy_check applied-with-discard-off \
	    policy_batch "reported 0x2400 0x200 applied"
	policy_check discard-off-punched-nothing \
	    [ "$(policy_json 'v["reclaimed_bytes"]')" = "$_r0" ]
	policy_check set-default $POLICY_CTL set p discard=default min-order=default
	policy_check applied-with-discard-on \
	    policy_batch "reported 0x2600 0x200 applied"
	_r1=$(policy_json 'v["reclaimed_bytes"]')
	policy_check discard-on-punched [ "$((_r1 - _r0))" -eq 2097152 ]

	policy_scrape >"$POLICY_D/m1" 2>"$POLICY_D/m1.err"
	policy_check metrics-after-promtool \
	    promtool check metrics <"$POLICY_D/m1"
	policy_check metrics-unaligned-counted [ "$(policy_metric "$POLICY_D/m1" \
	    'freehint_batches_total{vm="p",kind="reported",result="unaligned"}')" = 3 ]
	policy_check metrics-applied-counted [ "$(policy_metric "$POLICY_D/m1" \
	    'freehint_batches_total{vm="p",kind="reported",result="applied"}')" = 3 ]
	policy_check metrics-reclaimed-is-status [ "$(policy_metric "$POLICY_D/m1" \
	    'freehint_reclaimed_bytes_total{vm="p"}')" = \
	    "$(policy_json 'v["reclaimed_bytes"]')" ]
	policy_check metrics-histogram-counts-discards [ "$(policy_metric \
	    "$POLICY_D/m1" 'freehint_discard_duration_seconds_count{vm="p"}')" = 2 ]
	policy_check metrics-returned-is-status [ "$(policy_metric "$POLICY_D/m1" \
	    'freehint_returned_bytes{vm="p"}')" = \
	    "$(policy_json 'v["returned_bytes"]')" ]
	policy_check metrics-agent-connected [ "$(policy_metric "$POLICY_D/m1" \
	    'freehint_agent_connected{vm="p"}')" = 1 ]
	policy_check metrics-name-escaped [ "$(policy_metric "$POLICY_D/m1" \
	    'freehint_agent_connected{vm="e\"v\\il{vm=\"x\"}\\xff"}')" = 0 ]
	policy_check metrics-two-vms [ "$(policy_metric "$POLICY_D/m1" \
	    freehint_vms)" = 2 ]

	# A scraper that opens connections and says nothing: the daemon
	# keeps serving its guest, and scrapes again once they time out.
	python3 - "$POLICY_PORT" >"$POLICY_D/idle.out" 2>&1 3>&- <<'PY' &
import socket, sys, time
socks = []
for i in range(24):
    s = socket.socket()
    s.settimeout(2)
    s.connect(("127.0.0.1", int(sys.argv[1])))
    socks.append(s)
# Past the cap a connection waits in the backlog: no answer yet.
last = socks[-1]
last.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
try:
    last.settimeout(3)
    early = last.recv(1)
except socket.timeout:
    early = None
print("early", early)
time.sleep(1)
# The daemon's timeout closes the ones it accepted.
closed = 0
for s in socks[:16]:
    try:
        s.settimeout(8)
        closed += s.recv(1) == b""
    except OSError:
        closed += 1
print("closed", closed)
# Then the waiting one is served.
last.settimeout(10)
print("late", last.recv(12))
PY
	_ipid=$!
	sleep 1
	policy_check served-during-idle-scrapers \
	    policy_batch "reported 0x2800 0x200 applied"
	wait $_ipid
	policy_check idle-scrapers-timed-out grep -q '^closed 16$' "$POLICY_D/idle.out"
	policy_check connections-capped grep -q '^early None$' "$POLICY_D/idle.out"
	policy_check capped-served-later grep -q "^late b'HTTP/1.. 200" "$POLICY_D/idle.out"
	sleep 2
	policy_check scrape-after-idle-scrapers policy_scrape_again

	exec 3>&-
	wait $POLICY_GPID
	policy_check guest-checks sh -c "! grep -q '^FAIL' '$POLICY_D/guest.out'"
	if kill -0 $POLICY_DPID 2>/dev/null; then
		kill $POLICY_DPID
		wait $POLICY_DPID
		policy_check daemon-exit [ $? -eq 0 ]
	else
		policy_check daemon-alive false
	fi
	[ -f "$POLICY_D/p.pid" ] && kill "$(cat "$POLICY_D/p.pid")" 2>/dev/null
	if [ $POLICY_FAILED != 0 ]; then
		echo "# guest:"
		cat "$POLICY_D/guest.out"
		echo "# daemon log:"
		tail -n 30 "$POLICY_D/daemon.log"
	fi
	return $POLICY_FAILED
}
