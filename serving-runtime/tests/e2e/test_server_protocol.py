"""Every endpoint and every error path of kinfer-server, in JSON and in the binary extension."""
import json
import struct

import numpy as np
import pytest
import requests

from conftest import DTYPES, ort_run

X = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype=np.float32)
Y = np.array([[0.5, -1, 2, 0], [1, 1, 1, 1]], dtype=np.float32)


def v2_body(x=X, y=Y, **extra):
    body = {"inputs": [
        {"name": "x", "shape": list(x.shape), "datatype": "FP32", "data": x.tolist()},
        {"name": "y", "shape": list(y.shape), "datatype": "FP32", "data": y.flatten().tolist()},
    ]}
    body.update(extra)
    return body


def test_health_and_server_metadata(addmm_server):
    s = addmm_server
    r = requests.get(s.url + "/v2/health/live")
    assert r.status_code == 200 and r.json() == {"live": True}
    r = requests.get(s.url + "/v2/health/ready")
    assert r.status_code == 200 and r.json() == {"ready": True}
    meta = requests.get(s.url + "/v2").json()
    assert meta["name"] == "kinfer" and "binary_tensor_data" in meta["extensions"]


def test_model_metadata_and_ready(addmm_server):
    s = addmm_server
    for path in ["/v2/models/model", "/v2/models/model/versions/1"]:
        m = requests.get(s.url + path).json()
        assert m["name"] == "model" and m["versions"] == ["1"]
        assert m["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]},
                               {"name": "y", "datatype": "FP32", "shape": [-1, 4]}]
        assert [o["name"] for o in m["outputs"]] == ["z", "s"]
    for path in ["/v2/models/model/ready", "/v2/models/model/versions/1/ready"]:
        r = requests.get(s.url + path)
        assert r.status_code == 200 and r.json()["ready"] is True
    r = requests.get(s.url + "/v1/models/model")
    assert r.status_code == 200 and r.json() == {"name": "model", "ready": True}


def test_infer_json_matches_onnxruntime(addmm_server, models):
    s = addmm_server
    r = requests.post(s.infer_url(), json=v2_body(id="req-7", parameters={"custom": "passes"}))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["id"] == "req-7" and out["model_name"] == "model" and out["model_version"] == "1"
    ref = ort_run(models["addmm"], {"x": X, "y": Y})
    got = {o["name"]: o for o in out["outputs"]}
    assert got["z"]["datatype"] == "FP32" and got["z"]["shape"] == [2, 3]
    np.testing.assert_allclose(np.array(got["z"]["data"], np.float32).reshape(2, 3), ref["z"], rtol=1e-6)
    np.testing.assert_array_equal(np.array(got["s"]["data"], np.float32).reshape(2, 4), ref["s"])


def test_infer_versioned_path_and_requested_outputs(addmm_server):
    s = addmm_server
    r = requests.post(s.url + "/v2/models/model/versions/1/infer", json=v2_body(outputs=[{"name": "s"}]))
    assert r.status_code == 200, r.text
    outs = r.json()["outputs"]
    assert [o["name"] for o in outs] == ["s"]
    np.testing.assert_array_equal(np.array(outs[0]["data"], np.float32).reshape(2, 4), X + Y)


def binary_request(inputs, outputs=None, binary_output=None):
    """Triton's binary extension: JSON header, then each input's raw bytes."""
    header = {"inputs": [], "parameters": {}}
    blobs = []
    for name, arr, dt in inputs:
        raw = arr.tobytes() if dt != "BYTES" else b"".join(
            struct.pack("<I", len(v)) + v for v in arr.flatten())
        header["inputs"].append({"name": name, "shape": list(arr.shape), "datatype": dt,
                                 "parameters": {"binary_data_size": len(raw)}})
        blobs.append(raw)
    if outputs is not None:
        header["outputs"] = outputs
    if binary_output is not None:
        header["parameters"]["binary_data_output"] = binary_output
    js = json.dumps(header).encode()
    return js + b"".join(blobs), {"Inference-Header-Content-Length": str(len(js)),
                                   "Content-Type": "application/octet-stream"}


