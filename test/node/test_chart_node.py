"""The chart on the real node: `helm install charts/kinfer` with no image overrides runs two
controller replicas from the imported image, one of them holding the leader Lease; the leader
reconciles an InferenceService into a pod that serves; `helm test` runs its check for real and
fails when no controller answers."""
import json
import os

import pytest

import ctl
from conftest import PLACEMENT, container_pid, http_service, node_isvc, proc_status, restricted_namespace, storage_secret, wait_isvc

NS = "node-kinfer-system"
REL = "kinfer"
HELM = os.environ.get("HELM") or os.path.join(ctl.STATE, "bin", "helm")


def helm(*args, check=True, timeout=300):
    import subprocess
    p = subprocess.run([HELM, "--kubeconfig", ctl.KUBECONFIG, *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert p.returncode == 0, "helm %s: %s%s" % (" ".join(args), p.stdout, p.stderr)
    return p


@pytest.fixture(scope="module")
def release():
    helm("uninstall", REL, "-n", NS, "--wait", check=False)
    restricted_namespace(NS)
    values = {"controller": {"nodeSelector": PLACEMENT["nodeSelector"], "tolerations": PLACEMENT["tolerations"]}}
    helm("install", REL, os.path.join(ctl.ROOT, "charts", "kinfer"), "-n", NS, "--wait", "--timeout", "180s",
         "--set-json", "controller=" + json.dumps(values["controller"]),
         # One try, a short deadline: the failing `helm test` below then ends in seconds.
         "--set", "tests.backoffLimit=0", "--set", "tests.activeDeadlineSeconds=60")
    yield REL
    helm("uninstall", REL, "-n", NS, "--wait", check=False)
    ctl.kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=false")


def controller_pods():
    return json.loads(ctl.kubectl("get", "pods", "-n", NS, "-l",
                                  "app.kubernetes.io/instance=%s,app.kubernetes.io/component=controller" % REL,
                                  "-o", "json"))["items"]


def test_two_replicas_one_leader(release):
    pods = controller_pods()
    assert len(pods) == 2, [p["metadata"]["name"] for p in pods]
    for p in pods:
        assert p["spec"]["nodeName"] == "kinfer-node-real"
        assert p["spec"]["containers"][0]["image"] == "kinfer/kinfer-controller:0.1.0"
        assert ctl.condition(p, "Ready")["status"] == "True"
        st = proc_status(container_pid(p, "controller"))
        assert st["Uid"].split()[0] == "65532" and int(st["CapEff"], 16) == 0
    lease = ctl.wait_for("the leader Lease", lambda: (lambda l: l if l and l["spec"].get("holderIdentity") else None)(
        ctl.get("lease", "kinfer-controller-leader", NS, check=False)), timeout=60)
    holder = lease["spec"]["holderIdentity"]
    names = [p["metadata"]["name"] for p in pods]
    assert any(holder.startswith(n) or n in holder for n in names), (holder, names)


def test_in_cluster_controller_serves_an_inferenceservice(release, store):
    ns = restricted_namespace("node-chart-isvc")
    try:
        ctl.apply(node_isvc("iris", ns, "s3://iris", storage_secret(ns, store)))
        wait_isvc("iris", ns, ctl.is_ready, "iris Ready, reconciled by the in-cluster controller", timeout=240)
        cip = ctl.get("service", "iris", ns)["spec"]["clusterIP"]
        status, text = http_service("POST", "http://%s/v2/models/iris/infer" % cip,
                            {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
                                         "data": [5.1, 3.5, 1.4, 0.2]}]})
        assert status == 200 and json.loads(text)["outputs"], text
        dep = ctl.get("deployment", "iris-predictor", ns, managed_fields=True)
        assert any(m.get("manager") == "kinfer-controller" for m in dep["metadata"]["managedFields"]), \
            dep["metadata"]["managedFields"]
    finally:
        ctl.kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=false")


def test_helm_test_runs_its_check(release):
    p = helm("test", REL, "-n", NS, "--timeout", "120s")
    assert "Phase:          Succeeded" in p.stdout, p.stdout
    ctl.kubectl("scale", "deployment", REL + "-controller", "-n", NS, "--replicas=0")
    try:
        ctl.wait_for("no controller pod", lambda: not controller_pods(), timeout=90, interval=1)
        p = helm("test", REL, "-n", NS, "--timeout", "90s", check=False)
        assert p.returncode != 0, "helm test passed with no controller running: %s" % p.stdout
        assert "Failed" in p.stdout + p.stderr or "failed" in p.stdout + p.stderr, p.stdout + p.stderr
    finally:
        ctl.kubectl("scale", "deployment", REL + "-controller", "-n", NS, "--replicas=2")
        ctl.kubectl("rollout", "status", "deployment", REL + "-controller", "-n", NS, "--timeout=180s", timeout=200)
