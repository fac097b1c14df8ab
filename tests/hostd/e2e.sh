# The host daemon end to end in a real guest (sourced by
# tests/checks.d/50-hostd-e2e.sh and scripts/demo.sh). Needs FHROOT, the
# built tree (make all kmod) and tests/guest/. Sets E2E_* results:
#   E2E_RSS_BEFORE E2E_RSS_AFTER   QEMU's RssShmem (KiB) after the guest
#                                  dirtied 300 MiB and after it freed them
#   E2E_PLAIN_NORMAL E2E_PLAIN_BYTES  migration to /dev/null, no freehint
#   E2E_HINT_NORMAL E2E_HINT_BYTES    the same with a hint pass
#   E2E_STATUS                     freehintctl status after the reclaim
#   E2E_RELEASED                   1 when the held blocks were released
#                                  after the hinted migration completed
. "$FHROOT/tests/guest/lib.sh"

e2e_rss() { sed -n 's/^RssShmem:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }

# e2e_step NAME PREFIX TARGET...: the start of a step with one guest
# (run-guest.sh -p $d/qemu.pid) and one freehintd ($dpid): guest_step,
# $d a fresh directory PREFIX.XXXXXX, and on exit both stopped (freehintd
# woken first, should the step have stopped it) and $d removed.
e2e_step() {
	_fh_name=$1 _fh_prefix=$2
	shift 2
	guest_step "$_fh_name" "$@"
	d=$(mktemp -d "$_fh_prefix.XXXXXX")
	dpid=
	trap e2e_step_end EXIT
}
e2e_step_end() {
	[ -n "$dpid" ] && kill -CONT "$dpid" 2>/dev/null && kill "$dpid" 2>/dev/null
	step_end "$d" qemu
}

# e2e_wait_log FILE PATTERN SECONDS
e2e_wait_log() { guest_wait "$1" "$2" "$3"; }

# e2e_migrate QMPSOCK: prints "NORMAL TRANSFERRED DUPLICATE" of a migration to
# /dev/null, then resumes the guest.
e2e_migrate() {
	"$FHROOT/tests/hostd/qmp.py" "$1" exec migrate-set-parameters \
	    '{"max-bandwidth": 10737418240}' >/dev/null
	"$FHROOT/tests/hostd/qmp.py" "$1" exec migrate \
	    '{"uri": "exec:cat > /dev/null"}' >/dev/null || return 1
	_n=0
	while :; do
		_m=$("$FHROOT/tests/hostd/qmp.py" "$1" exec query-migrate)
		case $_m in
		*'"completed"'*) break ;;
		*'"failed"'* | *'"cancelled"'*) return 1 ;;
		esac
		_n=$((_n + 1))
		[ $_n -gt 300 ] && return 1
		sleep 0.2
	done
	echo "$_m" | python3 -c 'import json,sys
r = json.load(sys.stdin)["ram"]
print(r["normal"], r["transferred"], r["duplicate"])'
	"$FHROOT/tests/hostd/qmp.py" "$1" exec cont >/dev/null
}

# e2e_run DIR: the whole scenario; returns non-zero when a step failed.
# e2e_worker DPID: how freehintd's worker runs, on one line: "uid U
# capeff C nnp N root R worker-memfds W parent-memfds P" (memfds: open
# descriptors on the guest's RAM, which only the worker should hold).
e2e_worker() {
	_w=$(pgrep -P "$1" | head -n 1)
	[ -n "$_w" ] || { echo "no worker"; return; }
	_memfds() {
		ls -l "/proc/$1/fd" 2>/dev/null | grep -c 'memfd:'
	}
	echo "uid $(awk '/^Uid:/ { print $3 }' "/proc/$_w/status")" \
	    "capeff $(awk '/^CapEff:/ { print $2 }' "/proc/$_w/status")" \
	    "nnp $(awk '/^NoNewPrivs:/ { print $2 }' "/proc/$_w/status")" \
	    "root $(readlink "/proc/$_w/root")" \
	    "worker-memfds $(_memfds "$_w") parent-memfds $(_memfds "$1")"
}

