"""`make bench-controller`: kinfer-controller against a raw server-side-apply floor, same cluster,
same run.

1. Controller: kinfer-controller watches a fresh namespace; ctlbench creates N InferenceServices
   (parallel creates) and watches until every Deployment, Service and HPA exists and every
   InferenceService is Ready. Also: p50/p99 from an InferenceService's create response to its
   Deployment's first watch event, the controller's peak RSS (VmHWM) and CPU seconds (utime+stime).
2. Floor: in another namespace, with no controller, ctlbench creates the same N InferenceServices
   (for the owner uids), kinfer-desired computes their children with the controller's own
   reconcile_desired(), and ctlbench server-side applies those 3N objects with P parallel workers
   and waits for every Deployment to be ready. That is the work the controller must do with no
   informer, queue or status in the way.

Results go to stdout and build/bench/controller.json. Extra kwok nodes are added for the run (one
node holds 500 pods) and removed at the end, with the namespaces.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STATE = os.environ.get("KINFER_CLUSTER_DIR", os.path.join(ROOT, "build", "cluster"))
if not os.path.isabs(STATE):
    STATE = os.path.join(ROOT, STATE)
KUBECONFIG = os.path.join(STATE, "kubeconfig")
KUBECTL = [os.path.join(STATE, "bin", "kubectl"), "--kubeconfig", KUBECONFIG]
BENCH = os.path.join(ROOT, "build", "bench")
IMAGE = "kinfer/kinfer-server:bench"


def kubectl(*args, input=None, check=True):
    p = subprocess.run(KUBECTL + list(args), input=input, capture_output=True, text=True, timeout=600)
    if check and p.returncode:
        sys.exit(f"bench-controller: kubectl {' '.join(args)}: {p.stderr.strip()}")
    return p.stdout


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_stats(pid):
    """(peak RSS MiB, CPU seconds) of a live process, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        hwm = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return hwm / 1024.0, (int(fields[11]) + int(fields[12])) / ticks


def nodes(names, create):
    for n in names:
        if create:
            kubectl("apply", "-f", "-", input=json.dumps({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": n, "annotations": {"kwok.x-k8s.io/node": "fake"},
                             "labels": {"type": "kwok", "kubernetes.io/hostname": n, "kubernetes.io/os": "linux"}},
                "status": {"capacity": {"cpu": "64", "memory": "512Gi", "pods": "1000"},
                           "allocatable": {"cpu": "64", "memory": "512Gi", "pods": "1000"}}}))
        else:
            kubectl("delete", "node", n, "--wait=false", check=False)


def controller_counts(port):
    """Reconciles and server-side applies the controller made, from its /metrics."""
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out = {"controller_reconciles": 0, "controller_applies": 0, "controller_queue_depth": 0}
    for line in text.splitlines():
        if line.startswith("kinfer_controller_workqueue_depth "):
            out["controller_queue_depth"] = int(float(line.split()[-1]))
        if line.startswith("kinfer_controller_reconcile_total{"):
            out["controller_reconciles"] += int(float(line.split()[-1]))
        elif line.startswith("kinfer_controller_api_requests_total{") and 'verb="apply"' in line:
            out["controller_applies"] += int(float(line.split()[-1]))
    return out


