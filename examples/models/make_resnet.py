"""Makes the GPU example's model (examples/resnet-gpu.yaml): torchvision's ResNet-18 with random
weights (nothing is downloaded; the answers are meaningless, the shapes and the cost are real),
exported to ONNX (opset 13, dynamic batch): input "input" float[N,3,224,224]; output "logits"
float[N,1000]. It is the engine tests' "resnet18" model (test/models/gen_models.py), imported.
Also writes OUTDIR/request.json: a V2 inference request with one random 3x224x224 image.

    python examples/models/make_resnet.py OUTDIR      -> OUTDIR/model.onnx, OUTDIR/request.json

Run it with the venv of scripts/pyenv.sh: "$(scripts/pyenv.sh)/bin/python" examples/models/make_resnet.py OUT
"""
import json
import os
import sys

import numpy as np
from _common import gen_models, save, usage

if __name__ == "__main__":
    outdir = usage(__doc__, sys.argv)
    onx, _inputs = gen_models.build_resnet18()
    path = save(onx, outdir)
    img = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    req = {"inputs": [{"name": "input", "shape": list(img.shape), "datatype": "FP32",
                       "data": [round(float(v), 4) for v in img.ravel()]}]}
    with open(os.path.join(outdir, "request.json"), "w") as f:
        json.dump(req, f)
    print(path)
