#!/bin/sh
# freehintd as a confused deputy: fake QEMU processes (fh-fakeqemu) map a
# file shared and say over QMP that it is their guest's RAM; a hostile
# agent (fh-hostile deputy) on each VM's channel sends REPORTED batches
# over all of it. freehintd must serve as discard only a writable memfd,
# tmpfs or hugetlbfs file of QEMU's own user in a QEMU with no device
# that DMAs into guest memory, whose monitor's listener still holds the
# monitor's socket; anything else is record-only with the
# reason in `freehintctl status`, and the file's contents and allocated
# blocks stay as they were. A well-formed backing (case "ok") is
# discarded whole, so the test sees discards when they happen.
# FREEHINTD=path runs another daemon binary (the test must fail with the
# code before the checks).
set -u
cd "$(dirname "$0")/../.." || exit 1
make -s all hostd-tests >/dev/null 2>&1 ||
    { echo "FAIL hostd-deputy: build"; exit 1; }
daemon=${FREEHINTD:-build/freehintd}
size=8388608
rc=0

t=$(mktemp -d /tmp/fh-deputy.XXXXXX)
s=$(mktemp -d /dev/shm/fh-deputy.XXXXXX)
chmod 0755 "$t" "$s"
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$t" "$s"
}
trap cleanup EXIT

# mkfile PATH OWNER MODE: 8 MiB of random bytes, a copy to compare with.
mkfile() {
	head -c $size /dev/urandom >"$1"
	chown "$2" "$1"
	chmod "$3" "$1"
	cp "$1" "$1.orig"
	stat -c %b "$1" >"$1.blocks"
}

# freehintd serves only a monitor whose listener is a QEMU binary: the
# fake one runs under a QEMU name (a copy: /proc/PID/exe resolves links).
cp build/tests/hostd/fh-fakeqemu "$t/qemu-system-fake"

# fake NAME FILE ro|rw [WRAPPER...]: a fake QEMU on $t/NAME.qmp.
fake() {
	n=$1 f=$2 m=$3
	shift 3
	"$@" "$t/qemu-system-fake" "$t/$n.qmp" "$f" "$m" \
	    >"$t/$n.fake" 2>&1 &
	pids="$pids $!"
}

# ro: a root-owned read-only file, mapped shared read-only (on tmpfs, so
# only the mapping's permissions refuse it).
mkfile "$s/ro" root:root 0444
fake ro "$s/ro" ro
# other: a file of another user, writable by all, mapped read-write.
mkfile "$s/other" nobody:nogroup 0666
fake other "$s/other" rw
# disk: QEMU's own file, read-write, but on a disk filesystem.
mkfile "$t/disk" root:root 0600
fake disk "$t/disk" rw
# vfio: a good backing, but QEMU holds a VFIO device node open (a node of
# a private /dev: this machine has no VFIO device).
mkfile "$s/vfio" root:root 0600
# The backing is opened before the private /dev hides /dev/shm.
fake vfio /proc/self/fd/8 rw unshare -m sh -c \
    'exec 8<>"$0" && mount -t tmpfs none /dev && mkdir /dev/vfio &&
     : >/dev/vfio/7 && exec "$1" "$2" "$3" "$4" /dev/vfio/7' "$s/vfio"
# handoff: a good backing in the process that listened (a QEMU by name,
# what SO_PEERCRED names), but that process no longer holds the socket: a
# child of its answers there. Whoever answers is not that QEMU's monitor.
mkfile "$s/handoff" root:root 0600
fake handoff "$s/handoff" rw env FH_FAKEQEMU_FORK=1 FH_FAKEQEMU_HANDOFF=1
# ok: QEMU's own tmpfs file, read-write: discarded.
mkfile "$s/ok" root:root 0600
fake ok "$s/ok" rw
# esc: an agent that floods rejected batches, then sends terminal escapes.
mkfile "$s/esc" root:root 0600
fake esc "$s/esc" rw
build/tests/hostd/fh-hostile "$t/esc.chan" escape 200 30 >"$t/esc.out" 2>&1 &
esc_agent=$!
pids="$pids $esc_agent"

for n in ro other disk vfio handoff ok; do
	want=record-only
	[ $n = ok ] && want=discard
	build/tests/hostd/fh-hostile "$t/$n.chan" deputy $size $want \
	    >"$t/$n.out" 2>&1 &
	eval "agent_$n=$!"
