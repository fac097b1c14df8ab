#!/bin/sh
# Runs inside the systemd guest (fh-test.service) and prints "FHT ..."
# lines on the console for tests/checks.d/42-systemd-guest.sh, which plays
# the host (freehintd over virtio-serial) and reads them. With
# fht.only=hostd on the kernel command line only hostd_unit runs.
set -u
say() { echo "FHT $*"; }
ok() { say "PASS $1${2:+ ($2)}"; }
ko() { say "FAIL $1: $2"; }
prop() { systemctl show -p "$1" --value "${2:-freehint-agent}"; }
# until_ok SECONDS COMMAND...: poll every second.
until_ok() {
	n=$1
	shift
	while [ "$n" -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		n=$((n - 1))
		sleep 1
	done
	return 1
}
connected() { journalctl -u freehint-agent -o cat | grep -c "connected over"; }
# more_connected N: the agent connected more than N times.
more_connected() { [ "$(connected)" -gt "$1" ]; }
# restarted PID RESTARTS: another agent, restarted by systemd, is up.
restarted() {
	[ "$(prop NRestarts)" -gt "$2" ] && [ "$(prop MainPID)" != "$1" ] &&
	    systemctl is-active -q freehint-agent
}

agent_unit() {
	if systemctl enable --now freehint-agent >/tmp/enable.log 2>&1 &&
	    until_ok 60 more_connected 0; then
		ok enable-now "$(prop StatusText)"
	else
		ko enable-now "$(cat /tmp/enable.log; systemctl status freehint-agent | tail -n 5)"
	fi

	# Memory the guest frees comes back: the host watches QEMU's RssShmem.
	dd if=/dev/zero of=/dev/shm/fill bs=1M count=200 2>/dev/null
	sync
	say FILLED
	sleep 2
	rm -f /dev/shm/fill
	say FREED
	# The host measures meanwhile; it needs no answer.
	sleep 20

	# The agent stopped past WatchdogSec: systemd kills and restarts it.
	pid=$(prop MainPID) restarts=$(prop NRestarts)
	kill -STOP "$pid"
	if until_ok 90 restarted "$pid" "$restarts" &&
	    journalctl -u freehint-agent | grep -q "Watchdog timeout"; then
		ok watchdog-restart "pid $pid -> $(prop MainPID)"
	else
		ko watchdog-restart "$(systemctl status freehint-agent | tail -n 8)"
	fi

	# freehintd restarts on the host: the agent connects again.
	n=$(connected)
	say RESTART-HOSTD
	if until_ok 90 more_connected "$n"; then
		ok reconnect "$(prop StatusText)"
	else
		ko reconnect "$(journalctl -u freehint-agent -o cat | tail -n 5)"
	fi

	# Without the module the unit settles (exit 78, no restart loop; a
	# start by hand resets NRestarts) and says why.
	systemctl stop freehint-agent
	rmmod freehint
	mv "/lib/modules/$(uname -r)/updates/freehint.ko" /root/
	depmod
	systemctl start freehint-agent
	sleep 15
	st=$(systemctl status freehint-agent 2>&1)
	if [ "$(prop ActiveState)" = failed ] &&
	    [ "$(prop ExecMainStatus)" = 78 ] && [ "$(prop NRestarts)" = 0 ] &&
	    echo "$st" | grep -q "freehint.ko is not loaded"; then
		ok no-module-settles "$(prop StatusText)"
	else
		ko no-module-settles "state $(prop ActiveState), status $(prop ExecMainStatus), restarts $(prop NRestarts): $st"
	fi

	# The journal has the warning at warning, info lines at info only.
	w=$(journalctl -p warning -u freehint-agent -o cat)
	i=$(journalctl -p info..info -u freehint-agent -o cat)
	if echo "$w" | grep -q "freehint.ko is not loaded" &&
	    ! echo "$w" | grep -q "connected over" &&
	    echo "$i" | grep -q "connected over"; then
		ok journal-priorities
	else
		ko journal-priorities "warning: $w"
	fi
}

# freehintd.service, with its whole sandbox, playing the host for a fake
# QEMU (its RAM an 8 MiB tmpfs file) and fh-hostile's deputy agent, which
# reports all of that RAM: every batch must be discarded and acknowledged.
hostd_unit() {
	f=/dev/shm/fh-ram
	dd if=/dev/zero of=$f bs=1M count=8 2>/dev/null
	mkdir -p /run/fhq
	cp /usr/local/lib/fh/fh-fakeqemu /run/fhq/qemu-system-fake
	systemd-run -q --unit=fh-fakeqemu /run/fhq/qemu-system-fake \
	    /run/fhq/ok.qmp $f rw
	printf '%s\n' 'vm name=ok,qmp=/run/fhq/ok.qmp,channel=/run/fhq/ok.chan' \
	    'vsock-port 0' >/etc/freehint/freehintd.conf
	blocks=$(stat -c %b $f)
	# freehintd first: setting up its sandbox can take longer under TCG
	# than the deputy waits for a connection (10 s); freehintd retries
	# the channel every 5 s at most.
	systemctl start freehintd
	/usr/local/lib/fh/fh-hostile /run/fhq/ok.chan deputy 8388608 discard \
	    >/tmp/deputy.out 2>&1 &
	agent=$!
	until_ok 120 sh -c "! kill -0 $agent"
	st=$(freehintctl status 2>&1)
	if systemctl is-active -q freehintd &&
	    grep -q "PASS deputy:all-discarded" /tmp/deputy.out &&
	    ! grep -q FAIL /tmp/deputy.out && [ "$(stat -c %b $f)" -lt "$blocks" ] &&
	    echo "$st" | grep -q "^ok .*discard"; then
		ok hostd-unit-sandbox "blocks $blocks -> $(stat -c %b $f)"
	else
		ko hostd-unit-sandbox "$(cat /tmp/deputy.out; echo "$st")"
		journalctl -o short-monotonic -u freehintd
	fi
}

say BOOTED "$(systemctl is-system-running)"
case " $(cat /proc/cmdline) " in
*" fht.only=hostd "*) ;;
*) agent_unit ;;
esac
hostd_unit
say DONE
sync
systemctl poweroff --force --force
