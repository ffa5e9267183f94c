"""Metric-driven rollouts reading the canary's (and, for comparison, the stable revision's) pods directly, http://<podIP>:8080/metrics, against
the real control plane, with no metrics-endpoints annotation and no Prometheus.

kwok plays the pods and gives them IPs from the node's spec.podCIDR (else from its --cidr, which
is 10.244.0.0/16 here and unreachable). Every 127.0.0.0/8 address is local on Linux, so this module
adds its own kwok node whose podCIDR is a loopback /24, and pins the InferenceServices to it
(nodeSelector, plus a toleration of the node's taint, which keeps every other suite's pods on
kwok-node-0 with their usual IPs). Each canary pod then has an address that a real kinfer-server
can listen on: `kinfer-server --host <podIP> --port 8080`, which the controller reaches exactly as it
would reach a pod in a cluster. The /24 comes from the kube-apiserver's port, so private clusters
(KINFER_CLUSTER_PORT_BASE) running this suite at the same time use different addresses.

kube-apiserver accepts a loopback node podCIDR and pod IP (format checks only); it refuses loopback
addresses in EndpointSlices, so kube-controller-manager logs FailedToUpdateEndpointSlices for these
Services. kinfer-controller reads pods, not endpoints, and nothing here routes through a Service.
"""
import json
import urllib.parse
import urllib.request
import uuid
import ipaddress

import pytest
import yaml

import ctl
from ctl import kubectl, get, wait_for

from test_controller import controllers, ns  # noqa: F401 (fixtures shared with the core suite)
from test_canary import crd, model_dir, servers  # noqa: F401 (the Gateway API CRD check, kinfer-server processes)
from test_canary import (GATEWAY, REV, ROLLOUT, change_to_v2, deployments, events, predictor_status, route_weights,
                         rollout_status, start_v1, traffic)

TAINT = "serving.kinfer.dev/e2e-loopback-pods"
HOOK = "serving.kinfer.dev/metrics-endpoints-"


def loopback_cidr():
    """127.<port/256>.<port%256>.0/24 for the kube-apiserver port of this suite's cluster."""
    with open(ctl.KUBECONFIG) as f:
        server = yaml.safe_load(f)["clusters"][0]["cluster"]["server"]
    port = urllib.parse.urlsplit(server).port
    return f"127.{port >> 8}.{port & 255}.0/24"


@pytest.fixture(scope="module")
def loopback_node():
    name = "kinfer-e2e-loopback-" + uuid.uuid4().hex[:8]
    cidr = loopback_cidr()
    res = {"cpu": "32", "memory": "64Gi", "pods": "110"}
    kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                     "labels": {"type": "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                "kubernetes.io/arch": "amd64"}},
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr], "taints": [{"key": TAINT, "value": "true", "effect": "NoSchedule"}]},
        "status": {"capacity": res, "allocatable": res}}))
    try:
        wait_for(f"node {name} Ready", lambda: any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (json.loads(kubectl("get", "node", name, "-o", "json"))["status"].get("conditions") or [])), timeout=60)
        yield {"name": name, "cidr": ipaddress.ip_network(cidr)}
    finally:
        # kwok returns a pod's IP to the pool only while the pod's node exists: let the tests'
        # namespaces empty the node first, so a long-lived cluster does not run the /24 dry.
        def empty():
            p = kubectl("get", "pods", "-A", "--field-selector", f"spec.nodeName={name}", "-o", "name", check=False)
            return p.returncode == 0 and not p.stdout.strip()
        try:
            wait_for(f"no pods left on {name}", empty, timeout=60)
        finally:
            kubectl("delete", "node", name, "--wait=false", check=False)


def placed(node, **predictor):
    """Predictor fields that put the pods on the loopback node (and only there)."""
    return dict(predictor, nodeSelector={"kubernetes.io/hostname": node["name"]},
                tolerations=[{"key": TAINT, "operator": "Exists", "effect": "NoSchedule"}])


