#!/usr/bin/env bash
# Prints "PASSED FAILED SKIPPED" summed over every runner closing line in a log file.
awk '
  /^\[  PASSED  \] [0-9]+ test/ { p += $4 }
  /^\[  FAILED  \] [0-9]+ test/ { f += $4 }
  /^\[  SKIPPED \] [0-9]+ test/ { s += $4 }
  # pytest: "==== 3 passed, 1 failed, 2 skipped in 1.2s ====" (any order, any subset)
  /^=+ .* in [0-9.]+s/ && /(passed|failed|skipped|error)/ {
    for (i = 1; i <= NF; i++) {
      v = $(i); gsub(/[^0-9]/, "", v)
      if ($(i+1) ~ /^passed/) p += v
      else if ($(i+1) ~ /^failed/ || $(i+1) ~ /^error/) f += v
      else if ($(i+1) ~ /^skipped/) s += v
    }
  }
  # our own runners: "N passed, N failed, N skipped" alone on a line
  /^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$/ { p += $1; f += $3; if (NF >= 6) s += $5 }
  END { printf "%d %d %d\n", p, f, s }
' "$1"