done
i=0
while [ "$(cat "$t"/*.fake 2>/dev/null | grep -c '^ready')" -lt 7 ] &&
    [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
# The handoff fake's child answers on its socket: it is ours to stop too.
pids="$pids $(sed -n 's/^ready .* child \([0-9]*\)$/\1/p' "$t/handoff.fake")"
"$daemon" -d -v --vsock-port 0 --control "$t/ctl" \
    --vm "name=ro,qmp=$t/ro.qmp,channel=$t/ro.chan" \
    --vm "name=other,qmp=$t/other.qmp,channel=$t/other.chan" \
    --vm "name=disk,qmp=$t/disk.qmp,channel=$t/disk.chan" \
    --vm "name=vfio,qmp=$t/vfio.qmp,channel=$t/vfio.chan" \
    --vm "name=handoff,qmp=$t/handoff.qmp,channel=$t/handoff.chan" \
    --vm "name=ok,qmp=$t/ok.qmp,channel=$t/ok.chan" \
    --vm "name=esc,qmp=$t/esc.qmp,channel=$t/esc.chan" --max-faults 100000 \
    >"$t/daemon.log" 2>&1 &
dpid=$!
pids="$pids $dpid"
for n in ro other disk vfio ok; do
	eval "wait \$agent_$n"
	sed "s/^\(PASS\|FAIL\) /\1 hostd-deputy-$n:/" "$t/$n.out" |
	    grep -E '^(PASS|FAIL)'
	grep -q '^FAIL' "$t/$n.out" && rc=1
	grep -q '^PASS deputy:acked' "$t/$n.out" || rc=1
done
# A VM whose monitor is not its QEMU's is not served at all: its agent
# is never connected (the status and the file say the rest). A daemon
# that did serve it did so beside "ok", which is done.
kill $agent_handoff 2>/dev/null
build/freehintctl -s "$t/ctl" status --json >"$t/status.json"
build/freehintctl -s "$t/ctl" status >"$t/status.txt"

# expect NAME MODE REASON-PATTERN
expect() {
	if python3 - "$t/status.json" "$1" "$2" "$3" <<'PY'; then
import json, re, sys
v = {x["name"]: x for x in json.load(open(sys.argv[1]))["vms"]}[sys.argv[2]]
if v["mode"] != sys.argv[3] or not re.search(sys.argv[4], v["mode_reason"]):
    sys.exit("%s: mode %s (%s)" % (sys.argv[2], v["mode"], v["mode_reason"]))
PY
		echo "PASS hostd-deputy-$1:status-$2"
	else
		echo "FAIL hostd-deputy-$1:status-$2"
		rc=1
	fi
}
expect ro record-only 'not read-write'
expect other record-only 'belongs to uid 65534, QEMU runs as uid 0'
expect disk record-only 'not a memfd, tmpfs or hugetlbfs file'
expect vfio record-only 'VFIO or vDPA.*/dev/vfio/7'
expect handoff record-only 'does not hold a socket listening on'
expect ok discard 'shared file backing'
if grep -q 'not read-write' "$t/status.txt"; then
	echo "PASS hostd-deputy:reason-in-table"
else
	echo "FAIL hostd-deputy:reason-in-table"
	rc=1
fi

for f in "$s/ro" "$s/other" "$t/disk" "$s/vfio" "$s/handoff"; do
	n=$(basename "$f")
	if cmp -s "$f" "$f.orig" &&
	    [ "$(stat -c %b "$f")" = "$(cat "$f.blocks")" ]; then
		echo "PASS hostd-deputy-$n:file-untouched"
	else
		echo "FAIL hostd-deputy-$n:file-untouched: blocks $(cat "$f.blocks") -> $(stat -c %b "$f")"
		rc=1
	fi
done
if python3 - "$s/ok" "$(cat "$s/ok.blocks")" <<'PY'; then
import os, sys
d = open(sys.argv[1], "rb").read()
assert d == bytes(len(d)), "not all zero"
assert os.stat(sys.argv[1]).st_blocks < int(sys.argv[2]) // 8, "blocks"
PY
	echo "PASS hostd-deputy-ok:file-discarded"
else
	echo "FAIL hostd-deputy-ok:file-discarded: $(stat -c %b "$s/ok") blocks"
	rc=1
fi
# What the guest said reaches status as printable ASCII only, and 200
# rejected batches are not 200 log lines.
i=0
until grep -q '^PASS escape:sent' "$t/esc.out" || [ $i -ge 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
sleep 0.5
sed 's/^\(PASS\|FAIL\) /\1 hostd-deputy-esc:/' "$t/esc.out" |
    grep -E '^(PASS|FAIL)'
grep -q '^FAIL' "$t/esc.out" && rc=1
build/freehintctl -s "$t/ctl" status >"$t/esc.txt"
build/freehintctl -s "$t/ctl" status --json >"$t/esc.json"
if python3 - "$t/esc.txt" "$t/esc.json" <<'PY'; then
import json, sys
for f in sys.argv[1:]:
    b = open(f, "rb").read()
    bad = [c for c in b if (c < 0x20 and c != 0x0a) or c >= 0x7f]
    assert not bad, "%s: raw bytes %s" % (f, sorted(set(bad)))
v = {x["name"]: x for x in json.load(open(sys.argv[2]))["vms"]}["esc"]
assert "agent says" in v["last_error"] and "\\x9b" in v["last_error"], v
PY
	echo "PASS hostd-deputy-esc:status-printable"
else
	echo "FAIL hostd-deputy-esc:status-printable"
	rc=1
fi
n=$(grep -c 'vm esc.*\(rejected\|refused\)' "$t/daemon.log")
if [ "$n" -le 20 ] && grep -q 'vm esc.*suppressing similar messages' "$t/daemon.log"; then
	echo "PASS hostd-deputy-esc:log-rate-limited ($n lines for 200 batches)"
else
	echo "FAIL hostd-deputy-esc:log-rate-limited: $n lines"
	rc=1
fi
kill $esc_agent 2>/dev/null
kill $dpid
wait $dpid || { echo "FAIL hostd-deputy:daemon-exit"; rc=1; }
[ $rc = 0 ] || { echo "# daemon log:"; tail -n 30 "$t/daemon.log"; cp "$t/daemon.log" /tmp/fh-deputy-last.log; }
exit $rc
