"""Fixtures of the node-e2e suite: kinfer's images as real pods on the local cluster's real node
(kubelet, containerd, runc, CNI, kube-proxy; test/cluster/node). Every pod here tolerates the
node's taint and selects its label, so nothing lands on the kwok nodes that only play pods.

What runs where: the control plane, kinfer-controller (unless the chart is under test) and the
model store (moto's S3 server, authentication enforced) are processes on this machine; the store
listens on the node's address, so the pods' storage initializers reach it over the pod network.
Requests go to the Services' ClusterIPs (kube-proxy), from this machine or from client pods."""
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import ctl  # noqa: E402
from s3store import S3Store  # noqa: E402

NODE = "kinfer-node-real"
NODE_IP = "10.88.0.1"
CGROUP = "kinfer-node"
RUNTIME_IMAGE = "docker.io/kinfer/kinfer-server:0.1.0"
CURL_IMAGE = "localhost/kinfer/curl:debian"
PLACEMENT = {"nodeSelector": {"kinfer.dev/node": "real"},
             "tolerations": [{"key": "kinfer.dev/real-node", "operator": "Exists", "effect": "NoSchedule"}]}
LOGS = os.path.join(ctl.ROOT, "build", "test-logs", "node-e2e")


def ctr(*args):
    """ctr against the node's containerd (namespace k8s.io, the CRI's)."""
    bindir = subprocess.run([os.path.join(ctl.ROOT, "test", "cluster", "node", "build.sh"), "--print-dir"],
                            check=True, capture_output=True, text=True).stdout.strip()
    return subprocess.run([os.path.join(bindir, "ctr"), "--address",
                           os.path.join(ctl.STATE, "node", "containerd", "containerd.sock"), "-n", "k8s.io", *args],
                          check=True, capture_output=True, text=True).stdout


def restricted_namespace(name):
    ctl.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=true", "--timeout=120s")
    ctl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest"}}})
    return name


@pytest.fixture(scope="session", autouse=True)
def crd():
    """The InferenceService CRD, as make demo and the chart install it (the suite may run first)."""
    ctl.kubectl("apply", "--server-side", "--force-conflicts", "-f", os.path.join(ctl.ROOT, "crds"))
    ctl.kubectl("wait", "--for=condition=Established", "crd/inferenceservices.serving.kinfer.dev", "--timeout=60s")


@pytest.fixture(scope="session")
def node():
    n = ctl.get("node", NODE, "default")
    ready = ctl.condition(n, "Ready")
    assert ready and ready["status"] == "True", "the real node is not Ready: %s" % ready
    return n


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """The models the tests serve, made here: iris (examples/models/make_iris.py), a model slow to
    warm up, and one whose weights exceed a 64Mi memory limit."""
    d = tmp_path_factory.mktemp("models")
    subprocess.run([sys.executable, os.path.join(ctl.ROOT, "examples", "models", "make_iris.py"), str(d / "iris")],
                   check=True, capture_output=True)
    from onnx_models import big_model, slow_model
    slow_model(str(d / "slow.onnx"))
    big_model(str(d / "big.onnx"))
    return {"iris": str(d / "iris" / "model.onnx"), "slow": str(d / "slow.onnx"), "big": str(d / "big.onnx")}


@pytest.fixture(scope="session")
def store(models, tmp_path_factory):
    s = S3Store(str(tmp_path_factory.mktemp("s3")), NODE_IP,
                dict({name: {"model.onnx": path} for name, path in models.items()},
                     **{"sklearn-iris": {"model.onnx": models["iris"]}}))
    yield s
    s.stop()


def storage_secret(ns, store, name="s3", **override):
    data = store.secret_data(**override)
    ctl.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
               "type": "Opaque", "stringData": data})
    return name


def node_isvc(name, ns, uri, secret, mem="256Mi", cpu="1", **predictor):
    """An InferenceService placed on the real node, its model fetched from the store."""
    pred = {"model": {"modelFormat": {"name": "onnx"}, "storageUri": uri, "storageSecretName": secret,
                      "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                                    "limits": {"cpu": cpu, "memory": mem}}},
            "minReplicas": 1, "maxReplicas": 1}
    pred.update(PLACEMENT)
    pred.update(predictor)
    return {"apiVersion": "serving.kinfer.dev/v1beta1", "kind": "InferenceService",
            "metadata": {"name": name, "namespace": ns}, "spec": {"predictor": pred}}


@pytest.fixture
def namespace(request):
    name = "node-" + re.sub(r"[^a-z0-9-]+", "-", request.node.name.replace("_", "-").lower())[:40].strip("-")
    restricted_namespace(name)
    yield name
    ctl.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")


@pytest.fixture
def controller(namespace):
    """kinfer-controller on this machine, watching the test's namespace, with its default runtime
    image replaced by the chart's (both names are imported into the node)."""
    c = ctl.Controller(namespace, "--runtime-image", RUNTIME_IMAGE)
    yield c
    c.kill()


def wait_isvc(name, ns, pred, what, timeout=180):
    def check():
        o = ctl.get("kisvc", name, ns, check=False)
        return o if o and pred(o) else None
    return ctl.wait_for(what, check, timeout=timeout, interval=1)


def pods_of(name, ns):
    return json.loads(ctl.kubectl("get", "pods", "-n", ns, "-l", "serving.kinfer.dev/inferenceservice=" + name,
                                  "-o", "json"))["items"]


def container_pid(pod, container):
    """The host pid of a running container's first process, found from its containerID through
    the pods' cgroups on this machine (what the kernel runs, not what the API says)."""
    st = next(c for c in pod["status"]["containerStatuses"] if c["name"] == container)
    cid = st["containerID"].split("://", 1)[1]
    for root, dirs, _ in os.walk("/sys/fs/cgroup/pids/" + CGROUP):
        if os.path.basename(root) == cid:
            with open(os.path.join(root, "cgroup.procs")) as f:
                return int(f.read().split()[0])
    raise AssertionError("no cgroup for container %s (%s)" % (container, cid))


def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def http(method, url, body=None, timeout=10):
    """(status, body text); raises OSError for connection failures."""
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except urllib.error.URLError as e:  # a connection failure: raise the OSError it wraps
        raise e.reason if isinstance(e.reason, OSError) else e


def http_service(method, url, body=None, timeout=10, settle=30):
    """http() to a Service: connection refusals are retried for up to settle seconds, since
    kube-proxy adds a new endpoint to its rules a moment after the pod turns Ready."""
    deadline = time.monotonic() + settle
    while True:
        try:
            return http(method, url, body, timeout)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def metrics(url):
    status, text = http("GET", url + "/metrics")
    assert status == 200, (status, text[:200])
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


def run_client_pod(ns, name, args, timeout=120):
    """A pod of Debian's curl (localhost/kinfer/curl:debian) on the real node; returns (phase, log)."""
    ctl.kubectl("delete", "pod", name, "-n", ns, "--ignore-not-found", "--wait=true")
    ctl.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns}, "spec": {
        "restartPolicy": "Never", "automountServiceAccountToken": False, **PLACEMENT,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "curl", "image": CURL_IMAGE, "args": args, "securityContext": {
            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}}]}})
    pod = ctl.wait_for("client pod %s to finish" % name,
                       lambda: (lambda p: p if p["status"].get("phase") in ("Succeeded", "Failed") else None)(
                           ctl.get("pod", name, ns)), timeout=timeout, interval=0.5)
    return pod["status"]["phase"], ctl.kubectl("logs", name, "-n", ns)
