"""ONNX's own conformance data for the ai.onnx.ml domain (onnx/backend/test/data/node/
test_ai_onnx_ml_*, shipped in the onnx wheel): each case must PASS in kinfer-onnx-check, the tool
that runs the ONNX node suite (serving-runtime/src/check)."""
import glob
import os
import subprocess

import onnx
import pytest

DATA = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "node")
CASES = sorted(os.path.basename(d) for d in glob.glob(os.path.join(DATA, "test_ai_onnx_ml_*")))


def test_the_onnx_wheel_ships_ml_cases():
    assert len(CASES) >= 8, CASES


@pytest.mark.parametrize("case", CASES)
def test_onnx_ml_node_case(case):
    tool = os.environ.get("KINFER_ONNX_CHECK", os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "build",
        "bin", "kinfer-onnx-check"))
    r = subprocess.run([tool, os.path.join(DATA, case) + "/"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and f"PASS {case}" in r.stdout, r.stdout + r.stderr
