"""End-to-end: every generated model runs through kinfer (build/bin/kinfer-run) on the same random
inputs as onnxruntime, at batch 1 and a larger batch, and the outputs must match.

Tolerances: float outputs of the scikit-learn models (probabilities, scores, regressions) within
rtol 1e-4 / atol 1e-5; labels (int64 or string) exactly. Deep float32 networks accumulate rounding
differently in every GEMM/conv implementation, so ResNet/MobileNet logits and MiniLM states are
checked within rtol 1e-3 and an atol of 1e-4 of the output's largest magnitude.
"""
import glob
import os
import subprocess

import numpy as np
import pytest

from gen_models import MODELS

DEEP = ["resnet18", "mobilenet_v2", "resnet50", "minilm"]
# scikit-learn exports and the hand-built ai.onnx.ml graphs (gen_models.SYNTH).
ML = [m for m in MODELS if m not in DEEP]


def run_kinfer(kinfer_run, model_dir, bdir, outdir, threads=2):
    args = [kinfer_run, "--threads", str(threads), "--out", str(outdir),
            os.path.join(model_dir, "model.onnx")]
    for f in sorted(glob.glob(os.path.join(bdir, "in.*.npy"))):
        args.append(f"{os.path.basename(f)[3:-4]}={f}")
    return subprocess.run(args, capture_output=True, text=True, timeout=600)


def compare(name, ref, got, deep):
    assert got.shape == ref.shape, f"{name}: shape {got.shape} != reference {ref.shape}"
    if ref.dtype.kind in "iubU":
        assert got.dtype.kind == ref.dtype.kind, f"{name}: dtype {got.dtype} != {ref.dtype}"
        bad = np.flatnonzero(got.reshape(-1) != ref.reshape(-1))
        assert bad.size == 0, f"{name}: {bad.size} of {ref.size} differ, first at {bad[:5]}: " \
                              f"{got.reshape(-1)[bad[:5]]} vs {ref.reshape(-1)[bad[:5]]}"
        return
    assert got.dtype == ref.dtype, f"{name}: dtype {got.dtype} != {ref.dtype}"
    if deep:
        rtol, atol = 1e-3, 1e-4 * max(1.0, float(np.max(np.abs(ref))))
    else:
        rtol, atol = 1e-4, 1e-5
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize("model", ML + DEEP)
def test_model_matches_onnxruntime(model, models_dir, kinfer_run, tmp_path):
    mdir = os.path.join(models_dir, model)
    bdirs = sorted(glob.glob(os.path.join(mdir, "b*")))
    assert len(bdirs) >= 2, f"{model}: expected at least two reference batches, found {bdirs}"
    for bdir in bdirs:
        out = tmp_path / os.path.basename(bdir)
        out.mkdir()
        r = run_kinfer(kinfer_run, mdir, bdir, out)
        assert r.returncode == 0, f"{model} {os.path.basename(bdir)}: kinfer-run failed:\n{r.stderr}"
        refs = sorted(glob.glob(os.path.join(bdir, "ref.*.npy")))
        assert refs
        for ref_path in refs:
            oname = os.path.basename(ref_path)[4:]
            got_path = out / oname
            assert got_path.exists(), f"{model}: kinfer wrote no {oname} (has {os.listdir(out)})"
            compare(f"{model}/{os.path.basename(bdir)}/{oname}", np.load(ref_path),
                    np.load(got_path), model in DEEP)


def test_minilm_embeddings_are_unit_norm(models_dir, kinfer_run, tmp_path):
    # The real weights, mean pooling and Normalize: every sentence embedding has norm 1.
    mdir = os.path.join(models_dir, "minilm")
    r = run_kinfer(kinfer_run, mdir, os.path.join(mdir, "b4"), tmp_path)
    assert r.returncode == 0, r.stderr
    emb = np.load(tmp_path / "sentence_embedding.npy")
    assert emb.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)


def test_wrong_dtype_is_a_precise_error(models_dir, kinfer_run, tmp_path):
    mdir = os.path.join(models_dir, "mlp")
    bad = tmp_path / "x.npy"
    np.save(bad, np.zeros((2, 32), dtype=np.int64))
    r = subprocess.run([kinfer_run, os.path.join(mdir, "model.onnx"), f"input={bad}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "datatype mismatch" in r.stderr and "input" in r.stderr, r.stderr


def test_wrong_shape_is_a_precise_error(models_dir, kinfer_run, tmp_path):
    mdir = os.path.join(models_dir, "rf_cls_nozipmap")
    bad = tmp_path / "x.npy"
    np.save(bad, np.zeros((2, 15), dtype=np.float32))  # the model takes 16 features
    r = subprocess.run([kinfer_run, os.path.join(mdir, "model.onnx"), f"input={bad}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stdout
    assert "shape mismatch" in r.stderr and "input" in r.stderr, r.stderr


@pytest.mark.parametrize("model", ["rf_cls_zipmap", "linear_cls"])
def test_zipmap_kernel_with_untyped_output(model, models_dir, kinfer_run, tmp_path):
    """ZipMap's values and keys, on a copy of the model whose sequence-of-maps output carries no
    declared type (so that the kernel's own output description is what the engine uses). The
    unmodified exports are covered by test_model_matches_onnxruntime."""
    import onnx
    mdir = os.path.join(models_dir, model)
    m = onnx.load(os.path.join(mdir, "model.onnx"))
    stripped = 0
    for o in m.graph.output:
        if o.type.HasField("sequence_type"):
            o.ClearField("type")
            stripped += 1
    assert stripped == 1
    onnx.save(m, str(tmp_path / "model.onnx"))
    bdir = os.path.join(mdir, "b32" if os.path.isdir(os.path.join(mdir, "b32")) else "b64")
    r = run_kinfer(kinfer_run, str(tmp_path), bdir, tmp_path)
    assert r.returncode == 0, r.stderr
    for name in ("output_probability", "output_probability.keys", "output_label"):
        compare(f"{model}/{name}", np.load(os.path.join(bdir, f"ref.{name}.npy")),
                np.load(tmp_path / f"{name}.npy"), False)
