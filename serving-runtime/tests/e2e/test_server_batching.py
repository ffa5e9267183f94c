"""Dynamic batching, back-pressure, deadlines and graceful shutdown, observed from outside."""
import concurrent.futures as cf
import signal
import threading
import time

import numpy as np
import requests

from conftest import ort_run


def body_for(x, y):
    return {"inputs": [{"name": "x", "shape": list(x.shape), "datatype": "FP32", "data": x.flatten().tolist()},
                       {"name": "y", "shape": list(y.shape), "datatype": "FP32", "data": y.flatten().tolist()}]}


def post_all(url, bodies, headers=None, timeout=30):
    with cf.ThreadPoolExecutor(len(bodies)) as ex:
        return list(ex.map(lambda b: requests.post(url, json=b, headers=headers, timeout=timeout), bodies))


def z_of(r):
    out = {o["name"]: o for o in r.json()["outputs"]}["z"]
    return np.array(out["data"], np.float32).reshape(out["shape"])


def test_concurrent_requests_are_batched_and_match_unbatched(models, server_factory):
    rng = np.random.default_rng(5)
    xs = [rng.standard_normal((1 + i % 2, 4)).astype(np.float32) for i in range(8)]
    ys = [rng.standard_normal(x.shape).astype(np.float32) for x in xs]
    bodies = [body_for(x, y) for x, y in zip(xs, ys)]
    batched = server_factory(models["addmm"], "--max-batch-size", "16", "--max-queue-delay-us", "300000")
    unbatched = server_factory(models["addmm"], "--max-batch-size", "0")
    rb = post_all(batched.infer_url(), bodies)
    ru = [requests.post(unbatched.infer_url(), json=b) for b in bodies]
    for i, (a, b) in enumerate(zip(rb, ru)):
        assert a.status_code == 200 and b.status_code == 200, (a.text, b.text)
        ref = ort_run(models["addmm"], {"x": xs[i], "y": ys[i]})["z"]
        np.testing.assert_array_equal(z_of(a), z_of(b))  # each request got its own rows back
        np.testing.assert_allclose(z_of(a), ref, rtol=1e-5, atol=1e-6)
    rows = sum(x.shape[0] for x in xs)
    assert batched.metric("kinfer_batch_size_sum") == rows, batched.logs()
    execs = batched.metric("nv_inference_exec_count")
    assert execs < 8, "8 concurrent requests ran in 8 separate executions: no batching"
    assert batched.metric("kinfer_batch_size_bucket", 'le="1"') == 0
    assert batched.metric("nv_inference_request_success") == 8
    assert batched.metric("nv_inference_count") == rows  # Triton counts inferences, not requests
    # with batching off every execution holds one request
    assert unbatched.metric("nv_inference_exec_count") == 8
    assert unbatched.metric("kinfer_batch_size_sum") == 8


def test_different_inner_shapes_never_share_a_batch(models, server_factory):
    s = server_factory(models["dyn"], "--max-batch-size", "32", "--max-queue-delay-us", "300000")
    xs = [np.full((1, 3 if i % 2 else 5), i, np.float32) for i in range(8)]
    rs = post_all(s.infer_url(), [{"inputs": [{"name": "x", "shape": list(x.shape), "datatype": "FP32",
                                                "data": x.flatten().tolist()}]} for x in xs])
    for x, r in zip(xs, rs):
        assert r.status_code == 200, r.text
        out = r.json()["outputs"][0]
        assert out["shape"] == list(x.shape)
        np.testing.assert_array_equal(np.array(out["data"], np.float32), (x * 3 - 1).flatten())
    assert s.metric("nv_inference_exec_count") == 2  # one batch per inner shape
    assert s.metric("kinfer_batch_size_bucket", 'le="4"') == 2


def test_preferred_batch_size_dispatches_without_waiting(models, server_factory):
    s = server_factory(models["dyn"], "--max-batch-size", "16", "--preferred-batch-sizes", "4",
                       "--max-queue-delay-us", "5000000")
    x = np.ones((1, 2), np.float32)
    body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 1]}]}
    t0 = time.time()
    rs = post_all(s.infer_url(), [body] * 4)
    elapsed = time.time() - t0
    assert all(r.status_code == 200 for r in rs)
    assert elapsed < 3, f"a preferred-size batch waited {elapsed:.2f}s for the 5s queue delay"
    assert s.metric("kinfer_batch_size_bucket", 'le="2"') == 0 and s.metric("nv_inference_exec_count") == 1
    np.testing.assert_array_equal(np.array(rs[0].json()["outputs"][0]["data"]), (x * 3 - 1).flatten())


