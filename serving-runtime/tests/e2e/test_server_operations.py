"""Operations: model fetch (--model-uri, the fetch subcommand), non-root, logs, HTTP edge cases."""
import json
import signal
import os
import shutil
import socket
import subprocess
import tempfile
import time

import numpy as np
import pytest
import requests

from conftest import BINARY, ort_run


def test_model_uri_fetches_then_serves(models, tmp_path, server_factory):
    dest = tmp_path / "fetched"
    s = server_factory(models["addmm"], "--model-uri", "file://" + models["addmm"], "--model-dir", str(dest))
    assert (dest / "model.onnx").exists()
    assert "model_fetch" in s.logs()
    r = requests.post(s.infer_url(), json={"inputs": [
        {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
        {"name": "y", "shape": [1, 4], "datatype": "FP32", "data": [0, 0, 0, 0]}]})
    assert r.status_code == 200, r.text


def test_model_uri_failure_is_reported(tmp_path, server_factory):
    s = server_factory(str(tmp_path / "dest"), "--model-uri", "file://" + str(tmp_path / "absent"), ready=False)
    assert s.proc.wait(timeout=30) == 1
    line = [json.loads(l) for l in s.logs().splitlines() if "model_load_failed" in l][0]
    assert line["level"] == "error" and "absent" in line["msg"]


def test_fetch_subcommand(models, tmp_path):
    dest = tmp_path / "init"
    p = subprocess.run([BINARY, "fetch", "file://" + models["addmm"], str(dest)], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert (dest / "model.onnx").read_bytes() == open(os.path.join(models["addmm"], "model.onnx"), "rb").read()


def test_runs_as_non_root_and_logs_json_lines(models, tmp_path):
    if os.getuid() != 0 or not shutil.which("setpriv"):
        # not root: the server already runs unprivileged here; still check it serves
        prefix = []
    else:
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    base = tempfile.mkdtemp(prefix="kinfer-nonroot-")  # pytest's tmp_path is private to root
    os.chmod(base, 0o755)
    shared = os.path.join(base, "model")
    shutil.copytree(models["addmm"], shared)
    for root, dirs, files in os.walk(shared):
        os.chmod(root, 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    proc = subprocess.Popen(prefix + [BINARY, "--model-dir", shared, "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if requests.get(url + "/v2/health/ready", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        ok = proc.poll() is None and requests.get(url + "/v2/models/model").status_code == 200
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        shutil.rmtree(base)
    assert ok, err.decode()
    assert proc.returncode == 0
    lines = err.decode().splitlines()
    events = [json.loads(l)["event"] for l in lines]  # every line is one JSON object
    assert events[:2] == ["listening", "model_ready"] and "shutdown_complete" in events


def test_http_edge_cases(addmm_server):
    s = addmm_server
    # chunked request bodies are refused, not left hanging
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
        c.sendall(b"POST /v2/models/model/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n0\r\n\r\n")
        assert c.recv(4096).startswith(b"HTTP/1.1 411")
    # keep-alive: several requests on one connection, then a bad one, then a good one again
    sess = requests.Session()
    for _ in range(3):
        assert sess.get(s.url + "/v2/health/live").status_code == 200
    assert sess.post(s.infer_url(), data=b"{bad").status_code == 400
    assert sess.post(s.url + "/v2/health/live").status_code == 405  # empty POST, same connection
    assert sess.get(s.url + "/v2/models/model/ready").status_code == 200
    r = sess.get(s.url + "/metrics")
    assert r.headers["Content-Type"].startswith("text/plain") and "nv_inference_count" in r.text
    # Expect: 100-continue gets its interim answer at once (curl otherwise waits a second) ...
    body = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
                                  {"name": "y", "shape": [1, 4], "datatype": "FP32", "data": [0, 0, 0, 0]}]}).encode()
    with socket.create_connection(("127.0.0.1", s.port), timeout=0.5) as c:
        c.sendall(b"POST /v2/models/model/infer HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))
        assert c.recv(4096).startswith(b"HTTP/1.1 100 Continue")
        c.settimeout(10)
        c.sendall(body)
        answer = b""
        while b'"outputs"' not in answer:
            answer += c.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200")
    # ... and a body over the limit is refused before it is sent
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
        c.sendall(b"POST /v2/models/model/infer HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                  b"Content-Length: 999999999999\r\n\r\n")
        assert c.recv(4096).startswith(b"HTTP/1.1 413")
    # a client that goes away mid-request does not hurt the server
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
        c.sendall(b"POST /v2/models/model/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"inp")
    assert requests.get(s.url + "/v2/health/ready").status_code == 200


def test_not_ready_until_loaded_and_warmed_up(models, tmp_path, server_factory):
    """While the model is still downloading the port answers liveness, but readiness, metadata and
    inference say 503; once it is loaded and warmed up everything turns ready."""
    import http.server
    import threading
    import time as _time

    data = open(os.path.join(models["addmm"], "model.onnx"), "rb").read()
    release = threading.Event()

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            release.wait(20)  # hold the download until the test has looked
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        uri = f"http://127.0.0.1:{httpd.server_address[1]}/model.onnx"
        s = server_factory(str(tmp_path / "dest"), "--model-uri", uri, ready=False)
        deadline = _time.time() + 10
        while _time.time() < deadline:
            try:
                if requests.get(s.url + "/v2/health/live", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                _time.sleep(0.05)
        assert requests.get(s.url + "/v2/health/live").status_code == 200
        r = requests.get(s.url + "/v2/health/ready")
        assert r.status_code == 503 and r.json() == {"ready": False}
        assert requests.get(s.url + "/v2/models/model/ready").status_code == 503
        assert requests.get(s.url + "/v2/models/model").status_code == 503
        r = requests.post(s.infer_url(), json={"inputs": []})
        assert r.status_code == 503 and "not ready" in r.json()["error"]
        assert s.metric("kinfer_model_ready") == 0
        release.set()
        s.wait_ready()
        assert s.metric("kinfer_model_ready") == 1 and s.metric("kinfer_model_load_seconds") > 0
    finally:
        release.set()
        httpd.shutdown()


# Runs in a private mount namespace: / bound read-only at $R (plus /dev, /proc, /sys), a fresh
# tmpfs as $R/tmp, the source model and the binary bound read-only under it; then chroot, drop to uid 65532 and
# exec the server, so the process this script started *is* kinfer-server.
READ_ONLY_ROOT_SCRIPT = r"""
set -eu
R=$1 SRC=$2 BIN=$3 PORT=$4
mount --bind / "$R"
mount -o remount,bind,ro "$R"
for d in dev proc sys; do mount --bind "/$d" "$R/$d"; done
mount -o remount,bind,ro "$R/sys"
mount -t tmpfs -o mode=1777,size=64m tmpfs "$R/tmp"
mkdir "$R/tmp/src"
mount --bind "$SRC" "$R/tmp/src"
mount -o remount,bind,ro "$R/tmp/src"
mkdir "$R/tmp/bin" && touch "$R/tmp/bin/kinfer-server"  # the binary may live under the hidden /tmp
mount --bind "$BIN" "$R/tmp/bin/kinfer-server"
mount -o remount,bind,ro "$R/tmp/bin/kinfer-server"
if touch "$R/kinfer-rw-probe" 2>/dev/null; then echo "root filesystem is writable" >&2; exit 97; fi
exec chroot "$R" setpriv --reuid 65532 --regid 65532 --clear-groups \
    /tmp/bin/kinfer-server --model-uri file:///tmp/src --model-dir /tmp/model --host 127.0.0.1 --port "$PORT"
"""


def test_serves_as_non_root_on_read_only_root_filesystem(models, tmp_path):
    # No skip: CI runs as root on a machine with unshare; without them this must fail loudly.
    assert os.getuid() == 0, "this test needs root to build the read-only root (unshare -m, chroot)"
    for tool in ("unshare", "setpriv", "chroot", "mount"):
        assert shutil.which(tool), f"{tool} is missing: the read-only root test cannot run"
    root = tmp_path / "ro-root"
    root.mkdir()
    src = tmp_path / "src"  # readable by uid 65532 (pytest's own directories are 0700)
    shutil.copytree(models["addmm"], src)
    os.chmod(src, 0o755)
    for f in src.iterdir():
        os.chmod(f, 0o644)
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", READ_ONLY_ROOT_SCRIPT,
                             "sh", str(root), str(src), os.path.realpath(BINARY), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    r = None
    try:
        for _ in range(400):
            if proc.poll() is not None:
                break
            try:
                if requests.get(url + "/v2/health/ready", timeout=1).status_code == 200:
                    r = requests.post(url + "/v2/models/model/infer", timeout=10, json={"inputs": [
                        {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
                        {"name": "y", "shape": [1, 4], "datatype": "FP32", "data": [1, 1, 1, 1]}]})
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert r is not None and r.status_code == 200, (proc.returncode, err.decode())
    z = {o["name"]: o for o in r.json()["outputs"]}["z"]
    x, y = np.array([[1, 2, 3, 4]], np.float32), np.ones((1, 4), np.float32)
    np.testing.assert_allclose(z["data"], ort_run(models["addmm"], {"x": x, "y": y})["z"].flatten(), rtol=1e-5)
    assert proc.returncode == 0, err.decode()
    events = [json.loads(l)["event"] for l in err.decode().splitlines()]
    assert "model_fetch" in events and "shutdown_complete" in events
    assert not (tmp_path / "ro-root" / "tmp" / "model").exists()  # the fetch landed in the namespace's tmpfs


def _live(url):
    try:
        return requests.get(url + "/v2/health/live", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def test_listens_on_ipv6_and_ipv4(models):
    """The default host is dual-stack (IPv4 and IPv6 clusters alike); literals of both families
    bind as given; anything else is refused with a precise message."""
    with socket.socket(socket.AF_INET6) as sk:
        sk.bind(("::1", 0))
        port = sk.getsockname()[1]
    cases = [(None, ["http://127.0.0.1:%d", "http://[::1]:%d"], []),
             ("::1", ["http://[::1]:%d"], ["http://127.0.0.1:%d"]),
             ("[::1]", ["http://[::1]:%d"], []),
             ("0.0.0.0", ["http://127.0.0.1:%d"], ["http://[::1]:%d"])]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINFER_")}
    for host, reachable, unreachable in cases:
        cmd = [BINARY, "--model-dir", models["addmm"], "--port", str(port)] + (["--host", host] if host else [])
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        try:
            deadline = time.time() + 20
            while time.time() < deadline and not _live(reachable[0] % port) and proc.poll() is None:
                time.sleep(0.05)
            for u in reachable:
                assert _live(u % port), (host, u, proc.poll())
            for u in unreachable:
                assert not _live(u % port), (host, u)
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err.decode()
        first = json.loads(err.decode().splitlines()[0])
        want = "[%s]" % (host or "::").strip("[]") if ":" in (host or "::") else host
        assert first["event"] == "listening" and f"on {want}:{port}" in first["msg"], first
    p = subprocess.run([BINARY, "--model-dir", models["addmm"], "--host", "localhost6", "--port", str(port)],
                       capture_output=True, timeout=30, env=env)
    assert p.returncode != 0
    assert b"listen address localhost6 is not an IPv4 or IPv6 address" in p.stderr + p.stdout


def test_revision_header_names_who_answered(models, server_factory):
    """--revision (KINFER_REVISION, from the pod's revision label) is named in every response's
    Kinfer-Revision header: inference, errors, health; absent without it; a bad value is refused."""
    s = server_factory(models["addmm"], env={"KINFER_REVISION": "iris-predictor-0a1b2c3d"})
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
                       {"name": "y", "shape": [1, 4], "datatype": "FP32", "data": [1, 1, 1, 1]}]}
    for r in (requests.post(s.infer_url(), json=body, timeout=5),
              requests.post(s.infer_url(), data=b"{", timeout=5),
              requests.get(s.url + "/v2/health/ready", timeout=5),
              requests.get(s.url + "/no/such/path", timeout=5)):
        assert r.headers.get("Kinfer-Revision") == "iris-predictor-0a1b2c3d", (r.status_code, r.headers)
    plain = server_factory(models["addmm"])
    assert "Kinfer-Revision" not in requests.get(plain.url + "/v2/health/ready", timeout=5).headers
    bad = server_factory(models["addmm"], "--revision", "a b/c", ready=False)
    assert bad.proc.wait(10) == 2, bad.logs()
    assert "--revision \"a b/c\"" in bad.logs(), bad.logs()


def test_open_connection_is_served_after_sigterm_then_closed(models, server_factory):
    """After SIGTERM (the pod's preStop sleep has taken it out of the endpoints), a keep-alive
    connection that is already open is still served: its next request gets 200 with Connection:
    close, so the client moves to another pod, instead of a 503. New connections are refused,
    and the server exits 0 once its connections are closed."""
    import http.client
    s = server_factory(models["addmm"], "--grace-period-s", "10")
    body = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
                                  {"name": "y", "shape": [1, 4], "datatype": "FP32", "data": [1, 1, 1, 1]}]})
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    c.request("POST", "/v2/models/model/infer", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    assert r.status == 200 and (r.getheader("Connection") or "").lower() != "close"
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", s.port), timeout=2)
    c.request("POST", "/v2/models/model/infer", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    assert r.status == 200, r.read()
    assert json.loads(r.read())["outputs"] and r.getheader("Connection").lower() == "close"
    c.close()
    assert s.proc.wait(timeout=10) == 0, s.logs()
    assert "shutdown_complete" in s.logs()
