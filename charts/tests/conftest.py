"""Shared helpers of the packaging tests (charts/packaging.mk: make test-packaging).

Tools come from the environment the make target sets: HELM, KSTATUS_EVAL, STATUS_DUMP, KUBECTL,
KUBECONFIG. A missing tool is a failure, never a skip: the make target builds all of them.
"""
import os
import subprocess

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHART = os.path.join(ROOT, "charts", "kinfer")


def tool(env):
    path = os.environ.get(env)
    assert path, "%s is not set; run through `make test-packaging`" % env
    path = path if os.path.isabs(path) else os.path.join(ROOT, path)
    assert os.access(path, os.X_OK), "%s=%s is not an executable" % (env, path)
    return path


def run(args, check=True, timeout=300, **kw):
    kw.setdefault("cwd", ROOT)
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        pytest.fail("%s exited %d\nstdout:\n%s\nstderr:\n%s" % (" ".join(args), proc.returncode,
                                                                proc.stdout[-4000:], proc.stderr[-4000:]))
    return proc


@pytest.fixture(scope="session")
def helm():
    return tool("HELM")


def render(helm, *sets, namespace="kinfer-system", release="kinfer", extra=()):
    """The chart's templates rendered with --set values, as a list of objects."""
    args = [helm, "template", release, CHART, "-n", namespace]
    for s in sets:
        args += ["--set", s]
    out = run(args + list(extra)).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def by_kind(objs, kind):
    return [o for o in objs if o["kind"] == kind]
