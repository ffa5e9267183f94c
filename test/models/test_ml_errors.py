"""Malformed ai.onnx.ml models and inputs must be refused with a precise error, never a crash or a
hang: kinfer-run exits 1 and names the problem. The models are built here with onnx.helper (no
onnxruntime involved: several of them are ones onnxruntime itself would reject or loop on)."""
import os
import subprocess

import numpy as np
import pytest
from onnx import TensorProto, helper

F = 4


def tree_model(tmp_path, in_dims=(None, F), **over):
    """A valid 1-tree regressor (root 0 -> leaves 1, 2) with attributes overridden by `over`."""
    attrs = dict(nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[2, 0, 0],
                 nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"], nodes_values=[0.5, 0.0, 0.0],
                 nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0],
                 target_treeids=[0, 0], target_nodeids=[1, 2], target_ids=[0, 0],
                 target_weights=[1.0, -1.0], n_targets=1)
    attrs.update(over)
    node = helper.make_node("TreeEnsembleRegressor", ["input"], ["y"], domain="ai.onnx.ml",
                            **{k: v for k, v in attrs.items() if v is not None})
    return save(tmp_path, node, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                in_dims=in_dims)


def save(tmp_path, node, outputs, extra_inputs=(), initializers=(), in_dims=(None, F)):
    g = helper.make_graph([node], "bad",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                         list(in_dims))]
                          + list(extra_inputs), outputs, initializer=list(initializers))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 15),
                                            helper.make_opsetid("ai.onnx.ml", 1)])
    m.ir_version = 8
    p = tmp_path / "model.onnx"
    p.write_bytes(m.SerializeToString())
    return p


def run(kinfer_run, tmp_path, model, x=None):
    x = np.zeros((2, F), np.float32) if x is None else x
    xp = tmp_path / "x.npy"
    np.save(xp, x)
    return subprocess.run([kinfer_run, "--out", str(tmp_path), str(model), f"input={xp}"],
                          capture_output=True, text=True, timeout=30)


def test_valid_tree_model_runs(kinfer_run, tmp_path):
    # The baseline the error cases below are mutations of: it must run and give +1/-1.
    x = np.array([[0, 0, 0.2, 0], [0, 0, 0.9, 0]], np.float32)
    r = run(kinfer_run, tmp_path, tree_model(tmp_path), x)
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), [[1.0], [-1.0]])


@pytest.mark.parametrize("over,msg", [
    # Node 1 is a branch whose true child is the root: a cycle that would never reach a leaf.
    (dict(nodes_modes=["BRANCH_LEQ", "BRANCH_LEQ", "LEAF"], nodes_truenodeids=[1, 0, 0],
          nodes_falsenodeids=[2, 2, 0]), "cycle"),
    (dict(nodes_truenodeids=[7, 0, 0]), "missing or itself"),
    (dict(nodes_truenodeids=[0, 0, 0]), "missing or itself"),
    (dict(nodes_nodeids=[0, 1, 1]), "defined twice"),
    (dict(nodes_values=[0.5, 0.0]), "differ in length"),
    (dict(target_ids=[0, 3]), "outside [0, 1)"),
    (dict(target_nodeids=[1, 9]), "missing node 9"),
    (dict(nodes_modes=["BRANCH_SOMETIMES", "LEAF", "LEAF"]), "unknown node mode"),
    (dict(post_transform="SQUASH"), "unknown post_transform"),
    (dict(aggregate_function="MEDIAN"), "unknown aggregate_function"),
    (dict(nodes_treeids=None, nodes_nodeids=None, nodes_featureids=None, nodes_modes=None,
          nodes_values=None, nodes_truenodeids=None, nodes_falsenodeids=None), "no nodes"),
])
def test_malformed_tree_is_refused_at_load(kinfer_run, tmp_path, over, msg):
    r = run(kinfer_run, tmp_path, tree_model(tmp_path, **over))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "invalid model" in r.stderr and msg in r.stderr, r.stderr
    assert "TreeEnsembleRegressor" in r.stderr, r.stderr


def test_too_few_features_is_a_shape_error(kinfer_run, tmp_path):
    # The tree reads feature 2; an input with 2 columns must not be read out of bounds. The
    # graph leaves the width open, so it is the kernel's own check that must catch it.
    model = tree_model(tmp_path, in_dims=(None, None))
    r = run(kinfer_run, tmp_path, model, np.zeros((3, 2), np.float32))
    assert r.returncode == 1
    assert "shape mismatch" in r.stderr and "2 features but the trees read feature 2" in r.stderr, \
        r.stderr


