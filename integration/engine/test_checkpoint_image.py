"""Checkpoints as OCI images (issue 12): `cryo checkpoint push` stores a checkpoint in a real
registry (Debian's docker-registry with TLS and htpasswd, as in test_registry.py) in CRI-O's
form, and `cryo container restore --image` pulls one and restores it as a new container.
The manifest is read back with direct registry requests. A normal image is refused, and a
checkpoint image whose layer is hostile meets the archive import's checks."""

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import uuid
from pathlib import Path

import pytest

from conftest import BIN_DIR, COUNTER, counter_values, inspect, unavailable, wait_for
from test_registry import PASSWORD, REGISTRY, USER, Registry

CRIO_NAME = "io.kubernetes.cri-o.annotations.checkpoint.name"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def registry():
    if not Path(REGISTRY).is_file():
        unavailable(f"{REGISTRY} is not installed (Debian's docker-registry; run scripts/setup.sh)")
    if shutil.which("openssl") is None:
        unavailable("openssl is not installed (run scripts/setup.sh)")
    base = tempfile.mkdtemp(prefix="cryo-cpreg-")
    r = Registry(base)
    try:
        r.start()
        yield r
    finally:
        r.kill()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="cryo-cpimage-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def cryo_auth(cryo, *args, timeout=300):
    """cryo ARGS with the registry credentials (--username, password on stdin)."""
    return subprocess.run([str(BIN_DIR / "cryo"), "-H", cryo.daemon.host, *args[:2], "--username", USER,
                           "--password-stdin", *args[2:]], input=PASSWORD + "\n", capture_output=True,
                          text=True, timeout=timeout)


def blob(registry, repo, digest):
    status, _, body = registry.request("GET", f"/v2/{repo}/blobs/{digest}")
    assert status == 200, (status, body[:200])
    assert "sha256:" + hashlib.sha256(body).hexdigest() == digest
    return body


def put_blob(registry, repo, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    status, headers, body = registry.request("POST", f"/v2/{repo}/blobs/uploads/", body=b"",
                                             headers={"Content-Length": "0"})
    assert status == 202, (status, body)
    location = headers.get("Location") or headers.get("location")
    path = location.split(registry.host, 1)[-1]
    status, _, body = registry.request("PUT", f"{path}&digest={digest}", body=data,
                                       headers={"Content-Type": "application/octet-stream"})
    assert status == 201, (status, body)
    return digest


def push_image(registry, repo, tag, layer, annotations, declared_size=None, diff_id=None,
               media_type="application/vnd.oci.image.layer.v1.tar"):
    """A one-layer OCI image made here, straight through the registry API (the manifest may
    declare another size for the layer than it has; a compressed layer needs its diff_id)."""
    layer_digest = put_blob(registry, repo, layer)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [diff_id or layer_digest]}}).encode()
    config_digest = put_blob(registry, repo, config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": config_digest, "size": len(config)},
                           "layers": [{"mediaType": media_type,
                                       "digest": layer_digest, "size": declared_size or len(layer)}],
                           "annotations": annotations}).encode()
    status, _, body = registry.request("PUT", f"/v2/{repo}/manifests/{tag}", body=manifest,
                                       headers={"Content-Type": OCI_MANIFEST})
    assert status == 201, (status, body)


def start_counter(cryo, name):
    cryo.ok("run", "-d", "--name", name, "busybox", "sh", "-c",
            "echo kept > /kept; echo shm > /dev/shm/s; " + COUNTER)
    wait_for(lambda: len(counter_values(cryo.ok("logs", name).stdout)) >= 5, what=f"{name} counting")


