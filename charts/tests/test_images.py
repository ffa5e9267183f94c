"""`make images`: OCI image layouts built without a container engine (scripts/oci-image.sh).

`make images` links release binaries into build/bin-rel (also under SANITIZE=1, whose build/bin
holds sanitizer builds), and the comparisons here use those same binaries; when they cannot be
built, every test here fails (it never skips). Each image is unpacked with umoci and its binary run
inside the unpacked root filesystem as the image's user, so a missing library shows up here."""
import gzip
import json
import os
import stat
import subprocess
import tarfile

import pytest

from conftest import ROOT, run, tool

IMAGES = {
    # name: (flag its --help must mention, size goal for the compressed image in bytes)
    "kinfer-controller": ("--leader-elect", 15_000_000),
    "kinfer-server": ("--model-dir", 30_000_000),
}
LAYOUT = os.path.join(ROOT, "build", "images", "%s-oci")


@pytest.fixture(scope="session")
def built():
    proc = subprocess.run(["make", "--no-print-directory", "images", "SANITIZE=0"], cwd=ROOT, capture_output=True, text=True,
                          timeout=1200)
    if proc.returncode != 0:
        pytest.fail("`make images` failed (are build/bin/kinfer-controller and build/bin/kinfer-server "
                    "buildable yet?):\n%s\n%s" % (proc.stdout[-3000:], proc.stderr[-3000:]))
    print(proc.stdout)
    return proc.stdout


def blob(layout, digest):
    return os.path.join(layout, "blobs", *digest.split(":"))