e2e_run() {
	_d=$1
	_ctl="$FHROOT/build/freehintctl -s $_d/ctl"
	guest_build "$_d/initrd.cpio.gz" -m "$FHROOT/kmod/freehint.ko" \
	    -b "$FHROOT/build/freehint-agent" \
	    -s "$FHROOT/tests/hostd/guest-e2e.sh" >"$_d/mkinitrd.log" 2>&1 ||
	    { echo "e2e: initrd build failed" >&2; return 1; }
	"$FHROOT/tests/guest/run-guest.sh" -b -m 512 -t 150 \
	    -q "$_d/qmp" -c "$_d/chan" -p "$_d/qemu.pid" \
	    -i "$_d/initrd.cpio.gz" -l "$_d/guest.log" -- \
	    -qmp "unix:$_d/qmp2,server=on,wait=off" || return 1
	_qpid=$(cat "$_d/qemu.pid")
	"$FHROOT/build/freehintd" -d ${E2E_VERBOSE:-} --vsock-port 0 --control "$_d/ctl" \
	    --vm "name=demo,qmp=$_d/qmp,channel=$_d/chan" \
	    >"$_d/freehintd.log" 2>&1 &
	E2E_DPID=$!
	e2e_wait_log "$_d/guest.log" "FH FILL1" 60 || return 1
	E2E_RSS_START=$(e2e_rss "$_qpid")
	e2e_wait_log "$_d/guest.log" "FH FREED1" 60 || return 1
	E2E_RSS_BEFORE=$(e2e_rss "$_qpid")
	_n=0
	E2E_RSS_AFTER=$E2E_RSS_BEFORE
	while [ $_n -lt 80 ]; do
		sleep 0.1
		_n=$((_n + 1))
		E2E_RSS_AFTER=$(e2e_rss "$_qpid")
		[ $((E2E_RSS_BEFORE - E2E_RSS_AFTER)) -gt 250000 ] && break
	done
	E2E_STATUS=$($_ctl status) || [ $? -eq 6 ] # 6: a VM shows an error
	E2E_WORKER=$(e2e_worker "$E2E_DPID")
	e2e_wait_log "$_d/guest.log" "FH FREED2" 60 || return 1
	set -- $(e2e_migrate "$_d/qmp2")
	E2E_PLAIN_NORMAL=${1:-0} E2E_PLAIN_BYTES=${2:-0}
	e2e_wait_log "$_d/guest.log" "FH AGENT2" 60 || return 1
	# Ask for a hint pass once the restarted agent is welcomed (a command
	# sent before its Hello is lost on virtio-serial), then migrate while
	# the blocks are held.
	_n=0
	E2E_HELD=0
	while [ "$E2E_HELD" = 0 ]; do
		_n=$((_n + 1))
		[ $_n -gt 20 ] && return 1
		$_ctl hint demo >/dev/null 2>&1 || { sleep 0.2; continue; }
		sleep 1
		E2E_HELD=$($_ctl status --json | python3 -c 'import json,sys
print(json.load(sys.stdin)["vms"][0]["held_bytes"])')
	done
	# Asking again while the pass holds changes nothing.
	E2E_HINT_AGAIN=0
	$_ctl hint demo >/dev/null 2>&1 &&
	    grep -q "vm demo: hint pass [0-9]* already active" \
	    "$_d/freehintd.log" && E2E_HINT_AGAIN=1
	set -- $(e2e_migrate "$_d/qmp2")
	E2E_HINT_NORMAL=${1:-0} E2E_HINT_BYTES=${2:-0}
	# freehintd saw the migration end (a MIGRATION event) and released.
	E2E_RELEASED=0
	_n=0
	while [ $_n -lt 50 ]; do
		if grep -q "vm demo: migration finished" "$_d/freehintd.log" &&
		    [ "$($_ctl status --json | python3 -c 'import json,sys
print(json.load(sys.stdin)["vms"][0]["held_bytes"])')" = 0 ]; then
			E2E_RELEASED=1
			break
		fi
		_n=$((_n + 1))
		sleep 0.1
	done
	return 0
}

e2e_stop() {
	[ -n "${E2E_DPID:-}" ] && kill "$E2E_DPID" 2>/dev/null
	[ -f "$1/qemu.pid" ] && kill "$(cat "$1/qemu.pid")" 2>/dev/null
	wait 2>/dev/null
}
