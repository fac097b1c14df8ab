#!/bin/sh
# freehintd's control socket: who may do what (SO_PEERCRED), many
# connections at once, running out of descriptors, a daemon started by
# hand with no /run/freehint, --control-group under the unit's
# capability bounding set, a second daemon on the same socket path, and
# two started at once.
# Creates users and groups (fhtest-*), removes them at the end.
# FREEHINTD=path runs another daemon binary.
set -u
cd "$(dirname "$0")/../.." || exit 1
top=$(pwd)
[ "$(id -u)" = 0 ] || { echo "SKIP hostd-control: needs root"; exit 77; }
for c in useradd groupadd runuser setpriv unshare python3 flock; do
	command -v $c >/dev/null ||
	    { echo "SKIP hostd-control: no $c"; exit 77; }
done
make -s build/freehintd build/freehintctl >/dev/null 2>&1 ||
    { echo "FAIL hostd-control: build"; exit 1; }
daemon=$top/${FREEHINTD:-build/freehintd}
case ${FREEHINTD:-} in /*) daemon=$FREEHINTD ;; esac
ctl=$top/build/freehintctl
rc=0
t=$(mktemp -d /tmp/fh-control.XXXXXX)
chmod 0755 "$t"
dpid=""
cleanup() {
	[ -n "$dpid" ] && kill "$dpid" 2>/dev/null
	wait 2>/dev/null
	for u in fhtest-reader fhtest-admin fhtest-outsider; do
		userdel "$u" 2>/dev/null
	done
	groupdel fhtest-ctl 2>/dev/null
	groupdel fhtest-adm 2>/dev/null
	rm -rf "$t"
}
trap cleanup EXIT
ok() { echo "PASS hostd-control:$1"; }
ko() {
	echo "FAIL hostd-control:$1: $2"
	rc=1
}

# wait_sock PATH: until the daemon's socket answers (5 s at most).
wait_sock() {
	i=0
	while ! "$ctl" -s "$1" status >/dev/null 2>&1 && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
}

cleanup_users_only() {
	for u in fhtest-reader fhtest-admin fhtest-outsider; do
		userdel "$u" 2>/dev/null
	done
	groupdel fhtest-ctl 2>/dev/null
	groupdel fhtest-adm 2>/dev/null
}
cleanup_users_only
groupadd fhtest-ctl && groupadd fhtest-adm &&
    useradd -M -N -g nogroup -G fhtest-ctl fhtest-reader &&
    useradd -M -N -g nogroup -G fhtest-ctl,fhtest-adm fhtest-admin &&
    useradd -M -N -g nogroup fhtest-outsider ||
    { echo "FAIL hostd-control: cannot create test users"; exit 1; }

# 1. Rights. A VM whose QEMU is not there: registered, no agent.
"$daemon" -d --vsock-port 0 --control "$t/ctl" --control-group fhtest-ctl \
    --admin-group fhtest-adm --vm "name=vm1,qmp=$t/none.qmp" \
    >"$t/d1.log" 2>&1 &
dpid=$!
wait_sock "$t/ctl"
as() {
	u=$1
	shift
	runuser -u "$u" -- "$ctl" -s "$t/ctl" "$@" >"$t/out" 2>&1
}
as fhtest-reader status
if [ $? = 0 ] && grep -q '^vm1 ' "$t/out"; then
	ok reader-status
else
	ko reader-status "$(cat "$t/out")"
fi
for req in "notify stopped vm1" "release vm1" "hint vm1"; do
	# shellcheck disable=SC2086
	as fhtest-reader $req
	st=$?
	if [ $st = 5 ] && grep -q "not permitted" "$t/out"; then
		ok "reader-refused-${req%% *}"
	else
		ko "reader-refused-${req%% *}" "exit $st: $(cat "$t/out")"
	fi
done
# The admin group may: release reaches the VM (no agent: exit 1).
as fhtest-admin release vm1
st=$?
if [ $st = 1 ] && grep -q "no agent connected" "$t/out"; then
	ok admin-release
else
	ko admin-release "exit $st: $(cat "$t/out")"
fi
as fhtest-outsider status
st=$?
[ $st = 3 ] && ok outsider-no-access || ko outsider-no-access "exit $st"
if [ "$(stat -c '%a %G' "$t/ctl")" = "660 fhtest-ctl" ]; then
	ok socket-mode
else
	ko socket-mode "$(stat -c '%a %G' "$t/ctl")"
fi
kill $dpid
wait $dpid
dpid=""

# hold N SECONDS SOCK: open N connections, hold them, close them.
hold() {
	python3 - "$@" <<'PY' &
import errno, socket, sys, time
n, secs, path = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
held, end = [], time.time() + secs
while time.time() < end:
    while len(held) < n:
        s = socket.socket(socket.AF_UNIX)
        s.setblocking(False)
        if s.connect_ex(path) not in (0, errno.EINPROGRESS):
            s.close()
            break
        held.append(s)
    time.sleep(0.05)
print(len(held), "held")
PY
	hpid=$!
}
# cpu PID: user + system ticks so far.
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# worker PID: freehintd's worker (privsep), which serves the socket.
worker() { pgrep -P "$1" | head -n 1; }

# 2. 1000 connections held: at most the cap are served at once.
"$daemon" -d --vsock-port 0 --control "$t/ctl" >"$t/d2.log" 2>&1 &
dpid=$!
wait_sock "$t/ctl"
hold 1000 4 "$t/ctl"
sleep 2
nfd=$(ls "/proc/$(worker $dpid)/fd" | wc -l)
wait $hpid
if [ "$nfd" -le 100 ]; then
	ok "connections-capped ($nfd fds)"
else
	ko connections-capped "$nfd descriptors open with 1000 clients"
fi
s0=$(date +%s)
if timeout 15 "$ctl" -s "$t/ctl" status >/dev/null 2>&1 &&
    kill -0 $dpid 2>/dev/null; then
	ok "status-after-1000 ($(($(date +%s) - s0)) s)"
else
	ko status-after-1000 "no answer"
fi
kill $dpid
wait $dpid
dpid=""

# 3. Out of descriptors (RLIMIT_NOFILE 40): the listener pauses instead
# of spinning on EMFILE, and serves again afterwards.
(ulimit -n 40 && exec "$daemon" -d --vsock-port 0 --control "$t/ctl") \
    >"$t/d3.log" 2>&1 &
dpid=$!
wait_sock "$t/ctl"
hold 1000 5 "$t/ctl"
sleep 1
wpid=$(worker $dpid)
c0=$(cpu $wpid)
sleep 3
c1=$(cpu $wpid)
wait $hpid
ticks=$((c1 - c0))
hz=$(getconf CLK_TCK)
if [ $ticks -lt $((hz * 3 / 4)) ]; then
	ok "emfile-no-spin ($ticks ticks in 3 s)"
else
	ko emfile-no-spin "$ticks ticks of CPU in 3 s (CLK_TCK $hz)"
fi
if timeout 15 "$ctl" -s "$t/ctl" status >/dev/null 2>&1; then
	ok status-after-emfile
else
	ko status-after-emfile "no answer"
fi
n=$(grep -c "accept" "$t/d3.log")
if [ "$n" -le 20 ]; then
	ok "emfile-log-limited ($n lines)"
else
	ko emfile-log-limited "$n accept lines in the log"
fi
kill $dpid
wait $dpid
dpid=""

# 4. Started by hand (the README's way) where /run/freehint does not
# exist: the default socket path must work. A private /run.
unshare -m sh -c '
	mount -t tmpfs tmpfs /run || exit 9
	"$1" -d --vsock-port 0 >"$3/d4.log" 2>&1 &
	d=$!
	i=0
	while [ ! -S /run/freehint/freehintd.sock ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	"$2" status >"$3/out4" 2>&1
	st=$?
	stat -c %a /run/freehint >>"$3/out4"
	kill $d
	wait $d
	exit $st' sh "$daemon" "$ctl" "$t"
st=$?
if [ $st = 0 ] && tail -n 1 "$t/out4" | grep -qx 755; then
	ok by-hand-runtime-dir
else
	ko by-hand-runtime-dir "exit $st: $(cat "$t/out4")"
fi

# 5. --control-group with only the capabilities the shipped unit keeps.
caps=$(sed -n 's/^CapabilityBoundingSet=//p' systemd/freehintd.service |
    tr 'A-Z ' 'a-z\n' | sed -n 's/^cap_/+/p' | paste -sd, -)
setpriv --bounding-set "-all,$caps" --inh-caps -all \
    "$daemon" -d --vsock-port 0 --control "$t/ctl5" \
    --control-group fhtest-ctl >"$t/d5.log" 2>&1 &
dpid=$!
wait_sock "$t/ctl5"
if kill -0 $dpid 2>/dev/null &&
    [ "$(stat -c %G "$t/ctl5" 2>/dev/null)" = fhtest-ctl ] &&
    runuser -u fhtest-reader -- "$ctl" -s "$t/ctl5" status >/dev/null; then
	ok "unit-caps-control-group ($caps)"
else
	ko unit-caps-control-group "$(tail -n 3 "$t/d5.log")"
fi
kill $dpid 2>/dev/null
wait $dpid
dpid=""
# 6. A second daemon given the same control path (started by hand beside
# the service): it must refuse to start and leave the first one's socket
# answering; the old code unlinked it and bound its own. And a daemon
# whose socket file was replaced under it (removed, another daemon bound
# the path) must not remove the new one when it exits.
"$daemon" -d --vsock-port 0 --control "$t/ctl6" >"$t/d6a.log" 2>&1 &
dpid=$!
wait_sock "$t/ctl6"
ino=$(stat -c %i "$t/ctl6" 2>/dev/null)
timeout 10 "$daemon" -d --vsock-port 0 --control "$t/ctl6" \
    >"$t/d6b.log" 2>&1
st=$?
if [ $st -ne 0 ] && [ $st -ne 124 ] &&
    grep -q "another process \(listens there\|holds $t/ctl6.lock\)" "$t/d6b.log" &&
    [ "$(stat -c %i "$t/ctl6" 2>/dev/null)" = "$ino" ] &&
    "$ctl" -s "$t/ctl6" status >/dev/null 2>&1; then
	ok "second-daemon-refused (exit $st)"
else
	ko second-daemon-refused "exit $st, inode $ino now $(stat -c %i "$t/ctl6" 2>/dev/null): $(tail -n 2 "$t/d6b.log")"
fi
# The file and its lock removed under the first daemon: a second one
# starts, and binds the path anew.
rm -f "$t/ctl6" "$t/ctl6.lock"
"$daemon" -d --vsock-port 0 --control "$t/ctl6" >"$t/d6c.log" 2>&1 &
d2=$!
wait_sock "$t/ctl6"
kill $dpid
wait $dpid
dpid=$d2
if [ -S "$t/ctl6" ] && "$ctl" -s "$t/ctl6" status >/dev/null 2>&1; then
	ok exit-keeps-other-socket
else
	ko exit-keeps-other-socket "the first daemon's exit removed the second's socket"
fi
kill $dpid
wait $dpid
dpid=""
if [ ! -e "$t/ctl6" ]; then
	ok exit-removes-own-socket
else
	ko exit-removes-own-socket "$t/ctl6 left behind"
fi
# 7. Two daemons started at the same instant both find no listener: the
# one that gets the lock first binds, the other refuses. Played with
# flock(1) holding the lock, a daemon between its lock and its bind.
flock "$t/ctl7.lock" sleep 10 &
fpid=$!
i=0
while flock -n "$t/ctl7.lock" true && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
timeout 10 "$daemon" -d --vsock-port 0 --control "$t/ctl7" \
    >"$t/d7.log" 2>&1
st=$?
if [ $st -ne 0 ] && [ $st -ne 124 ] && [ ! -e "$t/ctl7" ] &&
    grep -q "another process holds $t/ctl7.lock" "$t/d7.log"; then
	ok "simultaneous-start-refused (exit $st)"
else
	ko simultaneous-start-refused "exit $st: $(tail -n 2 "$t/d7.log")"
fi
kill $fpid 2>/dev/null
wait $fpid 2>/dev/null
[ $rc = 0 ] || tail -n 20 "$t"/d*.log
exit $rc
