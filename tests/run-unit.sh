#!/bin/sh
# Run cmocka programs; print PASS/FAIL per test case for run-checks.sh.
# VALGRIND=1 runs each under valgrind (errors and leaks fail the program).
set -u
rc=0
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
	printf '%s\n' "$out" | sed -n 's/^\[       OK \] \(.*\)$/PASS '"$name"':\1/p;
	    s/^\[  FAILED  \] \([^ ]*\)$/FAIL '"$name"':\1/p;
	    s/^\[  ERROR   \] \(.*\)$/FAIL '"$name"':\1/p'
	if [ "$st" -ne 0 ]; then
		printf '%s\n' "$out" | tail -n 30
		echo "FAIL $name: exit status $st"
		rc=1
	fi
done
exit $rc
