"""Autoscaling and pod templates against the real control plane (make cluster-up): the objects
kinfer-controller renders must be accepted by the API server (KEDA's ScaledObject CRD is installed
by cluster-up, so its schema validates them), and every predictor pod must pass Pod Security
Admission at level restricted. Run by `make test-controller-e2e`.
"""
import json
import time
import uuid

import pytest

import ctl
from ctl import apply, condition, get, kubectl, wait_for
from test_controller import container, controllers, crd, ns, owned_by, wait_ready  # noqa: F401 (fixtures)

PROMETHEUS = "http://prometheus.monitoring.svc:9090"
KEDA = {"serving.kinfer.dev/autoscalerClass": "keda"}


def isvc(name, namespace, annotations=None, **predictor):
    obj = ctl.isvc(name, namespace, **predictor)
    if annotations:
        obj["metadata"]["annotations"] = annotations
    return obj


def pod_template(namespace, name):
    return get("deployment", name + "-predictor", namespace)["spec"]["template"]


def managed_replicas(dep, manager="kinfer-controller"):
    """Whether `manager` owns spec.replicas of the Deployment (server-side apply bookkeeping)."""
    for m in dep["metadata"].get("managedFields") or []:
        if m["manager"] == manager and "f:replicas" in m.get("fieldsV1", {}).get("f:spec", {}):
            return True
    return False


def reconcile_again(name, namespace, obj):
    """A harmless spec change (an extra arg) so the controller reconciles; waits until applied."""
    obj["spec"]["predictor"]["model"]["args"] = ["--threads=1"]
    apply(obj)
    wait_for("the new args applied", lambda: "--threads=1" in container(get("deployment", name + "-predictor",
                                                                             namespace))["args"])


# ---------------------------------------------------------------------------------------------
# Autoscaling.

def test_keda_scaledobject_then_back_to_hpa(ns, controllers):
    """autoscalerClass keda: a ScaledObject (accepted by KEDA's CRD schema) with a Prometheus
    trigger, scale to zero allowed, behavior under advanced; no HPA of kinfer's own, replicas not
    owned. Switching back to hpa deletes the ScaledObject and creates the HPA."""
    controllers(ns, "--prometheus-address", PROMETHEUS)
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 120}}
    obj = isvc("kd", ns, KEDA, minReplicas=0, maxReplicas=4, scaleMetric="rps", scaleTarget=50,
               autoScaling={"behavior": behavior})
    apply(obj)
    so = wait_for("ScaledObject", lambda: get("scaledobject", "kd-predictor", ns, check=False))
    owner = get("kisvc", "kd", ns)
    assert owned_by(so, owner)
    sp = so["spec"]
    assert sp["scaleTargetRef"]["name"] == "kd-predictor" and sp["scaleTargetRef"]["kind"] == "Deployment"
    assert sp["minReplicaCount"] == 0 and sp["maxReplicaCount"] == 4
    [trig] = sp["triggers"]
    assert trig["type"] == "prometheus"
    md = trig["metadata"]
    assert md["serverAddress"] == PROMETHEUS and md["threshold"] == "50"
    assert md["query"] == ('sum(rate({__name__=~"nv_inference_request_(success|failure)",namespace="%s",'
                           'model="kd"}[1m]))' % ns), md["query"]
    assert sp["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == behavior
    dep = get("deployment", "kd-predictor", ns, managed_fields=True)
    assert dep["metadata"]["annotations"]["serving.kinfer.dev/scaling"] == "keda"
    assert not managed_replicas(dep), "with KEDA kinfer must not own spec.replicas"
    assert get("hpa", "kd-predictor", ns, check=False) is None

    apply(isvc("kd", ns, None, minReplicas=1, maxReplicas=3))  # annotation removed: hpa
    wait_for("HPA created", lambda: get("hpa", "kd-predictor", ns, check=False))
    wait_for("ScaledObject deleted", lambda: get("scaledobject", "kd-predictor", ns, check=False) is None, timeout=30)
    wait_ready("kd", ns)


def test_keda_cpu_trigger_and_invalid_specs_reported(ns, controllers):
    """keda with cpu: a cpu trigger (no Prometheus needed). Specs the CRD cannot judge (they depend
    on the annotation or on the controller's flags) are reported as InvalidSpec with an Event."""
    controllers(ns)  # no --prometheus-address
    apply(isvc("kcpu", ns, KEDA, minReplicas=1, maxReplicas=3, scaleTarget=60))
    so = wait_for("ScaledObject", lambda: get("scaledobject", "kcpu-predictor", ns, check=False))
    [trig] = so["spec"]["triggers"]
    assert trig == {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}}, trig

    cases = {
        "zero": (isvc("zero", ns, None, minReplicas=0),
                 "spec.predictor.minReplicas: 0 (scale to zero) needs the annotation "
                 "serving.kinfer.dev/autoscalerClass: keda"),
        "noprom": (isvc("noprom", ns, KEDA, scaleMetric="concurrency"),
                   "needs Prometheus: kinfer-controller was started without --prometheus-address"),
        "badclass": (isvc("badclass", ns, {"serving.kinfer.dev/autoscalerClass": "vpa"}),
                     '"vpa" is not one of hpa, keda, external, none'),
    }
    for name, (obj, _) in cases.items():
        apply(obj)
    for name, (_, msg) in cases.items():
        o = wait_for(f"{name} InvalidSpec", lambda: (lambda o: o if (condition(o, "Ready") or {}).get("reason") ==
                                                     "InvalidSpec" else None)(get("kisvc", name, ns, check=False)))
        c = condition(o, "Ready")
        assert c["status"] == "False" and msg in c["message"], c
        assert get("deployment", name + "-predictor", ns, check=False) is None
    events = json.loads(kubectl("get", "events", "-n", ns, "--field-selector", "reason=InvalidSpec", "-o", "json"))
    named = {e["involvedObject"]["name"] for e in events["items"]}
    assert set(cases) <= named, named