def test_queue_full_answers_429_at_once(models, server_factory):
    s = server_factory(models["dyn"], "--max-batch-size", "64", "--max-queue-delay-us", "2000000",
                       "--max-queue-size", "3")
    body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}
    t0 = time.time()
    with cf.ThreadPoolExecutor(10) as ex:
        futs = [ex.submit(requests.post, s.infer_url(), json=body, timeout=20) for _ in range(10)]
        first_429 = None
        for f in cf.as_completed(futs):
            if f.result().status_code == 429 and first_429 is None:
                first_429 = time.time() - t0
        rs = [f.result() for f in futs]
    codes = sorted(r.status_code for r in rs)
    assert codes.count(200) == 3 and codes.count(429) == 7, codes
    assert first_429 is not None and first_429 < 1.5, "429 was not immediate"
    r429 = [r for r in rs if r.status_code == 429][0]
    assert r429.headers["Retry-After"] == "1" and "queue is full" in r429.json()["error"]
    assert s.metric("nv_inference_request_failure", 'reason="REJECTED"') == 7


def test_request_deadline_header_and_parameter(models, server_factory):
    s = server_factory(models["dyn"], "--max-batch-size", "64", "--max-queue-delay-us", "3000000")
    body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}
    t0 = time.time()
    r = requests.post(s.infer_url(), json=body, headers={"Kinfer-Timeout-Ms": "200"}, timeout=20)
    assert r.status_code == 504 and "timed out" in r.json()["error"]
    assert time.time() - t0 < 2.0
    r = requests.post(s.infer_url(), json=dict(body, parameters={"timeout": 150000}), timeout=20)
    assert r.status_code == 504
    r = requests.post(s.infer_url(), json=body, headers={"Kinfer-Timeout-Ms": "soon"})
    assert r.status_code == 400
    assert s.metric("nv_inference_request_failure", 'reason="TIMEOUT"') == 2
    fast = server_factory(models["dyn"], "--request-timeout-ms", "100", "--max-batch-size", "8",
                          "--max-queue-delay-us", "2000000")
    assert requests.post(fast.infer_url(), json=body, timeout=20).status_code == 504


def test_instances_and_no_batch_dimension(models, server_factory):
    s = server_factory(models["addmm"], "--instances", "2", "--max-batch-size", "8")
    rng = np.random.default_rng(9)
    xs = [rng.standard_normal((2, 4)).astype(np.float32) for _ in range(32)]
    rs = post_all(s.infer_url(), [body_for(x, x) for x in xs])
    for x, r in zip(xs, rs):
        np.testing.assert_allclose(z_of(r), ort_run(models["addmm"], {"x": x, "y": x})["z"], rtol=1e-5, atol=1e-6)
    fixed = server_factory(models["fixed"], "--max-batch-size", "8", "--max-queue-delay-us", "100000")
    assert "batching_disabled" in fixed.logs()
    body = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [-1, 1, 2, -2]}]}
    rs = post_all(fixed.infer_url(), [body] * 4)
    assert all(r.json()["outputs"][0]["data"] == [0, 1, 2, 0] for r in rs)
    assert fixed.metric("kinfer_batch_size_sum") == fixed.metric("kinfer_batch_size_count") == 4


def test_not_ready_before_model_loads(tmp_path, server_factory):
    s = server_factory(str(tmp_path / "missing"), ready=False)
    assert s.proc.wait(timeout=10) == 1
    assert "model_load_failed" in s.logs()


def test_sigterm_finishes_every_queued_request(models, server_factory):
    s = server_factory(models["addmm"], "--max-batch-size", "64", "--max-queue-delay-us", "3000000",
                       "--grace-period-s", "10")
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((1, 4)).astype(np.float32) for _ in range(12)]
    with cf.ThreadPoolExecutor(12) as ex:
        futs = [ex.submit(requests.post, s.infer_url(), json=body_for(x, x), timeout=20) for x in xs]
        deadline = time.time() + 5
        while s.metric("kinfer_queue_depth") < 12 and time.time() < deadline:
            time.sleep(0.02)
        assert s.metric("kinfer_queue_depth") == 12
        t0 = time.time()
        s.proc.send_signal(signal.SIGTERM)
        rs = [f.result() for f in futs]
    assert s.proc.wait(timeout=10) == 0, s.logs()
    assert time.time() - t0 < 2.5, "the drain waited for the queue delay"
    for x, r in zip(xs, rs):
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(z_of(r), ort_run(models["addmm"], {"x": x, "y": x})["z"], rtol=1e-5, atol=1e-6)
    assert "shutdown_complete" in s.logs()


