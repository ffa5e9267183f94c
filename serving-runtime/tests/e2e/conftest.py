"""Black-box tests of kinfer-server: the built binary over real loopback HTTP, answers checked
against onnxruntime. Models are made here with onnx's helper API."""
import os
import signal
import socket
import subprocess
import time

import numpy as np
import onnx
import pytest
import requests
from onnx import TensorProto, helper

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BINARY = os.environ.get("KINFER_SERVER", os.path.join(ROOT, "build", "bin", "kinfer-server"))

# Every V2 datatype the engine's Identity carries, with its numpy and ONNX types.
DTYPES = {
    "BOOL": (np.bool_, TensorProto.BOOL),
    "UINT8": (np.uint8, TensorProto.UINT8),
    "INT8": (np.int8, TensorProto.INT8),
    "INT16": (np.int16, TensorProto.INT16),
    "INT32": (np.int32, TensorProto.INT32),
    "INT64": (np.int64, TensorProto.INT64),
    "UINT32": (np.uint32, TensorProto.UINT32),
    "UINT64": (np.uint64, TensorProto.UINT64),
    "FP16": (np.float16, TensorProto.FLOAT16),
    "FP32": (np.float32, TensorProto.FLOAT),
    "FP64": (np.float64, TensorProto.DOUBLE),
    "BYTES": (np.object_, TensorProto.STRING),
}


def save(graph, directory):
    """graph as an opset-13 model at directory/model.onnx, checked; returns the path."""
    os.makedirs(directory, exist_ok=True)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = os.path.join(directory, "model.onnx")
    onnx.save(model, path)
    return path


def make_addmm(directory):
    """z = (x + y) @ W with a dynamic batch dimension; W is 4x3."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 3])
    s = helper.make_tensor_value_info("s", TensorProto.FLOAT, ["batch", 4])
    w = helper.make_tensor("W", TensorProto.FLOAT, [4, 3],
                           (np.arange(12, dtype=np.float32) / 7 - 0.5).tolist())
    nodes = [helper.make_node("Add", ["x", "y"], ["s"]), helper.make_node("MatMul", ["s", "W"], ["z"])]
    graph = helper.make_graph(nodes, "addmm", [x, y], [z, s], [w])
    return save(graph, directory)


def make_types(directory):
    """One Identity per datatype: in_<DT> [batch, 2] -> out_<DT>."""
    inputs, outputs, nodes = [], [], []
    for name, (_, onnx_type) in DTYPES.items():
        inputs.append(helper.make_tensor_value_info("in_" + name, onnx_type, ["batch", 2]))
        outputs.append(helper.make_tensor_value_info("out_" + name, onnx_type, ["batch", 2]))
        nodes.append(helper.make_node("Identity", ["in_" + name], ["out_" + name]))
    graph = helper.make_graph(nodes, "types", inputs, outputs)
    return save(graph, directory)


def make_fixed(directory):
    """Relu on a fixed [2, 2] input: no batch dimension, so the server must not batch it."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "fixed", [x], [y])
    return save(graph, directory)


def make_dyn(directory):
    """y = x * 3 - 1 with x [batch, n]: requests with different n must never share a batch."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "n"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "n"])
    three = helper.make_tensor("three", TensorProto.FLOAT, [], [3.0])
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    nodes = [helper.make_node("Mul", ["x", "three"], ["t"]), helper.make_node("Sub", ["t", "one"], ["y"])]
    graph = helper.make_graph(nodes, "dyn", [x], [y], [three, one])
    return save(graph, directory)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """kinfer-server as a child process on a free loopback port."""

    def __init__(self, model_dir, *args, env=None, name="model"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.name = name
        cmd = [BINARY, "--model-dir", model_dir, "--host", "127.0.0.1", "--port", str(self.port),
               "--model-name", name, *args]
        self.log_path = os.path.join(os.path.dirname(model_dir.rstrip("/")), f"server-{self.port}.log")
        self.log = open(self.log_path, "wb")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("KINFER_")}
        full_env.update(env or {})
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=full_env)

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kinfer-server exited {self.proc.returncode}: {self.logs()}")
            try:
                if requests.get(self.url + "/v2/health/ready", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError("kinfer-server not ready: " + self.logs())

    def logs(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def infer_url(self):
        return f"{self.url}/v2/models/{self.name}/infer"

    def metric(self, name, labels=""):
        """Sum of the samples of one metric (optionally filtered by a label substring)."""
        text = requests.get(self.url + "/metrics", timeout=5).text
        total, found = 0.0, False
        for line in text.splitlines():
            if line.startswith(name + "{") and labels in line:
                total += float(line.rsplit(" ", 1)[1])
                found = True
        assert found, f"metric {name} {labels} missing"
        return total

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        self.log.close()
        return self.proc.returncode


def sanitizer_report(s):
    """True when s's log holds an ASan/LSan/UBSan report (SANITIZE=1 builds)."""
    logs = s.logs()
    return "Sanitizer" in logs or "runtime error:" in logs


def stop_clean(s):
    """For module-scoped servers: SIGTERM must exit 0 with no sanitizer report."""
    assert s.stop() == 0, s.logs()
    assert not sanitizer_report(s), s.logs()


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    return {
        "addmm": os.path.dirname(make_addmm(str(base / "addmm"))),
        "types": os.path.dirname(make_types(str(base / "types"))),
        "fixed": os.path.dirname(make_fixed(str(base / "fixed"))),
        "dyn": os.path.dirname(make_dyn(str(base / "dyn"))),
    }


@pytest.fixture
def server_factory():
    started = []

    def start(model_dir, *args, env=None, name="model", ready=True):
        s = Server(model_dir, *args, env=env, name=name)
        started.append(s)
        return s.wait_ready() if ready else s

    yield start
    problems = []
    for s in started:
        if s.proc.poll() is None:  # a graceful stop must exit 0 (and, under SANITIZE=1, leak-free)
            try:
                rc = s.stop(timeout=30)
            except subprocess.TimeoutExpired:
                rc = "hung on SIGTERM"
            if rc != 0:
                problems.append(f"port {s.port}: exit {rc}")
        if sanitizer_report(s):
            problems.append(f"port {s.port}: sanitizer report\n{s.logs()[-3000:]}")
    if problems:
        pytest.fail("; ".join(problems))


@pytest.fixture(scope="module")
def addmm_server(models, tmp_path_factory):
    s = Server(models["addmm"], "--max-batch-size", "16").wait_ready()
    yield s
    stop_clean(s)


def ort_run(model_dir, feeds, outputs=None):
    import onnxruntime as ort
    sess = ort.InferenceSession(os.path.join(model_dir, "model.onnx"), providers=["CPUExecutionProvider"])
    names = outputs or [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))
