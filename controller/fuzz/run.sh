#!/usr/bin/env bash
# Runs a libFuzzer target for a bounded time on a scratch copy of its seed corpus and ends with
# the suite line "N passed, N failed, N skipped": passed when the run found no crash, leak or
# sanitizer report. Usage: controller/fuzz/run.sh FUZZER CORPUS_DIR SECONDS
set -uo pipefail
fuzzer=$1 corpus=$2 secs=${3:-20}
work=$(mktemp -d /tmp/kinfer-fuzz-XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r "$corpus"/. "$work/"
"$fuzzer" -max_total_time="$secs" -rss_limit_mb=1024 -max_len=65536 -print_final_stats=1 \
  -artifact_prefix="$work/" "$work" >"$work.log" 2>&1
rc=$?
tail -n 15 "$work.log"
runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work.log" | grep -o '[0-9]*$')
if [ "$rc" -eq 0 ] && [ "${runs:-0}" -gt 0 ]; then
  echo "fuzz $(basename "$fuzzer"): ${runs} inputs in ${secs}s, no crash"
  echo "1 passed, 0 failed, 0 skipped"
  rm -f "$work.log"; exit 0
fi
ls "$work"/crash-* "$work"/leak-* 2>/dev/null | head -3
echo "fuzz $(basename "$fuzzer"): failed (rc=$rc; log $work.log)"
echo "0 passed, 1 failed, 0 skipped"
exit 1
