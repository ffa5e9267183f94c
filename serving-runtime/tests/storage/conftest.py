"""Fixtures for the storage black-box tests: the fetch command under test, moto's S3 server
(one with auth off, one that enforces IAM credentials and SigV4 signatures), the
gcp-storage-emulator GCS server, and a loopback HTTP file server that can fail on demand.
Every server listens on 127.0.0.1 on a free port and is stopped at the end of the session."""
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "test", "node"))
from s3store import enforce_auth  # noqa: E402  (the one moto auth set-up, shared with node-e2e)

BIN = os.environ.get("KINFER_BIN", os.path.join(os.path.dirname(__file__), "../../../build/bin"))
VENV_BIN = os.path.dirname(sys.executable)


def fetch_commands():
    """The fetch entry points that exist: `kinfer-server fetch` once kinfer-server links,
    and the standalone kinfer-fetch. Both are tested when both exist."""
    cmds = []
    server = os.path.join(BIN, "kinfer-server")
    if os.access(server, os.X_OK):
        cmds.append(("kinfer-server", [server, "fetch"]))
    fetch = os.path.join(BIN, "kinfer-fetch")
    if os.access(fetch, os.X_OK):
        cmds.append(("kinfer-fetch", [fetch]))
    if not cmds:
        raise RuntimeError(f"neither kinfer-server nor kinfer-fetch in {BIN}: run make first")
    return cmds


@pytest.fixture(params=fetch_commands(), ids=lambda c: c[0])
def fetch(request, tmp_path):
    """fetch(uri, dest, *args, env={...}) -> CompletedProcess. The environment starts clean of
    AWS/GCS variables so the developer's own never leak in."""
    base = request.param[1]

    def clean_env(env=None):
        e = {k: v for k, v in os.environ.items()
             if not k.startswith(("AWS_", "S3_", "GOOGLE_", "STORAGE_", "KINFER_STORAGE", "aws"))}
        e["KINFER_STORAGE_BACKOFF_MS"] = "50"
        e.update(env or {})
        return e

    def run(uri, dest, *args, env=None, timeout=60):
        r = subprocess.run(base + [uri, str(dest), *args], env=clean_env(env), capture_output=True, text=True,
                           timeout=timeout)
        # Under SANITIZE=1 a leak or UB on an error path would not change the exit status.
        for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            assert marker not in r.stderr, r.stderr
        return r
    run.name = request.param[0]
    run.argv = lambda uri, dest, *args: base + [uri, str(dest), *args]
    run.env = clean_env
    return run


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port} after {timeout}s")


def start(cmd, port, log):
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc)
    except Exception:
        proc.kill()
        raise
    return proc


