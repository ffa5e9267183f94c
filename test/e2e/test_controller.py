"""kinfer-controller against the real control plane (make cluster-up: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, kwok). Run by `make test-controller-e2e`.

Each test works in its own namespace and starts its own kinfer-controller (--namespace), so tests
do not see each other's objects. kwok plays the pods: scheduled pods become Running and Ready.
"""
import calendar
import json
import os
import signal
import subprocess
import time
import uuid

import pytest

import ctl
from ctl import Controller, apply, get, is_ready, isvc, kubectl, wait_for, condition

CHILD_KINDS = ("deployment", "service", "hpa")


@pytest.fixture(scope="session", autouse=True)
def crd():
    assert os.path.exists(ctl.KUBECONFIG), "run `make cluster-up` first (make test-controller-e2e does)"
    kubectl("apply", "--server-side", "--force-conflicts", "-f", ctl.CRD)
    kubectl("wait", "--for=condition=Established", "--timeout=60s",
            "crd/inferenceservices.serving.kinfer.dev")


@pytest.fixture
def ns():
    name = "kinfer-e2e-" + uuid.uuid4().hex[:8]
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def controllers():
    """Starts controllers on demand; kills every one at the end and prints their logs on failure."""
    started = []

    def start(namespace, *extra):
        c = Controller(namespace, *extra)
        started.append(c)
        return c

    yield start
    for c in started:
        if c.alive():
            c.kill(signal.SIGTERM)
        print(f"--- {c.log_path}\n{c.tail(40)}")


def wait_ready(name, ns, timeout=90):
    return wait_for(f"InferenceService {ns}/{name} Ready", lambda: (lambda o: o if is_ready(o) else None)(
        get("inferenceservice", name, ns, check=False)), timeout=timeout)


def owned_by(obj, owner):
    refs = obj["metadata"].get("ownerReferences") or []
    return any(r["uid"] == owner["metadata"]["uid"] and r.get("controller") is True and r["kind"] == "InferenceService"
               for r in refs)


def container(dep):
    return dep["spec"]["template"]["spec"]["containers"][0]


def model_uri(dep):
    """The storageUri a Deployment serves: the storage-initializer's `fetch URI DIR` (or --model-uri)."""
    pod = dep["spec"]["template"]["spec"]
    for c in pod.get("initContainers", []) + pod["containers"]:
        args = c.get("args") or []
        if args[:1] == ["fetch"] and len(args) >= 2:
            return args[1]
        if "--model-uri" in args:
            return args[args.index("--model-uri") + 1]
    return None


# ---------------------------------------------------------------------------------------------
# Admission: the CRD's schema and CEL rules, without a controller.

