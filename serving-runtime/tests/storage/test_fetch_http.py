"""`fetch` of http:// URLs from a loopback HTTP server that can fail on demand: 5xx then
success (retried), 404/403 (not retried), a body cut off midway (no partial file left; a retry
recovers), a stalled body (timeout)."""
import glob
import hashlib
import os
import signal
import subprocess
import time

from conftest import events, tree

BODY = bytes(range(256)) * 4096  # 1 MiB


def retries(r):
    return [e for e in events(r.stderr) if e["event"] == "request.retry"]


def test_plain_download(fetch, httpd, tmp_path):
    httpd.files["/models/model.onnx"] = BODY
    r = fetch(httpd.url + "/models/model.onnx?version=3", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert tree(tmp_path / "out") == {"model.onnx": BODY}
    done = [e for e in events(r.stderr) if e["event"] == "object.done"][0]
    assert done["bytes"] == len(BODY) and done["sha256"] == hashlib.sha256(BODY).hexdigest()


def test_5xx_then_success_is_retried(fetch, httpd, tmp_path):
    httpd.files["/m.onnx"] = BODY
    httpd.faults["/m.onnx"] = [503, 500]
    r = fetch(httpd.url + "/m.onnx", tmp_path / "out", "--retries", "3")
    assert r.returncode == 0, r.stderr
    assert httpd.hits["/m.onnx"] == 3
    assert [e["attempt"] for e in retries(r)] == [1, 2]
    assert tree(tmp_path / "out") == {"m.onnx": BODY}


def test_5xx_exhausts_retries(fetch, httpd, tmp_path):
    httpd.files["/m.onnx"] = BODY
    httpd.faults["/m.onnx"] = [502, 502, 502]
    r = fetch(httpd.url + "/m.onnx", tmp_path / "out", "--retries", "2")
    assert r.returncode == 1
    assert "EHTTP: giving up after 3 attempts: GET " in r.stderr and "HTTP 502" in r.stderr
    assert httpd.hits["/m.onnx"] == 3
    assert os.listdir(tmp_path / "out") == []


def test_4xx_not_retried(fetch, httpd, tmp_path):
    r = fetch(httpd.url + "/missing.onnx", tmp_path / "out", "--retries", "5")
    assert r.returncode == 1
    assert "ENOTFOUND: GET " + httpd.url + "/missing.onnx: HTTP 404" in r.stderr
    assert httpd.hits["/missing.onnx"] == 1
    httpd.files["/secret.onnx"] = BODY
    httpd.faults["/secret.onnx"] = [403]
    r = fetch(httpd.url + "/secret.onnx", tmp_path / "out", "--retries", "5")
    assert r.returncode == 1 and "EAUTH" in r.stderr and "HTTP 403" in r.stderr
    assert httpd.hits["/secret.onnx"] == 1
    assert os.listdir(tmp_path / "out") == []


def test_cut_off_transfer_leaves_no_partial_file(fetch, httpd, tmp_path):
    httpd.files["/m.onnx"] = BODY
    httpd.faults["/m.onnx"] = ["cut"]
    r = fetch(httpd.url + "/m.onnx", tmp_path / "out", "--retries", "0")
    assert r.returncode == 1
    assert "EIO" in r.stderr and "(after 524288 bytes)" in r.stderr
    assert os.listdir(tmp_path / "out") == []  # neither m.onnx nor a staging directory


def test_cut_off_transfer_retried_to_completion(fetch, httpd, tmp_path):
    httpd.files["/m.onnx"] = BODY
    httpd.faults["/m.onnx"] = ["cut", "cut"]
    sha = hashlib.sha256(BODY).hexdigest()
    r = fetch(httpd.url + "/m.onnx", tmp_path / "out", "--retries", "2", "--sha256", sha)
    assert r.returncode == 0, r.stderr
    assert len(retries(r)) == 2
    assert tree(tmp_path / "out") == {"m.onnx": BODY}


def test_stalled_transfer_times_out(fetch, httpd, tmp_path):
    httpd.files["/m.onnx"] = BODY
    httpd.faults["/m.onnx"] = ["stall"]
    r = fetch(httpd.url + "/m.onnx", tmp_path / "out", "--retries", "0", "--timeout", "1")
    assert r.returncode == 1
    assert "ETIMEOUT" in r.stderr
    assert os.listdir(tmp_path / "out") == []


def test_existing_model_replaced_only_when_complete(fetch, httpd, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "m.onnx").write_bytes(b"old model")
    httpd.files["/m.onnx"] = BODY
    httpd.faults["/m.onnx"] = ["cut"]
    r = fetch(httpd.url + "/m.onnx", out, "--retries", "0")
    assert r.returncode == 1
    assert tree(out) == {"m.onnx": b"old model"}  # the failed download did not touch it
    r = fetch(httpd.url + "/m.onnx", out)
    assert r.returncode == 0, r.stderr
    assert tree(out) == {"m.onnx": BODY}


def test_url_without_file_name(fetch, httpd, tmp_path):
    r = fetch(httpd.url + "/", tmp_path / "out")
    assert r.returncode == 1
    assert "EINVAL: cannot name a file after URL" in r.stderr
    assert httpd.hits == {}


def test_connection_refused_is_retried_then_eio(fetch, tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    r = fetch(f"http://127.0.0.1:{port}/m.onnx", tmp_path / "out", "--retries", "1")
    assert r.returncode == 1
    assert "EIO: giving up after 2 attempts" in r.stderr
    assert len(retries(r)) == 1


def test_killed_fetch_leaves_no_model_and_next_fetch_cleans_up(fetch, httpd, tmp_path):
    """SIGKILL in the middle of a transfer (the init container OOM-killed or evicted): DIR holds
    no model file, only a hidden staging directory; the next fetch removes that and succeeds."""
    out = tmp_path / "out"
    httpd.files["/m.onnx"] = BODY
    httpd.faults["/m.onnx"] = ["slow"]
    proc = subprocess.Popen(fetch.argv(httpd.url + "/m.onnx", out), env=fetch.env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            partial = glob.glob(str(out / ".kinfer-fetch-*" / "m.onnx"))
            if partial and os.path.getsize(partial[0]) >= len(BODY) // 2:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the transfer never reached half")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    left = os.listdir(out)
    assert len(left) == 1 and left[0].startswith(".kinfer-fetch-"), left  # no m.onnx
    r = fetch(httpd.url + "/m.onnx", out)
    assert r.returncode == 0, r.stderr
    assert [e["event"] for e in events(r.stderr)].count("staging.removed") == 1
    assert os.listdir(out) == ["m.onnx"] and tree(out) == {"m.onnx": BODY}
