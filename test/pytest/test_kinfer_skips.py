"""The expected-skip checks themselves (make test-skips): the pytest plugin fails a run on a new
skip or a changed reason and reports a listed test that ran; scripts/check-skips.py likewise for
kinfer-onnx-check's output (its --self-test)."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))

SUITE = '''
import pytest

def test_runs():
    pass

def test_skips():
    pytest.skip("needs a GPU")

@pytest.mark.xfail(reason="known bug", strict=True)
def test_xfails():
    assert False
'''


def run(tmp_path, listing):
    (tmp_path / "test_sample.py").write_text(SUITE)
    (tmp_path / "skips.txt").write_text(listing)
    env = dict(os.environ, PYTEST_PLUGINS="kinfer_skips", PYTHONPATH=HERE,
               KINFER_EXPECTED_SKIPS=str(tmp_path / "skips.txt"))
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def tid(tmp_path, name):
    return os.path.relpath(str(tmp_path / "test_sample.py"), ROOT) + "::" + name


def test_listed_skips_pass(tmp_path):
    r = run(tmp_path, f"{tid(tmp_path, 'test_skips')}: needs a GPU\n{tid(tmp_path, 'test_xfails')}: xfail: known bug\n")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "kinfer_skips" not in r.stdout, r.stdout


def test_new_skip_fails(tmp_path):
    r = run(tmp_path, f"{tid(tmp_path, 'test_xfails')}: xfail: known bug\n")
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"kinfer_skips: FAIL new skip: {tid(tmp_path, 'test_skips')}: needs a GPU" in r.stdout, r.stdout


def test_changed_reason_fails_and_running_test_is_reported(tmp_path):
    r = run(tmp_path, f"{tid(tmp_path, 'test_skips')}: needs a TPU\n{tid(tmp_path, 'test_xfails')}: xfail: known bug\n"
                      f"{tid(tmp_path, 'test_runs')}: was broken\n")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAIL skip reason changed" in r.stdout and "(listed: needs a TPU)" in r.stdout, r.stdout
    assert f"expected skip now runs: {tid(tmp_path, 'test_runs')}" in r.stdout, r.stdout


def test_check_skips_script():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "check-skips.py"), "--self-test"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "self-test: ok" in r.stdout, r.stdout + r.stderr
