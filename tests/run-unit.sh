#!/bin/sh
# Run cmocka programs; print PASS/FAIL per test case for run-checks.sh.
# cmocka writes TAP (CMOCKA_MESSAGE_OUTPUT=TAP): "ok N - case",
# "not ok N - case" followed by "# why" lines, "not ok N # SKIP case"
# (reported SKIP), and a "1..N" plan; a
# program that dies mid-way leaves cases unreported, which fails it.
# VALGRIND=1 runs each under valgrind (errors and leaks fail the program).
set -u
rc=0
export CMOCKA_MESSAGE_OUTPUT=TAP
for t in "$@"; do
	name=$(basename "$t")
	if [ "${VALGRIND:-0}" = 1 ]; then
		out=$(valgrind -q --error-exitcode=99 --leak-check=full \
		    --errors-for-leak-kinds=definite,indirect \
		    "$t" 2>&1)
	else
		out=$("$t" 2>&1)
	fi
	st=$?
	printf '%s\n' "$out" | awk -v prog="$name" '
	function flush() {
		if (failed != "")
			printf "FAIL %s:%s:%s\n", prog, failed, why
		failed = ""; why = ""
	}
	/^1\.\.[0-9]+$/ { plan = substr($0, 4) + 0; next }
	/^ok [0-9]+ - / { flush(); sub(/^ok [0-9]+ - /, ""); print "PASS " prog ":" $0; seen++; next }
	/^not ok [0-9]+ # SKIP / { flush(); sub(/^not ok [0-9]+ # SKIP /, ""); print "SKIP " prog ":" $0 ": skipped by the test"; seen++; next }
	/^not ok [0-9]+ - / { flush(); sub(/^not ok [0-9]+ - /, ""); failed = $0; seen++; next }
	/^# (not )?ok - / { next }
	/^# / && failed != "" { sub(/^# /, ""); why = why " " $0; next }
	END {
		flush()
		if (seen != plan)
			printf "FAIL %s: %d of %d cases reported\n", prog, seen, plan
	}'
	if [ "$st" -ne 0 ]; then
		printf '%s\n' "$out" | tail -n 30
		echo "FAIL $name: exit status $st"
		rc=1
	fi
done
exit $rc
