"""The chart on its own: lint, values schema, least-privilege RBAC, pod security, CRD copy."""
import filecmp
import glob
import json
import os

import pytest

from conftest import CHART, ROOT, by_kind, render, run

EVERYTHING = ("metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true", "podDisruptionBudget.enabled=true",
              "rbac.istio=true", "rbac.keda=true",
              "rbac.storageSecrets[0].namespace=models", "rbac.storageSecrets[0].names[0]=s3-creds")


def test_lint_strict(helm):
    out = run([helm, "lint", "--strict", CHART]).stdout
    assert "1 chart(s) linted, 0 chart(s) failed" in out
    assert "[WARNING]" not in out and "[ERROR]" not in out, out


def test_lint_strict_every_option(helm):
    args = [helm, "lint", "--strict", CHART]
    for s in EVERYTHING + ("controller.watchNamespace=models",):
        args += ["--set", s]
    assert "0 chart(s) failed" in run(args).stdout


def test_make_chart_packages_everything(tmp_path):
    out = run(["make", "--no-print-directory", "chart"]).stdout
    (pkg,) = [l.split(": ", 1)[1] for l in out.splitlines() if l.startswith("Successfully packaged chart and saved it to: ")]
    import tarfile
    names = set(tarfile.open(pkg).getnames())
    for f in ("Chart.yaml", "values.yaml", "values.schema.json", "README.md", "templates/deployment.yaml",
              "templates/tests/test-controller-ready.yaml", "crds/serving.kinfer.dev_inferenceservices.yaml"):
        assert "kinfer/" + f in names, "%s missing from %s" % (f, pkg)


def test_prometheus_rule_matches_docs(helm):
    import yaml
    (rule,) = by_kind(render(helm, "metrics.prometheusRule.enabled=true",
                            "metrics.prometheusRule.labels.release=prometheus"), "PrometheusRule")
    docs = yaml.safe_load(open(os.path.join(ROOT, "docs", "observability", "alerts.yaml")))
    assert filecmp.cmp(os.path.join(ROOT, "docs", "observability", "alerts.yaml"),
                       os.path.join(CHART, "files", "alerts.yaml"), shallow=False), \
        "charts/kinfer/files/alerts.yaml drifted from docs/observability/alerts.yaml: run `make chart-crds`"
    assert rule["spec"] == docs, "charts/kinfer/files/alerts.yaml drifted from docs/observability/alerts.yaml: make chart-crds"
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    assert "{{ $labels.namespace }}" in json.dumps(rule)  # alert templates reach Prometheus untouched
    assert not by_kind(render(helm), "PrometheusRule")


def test_crds_are_identical_to_top_level():
    src = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "crds", "*.yaml")))
    dst = sorted(os.path.basename(p) for p in glob.glob(os.path.join(CHART, "crds", "*.yaml")))
    assert src, "no CRDs in crds/"
    assert dst == src, "charts/kinfer/crds/ has %s, crds/ has %s: run `make chart-crds`" % (dst, src)
    for name in src:
        assert filecmp.cmp(os.path.join(ROOT, "crds", name), os.path.join(CHART, "crds", name), shallow=False), \
            "charts/kinfer/crds/%s drifted from crds/%s: run `make chart-crds`" % (name, name)


def test_default_objects(helm):
    kinds = sorted(o["kind"] for o in render(helm))
    assert kinds == sorted(["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
                            "Service", "Deployment", "Job"])


def test_deployment_ha_probes_ports(helm):
    (dep,) = by_kind(render(helm), "Deployment")
    spec = dep["spec"]["template"]["spec"]
    assert dep["spec"]["replicas"] == 2
    (c,) = spec["containers"]
    assert "--leader-elect" in c["args"]
    assert "--health-addr=:8081" in c["args"] and "--metrics-addr=:8080" in c["args"]
    assert any(a.startswith("--runtime-image=kinfer/kinfer-server:") for a in c["args"])
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"metrics": 8080, "health": 8081}
    assert c["resources"]["requests"] and c["resources"]["limits"]


def test_restricted_security_context(helm):
    (dep,) = by_kind(render(helm), "Deployment")
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 65532
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}


