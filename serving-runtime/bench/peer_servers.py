"""The peers of `make bench-server`, each serving one ONNX model with onnxruntime over the Open
Inference Protocol (V2 REST), run from the bench venv (serving-runtime/bench/requirements.txt):

    peer_servers.py kserve   MODEL.onnx PORT THREADS      KServe's Python model server
    peer_servers.py mlserver MODEL.onnx PORT THREADS DIR  MLServer with adaptive batching

MLServer has no ONNX runtime package, so both use the same few lines of onnxruntime glue.
"""
import json
import os
import sys

import numpy as np
import onnxruntime as ort


def session(path, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


V2_TYPES = {"float32": "FP32", "float64": "FP64", "int64": "INT64", "int32": "INT32", "bool": "BOOL",
            "uint8": "UINT8", "object": "BYTES"}


def run_kserve(path, port, threads):
    import kserve
    from kserve import InferOutput, InferResponse

    class OnnxModel(kserve.Model):
        def __init__(self, name):
            super().__init__(name)
            self.sess = session(path, threads)
            self.names = [o.name for o in self.sess.get_outputs()]
            self.ready = True

        def predict(self, payload, headers=None, response_headers=None):
            feeds = {i.name: i.as_numpy() for i in payload.inputs}
            outs = []
            for name, arr in zip(self.names, self.sess.run(self.names, feeds)):
                o = InferOutput(name=name, shape=list(arr.shape), datatype=V2_TYPES[arr.dtype.name])
                o.set_data_from_numpy(arr, binary_data=False)
                outs.append(o)
            return InferResponse(model_name=self.name, infer_outputs=outs, response_id=payload.id or "0")

    kserve.ModelServer(http_port=port, enable_grpc=False, workers=1,
                       enable_latency_logging=False).start([OnnxModel("model")])


MLSERVER_RUNTIME = '''
import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceResponse


class OnnxRuntime(MLModel):
    async def load(self):
        p = self.settings.parameters
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(p.extra["threads"])
        so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(p.uri, so, providers=["CPUExecutionProvider"])
        self.names = [o.name for o in self.sess.get_outputs()]
        return True

    async def predict(self, payload):
        feeds = {i.name: NumpyCodec.decode_input(i) for i in payload.inputs}
        outs = self.sess.run(self.names, feeds)
        return InferenceResponse(model_name=self.name, id=payload.id,
                                 outputs=[NumpyCodec.encode_output(n, o) for n, o in zip(self.names, outs)])
'''


def run_mlserver(path, port, threads, workdir):
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "onnx_runtime.py"), "w") as f:
        f.write(MLSERVER_RUNTIME)
    with open(os.path.join(workdir, "settings.json"), "w") as f:
        json.dump({"http_port": port, "grpc_port": port + 1, "metrics_port": port + 2, "parallel_workers": 0,
                   "debug": False, "host": "127.0.0.1"}, f)
    with open(os.path.join(workdir, "model-settings.json"), "w") as f:
        json.dump({"name": "model", "implementation": "onnx_runtime.OnnxRuntime",
                   "max_batch_size": 32, "max_batch_time": 0.001,  # adaptive batching on
                   "parameters": {"uri": path, "extra": {"threads": threads}}}, f)
    os.chdir(workdir)
    sys.path.insert(0, workdir)
    from mlserver.cli.main import main
    sys.argv = ["mlserver", "start", workdir]
    main()


if __name__ == "__main__":
    kind, path, port, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    np.set_printoptions(threshold=10)
    if kind == "kserve":
        run_kserve(path, port, threads)
    elif kind == "mlserver":
        run_mlserver(path, port, threads, sys.argv[5])
    else:
        sys.exit(f"unknown peer {kind}")
