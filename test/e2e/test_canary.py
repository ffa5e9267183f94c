"""Canary revisions, traffic routing and metric-driven rollouts of kinfer-controller, against the
real control plane (make cluster-up: the Gateway API and Istio CRDs are installed by it) and real
kinfer-server processes on loopback as the canaries' metric sources.

kwok plays the pods, so their IPs (from kwok's 10.244.0.0/16) are fake and the controller cannot
scrape them: the rollout tests here point it at kinfer-server processes with the documented
testing/ops annotation serving.kinfer.dev/metrics-endpoints-<revision hash> (docs/rollouts.md).
test_canary_podip.py gives pods loopback IPs and tests the direct pod scrape without it. No gateway or mesh data
plane runs here either: what is checked is the routing objects the controller writes, their weights,
and that the API server accepted them under the real CRDs.
"""
import collections
import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
import traceback
import urllib.error
import urllib.request

import pytest

import ctl
from ctl import apply, condition, get, isvc, kubectl, wait_for

from test_controller import controllers, ns  # noqa: F401 (fixtures shared with the core suite)

SERVER = os.path.join(ctl.ROOT, "build", "bin", "kinfer-server")

REV = "serving.kinfer.dev/revision"


@pytest.fixture(scope="session", autouse=True)
def crd():
    assert os.path.exists(ctl.KUBECONFIG), "run `make cluster-up` first (make test-controller-e2e does)"
    kubectl("apply", "--server-side", "--force-conflicts", "-f", ctl.CRD)
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/inferenceservices.serving.kinfer.dev")
    for crd_name in ("httproutes.gateway.networking.k8s.io", "virtualservices.networking.istio.io"):
        kubectl("get", "crd", crd_name)  # cluster-up installs them; fail loudly if not


def predictor_status(name, ns):
    o = get("kisvc", name, ns, check=False) or {}
    return ((o.get("status") or {}).get("components") or {}).get("predictor") or {}


def traffic(name, ns):
    """{revisionName: percent} of the status."""
    return {t["revisionName"]: t["percent"] for t in predictor_status(name, ns).get("traffic") or []}


def deployments(ns):
    items = json.loads(kubectl("get", "deployments", "-n", ns, "-o", "json"))["items"]
    return {d["metadata"]["name"]: d for d in items}


def args_of(dep):
    return dep["spec"]["template"]["spec"]["containers"][0].get("args") or []


def uri_in(dep, uri):
    return uri in json.dumps(dep["spec"]["template"])


def start_v1(name, ns, routing=None, **predictor):
    obj = isvc(name, ns, **predictor)
    if routing is not None:
        obj["spec"]["routing"] = routing
    apply(obj)
    wait_for(f"{name} Ready with a revision", lambda: ctl.is_ready(get("kisvc", name, ns, check=False))
             and predictor_status(name, ns).get("latestRolledoutRevision"), timeout=90)
    return predictor_status(name, ns)["latestRolledoutRevision"]


def change_to_v2(name, ns, routing=None, **predictor):
    obj = isvc(name, ns, **predictor)
    obj["spec"]["predictor"]["model"]["storageUri"] = f"s3://models/{name}-v2"
    if routing is not None:
        obj["spec"]["routing"] = routing
    apply(obj)
    return obj


def wait_split(name, ns, old, want_latest_percent, timeout=60):
    def ok():
        ps = predictor_status(name, ns)
        new = ps.get("latestCreatedRevision")
        t = traffic(name, ns)
        return new if new and new != old and t.get(new) == want_latest_percent and t.get(old) == 100 - want_latest_percent \
            else None
    return wait_for(f"{name}: traffic {100 - want_latest_percent}/{want_latest_percent}", ok, timeout=timeout)


def route_weights(kind, name, ns):
    o = get(kind, name, ns, check=False)
    if not o:
        return None
    if kind == "httproute":
        return {b["name"]: b["weight"] for b in o["spec"]["rules"][0]["backendRefs"]}
    return {d["destination"]["host"].split(".")[0]: d["weight"] for d in o["spec"]["http"][0]["route"]}


GATEWAY = {"gateway": {"parentRefs": [{"name": "shared", "namespace": "infra"}], "hostnames": ["iris.example.com"]}}


# ---------------------------------------------------------------------------------------------
# canaryTrafficPercent with each routing backend.