def stop(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Moto:
    def __init__(self, tmp, name):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(tmp / f"{name}.log", "w")
        self.proc = start([os.path.join(VENV_BIN, "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                          self.port, self.log)

    def client(self, service, key="testing", secret="testing"):
        import boto3
        return boto3.client(service, endpoint_url=self.url, aws_access_key_id=key, aws_secret_access_key=secret,
                            region_name="us-east-1")

    def env(self, **extra):
        e = {"AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        e.update(extra)
        return e


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    """moto with auth off (moto's default): any credentials are accepted."""
    m = Moto(tmp_path_factory.mktemp("moto"), "moto")
    s3 = m.client("s3")
    s3.create_bucket(Bucket="models")
    s3.put_object(Bucket="models", Key="single/model.onnx", Body=b"model-bytes")
    s3.put_object(Bucket="models", Key="public/model.onnx", Body=b"public-bytes", ACL="public-read")
    for i in range(25):  # 25 keys, with KINFER_STORAGE_PAGE_SIZE=4 -> 7 pages
        s3.put_object(Bucket="models", Key=f"tree/sub{i % 3}/deeper/f{i:02d}.bin", Body=bytes([i]) * (i + 1))
    s3.put_object(Bucket="models", Key="tree/model.onnx", Body=b"tree-model")
    s3.put_object(Bucket="models", Key="tree/emptydir/", Body=b"")  # a console "folder" marker
    s3.put_object(Bucket="models", Key="treehouse/not-me.bin", Body=b"x")  # shares the prefix "tree"
    s3.put_object(Bucket="models", Key="odd/a b+c&d=é.bin", Body=b"odd")
    s3.put_object(Bucket="models", Key="evil/ok.bin", Body=b"ok")
    s3.put_object(Bucket="models", Key="evil/../../escape.bin", Body=b"pwned")
    yield m
    stop(m.proc)
    m.log.close()


@pytest.fixture(scope="session")
def moto_auth(tmp_path_factory):
    """moto that enforces authentication: an IAM user with an access key is created while auth
    is off, then /moto-api/reset-auth turns checking on, so every later request must carry a
    valid SigV4 signature from a known access key (moto recomputes the signature)."""
    m = Moto(tmp_path_factory.mktemp("moto-auth"), "moto-auth")
    s3 = m.client("s3")
    s3.create_bucket(Bucket="private")
    s3.put_object(Bucket="private", Key="model.onnx", Body=b"private-model")
    for i in range(5):
        s3.put_object(Bucket="private", Key=f"f{i}.bin", Body=b"p" * i)
    # moto 5.0.28 verifies signatures wrongly for keys with + & = or non-ASCII (boto3 fails the same
    # way), so the enforcing server gets a key with the encodings it does handle: space and ~.
    s3.put_object(Bucket="private", Key="odd dir/a b~.bin", Body=b"odd")
    m.key, m.secret = enforce_auth(m.url, m.client("iam"))
    yield m
    stop(m.proc)
    m.log.close()


class Gcs:
    """gcp-storage-emulator (a third-party GCS JSON API emulator), in memory."""

    def __init__(self, tmp):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(tmp / "gcs.log", "w")
        exe = shutil.which("gcp-storage-emulator", path=VENV_BIN)
        if not exe:
            raise RuntimeError("gcp-storage-emulator missing from the test venv (test/requirements.txt)")
        self.proc = start([exe, "start", "--host=127.0.0.1", f"--port={self.port}", "--in-memory"], self.port,
                          self.log)

    def request(self, method, path, data=None, ctype="application/json"):
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={"Content-Type": ctype})
        return urllib.request.urlopen(req, timeout=10).read()

    def upload(self, bucket, name, data):
        q = urllib.parse.urlencode({"uploadType": "media", "name": name})
        self.request("POST", f"/upload/storage/v1/b/{bucket}/o?{q}", data, "application/octet-stream")


@pytest.fixture(scope="session")
def gcs(tmp_path_factory):
    g = Gcs(tmp_path_factory.mktemp("gcs"))
    g.request("POST", "/storage/v1/b", json.dumps({"name": "gmodels"}).encode())
    g.upload("gmodels", "m/model.onnx", b"gcs-model")
    for i in range(6):
        g.upload("gmodels", f"tree/d{i % 2}/f{i}.bin", b"g" * (i + 1))
    yield g
    stop(g.proc)
    g.log.close()


class BearerProxy(http.server.BaseHTTPRequestHandler):
    """In front of gcp-storage-emulator (which checks no credentials): records every request's
    headers as they came over the wire, and when server.token is set answers 401 unless the
    request carries `Authorization: Bearer <token>`, as GCS does; otherwise forwards it."""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        srv = self.server
        with srv.lock:
            srv.requests.append((self.command, self.path, dict(self.headers)))
        if srv.token is not None and self.headers.get("Authorization") != f"Bearer {srv.token}":
            body = b'{"error":{"code":401,"message":"Invalid Credentials"}}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
        else:
            req = urllib.request.Request(srv.upstream + self.path, method=self.command)
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    status, body, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
            except urllib.error.HTTPError as e:
                status, body, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
            self.send_response(status)
            if ctype:
                self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET


@pytest.fixture()
def gcs_proxy(gcs):
    """A BearerProxy to the session's GCS emulator; set .token to enforce a bearer token."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), BearerProxy)
    srv.daemon_threads = True
    srv.upstream, srv.token, srv.requests, srv.lock = gcs.url, None, [], threading.Lock()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


class FaultyHandler(http.server.BaseHTTPRequestHandler):
    """Serves server.files; server.faults[path] is a list of faults consumed one per request:
    an int status (answered with that status), "cut" (Content-Length of the whole body, half of
    it sent, connection closed) or "stall" (headers, then silence)."""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        srv = self.server
        path = self.path.split("?")[0]
        with srv.lock:
            srv.hits[path] = srv.hits.get(path, 0) + 1
            fault = srv.faults[path].pop(0) if srv.faults.get(path) else None
            srv.requests.append((self.path, dict(self.headers)))
        body = srv.files.get(path)
        if fault is None and body is None:
            fault = 404
        if isinstance(fault, int):
            msg = f"status {fault}\n".encode()
            self.send_response(fault)
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if fault == "cut":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if fault == "slow":  # half the body, then nothing for 30 s
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            time.sleep(30)
            self.close_connection = True
            return
        if fault == "stall":
            self.wfile.flush()
            time.sleep(4)
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture()
def httpd():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FaultyHandler)
    srv.daemon_threads = True
    srv.files, srv.faults, srv.hits, srv.requests = {}, {}, {}, []
    srv.lock = threading.Lock()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def events(stderr):
    """The JSON log lines of a run, parsed; a line that is not JSON fails the test unless it is
    the final one-line error summary."""
    out = []
    for line in stderr.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def tree(root):
    """{relative path: bytes} of every file under root, hidden names included."""
    files = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            with open(p, "rb") as f:
                files[os.path.relpath(p, root)] = f.read()
    return files
