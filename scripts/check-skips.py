#!/usr/bin/env python3
"""Checks a runner's skips against a checked-in list of expected skips, each with its reason.

  RUNNER | scripts/check-skips.py LIST          (the runner's output passes through unchanged)
  scripts/check-skips.py --self-test

Reads "SKIP NAME: REASON" and "PASS NAME" / "FAIL NAME: ..." lines (kinfer-onnx-check's format;
a path ending in "model.onnx: " at the start of a reason is dropped, so the list does not depend
on where the test data lives). LIST has one "NAME: REASON" line per expected skip; blank lines and
lines starting with # are ignored.

Fails (exit 1) on a skip that is not listed, or listed with another reason: a kernel that starts
refusing inputs turns passes into skips, and that must not pass as green. A listed test that now
passes is reported (remove its line, so the list shrinks); a listed test that did not run at all
is reported too. Neither fails. (The runner's own status is the pipeline's: set -o pipefail.)
Prints one summary line, which test-counts.sh does not count.
"""
import re
import sys

LINE = re.compile(r"^(PASS|FAIL|SKIP) (\S+)(?:: (.*))?$")
PATH = re.compile(r"^\S*model\.onnx: ")


def parse_list(text, where):
    want = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, reason = line.partition(": ")
        if not sep or not reason or " " in name:
            raise SystemExit(f"{where}:{n}: want 'NAME: REASON', got {line!r}")
        if name in want:
            raise SystemExit(f"{where}:{n}: {name} listed twice")
        want[name] = reason
    return want


def check(output, want):
    """(problems, notes, counts) for a runner's output against the expected skips."""
    seen = {}  # name -> (result, reason)
    for line in output.splitlines():
        m = LINE.match(line)
        if m:
            seen[m.group(2)] = (m.group(1), PATH.sub("", m.group(3) or ""))
    problems, notes = [], []
    skipped = {n: r for n, (res, r) in seen.items() if res == "SKIP"}
    for name, reason in sorted(skipped.items()):
        if name not in want:
            problems.append(f"new skip: {name}: {reason}")
        elif want[name] != reason:
            problems.append(f"skip reason changed: {name}: {reason} (listed: {want[name]})")
    for name in sorted(want):
        if name not in seen:
            notes.append(f"expected skip did not run: {name}")
        elif seen[name][0] != "SKIP":
            notes.append(f"expected skip now {seen[name][0]}: {name}: remove it from the list")
    return problems, notes, (len(want), len(skipped))


def self_test():
    out = "PASS test_a\nSKIP test_b: /d/test_b/model.onnx: node #0 (X): why\nSKIP test_c: other\n1 passed, 0 failed, 2 skipped\n"
    want = parse_list("# comment\n\ntest_b: node #0 (X): why\ntest_c: other\n", "self-test")
    assert check(out, want)[:2] == ([], []), check(out, want)
    p, _, _ = check(out.replace("PASS test_a", "SKIP test_a: 3-D pooling"), want)
    assert p == ["new skip: test_a: 3-D pooling"], p
    p, _, _ = check(out.replace("other", "another reason"), want)
    assert p and p[0].startswith("skip reason changed: test_c"), p
    p, n, _ = check(out.replace("SKIP test_c: other", "PASS test_c"), want)
    assert p == [] and n == ["expected skip now PASS: test_c: remove it from the list"], (p, n)
    for bad in ("no reason here", "two words: x", "a: x\na: y"):
        try:
            parse_list(bad, "self-test")
        except SystemExit:
            continue
        raise AssertionError(f"accepted {bad!r}")
    print("check-skips self-test: ok")


def main():
    if sys.argv[1:] == ["--self-test"]:
        self_test()
        return 0
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        want = parse_list(f.read(), sys.argv[1])
    output = sys.stdin.read()
    sys.stdout.write(output)
    problems, notes, (listed, skipped) = check(output, want)
    for n in notes:
        print(f"check-skips: {n}")
    for p in problems:
        print(f"check-skips: FAIL {p}")
    print(f"check-skips: {skipped} skips, {listed} expected in {sys.argv[1]}, {len(problems)} unexpected")
    if problems:
        print(f"check-skips: a skip that is right goes in {sys.argv[1]} with its reason (docs/testing.md)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
