"""The chart's RBAC is enough for the real controller, and no more than the API server allows it.

A second release of the chart watches one namespace (Role, not ClusterRole). kinfer-controller
(build/bin/kinfer-controller) then runs on this machine with that release's ServiceAccount token
only, with leader election in the release namespace, and reconciles an InferenceService to Ready on
the local control plane (kwok plays the predictor pods). Any rule the chart lacks shows up as a
403 in the controller's API request metrics or as an InferenceService that never gets Ready."""
import json
import os
import re
import subprocess
import time

import pytest
import yaml

from conftest import CHART, ROOT, run, tool

REL = "kinfer-rbac"
NS = "kinfer-pkg-rbac"            # the release: ServiceAccount, Deployment, Lease
MODELS = "kinfer-pkg-rbac-models"  # the one namespace it watches


@pytest.fixture(scope="module")
def kubectl():
    assert os.environ.get("KUBECONFIG"), "KUBECONFIG is not set; run through `make test-packaging`"
    return [tool("KUBECTL"), "--request-timeout=30s"]


@pytest.fixture(scope="module")
def release(kubectl, helm):
    def cleanup():
        run([helm, "uninstall", REL, "-n", NS, "--wait"], check=False)
        run(kubectl + ["delete", "namespace", NS, MODELS, "--ignore-not-found", "--wait=false"], check=False)
    cleanup()
    for ns in (NS, MODELS):
        deadline = time.time() + 120
        while run(kubectl + ["get", "namespace", ns], check=False).returncode == 0:  # still terminating
            assert time.time() < deadline, "namespace %s did not go away" % ns
            time.sleep(2)
        run(kubectl + ["create", "namespace", ns])
    proc = run([helm, "install", REL, CHART, "-n", NS, "--set", "controller.watchNamespace=" + MODELS,
                "--set", "controller.replicas=1", "--wait", "--timeout", "180s"], timeout=240, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    yield
    cleanup()


def token_kubeconfig(kubectl, path):
    """A kubeconfig with only the release ServiceAccount's (short-lived) token."""
    admin = yaml.safe_load(open(os.environ["KUBECONFIG"]))
    cluster = admin["clusters"][0]["cluster"]
    token = run(kubectl + ["create", "token", REL, "-n", NS, "--duration=15m"]).stdout.strip()
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "sa",
           "clusters": [{"name": "local", "cluster": cluster}],
           "users": [{"name": "sa", "user": {"token": token}}],
           "contexts": [{"name": "sa", "context": {"cluster": "local", "user": "sa", "namespace": NS}}]}
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    os.chmod(path, 0o600)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_controller_reconciles_with_chart_rbac_only(kubectl, release, tmp_path):
    binary = os.path.join(ROOT, "build", "bin", "kinfer-controller")
    assert os.access(binary, os.X_OK), "build/bin/kinfer-controller is not built (make)"
    kc = tmp_path / "sa.kubeconfig"
    token_kubeconfig(kubectl, str(kc))
    mport, hport = free_port(), free_port()
    log = open(tmp_path / "controller.log", "w+")
    proc = subprocess.Popen([binary, "--kubeconfig", str(kc), "--namespace", MODELS, "--leader-elect",
                             "--lease-namespace", NS, "--lease-name", REL + "-leader", "--workers", "1",
                             "--metrics-addr", "127.0.0.1:%d" % mport, "--health-addr", "127.0.0.1:%d" % hport,
                             "--runtime-image", "kinfer/kinfer-server:rbac-test"],
                            stdout=log, stderr=subprocess.STDOUT)
    isvc = {"apiVersion": "serving.kinfer.dev/v1beta1", "kind": "InferenceService",
            "metadata": {"name": "iris", "namespace": MODELS},
            "spec": {"predictor": {"minReplicas": 1, "maxReplicas": 2, "model": {
                "modelFormat": {"name": "onnx"}, "storageUri": "s3://models/iris"}}}}
    try:
        run(kubectl + ["apply", "-f", "-"], input=json.dumps(isvc))
        proc_wait = run(kubectl + ["wait", "-n", MODELS, "--for=condition=Ready", "inferenceservice/iris",
                                   "--timeout=150s"], timeout=180, check=False)
        log.seek(0)
        logs = log.read()
        assert proc.poll() is None, "controller exited %s:\n%s" % (proc.returncode, logs[-4000:])
        assert proc_wait.returncode == 0, "not Ready:\n%s\n%s\ncontroller log:\n%s" % (
            proc_wait.stderr, run(kubectl + ["get", "-n", MODELS, "inferenceservice/iris", "-o", "yaml"],
                                  check=False).stdout, logs[-4000:])
        import urllib.request
        metrics = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=5).read().decode()
        forbidden = re.findall(r'kinfer_controller_api_requests_total\{verb="(\w+)",code="403"\} (\d+)', metrics)
        assert not [f for f in forbidden if f[1] != "0"], "403s with the chart's RBAC: %s\n%s" % (forbidden, logs[-3000:])
        assert re.search(r"^kinfer_controller_leader 1$", metrics, re.M), "it never took the Lease"
        lease = json.loads(run(kubectl + ["get", "lease", "-n", NS, REL + "-leader", "-o", "json"]).stdout)
        assert lease["spec"]["holderIdentity"]
        # It created the predictor's children in the watched namespace with those rights alone.
        run(kubectl + ["get", "-n", MODELS, "deployment/iris-predictor", "service/iris", "hpa/iris-predictor"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        run(kubectl + ["delete", "-n", MODELS, "inferenceservice/iris", "--ignore-not-found", "--wait=false"],
            check=False)
        log.close()