def ready_pod_ips(ns, revision, want):
    """The IPs of revision's Ready pods, once there are `want` of them."""
    def ips():
        pods = json.loads(kubectl("get", "pods", "-n", ns, "-l", f"{REV}={revision}", "-o", "json"))["items"]
        out = [p["status"]["podIP"] for p in pods if not p["metadata"].get("deletionTimestamp") and p["status"].get("podIP")
               and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])]
        return sorted(out) if len(out) == want else None
    return wait_for(f"{want} Ready pods of {revision} with IPs", ips, timeout=60)


def start_podip_rollout(name, ns, node, rollout, replicas=2):
    """v1 on the loopback node, then v2 with a rollout; returns (old, new, canary pod IPs)."""
    old = start_v1(name, ns, routing=GATEWAY, **placed(node, minReplicas=replicas))
    for ip in ready_pod_ips(ns, old, replicas):
        assert ipaddress.ip_address(ip) in node["cidr"], f"stable pod IP {ip} not from the node's podCIDR {node['cidr']}"
    change_to_v2(name, ns, routing=GATEWAY, rollout=rollout, **placed(node, minReplicas=replicas))
    new = wait_for("the new revision", lambda: (lambda r: r if r and r != old else None)(
        predictor_status(name, ns).get("latestCreatedRevision")))
    ips = ready_pod_ips(ns, new, replicas)
    assert all(ipaddress.ip_address(ip) in node["cidr"] for ip in ips), (ips, node)
    no_hook(name, ns)
    return old, new, ips


def no_hook(name, ns):
    ann = get("kisvc", name, ns)["metadata"].get("annotations") or {}
    assert not [k for k in ann if k.startswith(HOOK)], f"this suite must not use the testing hook: {ann}"


def url(ip):
    return f"http://{ip}:8080/metrics"


def counters(server):
    """(successes, failures) from the server's own /metrics."""
    with urllib.request.urlopen(server.url + "/metrics", timeout=2) as r:
        text = r.read().decode()
    ok = bad = 0.0
    for line in text.splitlines():
        if line.startswith("nv_inference_request_success"):
            ok += float(line.rsplit(" ", 1)[1])
        elif line.startswith("nv_inference_request_failure"):
            bad += float(line.rsplit(" ", 1)[1])
    return ok, bad


def test_rollout_promotes_canary_read_from_its_pod_ips(ns, controllers, servers, loopback_node):
    """Each canary pod is read: while only one pod has a server, the checks are inconclusive and name
    the other pod's address; once both answer, the scraped metrics pass and the canary is promoted."""
    c = controllers(ns)  # no --prometheus-address: the pods are the source
    old, new, ips = start_podip_rollout("direct", ns, loopback_node, ROLLOUT)

    def inconclusive_naming(candidates, after):
        def ok():
            r = rollout_status("direct", ns)
            named = [ip for ip in candidates if url(ip) in r.get("message", "")]
            return (r, named[0]) if r.get("inconclusiveChecks", 0) > after and named else None
        return wait_for(f"an inconclusive check naming one of {candidates}", ok, timeout=60, interval=0.2)

    # Nothing listens yet: the controller tries a canary pod's address and cannot connect.
    r, first = inconclusive_naming(ips, 0)
    assert r["phase"] == "Paused" and r["failedChecks"] == 0 and r["reason"] == "MetricsUnavailable", r
    assert "connect" in r["message"].lower(), r
    up = [servers(host=first, port=8080)]
    up[0].load()
    # The first pod answers now; the next failed read is the other pod's.
    (second,) = [ip for ip in ips if ip != first]
    r, named = inconclusive_naming([second], r["inconclusiveChecks"])
    assert named == second and r["failedChecks"] == 0, r
    up.append(servers(host=second, port=8080))
    up[1].load()

    r = wait_for("rollout Succeeded on the pods' metrics", lambda: (lambda r: r if r.get("phase") == "Succeeded" else None)(
        rollout_status("direct", ns)), timeout=90, interval=0.2)
    assert r["revision"] == new and r["weight"] == 100 and r["failedChecks"] == 0 and r["passedChecks"] == 2, r
    assert r["inconclusiveChecks"] >= 2, r
    assert r["successRatePercent"] == 100 and r["latencyP99Milliseconds"] <= 150, r
    for s in up:
        ok, bad = counters(s)
        assert ok > 0 and bad == 0, (s.url, ok, bad)
    wait_for("stable Deployment on the new revision", lambda: (lambda d: set(d) == {"direct-predictor"} and
             d["direct-predictor"]["metadata"]["labels"][REV] == new)(deployments(ns)), timeout=60)
    wait_for("HTTPRoute to the promoted Service", lambda: route_weights("httproute", "direct", ns) == {"direct": 100})
    reasons = [e[1] for e in events("direct", ns)]
    assert "MetricsUnavailable" in reasons and "StepPassed" in reasons and "Promoted" in reasons, reasons
    assert c.metrics().get(f'kinfer_controller_rollout_checks_total{{inferenceservice="{ns}/direct",result="passed"}}') == 2.0
    no_hook("direct", ns)
    print(f"canary pods {ips}: first unreachable {first}, then {second}; rollout {r}")


