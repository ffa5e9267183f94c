"""kinfer's images as real pods on the real node: the node itself, an InferenceService's whole
life (S3 fetch, readiness, a prediction through kube-proxy equal to onnxruntime's, the container
as the kernel runs it), fetch failures and OOM kills surfaced in the status, readiness gating
traffic, and the kubelet's liveness restart."""
import json
import os
import signal
import threading
import time

import numpy as np
import pytest

import ctl
from conftest import (NODE, RUNTIME_IMAGE, container_pid, http, http_service, metrics, node_isvc, pods_of, proc_status,
                      run_client_pod, storage_secret, wait_isvc)

IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


def test_the_node_is_a_real_kubelet_on_containerd(node):
    info = node["status"]["nodeInfo"]
    assert info["kubeletVersion"] == "v1.36.3", info
    assert info["containerRuntimeVersion"] == "containerd://2.4.2", info
    assert node["metadata"]["labels"]["kinfer.dev/node"] == "real"
    assert {"key": "kinfer.dev/real-node", "value": "true", "effect": "NoSchedule"} in node["spec"]["taints"]
    addrs = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addrs["InternalIP"] == "10.88.0.1", addrs
    wide = ctl.kubectl("get", "nodes", "-o", "wide")
    line = next(l for l in wide.splitlines() if l.startswith(NODE + " "))
    assert " Ready " in line and "v1.36.3" in line and "containerd://2.4.2" in line, wide
    # metrics-server serves the kubelet's resource metrics through the aggregation layer.
    top = ctl.wait_for("kubectl top node", lambda: (lambda p: p.stdout if p.returncode == 0 else None)(
        ctl.kubectl("top", "node", NODE, "--no-headers", check=False)), timeout=120, interval=3)
    assert top.split()[0] == NODE and top.split()[1].endswith("m"), top


def test_lifecycle_on_the_real_node(namespace, controller, store, models):
    """The demo's own example, examples/demo/sklearn-iris.yaml, unchanged but for its namespace."""
    import onnxruntime as ort
    import yaml
    with open(os.path.join(ctl.ROOT, "examples", "demo", "sklearn-iris.yaml")) as f:
        example = yaml.safe_load(f)
    example["metadata"]["namespace"] = namespace
    storage_secret(namespace, store, name=example["spec"]["predictor"]["model"]["storageSecretName"])
    ctl.apply(example)
    obj = wait_isvc("sklearn-iris", namespace, ctl.is_ready, "sklearn-iris Ready")
    assert ctl.condition(obj, "Ready")["reason"] == "Available"
    (pod,) = [p for p in pods_of("sklearn-iris", namespace) if not p["metadata"].get("deletionTimestamp")]
    assert pod["spec"]["nodeName"] == NODE
    assert pod["spec"]["containers"][0]["image"] == RUNTIME_IMAGE
    init = pod["status"]["initContainerStatuses"][0]
    assert init["name"] == "storage-initializer" and init["state"]["terminated"]["exitCode"] == 0

    # A prediction through the Service's ClusterIP (kube-proxy, nftables) equals onnxruntime's.
    cip = ctl.get("service", "sklearn-iris", namespace)["spec"]["clusterIP"]
    body = {"inputs": [{"name": "input", "shape": [3, 4], "datatype": "FP32", "data": sum(IRIS_ROWS, [])}]}
    status, text = http_service("POST", "http://%s/v2/models/sklearn-iris/infer" % cip, body)
    assert status == 200, text
    got = {o["name"]: o for o in json.loads(text)["outputs"]}
    ref = dict(zip(["label", "probabilities"],
                   ort.InferenceSession(models["iris"]).run(["label", "probabilities"],
                                                            {"input": np.array(IRIS_ROWS, dtype=np.float32)})))
    assert got["label"]["data"] == ref["label"].tolist()
    np.testing.assert_allclose(np.array(got["probabilities"]["data"]).reshape(3, 3), ref["probabilities"], rtol=1e-5,
                               atol=1e-6)

    # The same from a client pod, by the status URL's DNS name (CoreDNS).
    url = obj["status"]["url"]
    assert url == "http://sklearn-iris.%s.svc.cluster.local" % namespace
    phase, log = run_client_pod(namespace, "client", ["-fsS", "--max-time", "10", "-H",
                                                      "Content-Type: application/json", "-d", json.dumps(body),
                                                      url + "/v2/models/sklearn-iris/infer"])
    assert phase == "Succeeded", log
    assert {o["name"]: o for o in json.loads(log)["outputs"]}["label"]["data"] == ref["label"].tolist()

    # The server as the kernel runs it: the image's user, no capabilities, no new privileges,
    # seccomp filtering, a read-only root, and the memory limit in its cgroup.
    pid = container_pid(pod, "kinfer-server")
    st = proc_status(pid)
    assert st["Uid"].split() == ["65532"] * 4 and st["Gid"].split()[0] == "65532", st["Uid"]
    assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0, st["CapEff"]
    assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2", (st["NoNewPrivs"], st["Seccomp"])
    with open("/proc/%d/mountinfo" % pid) as f:
        root = next(l.split() for l in f if l.split()[4] == "/")
    assert "ro" in root[5].split(","), root
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        argv = f.read().split(b"\0")
    assert argv[0] == b"/usr/local/bin/kinfer-server" and b"--model-dir" in argv, argv
    with open("/proc/%d/cgroup" % pid) as f:
        mem = next(l.strip().split(":", 2)[2] for l in f if ":memory:" in l)
    with open("/sys/fs/cgroup/memory%s/memory.limit_in_bytes" % mem) as f:
        assert int(f.read()) == 256 << 20  # the example's limit


