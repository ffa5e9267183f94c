"""Models the node-e2e suite makes with onnx.helper (opset 17):
  slow_model  input x float[N,1] -> y float[N,1]; x is broadcast to [N,64,256,256] and goes
              through four 3x3 convolutions: about 19 GFLOP a row, so loading and warming up
              (one row) takes seconds on a pod limited to a quarter of a CPU, and so does each request.
  big_model   input x float[N,1024] -> y float[N,32768] through one MatMul whose weight is
              128 MiB: more than a 64Mi memory limit can hold."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _save(graph, path):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, path)


def slow_model(path, channels=64, side=256, layers=4):
    rng = np.random.default_rng(7)
    inits = [numpy_helper.from_array(np.array([1, channels, side, side], dtype=np.int64), "shape"),
             numpy_helper.from_array(np.ones((1, channels, side, side), dtype=np.float32), "ones")]
    nodes = [helper.make_node("Reshape", ["x", "four_d"], ["x4"]),
             helper.make_node("Mul", ["x4", "ones"], ["h0"])]
    inits.append(numpy_helper.from_array(np.array([-1, 1, 1, 1], dtype=np.int64), "four_d"))
    for i in range(layers):
        w = (rng.standard_normal((channels, channels, 3, 3)) * (1.0 / (3 * channels))).astype(np.float32)
        inits.append(numpy_helper.from_array(w, "w%d" % i))
        nodes.append(helper.make_node("Conv", ["h%d" % i, "w%d" % i], ["h%d" % (i + 1)], pads=[1, 1, 1, 1]))
    nodes.append(helper.make_node("ReduceMean", ["h%d" % layers], ["y4"], axes=[1, 2, 3], keepdims=0))
    nodes.append(helper.make_node("Unsqueeze", ["y4", "one_axis"], ["y"]))
    inits.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "one_axis"))
    inits = [t for t in inits if t.name != "shape"]
    g = helper.make_graph(nodes, "slow", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])], inits)
    _save(g, path)


def big_model(path, k=1024, n=32768):
    w = np.full((k, n), 0.001, dtype=np.float32)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "big",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", k])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", n])],
                          [numpy_helper.from_array(w, "w")])
    _save(g, path)