def manifest_and_config(name):
    layout = LAYOUT % name
    index = json.load(open(os.path.join(layout, "index.json")))
    (desc,) = index["manifests"]
    assert desc["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    manifest = json.load(open(blob(layout, desc["digest"])))
    config = json.load(open(blob(layout, manifest["config"]["digest"])))
    return layout, manifest, config


@pytest.mark.parametrize("name", IMAGES)
def test_config(built, name):
    _, manifest, config = manifest_and_config(name)
    c = config["config"]
    assert c["Entrypoint"] == ["/usr/local/bin/" + name]
    assert c["User"] == "65532:65532"
    assert "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" in c["Env"]
    assert "8080/tcp" in c["ExposedPorts"]
    assert config["os"] == "linux" and config["architecture"]
    assert len(manifest["layers"]) == 1 and manifest["layers"][0]["mediaType"].endswith("tar+gzip")


@pytest.mark.parametrize("name", IMAGES)
def test_umoci_reads_the_config(built, name):
    out = run(["umoci", "stat", "--image", LAYOUT % name + ":latest", "--json"]).stdout
    history = json.loads(out)["history"]
    assert history and "scripts/oci-image.sh " + name in history[0]["created_by"]


@pytest.mark.parametrize("name", IMAGES)
def test_layer_contents(built, name):
    layout, manifest, _ = manifest_and_config(name)
    with gzip.open(blob(layout, manifest["layers"][0]["digest"])) as f, tarfile.open(fileobj=f) as tar:
        members = {m.name.lstrip("./"): m for m in tar.getmembers()}
        passwd = tar.extractfile(members["etc/passwd"]).read().decode()
    assert "nonroot:x:65532:65532:" in passwd
    assert members["etc/ssl/certs/ca-certificates.crt"].size > 100_000
    assert members["usr/local/bin/" + name].mode & 0o111
    assert any("ld-linux" in n for n in members), "no dynamic loader in the image"
    assert (members["home/nonroot"].uid, members["home/nonroot"].gid) == (65532, 65532)
    assert members["tmp"].mode & 0o1777 == 0o1777
    # Minimal: no shell, no package manager, no setuid file.
    assert not any(n in members for n in ("bin/sh", "usr/bin/sh", "bin/bash", "usr/bin/apt", "usr/bin/dpkg"))
    assert not [n for n, m in members.items() if m.mode & 0o6000]


@pytest.mark.parametrize("name", IMAGES)
def test_binary_runs_inside_the_image(built, name, tmp_path):
    """Unpacks the image and runs its entrypoint confined to the image's rootfs, as its user.
    As root that is a chroot (the only libraries are the image's); otherwise the image's own
    loader with the image's library directories."""
    flag, _ = IMAGES[name]
    bundle = tmp_path / "bundle"
    run(["umoci", "unpack"] + ([] if os.getuid() == 0 else ["--rootless"]) +
        ["--image", LAYOUT % name + ":latest", str(bundle)])
    spec = json.load(open(bundle / "config.json"))
    assert spec["process"]["user"]["uid"] == 65532 and spec["process"]["args"][0] == "/usr/local/bin/" + name
    rootfs = str(bundle / "rootfs")
    if os.getuid() == 0:
        cmd = ["chroot", "--userspec=65532:65532", rootfs, "/usr/local/bin/" + name, "--help"]
    else:
        libdirs = ":".join(rootfs + d for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib"))
        cmd = [rootfs + "/lib64/ld-linux-x86-64.so.2", "--inhibit-cache", "--library-path", libdirs,
               rootfs + "/usr/local/bin/" + name, "--help"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    out = proc.stdout + proc.stderr
    assert "error while loading shared libraries" not in out, out
    assert proc.returncode != 127, out
    assert flag in out, "%s --help inside the image did not print its flags:\n%s" % (name, out)


@pytest.mark.parametrize("name", IMAGES)
def test_size_goal(built, name):
    _, goal = IMAGES[name]
    comp, raw = map(int, run(["scripts/oci-image.sh", "size", LAYOUT % name]).stdout.split())
    print("%s: compressed %.2f MB, uncompressed %.2f MB" % (name, comp / 1e6, raw / 1e6))
    assert comp <= goal, "%s image is %.2f MB compressed, goal %.0f MB" % (name, comp / 1e6, goal / 1e6)


def test_reproducible(built, tmp_path):
    """Same binary in, same image digest out (fixed dates, sorted tar, numeric owners)."""
    again = tmp_path / "again"
    run(["scripts/oci-image.sh", "image", "build/bin-rel/kinfer-controller", str(again), "--port", "8080",
         "--port", "8081"])
    first = json.load(open(os.path.join(LAYOUT % "kinfer-controller", "index.json")))["manifests"][0]["digest"]
    second = json.load(open(again / "index.json"))["manifests"][0]["digest"]
    assert first == second


def test_missing_binary_is_a_loud_error(tmp_path):
    proc = subprocess.run(["scripts/oci-image.sh", "image", str(tmp_path / "nope"), str(tmp_path / "out")],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0 and "does not exist" in proc.stderr


# --- the images at work: the binaries run from the unpacked image's rootfs, as its user ---------

def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def rootfs(tmp_path):
    """Unpacks an image; returns (rootfs path, function mapping an in-image path to a host path,
    function building the argv that runs an in-image command as the image's user)."""
    def unpack(name):
        bundle = tmp_path / name
        run(["umoci", "unpack"] + ([] if os.getuid() == 0 else ["--rootless"]) +
            ["--image", LAYOUT % name + ":latest", str(bundle)])
        root = str(bundle / "rootfs")
        if os.getuid() == 0:
            # The device nodes every OCI runtime creates in a container's /dev (runtime-spec
            # "Default Devices"); the image itself has no /dev, as in any image.
            os.makedirs(root + "/dev")
            for dev, minor in (("null", 3), ("zero", 5), ("full", 7), ("random", 8), ("urandom", 9)):
                os.mknod(root + "/dev/" + dev, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
                os.chmod(root + "/dev/" + dev, 0o666)
            host = lambda p: root + p
            argv = lambda args: ["chroot", "--userspec=65532:65532", root] + args
        else:  # no chroot: the image's own loader and libraries, paths mapped into the rootfs
            host = lambda p: root + p
            libdirs = ":".join(root + d for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"))
            argv = lambda args: [root + "/lib64/ld-linux-x86-64.so.2", "--inhibit-cache", "--library-path",
                                 libdirs, root + args[0]] + [a if not a.startswith("/tmp/") else root + a
                                                              for a in args[1:]]
        os.makedirs(host("/tmp"), exist_ok=True)
        return host, argv
    return unpack


def http(method, url, body=None, timeout=5):
    import urllib.error
    import urllib.request
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_for(url, proc, seconds=60):
    import time
    deadline = time.time() + seconds
    last = None
    while time.time() < deadline:
        assert proc.poll() is None, "exited %s before %s answered:\n%s" % (proc.returncode, url, proc.stdout.read())
        try:
            last = http("GET", url, timeout=2)
            if last[0] == 200:
                return last
        except OSError as e:
            last = e
        time.sleep(0.3)
    pytest.fail("%s did not answer 200 within %ds (last: %r)" % (url, seconds, last))


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("did not exit within 40 s of SIGTERM")


def test_server_image_serves_a_model(built, rootfs):
    """kinfer-server from its image loads an ONNX model (Y = X + B) and answers a V2 infer request."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    host, argv = rootfs("kinfer-server")
    b = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("Add", ["X", "B"], ["Y"])], "add",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(b, "B")])
    os.makedirs(host("/tmp/model"))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), host("/tmp/model/model.onnx"))
    os.chmod(host("/tmp/model"), 0o755)
    port = free_port()
    proc = subprocess.Popen(argv(["/usr/local/bin/kinfer-server", "--model-dir", "/tmp/model", "--model-name", "add",
                                  "--host", "127.0.0.1", "--port", str(port), "--threads", "1"]),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for("http://127.0.0.1:%d/v2/health/ready" % port, proc)
        body = json.dumps({"inputs": [{"name": "X", "shape": [2, 4], "datatype": "FP32",
                                       "data": [0, 0, 0, 0, 10, 20, 30, 40]}]}).encode()
        status, out = http("POST", "http://127.0.0.1:%d/v2/models/add/infer" % port, body)
        assert status == 200, out
        (y,) = json.loads(out)["outputs"]
        assert y["shape"] == [2, 4] and y["data"] == [1, 2, 3, 4, 11, 22, 33, 44]
        status, metrics = http("GET", "http://127.0.0.1:%d/metrics" % port)
        assert status == 200 and b'nv_inference_request_success{model="add"' in metrics
    finally:
        stop(proc)


def test_controller_image_becomes_ready_against_the_api_server(built, rootfs):
    """kinfer-controller from its image talks TLS to the local kube-apiserver (make cluster-up)
    and reports ready; it watches a namespace nothing else uses."""
    kubeconfig = os.environ.get("KUBECONFIG")
    assert kubeconfig and os.path.exists(kubeconfig), "KUBECONFIG not set: run through `make test-packaging`"
    # The controller is ready only once its InferenceService informer has listed, which needs the
    # CRD: install it here rather than rely on a suite that ran earlier.
    kubectl = tool("KUBECTL")
    run([kubectl, "apply", "--server-side", "-f", os.path.join(ROOT, "crds")])
    run([kubectl, "wait", "--for=condition=Established", "--timeout=60s",
         "crd/inferenceservices.serving.kinfer.dev"])
    host, argv = rootfs("kinfer-controller")
    with open(kubeconfig) as src, open(host("/tmp/kubeconfig"), "w") as dst:
        dst.write(src.read())
    os.chmod(host("/tmp/kubeconfig"), 0o644)
    mport, hport = free_port(), free_port()
    proc = subprocess.Popen(argv(["/usr/local/bin/kinfer-controller", "--kubeconfig", "/tmp/kubeconfig",
                                  "--namespace", "kinfer-pkg-image-test", "--workers", "1",
                                  "--metrics-addr", "127.0.0.1:%d" % mport, "--health-addr", "127.0.0.1:%d" % hport]),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for("http://127.0.0.1:%d/readyz" % hport, proc)
        status, metrics = http("GET", "http://127.0.0.1:%d/metrics" % mport)
        assert status == 200 and b'kinfer_controller_api_requests_total{verb="' in metrics and b'code="200"' in metrics
    finally:
        stop(proc)


# --- the Dockerfiles build the same image as `make images` -----------------------------------------

DOCKERFILES = {"kinfer-controller": "controller/Dockerfile", "kinfer-server": "serving-runtime/Dockerfile"}


@pytest.mark.parametrize("name", IMAGES)
def test_dockerfile_matches_make_images(built, name, tmp_path):
    """No container engine here, so the Dockerfile is checked statically, and its build stage's
    rootfs command is run as written: its file list must equal the OCI image layer's."""
    text = open(os.path.join(ROOT, DOCKERFILES[name])).read()
    stages = [l.split() for l in text.splitlines() if l.startswith("FROM ")]
    assert stages[-1][1] == "scratch", "final stage must be FROM scratch"
    assert "USER 65532:65532" in text
    assert 'ENTRYPOINT ["/usr/local/bin/%s"]' % name in text
    assert "COPY --from=build /rootfs/ /" in text
    cmd = "scripts/oci-image.sh rootfs build/bin/%s /rootfs" % name
    assert cmd in text and "make -j\"$(nproc)\" build/bin/%s" % name in text
    _, config = manifest_and_config(name)[1:]
    expose = [l for l in text.splitlines() if l.startswith("EXPOSE ")][0].split()[1:]
    assert sorted(p + "/tcp" for p in expose) == sorted(config["config"]["ExposedPorts"])
    root = tmp_path / "rootfs"
    run(["scripts/oci-image.sh", "rootfs", "build/bin-rel/" + name, str(root)])  # what make images used
    from_dockerfile = sorted(os.path.relpath(os.path.join(d, f), root) for d, ds, fs in os.walk(root) for f in fs + ds)
    layout, manifest, _ = manifest_and_config(name)
    with gzip.open(blob(layout, manifest["layers"][0]["digest"])) as f, tarfile.open(fileobj=f) as tar:
        from_layer = sorted(m.name[2:] for m in tar.getmembers() if m.name not in ("./", "."))
    assert from_dockerfile == from_layer