INVALID = [
    ("name format", {"metadata": {"name": "9lives"}}, "metadata.name must be a DNS-1035 label"),
    ("name length", {"metadata": {"name": "a" * 45}}, "metadata.name must be at most 44 characters"),
    ("max < min", {"minReplicas": 3, "maxReplicas": 2}, "maxReplicas must be greater than or equal to minReplicas"),
    ("min < 0", {"minReplicas": -1}, "minReplicas must be 0 or greater"),
    ("max < 0", {"maxReplicas": -1}, "maxReplicas must be 0 or greater"),
    ("scaleMetric", {"scaleMetric": "gpu"}, "scaleMetric must be one of cpu, memory, rps, concurrency"),
    ("scaleTarget < 1", {"scaleTarget": 0}, "scaleTarget must be 1 or greater"),
    ("utilization > 100", {"scaleMetric": "memory", "scaleTarget": 150},
     "scaleTarget is a utilization percentage for scaleMetric cpu and memory and must be between 1 and 100"),
    ("canary > 100", {"canaryTrafficPercent": 101}, "canaryTrafficPercent must be between 0 and 100"),
    ("canary < 0", {"canaryTrafficPercent": -1}, "canaryTrafficPercent must be between 0 and 100"),
    ("containerConcurrency", {"containerConcurrency": -1}, "containerConcurrency must be 0 or greater"),
    ("timeout", {"timeout": 0}, "timeout must be at least 1 second"),
    ("maxBatchSize", {"batcher": {"maxBatchSize": 0}}, "batcher.maxBatchSize must be 1 or greater"),
    ("maxLatency", {"batcher": {"maxLatency": 0}}, "batcher.maxLatency is in milliseconds"),
    ("serviceAccountName", {"serviceAccountName": "Not_Valid"}, "serviceAccountName must be a DNS-1123 subdomain"),
    ("modelFormat", {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://b/m"}},
     "modelFormat.name must be onnx"),
    ("bare path", {"model": {"modelFormat": {"name": "onnx"}, "storageUri": "/models/iris"}},
     "storageUri must start with s3://, gs://, http://, https://, file:/// (absolute path) or pvc://<claim>/"),
    ("ftp", {"model": {"modelFormat": {"name": "onnx"}, "storageUri": "ftp://host/m"}},
     "storageUri must start with"),
    ("no storageUri", {"model": {"modelFormat": {"name": "onnx"}}}, "spec.predictor.model.storageUri: Required value"),
    ("no model", {"model": None}, "spec.predictor.model: Required value"),
    ("unknown field", {"replicas": 3}, 'unknown field "spec.predictor.replicas"'),
]


@pytest.mark.parametrize("case,change,message", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_spec_rejected_with_message(ns, case, change, message):
    obj = isvc("bad", ns)
    if "metadata" in change:
        obj["metadata"].update(change["metadata"])
    else:
        for k, v in change.items():
            if v is None:
                del obj["spec"]["predictor"][k]
            else:
                obj["spec"]["predictor"][k] = v
    p = kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(obj), check=False)
    assert p.returncode != 0, f"{case}: accepted: {p.stdout}"
    assert message in p.stderr, f"{case}: want {message!r} in: {p.stderr}"


def test_kserve_yaml_accepted_and_explained(ns):
    """The KServe-shaped example is admitted unchanged but for apiVersion; explain, columns, short name."""
    with open(os.path.join(ctl.ROOT, "examples", "demo", "sklearn-iris.yaml")) as f:
        manifest = f.read()
    p = kubectl("create", "--dry-run=server", "-n", ns, "-f", "-", "-o", "json",
                input=manifest.replace("namespace: default", f"namespace: {ns}"), check=False)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["spec"]["predictor"]["batcher"]["maxLatency"] == 5
    out = kubectl("explain", "inferenceservices.spec.predictor.batcher.maxLatency")
    assert "milliseconds" in out
    out = kubectl("explain", "kisvc.spec.predictor.model.storageUri")
    assert "pvc://" in out
    assert "inferenceservices" in kubectl("api-resources", "--categories=kinfer", "-o", "name")
    apply(isvc("cols", ns))
    header = kubectl("get", "kisvc", "-n", ns).splitlines()[0].split()
    assert header == ["NAME", "URL", "READY", "PREV", "LATEST", "AGE"], header


# ---------------------------------------------------------------------------------------------
# Reconciliation.

def test_create_children_ready_and_kubectl_wait(ns, controllers):
    controllers(ns)
    apply(isvc("iris", ns, minReplicas=1, maxReplicas=3, scaleTarget=70, batcher={"maxBatchSize": 8, "maxLatency": 2}))
    p = kubectl("wait", "--for=condition=Ready", "inferenceservice/iris", "-n", ns, "--timeout=90s", check=False,
                timeout=100)
    assert p.returncode == 0, p.stderr
    obj = get("kisvc", "iris", ns)
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    assert obj["status"]["url"] == f"http://iris.{ns}.svc.cluster.local"
    assert condition(obj, "Reconciling") is None and condition(obj, "Stalled") is None
    dep, svc, hpa = get("deployment", "iris-predictor", ns, managed_fields=True), get("service", "iris", ns), get("hpa", "iris-predictor", ns)
    for child in (dep, svc, hpa):
        assert owned_by(child, obj), child["metadata"]
    c = container(dep)
    assert c["image"] == ctl.IMAGE
    assert c["args"][:2] == ["--model-dir", "/mnt/models"]
    init = dep["spec"]["template"]["spec"]["initContainers"][0]
    assert init["args"] == ["fetch", "s3://models/iris", "/mnt/models"], init
    assert "--max-queue-delay-us" in c["args"] and c["args"][c["args"].index("--max-queue-delay-us") + 1] == "2000"
    ours = [m for m in dep["metadata"]["managedFields"] if m["manager"] == "kinfer-controller" and m["operation"] == "Apply"]
    assert ours, "kinfer-controller applies with server-side apply"
    assert "f:replicas" not in ours[0]["fieldsV1"]["f:spec"], "with an HPA kinfer must not own spec.replicas"
    assert svc["spec"]["ports"][0]["port"] == 80
    assert hpa["spec"]["minReplicas"] == 1 and hpa["spec"]["maxReplicas"] == 3
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    row = kubectl("get", "kisvc", "iris", "-n", ns, "--no-headers").split()
    # NAME URL READY PREV LATEST AGE, PREV empty: no previous revision takes traffic.
    assert len(row) == 5 and row[1:4] == [f"http://iris.{ns}.svc.cluster.local", "True", "100"], row


def test_spec_update_rolls_deployment(ns, controllers):
    controllers(ns)
    apply(isvc("roll", ns))
    wait_ready("roll", ns)
    before = get("deployment", "roll-predictor", ns)
    obj = isvc("roll", ns)
    obj["spec"]["predictor"]["model"]["storageUri"] = "gs://other/roll-v2"
    apply(obj)
    after = wait_for("Deployment rolled to the new storageUri", lambda: (lambda d: d if d and model_uri(d) ==
                     "gs://other/roll-v2" else None)(get("deployment", "roll-predictor", ns, check=False)))
    assert after["metadata"]["generation"] > before["metadata"]["generation"]
    isv = wait_ready("roll", ns)
    assert isv["metadata"]["generation"] == 2 and isv["status"]["observedGeneration"] == 2
    rs = json.loads(kubectl("get", "replicasets", "-n", ns, "-l", "serving.kinfer.dev/inferenceservice=roll",
                            "-o", "json"))["items"]
    assert len(rs) >= 2, "a template change makes a new ReplicaSet"


def test_hand_and_hpa_replica_changes_not_reverted(ns, controllers):
    controllers(ns)
    apply(isvc("scaled", ns, minReplicas=1, maxReplicas=5))
    wait_ready("scaled", ns)
    kubectl("scale", "deployment/scaled-predictor", "-n", ns, "--replicas=3")
    # Make the controller reconcile again (a spec change), then give it time to act.
    obj = isvc("scaled", ns, minReplicas=1, maxReplicas=5)
    obj["spec"]["predictor"]["model"]["args"] = ["--threads=1"]
    apply(obj)
    wait_for("the new args applied", lambda: "--threads=1" in container(get("deployment", "scaled-predictor", ns))["args"])
    wait_ready("scaled", ns)
    time.sleep(3)
    assert get("deployment", "scaled-predictor", ns)["spec"]["replicas"] == 3


def test_fixed_replicas_owned_by_controller(ns, controllers):
    """Without autoscaling (min == max) the controller owns replicas and puts them back."""
    controllers(ns)
    apply(isvc("fixed", ns, minReplicas=2, maxReplicas=2))
    wait_ready("fixed", ns)
    assert get("hpa", "fixed-predictor", ns, check=False) is None
    kubectl("scale", "deployment/fixed-predictor", "-n", ns, "--replicas=4")
    wait_for("replicas put back to 2", lambda: get("deployment", "fixed-predictor", ns)["spec"]["replicas"] == 2,
             timeout=30)


def test_fixed_to_autoscaled_keeps_replica_count(ns, controllers):
    """min == max == 3, then max 6: the HPA takes over spec.replicas without the Deployment ever
    dropping to the default of 1 in between (needs the reconcile_handover() ownership transfer)."""
    controllers(ns)
    apply(isvc("grow", ns, minReplicas=3, maxReplicas=3))
    wait_ready("grow", ns)
    watch = subprocess.Popen([ctl.KUBECTL, "--kubeconfig", ctl.KUBECONFIG, "get", "deployment", "grow-predictor", "-n",
                              ns, "-w", "-o", "jsonpath={.spec.replicas}{\"\\n\"}"], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        apply(isvc("grow", ns, minReplicas=3, maxReplicas=6))
        wait_for("HPA created", lambda: get("hpa", "grow-predictor", ns, check=False))
        obj = wait_ready("grow", ns)
        assert obj["status"]["observedGeneration"] == 2
        time.sleep(2)
    finally:
        watch.terminate()
    seen = [int(v) for v in watch.communicate(timeout=10)[0].split()]
    assert seen and min(seen) == 3, f"spec.replicas went through {seen}"
    dep = get("deployment", "grow-predictor", ns, managed_fields=True)
    assert dep["spec"]["replicas"] == 3
    ours = [m for m in dep["metadata"]["managedFields"] if m["manager"] == "kinfer-controller"]
    assert all("f:replicas" not in m["fieldsV1"].get("f:spec", {}) for m in ours), "kinfer still owns replicas"


def test_deleted_deployment_is_recreated(ns, controllers):
    controllers(ns)
    apply(isvc("phoenix", ns))
    wait_ready("phoenix", ns)
    old = get("deployment", "phoenix-predictor", ns)["metadata"]["uid"]
    kubectl("delete", "deployment", "phoenix-predictor", "-n", ns, "--wait=true")
    wait_for("Deployment recreated", lambda: (lambda d: d and d["metadata"]["uid"] != old)(
        get("deployment", "phoenix-predictor", ns, check=False)), timeout=30)
    wait_ready("phoenix", ns)


def test_deleting_isvc_garbage_collects_children(ns, controllers):
    controllers(ns)
    apply(isvc("gone", ns, minReplicas=1, maxReplicas=2))
    wait_ready("gone", ns)
    kubectl("delete", "kisvc", "gone", "-n", ns)
    for kind, name in (("deployment", "gone-predictor"), ("service", "gone"), ("hpa", "gone-predictor")):
        wait_for(f"{kind} {name} garbage-collected", lambda: get(kind, name, ns, check=False) is None, timeout=60)


def test_ssa_conflicting_manager(ns, controllers):
    """Another field manager changes a field kinfer owns: kinfer forces it back. A field kinfer does
    not own (a label added by someone else) stays."""
    controllers(ns)
    apply(isvc("ssa", ns))
    wait_ready("ssa", ns)
    dep = get("deployment", "ssa-predictor", ns)
    patch = {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "ssa-predictor", "namespace": ns, "labels": {"team": "intruder"}},
             "spec": {"selector": dep["spec"]["selector"],
                      "template": {"metadata": {"labels": dep["spec"]["template"]["metadata"]["labels"]},
                                   "spec": {"containers": [{"name": "kinfer-server", "image": "evil/image:1"}]}}}}
    # The apply response is the object right after the intruder's write (kinfer reverts it within ms).
    after = json.loads(apply(patch, server_side=True, manager="intruder", force=True, output="json"))
    assert container(after)["image"] == "evil/image:1"
    wait_for("kinfer forces its image back", lambda: container(get("deployment", "ssa-predictor", ns))["image"]
             == ctl.IMAGE, timeout=30)
    assert get("deployment", "ssa-predictor", ns)["metadata"]["labels"].get("team") == "intruder"


def test_quota_replica_failure_reports_stalled(ns, controllers):
    """Pods that cannot be created (a quota) make Ready False with the Deployment's ReplicaFailure, and Stalled."""
    controllers(ns)
    kubectl("create", "quota", "tiny", "-n", ns, "--hard=pods=0")
    apply(isvc("quota", ns))
    obj = wait_for("Ready False with ReplicaFailure", lambda: (lambda o: o if (condition(o, "Ready") or {}).get(
        "reason") == "ReplicaFailure" else None)(get("kisvc", "quota", ns)), timeout=60)
    assert condition(obj, "Ready")["status"] == "False"
    assert condition(obj, "Stalled")["status"] == "True"
    assert "forbidden" in condition(obj, "Ready")["message"], condition(obj, "Ready")


# ---------------------------------------------------------------------------------------------
# Failures of the controller and of the API server.

def rfc3339(t):
    """Seconds since the epoch of a Kubernetes timestamp (whole seconds, UTC)."""
    return calendar.timegm(time.strptime(t, "%Y-%m-%dT%H:%M:%SZ"))


def applied_at(obj, subresource=""):
    """When kinfer-controller's field manager last applied obj (or its subresource, e.g. "status"),
    from the server's managedFields; None when it never did."""
    times = [rfc3339(m["time"]) for m in obj["metadata"].get("managedFields") or []
             if m.get("manager") == "kinfer-controller" and m.get("subresource", "") == subresource]
    return max(times) if times else None


def test_kill9_and_restart_converges(ns, controllers):
    """The restarted controller is the one that acts: what changed while the only controller was
    dead is applied by the new process, after it started (the API server's managedFields times of
    kinfer-controller's field manager), and the new process counts those reconciles itself."""
    c = controllers(ns)
    apply(isvc("a", ns))
    wait_ready("a", ns)
    first_apply = applied_at(get("deployment", "a-predictor", ns, managed_fields=True))
    assert first_apply is not None, "kinfer-controller's field manager owns nothing on a-predictor"
    c.kill(signal.SIGKILL)
    assert c.proc.returncode == -signal.SIGKILL, c.proc.returncode
    changed = isvc("a", ns)
    changed["spec"]["predictor"]["model"]["storageUri"] = "s3://models/a-v2"
    apply(changed)
    apply(isvc("b", ns, minReplicas=2, maxReplicas=2))
    time.sleep(2)
    # Preconditions for what follows (with the only controller dead nothing else applies these).
    assert model_uri(get("deployment", "a-predictor", ns)) == "s3://models/a"
    assert get("deployment", "b-predictor", ns, check=False) is None
    restarted_at = int(time.time())  # whole seconds, as managedFields; > first_apply by the sleep
    assert restarted_at > first_apply
    second = controllers(ns)
    a, b = wait_ready("a", ns), wait_ready("b", ns)
    assert a["status"]["observedGeneration"] == 2
    dep_a = get("deployment", "a-predictor", ns, managed_fields=True)
    dep_b = get("deployment", "b-predictor", ns, managed_fields=True)
    assert model_uri(dep_a) == "s3://models/a-v2"
    assert dep_b["spec"]["replicas"] == 2
    # The restarted process applied them, after it started: not a write left over from the first.
    assert applied_at(dep_a) >= restarted_at, (applied_at(dep_a), restarted_at)
    assert applied_at(dep_b) >= restarted_at and rfc3339(dep_b["metadata"]["creationTimestamp"]) >= restarted_at
    status_a = applied_at(get("kisvc", "a", ns, managed_fields=True), "status")
    assert status_a is not None and status_a >= restarted_at, "the status of generation 2 comes from the new process"
    assert second.reconciles() >= 2, "the new process reconciled a and b"


def test_apiserver_restart_watch_resumes(ns, controllers):
    c = controllers(ns)
    apply(isvc("before", ns))
    wait_ready("before", ns)
    ctl.apiserver_restart()
    assert c.alive(), "the controller must survive an API server restart\n" + c.tail()
    apply(isvc("after", ns))
    wait_ready("after", ns, timeout=120)
    assert c.alive()


def lease(ns):
    return get("lease", "kinfer-controller-leader", ns)["spec"]


def test_leader_election_one_acts_and_failover(ns, controllers):
    lease_args = ("--leader-elect", "--lease-namespace", ns)
    first = controllers(ns, *lease_args)
    wait_for("first controller serves metrics", first.metrics_or_none, timeout=30)
    wait_for("first controller leads", first.is_leader, timeout=30)
    second = controllers(ns, *lease_args)
    wait_for("second controller serves metrics", second.metrics_or_none, timeout=30)
    held = lease(ns)
    assert held["holderIdentity"].endswith(f"_{first.proc.pid}"), held  # identity: host_pid
    apply(isvc("led", ns))
    wait_ready("led", ns)
    assert not second.is_leader()
    assert second.reconciles() == 0, "the follower must not reconcile"
    assert first.reconciles() > 0
    # The leader keeps renewing; the follower never writes the Lease.
    wait_for("the leader renews the Lease", lambda: (lambda l: l["renewTime"] != held["renewTime"]
             and l["holderIdentity"] == held["holderIdentity"])(lease(ns)), timeout=30, interval=0.5)
    first.kill(signal.SIGKILL)
    killed_at = int(time.time())
    t0 = time.monotonic()
    apply(isvc("after-failover", ns))
    wait_for("second controller takes over within 20 s", second.is_leader, timeout=20)
    took = time.monotonic() - t0
    taken = lease(ns)
    assert taken["holderIdentity"].endswith(f"_{second.proc.pid}"), taken
    assert int(taken.get("leaseTransitions") or 0) > int(held.get("leaseTransitions") or 0), (held, taken)
    wait_ready("after-failover", ns, timeout=60)
    print(f"failover: follower became leader {took:.1f}s after the leader was killed (-9)")
    assert second.reconciles() > 0
    # What was applied after the kill was applied by the new leader, after the kill.
    dep = get("deployment", "after-failover-predictor", ns, managed_fields=True)
    assert applied_at(dep) >= killed_at, (applied_at(dep), killed_at)


def test_every_crd_field_has_a_description():
    """kubectl explain must say something about every field (metadata is ObjectMeta's own)."""
    import yaml
    with open(ctl.CRD) as f:
        crd = yaml.safe_load(f)
    missing = []

    def walk(path, node):
        for name, sub in (node.get("properties") or {}).items():
            p = f"{path}.{name}"
            if p != ".metadata" and not sub.get("description"):
                missing.append(p)
            walk(p, sub)
        items = node.get("items")
        if items and items.get("type") == "object":
            if not items.get("description"):
                missing.append(path + "[]")
            walk(path + "[]", items)

    for v in crd["spec"]["versions"]:
        walk("", v["schema"]["openAPIV3Schema"])
    assert not missing, f"fields without a description: {missing}"
