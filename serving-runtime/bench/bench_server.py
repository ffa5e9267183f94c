"""`make bench-server`: closed-loop HTTP load (wrk, keep-alive, one POST body per model) against
kinfer-server and its peers (KServe's Python model server and MLServer, both on onnxruntime),
at concurrency 1/16/64, on the tiny Add+MatMul model, two MLPs (sklearn's small one and a wide
dense one), a gradient-boosted tree ensemble and ResNet-50. Every server's answer is checked against onnxruntime before it is timed. The
table goes into docs/benchmarks.md, section "Server".

    bench_server.py --kinfer build/bin/kinfer-server --peer-python BENCH_VENV/bin/python
                    [--seconds 8] [--models tiny,mlp,mlp-wide,tree,resnet50] [--no-extras] [--write docs/benchmarks.md]
"""
import argparse
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "serving-runtime", "tests", "e2e"))
from conftest import make_addmm  # noqa: E402

LUA = """
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
"""
# model key -> directory in the engine's model cache, or None for a model made here (tiny, mlp-wide)
MODELS = {"tiny": None, "mlp": "mlp", "mlp-wide": None, "tree": "gbt100", "resnet50": "resnet50"}
WIDE_DIMS = [256, 1024, 1024, 1024, 16]
# ResNet-50 takes tens of ms of CPU per image: at 64 clients a request waits seconds in the queue,
# so its cells run 4x longer, enough for every client to complete several requests.
SECONDS_FACTOR = {"resnet50": 4}


def models_cache():
    gen = os.path.join(ROOT, "test", "models", "gen_models.py")
    with open(gen, "rb") as f:
        h = hashlib.sha256(f.read()).hexdigest()[:12]
    cache = os.environ.get("KINFER_CACHE", os.path.expanduser("~/.cache/kinfer"))
    return gen, os.path.join(cache, f"models-{h}")