def test_gateway_canary_promotion_and_rollback(ns, controllers):
    controllers(ns)
    old = start_v1("gw", ns, routing=GATEWAY, minReplicas=2)
    assert route_weights("httproute", "gw", ns) == {"gw": 100}, "one revision: the whole Service"
    change_to_v2("gw", ns, routing=GATEWAY, minReplicas=2, canaryTrafficPercent=20)
    new = wait_split("gw", ns, old, 20)
    deps = deployments(ns)
    assert set(deps) == {"gw-predictor", new}, list(deps)
    assert deps["gw-predictor"]["metadata"]["labels"][REV] == old and uri_in(deps["gw-predictor"], "s3://models/gw")
    assert not uri_in(deps["gw-predictor"], "gw-v2"), "the previous revision keeps its spec"
    assert deps[new]["metadata"]["labels"][REV] == new and uri_in(deps[new], "s3://models/gw-v2")
    assert deps[new]["spec"]["selector"]["matchLabels"][REV] == new
    assert deps["gw-predictor"]["spec"]["replicas"] == 2 and deps[new]["spec"]["replicas"] == 2
    wait_for("HTTPRoute 80/20", lambda: route_weights("httproute", "gw", ns) == {old: 80, new: 20})
    route = get("httproute", "gw", ns)
    assert route["spec"]["parentRefs"][0]["name"] == "shared" and route["spec"]["hostnames"] == ["iris.example.com"]
    assert route["metadata"]["ownerReferences"][0]["kind"] == "InferenceService"
    for rev in (old, new):
        assert get("service", rev, ns)["spec"]["selector"][REV] == rev
    obj = get("kisvc", "gw", ns)
    assert condition(obj, "CanaryReady")["status"] == "True"
    ps = obj["status"]["components"]["predictor"]
    assert ps["latestRolledoutRevision"] == old and ps["previousRolledoutRevision"] == old
    assert ps["latestReadyRevision"] == new
    row = kubectl("get", "kisvc", "gw", "-n", ns, "--no-headers").split()
    assert row[3:5] == ["80", "20"], row  # the Prev and Latest columns

    # Drift: someone edits the weights; the controller puts them back.
    patched = get("httproute", "gw", ns)
    patched["spec"]["rules"][0]["backendRefs"][0]["weight"] = 1
    kubectl("replace", "-f", "-", input=json.dumps(patched))
    wait_for("HTTPRoute weights repaired", lambda: route_weights("httproute", "gw", ns) == {old: 80, new: 20},
             timeout=30)

    # Rollback: 0 sends everything back to the previous revision; the canary stays.
    change_to_v2("gw", ns, routing=GATEWAY, minReplicas=2, canaryTrafficPercent=0)
    wait_for("HTTPRoute 100/0", lambda: route_weights("httproute", "gw", ns) == {old: 100, new: 0})
    assert traffic("gw", ns) == {old: 100, new: 0}
    assert new in deployments(ns)

    # Promotion: removing canaryTrafficPercent rolls the stable Deployment to the new revision.
    change_to_v2("gw", ns, routing=GATEWAY, minReplicas=2)
    wait_for("promoted: one Deployment on the new revision", lambda: (lambda d: set(d) == {"gw-predictor"} and
             d["gw-predictor"]["metadata"]["labels"][REV] == new)(deployments(ns)), timeout=60)
    assert uri_in(deployments(ns)["gw-predictor"], "gw-v2")
    wait_for("HTTPRoute back to the Service", lambda: route_weights("httproute", "gw", ns) == {"gw": 100})
    ps = wait_for("status rolled out", lambda: (lambda p: p if p.get("latestRolledoutRevision") == new else None)(
        predictor_status("gw", ns)))
    assert ps["previousRolledoutRevision"] == old
    assert traffic("gw", ns) == {new: 100}
    assert condition(get("kisvc", "gw", ns), "CanaryReady") is None
    for rev in (old, new):
        wait_for(f"per-revision Service {rev} pruned", lambda: get("service", rev, ns, check=False) is None)


def test_istio_virtualservice_canary(ns, controllers):
    controllers(ns)
    routing = {"istio": {"gateways": ["istio-system/ingress"], "hosts": ["vs.example.com"]}}
    old = start_v1("vs", ns, routing=routing)
    change_to_v2("vs", ns, routing=routing, canaryTrafficPercent=20)
    new = wait_split("vs", ns, old, 20)
    wait_for("VirtualService 80/20", lambda: route_weights("virtualservice", "vs", ns) == {old: 80, new: 20})
    vs = get("virtualservice", "vs", ns)
    assert vs["apiVersion"] == "networking.istio.io/v1"
    assert vs["spec"]["hosts"] == ["vs.example.com"] and vs["spec"]["gateways"] == ["istio-system/ingress"]
    dests = [r["destination"] for r in vs["spec"]["http"][0]["route"]]
    assert dests[0]["host"] == f"{old}.{ns}.svc.cluster.local" and dests[0]["port"]["number"] == 80
    # Switching the routing backend removes the old object.
    change_to_v2("vs", ns, routing=GATEWAY, canaryTrafficPercent=20)
    wait_for("VirtualService pruned", lambda: get("virtualservice", "vs", ns, check=False) is None)
    wait_for("HTTPRoute instead", lambda: route_weights("httproute", "vs", ns) == {old: 80, new: 20})


def test_no_router_splits_replicas(ns, controllers):
    controllers(ns)
    old = start_v1("plain", ns, minReplicas=5)
    change_to_v2("plain", ns, minReplicas=5, canaryTrafficPercent=20)
    new = wait_split("plain", ns, old, 20)
    wait_for("replicas 4 + 1", lambda: (lambda d: d.get("plain-predictor", {}).get("spec", {}).get("replicas") == 4 and
             d.get(new, {}).get("spec", {}).get("replicas") == 1)(deployments(ns)))
    svc = get("service", "plain", ns)
    assert REV not in svc["spec"]["selector"], "no router: the Service selects both revisions"
    assert get("httproute", "plain", ns, check=False) is None and get("virtualservice", "plain", ns, check=False) is None
    pods = json.loads(kubectl("get", "pods", "-n", ns, "-l", "serving.kinfer.dev/inferenceservice=plain", "-o", "json"))
    by_rev = {}
    wait_for("5 pods", lambda: len(json.loads(kubectl("get", "pods", "-n", ns, "-l",
                                                      f"{REV}", "-o", "json"))["items"]) >= 5)
    pods = json.loads(kubectl("get", "pods", "-n", ns, "-l", REV, "-o", "json"))["items"]
    for p in pods:
        if not p["metadata"].get("deletionTimestamp"):
            by_rev[p["metadata"]["labels"][REV]] = by_rev.get(p["metadata"]["labels"][REV], 0) + 1
    assert by_rev.get(old) == 4 and by_rev.get(new) == 1, by_rev
    # 40%: 3 + 2
    change_to_v2("plain", ns, minReplicas=5, canaryTrafficPercent=40)
    wait_for("replicas 3 + 2", lambda: (lambda d: d["plain-predictor"]["spec"]["replicas"] == 3 and
             d[new]["spec"]["replicas"] == 2)(deployments(ns)))
    # 0: the Service selects only the previous revision
    change_to_v2("plain", ns, minReplicas=5, canaryTrafficPercent=0)
    wait_for("Service selects the previous revision only",
             lambda: get("service", "plain", ns)["spec"]["selector"].get(REV) == old)
    assert deployments(ns)["plain-predictor"]["spec"]["replicas"] == 5


