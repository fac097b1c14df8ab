# Guest side of the page poisoning test (page_poison=1 on the command line,
# no balloon): freehint must not register page reporting, whose holes read
# back as zeroes and fail the poison check, unless report_poison_ok=1.
. /lib/freehint/guest-lib.sh
insmod /lib/freehint/freehint.ko || { no poison-insmod "insmod failed"; exit 1; }
echo "stats: $(grep -E '^(page_poisoning|report_(registered|owner|off_reason)) ' /proc/freehint/stats | tr '\n' ' ')"
[ "$(stat_of page_poisoning)" = 1 ] && ok poison-active ||
	no poison-active "page_poisoning $(stat_of page_poisoning): is page_poison=1 on the command line?"
[ "$(stat_of report_owner)" != freehint ] && [ "$(stat_of report_registered)" = 0 ] &&
	ok poison-no-reporting ||
	no poison-no-reporting "report_owner $(stat_of report_owner), report_registered $(stat_of report_registered)"
[ "$(stat_of report_off_reason)" = poison ] && ok poison-off-reason ||
	no poison-off-reason "report_off_reason $(stat_of report_off_reason)"
dmesg | grep -q "freehint: page reporting unavailable (page_poison=1" &&
	ok poison-dmesg-says-so || no poison-dmesg-says-so "no dmesg line"
rmmod freehint
insmod /lib/freehint/freehint.ko report_poison_ok=1 || no poison-ok-insmod "insmod failed"
[ "$(stat_of report_owner)" = freehint ] && [ "$(stat_of report_off_reason)" = none ] &&
	ok poison-ok-registers ||
	no poison-ok-registers "report_owner $(stat_of report_owner), report_off_reason $(stat_of report_off_reason)"
rmmod freehint || no poison-rmmod "rmmod failed"
dmesg_clean poison-dmesg-clean
exit $st