@pytest.mark.parametrize("case", ["wrong-credentials", "missing-object"])
def test_fetch_failure_is_in_the_status(case, namespace, controller, store):
    if case == "wrong-credentials":
        secret = storage_secret(namespace, store, secret="not-" + store.secret_key)
        uri, text = "s3://iris", "SignatureDoesNotMatch"
    else:
        secret = storage_secret(namespace, store)
        uri, text = "s3://no-such-model", "s3://no-such-model"
    ctl.apply(node_isvc("broken", namespace, uri, secret))
    obj = wait_isvc("broken", namespace,
                    lambda o: (ctl.condition(o, "Ready") or {}).get("reason") == "ModelFetchFailed",
                    "Ready False with reason ModelFetchFailed", timeout=120)
    ready = ctl.condition(obj, "Ready")
    assert ready["status"] == "False" and text in ready["message"], ready
    assert "the storage initializer failed (exit code" in ready["message"], ready
    assert ctl.condition(obj, "Stalled")["status"] == "True"
    # The text is the initializer's own: the pod's termination message says the same.
    (pod,) = pods_of("broken", namespace)
    last = pod["status"]["initContainerStatuses"][0]["lastState"]["terminated"]
    assert text in last["message"] and last["exitCode"] != 0, last
    if case == "missing-object":
        assert "404" in ready["message"] or "NoSuchKey" in ready["message"] or "not found" in ready["message"], ready


def test_oom_killed_model_names_the_memory_limit(namespace, controller, store):
    ctl.apply(node_isvc("big", namespace, "s3://big", storage_secret(namespace, store), mem="64Mi"))
    obj = wait_isvc("big", namespace, lambda o: (ctl.condition(o, "Ready") or {}).get("reason") == "OOMKilled",
                    "Ready False with reason OOMKilled", timeout=180)
    msg = ctl.condition(obj, "Ready")["message"]
    assert "container kinfer-server was killed for exceeding its memory limit of 64Mi" in msg, msg
    (pod,) = pods_of("big", namespace)
    cs = pod["status"]["containerStatuses"][0]
    term = cs["state"].get("terminated") or cs["lastState"]["terminated"]
    assert term["reason"] == "OOMKilled" and term["exitCode"] == 137, cs


