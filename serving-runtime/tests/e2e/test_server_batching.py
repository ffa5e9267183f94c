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


def inference_counts(text):
    """(successes, failures) from kinfer-server's /metrics text: nv_inference_request_success and
    the sum of nv_inference_request_failure over its reasons. Every inference request the server
    accepted (read whole and routed to the model) is counted once in one of them."""
    ok = bad = None
    for line in text.splitlines():
        if line.startswith("nv_inference_request_success{"):
            ok = (ok or 0) + float(line.rsplit(" ", 1)[1])
        elif line.startswith("nv_inference_request_failure{"):
            bad = (bad or 0) + float(line.rsplit(" ", 1)[1])
    assert ok is not None and bad is not None, f"no inference counters in /metrics:\n{text[:500]}"
    return int(ok), int(bad)


def test_sigterm_under_load_loses_no_accepted_request(models, server_factory):
    """8 clients on keep-alive connections while SIGTERM arrives. Each request ends one way:
    - refused: connect() got ECONNREFUSED: the listener is closed, nothing was accepted (fine
      after SIGTERM, and each client stops there);
    - answered: 200 with the right rows, or 503 while shutting down (fine);
    - lost: the connection was up and the request written (or being written), then it was reset or
      closed without an answer. The server took it and dropped it: the test fails.
    Then the client's answers are reconciled with the server's own count of the inference
    requests it accepted (nv_inference_request_success + nv_inference_request_failure), read over
    a connection opened before SIGTERM once every client has stopped: equal, or a request was
    accepted and never answered."""
    import http.client
    import json
    import traceback

    s = server_factory(models["addmm"], "--max-batch-size", "8", "--instances", "2", "--grace-period-s", "10")
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    want = ort_run(models["addmm"], {"x": x, "y": x})["z"]
    body = json.dumps(body_for(x, x))
    path = f"/v2/models/{s.name}/infer"
    term = threading.Event()
    lock = threading.Lock()
    res = {"ok": 0, "unavailable": 0, "refused": 0, "bad": [], "lost": [], "died": []}

    def client(i):
        conn, n = None, 0
        try:
            while True:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
                    try:
                        conn.connect()
                    except ConnectionRefusedError:
                        with lock:
                            res["refused"] += 1
                            if not term.is_set():
                                res["bad"].append((i, n, "connection refused before SIGTERM"))
                        return  # the listener is closed for good
                n += 1
                try:
                    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                except OSError as e:
                    with lock:
                        res["lost"].append((i, n, "while sending", repr(e)))
                    return
                try:
                    r = conn.getresponse()
                    data = r.read()
                except (OSError, http.client.HTTPException) as e:
                    with lock:
                        res["lost"].append((i, n, "after sending", repr(e)))
                    return
                with lock:
                    if r.status == 200:
                        out = {o["name"]: o for o in json.loads(data)["outputs"]}["z"]
                        got = np.array(out["data"], np.float32).reshape(out["shape"])
                        if np.allclose(got, want, rtol=1e-5, atol=1e-6):
                            res["ok"] += 1
                        else:
                            res["bad"].append((i, n, 200, "wrong rows"))
                    elif r.status == 503 and term.is_set():
                        res["unavailable"] += 1
                    else:
                        res["bad"].append((i, n, r.status, data[:200]))
                if r.will_close:  # the server said Connection: close; a new connection next
                    conn.close()
                    conn = None
        except BaseException:
            with lock:
                res["died"].append(traceback.format_exc())

    # The server's count is read at the end over this connection, opened (and used once, so it
    # is adopted and kept alive) before SIGTERM: after SIGTERM no new connection is accepted.
    counter = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    counter.request("GET", "/metrics")
    r = counter.getresponse()
    assert r.status == 200 and not r.will_close
    r.read()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    term.set()
    t_term = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(timeout=15)
    assert not [t for t in threads if t.is_alive()], "a client hung"
    clients_done = time.monotonic() - t_term
    try:
        counter.request("GET", "/metrics")
        r = counter.getresponse()
        text = r.read().decode()
    except (OSError, http.client.HTTPException) as e:
        raise AssertionError(f"could not read the server's final counts {clients_done:.3f}s after SIGTERM "
                             f"(it lingers 0.5 s after the drain for open connections): {e!r}; clients saw {res}")
    assert r.status == 200, (r.status, text[:200])
    assert s.proc.wait(timeout=15) == 0, s.logs()
    assert res["died"] == [], res["died"][0]
    assert res["lost"] == [], f"requests written on a live connection and never answered: {res['lost'][:5]}"
    assert res["bad"] == [], res["bad"][:3]
    assert res["refused"] == len(threads), res  # every client ended on the closed listener
    assert res["ok"] > 50, res
    served, failed = inference_counts(text)
    assert served == res["ok"], f"the server answered {served} requests 200, the clients got {res['ok']}: {res}"
    assert served + failed == res["ok"] + res["unavailable"], \
        f"the server accepted {served + failed} inference requests, the clients got {res['ok'] + res['unavailable']} answers: {res}"
    print(f"SIGTERM under load: {res['ok']} answered 200, {res['unavailable']} 503, {res['refused']} refused at connect; "
          f"server counted {served} + {failed}; clients done {clients_done:.3f}s after SIGTERM")


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
