# Shell helpers for tests that boot guests (source this file).
#
#   guest_build OUT -s SCRIPT [mkinitrd.sh options]   build an initramfs
#   guest_run LOG INITRD [run-guest.sh options]       boot it, return status
#   guest_grep LOG PATTERN                            grep the guest log
#   pass NAME / fail NAME REASON / skip REASON        uniform result lines
#
# FHGUEST_DIR is the harness directory, FHROOT the top of the tree.

FHGUEST_DIR=$(cd "$(dirname "${BASH_SOURCE:-$0}")" 2>/dev/null && pwd)
case $FHGUEST_DIR in */tests/guest) ;; *) FHGUEST_DIR=$(pwd)/tests/guest ;; esac
FHROOT=$(cd "$FHGUEST_DIR/../.." && pwd)
FH_FAILED=0

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; FH_FAILED=1; }
skip() { echo "SKIP: $1"; exit 77; }

guest_kver() { "$FHGUEST_DIR/kver.sh"; }

# Exit 77 unless QEMU, a guest kernel and busybox are installed.
guest_require() {
	command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"
	command -v cpio >/dev/null || skip "cpio not installed"
	[ -x /bin/busybox ] || command -v busybox >/dev/null || skip "busybox-static not installed"
	kv=$(guest_kver 2>/dev/null) || skip "no guest kernel with headers under /lib/modules"
	[ -r "/boot/vmlinuz-$kv" ] || skip "/boot/vmlinuz-$kv missing or unreadable"
}

guest_build() {
	out=$1
	shift
	"$FHGUEST_DIR/mkinitrd.sh" -o "$out" "$@"
}

guest_run() {
	log=$1 initrd=$2
	shift 2
	"$FHGUEST_DIR/run-guest.sh" -i "$initrd" -l "$log" "$@"
}

guest_grep() { grep -a -- "$2" "$1"; }
