#!/usr/bin/env bash
# Runs each named suite as `make test-<suite>`, keeps going past a failed suite, records its
# counts, tears the control plane down at the end, and closes with one summary line.
# A suite's counts come from its own closing line: pytest's "N passed, N failed", cmocka's
# "[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s)", or our "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
logs=build/test-logs; mkdir -p "$logs"
make=${MAKE:-make}
cleanup() { [ -x test/cluster/down.sh ] && test/cluster/down.sh >/dev/null 2>&1 || true; }
trap cleanup EXIT

tp=0; tf=0; ts=0; bad=()
for s in "$@"; do
  echo "=== suite $s"
  start=$(date +%s)
  $make --no-print-directory "test-$s" 2>&1 | tee "$logs/$s.log"
  rc=${PIPESTATUS[0]}
  read -r p f k < <(scripts/test-counts.sh "$logs/$s.log")
  # A suite that fails without a count line still counts as one failure.
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  if [ "$rc" -eq 0 ] && [ "$p" -eq 0 ]; then echo "suite $s ran no test"; f=$((f+1)); fi
  echo "=== suite $s: $p passed, $f failed, $k skipped ($(( $(date +%s) - start ))s, rc=$rc)"
  tp=$((tp+p)); tf=$((tf+f)); ts=$((ts+k))
  [ "$rc" -ne 0 ] || [ "$f" -ne 0 ] && bad+=("$s")
done
[ ${#bad[@]} -eq 0 ] || echo "failed suites: ${bad[*]} (logs in $logs/)"
echo "$tp passed, $tf failed, $ts skipped"
[ ${#bad[@]} -eq 0 ]
