#!/bin/sh
# Run every step in tests/checks.d in order and count the cases they report.
# A step prints "PASS name", "FAIL name: why" or "SKIP name: why" per case
# and exits 0 (passed), 77 (skipped as a whole) or anything else (failed).
# Usage: tests/run-checks.sh [PATTERN...]   (only steps whose name matches
# one of the patterns). Each step gets at most CHECK_STEP_TIMEOUT seconds
# (default 1500): a hung step fails, with its whole process group killed,
# instead of hanging the run.
set -u
cd "$(dirname "$0")/.." || exit 1
top=$(pwd)
logdir=$top/check-logs
mkdir -p "$logdir"
step_timeout=${CHECK_STEP_TIMEOUT:-1500}
pass=0 fail=0 skip=0 failed_steps=""

for step in tests/checks.d/*.sh; do
	name=$(basename "$step" .sh)
	if [ $# -gt 0 ]; then
		match=no
		for pattern in "$@"; do
			case "$name" in *"$pattern"*) match=yes ;; esac
		done
		[ "$match" = yes ] || continue
	fi
	log=$logdir/$name.log
	start=$(date +%s)
	echo "=== $name"
	timeout --kill-after=30 "$step_timeout" sh "$step" </dev/null >"$log" 2>&1
	rc=$?
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "FAIL $name-timeout: no end after ${step_timeout}s" >>"$log"
	fi
	secs=$(($(date +%s) - start))
	grep -aE '^(PASS|FAIL|SKIP) ' "$log" | sed 's/^/    /'
	p=$(grep -ac '^PASS ' "$log")
	f=$(grep -ac '^FAIL ' "$log")
	s=$(grep -ac '^SKIP ' "$log")
	if [ "$rc" -eq 77 ]; then
		echo "--- $name: skipped (${secs}s)"
		[ "$s" -eq 0 ] && s=1
	elif [ "$rc" -ne 0 ]; then
		echo "--- $name: FAILED, exit $rc (${secs}s); last lines of $log:"
		tail -n 40 "$log" | sed 's/^/    | /'
		[ "$f" -eq 0 ] && f=1
		failed_steps="$failed_steps $name"
	else
		if [ "$f" -ne 0 ]; then
			echo "--- $name: exit 0 but reported failures"
			failed_steps="$failed_steps $name"
		fi
		echo "--- $name: ok (${secs}s)"
	fi
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
done

[ -n "$failed_steps" ] && echo "failed steps:$failed_steps"
if [ $((pass + fail)) -eq 0 ]; then
	echo "no test ran"
	exit 1
fi
echo "checks: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] && [ -z "$failed_steps" ]
