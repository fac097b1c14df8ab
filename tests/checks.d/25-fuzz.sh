#!/bin/sh
# Fuzz the frame decoder, the message codec and fh_batch_unpack for a
# minute (FUZZ_SECONDS to change it), starting from tests/fuzz/corpus. The
# corpus is copied into build/ so that the run never modifies the repo.
# Any crash, sanitizer report, leak or timeout fails.
cd "$(dirname "$0")/../.." || exit 1
secs=${FUZZ_SECONDS:-60}
if ! command -v clang >/dev/null 2>&1; then
	echo "FAIL fuzz-build: clang not installed"
	exit 1
fi
mkdir -p build
if ! tests/fuzz/build.sh >build/fuzz-build.log 2>&1; then
	cat build/fuzz-build.log
	echo "FAIL fuzz-build: see above"
	exit 1
fi
echo "PASS fuzz-build"
work=build/fuzz/run
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
cp tests/fuzz/corpus/* "$work/corpus/"
# The seeds alone first: each must decode cleanly.
if ! build/fuzz/fuzz_frame -runs=0 "$work/corpus" >"$work/seeds.log" 2>&1; then
	tail -n 40 "$work/seeds.log"
	echo "FAIL fuzz-seeds: a seed crashes the decoder"
	exit 1
fi
echo "PASS fuzz-seeds"
build/fuzz/fuzz_frame -max_total_time="$secs" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/fuzz.log" 2>&1
rc=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log")
if [ "$rc" -ne 0 ] || ls "$work/artifacts/"* >/dev/null 2>&1; then
	grep -E 'ERROR|SUMMARY|#[0-9]+ 0x' "$work/fuzz.log" | head -n 30
	echo "FAIL fuzz-frame: crash after ${runs:-?} runs; reproducer in $work/artifacts/"
	exit 1
fi
echo "PASS fuzz-frame: ${runs:-?} inputs in ${secs}s, no crash"