def run_json(argv, log):
    with open(log, "w") as f:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=f, text=True)
    if p.returncode:
        sys.exit(f"bench-controller: {' '.join(argv)} failed; see {log}")
    return json.loads(p.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--parallel", type=int, default=16, help="client parallelism (creates, floor applies)")
    ap.add_argument("--workers", type=int, default=8, help="kinfer-controller --workers")
    ap.add_argument("--controller", default=os.path.join(ROOT, "build", "bin", "kinfer-controller"),
                    help="the kinfer-controller binary (e.g. one built from an older commit, for before/after)")
    ap.add_argument("--skip-floor", action="store_true", help="controller only (no ratios): quick memory checks")
    args = ap.parse_args()
    os.makedirs(BENCH, exist_ok=True)
    tag = uuid.uuid4().hex[:6]
    ns_ctl, ns_floor = f"kinfer-bench-ctl-{tag}", f"kinfer-bench-floor-{tag}"
    extra_nodes = [f"kinfer-bench-node-{tag}-{i}" for i in range((2 * args.count) // 900 + 1)]
    kubectl("apply", "--server-side", "--force-conflicts", "-f",
            os.path.join(ROOT, "crds", "serving.kinfer.dev_inferenceservices.yaml"))
    kubectl("wait", "--for=condition=Established", "crd/inferenceservices.serving.kinfer.dev", "--timeout=60s")
    nodes(extra_nodes, True)
    ctl = None
    try:
        for ns in (ns_ctl, ns_floor):
            kubectl("create", "namespace", ns)
        # --- controller ---------------------------------------------------------------------------
        metrics_port = free_port()
        ctl_argv = [args.controller, "--kubeconfig", KUBECONFIG,
                    "--namespace", ns_ctl, "--workers", str(args.workers), "--runtime-image", IMAGE,
                    "--metrics-addr", f"127.0.0.1:{metrics_port}", "--health-addr", f"127.0.0.1:{free_port()}"]
        ctl_log = open(os.path.join(BENCH, "controller.log"), "w")
        ctl = subprocess.Popen(ctl_argv, stdout=ctl_log, stderr=subprocess.STDOUT)
        time.sleep(2)
        if ctl.poll() is not None:
            sys.exit(f"bench-controller: kinfer-controller exited ({ctl.returncode}); see {BENCH}/controller.log")
        _, cpu0 = proc_stats(ctl.pid)
        c = run_json([os.path.join(BENCH, "ctlbench"), "create", "-kubeconfig", KUBECONFIG, "-n", ns_ctl,
                      "-count", str(args.count), "-parallel", str(args.parallel), "-wait-ready"],
                     os.path.join(BENCH, "ctlbench-create.log"))
        rss, cpu1 = proc_stats(ctl.pid)
        c["controller_peak_rss_mib"] = round(rss, 1)
        c["controller_cpu_s"] = round(cpu1 - cpu0, 2)
        c.update(controller_counts(metrics_port))
        ctl.send_signal(signal.SIGTERM)
        ctl.wait(timeout=30)
        ctl = None
        # --- restart on the converged namespace: how much work does a new process redo? -------
        metrics_port = free_port()
        ctl_argv[ctl_argv.index("--metrics-addr") + 1] = f"127.0.0.1:{metrics_port}"
        ctl = subprocess.Popen(ctl_argv, stdout=ctl_log, stderr=subprocess.STDOUT)
        t0, last, still = time.time(), None, 0.0
        while time.time() - t0 < 300:
            time.sleep(1)
            try:
                m = controller_counts(metrics_port)
            except OSError:
                continue
            key = (m["controller_reconciles"], m["controller_applies"])
            # settled: work was done, the queue is empty and nothing moved for 5 s
            still = still + 1 if key == last and m["controller_queue_depth"] == 0 and key[0] else 0
            last = key
            if still >= 5:
                break
        rss2, _ = proc_stats(ctl.pid)
        c["restart"] = {"reconciles": last[0] if last else None, "applies": last[1] if last else None,
                        "settled_s": round(time.time() - t0 - still, 1), "peak_rss_mib": round(rss2, 1)}
        ctl.send_signal(signal.SIGTERM)
        ctl.wait(timeout=30)
        ctl = None
        # --- floor --------------------------------------------------------------------------------
        if args.skip_floor:
            print(json.dumps({"controller": c, "workers": args.workers}, indent=2))
            return
        isvcs, children = os.path.join(BENCH, "floor-isvcs.jsonl"), os.path.join(BENCH, "floor-children.jsonl")
        run_json([os.path.join(BENCH, "ctlbench"), "create", "-kubeconfig", KUBECONFIG, "-n", ns_floor,
                  "-count", str(args.count), "-parallel", str(args.parallel), "-objects", isvcs],
                 os.path.join(BENCH, "ctlbench-floor-create.log"))
        with open(isvcs) as fi, open(children, "w") as fo:
            subprocess.run([os.path.join(BENCH, "kinfer-desired"), IMAGE], stdin=fi, stdout=fo, check=True)
        f = run_json([os.path.join(BENCH, "ctlbench"), "apply", "-kubeconfig", KUBECONFIG, "-n", ns_floor,
                      "-f", children, "-parallel", str(args.parallel)], os.path.join(BENCH, "ctlbench-apply.log"))
    finally:
        if ctl is not None:
            ctl.kill()
        for ns in (ns_ctl, ns_floor):
            kubectl("delete", "namespace", ns, "--wait=false", check=False)
        nodes(extra_nodes, False)
    res = {"controller": c, "floor": f, "workers": args.workers,
           "ratio_children_vs_floor_apply": round(c["all_children_s"] / f["all_applied_s"], 2),
           "ratio_ready_vs_floor_deployments_ready": round(c["all_ready_s"] / f["all_deployments_ready_s"], 2)}
    with open(os.path.join(BENCH, "controller.json"), "w") as fo:
        json.dump(res, fo, indent=2)
    print(json.dumps(res, indent=2))
    print(f"\n| | kinfer-controller | floor (raw parallel SSA) | ratio |\n|---|---|---|---|\n"
          f"| all {3 * args.count} children applied | {c['all_children_s']:.1f} s | {f['all_applied_s']:.1f} s | "
          f"{res['ratio_children_vs_floor_apply']} |\n"
          f"| all Ready (floor: all Deployments ready) | {c['all_ready_s']:.1f} s | "
          f"{f['all_deployments_ready_s']:.1f} s | {res['ratio_ready_vs_floor_deployments_ready']} |\n"
          f"| create -> Deployment p50 / p99 | {c['create_to_deployment_p50_s'] * 1000:.0f} / "
          f"{c['create_to_deployment_p99_s'] * 1000:.0f} ms | | |\n"
          f"| controller peak RSS / CPU | {c['controller_peak_rss_mib']} MiB / {c['controller_cpu_s']} s | | |")


if __name__ == "__main__":
    main()
