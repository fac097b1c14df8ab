# Guest side of the integrity test: the scribbling module fills every block
# with 0x5a as soon as it is read; fhinteg checks its data for ${FHINTEG_SECS}.
insmod /lib/freehint/freehint-scribble.ko ||
	{ echo "FAIL integrity-insmod: insmod failed"; exit 1; }
/bin/fhinteg 60 128
st=$?
grep -E "^(report|hold)_" /proc/freehint/stats | tr '\n' ' '; echo
if dmesg | grep -E -q "BUG:|WARNING:|Oops|invoked oom-killer"; then
	echo "FAIL integrity-dmesg-clean: kernel complained"; dmesg | tail -30; st=1
else
	echo "PASS integrity-dmesg-clean"
fi
rmmod freehint || { echo "FAIL integrity-rmmod: rmmod failed"; st=1; }
exit $st
