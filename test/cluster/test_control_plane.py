"""The local control plane (test/cluster): the real components do their jobs, and the tooling
(build.sh, up.sh, down.sh) behaves on its fault paths.

The first group runs against the cluster `make test-cluster` brought up (build/cluster). The
fault-path group runs a second, scratch cluster in build/cluster-selftest on ports 23379/23380/
23443 without a real node (there is one per machine), so crashing and stopping it disturbs no
other suite using build/cluster. The real node's own fault paths come last: a crash of its agents
recovered by the next cluster-up, and a cluster-down that leaves the machine as it found it; they
restart build/cluster, wiping its data, which the suites after this one bring up anew.
"""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kube  # noqa: E402

HERE = Path(__file__).resolve().parent
ns = kube.namespace_fixture("cp")


def deployment(name, replicas, labels):
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "main", "image": "example.invalid/app:1"}]}}},
    })


def test_deployment_pods_run_ready_on_kwok_node(ns):
    kube.apply(deployment("web", 3, {"app": "web"}), ns)
    kube.wait_for(lambda: (kube.get("deployment", "web", ns)["status"].get("availableReplicas") or 0) == 3,
                  timeout=60, what="3 available replicas")
    pods = kube.list_("pods", ns, "app=web")
    assert len(pods) == 3
    for p in pods:
        assert p["spec"]["nodeName"] == kube.NODE
        assert p["status"]["phase"] == "Running"
        assert kube.condition(p, "Ready") == "True"
        assert p["status"]["podIP"].startswith("10.244.")


def test_deleted_deployment_is_garbage_collected(ns):
    kube.apply(deployment("gc", 2, {"app": "gc"}), ns)
    kube.wait_for(lambda: len(kube.list_("pods", ns, "app=gc")) == 2, timeout=60, what="2 pods")
    rs = kube.list_("replicasets", ns, "app=gc")
    assert len(rs) == 1 and rs[0]["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    kube.kubectl("-n", ns, "delete", "deployment", "gc", "--cascade=background", "--wait=false")
    kube.wait_for(lambda: not kube.list_("replicasets", ns, "app=gc"), timeout=60, what="ReplicaSet collected")
    kube.wait_for(lambda: not kube.list_("pods", ns, "app=gc"), timeout=60, what="pods collected")


def test_crd_cel_rule_rejects_invalid_object(ns):
    group = f"{ns}.test.kinfer.dev"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                     "type": "object",
                     "properties": {"spec": {
                         "type": "object", "required": ["minReplicas", "maxReplicas"],
                         "x-kubernetes-validations": [{"rule": "self.minReplicas <= self.maxReplicas",
                                                       "message": "minReplicas must not exceed maxReplicas"}],
                         "properties": {"minReplicas": {"type": "integer", "minimum": 0},
                                        "maxReplicas": {"type": "integer"}}}}}}}]},
    }
    kube.apply(json.dumps(crd))
    try:
        kube.wait_for(lambda: kube.condition(kube.get("crd", f"widgets.{group}"), "Established") == "True",
                      timeout=30, what="CRD Established")

        def widget(name, lo, hi):
            return json.dumps({"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": name},
                               "spec": {"minReplicas": lo, "maxReplicas": hi}})
        # Discovery of a new group can lag Established by a moment.
        kube.wait_for(lambda: kube.apply(widget("good", 1, 3), ns), timeout=30, what="valid Widget accepted")
        with pytest.raises(kube.KubectlError) as e:
            kube.apply(widget("bad", 5, 2), ns)
        assert "minReplicas must not exceed maxReplicas" in e.value.stderr
        assert kube.get(f"widgets.{group}", "bad", ns) is None
        assert kube.get(f"widgets.{group}", "good", ns)["spec"] == {"minReplicas": 1, "maxReplicas": 3}
    finally:
        kube.delete("crd", f"widgets.{group}", wait=False)


