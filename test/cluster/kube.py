"""kubectl from pytest, against kinfer's local control plane (`make cluster-up`).

Real kubectl and a real API server; nothing is mocked. Import it from another suite with
``sys.path.insert(0, "<repo>/test/cluster")`` (or PYTHONPATH) and ``import kube``.

    kube.apply(yaml_text, ns)                 # kubectl apply -f -
    obj = kube.get("deployment", "web", ns)   # dict, or None when it does not exist
    kube.wait_for(lambda: kube.condition(kube.get("node", "kwok-node-0"), "Ready") == "True",
                  timeout=30, what="node Ready")
    kube.delete("deployment", "web", ns)
    with kube.namespace("ctl") as ns: ...     # or, at module level:  ns = kube.namespace_fixture("ctl")

The cluster is build/cluster (KINFER_CLUSTER_DIR overrides, as for up.sh); one kwok node,
``kube.NODE``, runs the pods (scheduled pods become Running and Ready; no containers run).
"""
import contextlib
import json
import os
import subprocess
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("KINFER_CLUSTER_DIR") or ROOT / "build" / "cluster")
if not STATE.is_absolute():
    STATE = ROOT / STATE
KUBECONFIG = STATE / "kubeconfig"
KUBECTL = STATE / "bin" / "kubectl"
NODE = "kwok-node-0"


class KubectlError(RuntimeError):
    """A kubectl command that exited non-zero; .stderr holds kubectl's message."""

    def __init__(self, args, returncode, stdout, stderr):
        self.args_, self.returncode, self.stdout, self.stderr = args, returncode, stdout, stderr
        super().__init__(f"kubectl {' '.join(args)} exited {returncode}: {stderr.strip()}")


def kubectl(*args, input=None, check=True, timeout=60):
    """Runs kubectl with the cluster's kubeconfig; returns CompletedProcess (text)."""
    if not KUBECONFIG.exists():
        raise RuntimeError(f"{KUBECONFIG} does not exist: run `make cluster-up` first")
    cmd = [str(KUBECTL), "--kubeconfig", str(KUBECONFIG), *args]
    p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise KubectlError(list(args), p.returncode, p.stdout, p.stderr)
    return p


def _ns_args(ns):
    return ["-n", ns] if ns else []


def apply(yaml_str, ns=None, server_side=False):
    """kubectl apply -f - ; returns kubectl's output. Raises KubectlError on rejection."""
    extra = ["--server-side", "--force-conflicts"] if server_side else []
    return kubectl(*_ns_args(ns), "apply", *extra, "-f", "-", input=yaml_str).stdout


def create(yaml_str, ns=None):
    """kubectl create -f - ; returns kubectl's output."""
    return kubectl(*_ns_args(ns), "create", "-f", "-", input=yaml_str).stdout


def get(kind, name, ns=None):
    """The object as a dict, or None when it does not exist."""
    p = kubectl(*_ns_args(ns), "get", kind, name, "-o", "json", check=False)
    if p.returncode != 0:
        if "NotFound" in p.stderr:
            return None
        raise KubectlError(["get", kind, name], p.returncode, p.stdout, p.stderr)
    return json.loads(p.stdout)


def list_(kind, ns=None, selector=None):
    """The items of a kind (in ns, or cluster-scoped / all when ns is None) as dicts."""
    args = [*_ns_args(ns), "get", kind, "-o", "json"]
    if selector:
        args += ["-l", selector]
    return json.loads(kubectl(*args).stdout)["items"]


def delete(kind, name, ns=None, wait=True, timeout=60):
    """Deletes an object (missing is fine); with wait, until it is gone."""
    kubectl(*_ns_args(ns), "delete", kind, name, "--ignore-not-found",
            f"--wait={'true' if wait else 'false'}", f"--timeout={timeout}s", timeout=timeout + 10)


def condition(obj, ctype):
    """The status ("True"/"False"/"Unknown") of condition ctype in obj, or None."""
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c.get("status")
    return None


def wait_for(predicate, timeout=60.0, interval=0.2, what="condition"):
    """Polls predicate() until it returns a truthy value and returns that value. On timeout raises
    TimeoutError naming `what` and the last value or exception, so a failure says what it saw."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except (KubectlError, KeyError, TypeError, IndexError) as e:
            last = e
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not reached after {timeout}s (last: {last!r})")
        time.sleep(interval)


def create_namespace(prefix="test", labels=None, timeout=60):
    """Creates a uniquely named namespace and waits for its default ServiceAccount (pods are
    refused until the controller manager has made it). Returns the name."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    meta = {"name": name}
    if labels:
        meta["labels"] = labels
    create(json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": meta}))
    wait_for(lambda: get("serviceaccount", "default", name), timeout, what=f"{name}/default ServiceAccount")
    return name


def delete_namespace(name, wait=False):
    delete("namespace", name, wait=wait, timeout=120)


@contextlib.contextmanager
def namespace(prefix="test", labels=None):
    """A fresh namespace for one test, deleted afterwards (without waiting)."""
    name = create_namespace(prefix, labels)
    try:
        yield name
    finally:
        delete_namespace(name)


def namespace_fixture(prefix="test", labels=None):
    """A pytest fixture giving each test its own namespace:  ns = kube.namespace_fixture("ctl")."""
    import pytest

    @pytest.fixture
    def _namespace():
        with namespace(prefix, labels) as name:
            yield name

    return _namespace