def test_restart_keeps_canary_split(ns, controllers):
    c = controllers(ns)
    old = start_v1("keep", ns, routing=GATEWAY)
    change_to_v2("keep", ns, routing=GATEWAY, canaryTrafficPercent=30)
    new = wait_split("keep", ns, old, 30)
    c.kill(signal.SIGKILL)
    kubectl("delete", "httproute", "keep", "-n", ns)
    c2 = controllers(ns)
    wait_for("HTTPRoute rebuilt 70/30 by a fresh controller",
             lambda: route_weights("httproute", "keep", ns) == {old: 70, new: 30}, timeout=60)
    d = deployments(ns)
    assert d["keep-predictor"]["metadata"]["labels"][REV] == old and not uri_in(d["keep-predictor"], "keep-v2")
    assert c2.alive()


def test_keda_canary_has_its_own_scaledobject(ns, controllers):
    """autoscalerClass keda: the canary revision gets its own ScaledObject (KEDA's CRD is installed,
    no KEDA operator runs: the objects are checked), scaling its own Deployment, owned by the
    InferenceService; it is deleted on promotion, and when the canary is abandoned."""
    controllers(ns)

    def put(uri_suffix, **extra):
        obj = isvc("kd", ns, minReplicas=1, maxReplicas=4, scaleMetric="cpu", **extra)
        obj["metadata"]["annotations"] = {"serving.kinfer.dev/autoscalerClass": "keda"}
        obj["spec"]["predictor"]["model"]["storageUri"] += uri_suffix
        obj["spec"]["routing"] = GATEWAY
        apply(obj)

    def target(name):
        so = get("scaledobject", name, ns, check=False)
        return so and so["spec"]["scaleTargetRef"]["name"]

    put("")
    old = wait_for("v1 rolled out", lambda: predictor_status("kd", ns).get("latestRolledoutRevision"), timeout=90)
    wait_for("the stable ScaledObject", lambda: target("kd-predictor") == "kd-predictor")
    put("-v2", canaryTrafficPercent=30)
    new = wait_split("kd", ns, old, 30)
    wait_for("the canary's ScaledObject", lambda: target(new) == new)
    so = get("scaledobject", new, ns)
    ref = so["metadata"]["ownerReferences"][0]
    assert ref["kind"] == "InferenceService" and ref["name"] == "kd" and ref["controller"] is True, ref
    assert so["metadata"]["labels"][REV] == new
    assert so["spec"]["minReplicaCount"] == 1 and so["spec"]["maxReplicaCount"] == 4, so["spec"]
    assert so["spec"]["triggers"][0]["type"] == "cpu"
    assert target("kd-predictor") == "kd-predictor", "the stable keeps its own"
    assert get("scaledobject", "kd-predictor", ns)["metadata"]["labels"][REV] == old
    assert get("hpa", new, ns, check=False) is None

    # Promotion: the canary's ScaledObject goes with its Deployment.
    put("-v2")
    wait_for("promoted: one Deployment on the new revision", lambda: (lambda d: set(d) == {"kd-predictor"} and
             d["kd-predictor"]["metadata"]["labels"][REV] == new)(deployments(ns)), timeout=60)
    wait_for("the canary's ScaledObject deleted", lambda: get("scaledobject", new, ns, check=False) is None, timeout=30)
    assert target("kd-predictor") == "kd-predictor"

    # Abandoned: a canary of v1 beside v2, then the spec goes back to v2: pruned.
    put("", canaryTrafficPercent=30)
    canary = wait_split("kd", ns, new, 30)
    wait_for("the second canary's ScaledObject", lambda: target(canary) == canary)
    put("-v2")
    wait_for("abandoned canary's Deployment pruned", lambda: set(deployments(ns)) == {"kd-predictor"}, timeout=60)
    wait_for("abandoned canary's ScaledObject pruned", lambda: get("scaledobject", canary, ns, check=False) is None,
             timeout=30)
    assert target("kd-predictor") == "kd-predictor"


# ---------------------------------------------------------------------------------------------
# Metric-driven rollouts with real kinfer-server processes as the metric sources.

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    import onnx
    from onnx import TensorProto, helper
    d = tmp_path_factory.mktemp("model")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, str(d / "model.onnx"))
    return str(d)


def outcome_of(fn):
    """Runs one HTTP request; returns its status code, or what went wrong instead, by name:
    "refused" (nothing accepted the connection), "reset" (the connection broke after it was
    made), "timeout", or "error:<exception type>"."""
    try:
        return fn()
    except urllib.error.HTTPError as e:
        return e.code
    except urllib.error.URLError as e:
        r = e.reason
        if isinstance(r, ConnectionRefusedError):
            return "refused"
        if isinstance(r, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            return "reset"
        if isinstance(r, (socket.timeout, TimeoutError)):
            return "timeout"
        return f"error:{type(r).__name__}"
    except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, http.client.RemoteDisconnected,
            http.client.IncompleteRead):
        return "reset"
    except (socket.timeout, TimeoutError):
        return "timeout"
    except (OSError, http.client.HTTPException) as e:
        return f"error:{type(e).__name__}"