def test_hpa_pods_metrics_and_behavior_passthrough(ns, controllers):
    controllers(ns)
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 600,
                              "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
                "scaleUp": {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}}
    apply(isvc("rps", ns, minReplicas=1, maxReplicas=10, scaleMetric="rps", scaleTarget=150,
               autoScaling={"behavior": behavior}))
    apply(isvc("qd", ns, minReplicas=2, maxReplicas=6, scaleMetric="queueDepth", scaleTarget=4))
    hpa = wait_for("HPA rps", lambda: get("hpa", "rps-predictor", ns, check=False))
    [m] = hpa["spec"]["metrics"]
    assert m["type"] == "Pods" and m["pods"]["metric"]["name"] == "kinfer_requests_per_second"
    assert m["pods"]["target"] == {"type": "AverageValue", "averageValue": "150"}
    got = hpa["spec"]["behavior"]
    assert got["scaleDown"]["stabilizationWindowSeconds"] == 600
    assert got["scaleDown"]["policies"] == behavior["scaleDown"]["policies"]
    assert got["scaleUp"]["policies"] == behavior["scaleUp"]["policies"] and got["scaleUp"]["selectPolicy"] == "Max"
    hpa = wait_for("HPA queueDepth", lambda: get("hpa", "qd-predictor", ns, check=False))
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == "kinfer_queue_depth"
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 6
    # The CRD rejects a bad behavior before the controller sees it.
    bad = isvc("bad", ns, autoScaling={"behavior": {"scaleUp": {"selectPolicy": "Sometimes"}}})
    p = kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(bad), check=False)
    assert p.returncode != 0 and "selectPolicy" in p.stderr, p.stderr
    bad = isvc("bad", ns, scaleMetric="gpu")
    p = kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(bad), check=False)
    assert "scaleMetric must be one of cpu, memory, rps, concurrency, queueDepth" in p.stderr, p.stderr


@pytest.mark.parametrize("cls", ["external", "none"])
def test_external_and_none_leave_replicas_alone(ns, controllers, cls):
    """From fixed replicas (kinfer owns them) to external/none: the count is kept (handover), then
    kubectl scale is never undone, and no HPA exists."""
    controllers(ns)
    apply(isvc("ext", ns, minReplicas=2, maxReplicas=2))
    wait_ready("ext", ns)
    obj = isvc("ext", ns, {"serving.kinfer.dev/autoscalerClass": cls}, minReplicas=2, maxReplicas=5)
    apply(obj)
    dep = wait_for("scaling annotation", lambda: (lambda d: d if d["metadata"]["annotations"].get(
        "serving.kinfer.dev/scaling") == cls else None)(get("deployment", "ext-predictor", ns, managed_fields=True)))
    assert dep["spec"]["replicas"] == 2, "the handover keeps the count"
    assert not managed_replicas(dep)
    kubectl("scale", "deployment/ext-predictor", "-n", ns, "--replicas=4")
    reconcile_again("ext", ns, obj)
    wait_ready("ext", ns)
    time.sleep(2)
    assert get("deployment", "ext-predictor", ns)["spec"]["replicas"] == 4
    assert get("hpa", "ext-predictor", ns, check=False) is None
    assert get("scaledobject", "ext-predictor", ns, check=False) is None