def test_tree_rejects_rank3_input(kinfer_run, tmp_path):
    node = helper.make_node("TreeEnsembleRegressor", ["x3"], ["y"], domain="ai.onnx.ml",
                            nodes_treeids=[0], nodes_nodeids=[0], nodes_featureids=[0],
                            nodes_modes=["LEAF"], nodes_values=[0.0], nodes_truenodeids=[0],
                            nodes_falsenodeids=[0], target_treeids=[0], target_nodeids=[0],
                            target_ids=[0], target_weights=[1.0], n_targets=1)
    g = helper.make_graph([node], "bad", [helper.make_tensor_value_info("x3", TensorProto.FLOAT,
                                                                        None)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 15),
                                            helper.make_opsetid("ai.onnx.ml", 1)])
    m.ir_version = 8
    p = tmp_path / "m.onnx"
    p.write_bytes(m.SerializeToString())
    xp = tmp_path / "x.npy"
    np.save(xp, np.zeros((2, 2, 2), np.float32))
    r = subprocess.run([kinfer_run, str(p), f"x3={xp}"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "rank 1 or 2" in r.stderr, r.stderr


def test_linear_classifier_bad_coefficients(kinfer_run, tmp_path):
    node = helper.make_node("LinearClassifier", ["input"], ["label", "scores"], domain="ai.onnx.ml",
                            coefficients=[1.0] * 7, intercepts=[0.0, 0.0],
                            classlabels_ints=[0, 1])
    model = save(tmp_path, node, [helper.make_tensor_value_info("label", TensorProto.INT64, None),
                                  helper.make_tensor_value_info("scores", TensorProto.FLOAT, None)])
    r = run(kinfer_run, tmp_path, model)
    assert r.returncode == 1
    assert "invalid model" in r.stderr and "7 coefficients for 2" in r.stderr, r.stderr


def test_linear_classifier_feature_count_mismatch(kinfer_run, tmp_path):
    node = helper.make_node("LinearClassifier", ["input"], ["label", "scores"], domain="ai.onnx.ml",
                            coefficients=[1.0] * 6, intercepts=[0.0, 0.0],
                            classlabels_ints=[0, 1])
    model = save(tmp_path, node, [helper.make_tensor_value_info("label", TensorProto.INT64, None),
                                  helper.make_tensor_value_info("scores", TensorProto.FLOAT, None)])
    r = run(kinfer_run, tmp_path, model)  # F = 4 features, the coefficients hold 3 per class
    assert r.returncode == 1
    assert "4 features" in r.stderr, r.stderr


def test_array_feature_extractor_index_out_of_range(kinfer_run, tmp_path):
    idx = helper.make_tensor("idx", TensorProto.INT64, [2], [1, 9])
    node = helper.make_node("ArrayFeatureExtractor", ["input", "idx"], ["y"], domain="ai.onnx.ml")
    model = save(tmp_path, node, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                 initializers=[idx])
    r = run(kinfer_run, tmp_path, model)
    assert r.returncode == 1
    assert "index 9 outside [0, 4)" in r.stderr, r.stderr


def test_scaler_wrong_length(kinfer_run, tmp_path):
    node = helper.make_node("Scaler", ["input"], ["y"], domain="ai.onnx.ml", offset=[0.0] * 3,
                            scale=[1.0] * 3)
    model = save(tmp_path, node, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    r = run(kinfer_run, tmp_path, model)
    assert r.returncode == 1
    assert "offset has 3 values but X has 4 features" in r.stderr, r.stderr


def test_normalizer_unknown_norm(kinfer_run, tmp_path):
    node = helper.make_node("Normalizer", ["input"], ["y"], domain="ai.onnx.ml", norm="L3")
    model = save(tmp_path, node, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    r = run(kinfer_run, tmp_path, model)
    assert r.returncode == 1
    assert "unknown norm 'L3'" in r.stderr, r.stderr


def test_classifier_needs_labels(kinfer_run, tmp_path):
    node = helper.make_node("TreeEnsembleClassifier", ["input"], ["label", "p"], domain="ai.onnx.ml",
                            nodes_treeids=[0], nodes_nodeids=[0], nodes_featureids=[0],
                            nodes_modes=["LEAF"], nodes_values=[0.0], nodes_truenodeids=[0],
                            nodes_falsenodeids=[0], class_treeids=[0], class_nodeids=[0],
                            class_ids=[0], class_weights=[1.0])
    model = save(tmp_path, node, [helper.make_tensor_value_info("label", TensorProto.INT64, None),
                                  helper.make_tensor_value_info("p", TensorProto.FLOAT, None)])
    r = run(kinfer_run, tmp_path, model)
    assert r.returncode == 1
    assert "classlabels_int64s" in r.stderr, r.stderr


def test_one_hot_encoder_float_nan_and_inf_match_no_category(kinfer_run, tmp_path):
    # Found by fuzz-ml: casting NaN to int64 was undefined behaviour. NaN, +-inf and huge values
    # now match no category (all-zero row); ordinary floats are truncated to integers.
    node = helper.make_node("OneHotEncoder", ["input"], ["y"], domain="ai.onnx.ml",
                            cats_int64s=[0, 1, 2, 3], zeros=1)
    model = save(tmp_path, node, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    x = np.array([[np.nan, np.inf, -np.inf, 1e30]], np.float32).reshape(1, F)
    x2 = np.array([[0.0, 1.7, 3.0, 2.2]], np.float32)
    r = run(kinfer_run, tmp_path, model, np.concatenate([x, x2]))
    assert r.returncode == 0, r.stderr
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (2, F, 4)
    np.testing.assert_array_equal(y[0], np.zeros((F, 4), np.float32))
    np.testing.assert_array_equal(y[1].argmax(axis=1), [0, 1, 3, 2])
    np.testing.assert_array_equal(y[1].sum(axis=1), [1, 1, 1, 1])
