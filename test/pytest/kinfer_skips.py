"""pytest plugin: every skip (and xfail) must be in test/expected-skips.txt with its reason.

Loaded into every pytest run of the build through PYTEST_PLUGINS (the top Makefile exports it and
puts this directory on PYTHONPATH). A skipped test whose id is not listed, or is listed with
another reason, fails the session (exit status 1) and is named in the summary: a test that starts
skipping on some machine must not turn `make test` green without anyone reading why. A listed
test that ran and did not skip is reported, so its line can go. Tests are named by their path
from the repository root and their pytest name: `serving-runtime/tests/e2e/test_x.py::test_y[p]`.
"""
import os

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LIST = os.environ.get("KINFER_EXPECTED_SKIPS", os.path.join(ROOT, "test", "expected-skips.txt"))


def parse(text, where):
    """{test id: reason} from "ID: REASON" lines (# comments and blank lines ignored)."""
    want = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        tid, sep, reason = line.partition(": ")
        if not sep or not reason or "::" not in tid:
            raise pytest.UsageError(f"{where}:{n}: want 'PATH::TEST: REASON', got {line!r}")
        want[tid] = reason
    return want


class ExpectedSkips:
    def __init__(self, config):
        self.config = config
        with open(LIST) as f:
            self.want = parse(f.read(), LIST)
        self.ran = {}  # test id -> reason when skipped, None when it ran
        self.problems, self.notes = [], []

    def test_id(self, nodeid):
        path, sep, rest = nodeid.partition("::")
        full = os.path.relpath(os.path.join(str(self.config.rootpath), path), ROOT)
        return full + sep + rest

    @staticmethod
    def reason(report):
        if hasattr(report, "wasxfail"):
            return "xfail: " + (report.wasxfail or "no reason")
        lr = report.longrepr
        text = lr[2] if isinstance(lr, tuple) and len(lr) == 3 else str(lr)
        return text[len("Skipped: "):] if text.startswith("Skipped: ") else text

    def pytest_runtest_logreport(self, report):
        tid = self.test_id(report.nodeid)
        if report.skipped or hasattr(report, "wasxfail"):
            self.ran[tid] = self.reason(report)
        elif report.when == "call":
            self.ran.setdefault(tid, None)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session):
        for tid, reason in sorted(self.ran.items()):
            if reason is None:
                if tid in self.want:
                    self.notes.append(f"expected skip now runs: {tid}: remove it from {LIST}")
            elif tid not in self.want:
                self.problems.append(f"new skip: {tid}: {reason}")
            elif self.want[tid] != reason:
                self.problems.append(f"skip reason changed: {tid}: {reason} (listed: {self.want[tid]})")
        if self.problems and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter):
        for n in self.notes:
            terminalreporter.write_line(f"kinfer_skips: {n}")
        for p in self.problems:
            terminalreporter.write_line(f"kinfer_skips: FAIL {p}", red=True)
        if self.problems:
            terminalreporter.write_line(f"kinfer_skips: a skip that is right goes in {LIST} with its reason "
                                        "(docs/testing.md, Expected skips)")


def pytest_configure(config):
    config.pluginmanager.register(ExpectedSkips(config), "kinfer_expected_skips")
