"""--device / KINFER_DEVICE: cpu serves; cuda, in a build without a CUDA backend, must refuse to
start with a precise message and a non-zero exit instead of quietly running on the CPU of a pod
that asked for a GPU."""
import subprocess

import numpy as np
import requests

from conftest import BINARY


def test_device_cpu_serves(models, server_factory):
    s = server_factory(models["addmm"], "--device", "cpu")
    x = np.ones((1, 4), np.float32)
    body = {"inputs": [{"name": n, "shape": [1, 4], "datatype": "FP32", "data": x.ravel().tolist()}
                       for n in ("x", "y")]}
    r = requests.post(s.infer_url(), json=body, timeout=10)
    assert r.status_code == 200, r.text


def run(args, env=None):
    return subprocess.run([BINARY, "--model-dir", "/nonexistent", "--port", "1", *args], capture_output=True,
                          text=True, timeout=30, env={"PATH": "/usr/bin:/bin", **(env or {})})


def test_device_cuda_refused_without_backend():
    for p in (run(["--device", "cuda"]), run([], env={"KINFER_DEVICE": "cuda"})):
        assert p.returncode == 2, (p.returncode, p.stderr)
        assert "kinfer-server: --device cuda: this build has no CUDA backend" in p.stderr, p.stderr
        assert "Sanitizer" not in p.stderr


def test_device_unknown_rejected():
    p = run(["--device", "tpu"])
    assert p.returncode == 2 and '--device "tpu" is not one of cpu, cuda' in p.stderr, p.stderr
