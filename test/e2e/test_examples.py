"""The examples (examples/*.yaml, examples/demo/) against the real control plane, and the example
model scripts (examples/models/) against kinfer's engine. Run by `make test-examples`.

1. Every example passes `kubectl apply --dry-run=server` as written (the CRD's schema and CEL rules,
   strict field validation).
2. Every example, applied into a test namespace, is reconciled by a real kinfer-controller into the
   children it documents (Deployment, Service, HPA / ScaledObject / HTTPRoute) and reaches the
   status kwok allows: Ready, except the GPU example, which no kwok node can take (Unschedulable).
3. Every model script writes a model that kinfer's engine (build/bin/kinfer-run) loads and that
   answers as onnxruntime does on the same random inputs.
"""
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

import ctl
from ctl import apply, condition, get, kubectl, wait_for
from test_controller import container, controllers, crd, ns, owned_by, wait_ready  # noqa: F401 (fixtures)

EXAMPLES = os.path.join(ctl.ROOT, "examples")
FILES = sorted(glob.glob(os.path.join(EXAMPLES, "*.yaml")) + glob.glob(os.path.join(EXAMPLES, "demo", "*.yaml")))
PROMETHEUS = "http://prometheus.monitoring.svc:9090"
KINFER_RUN = os.path.join(ctl.ROOT, "build", "bin", "kinfer-run")


def docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def rel(path):
    return os.path.relpath(path, ctl.ROOT)


def test_every_example_is_covered():
    """A new example must get an entry in EXPECT below (what it reconciles to)."""
    names = {rel(p) for p in FILES}
    assert names == set(EXPECT), f"examples without expectations: {names - set(EXPECT)}; stale: {set(EXPECT) - names}"


def test_every_example_documents_itself():
    """The header comment says what it shows, what it needs, and how to send a request."""
    for p in FILES:
        if p.endswith(os.path.join("demo", "sklearn-iris.yaml")):
            continue  # the demo's own header points at `make demo`
        with open(p) as f:
            head = "".join(line for line in f if line.startswith("#"))
        for word in ("Shows:", "Prerequisites:", "Request"):
            assert word in head, f"{rel(p)}: header comment lacks {word!r}"
        assert "curl" in head, f"{rel(p)}: header comment shows no request"
        if "-d '{\"inputs\"" in head:  # an inline V2 body: well-formed, and its shape matches its data
            for inp in header_request(p)["inputs"]:
                n = 1
                for d in inp["shape"]:
                    n *= d
                assert inp["name"] == "input" and n == len(inp["data"]), (rel(p), inp)


@pytest.mark.parametrize("path", FILES, ids=rel)
def test_dry_run_server(path):
    out = kubectl("apply", "--dry-run=server", "-f", path)
    for d in docs(path):
        assert f"{d['kind'].lower()}/{d['metadata']['name']}" in out.replace(".serving.kinfer.dev", ""), out
        assert "(server dry run)" in out


def test_kserve_example_differs_only_in_apiversion():
    """The KServe original in the header comment, with its apiVersion changed, is the object."""
    path = os.path.join(EXAMPLES, "kserve-converted.yaml")
    with open(path) as f:
        lines = f.read().splitlines()
    start = lines.index("#     apiVersion: serving.kserve.io/v1beta1")
    block = []
    for line in lines[start:]:
        if not line.startswith("#     "):
            break
        block.append(line[len("#     "):])
    original = yaml.safe_load("\n".join(block))
    assert original["apiVersion"] == "serving.kserve.io/v1beta1"
    original["apiVersion"] = "serving.kinfer.dev/v1beta1"
    assert original == isvc_of(path)


def test_dry_run_rejects_a_broken_example():
    """The negative control: the dry run does judge the examples (an out-of-range step weight in
    the canary example is refused by the CRD's schema)."""
    [obj] = docs(os.path.join(EXAMPLES, "canary-gateway-rollout.yaml"))
    obj["spec"]["predictor"]["rollout"]["stepWeights"] = [10, 25, 150]
    p = kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(obj), check=False)
    assert p.returncode != 0 and "should be less than or equal to 100" in p.stderr, p.stderr