def rules_of(objs):
    return [(o["kind"], o["metadata"].get("namespace"), r) for o in objs if o["kind"] in ("Role", "ClusterRole")
            for r in o["rules"]]


@pytest.mark.parametrize("sets", [(), EVERYTHING, ("controller.watchNamespace=models",) + EVERYTHING])
def test_rbac_has_no_wildcards(helm, sets):
    for kind, ns, r in rules_of(render(helm, *sets)):
        for field in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert "*" not in r.get(field, []), "%s in %s has a wildcard in %s: %s" % (r, kind, field, r[field])
        assert "escalate" not in r["verbs"] and "bind" not in r["verbs"] and "impersonate" not in r["verbs"]


def test_rbac_exact_controller_rules(helm):
    (cr,) = by_kind(render(helm), "ClusterRole")
    got = {(g, res): sorted(r["verbs"]) for r in cr["rules"] for g in r["apiGroups"] for res in r["resources"]}
    manage = sorted(["create", "get", "list", "watch", "patch", "update", "delete"])
    assert got == {
        ("serving.kinfer.dev", "inferenceservices"): sorted(["get", "list", "watch", "update", "patch"]),
        ("serving.kinfer.dev", "inferenceservices/status"): sorted(["get", "update", "patch"]),
        ("serving.kinfer.dev", "inferenceservices/finalizers"): ["update"],
        ("apps", "deployments"): manage,
        ("", "services"): manage,
        ("autoscaling", "horizontalpodautoscalers"): manage,
        ("", "pods"): sorted(["get", "list", "watch"]),
        ("", "events"): sorted(["create", "patch"]),
        ("events.k8s.io", "events"): sorted(["create", "patch"]),
        ("gateway.networking.k8s.io", "httproutes"): manage,
        # read-only unless rbac.istio: the controller watches VirtualServices whenever Istio is served
        ("networking.istio.io", "virtualservices"): sorted(["get", "list", "watch"]),
    }


