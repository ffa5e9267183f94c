"""`fetch` against moto's S3 server on loopback: single objects, prefixes with pagination,
SigV4 checked by moto (auth enforced), missing objects, checksums, path traversal."""
import hashlib
import os

from conftest import events, tree

PAGED = {"KINFER_STORAGE_PAGE_SIZE": "4"}


def test_single_object(fetch, moto, tmp_path):
    r = fetch("s3://models/single/model.onnx", tmp_path / "out", env=moto.env())
    assert r.returncode == 0, r.stderr
    assert tree(tmp_path / "out") == {"model.onnx": b"model-bytes"}
    ev = events(r.stderr)
    assert [e["event"] for e in ev] == ["fetch.start", "s3.config", "object.done", "fetch.done"]
    assert ev[1]["addressing"] == "path" and ev[1]["signed"] is True
    assert ev[2]["sha256"] == hashlib.sha256(b"model-bytes").hexdigest()


def test_prefix_paginated_preserves_layout(fetch, moto, tmp_path):
    r = fetch("s3://models/tree", tmp_path / "out", env=moto.env(**PAGED))
    assert r.returncode == 0, r.stderr
    got = tree(tmp_path / "out")
    want = {f"sub{i % 3}/deeper/f{i:02d}.bin": bytes([i]) * (i + 1) for i in range(25)}
    want["model.onnx"] = b"tree-model"
    assert got == want  # no folder marker, nothing from "treehouse/", no staging leftovers
    done = [e for e in events(r.stderr) if e["event"] == "fetch.done"][0]
    assert done["files"] == 26


def test_prefix_with_trailing_slash_and_whole_bucket_listing(fetch, moto, tmp_path):
    r = fetch("s3://models/tree/", tmp_path / "a", env=moto.env(**PAGED))
    assert r.returncode == 0, r.stderr
    assert len(tree(tmp_path / "a")) == 26
    # The whole bucket holds the traversal key, so it must be refused as a whole.
    r = fetch("s3://models", tmp_path / "b", env=moto.env(**PAGED))
    assert r.returncode == 1
    assert "refusing object key 'evil/../../escape.bin'" in r.stderr and "path traversal" in r.stderr


def test_special_characters_in_keys(fetch, moto, tmp_path):
    r = fetch("s3://models/odd/", tmp_path / "out", env=moto.env())
    assert r.returncode == 0, r.stderr
    assert tree(tmp_path / "out") == {"a b+c&d=é.bin": b"odd"}


def test_path_traversal_key_rejected_nothing_written(fetch, moto, tmp_path):
    r = fetch("s3://models/evil", tmp_path / "out", env=moto.env())
    assert r.returncode == 1
    assert "EINVAL" in r.stderr and "'..' path component (path traversal)" in r.stderr
    assert tree(tmp_path / "out") == {}  # evil/ok.bin was not placed either
    assert not os.path.exists(tmp_path / "escape.bin")
    assert os.listdir(tmp_path / "out") == []


def test_missing_object_is_enotfound(fetch, moto, tmp_path):
    r = fetch("s3://models/nope/model.onnx", tmp_path / "out", env=moto.env())
    assert r.returncode == 1
    assert "ENOTFOUND: s3://models/nope/model.onnx: no such object, and no objects under " \
           "s3://models/nope/model.onnx/" in r.stderr
    r = fetch("s3://no-such-bucket/m.onnx", tmp_path / "out", env=moto.env())
    assert r.returncode == 1
    assert "ENOTFOUND" in r.stderr and "NoSuchBucket" in r.stderr
    # 404 is final: exactly one retry-free attempt per request.
    assert not [e for e in events(r.stderr) if e["event"] == "request.retry"]
    assert os.listdir(tmp_path / "out") == []


def test_checksum(fetch, moto, tmp_path):
    good = hashlib.sha256(b"model-bytes").hexdigest()
    r = fetch("s3://models/single/model.onnx", tmp_path / "ok", "--sha256", good.upper(), env=moto.env())
    assert r.returncode == 0, r.stderr
    bad = hashlib.sha256(b"other").hexdigest()
    r = fetch("s3://models/single/model.onnx", tmp_path / "bad", "--sha256", bad, env=moto.env())
    assert r.returncode == 1
    assert f"ECHECKSUM: model.onnx: sha256 is {good}, expected {bad}" in r.stderr
    assert os.listdir(tmp_path / "bad") == []  # discarded, staging removed