def test_serviceaccount_token_authenticates(ns):
    token = kube.kubectl("-n", ns, "create", "token", "default").stdout.strip()
    server = kube.kubectl("config", "view", "-o", "jsonpath={.clusters[0].cluster.server}").stdout
    ctx = ssl.create_default_context(cafile=str(kube.STATE / "pki" / "ca.crt"))
    body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}).encode()
    req = urllib.request.Request(f"{server}/apis/authentication.k8s.io/v1/selfsubjectreviews", data=body,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        user = json.load(r)["status"]["userInfo"]["username"]
    assert user == f"system:serviceaccount:{ns}:default"
    # The same token is refused what RBAC does not grant it.
    req = urllib.request.Request(f"{server}/api/v1/namespaces/{ns}/secrets",
                                 headers={"Authorization": f"Bearer {token}"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, context=ctx, timeout=10)
    assert e.value.code == 403


def test_podsecurity_restricted_is_enforced():
    with kube.namespace("psa", {"pod-security.kubernetes.io/enforce": "restricted"}) as name:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"containers": [{"name": "c", "image": "example.invalid/app:1",
                                        "securityContext": {"privileged": True}}]}}
        with pytest.raises(kube.KubectlError) as e:
            kube.apply(json.dumps(pod), name)
        assert 'violates PodSecurity "restricted' in e.value.stderr
        pod["spec"]["securityContext"] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
        pod["spec"]["containers"][0]["securityContext"] = {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
        kube.apply(json.dumps(pod), name)
        kube.wait_for(lambda: kube.condition(kube.get("pod", "p", name), "Ready") == "True",
                      timeout=60, what="restricted pod Ready")


def test_thirdparty_crds_are_established_and_served(ns):
    for crd in ["gateways.gateway.networking.k8s.io", "httproutes.gateway.networking.k8s.io",
                "virtualservices.networking.istio.io", "destinationrules.networking.istio.io",
                "scaledobjects.keda.sh"]:
        assert kube.condition(kube.get("crd", crd), "Established") == "True", crd
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r"},
             "spec": {"rules": [{"backendRefs": [{"name": "a", "port": 80, "weight": 90},
                                                 {"name": "b", "port": 80, "weight": 10}]}]}}
    kube.apply(json.dumps(route), ns)
    weights = [b["weight"] for b in kube.get("httproute", "r", ns)["spec"]["rules"][0]["backendRefs"]]
    assert weights == [90, 10]
    so = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "s"},
          "spec": {"scaleTargetRef": {"name": "web"}, "minReplicaCount": 1, "maxReplicaCount": 4,
                   "triggers": [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}}]}}
    kube.apply(json.dumps(so), ns)
    assert kube.get("scaledobject", "s", ns)["spec"]["maxReplicaCount"] == 4


# --- tooling -------------------------------------------------------------------------------------

def script(name, env=None, timeout=600):
    t = time.monotonic()
    p = subprocess.run([str(HERE / name)], env=env, capture_output=True, text=True, timeout=timeout)
    p.elapsed = time.monotonic() - t
    return p


def main_pids():
    return {f.name: f.read_text().strip() for f in (kube.STATE / "pids").glob("*.pid")}


def test_up_when_already_up_is_a_fast_noop():
    before = main_pids()
    p = script("up.sh")
    assert p.returncode == 0, p.stderr
    assert "already up and healthy" in p.stdout
    assert p.elapsed < 3.0, f"took {p.elapsed:.1f}s"
    # The control plane's five and the real node's six (registry stub, containerd, CoreDNS,
    # kubelet, kube-proxy, metrics-server); containerd's shims have no pid file.
    assert main_pids() == before and len(before) == 11, sorted(before)


def test_build_fast_path_when_cached():
    p = script("build.sh")
    assert p.returncode == 0, p.stderr
    assert p.elapsed < 1.0, f"took {p.elapsed:.2f}s"
    bindir = Path(p.stdout.strip())
    for b in ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok"]:
        assert os.access(bindir / b, os.X_OK), b


