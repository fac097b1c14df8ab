# Shell helpers for tests that boot guests (source this file).
#
#   guest_build OUT -s SCRIPT [mkinitrd.sh options]   build an initramfs
#   guest_run LOG INITRD [run-guest.sh options]       boot it, return status
#   guest_grep LOG PATTERN                            grep the guest log
#   guest_require NAME                                exit 77 unless QEMU & co
#   pass NAME / fail NAME REASON / skip NAME REASON   uniform result lines
#   step_make NAME TARGET...                          build, or fail the step
#   guest_step NAME TARGET...                         guest_require, step_make
#   qemu_kill DIR NAME...                             stop DIR/NAME.pid's QEMUs
#   step_end DIR NAME...                              qemu_kill, wait, rm DIR
#   relay FILE PREFIX                                 a helper's results as ours
#
# POSIX sh. Set FHROOT (top of the tree) before sourcing, or source it from
# the top of the tree. FH_FAILED becomes 1 after any fail.

FHROOT=${FHROOT:-$(pwd)}
FHGUEST_DIR=$FHROOT/tests/guest
FH_FAILED=0

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; FH_FAILED=1; }
skip() { echo "SKIP $1: $2"; exit 77; }

# Build TARGETs quietly; when that fails, a FAIL line and exit 1.
step_make() {
	_fh_step=$1
	shift
	make -s "$@" >/dev/null 2>&1 ||
	    { fail "$_fh_step" "make $* failed"; exit 1; }
}

# qemu_kill DIR NAME...: stop the QEMUs whose pid files (vm_start's, or
# run-guest.sh -p's) are DIR/NAME.pid.
qemu_kill() {
	_fh_d=$1
	shift
	for _fh_n in "$@"; do
		[ -s "$_fh_d/$_fh_n.pid" ] &&
		    kill "$(cat "$_fh_d/$_fh_n.pid")" 2>/dev/null
	done
	return 0
}

# step_end DIR NAME...: the end of a step's cleanup: its QEMUs stopped
# (qemu_kill), its children waited for, DIR removed.
step_end() {
	qemu_kill "$@"
	wait 2>/dev/null
	rm -rf "$1"
}

# FILE's PASS and FAIL lines (a test program's) as this step's, each
# named PREFIX:NAME; a FAIL among them fails the step.
relay() {
	grep -E '^(PASS|FAIL) ' "$1" | sed "s/^\(PASS\|FAIL\) /\1 $2:/"
	! grep -q '^FAIL' "$1" || FH_FAILED=1
}

guest_kver() { "$FHGUEST_DIR/kver.sh"; }

# Exit 77 unless QEMU, a guest kernel and busybox are installed.
guest_require() {
	command -v qemu-system-x86_64 >/dev/null || skip "$1" "qemu-system-x86_64 not installed"
	command -v cpio >/dev/null || skip "$1" "cpio not installed"
	[ -x /bin/busybox ] || command -v busybox >/dev/null || skip "$1" "busybox-static not installed"
	_fh_kv=$(guest_kver 2>/dev/null) || skip "$1" "no guest kernel with headers under /lib/modules"
	[ -r "/boot/vmlinuz-$_fh_kv" ] || skip "$1" "/boot/vmlinuz-$_fh_kv missing or unreadable"
}

# The start of a step that boots a guest: SKIP without QEMU, a guest
# kernel and busybox; the TARGETs built, or FAIL.
guest_step() {
	guest_require "$1"
	step_make "$@"
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

# guest_wait LOG PATTERN SECONDS [PID]: poll every 0.1 s until LOG has a
# line with PATTERN; 1 after SECONDS, or as soon as PID (the guest's
# QEMU, or what runs it) has ended.
guest_wait() {
	_fh_wait_n=$(($3 * 10))
	while ! grep -aq -- "$2" "$1" 2>/dev/null; do
		_fh_wait_n=$((_fh_wait_n - 1))
		[ $_fh_wait_n -ge 0 ] || return 1
		[ -z "${4:-}" ] || kill -0 "$4" 2>/dev/null || return 1
		sleep 0.1
	done
}

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