# ---------------------------------------------------------------------------------------------
# Reconciled by kinfer-controller.

def into(obj, ns):
    """obj in namespace ns. The demo's placement on the local cluster's real node is dropped, so the
    kwok node plays its pod here; the node-e2e suite serves the demo example from a real pod."""
    obj = json.loads(json.dumps(obj))
    obj["metadata"]["namespace"] = ns
    pred = obj.get("spec", {}).get("predictor", {})
    if pred.get("nodeSelector") == {"kinfer.dev/node": "real"}:
        del pred["nodeSelector"]
        pred["tolerations"] = [t for t in pred.get("tolerations", []) if t.get("key") != "kinfer.dev/real-node"]
        if not pred["tolerations"]:
            del pred["tolerations"]
    return obj


def isvc_of(path):
    return [d for d in docs(path) if d["kind"] == "InferenceService"][0]


def check_fraud(ns, name, dep):
    init = dep["spec"]["template"]["spec"]["initContainers"][0]
    assert init["name"] == "storage-initializer"
    assert init["args"][:2] == ["fetch", "s3://kinfer-examples/fraud"], init["args"]
    assert {"secretRef": {"name": "fraud-s3-credentials"}} in init["envFrom"], init
    assert "envFrom" not in container(dep), "the serving container must not see the credentials"
    args = container(dep)["args"]
    assert "--max-batch-size" in args and args[args.index("--max-batch-size") + 1] == "64", args
    hpa = get("hpa", name + "-predictor", ns)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)


def check_gpu(ns, name, dep):
    c = container(dep)
    assert c["resources"]["limits"]["nvidia.com/gpu"] in ("1", 1), c["resources"]
    assert "--device" in c["args"] and c["args"][c["args"].index("--device") + 1] == "cuda", c["args"]
    spec = dep["spec"]["template"]["spec"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}


