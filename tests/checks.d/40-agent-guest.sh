#!/bin/sh
# freehint-agent for real: two QEMU guests (TCG is fine) with freehint.ko.
#   agent   fh-testhost inside the guest over a unix socket and AF_VSOCK
#           (vsock_loopback): handshake, REPORTED round trip with acks and
#           rejects, hint pass + release, disconnects in the middle of
#           each, garbage from the host, SIGTERM, a missing module
#   serial  fh-testhost on this machine over a real virtio-serial port,
#           connecting late: the agent backs off meanwhile, then reports;
#           then freehintd inside the guest refuses the agent's vsock
#           connections from CID 1 (vsock_loopback), which no VM owns
# Exit 0 pass, 77 skip, 1 fail. Logs in build/agent-guest/.
set -u
cd "$(dirname "$0")/../.." || exit 1
FHROOT=$(pwd)
. tests/guest/lib.sh
guest_require agent-guest

out=$FHROOT/build/agent-guest
mkdir -p "$out"
kver=$(guest_kver)
[ -e "/lib/modules/$kver/build/Makefile" ] ||
	skip agent-guest "no kernel headers for $kver"
if ! make -s kmod build/tests/kmod/fhmem build/freehint-agent build/freehintd \
	build/freehintctl agent-tests \
	>"$out/make.log" 2>&1; then
	fail agent-build "make failed:"
	tail -n 30 "$out/make.log"
	exit 1
fi
B=$FHROOT/build
guest_build "$out/agent.cpio.gz" -m kmod/freehint.ko -b "$B/freehint-agent" \
	-b "$B/tests/agent/fh-testhost" -b "$B/tests/kmod/fhmem" \
	-s tests/agent/guest-agent.sh &&
guest_build "$out/serial.cpio.gz" -m kmod/freehint.ko \
	-b "$B/freehint-agent" -b "$B/tests/kmod/fhmem" \
	-b "$B/freehintd" -b "$B/freehintctl" \
	-s tests/agent/guest-serial.sh ||
	{ fail agent-initrd "mkinitrd.sh failed"; exit 1; }

echo "booting 2 guests (agent, serial); about a minute with TCG"
guest_run "$out/agent.log" "$out/agent.cpio.gz" -t 400 &
p_agent=$!
sock=$out/serial.sock
rm -f "$sock"
guest_run "$out/serial.log" "$out/serial.cpio.gz" -c "$sock" -t 300 &
p_serial=$!

# serial_host CUE NAME LINES FH-TESTHOST-OPTIONS...: the host side of the
# serial channel, which comes only once the guest says CUE; the last
# LINES of its log shown, its exit status case NAME.
serial_host() {
	cue=$1 name=$2 lines=$3
	shift 3
	guest_wait "$out/serial.log" "$cue" 240 $p_serial
	"$B/tests/agent/fh-testhost" -c "unix:$sock" "$@" \
	    >"$out/$name-host.log" 2>&1
	hrc=$?
	sed "s/^/  $name-host| /" "$out/$name-host.log" | tail -n "$lines"
	[ $hrc = 0 ] && pass "agent-$name-testhost" ||
	    fail "agent-$name-testhost" "fh-testhost exit $hrc"
}
serial_host "FHSERIAL READY" serial 15 --until-reported 2 --timeout 120
# Again for the agent with --transport auto, once freehintd in the guest
# has refused its vsock connection.
serial_host "FHSERIAL AUTO" serial-auto 8 --until-lost 1 --timeout 60

for g in agent:$p_agent serial:$p_serial; do
	name=${g%%:*}
	rc=0
	wait "${g#*:}" || rc=$?
	log=$out/$name.log
	echo "--- guest $name (exit $rc, log $log)"
	tr -d '\r' <"$log" | grep -a -E '^(PASS|FAIL|SKIP) |^  '
	if [ "$rc" -ne 0 ] && ! tr -d '\r' <"$log" | grep -a -q '^FAIL '; then
		fail "agent-guest-$name" "guest exited $rc (124: timeout, 125: no FHGUEST EXIT line: crash?)"
		tr -d '\r' <"$log" | tail -n 30
	elif [ "$rc" -ne 0 ]; then
		FH_FAILED=1
	fi
done
exit $FH_FAILED