def test_push_a_checkpoint_image_and_restore_it_elsewhere(cryo, name, registry, tmp):
    start_counter(cryo, name)
    src = inspect(cryo.daemon, name)
    cryo.ok("checkpoint", "create", name, "cp1")          # the container stops
    last = counter_values(cryo.ok("logs", name).stdout)[-1]
    ref = f"{registry.host}/test/cp-{name}:v1"

    # Without credentials the registry refuses, and the CLI says so.
    denied = cryo("checkpoint", "push", name, "cp1", ref, timeout=300)
    assert denied.returncode != 0 and "no basic auth credentials" in denied.stderr, denied.stderr
    r = cryo_auth(cryo, "checkpoint", "push", name, "cp1", ref)
    assert r.returncode == 0, r.stderr + cryo.daemon.log_tail()
    assert f"The push refers to repository [{registry.host}/test/cp-{name}]" in r.stdout, r.stdout
    manifest, digest, body = registry.manifest(f"test/cp-{name}", "v1")
    assert f"v1: digest: {digest} size: {len(body)}" in r.stdout, r.stdout

    # CRI-O's form: an OCI manifest with its annotations and exactly one layer whose root
    # holds the archive's files.
    assert manifest["mediaType"] == OCI_MANIFEST
    a = manifest["annotations"]
    assert a[CRIO_NAME] == name
    assert a["io.kubernetes.cri-o.annotations.checkpoint.rootfsImageName"] == src["Config"]["Image"]
    assert a["io.kubernetes.cri-o.annotations.checkpoint.rootfsImageID"] == src["Image"].removeprefix("sha256:")
    assert a["io.kubernetes.cri-o.annotations.checkpoint.criu.version"].startswith("4.")
    assert a["org.criu.checkpoint.engine.name"] == "cryo"
    assert a["org.criu.checkpoint.container.name"] == name
    assert len(manifest["layers"]) == 1
    layer = blob(registry, f"test/cp-{name}", manifest["layers"][0]["digest"])
    config = json.loads(blob(registry, f"test/cp-{name}", manifest["config"]["digest"]))
    assert config["rootfs"]["diff_ids"] == [manifest["layers"][0]["digest"]]
    with tarfile.open(fileobj=io.BytesIO(layer), mode="r:*") as t:
        members = {m.name.removeprefix("./"): m for m in t.getmembers()}
    assert members["checkpoint"].isdir()
    assert members["checkpoint/inventory.img"].isfile()
    assert members["config.dump"].isfile() and members["spec.dump"].isfile()
    assert all(not n.startswith("/") and ".." not in n.split("/") for n in members)
    with tarfile.open(fileobj=io.BytesIO(layer), mode="r:*") as t:
        spec = json.load(t.extractfile(members["spec.dump"]))
        dump = json.load(t.extractfile(members["config.dump"]))
    # What CRI-O's restore reads: a JSON map of CRI annotations, and the base image.
    assert isinstance(json.loads(spec["annotations"]["io.kubernetes.cri-o.Annotations"]), dict)
    assert dump["rootfsImageName"] == src["Config"]["Image"] and dump["name"] == name

    # The container and its checkpoint go; the image brings it back under a new name.
    cryo.ok("checkpoint", "rm", name, "cp1")
    cryo.ok("rm", "-f", name)
    new = name + "-img"
    denied = cryo("container", "restore", "--image", ref, "--name", new, timeout=300)
    assert denied.returncode != 0 and "no basic auth credentials" in denied.stderr, denied.stderr
    r = cryo_auth(cryo, "container", "restore", "--image", ref, "--name", new)
    assert r.returncode == 0, r.stderr + cryo.daemon.log_tail()
    assert "warning" not in r.stderr, r.stderr              # cryo's digest list travelled in the layer
    info = inspect(cryo.daemon, new)
    assert r.stdout.strip() == info["Id"]
    assert info["State"]["Running"] and info["Name"] == "/" + new and info["Id"] != src["Id"]
    wait_for(lambda: len(counter_values(cryo.ok("logs", new).stdout)) >= 3, what=f"{new} counting")
    assert counter_values(cryo.ok("logs", new).stdout)[0] >= last
    assert cryo.ok("exec", new, "cat", "/kept").stdout == "kept\n"
    assert cryo.ok("exec", new, "cat", "/dev/shm/s").stdout == "shm\n"
    # By digest too (a second container from the same image).
    again = cryo_auth(cryo, "container", "restore", "--image", f"{registry.host}/test/cp-{name}@{digest}",
                      "--name", new + "2")
    assert again.returncode == 0, again.stderr + cryo.daemon.log_tail()
    assert inspect(cryo.daemon, new + "2")["State"]["Running"]


