"""`fetch` of gs:// against gcp-storage-emulator (a third-party GCS JSON API emulator; it does
not paginate, so GCS page tokens are covered by the unit tests only) with STORAGE_EMULATOR_HOST,
and of file://, plain paths and pvc:// on the local filesystem."""
import os

from conftest import events, tree


def test_gcs_single_object(fetch, gcs, tmp_path):
    r = fetch("gs://gmodels/m/model.onnx", tmp_path / "out", env={"STORAGE_EMULATOR_HOST": gcs.url})
    assert r.returncode == 0, r.stderr
    assert tree(tmp_path / "out") == {"model.onnx": b"gcs-model"}


def test_gcs_prefix_and_bearer_token(fetch, gcs_proxy, tmp_path):
    """The token goes on the wire: a proxy in front of the emulator answers 401, as GCS does,
    to any request without `Authorization: Bearer <the token>`."""
    tok = tmp_path / "token"
    tok.write_text("ya29.test-token\n")
    gcs_proxy.token = "ya29.test-token"
    hostport = gcs_proxy.url.split("://")[1]  # the Google libraries accept host:port too
    r = fetch("gs://gmodels/tree/", tmp_path / "out",
              env={"STORAGE_EMULATOR_HOST": hostport, "GOOGLE_OAUTH_ACCESS_TOKEN_FILE": str(tok)})
    assert r.returncode == 0, r.stderr
    assert tree(tmp_path / "out") == {f"d{i % 2}/f{i}.bin": b"g" * (i + 1) for i in range(6)}
    # a listing and six objects, every one with the token (the file's newline stripped)
    assert len(gcs_proxy.requests) >= 7, gcs_proxy.requests
    assert {h.get("Authorization") for _, _, h in gcs_proxy.requests} == {"Bearer ya29.test-token"}
    # GOOGLE_OAUTH_ACCESS_TOKEN (the variable) likewise
    gcs_proxy.requests.clear()
    r = fetch("gs://gmodels/m/model.onnx", tmp_path / "var",
              env={"STORAGE_EMULATOR_HOST": gcs_proxy.url, "GOOGLE_OAUTH_ACCESS_TOKEN": "ya29.test-token"})
    assert r.returncode == 0, r.stderr
    assert tree(tmp_path / "var") == {"model.onnx": b"gcs-model"}
    assert gcs_proxy.requests and all(h.get("Authorization") == "Bearer ya29.test-token"
                                      for _, _, h in gcs_proxy.requests), gcs_proxy.requests


def test_gcs_wrong_or_missing_token_refused(fetch, gcs_proxy, tmp_path):
    """Against a server that enforces the token: a wrong one and none are EAUTH (401), at once
    (no retries), and nothing is written; without a token nothing like one is sent."""
    gcs_proxy.token = "ya29.right"
    r = fetch("gs://gmodels/m/model.onnx", tmp_path / "wrong", "--retries", "3",
              env={"STORAGE_EMULATOR_HOST": gcs_proxy.url, "GOOGLE_OAUTH_ACCESS_TOKEN": "ya29.wrong"})
    assert r.returncode == 1 and "EAUTH" in r.stderr and "HTTP 401" in r.stderr, r.stderr
    assert [h.get("Authorization") for _, _, h in gcs_proxy.requests] == ["Bearer ya29.wrong"]
    assert os.listdir(tmp_path / "wrong") == []
    gcs_proxy.requests.clear()
    r = fetch("gs://gmodels/m/model.onnx", tmp_path / "none", env={"STORAGE_EMULATOR_HOST": gcs_proxy.url})
    assert r.returncode == 1 and "EAUTH" in r.stderr and "HTTP 401" in r.stderr, r.stderr
    assert len(gcs_proxy.requests) == 1 and "Authorization" not in gcs_proxy.requests[0][2], gcs_proxy.requests
    assert os.listdir(tmp_path / "none") == []


