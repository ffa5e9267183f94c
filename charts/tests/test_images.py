"""`make images`: OCI image layouts built without a container engine (scripts/oci-image.sh).

The images need build/bin/kinfer-controller and build/bin/kinfer-server; when either cannot be
built, every test here fails (it never skips). Each image is unpacked with umoci and its binary run
inside the unpacked root filesystem as the image's user, so a missing library shows up here."""
import gzip
import json
import os
import subprocess
import tarfile

import pytest

from conftest import ROOT, run

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
    run(["scripts/oci-image.sh", "image", "build/bin/kinfer-controller", str(again), "--port", "8080",
         "--port", "8081"])
    first = json.load(open(os.path.join(LAYOUT % "kinfer-controller", "index.json")))["manifests"][0]["digest"]
    second = json.load(open(again / "index.json"))["manifests"][0]["digest"]
    assert first == second


def test_missing_binary_is_a_loud_error(tmp_path):
    proc = subprocess.run(["scripts/oci-image.sh", "image", str(tmp_path / "nope"), str(tmp_path / "out")],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0 and "does not exist" in proc.stderr