class Server:
    """kinfer-server on a free loopback port, with a bounded background load of good or bad requests.

    The load threads assert nothing (an assert in a thread is only a warning to pytest): every
    request's outcome is recorded as (expected, outcome), and check_load(), run by the servers
    fixture in the test's own thread after the test, fails on any outcome other than the expected
    200 (good) or 400 (malformed), and on a load thread that died."""

    def __init__(self, model_dir, *args, host="127.0.0.1", port=None):
        """host/port: a loopback address of a pod (test_canary_podip.py); default a free 127.0.0.1 port."""
        assert os.path.exists(SERVER), "build kinfer-server first (make build/bin/kinfer-server)"
        self.host, self.port = host, port or free_port()
        self.url = f"http://{host}:{self.port}"
        os.makedirs(ctl.LOGS, exist_ok=True)
        self.log_path = os.path.join(ctl.LOGS, f"canary-server-{host}-{self.port}.log")
        self.log = open(self.log_path, "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("KINFER_")}
        self.proc = subprocess.Popen([SERVER, "--model-dir", model_dir, "--host", host, "--port", str(self.port),
                                      "--model-name", "m", *args], stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.stop_load = threading.Event()
        self.threads = []
        self.lock = threading.Lock()
        self.sent = {"ok": 0, "bad": 0}
        self.outcomes = collections.Counter()  # (expected status, outcome) -> count
        self.unexpected = []  # the first (request number, expected, outcome) that differed
        self.thread_errors = []  # tracebacks of load threads that died
        wait_for("kinfer-server ready", self.ready, timeout=30, interval=0.1)

    def ready(self):
        if self.proc.poll() is not None:
            with open(self.log_path, "rb") as f:
                raise AssertionError(f"kinfer-server on {self.host}:{self.port} exited: {f.read()[-600:].decode(errors='replace')}")
        try:
            with urllib.request.urlopen(self.url + "/v2/health/ready", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def infer(self, good):
        """The status code of one request, or what went wrong instead (outcome_of)."""
        body = {"inputs": [{"name": "x", "shape": [1, 4] if good else [1, 3], "datatype": "FP32",
                            "data": [1, -2, 3, -4] if good else [1, 2, 3]}]}
        req = urllib.request.Request(self.url + "/v2/models/m/infer", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})

        def send():
            with urllib.request.urlopen(req, timeout=5) as r:
                r.read()
                return r.status
        return outcome_of(send)

    def record(self, n, expected, outcome):
        with self.lock:
            self.outcomes[(expected, outcome)] += 1
            if outcome == expected:
                self.sent["ok" if expected == 200 else "bad"] += 1
            elif len(self.unexpected) < 20:
                self.unexpected.append((n, expected, outcome))
            else:
                self.unexpected.append(None)  # counted, not kept

    def load(self, bad_every=0, rate=40, seconds=90):
        """Requests at about `rate`/s for at most `seconds`; every bad_every-th is malformed (400)."""
        def run():
            try:
                n = 0
                deadline = time.monotonic() + seconds
                while not self.stop_load.is_set() and time.monotonic() < deadline:
                    n += 1
                    good = not (bad_every and n % bad_every == 0)
                    self.record(n, 200 if good else 400, self.infer(good))
                    time.sleep(1.0 / rate)
            except BaseException:
                with self.lock:
                    self.thread_errors.append(traceback.format_exc())
        t = threading.Thread(target=run, daemon=True, name=f"load-{self.host}:{self.port}")
        t.start()
        self.threads.append(t)

    def stop(self):
        """Stops the load and waits for its threads; returns the names of those that did not stop."""
        self.stop_load.set()
        for t in self.threads:
            t.join(timeout=10)
        return [t.name for t in self.threads if t.is_alive()]

    def check_load(self):
        """Raises AssertionError unless every load thread stopped cleanly and every request it
        sent got the status it expected. Call it in the test's thread (the fixture does)."""
        stuck = self.stop()
        with self.lock:
            outcomes, unexpected, died = dict(self.outcomes), list(self.unexpected), list(self.thread_errors)
        problems = []
        if stuck:
            problems.append(f"load threads still running: {stuck}")
        if died:
            problems.append("a load thread died:\n" + "\n".join(died))
        if self.threads and not outcomes:
            problems.append("the load sent no request")
        if unexpected:
            problems.append(f"{len(unexpected)} requests got an unexpected outcome, first (n, expected, got): "
                            f"{[u for u in unexpected if u][:5]}")
        if problems:
            raise AssertionError(f"load on {self.url}: " + "; ".join(problems) + f"; all outcomes: {outcomes}")
        return outcomes

    def close(self):
        self.stop()
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def servers(model_dir):
    """Starts kinfer-servers on demand. After the test, in the test's thread, stops them and fails
    the test if any load they carried had an unexpected outcome or a load thread died."""
    made = []

    def make(*args, **kw):
        s = Server(model_dir, *args, **kw)
        made.append(s)
        return s

    yield make
    problems = []
    for s in made:
        try:
            s.check_load()
        except AssertionError as e:
            problems.append(str(e))
        s.close()
    assert not problems, "\n".join(problems)


def test_load_generator_reports_failures(model_dir):
    """The load generator's own test: a server killed under load makes check_load fail (refused
    connections are recorded, not lost in a thread), and so does a load thread that dies."""
    s = Server(model_dir)
    try:
        s.load(rate=50)
        wait_for("some answered requests", lambda: s.sent["ok"] >= 5, timeout=20, interval=0.05)
        assert s.check_load()[(200, 200)] >= 5  # stops the load; all good so far
        s.stop_load.clear()
        s.threads = []
        s.load(bad_every=2, rate=50)
        wait_for("malformed requests answered 400", lambda: s.sent["bad"] >= 3, timeout=20, interval=0.05)
        s.proc.kill()
        s.proc.wait(timeout=10)
        wait_for("refused connections recorded", lambda: s.outcomes[(200, "refused")] + s.outcomes[(400, "refused")] > 0,
                 timeout=20, interval=0.05)
        with pytest.raises(AssertionError, match="(?s)unexpected outcome.*refused"):
            s.check_load()
        # a thread that dies (here: infer itself raising) is reported too
        s.stop_load.clear()
        s.threads, s.unexpected, s.outcomes = [], [], collections.Counter()
        s.infer = lambda good: 1 / 0
        s.load()
        with pytest.raises(AssertionError, match="(?s)a load thread died.*ZeroDivisionError"):
            wait_for("the thread to die", lambda: not s.threads[0].is_alive(), timeout=10, interval=0.05)
            s.check_load()
    finally:
        s.stop()
        if s.proc.poll() is None:
            s.proc.terminate()
            s.proc.wait(timeout=10)
        s.log.close()


ROLLOUT = {"stepWeights": [20, 50], "interval": "2s", "threshold": 2, "progressDeadlineSeconds": 120,
           "metrics": {"successRate": {"minPercent": 95}, "latencyP99": {"maxMilliseconds": 150}}}


def rollout_status(name, ns):
    return predictor_status(name, ns).get("rollout") or {}


def rollout_and_conditions(name, ns):
    """The rollout and the kstatus conditions from one read of the object (written together)."""
    o = get("kisvc", name, ns, check=False) or {}
    ro = (((o.get("status") or {}).get("components") or {}).get("predictor") or {}).get("rollout") or {}
    return ro, {c["type"]: c for c in (o.get("status") or {}).get("conditions") or []}


def kstatus_of(name, ns, want_type, want_reason):
    """Waits until Reconciling/Stalled is exactly want_type (None: neither) with want_reason, and
    Ready stays True (the stable revision serves); returns the conditions."""
    def ok():
        _, c = rollout_and_conditions(name, ns)
        present = {t for t in ("Reconciling", "Stalled") if t in c}
        if present != ({want_type} if want_type else set()):
            return None
        if want_type and (c[want_type]["status"] != "True" or c[want_type]["reason"] != want_reason):
            return None
        return c
    c = wait_for(f"{name}: kstatus conditions {want_type} {want_reason}", ok, timeout=30, interval=0.2)
    assert c["Ready"]["status"] == "True", c["Ready"]
    return c


def point_metrics(name, ns, revision, url):
    """The testing/ops hook: read revision's metrics from url instead of its (fake kwok) pod IPs."""
    h = revision.rsplit("-", 1)[1]
    kubectl("annotate", "--overwrite", "kisvc", name, "-n", ns, f"serving.kinfer.dev/metrics-endpoints-{h}={url}")


def start_rollout(name, ns, rollout):
    old = start_v1(name, ns, routing=GATEWAY)
    change_to_v2(name, ns, routing=GATEWAY, rollout=rollout)
    new = wait_for("the new revision", lambda: (lambda r: r if r and r != old else None)(
        predictor_status(name, ns).get("latestCreatedRevision")))
    return old, new


def events(name, ns):
    out = json.loads(kubectl("get", "events", "-n", ns, "--field-selector",
                             f"involvedObject.name={name},involvedObject.kind=InferenceService", "-o", "json"))
    return [(e["type"], e["reason"], e["message"]) for e in out["items"]]


def test_rollout_promotes_a_healthy_canary(ns, controllers, servers):
    c = controllers(ns)
    good = servers()
    good.load()
    old, new = start_rollout("good", ns, ROLLOUT)
    point_metrics("good", ns, new, good.url)
    seen_weights, seen_conditions = set(), set()

    def promoted():
        r, conds = rollout_and_conditions("good", ns)
        if r.get("phase") in ("Progressing", "Paused") and r.get("revision") == new:
            seen_weights.add(r.get("weight"))
            rec = conds.get("Reconciling") or {}
            assert "Stalled" not in conds, conds
            assert rec.get("status") == "True" and rec.get("reason") == "Rollout" + r["phase"], (r, conds)
            assert f"weight {r['weight']}%" in rec["message"], rec
            seen_conditions.add(rec["reason"])
        return r if r.get("phase") == "Succeeded" else None
    r = wait_for("rollout Succeeded", promoted, timeout=90, interval=0.2)
    assert r["revision"] == new and r["weight"] == 100 and r["failedChecks"] == 0
    assert r["passedChecks"] == 2, r
    assert r["successRatePercent"] == 100 and r["latencyP99Milliseconds"] <= 150, r
    assert seen_weights & {20, 50}, f"weights seen while progressing: {seen_weights}"
    wait_for("stable Deployment on the new revision", lambda: (lambda d: set(d) == {"good-predictor"} and
             d["good-predictor"]["metadata"]["labels"][REV] == new)(deployments(ns)), timeout=60)
    assert "RolloutProgressing" in seen_conditions, seen_conditions
    kstatus_of("good", ns, None, None)  # promoted and Ready: kstatus Current
    wait_for("HTTPRoute to the promoted Service", lambda: route_weights("httproute", "good", ns) == {"good": 100})
    reasons = [e[1] for e in events("good", ns)]
    assert "StepPassed" in reasons and "Promoted" in reasons, reasons
    m = c.metrics()
    key = f'{{inferenceservice="{ns}/good"'
    assert m.get(f'kinfer_controller_rollout_phase{key},phase="Succeeded"}}') == 1.0, m
    assert m.get(f"kinfer_controller_rollout_weight{key}}}") == 100.0
    assert m.get(f'kinfer_controller_rollout_checks_total{key},result="passed"}}') == 2.0
    assert m.get(f"kinfer_controller_rollout_failed_checks_total{key}}}") == 0.0
    print(f"healthy canary: {good.sent} requests; rollout {r}")


def test_rollout_rolls_back_a_failing_canary(ns, controllers, servers):
    c = controllers(ns)
    bad = servers()
    bad.load(bad_every=3)  # a third of the requests are malformed: 400, nv_inference_request_failure
    old, new = start_rollout("bad", ns, ROLLOUT)
    point_metrics("bad", ns, new, bad.url)
    r = wait_for("rollout Failed", lambda: (lambda r: r if r.get("phase") == "Failed" else None)(
        rollout_status("bad", ns)), timeout=90, interval=0.2)
    assert r["failedChecks"] == 2 and r["weight"] == 0 and r["reason"] == "RolledBack", r
    assert 60 <= r["successRatePercent"] <= 72, r
    conds = kstatus_of("bad", ns, "Stalled", "RolloutFailed")  # kstatus Failed; Ready: the previous revision serves
    assert new in conds["Stalled"]["message"] and "weight 0%" in conds["Stalled"]["message"], conds["Stalled"]
    wait_for("HTTPRoute all to the previous revision", lambda: route_weights("httproute", "bad", ns) == {old: 100, new: 0})
    assert traffic("bad", ns) == {old: 100, new: 0}
    d = deployments(ns)
    assert d["bad-predictor"]["metadata"]["labels"][REV] == old, "the previous revision still serves"
    ev = events("bad", ns)
    assert any(t == "Warning" and reason == "CheckFailed" for t, reason, _ in ev), ev
    assert any(t == "Warning" and reason == "RolledBack" and "success rate" in msg for t, reason, msg in ev), ev
    m = c.metrics()
    key = f'{{inferenceservice="{ns}/bad"'
    assert m.get(f'kinfer_controller_rollout_phase{key},phase="Failed"}}') == 1.0
    assert m.get(f"kinfer_controller_rollout_failed_checks_total{key}}}") == 2.0
    assert m.get(f"kinfer_controller_rollout_weight{key}}}") == 0.0
    time.sleep(3)
    assert rollout_status("bad", ns)["phase"] == "Failed", "a failed rollout stays failed until the spec changes"
    kstatus_of("bad", ns, "Stalled", "RolloutFailed")


def test_rollout_rolls_back_a_slow_canary(ns, controllers, servers):
    controllers(ns)
    slow = servers("--max-batch-size", "8", "--max-queue-delay-us", "300000")  # each lone request waits 300 ms
    slow.load(rate=10)
    old, new = start_rollout("slow", ns, dict(ROLLOUT, threshold=1))
    point_metrics("slow", ns, new, slow.url)
    r = wait_for("rollout Failed on latency", lambda: (lambda r: r if r.get("phase") == "Failed" else None)(
        rollout_status("slow", ns)), timeout=90, interval=0.2)
    assert r["latencyP99Milliseconds"] > 150 and "latency p99" in r["message"], r
    wait_for("HTTPRoute all to the previous revision", lambda: route_weights("httproute", "slow", ns) == {old: 100, new: 0})


def test_metric_source_down_pauses_not_fails(ns, controllers, servers):
    controllers(ns)
    good = servers()
    good.load()
    rollout = dict(ROLLOUT, threshold=1)  # one failed check would fail it: inconclusive ones must not
    old, new = start_rollout("paused", ns, rollout)
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    point_metrics("paused", ns, new, down)
    r = wait_for("several inconclusive checks", lambda: (lambda r: r if r.get("inconclusiveChecks", 0) >= 3 else None)(
        rollout_status("paused", ns)), timeout=60, interval=0.2)
    assert r["phase"] == "Paused" and r["failedChecks"] == 0 and r["reason"] == "MetricsUnavailable", r
    conds = kstatus_of("paused", ns, "Reconciling", "RolloutPaused")  # kstatus InProgress
    assert "weight 20%" in conds["Reconciling"]["message"], conds["Reconciling"]
    assert "Couldn't connect" in r["message"] or "connect" in r["message"].lower(), r
    w = r["weight"]
    assert w in (20,), r
    assert route_weights("httproute", "paused", ns)[new] == w, "the weight holds while paused"
    assert any(reason == "MetricsUnavailable" for _, reason, _ in events("paused", ns))
    # The source comes back: the rollout resumes and completes.
    point_metrics("paused", ns, new, good.url)
    r = wait_for("rollout Succeeded after the source came back", lambda: (lambda r: r if r.get("phase") == "Succeeded"
                 else None)(rollout_status("paused", ns)), timeout=90, interval=0.2)
    assert r["failedChecks"] == 0 and r["inconclusiveChecks"] >= 3, r


def test_rollout_deadline_fails_a_stuck_rollout(ns, controllers):
    """Metrics never readable: the rollout ends Failed at its deadline instead of pausing forever."""
    controllers(ns)
    old, new = start_rollout("stuck", ns, dict(ROLLOUT, progressDeadlineSeconds=8))
    point_metrics("stuck", ns, new, f"http://127.0.0.1:{free_port()}")
    r = wait_for("Failed at the deadline", lambda: (lambda r: r if r.get("phase") == "Failed" else None)(
        rollout_status("stuck", ns)), timeout=40, interval=0.2)
    assert r["reason"] == "ProgressDeadlineExceeded" and r["failedChecks"] == 0 and r["weight"] == 0, r
    wait_for("HTTPRoute all to the previous revision", lambda: route_weights("httproute", "stuck", ns) == {old: 100, new: 0})


def test_blue_green_no_traffic_until_checks_pass(ns, controllers, servers):
    controllers(ns)
    good = servers()
    good.load()
    bg = {"blueGreen": {"prePromotionAnalysis": {"checks": 2}}, "interval": "2s", "threshold": 1,
          "progressDeadlineSeconds": 120, "metrics": {"successRate": {"minPercent": 95}}}
    old, new = start_rollout("bg", ns, bg)
    point_metrics("bg", ns, new, good.url)
    seen = []  # (seconds, weight of the new revision in the HTTPRoute)
    t0 = time.monotonic()

    def done():
        weights = route_weights("httproute", "bg", ns) or {}
        w = 100 if weights == {"bg": 100} else weights.get(new)  # promoted: the Service, now on the new revision
        if w is not None:
            seen.append((time.monotonic() - t0, w))
        r = rollout_status("bg", ns)
        return r if r.get("phase") == "Succeeded" and w == 100 else None
    r = wait_for("blue/green switched", done, timeout=90, interval=0.2)
    assert {w for _, w in seen} <= {0, 100}, f"only no traffic or all of it: {seen}"
    zero = [t for t, w in seen if w == 0]
    first_full = min(t for t, w in seen if w == 100)
    assert zero and first_full - min(zero) >= 3.0, f"no traffic during the two 2 s checks: {seen}"
    assert r["passedChecks"] == 2
    wait_for("all traffic on the new revision", lambda: traffic("bg", ns) == {new: 100}, timeout=60)


# ---------------------------------------------------------------------------------------------
# Admission of the rollout and routing fields (CEL rules in the CRD).

BAD = [
    ("both kinds", {"rollout": {"stepWeights": [10], "stepWeight": 10}}, "set exactly one of stepWeights"),
    ("no kind", {"rollout": {"interval": "10s"}}, "set exactly one of stepWeights"),
    ("not ascending", {"rollout": {"stepWeights": [50, 20]}}, "rollout.stepWeights must be strictly ascending"),
    ("repeated", {"rollout": {"stepWeights": [20, 20]}}, "strictly ascending"),
    ("weight > 100", {"rollout": {"stepWeights": [10, 120]}}, "should be less than or equal to 100"),
    ("weight 0", {"rollout": {"stepWeights": [0]}}, "should be greater than or equal to 1"),
    ("step > max", {"rollout": {"stepWeight": 60, "maxWeight": 50}}, "rollout.stepWeight must not exceed rollout.maxWeight"),
    ("max alone", {"rollout": {"stepWeights": [10], "maxWeight": 50}}, "rollout.maxWeight goes with rollout.stepWeight"),
    ("interval", {"rollout": {"stepWeights": [10], "interval": "10"}}, "rollout.interval must be a duration"),
    ("interval ms", {"rollout": {"stepWeights": [10], "interval": "500ms"}}, "rollout.interval must be a duration"),
    ("with percent", {"rollout": {"stepWeights": [10]}, "canaryTrafficPercent": 10},
     "canaryTrafficPercent and rollout are mutually exclusive"),
    ("success > 100", {"rollout": {"stepWeights": [10], "metrics": {"successRate": {"minPercent": 101}}}},
     "should be less than or equal to 100"),
]


@pytest.mark.parametrize("case,change,message", BAD, ids=[c[0] for c in BAD])
def test_bad_rollout_rejected(ns, case, change, message):
    obj = isvc("bad", ns, **change)
    p = kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(obj), check=False)
    assert p.returncode != 0, f"{case}: accepted"
    assert message in p.stderr, f"{case}: want {message!r} in {p.stderr}"


def test_bad_routing_rejected(ns):
    for routing, message in (({"gateway": {"parentRefs": [{"name": "g"}]}, "none": {}}, "set exactly one of gateway"),
                             ({}, "set exactly one of gateway"),
                             ({"gateway": {"parentRefs": [{}]}}, "spec.routing.gateway.parentRefs[0].name: Required")):
        obj = isvc("bad", ns)
        obj["spec"]["routing"] = routing
        p = kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(obj), check=False)
        assert p.returncode != 0 and message in p.stderr, (routing, p.stderr)


