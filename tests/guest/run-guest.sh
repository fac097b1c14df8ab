#!/bin/sh
# Boot a test initramfs in QEMU, under TCG (FHGUEST_ACCEL=kvm for KVM).
#
#   run-guest.sh [-m MEM] [-x MAXMEM] [-a APPEND] [-q QMPSOCK] [-c CHANSOCK]
#                [-p PIDFILE] [-b] [-t TIMEOUT] [-k KVER] -i INITRD -l LOGFILE
#                [-- QEMU ARGS]
#
# Guest RAM is a shared memfd (discardable from the host). -c adds a
# virtio-serial port named org.freehint.agent.0 backed by a unix socket
# server at CHANSOCK. Foreground: returns the status the guest script
# printed as "FHGUEST EXIT n", or 124 on timeout / 125 if it is missing.
# -b: start in the background and return at once (use -p to find QEMU).
# -x MAXMEM: room for memory devices (-m MEM,maxmem=MAXMEM,slots=2), e.g.
# for a virtio-mem-pci device given after --.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
mem=${MEM:-512M} append=${APPEND:-} qmp= chan= pidfile= bg=0 timeout=300
maxmem=
initrd= log= kver=
usage() { sed -n '2,14p' "$0" >&2; exit 2; }
while getopts m:x:a:q:c:p:bt:i:l:k:h opt; do
	case $opt in
	m) mem=$OPTARG ;;
	x) maxmem=$OPTARG ;;
	a) append=$OPTARG ;;
	q) qmp=$OPTARG ;;
	c) chan=$OPTARG ;;
	p) pidfile=$OPTARG ;;
	b) bg=1 ;;
	t) timeout=$OPTARG ;;
	i) initrd=$OPTARG ;;
	l) log=$OPTARG ;;
	k) kver=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ -n "$initrd" ] && [ -n "$log" ] || usage
[ -n "$kver" ] || kver=$("$here/kver.sh")
case $mem in *[!0-9]*) ;; *) mem=${mem}M ;; esac

# TCG unless asked: machines of this kind may show a /dev/kvm on which
# guests hang without a line of output, and the figures are TCG's.
accel=${FHGUEST_ACCEL:-tcg}
set -- -machine pc,accel=$accel,memory-backend=mem0 \
	-object memory-backend-memfd,id=mem0,size=$mem,share=on \
	-m "$mem${maxmem:+,maxmem=$maxmem,slots=2}" \
	-smp 1 -nic none -display none -no-reboot -serial "file:$log" \
	-kernel "/boot/vmlinuz-$kver" -initrd "$initrd" \
	-append "console=ttyS0 quiet panic=-1 $append" "$@"
[ -n "$qmp" ] && set -- "$@" -qmp "unix:$qmp,server=on,wait=off"
[ -n "$chan" ] && set -- "$@" -device virtio-serial-pci \
	-chardev "socket,id=fhch0,path=$chan,server=on,wait=off" \
	-device virtserialport,chardev=fhch0,name=org.freehint.agent.0
[ -n "$pidfile" ] && set -- "$@" -pidfile "$pidfile"
: >"$log"

if [ "$bg" = 1 ]; then
	setsid timeout -s KILL "$timeout" qemu-system-x86_64 "$@" \
		</dev/null >"$log.qemu" 2>&1 &
	if [ -n "$pidfile" ]; then
		i=0
		while [ ! -s "$pidfile" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	fi
	exit 0
fi

rc=0
timeout -s KILL "$timeout" qemu-system-x86_64 "$@" </dev/null >"$log.qemu" 2>&1 || rc=$?
st=$(sed -n 's/.*FHGUEST EXIT \([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
if [ -n "$st" ]; then
	exit "$st"
fi
[ $rc = 137 ] || [ $rc = 124 ] && exit 124
cat "$log.qemu" >&2 || true
exit 125
