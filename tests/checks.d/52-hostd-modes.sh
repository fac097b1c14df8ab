#!/bin/sh
# freehintd's other modes, each in a real guest (freehint.ko + the agent
# over virtio-serial) that dirties and frees 300 MiB:
#  zero: QEMU's default RAM (private anonymous): mode zero-in-guest, a
#        hint pass makes the module zero held blocks, a migration sends
#        them as zero pages; never a fallocate.
#  huge: RAM on hugetlbfs (2 MiB pages reserved here for the test): only
#        whole 2 MiB pages are punched, free huge pages grow.
#  poison: page_poison=1 in the guest: no page reporting in the module,
#          record-only on the host, nothing discarded.
set -u
cd "$(dirname "$0")/../.." || exit 1
FHROOT=$(pwd)
. tests/hostd/e2e.sh
. tests/hostd/modes.sh
guest_require hostd-modes
command -v strace >/dev/null || skip hostd-modes "strace not installed"
step_make hostd-modes all kmod

top=$(mktemp -d /tmp/fh-modes.XXXXXX)
huge_old= huge_mnt=
cleanup() {
	for s in zero huge poison; do
		[ -d "$top/$s" ] && modes_stop "$top/$s"
	done
	huge_restore
	rm -rf "$top"
}
# Unmount and give back the huge pages reserved for the test.
huge_restore() {
	if [ -n "$huge_mnt" ]; then
		umount "$huge_mnt" 2>/dev/null
		rmdir "$huge_mnt"
	fi
	[ -n "$huge_old" ] && echo "$huge_old" >/proc/sys/vm/nr_hugepages
	huge_mnt= huge_old=
}
trap cleanup EXIT
trap 'exit 1' INT TERM
MODES_INITRD=$top/initrd.cpio.gz
guest_build "$MODES_INITRD" -m kmod/freehint.ko -b build/freehint-agent \
    -s tests/hostd/guest-modes.sh >"$top/mkinitrd.log" 2>&1 ||
    { fail hostd-modes "initrd build failed"; exit 1; }

# expect CASE GOT WANT: one case, passed when GOT is WANT.
expect() {
	if [ "$2" = "$3" ]; then
		pass "$1 ($2)"
	else
		fail "$1" "'$2', expected '$3'"
	fi
}

# daemon_up S VM: freehintd for scenario S's VM, until its agent's Hello.
daemon_up() {
	modes_daemon "$top/$1" "$2" ||
	    { fail "hostd-modes-$1" "freehintd did not start"; return 1; }
	e2e_wait_log "$top/$1/freehintd.log" "vm $2: agent " 60 ||
	    { fail "hostd-modes-$1" "no agent"; dump "$1"; return 1; }
}

# freed S: until scenario S's guest has dirtied and freed its 300 MiB.
freed() {
	e2e_wait_log "$top/$1/guest.log" "FH FREED" 120 ||
	    { fail "hostd-modes-$1" "guest never freed its memory"; dump "$1"; return 1; }
}

# What a scenario saw, when it went wrong.
dump() {
	echo "# $1: freehintd.log"
	tail -n 15 "$top/$1/freehintd.log"
	echo "# $1: guest.log"
	grep -av FHSTAT "$top/$1/guest.log" | tail -n 15
}