class Prober(threading.Thread):
    """Sends requests to url one after another until stopped, recording every outcome with its
    time: an HTTP status, or the class of a connection error. It asserts nothing: the test's
    main thread reads the outcomes; an exception escaping the loop is kept and re-raised there."""

    def __init__(self, url, body):
        super().__init__(daemon=True)
        self.url, self.body, self.outcomes, self.error = url, body, [], None
        self.halt = threading.Event()

    def run(self):
        try:
            while not self.halt.is_set():
                t = time.monotonic()
                try:
                    status, _ = http("POST", self.url, self.body, timeout=30)
                    self.outcomes.append((t, status))
                except ConnectionRefusedError:
                    self.outcomes.append((t, "refused"))
                    time.sleep(0.05)
                except OSError as e:
                    self.outcomes.append((t, type(e).__name__ + ": " + str(e)))
                    time.sleep(0.05)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            self.error = e

    def stop(self):
        self.halt.set()
        self.join(60)
        assert not self.is_alive(), "the prober did not stop"
        if self.error:
            raise self.error


def test_no_traffic_before_ready(namespace, controller, store):
    """A model slow to load and warm up gets no Service traffic until its readiness probe passes:
    every request before that is refused by kube-proxy (no ready endpoint), none reaches the pod
    (its own counters see exactly the requests answered 200), and none fails after."""
    ctl.apply(node_isvc("slow", namespace, "s3://slow", storage_secret(namespace, store),
                        mem="512Mi", cpu="250m", **{"batcher": {"maxBatchSize": 1}}))
    svc = ctl.wait_for("Service slow", lambda: ctl.get("service", "slow", namespace, check=False), timeout=60)
    p = Prober("http://%s/v2/models/slow/infer" % svc["spec"]["clusterIP"],
               {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [1.0]}]})
    p.start()
    try:
        wait_isvc("slow", namespace, ctl.is_ready, "slow Ready", timeout=240)
        ctl.wait_for("two answers after Ready", lambda: sum(1 for _, o in p.outcomes if o == 200) >= 2, timeout=120)
    finally:
        p.stop()
    kinds = {o for _, o in p.outcomes}
    assert kinds <= {"refused", 200}, "unexpected outcomes: %s" % sorted(map(str, kinds - {"refused", 200}))
    first_ok = next(i for i, (_, o) in enumerate(p.outcomes) if o == 200)
    assert first_ok > 0 and all(o == "refused" for _, o in p.outcomes[:first_ok]), p.outcomes[:first_ok + 1]
    assert all(o == 200 for _, o in p.outcomes[first_ok:]), p.outcomes[first_ok:]
    (pod,) = pods_of("slow", namespace)
    m = metrics("http://%s:8080" % pod["status"]["podIP"])
    load = next(v for k, v in m.items() if k.startswith("kinfer_model_load_seconds"))
    assert load >= 1.0, "the slow model loaded in %.2f s; the test needs seconds" % load
    ok = sum(v for k, v in m.items() if k.startswith("nv_inference_request_success"))
    failed = sum(v for k, v in m.items() if k.startswith("nv_inference_request_failure"))
    assert ok == len(p.outcomes) - first_ok and failed == 0, (ok, failed, len(p.outcomes), first_ok)