def split_binary_response(r):
    n = int(r.headers["Inference-Header-Content-Length"])
    header = json.loads(r.content[:n])
    blobs, off = {}, n
    for o in header["outputs"]:
        size = o.get("parameters", {}).get("binary_data_size")
        if size is not None:
            blobs[o["name"]] = r.content[off:off + size]
            off += size
    assert off == len(r.content)
    return header, blobs


def test_binary_inputs_and_outputs(addmm_server, models):
    s = addmm_server
    body, headers = binary_request([("x", X, "FP32"), ("y", Y, "FP32")],
                                   outputs=[{"name": "z", "parameters": {"binary_data": True}},
                                            {"name": "s", "parameters": {"binary_data": False}}])
    r = requests.post(s.infer_url(), data=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/octet-stream"
    header, blobs = split_binary_response(r)
    ref = ort_run(models["addmm"], {"x": X, "y": Y})
    z = np.frombuffer(blobs["z"], np.float32).reshape(2, 3)
    np.testing.assert_allclose(z, ref["z"], rtol=1e-6)
    s_out = [o for o in header["outputs"] if o["name"] == "s"][0]
    np.testing.assert_array_equal(np.array(s_out["data"], np.float32).reshape(2, 4), ref["s"])


def test_binary_data_output_parameter(addmm_server, models):
    body, headers = binary_request([("x", X, "FP32"), ("y", Y, "FP32")], binary_output=True)
    r = requests.post(addmm_server.infer_url(), data=body, headers=headers)
    assert r.status_code == 200, r.text
    header, blobs = split_binary_response(r)
    assert set(blobs) == {"z", "s"}
    np.testing.assert_array_equal(np.frombuffer(blobs["s"], np.float32).reshape(2, 4), X + Y)


def random_of(dt, shape, rng):
    np_type = DTYPES[dt][0]
    if dt == "BOOL":
        return rng.integers(0, 2, shape).astype(np.bool_)
    if dt == "BYTES":
        return np.array([f"s{i}-é".encode() for i in range(int(np.prod(shape)))], dtype=np.object_).reshape(shape)
    if dt in ("FP16", "FP32", "FP64"):
        return (rng.standard_normal(shape) * 100).astype(np_type)
    info = np.iinfo(np_type)
    return rng.integers(info.min, info.max, shape, dtype=np_type, endpoint=True)


@pytest.fixture(scope="module")
def types_server(models):
    from conftest import Server, stop_clean
    s = Server(models["types"]).wait_ready()
    yield s
    stop_clean(s)


@pytest.mark.parametrize("binary", [False, True])
def test_every_datatype_round_trips(types_server, models, binary):
    rng = np.random.default_rng(3)
    arrays = {dt: random_of(dt, (3, 2), rng) for dt in DTYPES}
    if binary:
        body, headers = binary_request([("in_" + dt, a, dt) for dt, a in arrays.items()], binary_output=True)
        r = requests.post(types_server.infer_url(), data=body, headers=headers)
        assert r.status_code == 200, r.text
        header, blobs = split_binary_response(r)
    else:
        def to_json(dt, a):
            return [v.decode() for v in a.flatten()] if dt == "BYTES" else a.tolist()
        req = {"inputs": [{"name": "in_" + dt, "shape": [3, 2], "datatype": dt, "data": to_json(dt, a)}
                          for dt, a in arrays.items()]}
        r = requests.post(types_server.infer_url(), json=req)
        assert r.status_code == 200, r.text
        header = r.json()
    feeds = {"in_" + dt: a for dt, a in arrays.items()}
    feeds["in_BYTES"] = np.array([v.decode() for v in arrays["BYTES"].flatten()], dtype=object).reshape(3, 2)
    ref = ort_run(models["types"], feeds)
    for o in header["outputs"]:
        dt = o["name"][4:]
        assert o["datatype"] == dt and o["shape"] == [3, 2]
        want = ref[o["name"]]
        if binary:
            raw = blobs[o["name"]]
            if dt == "BYTES":
                got, off = [], 0
                while off < len(raw):
                    (n,) = struct.unpack_from("<I", raw, off)
                    got.append(raw[off + 4:off + 4 + n].decode())
                    off += 4 + n
                assert got == list(want.flatten())
            else:
                np.testing.assert_array_equal(np.frombuffer(raw, DTYPES[dt][0]).reshape(3, 2), want)
        elif dt == "BYTES":
            assert o["data"] == list(want.flatten())
        else:
            np.testing.assert_array_equal(np.array(o["data"], dtype=DTYPES[dt][0]).reshape(3, 2), want)


def test_v1_predict_rows_and_named_inputs(addmm_server, models, server_factory):
    r = requests.post(addmm_server.url + "/v1/models/model:predict",
                      json={"instances": [{"x": X[i].tolist(), "y": Y[i].tolist()} for i in range(2)]})
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    ref = ort_run(models["addmm"], {"x": X, "y": Y})
    np.testing.assert_allclose(np.array([p["z"] for p in preds], np.float32), ref["z"], rtol=1e-6)
    np.testing.assert_array_equal(np.array([p["s"] for p in preds], np.float32), ref["s"])
    # a single-input model takes bare rows and answers bare rows
    fixed = server_factory(models["fixed"])
    r = requests.post(fixed.url + "/v1/models/model:predict", json={"instances": [[-1, 2], [3, -4]]})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [[0.0, 2.0], [3.0, 0.0]]}


