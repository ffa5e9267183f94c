"""Shared by the example model scripts: the test model generators (test/models/gen_models.py) are
imported rather than copied, and every script writes OUTDIR/model.onnx atomically."""
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "test", "models"))

import gen_models  # noqa: E402  (test/models: the engine's test models)


def save(onx, outdir):
    """Checks the model with onnx's checker and writes OUTDIR/model.onnx; returns the path."""
    import onnx
    onnx.checker.check_model(onx)
    os.makedirs(outdir, exist_ok=True)
    path = os.path.join(outdir, "model.onnx")
    with open(path + ".tmp", "wb") as f:
        f.write(onx.SerializeToString())
    os.replace(path + ".tmp", path)
    return path


def usage(doc, argv):
    if len(argv) != 2 or argv[1].startswith("-"):
        sys.exit(doc.strip())
    return argv[1]