def test_a_stopped_server_is_restarted_by_liveness(namespace, controller, store):
    ctl.apply(node_isvc("live", namespace, "s3://iris", storage_secret(namespace, store)))
    wait_isvc("live", namespace, ctl.is_ready, "live Ready")
    (pod,) = pods_of("live", namespace)
    pid = container_pid(pod, "kinfer-server")
    os.kill(pid, signal.SIGSTOP)
    try:
        restarted = ctl.wait_for("the kubelet to restart the stopped kinfer-server", lambda: (lambda p: p if (
            p["status"]["containerStatuses"][0].get("restartCount", 0) >= 1) else None)(
                ctl.get("pod", pod["metadata"]["name"], namespace)), timeout=150, interval=2)
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    cs = restarted["status"]["containerStatuses"][0]
    assert cs["lastState"]["terminated"]["exitCode"] in (137, 143), cs
    events = ctl.kubectl("get", "events", "-n", namespace, "--field-selector",
                         "involvedObject.name=" + pod["metadata"]["name"], "-o", "json")
    assert any(e["reason"] == "Unhealthy" and "Liveness probe failed" in e["message"]
               for e in json.loads(events)["items"]), events[:2000]
    obj = wait_isvc("live", namespace, ctl.is_ready, "live Ready again after the restart")
    assert container_pid(ctl.get("pod", pod["metadata"]["name"], namespace), "kinfer-server") != pid
    assert ctl.condition(obj, "Ready")["status"] == "True"


def test_a_missing_image_says_to_run_make_images(namespace, store):
    """The node pulls from nowhere: an image that `make images` did not build shows as
    ErrImagePull (then ImagePullBackOff) with the registry stub's explanation, in the pod and in
    the InferenceService's status."""
    c = ctl.Controller(namespace, "--runtime-image", "docker.io/kinfer/kinfer-server:not-built")
    try:
        ctl.apply(node_isvc("noimage", namespace, "s3://iris", storage_secret(namespace, store)))
        obj = wait_isvc("noimage", namespace, lambda o: (ctl.condition(o, "Ready") or {}).get("reason") in (
            "ErrImagePull", "ImagePullBackOff"), "Ready False for the missing image", timeout=120)
    finally:
        c.kill()
    msg = ctl.condition(obj, "Ready")["message"]
    assert "docker.io/kinfer/kinfer-server:not-built" in msg and "'make images'" in msg, msg


def test_pod_traffic_never_leaves_the_machine(namespace, node):
    """The node's table drops what a pod sends anywhere but the pod network and this host. Checked
    without sending anything out: 198.51.100.0/24 (TEST-NET-2) is routed into a veth pair whose
    other end sits, without an address, in a network namespace made here, where whatever arrives
    dies. A client pod's connection there must die in the table's drop rule (its counter grows)
    and the veth must transmit nothing. The same pod reaches this host, which is allowed."""
    import re
    import subprocess
    dev, ns = "kinfer-egress0", "kinfer-egress"

    def run(*cmd):
        subprocess.run(cmd, check=True, capture_output=True)

    subprocess.run(["ip", "link", "del", dev], capture_output=True)
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    run("ip", "netns", "add", ns)
    try:
        run("ip", "link", "add", dev, "type", "veth", "peer", "name", "sink0", "netns", ns)
        run("ip", "link", "set", dev, "up")
        run("ip", "route", "add", "198.51.100.0/24", "dev", dev)

        def drops():
            out = subprocess.run(["nft", "list", "chain", "inet", "kinfer-node", "forward"], check=True,
                                 capture_output=True, text=True).stdout
            line = next(l for l in out.splitlines() if "never leaves" in l)
            return int(re.search(r"packets (\d+)", line).group(1))

        def tx():
            with open("/sys/class/net/%s/statistics/tx_packets" % dev) as f:
                return int(f.read())

        d0, t0 = drops(), tx()
        phase, log = run_client_pod(namespace, "egress", ["-sS", "--max-time", "3", "http://198.51.100.7/"])
        assert phase == "Failed" and ("timed out" in log or "Timeout" in log), (phase, log)
        assert drops() > d0, "the drop rule saw nothing"
        assert tx() == t0, "the veth transmitted %d packets" % (tx() - t0)
        # This host (the node's address: the kubelet's port answers, refusing anonymous clients).
        phase, log = run_client_pod(namespace, "to-host", ["-sk", "-o", "/dev/null", "-w", "%{http_code}",
                                                            "--max-time", "5", "https://10.88.0.1:10250/healthz"])
        assert phase == "Succeeded" and log.strip() == "401", (phase, log)
    finally:
        subprocess.run(["ip", "link", "del", dev], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
