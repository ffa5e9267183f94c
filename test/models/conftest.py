"""Shared fixtures for the end-to-end model tests: the generated model cache and kinfer-run."""
import hashlib
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def models_cache_dir():
    """$KINFER_CACHE/models-<hash of gen_models.py>: a new script makes a new cache."""
    with open(os.path.join(HERE, "gen_models.py"), "rb") as f:
        h = hashlib.sha256(f.read()).hexdigest()[:12]
    cache = os.environ.get("KINFER_CACHE", os.path.expanduser("~/.cache/kinfer"))
    return os.path.join(cache, f"models-{h}")


def ensure_models(names=()):
    out = models_cache_dir()
    missing = [n for n in names if not os.path.exists(os.path.join(out, n, ".done"))]
    if missing or not names:
        subprocess.run([sys.executable, os.path.join(HERE, "gen_models.py"), out, *missing],
                       check=True)
    return out


def kinfer_run_path():
    return os.environ.get("KINFER_RUN", os.path.join(ROOT, "build", "bin", "kinfer-run"))


@pytest.fixture(scope="session")
def models_dir():
    return ensure_models()


@pytest.fixture(scope="session")
def kinfer_run():
    p = kinfer_run_path()
    if not os.access(p, os.X_OK):
        pytest.fail(f"{p} is not built (make build/bin/kinfer-run)")
    return p