# ---------------------------------------------------------------------------------------------
# A routing API the controller may not use must not stall it.

def test_forbidden_routing_api_does_not_stall_the_controller(ns, controllers, tmp_path):
    """RBAC without HTTPRoutes (as the chart renders with rbac.gatewayAPI off and no read rule):
    the controller leaves that backend out, still reconciles everything else, and says why an
    InferenceService asking for gateway routing cannot be served."""
    import yaml
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "ctl", "namespace": ns},
            "rules": [
                {"apiGroups": ["serving.kinfer.dev"], "resources": ["inferenceservices", "inferenceservices/status"],
                 "verbs": ["get", "list", "watch", "update", "patch"]},
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]},
                {"apiGroups": [""], "resources": ["services"], "verbs": ["*"]},
                {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": ["*"]},
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
                {"apiGroups": ["networking.istio.io"], "resources": ["virtualservices"], "verbs": ["*"]}]}
    kubectl("create", "serviceaccount", "ctl", "-n", ns)
    apply(role)
    kubectl("create", "rolebinding", "ctl", "-n", ns, "--role=ctl", f"--serviceaccount={ns}:ctl")
    token = kubectl("create", "token", "ctl", "-n", ns, "--duration=10m").strip()
    with open(ctl.KUBECONFIG) as f:
        cfg = yaml.safe_load(f)
    cfg["users"] = [{"name": "ctl", "user": {"token": token}}]
    cfg["contexts"][0]["context"]["user"] = "ctl"
    kc = tmp_path / "kubeconfig"
    kc.write_text(yaml.safe_dump(cfg))
    c = controllers(ns, "--kubeconfig", str(kc))
    old = start_v1("plain", ns)  # reconciled: the forbidden informer is not waited for
    assert "routing API forbidden by RBAC" in c.tail(200)
    obj = isvc("routed", ns)
    obj["spec"]["routing"] = GATEWAY
    apply(obj)
    wait_for("a ReconcileError naming the forbidden routing API", lambda: any(
        reason == "ReconcileError" and "httproutes.gateway.networking.k8s.io/v1" in msg and "not allowed" in msg
        for _, reason, msg in events("routed", ns)), timeout=60)
    assert old and c.alive()