def test_hpa_to_external_deletes_the_hpa(ns, controllers):
    """From an HPA to external: kinfer's HPA is deleted, the replica count the HPA left stays, and
    from then on the user's count stands."""
    controllers(ns)
    apply(isvc("h2e", ns, minReplicas=2, maxReplicas=5))
    wait_for("HPA", lambda: get("hpa", "h2e-predictor", ns, check=False))
    # The Deployment starts at the default 1; the HPA controller raises it to minReplicas.
    wait_for("HPA enforces minReplicas 2", lambda: get("deployment", "h2e-predictor", ns)["spec"]["replicas"] == 2,
             timeout=90)
    wait_ready("h2e", ns)
    obj = isvc("h2e", ns, {"serving.kinfer.dev/autoscalerClass": "external"}, minReplicas=2, maxReplicas=5)
    apply(obj)
    wait_for("HPA deleted", lambda: get("hpa", "h2e-predictor", ns, check=False) is None, timeout=30)
    dep = get("deployment", "h2e-predictor", ns, managed_fields=True)
    assert dep["metadata"]["annotations"]["serving.kinfer.dev/scaling"] == "external"
    assert dep["spec"]["replicas"] == 2 and not managed_replicas(dep)
    kubectl("scale", "deployment/h2e-predictor", "-n", ns, "--replicas=3")
    reconcile_again("h2e", ns, obj)
    time.sleep(2)
    assert get("deployment", "h2e-predictor", ns)["spec"]["replicas"] == 3


# ---------------------------------------------------------------------------------------------
# Pods.

def test_gpu_and_mig_rendering(ns, controllers):
    controllers(ns)
    res = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi", "nvidia.com/gpu": 1}}
    gpu = isvc("gpu", ns)
    gpu["spec"]["predictor"]["model"]["resources"] = res
    gpu["spec"]["predictor"]["nodeSelector"] = {"nvidia.com/gpu.present": "true"}
    gpu["spec"]["predictor"]["priorityClassName"] = "system-cluster-critical"
    mig = isvc("mig", ns)
    mig["spec"]["predictor"]["model"]["resources"] = {"limits": {"nvidia.com/mig-1g.5gb": "1"}}
    cpu = isvc("cpu", ns)
    for o in (gpu, mig, cpu):
        apply(o)
    for name, key in (("gpu", "nvidia.com/gpu"), ("mig", "nvidia.com/mig-1g.5gb")):
        t = wait_for(name, lambda: get("deployment", name + "-predictor", ns, check=False))["spec"]["template"]
        c = t["spec"]["containers"][0]
        i = c["args"].index("--device")
        assert c["args"][i + 1] == "cuda", c["args"]
        assert str(c["resources"]["limits"][key]) == "1"
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in t["spec"]["tolerations"]
    t = pod_template(ns, "gpu")
    assert t["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert t["spec"]["priorityClassName"] == "system-cluster-critical"
    t = wait_for("cpu", lambda: get("deployment", "cpu-predictor", ns, check=False))["spec"]["template"]
    assert "--device" not in t["spec"]["containers"][0]["args"] and "tolerations" not in t["spec"]


RESTRICTED_CASES = {
    "plain": {},
    "pvc": {"model": {"modelFormat": {"name": "onnx"}, "storageUri": "pvc://models/iris/v1"}},
    "creds": {"model": {"modelFormat": {"name": "onnx"}, "storageUri": "s3://models/iris",
                        "storageSecretName": "s3-creds",
                        "env": [{"name": "AWS_REGION", "value": "eu-west-1"}]},
              "serviceAccountName": "default", "automountServiceAccountToken": True},
    "gpu": {"model": {"modelFormat": {"name": "onnx"}, "storageUri": "gs://models/resnet",
                      "resources": {"limits": {"nvidia.com/gpu": 1, "cpu": "1", "memory": "1Gi"}}}},
}


@pytest.fixture
def restricted_ns():
    name = "kinfer-psa-" + uuid.uuid4().hex[:8]
    kubectl("create", "namespace", name)
    kubectl("label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/enforce-version=latest", "pod-security.kubernetes.io/warn=restricted")
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def pod_from_template(namespace, name, tmpl):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": tmpl["metadata"].get("labels", {}),
                         "annotations": tmpl["metadata"].get("annotations", {})},
            "spec": tmpl["spec"]}