def test_build_failure_shows_go_error_and_leaves_no_cache(tmp_path):
    # A copy of the tooling whose go.mod pins a release that does not exist, with the module
    # proxy off: go's own error must come through, and no cache directory may appear.
    tree = tmp_path / "test" / "cluster"
    for rel in ["build.sh", "tools/k8s/go.sum", "tools/k8s/cmd/etcd/main.go", "tools/kwok/go.mod", "tools/kwok/go.sum"]:
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(HERE / rel, tree / rel)
    gomod = (HERE / "tools/k8s/go.mod").read_text().replace("k8s.io/kubernetes v1.36.3", "k8s.io/kubernetes v1.36.99")
    (tree / "tools/k8s/go.mod").write_text(gomod)
    cache = tmp_path / "cache"
    env = dict(os.environ, KINFER_CACHE=str(cache), GOPROXY="off", GOFLAGS="-mod=mod")
    p = subprocess.run([str(tree / "build.sh")], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode != 0
    assert "k8s.io/kubernetes@v1.36.99" in p.stderr and "GOPROXY=off" in p.stderr, p.stderr
    assert "build.sh: 'go mod download' failed" in p.stderr
    assert sorted(x.name for x in cache.iterdir()) == [".k8s-build.lock"]


SCRATCH = kube.ROOT / "build" / "cluster-selftest"
BASE = 23000


@pytest.fixture(scope="module")
def scratch():
    env = dict(os.environ, KINFER_CLUSTER_DIR=str(SCRATCH), KINFER_CLUSTER_PORT_BASE=str(BASE), KINFER_REAL_NODE="0")
    script("down.sh", env)   # leftovers of an interrupted run
    yield env
    script("down.sh", env)
    shutil.rmtree(SCRATCH, ignore_errors=True)


def scratch_procs():
    """Processes started from the cache bin dir (pgrep) that belong to the scratch cluster."""
    bindir = subprocess.run([str(HERE / "build.sh"), "--print-dir"], capture_output=True, text=True).stdout.strip()
    out = subprocess.run(["pgrep", "-af", bindir], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if f"{SCRATCH}/" in line]


def scratch_up(env):
    p = script("up.sh", env)
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def scratch_node_ready(env):
    kc = str(SCRATCH / "kubeconfig")
    out = subprocess.run([str(SCRATCH / "bin/kubectl"), "--kubeconfig", kc, "get", "node", kube.NODE, "-o",
                          "jsonpath={.status.conditions[?(@.type=='Ready')].status}"], capture_output=True, text=True)
    return out.stdout == "True"


def alive(pid):
    try:
        st = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return st not in ("Z", "X")


def test_down_leaves_no_processes(scratch):
    scratch_up(scratch)
    assert len(scratch_procs()) == 5, scratch_procs()
    p = script("down.sh", scratch)
    assert p.returncode == 0, p.stderr
    assert scratch_procs() == []
    assert not list((SCRATCH / "pids").glob("*.pid")) and not (SCRATCH / "data").exists()
    assert script("down.sh", scratch).returncode == 0   # nothing up: still fine


def test_stale_state_after_crash_is_recovered(scratch):
    scratch_up(scratch)
    kc = ["--kubeconfig", str(SCRATCH / "kubeconfig")]
    subprocess.run([str(SCRATCH / "bin/kubectl"), *kc, "create", "namespace", "before-crash"], check=True)
    pids = {f.stem: int(f.read_text()) for f in (SCRATCH / "pids").glob("*.pid")}
    # A crash: the controller manager dies, the pid files and data stay, the scheduler's pid file
    # is lost and its pid reused by an unrelated process, which must survive recovery.
    os.killpg(pids["kube-controller-manager"], signal.SIGKILL)
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        (SCRATCH / "pids" / "kube-scheduler.pid").write_text(f"{bystander.pid}\n")
        p = scratch_up(scratch)
        assert "not a healthy cluster (kube-controller-manager is not running)" in p.stdout
        assert alive(bystander.pid)
    finally:
        bystander.kill()
        bystander.wait()
    for name, pid in pids.items():
        assert not alive(pid), f"old {name} (pid {pid}) still running"
    assert scratch_node_ready(scratch)
    assert len(scratch_procs()) == 5
    # The stale data was wiped: the namespace made before the crash is gone.
    out = subprocess.run([str(SCRATCH / "bin/kubectl"), *kc, "get", "namespace", "before-crash"],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "NotFound" in out.stderr

    # Everything killed at once (kill -9), pid files and data left behind.
    for pid in (int(f.read_text()) for f in (SCRATCH / "pids").glob("*.pid")):
        os.killpg(pid, signal.SIGKILL)
    scratch_up(scratch)
    assert scratch_node_ready(scratch)


def test_port_in_use_names_port_and_process(scratch):
    assert script("down.sh", scratch).returncode == 0
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", BASE + 443))
        s.listen()
        p = script("up.sh", scratch)
    assert p.returncode != 0
    assert f"port {BASE + 443} (kube-apiserver) on 127.0.0.1 is in use by pid {os.getpid()}" in p.stderr, p.stderr
    assert "KINFER_CLUSTER_PORT_BASE" in p.stderr
    assert scratch_procs() == []


# --- the real node's fault paths (build/cluster itself; last in this file) ----------------------

STATE = kube.ROOT / "build" / "cluster"
REAL = "kinfer-node-real"
RUN = Path("/run/kinfer-node")


def real_node_ready():
    out = subprocess.run([str(STATE / "bin/kubectl"), "--kubeconfig", str(STATE / "kubeconfig"), "get", "node", REAL,
                          "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"],
                         capture_output=True, text=True)
    return out.stdout == "True"


def machine_state():
    """What the node leaves on the machine: our processes, mounts, cgroups, the bridge, nft tables."""
    procs = [l for l in subprocess.run(["pgrep", "-af", f"{STATE}/"], capture_output=True, text=True).stdout.splitlines()
             if "pgrep" not in l]
    mounts = [l.split()[4] for l in Path("/proc/self/mountinfo").read_text().splitlines()
              if l.split()[4].startswith(f"{STATE}/")]
    cgroups = sorted(str(p) for p in Path("/sys/fs/cgroup").glob("*/kinfer-node"))
    bridge = subprocess.run(["ip", "link", "show", "kinfer0"], capture_output=True).returncode == 0
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout.split("\n")
    return procs, mounts, cgroups, bridge, [t for t in tables if t.strip()]


def sysctl(name):
    return Path("/proc/sys/" + name.replace(".", "/")).read_text().strip()


def test_real_node_crash_recovered_and_down_leaves_the_machine_as_found():
    assert real_node_ready()
    saved = dict(l.split("=", 1) for l in (RUN / "sysctl.saved").read_text().split())
    before_tables = [l for l in (RUN / "nft.before").read_text().split("\n") if l.strip()]
    had_containerd_run = "/run/containerd" in (RUN / "run.before").read_text().split()
    assert sysctl("net.ipv4.ip_forward") == "1" and sysctl("kernel.panic") == "10"
    # A crash: the kubelet and containerd die at once; pods, shims and mounts stay behind.
    for name in ("kubelet", "containerd"):
        os.killpg(int((STATE / "pids" / f"{name}.pid").read_text()), signal.SIGKILL)
    p = script("up.sh")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "not a healthy cluster (containerd is not running)" in p.stdout, p.stdout
    assert real_node_ready()
    # cluster-down: nothing of the cluster is left, and every sysctl is as before cluster-up.
    p = script("down.sh")
    assert p.returncode == 0, p.stdout + p.stderr
    procs, mounts, cgroups, bridge, tables = machine_state()
    assert procs == [] and mounts == [] and cgroups == [] and not bridge, (procs, mounts, cgroups, bridge)
    assert tables == before_tables, tables
    assert {k: sysctl(k) for k in saved} == saved
    assert not RUN.exists()
    assert had_containerd_run or not Path("/run/containerd").exists(), os.listdir("/run/containerd")
    p = script("up.sh")
    assert p.returncode == 0 and real_node_ready(), p.stdout + p.stderr
