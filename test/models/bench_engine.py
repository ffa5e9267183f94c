#!/usr/bin/env python3
"""make bench-engine: latency per batch and peak RSS of kinfer's engine against onnxruntime, on
the same models, inputs, thread count and machine, in one run.

    bench_engine.py --kinfer-run build/bin/kinfer-run [--threads 2] [--write docs/benchmarks.md]

Every measurement runs in a fresh process (kinfer-run --bench, or this script's --ort-worker
mode), and peak RSS is that process's VmHWM: the engine's peak alone (model, inputs, runtime).
ru_maxrss is not used because Linux carries the forking parent's high-water mark across exec, so
every child of this (numpy-loaded) driver would report at least the driver's size. onnxruntime gets
intra_op_num_threads=THREADS, inter_op_num_threads=1, sequential execution, all graph
optimizations (its defaults). Each cell times enough runs to fill ~BUDGET seconds (at least 3)
after warm-up runs and reports the median. With --write, the table replaces the body of the
"## Engine" section of the given markdown file.
"""
import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# (model in the generated cache, label, batch sizes)
MODELS = [("mlp", "MLP classifier (scaler + 128-64 MLP)", [1, 32]),
          ("gbt100", "Gradient-boosted trees (100 trees, depth 5)", [1, 32]),
          ("resnet50", "ResNet-50 (224x224)", [1, 32]),
          ("mobilenet_v2", "MobileNetV2 (224x224)", [1, 32]),
          ("minilm", "all-MiniLM-L6-v2 (seq 128)", [1, 32])]
MINILM_SEQ = 128


def make_inputs(model_path, batch, outdir):
    """Random inputs for the model's graph inputs at this batch size, saved as in.NAME.npy."""
    import onnx
    from gen_models import minilm_inputs
    rng = np.random.default_rng(7)
    m = onnx.load(model_path, load_external_data=False)
    names = [i.name for i in m.graph.input]
    if "input_ids" in names:
        feeds = minilm_inputs(rng, batch, MINILM_SEQ)
    else:
        feeds = {}
        for i in m.graph.input:
            dims = [d.dim_value if d.HasField("dim_value") else batch
                    for d in i.type.tensor_type.shape.dim]
            feeds[i.name] = rng.standard_normal(dims).astype(np.float32)
    paths = {}
    for k, v in feeds.items():
        p = os.path.join(outdir, f"in.{k}.npy")
        np.save(p, v)
        paths[k] = p
    return paths


BENCH_RE = re.compile(r"bench: runs=(\d+) mean_ms=([\d.]+) p50_ms=([\d.]+) min_ms=([\d.]+) "
                      r"load_ms=([\d.]+) peak_rss_kb=(\d+) cpu_ms=([\d.]+)")


def parse(out, who):
    m = BENCH_RE.search(out)
    if not m:
        raise RuntimeError(f"{who}: no bench line in output:\n{out}")
    return {"runs": int(m.group(1)), "mean": float(m.group(2)), "p50": float(m.group(3)),
            "min": float(m.group(4)), "rss_mb": int(m.group(6)) / 1024.0, "cpu": float(m.group(7))}


def run_kinfer(kinfer_run, model, inputs, threads, runs, warmup):
    args = [kinfer_run, "--threads", str(threads), "--bench", str(runs), "--warmup", str(warmup),
            model] + [f"{k}={v}" for k, v in inputs.items()]
    r = subprocess.run(args, capture_output=True, text=True, timeout=1800)
    if r.returncode:
        raise RuntimeError(f"kinfer-run failed: {r.stderr.strip()}")
    return parse(r.stdout, "kinfer-run")


def run_ort(model, inputs, threads, runs, warmup):
    args = [sys.executable, os.path.abspath(__file__), "--ort-worker", model, "--threads",
            str(threads), "--runs", str(runs), "--warmup", str(warmup)] + \
        [f"{k}={v}" for k, v in inputs.items()]
    r = subprocess.run(args, capture_output=True, text=True, timeout=1800)
    if r.returncode:
        raise RuntimeError(f"onnxruntime worker failed: {r.stderr.strip()}")
    return parse(r.stdout, "onnxruntime")