def test_gcs_missing(fetch, gcs, tmp_path):
    # (The emulator refuses to store names with "..", so traversal is tested on S3 and in the unit
    # tests; gs:// goes through the same storage__job_relpath.)
    env = {"STORAGE_EMULATOR_HOST": gcs.url}
    r = fetch("gs://gmodels/nope", tmp_path / "out", env=env)
    assert r.returncode == 1
    assert "ENOTFOUND: gs://gmodels/nope: no such object, and no objects under gs://gmodels/nope/" in r.stderr
    r = fetch("gs://no-such-bucket/m.onnx", tmp_path / "out", env=env)
    assert r.returncode == 1 and "ENOTFOUND" in r.stderr and "HTTP 404" in r.stderr
    assert os.listdir(tmp_path / "out") == []


def test_gcs_bad_token_file(fetch, gcs, tmp_path):
    r = fetch("gs://gmodels/m/model.onnx", tmp_path / "out",
              env={"STORAGE_EMULATOR_HOST": gcs.url, "GOOGLE_OAUTH_ACCESS_TOKEN_FILE": str(tmp_path / "none")})
    assert r.returncode == 1
    assert "EAUTH: GOOGLE_OAUTH_ACCESS_TOKEN_FILE" in r.stderr and "No such file" in r.stderr


def make_model_dir(root):
    (root / "sub").mkdir(parents=True)
    (root / "model.onnx").write_bytes(b"onnx")
    (root / "sub" / "weights.bin").write_bytes(b"w" * 1000)


def test_file_uri_and_plain_path_copy(fetch, tmp_path):
    make_model_dir(tmp_path / "src")
    r = fetch(f"file://{tmp_path}/src", tmp_path / "a")
    assert r.returncode == 0, r.stderr
    assert tree(tmp_path / "a") == {"model.onnx": b"onnx", "sub/weights.bin": b"w" * 1000}
    r = fetch(str(tmp_path / "src" / "model.onnx"), tmp_path / "b")
    assert r.returncode == 0, r.stderr
    assert tree(tmp_path / "b") == {"model.onnx": b"onnx"}


def test_same_directory_used_in_place(fetch, tmp_path):
    make_model_dir(tmp_path / "m")
    r = fetch(str(tmp_path / "m"), tmp_path / "m" / ".." / "m")
    assert r.returncode == 0, r.stderr
    assert [e for e in events(r.stderr) if e["event"] == "fetch.done"][0]["in_place"] is True
    assert tree(tmp_path / "m") == {"model.onnx": b"onnx", "sub/weights.bin": b"w" * 1000}


def test_pvc_uri_maps_to_mount(fetch, tmp_path):
    make_model_dir(tmp_path / "pvc" / "models" / "v1")
    r = fetch("pvc://my-claim/models/v1", tmp_path / "out", env={"KINFER_PVC_MOUNT": str(tmp_path / "pvc")})
    assert r.returncode == 0, r.stderr
    assert sorted(tree(tmp_path / "out")) == ["model.onnx", "sub/weights.bin"]


def test_local_errors(fetch, tmp_path):
    r = fetch(str(tmp_path / "absent"), tmp_path / "out")
    assert r.returncode == 1 and "ENOTFOUND: model path" in r.stderr
    r = fetch("file://host/x", tmp_path / "out")
    assert r.returncode == 1 and "EINVAL: file URI must be file:///ABSOLUTE/PATH" in r.stderr
    r = fetch("ftp://h/x", tmp_path / "out")
    assert r.returncode == 1 and "unsupported URI scheme 'ftp'" in r.stderr


def test_usage_errors(fetch, tmp_path):
    r = fetch("s3://models/x", tmp_path / "out", "--retries")
    assert r.returncode == 2 and "option '--retries' needs a value" in r.stderr
    r = fetch("s3://models/x", tmp_path / "out", "--sha256", "xyz")
    assert r.returncode == 1 and "EINVAL: --sha256 wants 64 hex digits" in r.stderr
