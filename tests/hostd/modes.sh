# Helpers of tests/checks.d/52-hostd-modes.sh (sourced after e2e.sh): one
# real guest per mode (freehint.ko and the agent over virtio-serial,
# tests/hostd/guest-modes.sh), its RAM backed as the scenario says, and
# freehintd under strace, which records every fallocate it makes.

# modes_boot DIR MACHINE-OPTS APPEND [QEMU ARGS]: QEMU in the background
# with DIR/qmp (freehintd's monitor), DIR/qmp2 (the test's) and the
# channel DIR/chan. Like tests/guest/run-guest.sh, but the RAM is the
# caller's: that script always gives the guest a shared memfd.
modes_boot() {
	_d=$1 _mach=$2 _app=$3
	shift 3
	_acc=${FHGUEST_ACCEL:-tcg}
	setsid timeout -s KILL 240 qemu-system-x86_64 \
	    -machine "pc,accel=$_acc$_mach" -m 512M -smp 1 -nic none \
	    -display none -no-reboot -serial "file:$_d/guest.log" \
	    -kernel "/boot/vmlinuz-$(guest_kver)" -initrd "$MODES_INITRD" \
	    -append "console=ttyS0 quiet panic=-1 $_app" \
	    -qmp "unix:$_d/qmp,server=on,wait=off" \
	    -qmp "unix:$_d/qmp2,server=on,wait=off" \
	    -device virtio-serial-pci \
	    -chardev "socket,id=fhch0,path=$_d/chan,server=on,wait=off" \
	    -device virtserialport,chardev=fhch0,name=org.freehint.agent.0 \
	    -pidfile "$_d/qemu.pid" "$@" </dev/null >"$_d/qemu.log" 2>&1 &
	_n=0
	while [ ! -s "$_d/qemu.pid" ] || [ ! -S "$_d/qmp2" ]; do
		_n=$((_n + 1))
		[ $_n -gt 100 ] && return 1
		sleep 0.1
	done
}

# modes_daemon DIR NAME: freehintd for VM NAME, every fallocate it makes
# logged to DIR/strace; sets MODES_DPID (the daemon, not strace).
modes_daemon() {
	strace -f --seccomp-bpf -qq -e trace=fallocate -o "$1/strace" \
	    "$FHROOT/build/freehintd" -d -v --vsock-port 0 --control "$1/ctl" \
	    --vm "name=$2,qmp=$1/qmp,channel=$1/chan" \
	    >"$1/freehintd.log" 2>&1 &
	MODES_SPID=$!
	MODES_DPID=
	_n=0
	while [ -z "$MODES_DPID" ]; do
		_n=$((_n + 1))
		[ $_n -gt 50 ] && return 1
		sleep 0.1
		MODES_DPID=$(ps -o pid= --ppid "$MODES_SPID" | tr -d ' ')
	done
}

# modes_stop DIR: the daemon and QEMU of one scenario, whatever state
# they are in.
modes_stop() {
	[ -n "${MODES_DPID:-}" ] && kill "$MODES_DPID" 2>/dev/null
	[ -f "$1/qemu.pid" ] && kill "$(cat "$1/qemu.pid")" 2>/dev/null
	[ -n "${MODES_SPID:-}" ] && wait "$MODES_SPID" 2>/dev/null
	MODES_DPID= MODES_SPID=
	rm -f "$1/qemu.pid"
}

# modes_status DIR EXPR: EXPR (Python, v = the one VM of status --json).
modes_status() {
	"$FHROOT/build/freehintctl" -s "$1/ctl" status --json |
	    python3 -c 'import json, sys
v = json.load(sys.stdin)["vms"][0]
print(eval(sys.argv[1]))' "$2"
}

# modes_stat DIR KEY: the last value of the module's counter KEY the
# guest printed (FHSTAT lines), empty if none yet.
modes_stat() {
	sed -n "s/.*FHSTAT $2 \([0-9A-Za-z_]*\).*/\1/p" "$1/guest.log" | tail -n 1
}

# modes_fallocates DIR: number of fallocate calls freehintd made.
modes_fallocates() { grep -c 'fallocate(' "$1/strace"; }

# modes_sum_hugetlb: free 2 MiB huge pages on this machine.
modes_free_huge() {
	cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages
}