def check_keda(ns, name, dep):
    so = get("scaledobject", name + "-predictor", ns)
    sp = so["spec"]
    assert (sp["minReplicaCount"], sp["maxReplicaCount"]) == (0, 8)
    [trig] = sp["triggers"]
    assert trig["type"] == "prometheus" and trig["metadata"]["threshold"] == "50"
    assert trig["metadata"]["serverAddress"] == PROMETHEUS
    assert f'namespace="{ns}",model="{name}"' in trig["metadata"]["query"], trig
    assert sp["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert get("hpa", name + "-predictor", ns, check=False) is None, "KEDA makes the HPA, not kinfer"


def route_backends(ns, name):
    route = get("httproute", name, ns)
    return route, {b["name"]: b.get("weight") for r in route["spec"]["rules"] for b in r["backendRefs"]}


def check_gateway(ns, name, dep):
    route, backends = route_backends(ns, name)
    [parent] = route["spec"]["parentRefs"]
    assert (parent["name"], parent["namespace"], parent.get("kind", "Gateway")) == ("public", "gateways", "Gateway"), parent
    assert backends == {name: 100}, backends


def check_bluegreen(ns, name, dep):
    check_gateway(ns, name, dep)
    assert dep["spec"]["replicas"] == 2, "min == max: fixed replicas, no HPA"
    assert get("hpa", name + "-predictor", ns, check=False) is None


def check_kserve(ns, name, dep):
    args = container(dep)["args"]
    for flag, value in (("--max-queue-size", "64"), ("--max-batch-size", "16"), ("--max-queue-delay-us", "20000")):
        assert flag in args and args[args.index(flag) + 1] == value, (flag, args)
    assert dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 30
    hpa = get("hpa", name + "-predictor", ns)
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60


def check_demo(ns, name, dep):
    assert get("hpa", name + "-predictor", ns)["spec"]["maxReplicas"] == 3


# example -> (controller flags, children kinds besides Deployment and Service, expected Ready
# reason, extra checks).
EXPECT = {
    "examples/fraud-sklearn-s3.yaml": ((), ("hpa",), "Available", check_fraud),
    "examples/resnet-gpu.yaml": ((), ("hpa",), "Unschedulable", check_gpu),
    "examples/mlp-keda-rps.yaml": (("--prometheus-address", PROMETHEUS), ("scaledobject",), "Available", check_keda),
    "examples/canary-gateway-rollout.yaml": ((), ("hpa", "httproute"), "Available", check_gateway),
    "examples/blue-green.yaml": ((), ("httproute",), "Available", check_bluegreen),
    "examples/kserve-converted.yaml": ((), ("hpa",), "Available", check_kserve),
    "examples/demo/sklearn-iris.yaml": ((), ("hpa",), "Available", check_demo),
}

CHILD_NAMES = {"hpa": "{}-predictor", "scaledobject": "{}-predictor", "httproute": "{}"}


@pytest.mark.parametrize("path", sorted(EXPECT))
def test_example_reconciles(path, ns, controllers):
    flags, kinds, reason, check = EXPECT[path]
    controllers(ns, *flags)
    for d in docs(os.path.join(ctl.ROOT, path)):
        apply(into(d, ns))
    name = isvc_of(os.path.join(ctl.ROOT, path))["metadata"]["name"]

    def settled():
        o = get("kisvc", name, ns, check=False)
        c = condition(o, "Ready")
        return o if c and c.get("reason") == reason and \
            o["status"].get("observedGeneration") == o["metadata"]["generation"] else None
    owner = wait_for(f"{path}: Ready reason {reason}", settled, timeout=90)
    ready = condition(owner, "Ready")
    assert ready["status"] == ("True" if reason == "Available" else "False"), ready

    dep = get("deployment", name + "-predictor", ns)
    svc = get("service", name, ns)
    assert owned_by(dep, owner) and owned_by(svc, owner)
    for kind in kinds:
        child = get(kind, CHILD_NAMES[kind].format(name), ns)
        assert owned_by(child, owner), f"{kind} not owned by the InferenceService"
    for kind in {"hpa", "scaledobject", "httproute"} - set(kinds):
        assert get(kind, CHILD_NAMES[kind].format(name), ns, check=False) is None, f"unexpected {kind}"
    check(ns, name, dep)
    if reason == "Unschedulable":
        assert "Insufficient nvidia.com/gpu" in ready["message"] or "node(s) didn't match" in ready["message"], ready
        gpu_node_makes_it_ready(name, ns)


def gpu_node_makes_it_ready(name, ns):
    """What the GPU example's prerequisites ask for: a node with the NVIDIA device plugin's
    resource, label and taint. A kwok node with them (kwok plays its kubelet) takes the pod, and the
    InferenceService turns Ready; the node is removed afterwards."""
    import uuid
    node = "kinfer-examples-gpu-" + uuid.uuid4().hex[:8]
    res = {"cpu": "16", "memory": "64Gi", "pods": "110", "nvidia.com/gpu": "1"}
    obj = {"apiVersion": "v1", "kind": "Node",
           "metadata": {"name": node, "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                        "labels": {"type": "kwok", "kubernetes.io/hostname": node, "kubernetes.io/os": "linux",
                                   "kubernetes.io/arch": "amd64", "nvidia.com/gpu.present": "true"}},
           "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]},
           "status": {"capacity": res, "allocatable": res}}
    kubectl("create", "-f", "-", input=json.dumps(obj))
    try:
        owner = wait_for(f"{name} Ready on the GPU node", lambda: (lambda o: o if (condition(o, "Ready") or {}).get(
            "reason") == "Available" else None)(get("kisvc", name, ns, check=False)), timeout=120)
        assert condition(owner, "Ready")["status"] == "True"
        pods = json.loads(kubectl("get", "pods", "-n", ns, "-l", f"serving.kinfer.dev/inferenceservice={name}",
                                  "-o", "json"))["items"]
        assert pods and all(p["spec"].get("nodeName") == node for p in pods), [p["spec"].get("nodeName") for p in pods]
    finally:
        kubectl("delete", "node", node, "--wait=false", check=False)


