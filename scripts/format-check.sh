#!/usr/bin/env bash
# `make format-check`: every tracked C source and header must be as clang-format writes it with
# the checked-in .clang-format (`clang-format --dry-run -Werror`). Names each file that is not
# (fix with `make format`), then closes with "N passed, N failed, 0 skipped", counted in files.
set -uo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "format-check: clang-format not found (scripts/deps.sh build installs it)"; exit 1; }
pass=0 fail=0
while IFS= read -r f; do
  if clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "not clang-formatted: $f"
  fi
done < <(git ls-files '*.c' '*.h')
echo "$pass passed, $fail failed, 0 skipped"
[ "$fail" -eq 0 ]
