# Shell helpers for tests that boot guests (source this file).
#
#   guest_build OUT -s SCRIPT [mkinitrd.sh options]   build an initramfs
#   guest_run LOG INITRD [run-guest.sh options]       boot it, return status
#   guest_grep LOG PATTERN                            grep the guest log
#   guest_require NAME                                exit 77 unless QEMU & co
#   pass NAME / fail NAME REASON / skip NAME REASON   uniform result lines
#
# POSIX sh. Set FHROOT (top of the tree) before sourcing, or source it from
# the top of the tree. FH_FAILED becomes 1 after any fail.

FHROOT=${FHROOT:-$(pwd)}
FHGUEST_DIR=$FHROOT/tests/guest
FH_FAILED=0

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; FH_FAILED=1; }
skip() { echo "SKIP $1: $2"; exit 77; }

guest_kver() { "$FHGUEST_DIR/kver.sh"; }

# Exit 77 unless QEMU, a guest kernel and busybox are installed.
guest_require() {
	command -v qemu-system-x86_64 >/dev/null || skip "$1" "qemu-system-x86_64 not installed"
	command -v cpio >/dev/null || skip "$1" "cpio not installed"
	[ -x /bin/busybox ] || command -v busybox >/dev/null || skip "$1" "busybox-static not installed"
	_fh_kv=$(guest_kver 2>/dev/null) || skip "$1" "no guest kernel with headers under /lib/modules"
	[ -r "/boot/vmlinuz-$_fh_kv" ] || skip "$1" "/boot/vmlinuz-$_fh_kv missing or unreadable"
}

# (sh has no local variables: helpers only use names starting with _fh.)
guest_build() {
	_fh_out=$1
	shift
	"$FHGUEST_DIR/mkinitrd.sh" -o "$_fh_out" "$@"
}

guest_run() {
	_fh_log=$1 _fh_initrd=$2
	shift 2
	"$FHGUEST_DIR/run-guest.sh" -i "$_fh_initrd" -l "$_fh_log" "$@"
}

guest_grep() { grep -a -- "$2" "$1"; }

# wait_for SECONDS COMMAND...: poll every 0.2 s until COMMAND succeeds.
wait_for() {
	_fh_wait_n=$(($1 * 5))
	shift
	while [ $_fh_wait_n -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		_fh_wait_n=$((_fh_wait_n - 1))
		sleep 0.2
	done
	return 1
}