def ort_worker(a):
    """Child process: one onnxruntime session, timed like kinfer-run --bench."""
    import onnxruntime as ort
    feeds = {}
    for kv in a.feeds:
        k, v = kv.split("=", 1)
        feeds[k] = np.load(v)
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    t0 = time.perf_counter()
    sess = ort.InferenceSession(a.ort_worker, so, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - t0) * 1e3
    sess.run(None, feeds)
    for _ in range(a.warmup):
        sess.run(None, feeds)
    times = []
    c0 = time.process_time()
    for _ in range(a.runs):
        s = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - s) * 1e3)
    cpu_ms = (time.process_time() - c0) * 1e3 / a.runs
    times.sort()
    print(f"bench: runs={a.runs} mean_ms={sum(times) / len(times):.4f} "
          f"p50_ms={times[len(times) // 2]:.4f} min_ms={times[0]:.4f} load_ms={load_ms:.1f} "
          f"peak_rss_kb={peak_rss_kb()} cpu_ms={cpu_ms:.4f}")
    return 0


def peak_rss_kb():
    """VmHWM of this process (see the module comment for why not ru_maxrss)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def ort_baseline_rss_mb():
    """Peak RSS of a Python process that only imports numpy and onnxruntime (no session)."""
    code = ("import sys; sys.path.insert(0, %r); import numpy, onnxruntime, bench_engine; "
            "print(bench_engine.peak_rss_kb())" % HERE)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(r.stdout.strip()) / 1024.0


def bench_cell(a, model, inputs):
    """Probe once to size the run count, then time kinfer and onnxruntime in alternating rounds
    (fresh processes each), so that both see the same share of a busy machine's quiet moments.
    Per engine: min over all runs, median of the rounds' medians, the largest peak RSS."""
    probe = run_kinfer(a.kinfer_run, model, inputs, a.threads, 1, 0)
    per_round = a.budget / a.rounds / max(probe["mean"] / 1e3, 1e-6)
    runs = int(min(a.max_runs, max(2, per_round)))
    warmup = max(1, min(20, runs // 10))
    ks, os_ = [], []
    for _ in range(a.rounds):
        ks.append(run_kinfer(a.kinfer_run, model, inputs, a.threads, runs, warmup))
        os_.append(run_ort(model, inputs, a.threads, runs, warmup))

    def merge(rs):
        p50s = sorted(r["p50"] for r in rs)
        cpus = sorted(r["cpu"] for r in rs)
        return {"runs": sum(r["runs"] for r in rs), "p50": p50s[len(p50s) // 2],
                "min": min(r["min"] for r in rs), "mean": sum(r["mean"] for r in rs) / len(rs),
                "rss_mb": max(r["rss_mb"] for r in rs), "cpu": cpus[len(cpus) // 2]}
    return merge(ks), merge(os_)


def ms(v):
    """Milliseconds with about four significant digits, never in exponent form."""
    return f"{v:.0f}" if v >= 1000 else f"{v:.1f}" if v >= 100 else f"{v:.2f}" if v >= 1 \
        else f"{v:.4f}"


def write_section(path, body):
    with open(path) as f:
        text = f.read()
    m = re.search(r"^## Engine\n", text, re.M)
    if not m:
        text = text.rstrip("\n") + "\n\n## Engine\n"
        m = re.search(r"^## Engine\n", text, re.M)
    nxt = re.search(r"^## ", text[m.end():], re.M)
    end = m.end() + nxt.start() if nxt else len(text)
    text = text[:m.end()] + "\n" + body.rstrip("\n") + "\n\n" + text[end:].lstrip("\n")
    with open(path, "w") as f:
        f.write(text.rstrip("\n") + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kinfer-run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget", type=float, default=3.0, help="seconds of timed runs per cell")
    ap.add_argument("--rounds", type=int, default=3, help="alternating kinfer/onnxruntime rounds")
    ap.add_argument("--max-runs", type=int, default=2000)
    ap.add_argument("--models", default=",".join(m for m, _, _ in MODELS))
    ap.add_argument("--write", help="markdown file whose '## Engine' section gets the table")
    ap.add_argument("--ort-worker", help=argparse.SUPPRESS)
    ap.add_argument("--runs", type=int, default=10, help=argparse.SUPPRESS)
    ap.add_argument("--warmup", type=int, default=2, help=argparse.SUPPRESS)
    ap.add_argument("feeds", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.ort_worker:
        return ort_worker(a)
    if not a.kinfer_run:
        ap.error("--kinfer-run is required")
    from conftest import ensure_models
    import onnxruntime
    wanted = a.models.split(",")
    mdir = ensure_models([m for m, _, _ in MODELS if m in wanted])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, label, batches in MODELS:
            if name not in wanted:
                continue
            model = os.path.join(mdir, name, "model.onnx")
            for b in batches:
                d = os.path.join(tmp, f"{name}-b{b}")
                os.makedirs(d)
                inputs = make_inputs(model, b, d)
                k, o = bench_cell(a, model, inputs)
                rows.append((label, b, k, o))
                print(f"{name} b{b}: kinfer p50 {k['p50']:.3f} ms ({k['runs']} runs), "
                      f"onnxruntime p50 {o['p50']:.3f} ms; ratio {k['p50'] / o['p50']:.2f}; "
                      f"CPU {k['cpu']:.3f} / {o['cpu']:.3f} ms; "
                      f"peak RSS {k['rss_mb']:.0f} / {o['rss_mb']:.0f} MB", flush=True)
    base = ort_baseline_rss_mb()
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [
        f"`make bench-engine` (test/models/bench_engine.py): kinfer's engine (build/bin/kinfer-run"
        f" --bench) against onnxruntime {onnxruntime.__version__} (PyPI wheel, CPU provider), both"
        f" with {a.threads} intra-op threads (onnxruntime: inter_op_num_threads=1, sequential),"
        f" same random inputs, each measurement in its own process, {a.rounds} alternating rounds"
        f" per engine (kinfer, onnxruntime, kinfer, ...). Latency per batch: the median of the"
        f" rounds' medians (p50) and the fastest run (min) over all N timed runs after warm-up;"
        f" the minimum is the steadier figure on a busy machine. Ratio = kinfer / onnxruntime (below 1: kinfer"
        f" is faster or smaller). Peak RSS is that process's VmHWM: for onnxruntime it"
        f" includes the Python interpreter, numpy and the onnxruntime library, which alone take"
        f" {base:.0f} MB here (import only, no session). CPU ms is the process's CPU time (all"
        f" threads) per timed run, the median over the rounds: it moves far less than wall time"
        f" when other work shares the cores, but onnxruntime's idle intra-op threads spin while"
        f" they wait (its default), so with more than one thread its CPU time includes that spin"
        f" and the CPU ratio flatters kinfer; the single-thread CPU ratios in docs/engine.md"
        f" compare like with like.",
        "",
        f"Machine: {os.cpu_count()} vCPU ({cpu}), shared with other work (load average"
        f" {os.getloadavg()[0]:.1f} at the end of the run), so absolute numbers drift between"
        f" runs. Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "| model | batch | runs | kinfer p50 ms | onnxruntime p50 ms | p50 ratio | "
        "kinfer min ms | onnxruntime min ms | min ratio | "
        "kinfer CPU ms | onnxruntime CPU ms | CPU ratio | "
        "kinfer peak RSS MB | onnxruntime peak RSS MB | RSS ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, b, k, o in rows:
        lines.append(f"| {label} | {b} | {k['runs']} | {ms(k['p50'])} | {ms(o['p50'])} | "
                     f"{k['p50'] / o['p50']:.2f} | {ms(k['min'])} | {ms(o['min'])} | "
                     f"{k['min'] / o['min']:.2f} | {ms(k['cpu'])} | {ms(o['cpu'])} | "
                     f"{k['cpu'] / o['cpu']:.2f} | {k['rss_mb']:.0f} | {o['rss_mb']:.0f} | "
                     f"{k['rss_mb'] / o['rss_mb']:.2f} |")
    table = "\n".join(lines)
    print()
    print(table)
    if a.write:
        write_section(a.write, table)
        print(f"\nwrote the Engine section of {a.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
