# Two libvirt "hosts" on this machine, for a real libvirt-to-libvirt
# migration, with a freehintd on each (source this file after
# tests/guest/lib.sh). Each host (tests/libvirt/nshost.sh) is a network
# namespace joined to the other by a veth pair, a mount namespace with its
# own libvirt directories, its own virtlogd, libvirtd and freehintd.
#
#   th_init NAME OUT DOM   skip NAME unless root and the tools are there;
#                          logs under OUT (emptied), the domain DOM;
#                          cleanup at exit
#   th_up                  build, make the two hosts, start both freehintd
#                          (checks NAME-build, NAME-hosts)
#   uri HOST               HOST's (a or b) libvirt URI; $VA, $VB: its virsh
#   st HOST PATTERN        HOST's status --json matches PATTERN
#   qpid HOST              the domain's QEMU pid on HOST
#   $ADDR_B                B's address, for --migrateuri tcp:$ADDR_B
#
# FREEHINTD=path runs another daemon binary on both hosts.
#
# The domain's channel and serial log are under /var/lib/libvirt/fh, a
# directory of its own on each host: OUT/HOST/lib/fh/DOM.log.

uri() { echo "qemu+unix:///system?socket=$th_out/$1/sock/libvirt-sock"; }
st() {
	build/freehintctl -s "$th_out/$1/ctl.sock" status --json \
	    >"$th_out/$1/status.json" 2>&1 && grep -q -- "$2" "$th_out/$1/status.json"
}
qpid() { cat "$th_out/$1/run/qemu/$th_dom.pid" 2>/dev/null; }

th_cleanup() {
	for _fh_h in a b; do
		virsh -q -c "$(uri $_fh_h)" destroy "$th_dom" >/dev/null 2>&1
	done
	for _fh_p in $th_pids; do
		kill "$_fh_p" 2>/dev/null
	done
	"$th_nsh" down "$th_out/a" >/dev/null 2>&1
	"$th_nsh" down "$th_out/b" >/dev/null 2>&1
	if [ -n "$th_netns" ]; then
		ip netns del "$NSA" 2>/dev/null
		ip netns del "$NSB" 2>/dev/null
	fi
}

# th_bg PID: a process of the test's, killed at exit.
th_bg() { th_pids="$th_pids $1"; }

th_init() {
	th_name=$1 th_out=$2 th_dom=$3
	th_pids= th_netns=
	th_nsh=$FHROOT/tests/libvirt/nshost.sh
	NSA=fhm$$a NSB=fhm$$b
	ADDR_A=10.231.$(($$ % 250)).1 ADDR_B=10.231.$(($$ % 250)).2
	[ "$(id -u)" -eq 0 ] || skip "$th_name" "needs root"
	for _fh_c in libvirtd virtlogd virsh ip nsenter unshare; do
		command -v $_fh_c >/dev/null || skip "$th_name" "$_fh_c not installed"
	done
	guest_require "$th_name"
	rm -rf "$th_out"
	mkdir -p "$th_out/a/lib/fh" "$th_out/b/lib/fh"
	VA="virsh -q -c $(uri a)"
	VB="virsh -q -c $(uri b)"
	trap th_cleanup EXIT
	trap 'exit 1' INT TERM
}

th_up() {
	if ! make -s all >"$th_out/make.log" 2>&1 ||
	    ! make -s kmod >>"$th_out/make.log" 2>&1; then
		fail "$th_name-build" "see $th_out/make.log"
		exit 1
	fi
	th_netns=1
	if ! { ip netns add $NSA && ip netns add $NSB &&
	    ip link add ${NSA}0 type veth peer name ${NSB}0 &&
	    ip link set ${NSA}0 netns $NSA && ip link set ${NSB}0 netns $NSB &&
	    ip -n $NSA addr add $ADDR_A/30 dev ${NSA}0 &&
	    ip -n $NSB addr add $ADDR_B/30 dev ${NSB}0 &&
	    ip -n $NSA link set ${NSA}0 up && ip -n $NSB link set ${NSB}0 up; } \
	    >"$th_out/net.log" 2>&1; then
		skip "$th_name" "cannot make network namespaces: $(tail -n 1 "$th_out/net.log")"
	fi
	# Different host UUIDs: libvirt refuses to migrate a domain to itself.
	if ! "$th_nsh" up "$th_out/a" $NSA fhm-host-a \
	    6d1c3f0e-5b1a-4c57-9a43-00000000000a >"$th_out/a.log" 2>&1 ||
	    ! "$th_nsh" up "$th_out/b" $NSB fhm-host-b \
	    6d1c3f0e-5b1a-4c57-9a43-00000000000b >"$th_out/b.log" 2>&1; then
		fail "$th_name-hosts" "$(tail -n 2 "$th_out/a.log" "$th_out/b.log")"
		exit 1
	fi
	pass "$th_name-hosts" "two libvirtd, $ADDR_A and $ADDR_B"
	for _fh_h in a b; do
		"$th_nsh" exec "$th_out/$_fh_h" "${FREEHINTD:-$FHROOT/build/freehintd}" -d -v \
		    --libvirt-uri "$(uri $_fh_h)" \
		    --control "$th_out/$_fh_h/ctl.sock" --vsock-port 0 \
		    >"$th_out/$_fh_h/freehintd.log" 2>&1 &
		th_bg $!
	done
}
