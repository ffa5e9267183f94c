"""Real traffic on the real node. Zero-downtime changes under steady load: a rolling update from a
spec change, `kubectl delete pod` of one replica, a scale-down, and a node-local kinfer-server
upgrade (the image under a new tag). A canary split by replica ratio (no router), counted from
the Kinfer-Revision header of every answer, and its promotion. Load goes through the Service's ClusterIP (kube-proxy) from three client
threads: two open a new connection per request, one keeps its connection alive (reconnecting
when the server says Connection: close). Every request's outcome is recorded; the main thread
fails the test on any failure, reset or refusal, and prints each phase's p99 against steady state."""
import http.client
import json
import threading
import time

import ctl
from conftest import NODE, RUNTIME_IMAGE, ctr, http_service, node_isvc, pods_of, storage_secret, wait_isvc

BODY = json.dumps({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
                               "data": [5.1, 3.5, 1.4, 0.2]}]}).encode()
UPGRADE_IMAGE = RUNTIME_IMAGE + "-upgrade"


class Load:
    """Client threads that record (phase, time, outcome, seconds) for every request; outcome is
    the HTTP status or the name of the connection error. They assert nothing; an exception that
    escapes a thread's loop is kept for the main thread."""

    def __init__(self, host, port, model="steady", interval=0.02, body=BODY):
        # Paced (interval seconds between a thread's requests): unpaced, the new-connection
        # clients used up this machine's ephemeral ports (EADDRNOTAVAIL) within a minute.
        self.host, self.port, self.path, self.interval = host, port, "/v2/models/%s/infer" % model, interval
        self.body = body
        self.phase, self.records, self.errors = "steady", [], []
        self.halt = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(ka,), daemon=True) for ka in (False, False, True)]

    def run(self, keepalive):
        try:
            conn = None
            while not self.halt.is_set():
                phase, t = self.phase, time.perf_counter()
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(self.host, self.port, timeout=15)
                    conn.request("POST", self.path, self.body, {"Content-Type": "application/json"})
                    r = conn.getresponse()
                    r.read()
                    outcome, rev = r.status, r.getheader("Kinfer-Revision")
                    if not keepalive or r.getheader("Connection", "").lower() == "close":
                        conn.close()
                        conn = None
                except (OSError, http.client.HTTPException) as e:
                    outcome, rev = type(e).__name__ + ("(errno %s)" % e.errno if getattr(e, "errno", None) else ""), None
                    conn.close()
                    conn = None
                self.records.append((phase, outcome, time.perf_counter() - t, rev))
                self.halt.wait(self.interval)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            self.errors.append(e)

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.halt.set()
        for t in self.threads:
            t.join(30)
        assert not any(t.is_alive() for t in self.threads), "a load thread did not stop"
        if self.errors:
            raise self.errors[0]


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(0.99 * len(xs)))] if xs else float("nan")


def settled(name, ns, replicas):
    """The InferenceService Ready at its generation, exactly `replicas` pods, all Ready, none going."""
    def check():
        o = ctl.get("kisvc", name, ns, check=False)
        pods = pods_of(name, ns)
        return o and ctl.is_ready(o) and len(pods) == replicas and all(
            not p["metadata"].get("deletionTimestamp") and (ctl.condition(p, "Ready") or {}).get("status") == "True"
            for p in pods)
    ctl.wait_for("%s settled at %d ready pods" % (name, replicas), check, timeout=240, interval=1)


def test_zero_downtime_changes(namespace, store):
    ctl_bin = ctl.Controller(namespace, "--runtime-image", RUNTIME_IMAGE)
    secret = storage_secret(namespace, store)
    spec = node_isvc("steady", namespace, "s3://iris", secret, minReplicas=2, maxReplicas=2)
    ctl.apply(spec)
    settled("steady", namespace, 2)
    cip = ctl.get("service", "steady", namespace)["spec"]["clusterIP"]
    http_service("POST", "http://%s/v2/models/steady/infer" % cip, json.loads(BODY))
    load = Load(cip, 80)
    load.start()
    controllers = [ctl_bin]
    try:
        time.sleep(10)
        load.phase = "rolling update"
        spec["spec"]["predictor"]["model"]["env"] = [{"name": "KINFER_TEST_GENERATION", "value": "2"}]
        ctl.apply(spec)
        wait_isvc("steady", namespace, lambda o: o["status"].get("observedGeneration") == 2, "generation 2 seen")
        settled("steady", namespace, 2)
        time.sleep(5)

        load.phase = "delete pod"
        victim = pods_of("steady", namespace)[0]["metadata"]["name"]
        ctl.kubectl("delete", "pod", victim, "-n", namespace, "--wait=false")
        ctl.wait_for("pod %s gone" % victim, lambda: victim not in {p["metadata"]["name"] for p in pods_of(
            "steady", namespace)}, timeout=120, interval=1)
        settled("steady", namespace, 2)
        time.sleep(5)

        load.phase = "scale down"
        spec["spec"]["predictor"].update(minReplicas=1, maxReplicas=1)
        ctl.apply(spec)
        settled("steady", namespace, 1)
        time.sleep(5)

        load.phase = "image upgrade"
        ctr("images", "tag", "--force", RUNTIME_IMAGE, UPGRADE_IMAGE)
        ctl_bin.kill()
        controllers.append(ctl.Controller(namespace, "--runtime-image", UPGRADE_IMAGE))
        ctl.wait_for("pods on the new image", lambda: all(p["spec"]["containers"][0]["image"] == UPGRADE_IMAGE
                                                          for p in pods_of("steady", namespace)) or None,
                     timeout=240, interval=1)
        settled("steady", namespace, 1)
        time.sleep(5)
        load.phase = "after"
        time.sleep(3)
    finally:
        load.stop()
        for c in controllers:
            c.kill()
        ctr("images", "rm", UPGRADE_IMAGE)
    by = {}
    for phase, outcome, dt, _ in load.records:
        by.setdefault(phase, []).append((outcome, dt))
    base = p99([dt for o, dt in by["steady"] if o == 200])
    for phase, recs in by.items():
        print("%-15s %5d requests, p99 %.2f ms (%.2fx steady)" % (phase, len(recs), p99([dt for _, dt in recs]) * 1e3,
                                                                  p99([dt for _, dt in recs]) / base))
    bad = [(phase, o) for phase, o, _, _ in load.records if o != 200]
    assert not bad, "failed requests: %s" % sorted(set(bad))
    for phase in ("steady", "rolling update", "delete pod", "scale down", "image upgrade"):
        assert len(by.get(phase, [])) >= 100, (phase, len(by.get(phase, [])))
    assert all(p["spec"]["nodeName"] == NODE for p in pods_of("steady", namespace))


