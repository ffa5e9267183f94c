"""docs/observability: the alert rules pass promtool's checks and unit tests, and every metric the
alerts and the dashboard use is one the code exports (or kube-state-metrics does)."""
import glob
import json
import os
import re

import pytest
import yaml

from conftest import ROOT, run, tool

OBS = os.path.join(ROOT, "docs", "observability")
NAME = re.compile(r"\b((?:kinfer|nv)_[a-z0-9_]+)")


def exported_metrics():
    """Metric names as string literals in the controller's and the server's sources."""
    names = set()
    for path in glob.glob(os.path.join(ROOT, "controller", "src", "**", "*.c"), recursive=True) + \
            glob.glob(os.path.join(ROOT, "serving-runtime", "src", "**", "*.c"), recursive=True):
        for m in re.finditer(r'"(?:# (?:HELP|TYPE) )?((?:kinfer|nv)_[a-z0-9_]+)', open(path, errors="replace").read()):
            names.add(m.group(1))
    ksm = yaml.safe_load(open(os.path.join(OBS, "kube-state-metrics.yaml")))
    for res in ksm["spec"]["resources"]:
        for metric in res["metrics"]:
            names.add("%s_%s" % (res["metricNamePrefix"], metric["name"]))
    return names


def base(name):
    return re.sub(r"_(bucket|sum|count)$", "", name)


def used_in(exprs):
    return {base(n) for e in exprs for n in NAME.findall(e)}


def alert_rules():
    doc = yaml.safe_load(open(os.path.join(OBS, "alerts.yaml")))
    return [r for g in doc["groups"] for r in g["rules"]]


def dashboard_exprs():
    dash = json.load(open(os.path.join(OBS, "grafana-dashboard.json")))
    return dash, [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def test_alert_metrics_exist_in_code():
    known = exported_metrics()
    assert {"nv_inference_request_success", "kinfer_controller_reconcile_total"} <= known  # the scan works
    missing = used_in(r["expr"] for r in alert_rules()) - {base(k) for k in known}
    assert not missing, "alerts use metrics nothing exports: %s" % sorted(missing)


def test_dashboard_metrics_exist_in_code():
    known = {base(k) for k in exported_metrics()}
    _, exprs = dashboard_exprs()
    missing = used_in(exprs) - known
    assert not missing, "dashboard uses metrics nothing exports: %s" % sorted(missing)


def test_dashboard_shape():
    dash, exprs = dashboard_exprs()
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    assert len(exprs) >= 15
    assert {v["name"] for v in dash["templating"]["list"]} == {"datasource", "namespace", "model"}
    for p in dash["panels"]:
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}" and p["gridPos"]["w"] <= 24
    covered = used_in(exprs)
    for m in ("nv_inference_request_failure", "kinfer_request_duration_seconds", "kinfer_queue_depth",
              "kinfer_batch_size", "kinfer_controller_reconcile_total", "kinfer_controller_workqueue_depth",
              "kinfer_controller_api_requests_total", "kinfer_controller_watch_restarts_total"):
        assert m in covered, "dashboard has no panel on %s" % m


def test_required_alerts_present_and_tested():
    names = {r["alert"] for r in alert_rules()}
    assert {"KinferHighErrorRate", "KinferHighLatencyP99", "KinferRolloutFailed", "KinferQueueFull"} <= names
    tests = yaml.safe_load(open(os.path.join(OBS, "alerts_test.yaml")))
    tested = {t["alertname"] for case in tests["tests"] for t in case.get("alert_rule_test", [])}
    assert names == tested, "alerts without a promtool test: %s" % sorted(names - tested)
    for r in alert_rules():
        assert r["labels"]["severity"] in ("warning", "critical") and r["annotations"]["summary"]


def test_promtool_check_rules():
    out = run([tool("PROMTOOL"), "check", "rules", os.path.join(OBS, "alerts.yaml")])
    assert "SUCCESS: %d rules found" % len(alert_rules()) in out.stdout + out.stderr


def test_promtool_unit_tests():
    proc = run([tool("PROMTOOL"), "test", "rules", "alerts_test.yaml"], cwd=OBS, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr
