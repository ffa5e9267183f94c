"""Makes the fraud example's model (examples/fraud-sklearn-s3.yaml): a scikit-learn gradient-boosted
tree ensemble trained on a synthetic, imbalanced card-transaction set (30 features, about 3% fraud),
exported to ONNX with skl2onnx, ZipMap off so that the outputs are plain tensors:
input "input" float[N,30]; outputs "label" int64[N] (1 = fraud) and "probabilities" float[N,2].

    python examples/models/make_fraud.py OUTDIR      -> OUTDIR/model.onnx

Run it with the venv of scripts/pyenv.sh: "$(scripts/pyenv.sh)/bin/python" examples/models/make_fraud.py OUT
"""
import sys

import numpy as np
from _common import gen_models, save, usage

N_FEATURES = 30


def build():
    from sklearn.datasets import make_classification
    from sklearn.ensemble import GradientBoostingClassifier
    x, y = make_classification(n_samples=4000, n_features=N_FEATURES, n_informative=10, n_redundant=6,
                               weights=[0.97, 0.03], flip_y=0.005, random_state=gen_models.SEED)
    clf = GradientBoostingClassifier(n_estimators=60, max_depth=4, learning_rate=0.1,
                                     random_state=gen_models.SEED)
    clf.fit(x.astype(np.float32), y)
    # gen_models' exporter: input named "input", [None, 30], ONNX opset 15, ai.onnx.ml 3.
    return gen_models._skl_onnx(clf, N_FEATURES, zipmap=False)


if __name__ == "__main__":
    print(save(build(), usage(__doc__, sys.argv)))
