"""Makes the KEDA example's model (examples/mlp-keda-rps.yaml): a small multi-layer perceptron
(StandardScaler + MLPClassifier 32 -> 128 -> 64 -> 4) from scikit-learn, exported to ONNX with ZipMap
off: input "input" float[N,32]; outputs "label" int64[N] and "probabilities" float[N,4]. It is the
engine tests' "mlp" model (test/models/gen_models.py), imported, not copied.

    python examples/models/make_mlp.py OUTDIR      -> OUTDIR/model.onnx

Run it with the venv of scripts/pyenv.sh: "$(scripts/pyenv.sh)/bin/python" examples/models/make_mlp.py OUT
"""
import sys

from _common import gen_models, save, usage

if __name__ == "__main__":
    onx, _inputs = gen_models.build_mlp()
    print(save(onx, usage(__doc__, sys.argv)))
