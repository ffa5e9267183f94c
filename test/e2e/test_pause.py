"""Pausing an InferenceService (annotation serving.kinfer.dev/paused: "true", docs/operations.md)
against the real control plane: while paused kinfer-controller changes none of the children and a
progressive rollout holds its weight; status says so (Paused condition, observedGeneration held at
the last generation acted on) and Argo CD's health script reads Suspended; removing the annotation
applies the latest spec at once.
"""
import json
import os
import subprocess
import sys
import time

import ctl
from ctl import apply, condition, get, isvc, kubectl, wait_for

from test_controller import controllers, ns, wait_ready  # noqa: F401 (fixtures shared with the core suite)
from test_canary import (ROLLOUT, crd, events, free_port, model_dir, point_metrics, rollout_status,  # noqa: F401
                         route_weights, servers, start_rollout)

sys.path.insert(0, os.path.join(ctl.ROOT, "charts", "tests"))
from status_case import lua  # noqa: E402 (the Lua form Argo CD's health script gets)

PAUSED = "serving.kinfer.dev/paused"
HOLD_S = 6  # how long a paused object is watched for changes the controller must not make


def annotate(name, ns, value):
    """Sets the pause annotation to value, or removes it (None)."""
    kubectl("annotate", "--overwrite", "kisvc", name, "-n", ns, f"{PAUSED}={value}" if value is not None else f"{PAUSED}-")