def test_signed_requests_accepted_by_enforcing_moto(fetch, moto_auth, tmp_path):
    env = {"AWS_ENDPOINT_URL": moto_auth.url, "AWS_ACCESS_KEY_ID": moto_auth.key,
           "AWS_SECRET_ACCESS_KEY": moto_auth.secret, "KINFER_STORAGE_PAGE_SIZE": "2"}
    r = fetch("s3://private/model.onnx", tmp_path / "one", env=env)
    assert r.returncode == 0, r.stderr
    assert tree(tmp_path / "one") == {"model.onnx": b"private-model"}
    # Whole-bucket listing: signed ListObjectsV2 with continuation tokens, 3 pages.
    r = fetch("s3://private", tmp_path / "all", env=env)
    assert r.returncode == 0, r.stderr
    assert sorted(tree(tmp_path / "all")) == ["f0.bin", "f1.bin", "f2.bin", "f3.bin", "f4.bin", "model.onnx",
                                              "odd dir/a b~.bin"]
    # A key that needs percent-encoding in the signed path.
    r = fetch("s3://private/odd dir/a b~.bin", tmp_path / "odd", env=env)
    assert r.returncode == 0, r.stderr
    assert tree(tmp_path / "odd") == {"a b~.bin": b"odd"}


def test_bad_credentials_are_eauth_without_retries(fetch, moto_auth, tmp_path):
    env = {"AWS_ENDPOINT_URL": moto_auth.url, "AWS_ACCESS_KEY_ID": moto_auth.key,
           "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    r = fetch("s3://private/model.onnx", tmp_path / "out", "--retries", "3", env=env)
    assert r.returncode == 1
    assert "EAUTH" in r.stderr and "HTTP 403: SignatureDoesNotMatch" in r.stderr
    assert not [e for e in events(r.stderr) if e["event"] == "request.retry"]
    env["AWS_ACCESS_KEY_ID"] = "AKIAUNKNOWNKEY000000"
    r = fetch("s3://private/model.onnx", tmp_path / "out", env=env)
    assert r.returncode == 1
    assert "EAUTH" in r.stderr and "HTTP 403: InvalidAccessKeyId" in r.stderr
    assert os.listdir(tmp_path / "out") == []


def test_session_token_is_signed_and_sent(fetch, httpd, tmp_path):
    """On the wire: the session token is sent as X-Amz-Security-Token and is one of the signed
    headers (test_signatures_match_botocore recomputes such signatures)."""
    httpd.files["/models/single/model.onnx"] = b"model-bytes"
    r = fetch("s3://models/single/model.onnx", tmp_path / "out",
              env={"AWS_ENDPOINT_URL": httpd.url, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s",
                   "AWS_SESSION_TOKEN": "FQoGZXIvYXdzEXAMPLE"})
    assert r.returncode == 0, r.stderr
    ((_, headers),) = httpd.requests
    h = {k.lower(): v for k, v in headers.items()}
    assert h["x-amz-security-token"] == "FQoGZXIvYXdzEXAMPLE"
    assert h["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"), h["authorization"]
    assert "x-amz-security-token" in h["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")


def test_half_configured_credentials_rejected(fetch, moto, tmp_path):
    r = fetch("s3://models/single/model.onnx", tmp_path / "out",
              env={"AWS_ENDPOINT_URL": moto.url, "AWS_ACCESS_KEY_ID": "only-the-id"})
    assert r.returncode == 1
    assert "EAUTH: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together" in r.stderr


def test_kserve_endpoint_variables(fetch, httpd, tmp_path):
    """KServe's secret annotations become S3_ENDPOINT (host:port, no scheme) + S3_USE_HTTPS=0 and
    AWS_DEFAULT_REGION: on the wire, a path-style request to that endpoint, signed for that region."""
    httpd.files["/models/single/model.onnx"] = b"model-bytes"
    hostport = httpd.url.split("://")[1]
    r = fetch("s3://models/single/model.onnx", tmp_path / "out",
              env={"S3_ENDPOINT": hostport, "S3_USE_HTTPS": "0", "AWS_ACCESS_KEY_ID": "a",
                   "AWS_SECRET_ACCESS_KEY": "b", "AWS_DEFAULT_REGION": "eu-west-1"})
    assert r.returncode == 0, r.stderr
    assert tree(tmp_path / "out") == {"model.onnx": b"model-bytes"}
    ((path, headers),) = httpd.requests
    h = {k.lower(): v for k, v in headers.items()}
    assert path == "/models/single/model.onnx" and h["host"] == hostport, (path, h)
    assert "Credential=a/" in h["authorization"] and "/eu-west-1/s3/aws4_request" in h["authorization"], h


def unsigned(headers):
    """No signature of any kind in these request headers."""
    h = {k.lower() for k in headers}
    return "authorization" not in h and not {k for k in h if k.startswith("x-amz-security") or k == "x-amz-date"}


def test_anonymous_requests_unsigned(fetch, moto, httpd, tmp_path):
    """No credentials: unsigned requests (no Authorization header on the wire), which S3 (and
    moto) answer for public-read objects only; KServe's anonymous switch wins over credentials."""
    httpd.files["/models/public/model.onnx"] = b"public-bytes"
    r = fetch("s3://models/public/model.onnx", tmp_path / "wire", env={"AWS_ENDPOINT_URL": httpd.url})
    assert r.returncode == 0, r.stderr
    assert httpd.requests and all(unsigned(h) for _, h in httpd.requests), httpd.requests
    httpd.requests.clear()
    r = fetch("s3://models/public/model.onnx", tmp_path / "wire2",
              env={"AWS_ENDPOINT_URL": httpd.url, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s",
                   "AWS_SESSION_TOKEN": "t", "awsAnonymousCredential": "true"})
    assert r.returncode == 0, r.stderr
    assert httpd.requests and all(unsigned(h) for _, h in httpd.requests), httpd.requests
    # and moto (auth off) serves public-read objects unsigned, refuses the others
    r = fetch("s3://models/public/model.onnx", tmp_path / "out", env={"AWS_ENDPOINT_URL": moto.url})
    assert r.returncode == 0, r.stderr
    assert tree(tmp_path / "out") == {"model.onnx": b"public-bytes"}
    r = fetch("s3://models/single/model.onnx", tmp_path / "private", env={"AWS_ENDPOINT_URL": moto.url})
    assert r.returncode == 1 and "EAUTH" in r.stderr and "HTTP 403" in r.stderr


def test_object_cap(fetch, moto, tmp_path):
    r = fetch("s3://models/tree", tmp_path / "out", env=moto.env(KINFER_STORAGE_MAX_OBJECTS="10", **PAGED))
    assert r.returncode == 1
    assert "ETOOBIG" in r.stderr and "KINFER_STORAGE_MAX_OBJECTS=10" in r.stderr
    assert os.listdir(tmp_path / "out") == []


def test_signatures_match_botocore(fetch, httpd, tmp_path):
    """botocore as the reference signer: a loopback server records fetch's signed requests (an
    object GET and a ListObjectsV2 with a prefix and a continuation token, keys that need
    percent-encoding), and botocore's S3SigV4Auth recomputes each signature from the same
    method, path, query and headers. Covers the encodings moto cannot check."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    listing = ('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><IsTruncated>{t}</IsTruncated>'
               '<Contents><Key>{k}</Key></Contents>{n}</ListBucketResult>')
    # The server ignores the query, so the two list pages are served as two faults-free bodies
    # in turn: first page truncated with a token, second page final.
    pages = [listing.format(t="true", k="pre/x y+z&amp;=\u00e9.bin", n="<NextContinuationToken>tok/+=</NextContinuationToken>"),
             listing.format(t="false", k="pre/sub/b.bin", n="")]
    httpd.files["/bkt/pre/x%20y%2Bz%26%3D%C3%A9.bin"] = b"one"
    httpd.files["/bkt/pre/sub/b.bin"] = b"two"
    httpd.files["/bkt/single%2Bkey.onnx"] = b"single"

    class Pages(dict):
        def get(self, k, d=None):
            return pages.pop(0).encode() if k == "/bkt" else dict.get(self, k, d)
    httpd.files = Pages(httpd.files)

    env = {"AWS_ENDPOINT_URL": httpd.url, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
           "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "AWS_SESSION_TOKEN": "tok+en/=",
           "AWS_REGION": "eu-central-1"}
    r = fetch("s3://bkt/pre/", tmp_path / "a", env=env)
    assert r.returncode == 0, r.stderr
    assert tree(tmp_path / "a") == {"x y+z&=\u00e9.bin": b"one", "sub/b.bin": b"two"}
    r = fetch("s3://bkt/single+key.onnx", tmp_path / "b", env=env)
    assert r.returncode == 0, r.stderr

    creds = Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"])
    auth = S3SigV4Auth(creds, "s3", "eu-central-1")
    assert len(httpd.requests) == 5  # 2 list pages + 2 objects, then 1 object
    assert "continuation-token=tok%2F%2B%3D" in httpd.requests[1][0]
    for path, headers in httpd.requests:
        h = {k.lower(): v for k, v in headers.items()}
        req = AWSRequest(method="GET", url=httpd.url + path,
                         headers={"Host": h["host"], "X-Amz-Date": h["x-amz-date"],
                                  "X-Amz-Content-SHA256": h["x-amz-content-sha256"],
                                  "X-Amz-Security-Token": h["x-amz-security-token"]})
        req.context["timestamp"] = h["x-amz-date"]
        canonical = auth.canonical_request(req)
        want = auth.signature(auth.string_to_sign(req, canonical), req)
        got = h["authorization"].rsplit("Signature=", 1)[1]
        assert got == want, f"{path}: kinfer {got} != botocore {want}\n{canonical}"
        assert "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token," in h["authorization"]
