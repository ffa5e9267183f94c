"""Helpers for kinfer-controller's integration tests: the real control plane through kubectl, and
kinfer-controller processes started and killed by the tests.

Everything goes through build/cluster/bin/kubectl (a real client against the real kube-apiserver);
nothing is mocked. The cluster's state directory follows test/cluster/lib.sh (KINFER_CLUSTER_DIR,
default build/cluster), so a private cluster works the same way.
"""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STATE = os.environ.get("KINFER_CLUSTER_DIR", "build/cluster")
if not os.path.isabs(STATE):
    STATE = os.path.join(ROOT, STATE)
KUBECONFIG = os.path.join(STATE, "kubeconfig")
KUBECTL = os.path.join(STATE, "bin", "kubectl")
CONTROLLER = os.path.join(ROOT, "build", "bin", "kinfer-controller")
CRD = os.path.join(ROOT, "crds", "serving.kinfer.dev_inferenceservices.yaml")
LOGS = os.path.join(ROOT, "build", "test-logs", "controller-e2e")
IMAGE = "kinfer/kinfer-server:e2e"


class KubectlError(Exception):
    def __init__(self, args, rc, out, err):
        super().__init__(f"kubectl {' '.join(args)} failed (rc={rc}): {err.strip() or out.strip()}")
        self.rc, self.out, self.err = rc, out, err


def kubectl(*args, input=None, check=True, timeout=60):
    """Runs kubectl; returns stdout. Raises KubectlError on failure when check."""
    p = subprocess.run([KUBECTL, "--kubeconfig", KUBECONFIG, *args], input=input, capture_output=True,
                       text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise KubectlError(args, p.returncode, p.stdout, p.stderr)
    return p if not check else p.stdout


def get(kind, name, ns, check=True, managed_fields=False):
    """The object as a dict, or None when it does not exist (check=False)."""
    extra = ["--show-managed-fields"] if managed_fields else []
    p = kubectl("get", kind, name, "-n", ns, "-o", "json", *extra, check=False)
    if p.returncode != 0:
        if not check and ("NotFound" in p.stderr or "not found" in p.stderr):
            return None
        raise KubectlError(("get", kind, name), p.returncode, p.stdout, p.stderr)
    return json.loads(p.stdout)


def apply(obj, server_side=False, manager=None, force=False, output=None):
    args = ["apply", "-f", "-"] + (["-o", output] if output else [])
    if server_side:
        args.append("--server-side")
    if manager:
        args.append(f"--field-manager={manager}")
    if force:
        args.append("--force-conflicts")
    return kubectl(*args, input=json.dumps(obj))


def wait_for(what, fn, timeout=60.0, interval=0.25):
    """Polls fn until it returns a truthy value; fails with `what` and the last value after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
        except KubectlError as e:  # a transient API error (e.g. during an apiserver restart)
            last = e
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def condition(obj, ctype):
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def is_ready(obj):
    c = condition(obj, "Ready")
    return bool(obj and c and c["status"] == "True"
                and obj["status"].get("observedGeneration") == obj["metadata"]["generation"])


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def isvc(name, ns, **predictor):
    """An InferenceService manifest; predictor fields override the small defaults used in tests."""
    pred = {
        "model": {
            "modelFormat": {"name": "onnx"},
            "storageUri": "s3://models/" + name,
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
        }
    }
    pred.update(predictor)
    return {"apiVersion": "serving.kinfer.dev/v1beta1", "kind": "InferenceService",
            "metadata": {"name": name, "namespace": ns}, "spec": {"predictor": pred}}


class Controller:
    """One kinfer-controller process, with its log under build/test-logs/controller-e2e/."""
    count = 0

    def __init__(self, namespace, *extra, lease_namespace=None):
        Controller.count += 1
        os.makedirs(LOGS, exist_ok=True)
        self.metrics_port, self.health_port = free_port(), free_port()
        self.log_path = os.path.join(LOGS, f"controller-{os.getpid()}-{Controller.count}.log")
        self.args = [CONTROLLER, "--kubeconfig", KUBECONFIG, "--namespace", namespace,
                     "--runtime-image", IMAGE, "--workers", "4",
                     "--metrics-addr", f"127.0.0.1:{self.metrics_port}",
                     "--health-addr", f"127.0.0.1:{self.health_port}", *extra]
        self.proc = None
        self.start()

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def metrics(self):
        """Prometheus text of /metrics as {name{labels}: value}. Raises when it cannot be read or
        a sample line does not parse: an empty answer must never pass a check for a value.
        Callers that wait for the endpoint to come up use metrics_or_none()."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as r:
            if r.status != 200:
                raise AssertionError(f"/metrics answered {r.status}")
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                if not k:
                    raise AssertionError(f"/metrics: unparsable sample line {line!r}")
                out[k] = float(v)  # ValueError on a malformed value: let it fail the test
        if not out:
            raise AssertionError("/metrics answered no samples")
        return out

    def metrics_or_none(self):
        """metrics(), or None while the endpoint does not answer (connection refused, timeout):
        for wait_for loops only."""
        try:
            return self.metrics()
        except OSError:
            return None

    def reconciles(self):
        m = self.metrics()
        counts = [v for k, v in m.items() if k.startswith("kinfer_controller_reconcile_total{")]
        assert counts, "no kinfer_controller_reconcile_total in /metrics"
        return sum(counts)

    def is_leader(self):
        """True when this controller reports itself the leader; raises when /metrics cannot be read
        or lacks the gauge (use it in wait_for only once metrics_or_none() answered)."""
        m = self.metrics()
        assert "kinfer_controller_leader" in m, "no kinfer_controller_leader gauge in /metrics"
        return m["kinfer_controller_leader"] == 1.0

    def tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""


def apiserver_restart():
    """Stops kube-apiserver and starts it again with the same command line, log and pid file
    (test/cluster/up.sh launches it under setsid with its pid in pids/kube-apiserver.pid), then
    waits for /readyz. etcd keeps the data, so watches resume from their resourceVersion."""
    pidfile = os.path.join(STATE, "pids", "kube-apiserver.pid")
    with open(pidfile) as f:
        pid = int(f.read().strip())
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0") if a]
    assert os.path.basename(argv[0]) == "kube-apiserver", argv
    def gone():
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split()[2] == "Z"
        except FileNotFoundError:
            return True

    # The old server must be gone before the new one starts: a draining kube-apiserver keeps
    # serving the watches it already had (for up to a minute), and two servers at once made a
    # later test see stale watch streams. SIGKILL what is left after the grace period.
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while not gone() and time.monotonic() < deadline:
        time.sleep(0.1)
    if not gone():
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 10
        while not gone() and time.monotonic() < deadline:
            time.sleep(0.1)
    assert gone(), f"kube-apiserver {pid} survived SIGKILL"
    log = open(os.path.join(STATE, "logs", "kube-apiserver.log"), "ab")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True, close_fds=True)
    log.close()
    with open(pidfile, "w") as f:
        f.write(f"{p.pid}\n")
    wait_for("kube-apiserver /readyz after restart",
             lambda: kubectl("get", "--raw", "/readyz", check=False).returncode == 0, timeout=90, interval=0.5)
    return p.pid
