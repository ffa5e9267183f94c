"""Graph values of sequence-of-map type. kinfer serves exactly one non-tensor type, ZipMap's
seq(map(int64|string, float)); any other sequence type, or a seq-map declared on a value that
computes a tensor, is refused at load with a message naming the value."""
import subprocess

import numpy as np
import pytest
from onnx import TensorProto, helper

from test_ml_errors import save  # the one-node model writer the ML error tests use


def seq_map(name, key, value):
    return helper.make_value_info(
        name, helper.make_sequence_type_proto(
            helper.make_map_type_proto(key, helper.make_tensor_type_proto(value, None))))


def model(tmp_path, node, out):
    """One node over an [N, 2] float input, with out as the graph output."""
    return save(tmp_path, node, [out], in_dims=(None, 2))


def run(kinfer_run, tmp_path, path):
    xp = tmp_path / "x.npy"
    np.save(xp, np.array([[0.25, 0.75], [0.5, 0.5]], np.float32))
    return subprocess.run([kinfer_run, "--out", str(tmp_path), str(path), f"input={xp}"],
                          capture_output=True, text=True, timeout=30)


def zipmap(out="z"):
    return helper.make_node("ZipMap", ["input"], [out], domain="ai.onnx.ml",
                            classlabels_int64s=[3, 7])


def test_declared_seq_map_output_runs(kinfer_run, tmp_path):
    r = run(kinfer_run, tmp_path,
            model(tmp_path, zipmap(), seq_map("z", TensorProto.INT64, TensorProto.FLOAT)))
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "z.npy"), [[0.25, 0.75], [0.5, 0.5]])
    np.testing.assert_array_equal(np.load(tmp_path / "z.keys.npy"), [3, 7])


@pytest.mark.parametrize("key,value", [(TensorProto.INT64, TensorProto.DOUBLE),
                                       (TensorProto.INT32, TensorProto.FLOAT)])
def test_other_seq_map_types_are_unsupported(kinfer_run, tmp_path, key, value):
    r = run(kinfer_run, tmp_path, model(tmp_path, zipmap(), seq_map("z", key, value)))
    assert r.returncode != 0
    assert "value 'z': the only sequence type supported is seq(map(int64|string, float))" in r.stderr


def test_seq_map_declared_on_a_tensor_is_refused(kinfer_run, tmp_path):
    node = helper.make_node("Identity", ["input"], ["z"])
    r = run(kinfer_run, tmp_path,
            model(tmp_path, node, seq_map("z", TensorProto.INT64, TensorProto.FLOAT)))
    assert r.returncode != 0
    assert "output 'z' is declared a sequence of maps but computes a tensor" in r.stderr