# zero-in-guest: QEMU's default RAM. The migration without freehint runs
# before freehintd starts (it would start a pass for any migration).
scenario_zero() {
	d=$top/zero
	mkdir "$d"
	modes_boot "$d" "" init_on_alloc=0 ||
	    { fail hostd-modes-zero "QEMU did not start"; return; }
	freed zero || return
	set -- $(e2e_migrate "$d/qmp2")
	plain_n=${1:-0} plain_dup=${3:-0}
	daemon_up zero z || return
	st=$(modes_status "$d" '"%s|%s|%s" % (v["mode"], v["backing"], v["mode_reason"])')
	case $st in
	"zero-in-guest|private anonymous|private memory"*)
		pass "hostd-modes-zero:status ($st)" ;;
	*) fail hostd-modes-zero:status "$st" ;;
	esac
	z0=$(modes_stat "$d" hold_zeroed_pages)
	held=0 n=0
	while [ "$held" = 0 ] && [ $n -lt 20 ]; do
		n=$((n + 1))
		build/freehintctl -s "$d/ctl" hint z >/dev/null 2>&1 ||
		    { sleep 0.3; continue; }
		sleep 1
		held=$(modes_status "$d" 'v["held_bytes"]')
	done
	# The agent sends held blocks 64 at a time: wait until all are in.
	last=-1
	while [ "$held" != "$last" ]; do
		last=$held
		sleep 1
		held=$(modes_status "$d" 'v["held_bytes"]')
	done
	sleep 1
	z1=$(modes_stat "$d" hold_zeroed_pages)
	if [ "${z1:-0}" -gt $((${z0:-0} + 25600)) ]; then
		pass "hostd-modes-zero:zeroed ($((held >> 20)) MiB held, hold_zeroed_pages ${z0:-?} -> $z1)"
	else
		fail hostd-modes-zero:zeroed "held $held bytes, hold_zeroed_pages ${z0:-?} -> ${z1:-?}"
	fi
	set -- $(e2e_migrate "$d/qmp2")
	hint_n=${1:-0} hint_dup=${3:-0}
	build/freehintctl -s "$d/ctl" release z >/dev/null 2>&1
	if [ "$plain_n" -gt 0 ] && [ $((hint_n * 2)) -lt "$plain_n" ] &&
	    [ "$hint_dup" -gt "$plain_dup" ]; then
		pass "hostd-modes-zero:migration (normal $plain_n -> $hint_n, duplicate $plain_dup -> $hint_dup)"
	else
		fail hostd-modes-zero:migration "normal $plain_n -> $hint_n, duplicate $plain_dup -> $hint_dup"
	fi
	n=$(modes_fallocates "$d")
	# Neither of freehintd's processes (privsep) holds the RAM.
	if [ "$n" = 0 ] && ! for p in $MODES_DPID $(pgrep -P "$MODES_DPID"); do
		ls -l "/proc/$p/fd"
	done | grep -q memfd; then
		pass hostd-modes-zero:no-fallocate
	else
		fail hostd-modes-zero:no-fallocate "$n fallocate calls"
	fi
	[ "$FH_FAILED" = 0 ] || dump zero
	modes_stop "$d"
}