def test_default_routing_flag(ns, controllers):
    controllers(ns, "--default-routing", "istio")
    old = start_v1("dflt", ns)  # no spec.routing
    change_to_v2("dflt", ns, canaryTrafficPercent=10)
    new = wait_split("dflt", ns, old, 10)
    wait_for("VirtualService from the default", lambda: route_weights("virtualservice", "dflt", ns) == {old: 90, new: 10})
    assert get("virtualservice", "dflt", ns)["spec"]["hosts"] == [f"dflt.{ns}.svc.cluster.local"]


@pytest.mark.parametrize("args,message", [
    (["--default-routing", "linkerd"], "--default-routing: want none, gateway or istio"),
    (["--default-routing", "gateway"], "gateway needs --default-gateway NAMESPACE/NAME"),
    (["--default-gateway", "nonamespace"], "--default-gateway: want NAMESPACE/NAME"),
])
def test_routing_flags_checked(args, message):
    p = subprocess.run([ctl.CONTROLLER, *args], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and message in p.stderr, (p.returncode, p.stderr)


def test_rollout_reads_the_canary_pods_without_the_hook(ns, controllers):
    """Without the annotation (and without Prometheus) the controller reads /metrics on the canary's
    Ready pods' IPs, port 8080. kwok's pod IPs are fake, so the read fails: what this checks is that
    the right pods were found, and that an unreachable pod is an inconclusive check, not a failure."""
    controllers(ns)
    old, new = start_rollout("pods", ns, dict(ROLLOUT, threshold=1))
    ips = wait_for("canary pod IPs", lambda: [p["status"]["podIP"] for p in json.loads(kubectl(
        "get", "pods", "-n", ns, "-l", f"{REV}={new}", "-o", "json"))["items"] if p["status"].get("podIP")])
    r = wait_for("an inconclusive check naming a canary pod", lambda: (lambda r: r if r.get("inconclusiveChecks", 0) >= 1
                 else None)(rollout_status("pods", ns)), timeout=60, interval=0.2)
    assert any(f"http://{ip}:8080/metrics" in r["message"] for ip in ips), (ips, r)
    assert r["failedChecks"] == 0 and r["phase"] == "Paused", r


# ---------------------------------------------------------------------------------------------
# The Prometheus metric source (--prometheus-address), with a real Prometheus scraping a real
# kinfer-server. Prometheus is built from its Go module (test/cluster/tools/prometheus) by
# `make test-controller-e2e`.

PROMETHEUS = os.environ.get("KINFER_PROMETHEUS_BIN", os.path.join(ctl.ROOT, "build", "cluster", "bin", "prometheus"))


class Prometheus:
    """prometheus on loopback scraping one kinfer-server every second, the target labelled with a
    namespace and pod name as Kubernetes service discovery would label it."""

    def __init__(self, tmp, target, ns):
        assert os.path.exists(PROMETHEUS), f"{PROMETHEUS} missing: make test-controller-e2e builds it"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = tmp / "prometheus.yml"
        self.target, self.ns = target, ns
        self.relabel("placeholder")
        self.log = open(os.path.join(ctl.LOGS, f"prometheus-{self.port}.log"), "wb")
        self.proc = subprocess.Popen([PROMETHEUS, f"--config.file={self.config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                                      f"--web.listen-address=127.0.0.1:{self.port}"], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        wait_for("prometheus ready", self.ready, timeout=60, interval=0.2)

    def relabel(self, pod):
        self.config.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "kinfer", "static_configs": [
                {"targets": [self.target], "labels": {"namespace": self.ns, "pod": pod}}]}]}))

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    def ready(self):
        assert self.proc.poll() is None, "prometheus exited"
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.log.close()


def test_rollout_reads_prometheus(ns, controllers, servers, tmp_path):
    good = servers()
    good.load()
    prom = Prometheus(tmp_path, f"127.0.0.1:{good.port}", ns)
    try:
        controllers(ns, "--prometheus-address", prom.url)
        old, new = start_rollout("prom", ns, dict(ROLLOUT, interval="4s", stepWeights=[50]))
        # Until Prometheus has series for the canary's pods the checks have no data: paused, not failed.
        r = wait_for("no data yet", lambda: (lambda r: r if r.get("inconclusiveChecks", 0) >= 1 else None)(
            rollout_status("prom", ns)), timeout=60, interval=0.2)
        assert r["failedChecks"] == 0 and "Prometheus" in r["message"], r
        prom.relabel(f"{new}-5d8f9c7b6-abcde")  # a pod of the canary's Deployment
        prom.reload()
        r = wait_for("rollout Succeeded on Prometheus data", lambda: (lambda r: r if r.get("phase") == "Succeeded" else None)(
            rollout_status("prom", ns)), timeout=90, interval=0.2)
        assert r["failedChecks"] == 0 and r["successRatePercent"] == 100 and r["latencyP99Milliseconds"] < 150, r
    finally:
        prom.close()
