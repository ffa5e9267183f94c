"""Node outputs: a required output left unnamed is refused at load with the node and index named,
never handed to a kernel that writes it."""
import subprocess

import numpy as np
from onnx import TensorProto, helper


def run(kinfer_run, tmp_path, path):
    xp = tmp_path / "x.npy"
    np.save(xp, np.array([[0.25, 0.75]], np.float32))
    return subprocess.run([kinfer_run, "--out", str(tmp_path), str(path), f"input={xp}"],
                          capture_output=True, text=True, timeout=30)



def test_empty_required_output_is_refused(kinfer_run, tmp_path):
    # fuzz-ml found an Add whose only output was unnamed: the kernel then wrote through NULL.
    node = helper.make_node("Add", ["input", "input"], [""])
    g = helper.make_graph([node], "m",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 2])],
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 15)])
    m.ir_version = 8
    p = tmp_path / "model.onnx"
    p.write_bytes(m.SerializeToString())
    r = run(kinfer_run, tmp_path, p)
    assert r.returncode != 0
    assert "required output 0 is empty" in r.stderr