def test_a_normal_image_is_not_restored(cryo, name, registry):
    plain = f"{registry.host}/test/plain-{name}:v1"
    cryo.ok("tag", "busybox", plain)
    try:
        r = subprocess.run([str(BIN_DIR / "cryo"), "-H", cryo.daemon.host, "push", "--username", USER,
                            "--password-stdin", plain], input=PASSWORD + "\n", capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr
    finally:
        cryo("rmi", plain)
    before = sorted(cryo.ok("ps", "-aq", "--no-trunc").stdout.split())
    r = cryo_auth(cryo, "container", "restore", "--image", plain, "--name", name)
    assert r.returncode != 0, r.stdout
    assert f"{registry.host}/test/plain-{name}:v1 is not a checkpoint image" in r.stderr, r.stderr
    assert CRIO_NAME in r.stderr, r.stderr
    assert sorted(cryo.ok("ps", "-aq", "--no-trunc").stdout.split()) == before
    imports = cryo.daemon.root / "imports"
    assert not imports.exists() or os.listdir(imports) == []


def test_a_hostile_checkpoint_layer_meets_the_import_checks(cryo, name, registry, tmp):
    """A CRI-O-annotated image whose layer is a real checkpoint archive plus a symlink member:
    refused by the archive import's checks, nothing created."""
    start_counter(cryo, name)
    good = os.path.join(tmp, "good.tar")
    cryo.ok("container", "checkpoint", "--leave-running", "--compress", "none", "-e", good, name)
    out = io.BytesIO()
    with tarfile.open(good) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for m in src.getmembers():
            dst.addfile(m, src.extractfile(m) if m.isfile() else None)
        evil = tarfile.TarInfo("checkpoint/evil")
        evil.type = tarfile.SYMTYPE
        evil.linkname = "/etc"
        dst.addfile(evil)
    repo = f"test/hostile-{name}"
    push_image(registry, repo, "v1", out.getvalue(), {CRIO_NAME: name})
    before = sorted(cryo.ok("ps", "-aq", "--no-trunc").stdout.split())
    r = cryo_auth(cryo, "container", "restore", "--image", f"{registry.host}/{repo}:v1", "--name", name + "-h")
    assert r.returncode != 0, r.stdout
    assert "checkpoint/evil" in r.stderr and "symbolic link" in r.stderr and "refused" in r.stderr, r.stderr
    assert sorted(cryo.ok("ps", "-aq", "--no-trunc").stdout.split()) == before
    imports = cryo.daemon.root / "imports"
    assert not imports.exists() or os.listdir(imports) == []


def test_restore_image_flags_are_checked(cryo):
    r = cryo("container", "restore", "--image", "x/y:z", "--import", "/nonexistent")
    assert r.returncode != 0 and "give one of --import FILE, --image REF or --checkpoint CP SOURCE" in r.stderr, r.stderr
    r = cryo("container", "restore", "--import", "/nonexistent", "--username", "u")
    assert r.returncode != 0 and "go with --image" in r.stderr, r.stderr


def test_bad_requests_are_answered_not_crashed(cryo, name, registry):
    d = cryo.daemon
    status, _, body = d.http("POST", f"/containers/{name}/checkpoints/cp/push")
    assert status == 400 and b"ref: the image reference" in body, (status, body)
    status, _, body = d.http("POST", f"/containers/{name}/checkpoints/cp/push?ref={registry.host}/t/x@sha256:" + "0" * 64)
    assert status == 400 and b"not a digest" in body, (status, body)
    status, _, body = d.http("POST", f"/containers/{name}/checkpoints/cp/push?ref={registry.host}/t/x:v1")
    assert status == 404, (status, body)
    status, _, body = d.http("POST", "/containers/restore?image=x/y:z", body=b"tar",
                             headers={"Content-Type": "application/x-tar"})
    assert status == 400 and b"not both" in body, (status, body)
    status, _, body = d.http("POST", "/containers/restore?image=Bad/Ref")
    assert status == 400 and b"invalid reference format" in body, (status, body)
    status, _, body = d.http("POST", f"/containers/restore?image={registry.host}/test/none-{name}:v1",
                             headers={"X-Registry-Auth": ""})
    assert status >= 400, (status, body)
    status, _, _ = d.http("GET", "/_ping")
    assert status == 200


def test_a_layer_larger_than_cryod_may_unpack_is_not_downloaded(cryo, name, registry):
    repo = f"test/huge-{name}"
    push_image(registry, repo, "v1", b"not downloaded", {CRIO_NAME: name}, declared_size=1 << 60)
    r = cryo_auth(cryo, "container", "restore", "--image", f"{registry.host}/{repo}:v1", "--name", name)
    assert r.returncode != 0, r.stdout
    assert f"checkpoint layer is {1 << 60} bytes, more than the" in r.stderr and "refused" in r.stderr, r.stderr


def test_containers_storage_sees_what_crio_looks_for(cryo, name, registry, tmp):
    """podman (containers/storage and containers/image, the libraries CRI-O pulls and mounts
    images with), on a private store: the pulled image carries CRI-O's detection annotation,
    and its mounted root holds config.dump, spec.dump (with the CRI-O annotation map) and the
    CRIU images, as CRI-O's restore reads them."""
    podman = shutil.which("podman")
    if podman is None:
        unavailable("podman is not installed")
    start_counter(cryo, name)
    cryo.ok("checkpoint", "create", "--leave-running", name, "cp1")
    ref = f"{registry.host}/test/crio-{name}:v1"
    r = cryo_auth(cryo, "checkpoint", "push", "-q", name, "cp1", ref)
    assert r.returncode == 0, r.stderr
    p = [podman, "--root", f"{tmp}/root", "--runroot", f"{tmp}/run", "--storage-driver", "vfs"]
    try:
        pulled = subprocess.run(p + ["pull", "-q", "--tls-verify=false", "--creds", f"{USER}:{PASSWORD}", ref],
                                capture_output=True, text=True, timeout=300)
        assert pulled.returncode == 0, pulled.stderr
        info = json.loads(subprocess.run(p + ["image", "inspect", ref], capture_output=True, text=True,
                                         check=True, timeout=60).stdout)[0]
        assert info["Annotations"][CRIO_NAME] == name
        mounted = subprocess.run(p + ["image", "mount", ref], capture_output=True, text=True, timeout=60)
        assert mounted.returncode == 0, mounted.stderr
        root = Path(mounted.stdout.strip())
        assert (root / "checkpoint" / "inventory.img").is_file()
        assert json.loads((root / "config.dump").read_text())["name"] == name
        spec = json.loads((root / "spec.dump").read_text())
        assert json.loads(spec["annotations"]["io.kubernetes.cri-o.Annotations"]) == {}
    finally:
        subprocess.run(p + ["image", "unmount", "-a"], capture_output=True, timeout=60)
        subprocess.run(p + ["rmi", "-a", "-f"], capture_output=True, timeout=60)


def test_a_gzip_layer_is_checked_against_its_diff_id(cryo, name, registry, tmp):
    """buildah pushes compressed layers: a gzip checkpoint layer restores; one whose config
    names another diff_id is refused before anything is made."""
    start_counter(cryo, name)
    archive = os.path.join(tmp, "cp.tar")
    cryo.ok("container", "checkpoint", "--compress", "none", "-e", archive, name)   # the source stops
    last = counter_values(cryo.ok("logs", name).stdout)[-1]
    with open(archive, "rb") as f:
        plain = f.read()
    packed = gzip.compress(plain)
    gz = "application/vnd.oci.image.layer.v1.tar+gzip"
    repo = f"test/gz-{name}"
    push_image(registry, repo, "good", packed, {CRIO_NAME: name}, media_type=gz,
               diff_id="sha256:" + hashlib.sha256(plain).hexdigest())
    push_image(registry, repo, "bad", packed, {CRIO_NAME: name}, media_type=gz,
               diff_id="sha256:" + hashlib.sha256(b"something else").hexdigest())
    before = sorted(cryo.ok("ps", "-aq", "--no-trunc").stdout.split())
    r = cryo_auth(cryo, "container", "restore", "--image", f"{registry.host}/{repo}:bad", "--name", name + "-bad")
    assert r.returncode != 0 and "don't match image configuration" in r.stderr, r.stderr
    assert sorted(cryo.ok("ps", "-aq", "--no-trunc").stdout.split()) == before
    cryo.ok("rm", "-f", name)
    r = cryo_auth(cryo, "container", "restore", "--image", f"{registry.host}/{repo}:good", "--name", name + "-gz")
    assert r.returncode == 0, r.stderr + cryo.daemon.log_tail()
    wait_for(lambda: len(counter_values(cryo.ok("logs", name + "-gz").stdout)) >= 3, what="the gzip restore counting")
    assert counter_values(cryo.ok("logs", name + "-gz").stdout)[0] >= last