def test_canary_example_starts_a_rollout(ns, controllers):
    """The canary example's documented next step: a new storageUri starts a canary revision beside
    the stable one, and the rollout shows in the status (kwok's fake pod IPs give the controller no
    metrics, so the rollout cannot pass a check here; test_canary.py drives rollouts to the end
    with real kinfer-server metrics)."""
    controllers(ns)
    obj = into(isvc_of(os.path.join(EXAMPLES, "canary-gateway-rollout.yaml")), ns)
    apply(obj)
    wait_ready("canary-iris", ns)
    obj["spec"]["predictor"]["model"]["storageUri"] = "s3://kinfer-examples/iris/v2"
    apply(obj)

    def rollout():
        o = get("kisvc", "canary-iris", ns)
        pred = (o.get("status") or {}).get("components", {}).get("predictor", {})
        r = pred.get("rollout") or {}
        return (o, pred, r) if r.get("revision") and r["revision"] == pred.get("latestCreatedRevision") else None
    o, pred, r = wait_for("the rollout of the new revision in status", rollout, timeout=60)
    assert r["revision"].startswith("canary-iris-predictor-"), r
    assert r["phase"] in ("WaitingForCanary", "Progressing", "Paused"), r
    canary = get("deployment", r["revision"], ns)
    assert canary["spec"]["template"]["spec"]["initContainers"][0]["args"][1] == "s3://kinfer-examples/iris/v2"
    stable = get("deployment", "canary-iris-predictor", ns)
    assert stable["spec"]["template"]["spec"]["initContainers"][0]["args"][1] == "s3://kinfer-examples/iris/v1"
    # kwok makes the canary Ready at once, so it gets the first step weight, 10%, and keeps it:
    # the next check is a minute away (interval: 1m).
    wait_for("HTTPRoute 90/10 and the rollout at weight 10",
             lambda: route_backends(ns, "canary-iris")[1] == {stable_rev(ns): 90, r["revision"]: 10}
             and (get("kisvc", "canary-iris", ns)["status"]["components"]["predictor"].get("rollout") or {})
             .get("weight") == 10, timeout=60)


def stable_rev(ns):
    return get("deployment", "canary-iris-predictor", ns)["metadata"]["labels"]["serving.kinfer.dev/revision"]


# ---------------------------------------------------------------------------------------------
# The fraud example end to end, as far as this machine allows: the model made by its script sits
# in an S3 store (moto's server on loopback), the controller renders the example, and its
# storage-initializer command and its kinfer-server flags are run here as the pod would run them,
# with the example Secret's keys as the environment (what envFrom gives the init container). Then
# the request from the example's header is answered as onnxruntime answers it.
#
# moto runs with authentication off: moto 5.0.28's enforcing mode rejects correct SigV4
# signatures of a ListObjectsV2 whose prefix holds a "/" (boto3's own requests fail the same way;
# serving-runtime/tests/storage checks signing against enforcing moto on prefixes it handles).
# That the Secret's settings were used shows in the fetch's own log line (region, signed, path).

SERVER = os.path.join(ctl.ROOT, "build", "bin", "kinfer-server")


def moto_server(tmp_path):
    import boto3
    port = ctl.free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "moto.log", "w")
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1",
                             "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    wait_for("moto_server", lambda: subprocess.run(["curl", "-fsS", "-o", "/dev/null", url + "/moto-api/"],
                                                   capture_output=True).returncode == 0, timeout=30)
    s3 = boto3.client("s3", endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="testing",
                      region_name="us-east-1")
    return proc, log, url, s3


def header_request(path):
    """The V2 request body of the example's header comment (the -d '...' of its curl)."""
    import re
    with open(path) as f:
        head = "".join(line[1:] for line in f if line.startswith("#"))
    return json.loads(re.search(r"-d '(\{\"inputs\".*?\})'", head, re.S).group(1))