def test_rollout_rolls_back_canary_whose_pods_fail_requests(ns, controllers, servers, loopback_node):
    """Two canary pods: one answers every request, the other fails half of them (400). The success
    rate is the sum over both pods (about 75%): reading only the first would promote (100%), only
    the second would read about 50%. Compared with the servers' own counters."""
    controllers(ns)
    old, new, ips = start_podip_rollout("failing", ns, loopback_node, ROLLOUT)
    # The stable revision's pods answer everything: read over the same intervals, for comparison.
    stable = [servers(host=ip, port=8080) for ip in ready_pod_ips(ns, old, 2)]
    for s in stable:
        s.load()
    good, bad = servers(host=ips[0], port=8080), servers(host=ips[1], port=8080)
    good.load()
    bad.load(bad_every=2)
    r = wait_for("rollout Failed", lambda: (lambda r: r if r.get("phase") == "Failed" else None)(
        rollout_status("failing", ns)), timeout=90, interval=0.2)
    for s in [good, bad] + stable:
        s.stop_load.set()
    assert r["reason"] == "RolledBack" and r["failedChecks"] == 2 and r["weight"] == 0 and r["passedChecks"] == 0, r
    (g_ok, g_bad), (b_ok, b_bad) = counters(good), counters(bad)
    assert g_ok > 0 and g_bad == 0 and b_ok > 0 and b_bad > 0, (g_ok, g_bad, b_ok, b_bad)
    both = 100 * (g_ok + b_ok) / (g_ok + g_bad + b_ok + b_bad)
    only_bad = 100 * b_ok / (b_ok + b_bad)
    rate = r["successRatePercent"]
    assert 55 < rate < 95, f"the sum over both pods (servers' own totals: {both:.1f}%), not one pod: {r}"
    assert abs(rate - both) < 10 and abs(rate - only_bad) > 10 and abs(rate - 100) > 5, (rate, both, only_bad)
    wait_for("HTTPRoute all to the previous revision", lambda: route_weights("httproute", "failing", ns) == {old: 100, new: 0})
    assert traffic("failing", ns) == {old: 100, new: 0}
    assert deployments(ns)["failing-predictor"]["metadata"]["labels"][REV] == old, "the previous revision still serves"
    ev = events("failing", ns)
    assert any(t == "Warning" and reason == "CheckFailed" for t, reason, _ in ev), ev
    assert any(t == "Warning" and reason == "RolledBack" and "success rate" in msg for t, reason, msg in ev), ev
    # the stable pods were read too (both of them: one missing would leave no stable figure)
    assert r["stableSuccessRatePercent"] == 100 and r["stableLatencyP99Milliseconds"] <= 150, r
    for s in stable:
        assert counters(s)[0] > 0, s.url
    assert any(reason == "CheckFailed" and f"stable revision {old}: 100.00% success" in msg for _, reason, msg in ev), ev
    no_hook("failing", ns)
    print(f"canary pods {ips}: read {rate}%, servers' totals {both:.1f}% (failing pod alone {only_bad:.1f}%); rollout {r}")