def test_every_pod_admitted_at_restricted(restricted_ns, controllers):
    """Pod Security Admission, level restricted, enforced on the namespace: the controller's pods
    are created (ReplicaSets get past admission), and a Pod built from each template passes a
    server-side dry run without warnings. A negative control (the same pod without its security
    context) is refused, so the namespace really enforces."""
    ns = restricted_ns
    controllers(ns)
    for name, pred in RESTRICTED_CASES.items():
        obj = isvc(name, ns)
        for k, v in pred.items():
            obj["spec"]["predictor"][k] = v
        if "resources" not in obj["spec"]["predictor"]["model"]:
            obj["spec"]["predictor"]["model"]["resources"] = ctl.isvc(name, ns)["spec"]["predictor"]["model"]["resources"]
        apply(obj)
    for name in RESTRICTED_CASES:
        wait_for(f"pod of {name} created", lambda: json.loads(kubectl(
            "get", "pods", "-n", ns, "-l", f"serving.kinfer.dev/inferenceservice={name}", "-o", "json"))["items"],
            timeout=60)
        tmpl = pod_template(ns, name)
        p = kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(pod_from_template(ns, "dry-" + name, tmpl)),
                    check=False)
        assert p.returncode == 0, f"{name}: {p.stderr}"
        assert "violate PodSecurity" not in p.stderr, f"{name}: {p.stderr}"
    for name in RESTRICTED_CASES:  # no ReplicaSet reports a failed pod creation
        for rs in json.loads(kubectl("get", "replicasets", "-n", ns, "-l",
                                     f"serving.kinfer.dev/inferenceservice={name}", "-o", "json"))["items"]:
            bad = [c for c in rs.get("status", {}).get("conditions") or [] if c["type"] == "ReplicaFailure"]
            assert not bad, bad
    tmpl = pod_template(ns, "plain")
    del tmpl["spec"]["securityContext"]
    for c in tmpl["spec"]["containers"] + tmpl["spec"]["initContainers"]:
        del c["securityContext"]
    p = kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(pod_from_template(ns, "control", tmpl)),
                check=False)
    assert p.returncode != 0 and "violates PodSecurity" in p.stderr, p.stderr


def test_pod_template_details(ns, controllers):
    """Storage initializer, probes, scrape annotations, /tmp, secret only in the init container, pvc."""
    controllers(ns)
    creds = isvc("creds", ns)
    creds["spec"]["predictor"]["model"]["storageSecretName"] = "s3-creds"
    pvc = isvc("pvc", ns)
    pvc["spec"]["predictor"]["model"]["storageUri"] = "pvc://store/models/iris"
    apply(creds)
    apply(pvc)
    t = wait_for("creds", lambda: get("deployment", "creds-predictor", ns, check=False))["spec"]["template"]
    assert t["metadata"]["annotations"] == {"prometheus.io/scrape": "true", "prometheus.io/port": "8080",
                                            "prometheus.io/path": "/metrics"}
    sp = t["spec"]
    [init] = sp["initContainers"]
    assert init["name"] == "storage-initializer" and init["args"] == ["fetch", "s3://models/creds", "/mnt/models"]
    assert init["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]
    [c] = sp["containers"]
    assert "envFrom" not in c and "s3-creds" not in json.dumps(c)
    assert c["args"][:2] == ["--model-dir", "/mnt/models"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080, "scheme": "HTTP"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 8080, "scheme": "HTTP"}
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    assert sp["automountServiceAccountToken"] is False
    t = wait_for("pvc", lambda: get("deployment", "pvc-predictor", ns, check=False))["spec"]["template"]
    assert "initContainers" not in t["spec"]
    vol = [v for v in t["spec"]["volumes"] if "persistentVolumeClaim" in v]
    assert vol and vol[0]["persistentVolumeClaim"] == {"claimName": "store", "readOnly": True}
    assert t["spec"]["containers"][0]["args"][:2] == ["--model-dir", "/mnt/pvc/models/iris"]