ERRORS = [
    # (description, body or raw bytes, headers, status, message fragment)
    ("malformed json", b'{"inputs": [', {}, 400, "malformed JSON"),
    ("not an object", b"[1,2]", {}, 400, "JSON object"),
    ("no inputs", {"outputs": []}, {}, 400, "no \"inputs\""),
    ("unknown input", {"inputs": [{"name": "q", "shape": [1], "datatype": "FP32", "data": [1]}]}, {}, 400,
     "unknown input \"q\""),
    ("missing input", {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}, {},
     400, "missing input \"y\""),
    ("wrong dtype", {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "INT32", "data": [1, 2, 3, 4]},
                                {"name": "y", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}, {},
     400, "model expects FP32"),
    ("unknown dtype", {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FLOAT", "data": [1, 2, 3, 4]}]},
     {}, 400, "unknown datatype"),
    ("wrong dim", {"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP32", "data": [1, 2, 3, 4, 5]},
                              {"name": "y", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}, {},
     400, "dimension 1 is 5"),
    ("wrong rank", {"inputs": [{"name": "x", "shape": [4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}, {}, 400,
     "rank 1"),
    ("count mismatch", {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3]},
                                   {"name": "y", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}, {},
     400, "\"data\" has 3"),
    ("string in FP32", {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, "a", 3, 4]},
                                   {"name": "y", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}, {},
     400, "element 1"),
    ("unknown output", dict(v2_body(), outputs=[{"name": "nope"}]), {}, 400, "unknown output"),
    ("batch mismatch", v2_body(y=Y[:1]), {}, 400, "disagree on the batch dimension"),
    ("header past body", b'{"inputs": []}', {"Inference-Header-Content-Length": "999"}, 400, "exceeds the body"),
    ("bad header value", b'{"inputs": []}', {"Inference-Header-Content-Length": "x1"}, 400, "not a byte count"),
    ("binary without header", {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                           "parameters": {"binary_data_size": 16}}]}, {}, 400,
     "without the Inference-Header-Content-Length"),
]


@pytest.mark.parametrize("desc,body,headers,status,fragment", ERRORS, ids=[e[0] for e in ERRORS])
def test_error_paths(addmm_server, desc, body, headers, status, fragment):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = requests.post(addmm_server.infer_url(), data=data, headers=headers)
    assert r.status_code == status, r.text
    assert fragment in r.json()["error"]


