"""Makes the demo model: a scikit-learn logistic regression on the iris data set, exported to ONNX
with skl2onnx (input "input" float[N,4]; outputs "label" int64[N] and "probabilities" float[N,3],
ZipMap off so the outputs are plain tensors that the V2 protocol carries).

    python examples/models/make_iris.py OUTDIR      -> OUTDIR/model.onnx
"""
import os
import sys

from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


def main(outdir: str) -> None:
    x, y = load_iris(return_X_y=True)
    x = x.astype("float32")
    clf = LogisticRegression(max_iter=500).fit(x, y)
    onx = to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}},
                  target_opset={"": 15, "ai.onnx.ml": 3}, final_types=None)
    onx.graph.input[0].name = "input"
    for node in onx.graph.node:
        node.input[:] = ["input" if i == "X" else i for i in node.input]
    os.makedirs(outdir, exist_ok=True)
    path = os.path.join(outdir, "model.onnx")
    with open(path + ".tmp", "wb") as f:
        f.write(onx.SerializeToString())
    os.replace(path + ".tmp", path)
    print(path)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_iris.py OUTDIR")
    main(sys.argv[1])