def test_fraud_example_end_to_end(ns, controllers, tmp_path):
    import urllib.request

    import onnxruntime as ort
    path = os.path.join(EXAMPLES, "fraud-sklearn-s3.yaml")
    model_dir = tmp_path / "made"
    subprocess.run([python(), os.path.join(EXAMPLES, "models", "make_fraud.py"), str(model_dir)], check=True,
                   capture_output=True, timeout=300)
    proc, log, url, s3 = moto_server(tmp_path)
    server = None
    try:
        s3.create_bucket(Bucket="kinfer-examples")
        s3.upload_file(str(model_dir / "model.onnx"), "kinfer-examples", "fraud/model.onnx")
        s3.put_object(Bucket="kinfer-examples", Key="fraudulent/model.onnx", Body=b"not this one")

        controllers(ns)
        objs = [into(d, ns) for d in docs(path)]
        [secret_obj] = [o for o in objs if o["kind"] == "Secret"]
        env = dict(secret_obj["stringData"])
        assert env["AWS_ACCESS_KEY_ID"] == "REPLACE-ME", "the example ships placeholders, not credentials"
        # What a user of this example does: real credentials, and the endpoint of their S3-compatible
        # store (the commented AWS_ENDPOINT_URL / AWS_S3_FORCE_PATH_STYLE lines).
        env.update(AWS_ACCESS_KEY_ID="AKIAEXAMPLEFRAUD", AWS_SECRET_ACCESS_KEY="fraud-secret",
                   AWS_ENDPOINT_URL=url, AWS_S3_FORCE_PATH_STYLE="true")
        secret_obj["stringData"] = env
        for o in objs:
            apply(o)
        wait_ready("fraud-sklearn", ns)
        dep = get("deployment", "fraud-sklearn-predictor", ns)
        init = dep["spec"]["template"]["spec"]["initContainers"][0]
        assert init["envFrom"] == [{"secretRef": {"name": "fraud-s3-credentials"}}], init
        fetch_args = init["args"]
        assert fetch_args[0] == "fetch" and fetch_args[2] == "/mnt/models", fetch_args
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_", "KINFER_"))}
        served = tmp_path / "mnt-models"

        # A Secret missing a key: the init container refuses at once with kinfer's EAUTH (both
        # AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither), and writes nothing.
        half = {k: v for k, v in env.items() if k != "AWS_SECRET_ACCESS_KEY"}
        bad = subprocess.run([SERVER, fetch_args[0], fetch_args[1], str(served)], capture_output=True, text=True,
                             timeout=60, env={**base, **half})
        assert bad.returncode != 0 and "EAUTH" in bad.stderr, bad.stderr
        assert not (served / "model.onnx").exists()

        ok = subprocess.run([SERVER, fetch_args[0], fetch_args[1], str(served)], capture_output=True, text=True,
                            timeout=60, env={**base, **env})
        assert ok.returncode == 0, ok.stderr
        assert '"region":"eu-west-1","signed":true' in ok.stderr and '"addressing":"path"' in ok.stderr, ok.stderr
        assert sorted(os.listdir(served)) == ["model.onnx"], os.listdir(served)
        assert (served / "model.onnx").read_bytes() == (model_dir / "model.onnx").read_bytes()

        args = list(container(dep)["args"])
        args[args.index("--model-dir") + 1] = str(served)
        port = ctl.free_port()
        if "--port" in args:
            args[args.index("--port") + 1] = str(port)
        else:
            args += ["--port", str(port)]
        slog = open(tmp_path / "server.log", "w")
        server = subprocess.Popen([SERVER, *args], stdout=slog, stderr=subprocess.STDOUT, env=base)
        wait_for("kinfer-server ready", lambda: subprocess.run(
            ["curl", "-fsS", "-o", "/dev/null", f"http://127.0.0.1:{port}/v2/health/ready"]).returncode == 0,
            timeout=60)
        body = header_request(path)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v2/models/fraud-sklearn/infer",
                                     data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            answer = {o["name"]: o for o in json.load(r)["outputs"]}
        x = np.array(body["inputs"][0]["data"], dtype=np.float32).reshape(body["inputs"][0]["shape"])
        sess = ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
        label, proba = sess.run(["label", "probabilities"], {"input": x})
        assert answer["label"]["data"] == label.tolist(), (answer["label"], label)
        np.testing.assert_allclose(np.array(answer["probabilities"]["data"], dtype=np.float32).reshape(proba.shape),
                                   proba, rtol=1e-5, atol=1e-6)
    finally:
        if server:
            server.terminate()
            server.wait(timeout=30)
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


