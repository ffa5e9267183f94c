"""The real clients, unmodified: tritonclient[http] and kserve's InferenceRESTClient (V2, V1)."""
import asyncio

import numpy as np
import pytest

from conftest import DTYPES, ort_run

rng = np.random.default_rng(11)
X = rng.standard_normal((5, 4)).astype(np.float32)
Y = rng.standard_normal((5, 4)).astype(np.float32)


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_infer_matches_onnxruntime(addmm_server, models, binary):
    import tritonclient.http as httpclient
    c = httpclient.InferenceServerClient(url=f"127.0.0.1:{addmm_server.port}")
    assert c.is_server_live() and c.is_server_ready() and c.is_model_ready("model")
    assert c.get_model_metadata("model")["inputs"][0]["name"] == "x"
    assert "binary_tensor_data" in c.get_server_metadata()["extensions"]
    inputs = [httpclient.InferInput("x", list(X.shape), "FP32"), httpclient.InferInput("y", list(Y.shape), "FP32")]
    inputs[0].set_data_from_numpy(X, binary_data=binary)
    inputs[1].set_data_from_numpy(Y, binary_data=binary)
    outputs = [httpclient.InferRequestedOutput("z", binary_data=binary)]
    res = c.infer("model", inputs, outputs=outputs, request_id="t-1")
    ref = ort_run(models["addmm"], {"x": X, "y": Y})
    np.testing.assert_allclose(res.as_numpy("z"), ref["z"], rtol=1e-5, atol=1e-6)
    assert res.get_response()["id"] == "t-1"
    # no outputs named: tritonclient asks for every output in binary
    res = c.infer("model", inputs)
    np.testing.assert_array_equal(res.as_numpy("s"), ref["s"])
    c.close()


def test_tritonclient_every_datatype(models, server_factory):
    import tritonclient.http as httpclient
    s = server_factory(models["types"])
    c = httpclient.InferenceServerClient(url=f"127.0.0.1:{s.port}")
    arrays = {}
    for dt, (np_type, _) in DTYPES.items():
        if dt == "BYTES":
            arrays[dt] = np.array([b"a", b"bc", b"", b"\xc3\xa9", b"x y", b"z"], dtype=np.object_).reshape(3, 2)
        elif dt == "BOOL":
            arrays[dt] = np.array([[True, False], [False, True], [True, True]])
        else:
            arrays[dt] = (np.arange(6).reshape(3, 2) * 3 + 1).astype(np_type)
    inputs = []
    for dt, a in arrays.items():
        i = httpclient.InferInput("in_" + dt, [3, 2], dt)
        i.set_data_from_numpy(a, binary_data=dt != "FP16")  # FP16 has no JSON form in tritonclient
        inputs.append(i)
    res = c.infer("model", inputs)
    for dt, a in arrays.items():
        got = res.as_numpy("out_" + dt)
        assert got.shape == (3, 2)
        if dt == "BYTES":
            assert [bytes(v) for v in got.flatten()] == list(a.flatten())
        else:
            np.testing.assert_array_equal(got, a)
    c.close()


def test_kserve_rest_client_v2_and_v1(addmm_server, models):
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
    ref = ort_run(models["addmm"], {"x": X, "y": Y})

    async def run():
        client = InferenceRESTClient(RESTConfig(protocol="v2", retries=1, timeout=30))
        assert await client.is_server_ready(addmm_server.url)
        for binary in (False, True):
            ix = InferInput("x", list(X.shape), "FP32")
            iy = InferInput("y", list(Y.shape), "FP32")
            ix.set_data_from_numpy(X, binary_data=binary)
            iy.set_data_from_numpy(Y, binary_data=binary)
            req = InferRequest(model_name="model", infer_inputs=[ix, iy], request_id="k-1")
            res = await client.infer(addmm_server.url, req, model_name="model")
            got = {o.name: o.as_numpy() for o in res.outputs}
            np.testing.assert_allclose(got["z"], ref["z"], rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(got["s"], ref["s"])
            assert res.id == "k-1"
        await client.close()
        v1 = InferenceRESTClient(RESTConfig(protocol="v1", retries=1, timeout=30))
        body = {"instances": [{"x": X[i].tolist(), "y": Y[i].tolist()} for i in range(len(X))]}
        res = await v1.infer(addmm_server.url, body, model_name="model")
        np.testing.assert_allclose(np.array([p["z"] for p in res["predictions"]], np.float32), ref["z"],
                                   rtol=1e-5, atol=1e-6)
        await v1.close()

    asyncio.run(run())