def test_leases_only_in_release_namespace(helm):
    roles = [o for o in render(helm, namespace="ops") if o["kind"] == "Role"]
    (le,) = [o for o in roles if o["metadata"]["name"].endswith("-leader-election")]
    assert le["metadata"]["namespace"] == "ops"
    assert le["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                            "verbs": ["get", "create", "update"]}]


def test_routing_write_access_follows_values(helm):
    (cr,) = by_kind(render(helm, "rbac.gatewayAPI=false", "rbac.istio=true"), "ClusterRole")
    got = {r["resources"][0]: sorted(r["verbs"]) for r in cr["rules"]}
    assert got["httproutes"] == sorted(["get", "list", "watch"])
    assert got["virtualservices"] == sorted(["create", "get", "list", "watch", "patch", "update", "delete"])


def test_routing_flags(helm):
    (dep,) = by_kind(render(helm, "controller.defaultRouting=gateway", "controller.defaultGateway=infra/public",
                            "controller.prometheusAddress=http://prometheus.monitoring:9090"), "Deployment")
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert {"--default-routing=gateway", "--default-gateway=infra/public",
            "--prometheus-address=http://prometheus.monitoring:9090"} <= set(args)
    (dep,) = by_kind(render(helm), "Deployment")
    assert "--default-routing=none" in dep["spec"]["template"]["spec"]["containers"][0]["args"]
    proc = run([helm, "template", "kinfer", CHART, "--set", "controller.defaultRouting=istio"], check=False)
    assert proc.returncode != 0 and "needs rbac.istio=true" in proc.stderr


def test_no_secret_access_by_default(helm):
    for _, _, r in rules_of(render(helm, "rbac.istio=true", "rbac.keda=true")):
        assert "secrets" not in r["resources"]


def test_secret_access_only_by_name(helm):
    objs = render(helm, "rbac.storageSecrets[0].namespace=models", "rbac.storageSecrets[0].names[0]=s3-creds",
                  "rbac.storageSecrets[0].names[1]=gcs-creds")
    secret_rules = [(kind, ns, r) for kind, ns, r in rules_of(objs) if "secrets" in r["resources"]]
    assert len(secret_rules) == 1
    kind, ns, r = secret_rules[0]
    assert (kind, ns) == ("Role", "models")
    assert r == {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["s3-creds", "gcs-creds"],
                 "verbs": ["get"]}


def test_watch_namespace_uses_role(helm):
    objs = render(helm, "controller.watchNamespace=models")
    assert not by_kind(objs, "ClusterRole") and not by_kind(objs, "ClusterRoleBinding")
    (main,) = [o for o in by_kind(objs, "Role") if o["metadata"]["name"].endswith("-controller")]
    assert main["metadata"]["namespace"] == "models"
    (dep,) = by_kind(objs, "Deployment")
    assert "--namespace=models" in dep["spec"]["template"]["spec"]["containers"][0]["args"]


def test_optional_service_monitor_and_pdb(helm):
    objs = render(helm, "metrics.serviceMonitor.enabled=true", "podDisruptionBudget.enabled=true")
    (sm,) = by_kind(objs, "ServiceMonitor")
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"
    (svc,) = by_kind(objs, "Service")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    (pdb,) = by_kind(objs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert not by_kind(render(helm), "ServiceMonitor") and not by_kind(render(helm), "PodDisruptionBudget")


def test_metrics_service_selects_controller(helm):
    objs = render(helm)
    (svc,) = by_kind(objs, "Service")
    (dep,) = by_kind(objs, "Deployment")
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == {"metrics": 8080, "health": 8081}


def test_helm_test_hook(helm):
    (job,) = by_kind(render(helm), "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "test"
    cmd = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert cmd[:2] == ["/usr/local/bin/kinfer-server", "fetch"]
    assert cmd[2] == "http://kinfer-controller.kinfer-system.svc:8081/readyz"
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "kinfer/kinfer-server:0.1.0"
    assert job["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("bad,why", [
    ("controller.replicas=-1", "minimum"),
    ("controller.securityContext.runAsNonRoot=false", "runAsNonRoot"),
    ("controller.securityContext.runAsUser=0", "runAsUser"),
    ("controller.securityContext.privileged=true", "privileged"),
    ("controller.securityContext.allowPrivilegeEscalation=true", "allowPrivilegeEscalation"),
    ("controller.podSecurityContext.runAsUser=0", "runAsUser"),
    ("controller.healthPort=70000", "maximum"),
    ("image.pullPolicy=Sometimes", "pullPolicy"),
    ("controller.typo=1", "typo"),
    ("controller.defaultRouting=linkerd", "defaultRouting"),
    ("controller.defaultGateway=no-slash", "defaultGateway"),
    ("rbac.storageSecrets[0].namespace=models", "names"),
])
def test_schema_rejects(helm, bad, why):
    proc = run([helm, "template", "kinfer", CHART, "--set", bad], check=False)
    assert proc.returncode != 0, "values %s were accepted" % bad
    assert "values don't meet the specifications of the schema" in proc.stderr and why in proc.stderr, proc.stderr


def test_values_documented_line_by_line():
    """Every leaf value in values.yaml has a "# --" comment above it or above one of its parent keys."""
    lines = open(os.path.join(CHART, "values.yaml")).read().splitlines()

    def documented(i):
        return i > 0 and lines[i - 1].strip().startswith("#")

    undocumented = []
    for i, line in enumerate(lines):
        s = line.strip()
        if not s or s.startswith("#") or s.startswith("- ") or s.endswith(":"):
            continue  # comments, list items and block headers (their leaves are checked)
        ok, indent = documented(i), len(line) - len(line.lstrip())
        for k in range(i - 1, -1, -1):  # walk up the parent keys
            kl = lines[k]
            if ok or indent == 0:
                break
            if kl.strip() and not kl.strip().startswith("#") and len(kl) - len(kl.lstrip()) < indent:
                indent = len(kl) - len(kl.lstrip())
                ok = documented(k)
        if not ok:
            undocumented.append(s)
    assert not undocumented, "values without a comment: %s" % undocumented
    schema = json.load(open(os.path.join(CHART, "values.schema.json")))
    assert schema["additionalProperties"] is False