# ---------------------------------------------------------------------------------------------
# The example model scripts: kinfer's engine against onnxruntime.

def python():
    return sys.executable


MODELS = {
    # script -> (inputs for a batch of B rows, tolerance)
    "make_iris.py": (lambda rng, b: {"input": (rng.random((b, 4)) * [4, 2.5, 6, 2.5] + [4, 2, 1, 0.1]).astype(np.float32)}, 1e-5),
    "make_fraud.py": (lambda rng, b: {"input": (rng.standard_normal((b, 30)) * 2).astype(np.float32)}, 1e-5),
    "make_mlp.py": (lambda rng, b: {"input": (rng.standard_normal((b, 32)) * 3 + 5).astype(np.float32)}, 1e-4),
    "make_resnet.py": (lambda rng, b: {"input": rng.standard_normal((b, 3, 224, 224)).astype(np.float32)}, 1e-3),
}


@pytest.mark.parametrize("script", sorted(MODELS))
def test_example_model_matches_onnxruntime(script, tmp_path):
    import onnxruntime as ort
    inputs_fn, tol = MODELS[script]
    out = tmp_path / "model"
    p = subprocess.run([python(), os.path.join(EXAMPLES, "models", script), str(out)], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    path = out / "model.onnx"
    assert p.stdout.strip().endswith(str(path)), p.stdout
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    batch = 2 if script == "make_resnet.py" else 64
    feeds = inputs_fn(np.random.default_rng(7), batch)
    refs = dict(zip(names, sess.run(names, feeds)))
    (tmp_path / "out").mkdir()
    args = [KINFER_RUN, "--out", str(tmp_path / "out"), str(path)]
    for k, v in feeds.items():
        np.save(tmp_path / f"in.{k}.npy", v)
        args.append(f"{k}={tmp_path / f'in.{k}.npy'}")
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"kinfer-run: {r.stderr}"
    for name, ref in refs.items():
        assert not isinstance(ref, list), f"{script}: {name} is a ZipMap output; the examples export ZipMap off"
        got = np.load(tmp_path / "out" / f"{name}.npy")
        assert got.shape == ref.shape and got.dtype == ref.dtype, (name, got.shape, got.dtype, ref.shape, ref.dtype)
        if ref.dtype.kind in "iu":
            assert np.array_equal(got, ref), f"{script}: {name} differs in {np.sum(got != ref)} of {ref.size}"
        else:
            np.testing.assert_allclose(got, ref, rtol=tol, atol=tol, err_msg=f"{script}: {name}")
    if script in ("make_fraud.py", "make_iris.py", "make_mlp.py"):
        assert len(set(refs["label"].tolist())) > 1, "the inputs exercise more than one class"


# ---------------------------------------------------------------------------------------------
# docs/api.md is generated from the CRD.

GEN = os.path.join(ctl.ROOT, "scripts", "gen-api-docs.py")


def test_api_docs_are_current():
    p = subprocess.run(["/usr/bin/python3", GEN, "--check"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"{p.stderr}\n{p.stdout[-3000:]}"
    with open(os.path.join(ctl.ROOT, "docs", "api.md")) as f:
        doc = f.read()
    crd = docs(ctl.CRD)[0]
    # Every field of the schema has its row (the generator walks them all).
    def paths(s, path):
        yield path
        items = s.get("items", {}) if s.get("type") == "array" else {}
        for name, sub in (s.get("properties") or items.get("properties") or {}).items():
            yield from paths(sub, f"{path}[].{name}" if items.get("properties") else f"{path}.{name}")
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    for part in ("spec", "status"):
        for path in paths(schema[part], part):
            assert f"| `{path}` |" in doc, f"docs/api.md has no row for {path}"


def test_api_docs_check_detects_a_stale_page(tmp_path):
    """The negative control: a CRD description changed without regenerating is reported, and the
    hand-written prose outside the markers survives regeneration."""
    for d in ("scripts", "crds", "docs"):
        (tmp_path / d).mkdir()
    for src, dst in ((GEN, "scripts/gen-api-docs.py"), (ctl.CRD, "crds/serving.kinfer.dev_inferenceservices.yaml"),
                     (os.path.join(ctl.ROOT, "docs", "api.md"), "docs/api.md")):
        with open(src) as f, open(tmp_path / dst, "w") as g:
            g.write(f.read())
    crd = tmp_path / "crds" / "serving.kinfer.dev_inferenceservices.yaml"
    crd.write_text(crd.read_text().replace("description: The parent's name.", "description: The Gateway's name."))
    gen = str(tmp_path / "scripts" / "gen-api-docs.py")
    p = subprocess.run(["/usr/bin/python3", gen, "--check"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "docs/api.md is stale" in p.stderr, p
    assert "+| `spec.routing.gateway.parentRefs[].name` | string | yes | The Gateway's name." in p.stdout, p.stdout
    before = (tmp_path / "docs" / "api.md").read_text()
    assert subprocess.run(["/usr/bin/python3", gen], capture_output=True, timeout=60).returncode == 0
    after = (tmp_path / "docs" / "api.md").read_text()
    assert "The Gateway's name." in after and "The parent's name." not in after
    assert before.split("<!-- BEGIN GENERATED")[0] == after.split("<!-- BEGIN GENERATED")[0], "prose lost"
    assert subprocess.run(["/usr/bin/python3", gen, "--check"], capture_output=True, timeout=60).returncode == 0


# ---------------------------------------------------------------------------------------------
# docs/operations.md and docs/README.md against the code: a reason, metric or page added without
# documentation fails here.

def read(*parts):
    with open(os.path.join(ctl.ROOT, *parts)) as f:
        return f.read()


def test_operations_doc_covers_every_status_reason():
    import re
    src = read("controller", "src", "reconcile", "status.c")
    reasons = set(re.findall(r'verdict_set\([^,]+,\s*[A-Z_]+,\s*"([A-Za-z]+)"', src))
    table = src[src.index("waiting_reasons[] = {"):src.index("};", src.index("waiting_reasons[] = {"))]
    reasons |= set(re.findall(r'\{"([A-Za-z]+)",\s*[01]\}', table))
    reasons |= set(re.findall(r'PHASE_STALLED,\s*"([A-Za-z]+)"', src))
    assert {"Available", "InvalidSpec", "Unschedulable", "ImagePullBackOff", "ReplicasNotReady"} <= reasons, reasons
    doc = read("docs", "operations.md")
    missing = sorted(r for r in reasons if f"`{r}`" not in doc)
    assert not missing, f"docs/operations.md does not explain: {missing}"


def test_operations_doc_covers_every_metric():
    import re
    names = set()
    for d in ("controller/src", "serving-runtime/src/metrics"):
        for p in glob.glob(os.path.join(ctl.ROOT, d, "**", "*.c"), recursive=True):
            src = read(p)
            names |= set(re.findall(r"# (?:TYPE|HELP) ([a-z_]+)", src))
            if "serving-runtime" in d:
                names |= set(re.findall(r'"((?:nv_inference|kinfer)_[a-z_]+)', src))
    assert len([n for n in names if n.startswith("kinfer_controller_")]) >= 10, names
    assert "nv_inference_request_success" in names and "kinfer_model_ready" in names, names
    doc = read("docs", "operations.md")
    missing = sorted(n for n in names if f"`{n}`" not in doc)
    assert not missing, f"docs/operations.md does not list: {missing}"


def test_docs_index_links_every_page():
    index = read("docs", "README.md")
    for entry in sorted(os.listdir(os.path.join(ctl.ROOT, "docs"))):
        if entry == "README.md" or entry.startswith("."):
            continue
        link = entry + ("/" if os.path.isdir(os.path.join(ctl.ROOT, "docs", entry)) else "")
        assert f"]({link})" in index, f"docs/README.md does not link {link}"