def test_binary_size_errors(addmm_server):
    body, headers = binary_request([("x", X, "FP32"), ("y", Y, "FP32")])
    r = requests.post(addmm_server.infer_url(), data=body[:-4], headers=headers)
    assert r.status_code == 400 and "runs past the body" in r.json()["error"]
    r = requests.post(addmm_server.infer_url(), data=body + b"junk", headers=headers)
    assert r.status_code == 400 and "follow the header" in r.json()["error"]
    x3 = np.zeros((3, 4), np.float32)
    body, headers = binary_request([("x", X, "FP32"), ("y", x3, "FP32")])
    r = requests.post(addmm_server.infer_url(), data=body, headers=headers)
    assert r.status_code == 400 and "disagree" in r.json()["error"]


def test_not_found_and_method_errors(addmm_server):
    s = addmm_server
    assert requests.get(s.url + "/v2/models/other").status_code == 404
    r = requests.post(s.url + "/v2/models/other/infer", json=v2_body())
    assert r.status_code == 404 and "not found" in r.json()["error"]
    r = requests.post(s.url + "/v2/models/model/versions/9/infer", json=v2_body())
    assert r.status_code == 404 and "no version" in r.json()["error"]
    assert requests.get(s.url + "/nope").status_code == 404
    assert requests.get(s.url + "/v1/models/other").status_code == 404
    assert requests.get(s.url + "/v2/models/model/infer").status_code == 405
    assert requests.post(s.url + "/v2/health/live").status_code == 405


def test_body_over_limit_is_413(models, server_factory):
    s = server_factory(models["addmm"], "--max-body-bytes", "4096")
    big = {"inputs": [{"name": "x", "shape": [300, 4], "datatype": "FP32", "data": [0.5] * 1200}]}
    r = requests.post(s.infer_url(), json=big)
    assert r.status_code == 413 and "exceeds the limit of 4096" in r.json()["error"]
    # the server is fine afterwards
    assert requests.post(s.infer_url(), json=v2_body()).status_code == 200


def test_v1_errors(addmm_server, models, server_factory):
    u = addmm_server.url + "/v1/models/model:predict"
    r = requests.post(u, json={"rows": []})
    assert r.status_code == 400 and "instances" in r.json()["error"]
    r = requests.post(u, json={"instances": [[1, 2, 3, 4]]})
    assert r.status_code == 400 and "2 inputs" in r.json()["error"]
    r = requests.post(u, json={"instances": [{"x": [1, 2, 3, 4]}]})
    assert r.status_code == 400 and "no input \"y\"" in r.json()["error"]
    fixed = server_factory(models["fixed"])
    r = requests.post(fixed.url + "/v1/models/model:predict", json={"instances": [[1, 2], [3]]})
    assert r.status_code == 400 and "different shapes" in r.json()["error"]


def test_metrics_count_success_and_failure(models, server_factory):
    s = server_factory(models["addmm"])
    for _ in range(3):
        assert requests.post(s.infer_url(), json=v2_body()).status_code == 200
    assert requests.post(s.infer_url(), data=b"{").status_code == 400
    assert s.metric("nv_inference_request_success") == 3
    assert s.metric("nv_inference_request_failure", 'reason="OTHER"') == 1
    assert s.metric("nv_inference_exec_count") == 3
    assert s.metric("kinfer_request_duration_seconds_count") == 4
    assert s.metric("kinfer_batch_size_count") == 3
    assert s.metric("kinfer_model_ready") == 1
    assert s.metric("kinfer_model_load_seconds") >= 0
    for name in ["kinfer_queue_duration_seconds_bucket", "kinfer_compute_duration_seconds_sum",
                 "kinfer_queue_depth", "kinfer_inflight_requests"]:
        s.metric(name)
