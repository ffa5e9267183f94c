"""The chart against the real local control plane (make cluster-up: kube-apiserver, controller
manager, scheduler, kwok). kwok plays the pods here (the chart's pods carry no toleration for the
real node's taint), so what is tested is what the API server admits and what the Deployment
controller makes of it; test/node/test_chart_node.py runs the same chart on the real node.

The release namespace enforces the restricted Pod Security Standard, so a controller or test pod
that asked for more privilege than "restricted" allows would be refused at creation."""
import json
import subprocess
import time

import pytest

from conftest import CHART, run, tool

NS = "kinfer-pkg-test"
REL = "kinfer-pkgtest"
CRD = "inferenceservices.serving.kinfer.dev"


@pytest.fixture(scope="module")
def kubectl():
    k = tool("KUBECTL")
    tool_kc = __import__("os").environ.get("KUBECONFIG")
    assert tool_kc, "KUBECONFIG is not set; run through `make test-packaging`"
    return [k, "--request-timeout=30s"]


@pytest.fixture(scope="module")
def namespace(kubectl, helm):
    run([helm, "uninstall", REL, "-n", NS, "--wait"], check=False)  # a leftover from an aborted run
    run(kubectl + ["delete", "namespace", NS, "--ignore-not-found", "--wait=true", "--timeout=120s"], check=False)
    manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest"}}}
    run(kubectl + ["apply", "-f", "-"], input=json.dumps(manifest))
    yield NS
    run(kubectl + ["delete", "namespace", NS, "--ignore-not-found", "--wait=false"], check=False)


def template(helm, *sets):
    args = [helm, "template", REL, CHART, "-n", NS, "--include-crds"]
    for s in sets:
        args += ["--set", s]
    return run(args).stdout


@pytest.mark.parametrize("sets", [
    (),
    ("podDisruptionBudget.enabled=true", "rbac.istio=true", "rbac.keda=true",
     "rbac.storageSecrets[0].namespace=" + NS, "rbac.storageSecrets[0].names[0]=s3-creds"),
    ("controller.watchNamespace=" + NS,),
], ids=["defaults", "options", "one-namespace"])
def test_dry_run_server(kubectl, helm, namespace, sets):
    # Server-side apply: the CRD may already exist, created by another tool without kubectl's
    # last-applied annotation, which client-side apply would warn about.
    proc = run(kubectl + ["apply", "--server-side", "--force-conflicts", "--field-manager=kinfer-pkg-test",
                          "--dry-run=server", "-f", "-"], input=template(helm, *sets), check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr, proc.stderr  # e.g. PodSecurity warnings, deprecated APIs
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) >= 9 and all(line.endswith("(server dry run)") for line in lines), proc.stdout


def get(kubectl, *what):
    return json.loads(run(kubectl + ["get", "-o", "json"] + list(what)).stdout)


def test_install_reaches_ready(kubectl, helm, namespace):
    proc = run([helm, "install", REL, CHART, "-n", NS, "--wait", "--timeout", "180s"], timeout=240, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    dep = get(kubectl, "-n", NS, "deployment", REL + "-controller")
    st = dep["status"]
    assert st.get("readyReplicas") == 2 and st.get("availableReplicas") == 2, st
    pods = get(kubectl, "-n", NS, "pods", "-l", "app.kubernetes.io/instance=%s,app.kubernetes.io/component=controller" % REL)
    assert len(pods["items"]) == 2
    for p in pods["items"]:
        assert p["spec"]["serviceAccountName"] == REL
        assert p["spec"]["securityContext"]["runAsUser"] == 65532
        assert any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"]["conditions"])
    crd = get(kubectl, "crd", CRD)
    assert crd["spec"]["group"] == "serving.kinfer.dev"


def test_service_account_can_do_its_job_and_no_more(kubectl, namespace):
    """RBAC as the API server evaluates it (kubectl auth can-i, impersonating the ServiceAccount)."""
    sa = "system:serviceaccount:%s:%s" % (NS, REL)

    def can(*args):
        proc = subprocess.run(kubectl + ["auth", "can-i", "--as", sa] + list(args), capture_output=True, text=True)
        return proc.stdout.strip()

    assert can("watch", "inferenceservices.serving.kinfer.dev", "-A") == "yes"
    assert can("patch", "inferenceservices.serving.kinfer.dev", "--subresource=status", "-n", "default") == "yes"
    assert can("create", "deployments.apps", "-n", "default") == "yes"
    assert can("delete", "horizontalpodautoscalers.autoscaling", "-n", "default") == "yes"
    assert can("create", "leases.coordination.k8s.io", "-n", NS) == "yes"
    assert can("create", "leases.coordination.k8s.io", "-n", "default") == "no"
    assert can("get", "secrets", "-n", "default") == "no"
    assert can("get", "secrets", "-n", NS) == "no"
    assert can("delete", "pods", "-n", "default") == "no"
    assert can("create", "inferenceservices.serving.kinfer.dev", "-n", "default") == "no"
    assert can("delete", "customresourcedefinitions.apiextensions.k8s.io") == "no"


# `helm test` is not run here: kwok would mark the test pod Succeeded without running it. The
# node-e2e suite (test/node/test_chart_node.py) runs it on the real node, passing and failing.