def revision_counts(host, port, model, n):
    """n requests, each on a new connection (kube-proxy picks an endpoint per connection):
    {revision: answers}; every answer must be a 200 that names its revision."""
    counts = {}
    for _ in range(n):
        c = http.client.HTTPConnection(host, port, timeout=15)
        c.request("POST", "/v2/models/%s/infer" % model, BODY, {"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        c.close()
        assert r.status == 200, r.status
        rev = r.getheader("Kinfer-Revision")
        assert rev, "an answer without Kinfer-Revision"
        counts[rev] = counts.get(rev, 0) + 1
    return counts


def test_replica_ratio_canary_split_and_promotion(namespace, store):
    """canaryTrafficPercent 20 without a router: 4 stable pods and 1 canary pod behind the one
    Service. Over 2000 answers the canary's share is within the binomial 99.9% band of 1/5;
    promotion then moves every answer to the new revision, with no request failing meanwhile."""
    c = ctl.Controller(namespace, "--runtime-image", RUNTIME_IMAGE)
    try:
        spec = node_isvc("split", namespace, "s3://iris", storage_secret(namespace, store), minReplicas=5,
                         maxReplicas=5)
        spec["spec"]["predictor"]["model"]["resources"]["requests"] = {"cpu": "10m", "memory": "32Mi"}
        ctl.apply(spec)
        settled("split", namespace, 5)
        stable = ctl.get("kisvc", "split", namespace)["status"]["components"]["predictor"]["latestReadyRevision"]
        spec["spec"]["predictor"]["canaryTrafficPercent"] = 20
        spec["spec"]["predictor"]["model"]["env"] = [{"name": "KINFER_TEST_CANARY", "value": "1"}]
        ctl.apply(spec)
        obj = wait_isvc("split", namespace, lambda o: ctl.is_ready(o) and ctl.condition(o, "CanaryReady") and
                        ctl.condition(o, "CanaryReady")["status"] == "True", "the canary Ready", timeout=240)
        canary = obj["status"]["components"]["predictor"]["latestCreatedRevision"]
        assert canary != stable
        ctl.wait_for("4 stable and 1 canary pods ready", lambda: sorted(
            p["metadata"]["labels"]["serving.kinfer.dev/revision"] for p in pods_of("split", namespace)
            if (ctl.condition(p, "Ready") or {}).get("status") == "True" and not p["metadata"].get("deletionTimestamp"))
            == sorted([stable] * 4 + [canary]), timeout=120, interval=1)
        cip = ctl.get("service", "split", namespace)["spec"]["clusterIP"]
        http_service("POST", "http://%s/v2/models/split/infer" % cip, json.loads(BODY))
        time.sleep(2)  # kube-proxy has every endpoint
        counts = revision_counts(cip, 80, "split", 2000)
        assert set(counts) == {stable, canary}, counts
        n, p = 2000, 0.2
        band = 3.29 * (n * p * (1 - p)) ** 0.5  # two-sided 99.9%
        print("replica-ratio split: %s (band %d..%d)" % (counts, n * p - band, n * p + band))
        assert abs(counts[canary] - n * p) <= band, counts

        load = Load(cip, 80, "split")
        load.start()
        try:
            spec["spec"]["predictor"].pop("canaryTrafficPercent")
            ctl.apply(spec)
            ctl.wait_for("every pod on the new revision", lambda: {p["metadata"]["labels"]["serving.kinfer.dev/revision"]
                                                               for p in pods_of("split", namespace)} == {canary},
                         timeout=300, interval=1)
            settled("split", namespace, 5)
            time.sleep(3)
        finally:
            load.stop()
        bad = [o for _, o, _, _ in load.records if o != 200]
        assert not bad and len(load.records) >= 20, (sorted(set(bad)), len(load.records))
        after = revision_counts(cip, 80, "split", 200)
        assert after == {canary: 200}, after
    finally:
        c.kill()
