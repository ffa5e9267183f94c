"""`make bench-node`: the real node's figures (docs/cluster.md, docs/benchmarks.md). Not a test.
  1. pod start to Ready for the example model (iris, image present): from `kubectl apply` of the
     InferenceService to its pod Ready and to the InferenceService Ready, RUNS times
  2. request latency through the Service's ClusterIP (kube-proxy, nftables) against the pod IP
     directly: REQUESTS sequential keep-alive requests each, in alternating rounds
  3. the CPU and memory that the node's components use while idle (the example pod running):
     RSS and CPU time over IDLE_S seconds, from /proc
Uses the node-e2e suite's fixtures as plain functions; run through `make bench-node`."""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import conftest as nc
import ctl
from s3store import S3Store

BODY = json.dumps({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
                               "data": [5.1, 3.5, 1.4, 0.2]}]}).encode()
COMPONENTS = ("containerd", "kubelet", "kube-proxy", "coredns", "metrics-server", "kinfer-registry-stub",
              "containerd-shim-runc-v2")


def start_to_ready(ns, runs):
    out = []
    for i in range(runs):
        ctl.kubectl("delete", "kisvc", "iris", "-n", ns, "--ignore-not-found", "--wait=true")
        ctl.wait_for("old pods gone", lambda: not nc.pods_of("iris", ns), timeout=120)
        t0 = time.monotonic()
        ctl.apply(nc.node_isvc("iris", ns, "s3://iris", "s3"))
        t_pod = ctl.wait_for("pod Ready", lambda: (lambda ps: time.monotonic() if ps and all(
            (ctl.condition(p, "Ready") or {}).get("status") == "True" for p in ps) else None)(nc.pods_of("iris", ns)),
            timeout=180, interval=0.05)
        nc.wait_isvc("iris", ns, ctl.is_ready, "iris Ready", timeout=60)
        t_isvc = time.monotonic()
        out.append((t_pod - t0, t_isvc - t0))
        print("  run %d: pod Ready %.2f s, InferenceService Ready %.2f s after apply" % (i + 1, *out[-1]), flush=True)
    return out


def latency(host, port, n, keepalive):
    """n sequential requests, on one connection or each on a new one (kube-proxy's DNAT is paid
    when a connection is set up; later packets follow the conntrack entry)."""
    c = http.client.HTTPConnection(host, port, timeout=10)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        c.request("POST", "/v2/models/iris/infer", BODY, {"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        assert r.status == 200, r.status
        if not keepalive:
            c.close()
        times.append(time.perf_counter() - t)
    c.close()
    return times


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def node_procs():
    pids = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        name = os.path.basename(argv[0].decode(errors="replace"))
        if name in COMPONENTS and ctl.STATE.encode() + b"/" in b" ".join(argv):
            pids[int(pid)] = name
    return pids


def cpu_rss(pid):
    with open("/proc/%d/stat" % pid) as f:
        st = f.read().rsplit(")", 1)[1].split()
    with open("/proc/%d/status" % pid) as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK"), rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--idle-s", type=int, default=30)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-node-")
    subprocess.run([sys.executable, os.path.join(ctl.ROOT, "examples", "models", "make_iris.py"), work + "/iris"],
                   check=True, capture_output=True)
    store = S3Store(work, nc.NODE_IP, {"iris": {"model.onnx": work + "/iris/model.onnx"}})
    ns = nc.restricted_namespace("bench-node")
    controller = ctl.Controller(ns, "--runtime-image", nc.RUNTIME_IMAGE)
    try:
        nc.storage_secret(ns, store)
        print("1. pod start to Ready (iris; image present, model fetched from S3)")
        runs = start_to_ready(ns, a.runs)
        print("   median: pod Ready %.2f s, InferenceService Ready %.2f s (%d runs)" % (
            statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs), a.runs))

        (pod,) = nc.pods_of("iris", ns)
        cip = ctl.get("service", "iris", ns)["spec"]["clusterIP"]
        nc.http_service("POST", "http://%s/v2/models/iris/infer" % cip, json.loads(BODY))
        for keepalive in (True, False):
            via = {"ClusterIP": [], "pod IP": []}
            for _ in range(a.rounds):
                via["ClusterIP"] += latency(cip, 80, a.requests // a.rounds, keepalive)
                via["pod IP"] += latency(pod["status"]["podIP"], 8080, a.requests // a.rounds, keepalive)
            print("2%s. request latency, %d sequential requests each, %s (alternating rounds of %d)" % (
                "ab"[not keepalive], a.requests, "keep-alive" if keepalive else "a new connection each",
                a.requests // a.rounds))
            for k, v in via.items():
                print("   %-9s p50 %.3f ms  p99 %.3f ms" % (k, pct(v, 0.5) * 1e3, pct(v, 0.99) * 1e3))
            print("   ClusterIP / pod IP: p50 %.2fx, p99 %.2fx" % (
                pct(via["ClusterIP"], 0.5) / pct(via["pod IP"], 0.5), pct(via["ClusterIP"], 0.99) / pct(via["pod IP"], 0.99)))

        time.sleep(5)
        procs = node_procs()
        before = {p: cpu_rss(p) for p in procs}
        time.sleep(a.idle_s)
        print("3. the node's components while idle, over %d s (the iris pod running)" % a.idle_s)
        tot_cpu = tot_rss = 0
        by = {}
        for p, name in procs.items():
            try:
                c1, rss = cpu_rss(p)
            except OSError:
                continue
            d = by.setdefault(name, [0, 0.0, 0])
            d[0] += 1
            d[1] += c1 - before[p][0]
            d[2] += rss
        for name, (n, cpu, rss) in sorted(by.items()):
            print("   %-24s x%d  CPU %5.2f%% of a core  RSS %6.1f MiB" % (name, n, 100 * cpu / a.idle_s, rss / 1024))
            tot_cpu += cpu
            tot_rss += rss
        print("   total                        CPU %5.2f%% of a core  RSS %6.1f MiB" % (100 * tot_cpu / a.idle_s,
                                                                                      tot_rss / 1024))
    finally:
        controller.kill()
        store.stop()
        ctl.kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=false")


if __name__ == "__main__":
    main()
