"""Autoscaling under real load on the real node: a CPU-bound model (slow_model, about 19 GFLOP a
request) with scaleMetric cpu scales from 1 to 3 replicas under load through its Service, from
the pods' CPU as metrics-server reads it from the kubelet, and back to 1 after the load stops
(a short autoScaling.behavior). The load generator records every request; none may fail."""
import json
import time

import ctl
from conftest import RUNTIME_IMAGE, node_isvc, pods_of, storage_secret, wait_isvc
from test_traffic import Load


def hpa(ns, name):
    return ctl.get("hpa", name + "-predictor", ns)


def test_cpu_autoscaling_up_and_down_under_load(namespace, store):
    c = ctl.Controller(namespace, "--runtime-image", RUNTIME_IMAGE)
    try:
        spec = node_isvc("busy", namespace, "s3://slow", storage_secret(namespace, store), mem="512Mi", cpu="250m",
                         minReplicas=1, maxReplicas=3, scaleMetric="cpu", scaleTarget=50,
                         batcher={"maxBatchSize": 1},
                         autoScaling={"behavior": {
                             "scaleUp": {"stabilizationWindowSeconds": 0,
                                         "policies": [{"type": "Pods", "value": 2, "periodSeconds": 15}]},
                             "scaleDown": {"stabilizationWindowSeconds": 0,
                                           "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}}})
        spec["spec"]["predictor"]["model"]["resources"]["requests"]["cpu"] = "100m"
        ctl.apply(spec)
        wait_isvc("busy", namespace, ctl.is_ready, "busy Ready", timeout=240)
        h = hpa(namespace, "busy")
        assert h["spec"]["metrics"][0]["resource"]["name"] == "cpu", h["spec"]
        cip = ctl.get("service", "busy", namespace)["spec"]["clusterIP"]
        t0 = time.monotonic()
        load = Load(cip, 80, "busy", body=json.dumps({"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32",
                                                                   "data": [1.0]}]}).encode())
        load.threads = load.threads[:2]  # two clients, a new connection per request
        load.start()
        try:
            up = ctl.wait_for("the HPA to ask for 3 replicas", lambda: (lambda o: o if (
                o["status"].get("desiredReplicas") or 0) >= 3 else None)(hpa(namespace, "busy")),
                timeout=240, interval=2)
            t_up = time.monotonic() - t0
            ctl.wait_for("3 ready pods", lambda: sum(1 for p in pods_of("busy", namespace)
                                                     if (ctl.condition(p, "Ready") or {}).get("status") == "True") >= 3,
                         timeout=240, interval=1)
            t_ready = time.monotonic() - t0
            time.sleep(10)  # the new pods take traffic
        finally:
            load.stop()
        served = {rev for _, o, _, rev in load.records if o == 200}
        bad = [o for _, o, _, _ in load.records if o != 200]
        assert not bad, sorted(set(map(str, bad)))
        cpu = up["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"]
        print("scale-up: HPA desired 3 after %.0f s (cpu %d%% of request), 3 ready after %.0f s, %d requests" % (
            t_up, cpu, t_ready, len(load.records)))
        assert cpu > 50 and served, (cpu, served)
        # The load stopped: back to one replica.
        ctl.wait_for("the HPA back at 1", lambda: (hpa(namespace, "busy")["status"].get("desiredReplicas") == 1) or None,
                     timeout=240, interval=2)
        ctl.wait_for("one pod left", lambda: len([p for p in pods_of("busy", namespace)
                                                  if not p["metadata"].get("deletionTimestamp")]) == 1 or None,
                     timeout=120, interval=1)
    finally:
        c.kill()
