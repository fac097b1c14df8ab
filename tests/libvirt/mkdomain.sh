#!/bin/sh
# Print a test domain's XML (domain.xml.in filled in).
#
#   mkdomain.sh -n NAME -i INITRD -d DIR [-m MEM_MIB] [-a APPEND] [-k KVER]
#               [-P] [-C]
#
# The channel socket and the serial log go to DIR. -P: private memory
# (no <memoryBacking>), -C: no freehint channel, for unservable domains.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
name= initrd= dir= mem=256 append= kver= private=0 nochan=0
while getopts n:i:d:m:a:k:PC opt; do
	case $opt in
	n) name=$OPTARG ;;
	i) initrd=$OPTARG ;;
	d) dir=$OPTARG ;;
	m) mem=$OPTARG ;;
	a) append=$OPTARG ;;
	k) kver=$OPTARG ;;
	P) private=1 ;;
	C) nochan=1 ;;
	*) sed -n '2,8p' "$0" >&2; exit 2 ;;
	esac
done
[ -n "$name" ] && [ -n "$initrd" ] && [ -n "$dir" ] || { sed -n '2,8p' "$0" >&2; exit 2; }
[ -n "$kver" ] || kver=$("$here/../guest/kver.sh")
sed -e '/^<!--/,/-->/d' -e "s|@NAME@|$name|g" -e "s|@MEM_MIB@|$mem|g" \
	-e "s|@KERNEL@|/boot/vmlinuz-$kver|g" -e "s|@INITRD@|$initrd|g" \
	-e "s|@CMDLINE@|console=ttyS0 quiet panic=-1 $append|g" \
	-e "s|@CHANNEL@|$dir/$name.chan|g" -e "s|@LOG@|$dir/$name.log|g" \
	"$here/domain.xml.in" |
	if [ $private = 1 ]; then sed -e '/<memoryBacking>/,/<\/memoryBacking>/d'; else cat; fi |
	if [ $nochan = 1 ]; then sed -e '/<channel /,/<\/channel>/d'; else cat; fi