def test_sigterm_under_load_loses_no_accepted_request(models, server_factory):
    s = server_factory(models["addmm"], "--max-batch-size", "8", "--instances", "2", "--grace-period-s", "10")
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    want = ort_run(models["addmm"], {"x": x, "y": x})["z"]
    stop = threading.Event()
    results = {"ok": 0, "bad": [], "refused": 0, "unavailable": 0}
    lock = threading.Lock()

    def client():
        sess = requests.Session()
        while not stop.is_set():
            try:
                r = sess.post(s.infer_url(), json=body_for(x, x), timeout=10)
            except requests.ConnectionError:
                with lock:
                    results["refused"] += 1  # the server is gone or closing: this request was not accepted
                sess = requests.Session()
                if s.proc.poll() is not None:
                    return
                continue
            with lock:
                if r.status_code == 200 and np.allclose(z_of(r), want, rtol=1e-5, atol=1e-6):
                    results["ok"] += 1
                elif r.status_code == 503:
                    results["unavailable"] += 1
                else:
                    results["bad"].append((r.status_code, r.text[:200]))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=15) == 0, s.logs()
    stop.set()
    for t in threads:
        t.join(timeout=15)
    assert results["ok"] > 50, results
    assert results["bad"] == [], results["bad"][:3]


def test_sigterm_refuses_new_connections_and_finishes_accepted_ones(models, server_factory):
    """After SIGTERM the port is closed (a new connect gets ECONNREFUSED) while requests already
    queued on open keep-alive connections are answered, then those connections are closed."""
    import errno
    import http.client
    import json
    import socket

    s = server_factory(models["addmm"], "--max-batch-size", "64", "--max-queue-delay-us", "2000000",
                       "--grace-period-s", "5")
    rng = np.random.default_rng(7)
    xs = [rng.standard_normal((1, 4)).astype(np.float32) for _ in range(16)]
    conns = [http.client.HTTPConnection("127.0.0.1", s.port, timeout=20) for _ in xs]
    for c, x in zip(conns, xs):  # one keep-alive connection each, requests left queued in the batcher
        c.request("POST", f"/v2/models/{s.name}/infer", body=json.dumps(body_for(x, x)),
                  headers={"Content-Type": "application/json", "Connection": "keep-alive"})
    deadline = time.time() + 5
    while s.metric("kinfer_queue_depth") < len(xs) and time.time() < deadline:
        time.sleep(0.02)
    assert s.metric("kinfer_queue_depth") == len(xs)
    t0 = time.time()
    s.proc.send_signal(signal.SIGTERM)
    deadline = time.time() + 2
    while '"shutdown"' not in s.logs() and time.time() < deadline:
        time.sleep(0.01)
    assert '"shutdown"' in s.logs(), s.logs()
    with socket.socket() as probe:
        err = probe.connect_ex(("127.0.0.1", s.port))
    assert err == errno.ECONNREFUSED, f"connect after SIGTERM gave {errno.errorcode.get(err, err)}"
    for c, x in zip(conns, xs):
        r = c.getresponse()
        body = r.read()
        assert r.status == 200, body
        assert r.getheader("Connection", "").lower() == "close"  # the keep-alive connection ends
        out = {o["name"]: o for o in json.loads(body)["outputs"]}["z"]
        np.testing.assert_allclose(np.array(out["data"], np.float32).reshape(out["shape"]),
                                   ort_run(models["addmm"], {"x": x, "y": x})["z"], rtol=1e-5, atol=1e-6)
        c.close()
    assert s.proc.wait(timeout=5) == 0, s.logs()
    assert time.time() - t0 < 5, "exit took longer than the grace period"
    assert "shutdown_complete" in s.logs()


def test_cheap_model_runs_inline_and_answers_the_same(models, server_factory):
    """--inline-max-us: once the tiny model's compute is measured, requests run on the HTTP thread
    (kinfer_inline_requests_total counts them) and get the same answers; 0 turns it off."""
    rng = np.random.default_rng(11)
    xs = [rng.standard_normal((1, 4)).astype(np.float32) for _ in range(6)]
    ys = [rng.standard_normal((1, 4)).astype(np.float32) for _ in range(6)]
    # a generous bound, so a sanitized build (several times slower) still counts as cheap
    on = server_factory(models["addmm"], "--inline-max-us", "100000")
    off = server_factory(models["addmm"], "--inline-max-us", "0")
    for x, y in zip(xs, ys):
        a = requests.post(on.infer_url(), json=body_for(x, y))
        b = requests.post(off.infer_url(), json=body_for(x, y))
        assert a.status_code == 200 and b.status_code == 200, (a.text, b.text)
        np.testing.assert_array_equal(z_of(a), z_of(b))
        np.testing.assert_allclose(z_of(a), ort_run(models["addmm"], {"x": x, "y": y})["z"], rtol=1e-5, atol=1e-6)
    # the first request has no estimate yet and goes to a worker; the rest run inline
    assert on.metric("kinfer_inline_requests_total") == 5, on.logs()
    assert on.metric("nv_inference_request_success") == 6
    assert off.metric("kinfer_inline_requests_total") == 0
    # a queue delay asks for fuller batches: never inline
    delayed = server_factory(models["addmm"], "--inline-max-us", "100000", "--max-queue-delay-us", "1000")
    for x, y in zip(xs, ys):
        assert requests.post(delayed.infer_url(), json=body_for(x, y)).status_code == 200
    assert delayed.metric("kinfer_inline_requests_total") == 0