def argo_health(obj, tmp_path):
    p = tmp_path / "obj.lua"
    p.write_text(lua(obj))
    out = subprocess.run(["lua5.4", os.path.join(ctl.ROOT, "charts", "tests", "argocd_health.lua"),
                          os.path.join(ctl.ROOT, "docs", "argocd", "health.lua"), str(p)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.split("\t", 1)[0]


def paused_condition(name, ns):
    def ok():
        o = get("kisvc", name, ns, check=False)
        c = condition(o, "Paused")
        return o if c and c["status"] == "True" else None
    return wait_for(f"{name}: Paused=True", ok, timeout=30, interval=0.2)


def template_and_generation(dep):
    return dep["metadata"]["generation"], json.dumps(dep["spec"]["template"], sort_keys=True)


def children(ns):
    out = {}
    for kind in ("deployment", "service", "hpa"):
        for o in json.loads(kubectl("get", kind, "-n", ns, "-o", "json"))["items"]:
            out[(kind, o["metadata"]["name"])] = o
    return out


def test_pause_holds_children_then_resume_applies(ns, controllers, tmp_path):
    c = controllers(ns)
    apply(isvc("p", ns, minReplicas=1, maxReplicas=3))
    wait_ready("p", ns)
    before = children(ns)
    assert ("hpa", "p-predictor") in before
    dep0 = before[("deployment", "p-predictor")]

    annotate("p", ns, "true")
    o = paused_condition("p", ns)
    pc = condition(o, "Paused")
    assert pc["reason"] == "PausedByAnnotation" and PAUSED in pc["message"], pc
    assert o["status"]["observedGeneration"] == o["metadata"]["generation"] == 1
    wait_for("Paused event", lambda: any(r == "Paused" for _, r, _ in events("p", ns)))
    assert c.metrics().get(f'kinfer_controller_paused{{inferenceservice="{ns}/p"}}') == 1.0

    # A spec change while paused: new resources, an arg, and fixed replicas (which would prune the HPA).
    change = isvc("p", ns, minReplicas=2, maxReplicas=2)
    change["metadata"]["annotations"] = {PAUSED: "true"}
    change["spec"]["predictor"]["model"]["resources"]["limits"]["cpu"] = "200m"
    change["spec"]["predictor"]["model"]["args"] = ["--max-queue-size", "77"]
    apply(change)
    assert get("kisvc", "p", ns)["metadata"]["generation"] == 2
    deadline = time.monotonic() + HOLD_S
    while time.monotonic() < deadline:
        now = children(ns)
        assert set(now) == set(before), "nothing created or pruned while paused: %s" % sorted(now)
        assert template_and_generation(now[("deployment", "p-predictor")]) == template_and_generation(dep0), \
            "the Deployment is not changed while paused"
        assert now[("hpa", "p-predictor")]["spec"]["maxReplicas"] == 3
        time.sleep(0.5)
    o = get("kisvc", "p", ns)
    assert o["metadata"]["generation"] == 2 and o["status"]["observedGeneration"] == 1, o["status"]
    assert condition(o, "Paused")["status"] == "True"
    ready = condition(o, "Ready")
    assert ready["status"] == "True" and ready["reason"] == "Available", ready  # what serves: generation 1
    assert argo_health(o, tmp_path) == "Suspended"
    # kstatus reads InProgress while observedGeneration < generation: the change is not applied.

    t0 = time.monotonic()
    annotate("p", ns, None)

    def applied():
        d = get("deployment", "p-predictor", ns, check=False)
        cont = d["spec"]["template"]["spec"]["containers"][0]
        return d if cont["resources"]["limits"]["cpu"] == "200m" and "77" in cont["args"] else None
    dep = wait_for("the change lands on resume", applied, timeout=30, interval=0.1)
    took = time.monotonic() - t0
    assert dep["spec"]["replicas"] == 2
    wait_for("HPA pruned", lambda: get("hpa", "p-predictor", ns, check=False) is None, timeout=30)
    o = wait_ready("p", ns)
    assert o["status"]["observedGeneration"] == 2 and condition(o, "Paused") is None, o["status"]
    assert argo_health(o, tmp_path) == "Healthy"
    ev = events("p", ns)
    assert any(t == "Normal" and r == "Resumed" and "generation 2" in m for t, r, m in ev), ev
    wait_for("metric cleared", lambda: f'kinfer_controller_paused{{inferenceservice="{ns}/p"}}' not in c.metrics())
    print(f"resume: the change landed {took:.2f} s after the annotation was removed")
    assert took < 10, took


def test_created_paused_applies_nothing_until_resumed(ns, controllers, tmp_path):
    controllers(ns)
    obj = isvc("early", ns)
    obj["metadata"]["annotations"] = {PAUSED: "true"}
    apply(obj)
    o = paused_condition("early", ns)
    assert "observedGeneration" not in o["status"], o["status"]
    ready = condition(o, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "Paused", ready
    assert condition(o, "Reconciling")["status"] == "True"  # kstatus: InProgress, not Current
    assert argo_health(o, tmp_path) == "Suspended"
    time.sleep(3)
    assert children(ns) == {}, "no child is created while paused"
    annotate("early", ns, None)
    o = wait_ready("early", ns)
    assert condition(o, "Paused") is None and o["status"]["observedGeneration"] == 1
    assert get("deployment", "early-predictor", ns)


def test_pause_values_other_than_true_are_ignored(ns, controllers):
    controllers(ns)
    apply(isvc("v", ns))
    wait_ready("v", ns)
    for value in ("false", "yes"):
        annotate("v", ns, value)

        def ignored():
            c = condition(get("kisvc", "v", ns), "Paused")
            return c if c and c["status"] == "False" and f'="{value}" is ignored' in c["message"] else None
        c = wait_for(f"Paused=False for {value!r}", ignored, timeout=30, interval=0.2)
        assert c["reason"] == "IgnoredAnnotationValue", c
        wait_for(f"a Warning for {value!r}", lambda: [m for t, r, m in events("v", ns)
                                                      if t == "Warning" and r == "PauseAnnotationIgnored" and f'"{value}"' in m])
    # Not paused: a spec change is applied.
    obj = isvc("v", ns)
    obj["metadata"]["annotations"] = {PAUSED: "yes"}
    obj["spec"]["predictor"]["model"]["resources"]["limits"]["cpu"] = "300m"
    apply(obj)
    wait_for("the change applied", lambda: get("deployment", "v-predictor", ns)["spec"]["template"]["spec"]
             ["containers"][0]["resources"]["limits"]["cpu"] == "300m", timeout=30)
    o = wait_ready("v", ns)
    assert o["status"]["observedGeneration"] == 2
    time.sleep(2)  # the Warning is once per value, not per reconcile
    warnings = [m for t, r, m in events("v", ns) if r == "PauseAnnotationIgnored"]
    assert len(warnings) == 2, warnings


def test_pause_holds_a_rollout_and_its_deadline(ns, controllers, servers, tmp_path):
    """A rollout paused at 20%: no check, no step and no rollback while paused, even with a failing
    canary and past progressDeadlineSeconds; on resume the paused time is taken out of the deadline
    and the interval restarts, and the rollout completes."""
    controllers(ns)
    good, bad = servers(), servers()
    good.load()
    bad.load(bad_every=2)
    rollout = dict(ROLLOUT, threshold=1, progressDeadlineSeconds=20)
    old, new = start_rollout("hold", ns, rollout)
    point_metrics("hold", ns, new, f"http://127.0.0.1:{free_port()}")  # no data yet: the weight holds at 20%
    r = wait_for("rollout at 20%", lambda: (lambda r: r if r.get("weight") == 20 and r.get("phase") in
                 ("Progressing", "Paused") else None)(rollout_status("hold", ns)), timeout=60, interval=0.2)
    annotate("hold", ns, "true")
    o = paused_condition("hold", ns)
    held = o["status"]["components"]["predictor"]["rollout"]
    paused_at = time.monotonic()
    assert held["weight"] == 20 and held["failedChecks"] == 0, held
    assert argo_health(o, tmp_path) == "Suspended"
    point_metrics("hold", ns, new, bad.url)  # a failing canary: one failed check would roll it back
    weights = route_weights("httproute", "hold", ns)
    assert weights == {old: 80, new: 20}, weights
    # Paused past the whole progress deadline (20 s from the rollout's start).
    while time.monotonic() - paused_at < 22:
        ro = rollout_status("hold", ns)
        for k in ("phase", "weight", "failedChecks", "passedChecks", "inconclusiveChecks", "lastCheckTime", "startTime"):
            assert ro.get(k) == held.get(k), (k, ro, held)
        assert route_weights("httproute", "hold", ns) == weights
        time.sleep(1)
    point_metrics("hold", ns, new, good.url)
    annotate("hold", ns, None)
    pause_s = time.monotonic() - paused_at

    def resumed():
        ro = rollout_status("hold", ns)
        return ro if ro.get("reason") == "Resumed" or ro.get("passedChecks", 0) > 0 else None
    ro = wait_for("rollout resumed", resumed, timeout=30, interval=0.1)
    r = wait_for("rollout Succeeded after the pause", lambda: (lambda r: r if r.get("phase") in ("Succeeded", "Failed")
                 else None)(rollout_status("hold", ns)), timeout=60, interval=0.2)
    assert r["phase"] == "Succeeded" and r["failedChecks"] == 0, r
    ev = events("hold", ns)
    assert not any(reason in ("ProgressDeadlineExceeded", "RolledBack", "CheckFailed") for _, reason, _ in ev), ev
    assert any(reason == "Resumed" for _, reason, _ in ev), ev

    def epoch(t):
        return time.mktime(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S"))
    moved = epoch(r["startTime"]) - epoch(held["startTime"])
    assert pause_s - 4 <= moved <= pause_s + 4, (moved, pause_s, held["startTime"], r["startTime"])
    print(f"rollout paused {pause_s:.1f} s at 20%; startTime moved by {moved:.0f} s; then {r}")