# hugetlbfs: 2 MiB pages reserved for the guest's 512 MiB and a margin.
scenario_huge() {
	d=$top/huge
	mkdir "$d"
	knob=/proc/sys/vm/nr_hugepages
	[ -w $knob ] || { echo "SKIP hostd-modes-huge: $knob not writable (not root?)"; return; }
	huge_old=$(cat $knob)
	echo $((huge_old + 272)) >$knob 2>/dev/null
	got=$(($(cat $knob) - huge_old))
	if [ "$got" -lt 272 ]; then
		echo "SKIP hostd-modes-huge: the kernel gave $got of 272 2 MiB huge pages (memory too fragmented or short)"
		return
	fi
	huge_mnt=$(mktemp -d /tmp/fh-hugetlbfs.XXXXXX)
	if ! mount -t hugetlbfs -o pagesize=2M none "$huge_mnt" 2>"$d/mount.err"; then
		echo "SKIP hostd-modes-huge: mount -t hugetlbfs: $(cat "$d/mount.err")"
		return
	fi
	modes_boot "$d" ",memory-backend=mem0" "" \
	    -object "memory-backend-file,id=mem0,size=512M,mem-path=$huge_mnt,share=on,prealloc=off" ||
	    { fail hostd-modes-huge "QEMU did not start"; return; }
	daemon_up huge h || return
	expect hostd-modes-huge:status "$(modes_status "$d" \
	    '"%s|%s|%d" % (v["mode"], v["backing"], v["host_page_size"])')" \
	    "discard|hugetlbfs|2097152"
	freed huge || return
	f0=$(modes_free_huge)
	n=0 f1=$f0
	while [ $n -lt 100 ] && [ $((f1 - f0)) -lt 100 ]; do
		sleep 0.1
		n=$((n + 1))
		f1=$(modes_free_huge)
	done
	sleep 1
	f1=$(modes_free_huge)
	rec=$(modes_status "$d" 'v["reclaimed_bytes"]')
	if [ $((f1 - f0)) -ge 100 ]; then
		pass "hostd-modes-huge:free-hugepages ($f0 -> $f1, $((rec >> 20)) MiB reclaimed)"
	else
		fail hostd-modes-huge:free-hugepages "$f0 -> $f1 after the guest freed 300 MiB"
	fi
	# Every hole freehintd punched is whole 2 MiB pages.
	if python3 - "$d/strace" <<'PY'; then
import re, sys
n = 0
for l in open(sys.argv[1]):
    m = re.search(r"fallocate\(\d+, [A-Z_|]+, (\d+), (\d+)\) = (-?\d+)", l)
    if not m:
        continue
    off, ln, rc = map(int, m.groups())
    assert rc == 0 and off % (2 << 20) == 0 and ln % (2 << 20) == 0, l
    n += 1
assert n > 0, "no fallocate"
PY
		pass "hostd-modes-huge:whole-pages ($(modes_fallocates "$d") holes)"
	else
		fail hostd-modes-huge:whole-pages "see $d/strace"
		head -n 5 "$d/strace"
	fi
	if [ $((rec % 2097152)) = 0 ] && [ "$rec" -ge $(((f1 - f0) << 21)) ]; then
		pass hostd-modes-huge:reclaimed
	else
		fail hostd-modes-huge:reclaimed "$rec bytes reclaimed, $((f1 - f0)) pages freed"
	fi
	[ "$FH_FAILED" = 0 ] || dump huge
	modes_stop "$d"
	huge_restore
}

# Page poisoning: memfd RAM (discardable), but the guest checks poison.
scenario_poison() {
	d=$top/poison
	mkdir "$d"
	modes_boot "$d" ",memory-backend=mem0" page_poison=1 \
	    -object memory-backend-memfd,id=mem0,size=512M,share=on ||
	    { fail hostd-modes-poison "QEMU did not start"; return; }
	daemon_up poison p || return
	# 170 is 0xaa, PAGE_POISON.
	expect hostd-modes-poison:module-stats "$(for k in page_poisoning \
	    poison_value init_on_free; do echo "$k $(modes_stat "$d" $k)"; done |
	    paste -sd, -)" "page_poisoning 1,poison_value 170,init_on_free 0"
	expect hostd-modes-poison:status \
	    "$(modes_status "$d" '"%s|%s" % (v["mode"], v["mode_reason"])')" \
	    "record-only|page poisoning with 0xaa"
	freed poison || return
	pid=$(cat "$d/qemu.pid")
	r0=$(e2e_rss "$pid")
	a0=$(modes_stat "$d" report_acked_bytes)
	sleep 8
	r1=$(e2e_rss "$pid")
	a1=$(modes_stat "$d" report_acked_bytes)
	rec=$(modes_status "$d" 'v["reclaimed_bytes"]')
	# The module registers no page reporting under poisoning (holes
	# would read back as zeroes), so nothing is reported at all.
	expect hostd-modes-poison:no-page-reporting \
	    "$(modes_stat "$d" report_registered),$(modes_stat "$d" report_off_reason),${a1:-?}" \
	    "0,poison,0"
	if [ $((r0 - r1)) -lt 16384 ] && [ "$rec" = 0 ] &&
	    [ "$(modes_fallocates "$d")" = 0 ]; then
		pass "hostd-modes-poison:nothing-discarded (RssShmem $r0 -> $r1 kB)"
	else
		fail hostd-modes-poison:nothing-discarded "RssShmem $r0 -> $r1 kB, reclaimed $rec, $(modes_fallocates "$d") fallocate"
	fi
	[ "$FH_FAILED" = 0 ] || dump poison
	modes_stop "$d"
}

scenario_zero
scenario_huge
huge_restore
scenario_poison
exit "$FH_FAILED"