def make_wide_mlp(d):
    """A dense MLP of the size recommenders and tabular models serve (256 -> 3 x 1024 -> 16,
    2.4 M weights, 9.5 MB): the sklearn MLP in `mlp` is ~12,000 multiply-adds per row, so HTTP
    and JSON dominate it and batching cannot show; here each request streams the weights, which a
    batch reads once for all its rows."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(7)
    nodes, inits, prev = [], [], "x"
    for i in range(len(WIDE_DIMS) - 1):
        w = (rng.standard_normal((WIDE_DIMS[i], WIDE_DIMS[i + 1])) / np.sqrt(WIDE_DIMS[i])).astype(np.float32)
        b = (rng.standard_normal(WIDE_DIMS[i + 1]) * 0.01).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"B{i}")]
        last = i == len(WIDE_DIMS) - 2
        out = "y" if last else f"h{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"B{i}"], [out if last else f"g{i}"]))
        if not last:
            nodes.append(helper.make_node("Relu", [f"g{i}"], [out]))
        prev = out
    graph = helper.make_graph(
        nodes, "mlp_wide", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", WIDE_DIMS[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", WIDE_DIMS[-1]])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    os.makedirs(d, exist_ok=True)
    onnx.save(m, os.path.join(d, "model.onnx"))


def model_dir(key, scratch):
    if MODELS[key] is None:
        d = os.path.join(scratch, key)
        if not os.path.exists(os.path.join(d, "model.onnx")):
            (make_addmm if key == "tiny" else make_wide_mlp)(d)
        return d
    gen, cache = models_cache()
    d = os.path.join(cache, MODELS[key])
    if not os.path.exists(os.path.join(d, ".done")):
        subprocess.run([sys.executable, gen, cache, MODELS[key]], check=True)
    return d


def request_for(model_path, rng):
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    feeds = {}
    for i in sess.get_inputs():
        shape = [1 if not isinstance(d, int) or d <= 0 else d for d in i.shape]
        feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
    names = [o.name for o in sess.get_outputs()]
    ref = dict(zip(names, sess.run(names, feeds)))
    body = {"inputs": [{"name": k, "shape": list(v.shape), "datatype": "FP32", "data": v.flatten().tolist()}
                       for k, v in feeds.items()]}
    return json.dumps(body).encode(), ref


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}")
        try:
            if requests.get(url + "/v2/health/ready", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError("server not ready")


def check_answer(url, body, ref):
    r = requests.post(url + "/v2/models/model/infer", data=body, headers={"Content-Type": "application/json"},
                      timeout=60)
    r.raise_for_status()
    for o in r.json()["outputs"]:
        if o["name"] in ref and o["datatype"] in ("FP32", "FP64"):
            got = np.array(o["data"], np.float64).reshape(ref[o["name"]].shape)
            np.testing.assert_allclose(got, ref[o["name"]], rtol=1e-3, atol=1e-4)


def wrk(url, body_path, conc, seconds):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(LUA)
    env = dict(os.environ, BENCH_BODY=body_path)
    out = subprocess.run(["wrk", "-t", str(min(conc, 2)), "-c", str(conc), "-d", f"{seconds}s", "--latency",
                          "--timeout", "30s",
                          "-s", f.name, url + "/v2/models/model/infer"], env=env, capture_output=True, text=True,
                         check=True).stdout
    os.unlink(f.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {}
    for p in ("50", "99"):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        lat[p] = float(m.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[m.group(2)] if m else float("nan")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    n_err = (int(errors.group(1)) if errors else 0) + (sum(int(x) for x in sock.groups()) if sock else 0)
    return rps, lat["50"], lat["99"], n_err


def cpu_seconds(pid):
    """utime + stime of a process (the server's CPU use, independent of how busy the machine is)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(kind, model_path, port, args, scratch, kinfer_opts=None):
    if kind == "kinfer":
        opts = {"--threads": str(args.threads), "--max-batch-size": "32", **(kinfer_opts or {})}
        cmd = [args.kinfer, "--model-dir", model_path, "--host", "127.0.0.1", "--port", str(port),
               "--max-queue-size", "4096"] + [x for kv in opts.items() for x in kv]
    elif kind == "kserve":
        cmd = [args.peer_python, os.path.join(ROOT, "serving-runtime", "bench", "peer_servers.py"), "kserve",
               model_path, str(port), str(args.threads)]
    else:
        cmd = [args.peer_python, os.path.join(ROOT, "serving-runtime", "bench", "peer_servers.py"), "mlserver",
               model_path, str(port), str(args.threads), os.path.join(scratch, f"mlserver-{port}")]
    log = open(os.path.join(scratch, f"{kind}-{port}.log"), "wb")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def measure(kind, key, d, path, body_path, ref, concs, args, scratch, kinfer_opts=None, label=None):
    """Starts one server, checks its answer, runs wrk at each concurrency; one row per cell."""
    rows = []
    label = label or kind
    port = free_port()
    proc = start(kind, path if kind != "kinfer" else d, port, args, scratch, kinfer_opts)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        check_answer(url, body_path[1], ref)
        for c in concs:
            cpu0 = cpu_seconds(proc.pid)
            secs = args.seconds * SECONDS_FACTOR.get(key, 1)
            rps, p50, p99, errs = wrk(url, body_path[0], c, secs)
            cpu_us = (cpu_seconds(proc.pid) - cpu0) / max(rps * secs, 1) * 1e6
            rows.append((key, label, c, rps, p50, p99, errs, cpu_us))
            print(f"{key:9s} {label:22s} c={c:3d} {rps:10.1f} req/s  p50 {p50:8.2f} ms  p99 {p99:8.2f} ms"
                  f"  errors {errs}  server CPU {cpu_us:8.1f} us/req", flush=True)
    except Exception as e:  # a peer that fails is reported, not fatal
        print(f"{key} {label}: {e}", flush=True)
        rows.append((key, label, 0, float("nan"), float("nan"), float("nan"), -1, float("nan")))
    finally:
        stop(proc)
    return rows


def row_line(row):
    key, kind, c, rps, p50, p99, errs, cpu_us = row
    return (f"| {key} | {kind} | {c} | {rps:.0f} | {p50:.2f} | {p99:.2f} | "
            f"{errs if errs >= 0 else 'failed'} | {cpu_us:.0f} |")


HEADER = ["| model | server | concurrency | req/s | p50 ms | p99 ms | errors | server CPU µs/req |",
          "|---|---|---|---|---|---|---|---|"]


def prepare(key, scratch, rng, prefix=""):
    """The model's directory and file, its request body (in memory and written for wrk) and
    onnxruntime's answer to it: (dir, model path, (body path, body), reference outputs)."""
    d = model_dir(key, scratch)
    path = os.path.join(d, "model.onnx")
    body, ref = request_for(path, rng)
    body_path = os.path.join(scratch, f"{prefix}{key}.json")
    with open(body_path, "wb") as f:
        f.write(body)
    return d, path, (body_path, body), ref


def extras(args, scratch, rng):
    """kinfer-only: batching on/off on both MLPs at c=64, and --threads x --instances on tiny."""
    out = []
    bodies = {key: prepare(key, scratch, rng, "extra-") for key in ("mlp", "mlp-wide", "tiny")}
    for key in ("mlp", "mlp-wide"):
        d, path, bp, ref = bodies[key]
        on = measure("kinfer", key, d, path, bp, ref, [64], args, scratch, {"--max-batch-size": "32"},
                     "kinfer batch 32")
        off = measure("kinfer", key, d, path, bp, ref, [64], args, scratch, {"--max-batch-size": "0"},
                      "kinfer batch off")
        ratio = on[0][3] / off[0][3] if off[0][3] > 0 else float("nan")
        out += ["", f"Batching on vs off, `{key}` at concurrency 64, same run (kinfer-server --threads "
                f"{args.threads}, --max-batch-size 32 vs 0): "
                f"**{ratio:.2f}x** the requests per second (target: at least 3x).", ""] + HEADER
        out += [row_line(r) for r in on + off]
    d, path, bp, ref = bodies["tiny"]
    sweep = []
    for t in (1, 2):
        for i in (1, 2):
            sweep += measure("kinfer", "tiny", d, path, bp, ref, [16, 64], args, scratch,
                             {"--threads": str(t), "--instances": str(i)}, f"kinfer threads {t} instances {i}")
    best = max(sweep, key=lambda r: r[3] if r[3] == r[3] else -1)
    out += ["", "The tiny model across --threads x --instances (--max-batch-size 32), same run: best "
            f"**{best[3]:.0f} req/s** with `{best[1]}` at concurrency {best[2]} (target: at least 20,000).", ""]
    out += HEADER + [row_line(r) for r in sweep]
    return out


def write_section(path, text):
    old = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    section = "## Server\n"
    start_i = old.find(section)
    if start_i < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        end_i = old.find("\n## ", start_i + len(section))
        new = old[:start_i] + text + (old[end_i + 1:] if end_i >= 0 else "")
    with open(path, "w") as f:
        f.write(new)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kinfer", required=True)
    ap.add_argument("--peer-python")
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="tiny,mlp,mlp-wide,tree,resnet50")
    ap.add_argument("--servers", default="kinfer,kserve,mlserver")
    ap.add_argument("--concurrency", default="1,16,64")
    ap.add_argument("--no-extras", action="store_true", help="skip the batching and --threads/--instances tables")
    ap.add_argument("--write")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    load0 = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for key in args.models.split(","):
            d, path, bp, ref = prepare(key, scratch, rng)
            for kind in args.servers.split(","):
                if kind != "kinfer" and not args.peer_python:
                    continue
                concs = [int(x) for x in args.concurrency.split(",")]
                rows += measure(kind, key, d, path, bp, ref, concs, args, scratch)
        extra = [] if args.no_extras else extras(args, scratch, rng)
    load = os.getloadavg()
    table = ["## Server", "",
             "Closed-loop HTTP load with wrk (keep-alive, one JSON V2 request of batch 1 per call), "
             f"{args.seconds} s per cell, every server first checked against onnxruntime. kinfer-server runs "
             f"with --threads {args.threads} --max-batch-size 32; the peers run onnxruntime with "
             f"{args.threads} intra-op threads (KServe's ModelServer, 1 worker; MLServer with adaptive "
             "batching, max_batch_size 32, max_batch_time 1 ms). errors = non-2xx answers + socket errors "
             f"and 30 s timeouts. ResNet-50's cells run {args.seconds * SECONDS_FACTOR['resnet50']} s. server CPU µs/req is the "
             "server process's user+system CPU time per answered request (from /proc), which does not "
             "depend on how busy the shared machine is: 1e6 / it is the rate one fully used core "
             "would sustain. Machine: "
             f"{os.cpu_count()} CPUs shared with the load generator; load average at the end "
             f"{load[0]:.1f}. Command: `make bench-server`.", "",
             f"Load average at the start {load0[0]:.1f}.", ""] + HEADER
    table += [row_line(r) for r in rows] + extra
    text = "\n".join(table) + "\n\n"
    print(text)
    if args.write:
        write_section(args.write, text)


if __name__ == "__main__":
    main()
