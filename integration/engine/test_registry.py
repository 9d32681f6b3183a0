"""docker pull / login / tag against a real registry: Debian's docker-registry (distribution
2.8) started by these tests on 127.0.0.1 (a free port) with TLS and htpasswd (bcrypt) auth,
seeded with skopeo from the test images. Faults (a corrupted blob, a registry that dies in the
middle of a download) come from a small HTTP proxy in front of the registry that these tests
run. Nothing leaves the machine.

cryod here is a daemon of this module's own, with an empty image store, so that every layer
really is downloaded (the shared daemon has busybox loaded).
"""

import base64
import hashlib
import http.client
import http.server
import io
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import BIN_DIR, IMAGES, Daemon, _check_requirements, cleanup, unavailable

REGISTRY = "/usr/bin/docker-registry"
USER, PASSWORD = "testuser", "testpass"
BUSYBOX_ID = "sha256:0fbf4281901688349e44ebd3c8c06674df0f620a691eab9d2b078d73d5764e98"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bcrypt_line(user, password):
    """An htpasswd line with a bcrypt hash (Python 3.11's crypt, else htpasswd -B)."""
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import crypt
        h = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))
        if h and h.startswith("$2"):
            return f"{user}:{h}\n"
    except ImportError:
        pass
    try:
        import bcrypt
        return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()}\n"
    except ImportError:
        pass
    if shutil.which("htpasswd"):
        return subprocess.run(["htpasswd", "-Bbn", user, password], capture_output=True, text=True,
                              check=True).stdout.strip() + "\n"
    unavailable("no bcrypt: neither python's crypt, the bcrypt module nor htpasswd")


class Registry:
    """A docker-registry process with TLS and htpasswd auth, on its own data directory."""

    def __init__(self, base):
        self.base = Path(base)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.proc = None
        self.log = self.base / "registry.log"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                        "-keyout", str(self.base / "key.pem"), "-out", str(self.base / "cert.pem")],
                       check=True, capture_output=True)
        (self.base / "htpasswd").write_text(bcrypt_line(USER, PASSWORD))
        (self.base / "config.yml").write_text(f"""version: 0.1
log: {{level: info}}
storage: {{filesystem: {{rootdirectory: {self.base}/data}}, delete: {{enabled: true}}}}
http: {{addr: {self.host}, tls: {{certificate: {self.base}/cert.pem, key: {self.base}/key.pem}}}}
auth: {{htpasswd: {{realm: test-registry, path: {self.base}/htpasswd}}}}
""")

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([REGISTRY, "serve", str(self.base / "config.yml")], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                status, _, _ = self.request("GET", "/v2/", auth=False)
                if status == 401:
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"docker-registry did not answer on {self.host}: {self.log.read_text()[-2000:]}")

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def request(self, method, path, body=None, headers=None, auth=True):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=30)
        h = dict(headers or {})
        if auth:
            h["Authorization"] = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def manifest(self, repo, ref):
        accept = ", ".join(["application/vnd.docker.distribution.manifest.v2+json",
                            "application/vnd.docker.distribution.manifest.list.v2+json",
                            "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json"])
        status, headers, body = self.request("GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": accept})
        assert status == 200, (status, body)
        return json.loads(body), "sha256:" + hashlib.sha256(body).hexdigest(), body

    def seed(self, source, repo, extra=()):
        r = subprocess.run(["skopeo", "--insecure-policy", "copy", *extra, source, f"docker://{self.host}/{repo}",
                            "--dest-tls-verify=false", "--dest-creds", f"{USER}:{PASSWORD}"],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"skopeo copy {source} -> {repo}: {r.stderr}"


def fresh_image_archive(path, marker, size=64 << 10):
    """A docker-archive (docker save layout) of busybox plus one layer of new content, so that
    no store and no skopeo cache has seen that layer before."""
    with tarfile.open(IMAGES / "busybox.tar") as src:
        manifest = json.load(src.extractfile("manifest.json"))[0]
        config = json.load(src.extractfile(manifest["Config"]))
        base_layer = src.extractfile(manifest["Layers"][0]).read()
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as t:
        data = (marker + "\n").encode() + os.urandom(size)
        info = tarfile.TarInfo("marker.bin")
        info.size = len(data)
        info.mtime = 1700000000
        t.addfile(info, io.BytesIO(data))
    layer = layer.getvalue()
    diff = "sha256:" + hashlib.sha256(layer).hexdigest()
    config["rootfs"]["diff_ids"].append(diff)
    config["history"].append({"created": "2023-11-14T22:13:20Z", "created_by": "test layer " + marker})
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    with tarfile.open(path, "w") as out:
        for name, data in [("base.tar", base_layer), ("top.tar", layer), (config_name, config_bytes),
                           ("manifest.json", json.dumps([{"Config": config_name, "RepoTags": [f"fresh:{marker}"],
                                                          "Layers": ["base.tar", "top.tar"]}]).encode())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    return "sha256:" + hashlib.sha256(config_bytes).hexdigest()


class FaultProxy:
    """A plain-HTTP proxy in front of the registry (cryod reaches it as an insecure loopback
    registry: TLS first, then HTTP). It counts blob GETs and injects faults: `corrupt` (blob
    digests whose content gets one byte flipped) and `die_on` (a blob digest: half of it is
    sent, then the registry is killed and the connection closed)."""

    def __init__(self, registry, bearer=False):
        self.registry = registry
        # bearer: answer like a registry with a token service (realm on this proxy): /token
        # hands out a token for the test user's Basic credentials, /v2/ wants that token.
        self.bearer = bearer
        self.token = "tok-" + uuid.uuid4().hex
        self.token_queries = []
        self.corrupt = set()
        self.die_on = None
        # stall_on: a blob digest: half of it is sent, `stalled` is set, and the rest waits
        # for `release`.
        self.stall_on = None
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.blob_gets = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def reply(self, status, headers, data):
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "accept", "content-type")}
                if proxy.bearer:
                    basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                    if self.path.startswith("/token"):
                        proxy.token_queries.append(self.path)
                        if self.headers.get("Authorization") != basic:
                            return self.reply(401, {}, b'{"details":"wrong credentials"}')
                        return self.reply(200, {"Content-Type": "application/json"},
                                          json.dumps({"token": proxy.token, "expires_in": 300}).encode())
                    if self.headers.get("Authorization") != "Bearer " + proxy.token:
                        challenge = f'Bearer realm="http://{proxy.host}/token",service="test-registry"'
                        return self.reply(401, {"WWW-Authenticate": challenge, "Content-Type": "application/json"},
                                          b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
                    headers["Authorization"] = basic
                if "Accept" in self.headers:
                    headers["Accept"] = ", ".join(self.headers.get_all("Accept"))
                digest = self.path.rsplit("/", 1)[-1].split("?")[0]
                is_blob = "/blobs/" in self.path and self.command == "GET"
                if is_blob:
                    proxy.blob_gets.append(digest)
                try:
                    status, rh, data = proxy.registry.request(self.command, self.path, body=body, headers=headers, auth=False)
                except OSError:
                    self.close_connection = True
                    return
                if is_blob and status == 200 and digest in proxy.corrupt:
                    data = data[:-1] + bytes([data[-1] ^ 0xFF])
                self.send_response(status)
                for k, v in rh.items():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                if is_blob and status == 200 and digest == proxy.stall_on:
                    self.wfile.write(data[:len(data) // 2])
                    self.wfile.flush()
                    proxy.stalled.set()
                    proxy.release.wait(60)
                    self.close_connection = True
                    return
                if is_blob and status == 200 and digest == proxy.die_on:
                    self.wfile.write(data[:len(data) // 2])
                    self.wfile.flush()
                    proxy.registry.kill()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(data)

            do_GET = do_HEAD = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def registry():
    if not Path(REGISTRY).is_file():
        unavailable(f"{REGISTRY} is not installed (Debian's docker-registry; run scripts/setup.sh)")
    if shutil.which("skopeo") is None:
        unavailable("skopeo is not installed (run scripts/setup.sh)")
    if shutil.which("openssl") is None:
        unavailable("openssl is not installed (run scripts/setup.sh)")
    base = tempfile.mkdtemp(prefix="cryo-reg-")
    r = Registry(base)
    try:
        r.start()
        r.seed(f"docker-archive:{IMAGES / 'busybox.tar'}", "test/busybox:latest")
        r.seed(f"docker-archive:{IMAGES / 'layered.tar'}", "test/layered:latest")
        yield r
    finally:
        r.kill()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def pulld():
    """A cryod of this module with an empty image store and its own certs.d."""
    _check_requirements()
    base = tempfile.mkdtemp(prefix="cr-", dir="/tmp")
    certs = Path(base) / "certs.d"
    certs.mkdir()
    d = Daemon(base, extra_args=["--registry-certs-dir", str(certs)])
    d.certs_dir = certs
    try:
        d.start()
        yield d
    finally:
        cleanup(d)
        print(f"\ncryod log: {d.log_path}")


@pytest.fixture
def cryod(pulld):
    """The module's cryod, logged in to nothing; after the test every container and image is gone."""
    yield pulld
    pulld.remove_all_containers()
    ids = pulld.docker("images", "-q", "--no-trunc").stdout.split()
    if ids:
        pulld.docker("rmi", "-f", *set(ids))
    shutil.rmtree(Path(pulld.env["DOCKER_CONFIG"]), ignore_errors=True)


def login(d, host):
    r = d.docker("login", "-u", USER, "--password-stdin", host, input=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    assert "Login Succeeded" in r.stdout


def stream_lines(raw):
    return [json.loads(l) for l in raw.decode().split("\r\n") if l.strip()]


def pull_raw(d, image, tag, auth=True, platform=None):
    """POST /images/create as the docker CLI sends it; returns (status, lines or error)."""
    headers = {}
    if auth:
        headers["X-Registry-Auth"] = base64.urlsafe_b64encode(json.dumps(
            {"username": USER, "password": PASSWORD, "email": None}).encode()).decode()
    q = f"/images/create?fromImage={image}&tag={tag}" + (f"&platform={platform}" if platform else "")
    status, _, body = d.http("POST", q, headers=headers, timeout=120)
    return status, body


def image_ids(d):
    return set(d.docker("images", "-q", "--no-trunc").stdout.split())


def layer_dirs(d):
    p = d.root / "images" / "layers" / "sha256"
    return sorted(x.name for x in p.iterdir()) if p.is_dir() else []


# --------------------------------------------------------------------------------------------


def test_docker_cli_pulls_by_tag_and_runs_the_image(cryod, registry):
    login(cryod, registry.host)
    ref = f"{registry.host}/test/busybox:latest"
    r = cryod.docker("pull", ref, timeout=120)
    assert r.returncode == 0, r.stderr + cryod.log_tail()
    out = r.stdout
    assert "latest: Pulling from test/busybox" in out
    assert "Pull complete" in out
    assert "Digest: sha256:" in out
    assert f"Status: Downloaded newer image for {ref}" in out
    img = json.loads(cryod.ok("image", "inspect", ref))[0]
    assert img["Id"] == BUSYBOX_ID
    _, digest, _ = registry.manifest("test/busybox", "latest")
    assert img["RepoDigests"] == [f"{registry.host}/test/busybox@{digest}"]
    assert cryod.ok("run", "--rm", ref, "echo", "pulled-and-ran") == "pulled-and-ran"
    # Pulled again: nothing to fetch, the tag already points there.
    again = cryod.ok("pull", ref)
    assert f"Status: Image is up to date for {ref}" in again
    assert "Pull complete" not in again


def test_stream_format_is_dockerds(cryod, registry):
    status, body = pull_raw(cryod, f"{registry.host}/test/busybox", "latest")
    assert status == 200, body
    lines = stream_lines(body)
    assert lines[0] == {"status": "Pulling from test/busybox", "id": "latest"}
    layer = lines[1]["id"]
    assert len(layer) == 12
    assert lines[1] == {"status": "Pulling fs layer", "progressDetail": {}, "id": layer}
    statuses = [l.get("status") for l in lines if l.get("id") == layer]
    for s in ["Downloading", "Verifying Checksum", "Download complete", "Extracting", "Pull complete"]:
        assert s in statuses, statuses
    dl = [l for l in lines if l.get("status") == "Downloading"][-1]
    assert dl["progressDetail"]["current"] == dl["progressDetail"]["total"]
    assert dl["progress"].startswith("[=")
    assert lines[-2]["status"].startswith("Digest: sha256:")
    assert lines[-1] == {"status": f"Status: Downloaded newer image for {registry.host}/test/busybox:latest"}
    assert b"\\u003e" in body  # '>' escaped as Go does


def test_docker_py_pulls_with_login_and_by_digest(cryod, registry):
    import docker
    c = docker.DockerClient(base_url=cryod.host, timeout=120)
    try:
        res = c.login(username=USER, password=PASSWORD, registry=registry.host)
        assert res["Status"] == "Login Succeeded"
        img = c.images.pull(f"{registry.host}/test/layered", tag="latest")
        assert len(img.attrs["RootFS"]["Layers"]) == 3
        _, digest, _ = registry.manifest("test/busybox", "latest")
        by_digest = c.images.pull(f"{registry.host}/test/busybox@{digest}")
        assert by_digest.id == BUSYBOX_ID
        assert c.images.get(f"{registry.host}/test/busybox@{digest}").id == BUSYBOX_ID
    finally:
        c.close()


def test_pull_by_digest_with_the_cli(cryod, registry):
    login(cryod, registry.host)
    _, digest, _ = registry.manifest("test/busybox", "latest")
    r = cryod.docker("pull", f"{registry.host}/test/busybox@{digest}")
    assert r.returncode == 0, r.stderr
    assert f"Digest: {digest}" in r.stdout
    wrong = "sha256:" + "0" * 64
    r = cryod.docker("pull", f"{registry.host}/test/busybox@{wrong}")
    assert r.returncode != 0
    assert "not found" in r.stderr


def test_multi_platform_index_selects_this_platform(cryod, registry):
    with tempfile.TemporaryDirectory() as tmp:
        fresh_id = fresh_image_archive(f"{tmp}/fresh.tar", "arm-" + uuid.uuid4().hex[:6])
        registry.seed(f"docker-archive:{tmp}/fresh.tar", "test/multi:arm64-part")
    registry.seed(f"docker-archive:{IMAGES / 'busybox.tar'}", "test/multi:amd64-part")
    arm, arm_digest, arm_body = registry.manifest("test/multi", "arm64-part")
    amd, amd_digest, amd_body = registry.manifest("test/multi", "amd64-part")
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": arm["mediaType"], "digest": arm_digest, "size": len(arm_body),
         "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
        {"mediaType": amd["mediaType"], "digest": amd_digest, "size": len(amd_body),
         "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": amd["mediaType"], "digest": amd_digest, "size": len(amd_body),
         "platform": {"architecture": "unknown", "os": "unknown"}},
    ]}
    status, _, body = registry.request("PUT", "/v2/test/multi/manifests/latest", body=json.dumps(index).encode(),
                                       headers={"Content-Type": "application/vnd.oci.image.index.v1+json"})
    assert status == 201, body
    login(cryod, registry.host)
    r = cryod.docker("pull", f"{registry.host}/test/multi:latest")
    assert r.returncode == 0, r.stderr
    assert json.loads(cryod.ok("image", "inspect", f"{registry.host}/test/multi"))[0]["Id"] == BUSYBOX_ID
    status, body = pull_raw(cryod, f"{registry.host}/test/multi", "latest", platform="linux/arm64")
    assert status == 200, body
    assert "errorDetail" not in body.decode(), body
    assert json.loads(cryod.ok("image", "inspect", f"{registry.host}/test/multi"))[0]["Id"] == fresh_id
    status, body = pull_raw(cryod, f"{registry.host}/test/multi", "latest", platform="linux/s390x")
    assert status == 404
    assert "no matching manifest for linux/s390x in the manifest list entries" in body.decode()


def test_oci_zstd_image(cryod, registry):
    with tempfile.TemporaryDirectory() as tmp:
        fresh_id = fresh_image_archive(f"{tmp}/fresh.tar", "zstd-" + uuid.uuid4().hex[:6])
        registry.seed(f"docker-archive:{tmp}/fresh.tar", "test/zstd:latest",
                      extra=["--format", "oci", "--dest-compress-format", "zstd"])
    m, _, _ = registry.manifest("test/zstd", "latest")
    assert m["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert fresh_id  # skopeo rewrites the config as an OCI config: the id is the manifest's config digest
    assert any(l["mediaType"].endswith("+zstd") for l in m["layers"]), m
    login(cryod, registry.host)
    r = cryod.docker("pull", f"{registry.host}/test/zstd")
    assert r.returncode == 0, r.stderr
    assert json.loads(cryod.ok("image", "inspect", f"{registry.host}/test/zstd"))[0]["Id"] == m["config"]["digest"]
    out = cryod.ok("run", "--rm", f"{registry.host}/test/zstd", "head", "-c", "4", "/marker.bin")
    assert out == "zstd"


def test_no_credentials_and_wrong_password_are_clear_errors(cryod, registry):
    ref = f"{registry.host}/test/busybox"
    r = cryod.docker("pull", ref)
    assert r.returncode != 0
    assert "no basic auth credentials" in r.stderr
    assert "Login prior to pull" not in r.stdout + r.stderr   # a 500, not a 401: no prompt
    bad = cryod.docker("login", "-u", USER, "--password-stdin", registry.host, input="wrong\n")
    assert bad.returncode != 0
    assert f"login attempt to https://{registry.host}/v2/ failed with status: 401 Unauthorized" in bad.stderr
    status, _, body = cryod.http("POST", f"/images/create?fromImage={ref}&tag=latest", headers={
        "X-Registry-Auth": base64.urlsafe_b64encode(json.dumps({"username": USER, "password": "nope"}).encode()).decode()})
    assert status == 500, body
    assert "unauthorized: authentication required" in json.loads(body)["message"]
    assert image_ids(cryod) == set()


def test_unknown_tag_and_unreachable_registry(cryod, registry):
    login(cryod, registry.host)
    r = cryod.docker("pull", f"{registry.host}/test/busybox:nope")
    assert r.returncode != 0
    assert f"manifest for {registry.host}/test/busybox:nope not found: manifest unknown" in r.stderr
    r = cryod.docker("pull", "--all-tags", f"{registry.host}/test/busybox")
    assert r.returncode != 0
    assert "pulling every tag" in r.stderr and "is not supported" in r.stderr
    r = cryod.docker("pull", f"127.0.0.1:{free_port()}/test/busybox")
    assert r.returncode != 0
    assert "cannot be reached" in r.stderr


def test_corrupted_blob_is_refused_and_nothing_is_stored(cryod, registry):
    proxy = FaultProxy(registry)
    try:
        m, _, _ = registry.manifest("test/layered", "latest")
        bad = m["layers"][1]["digest"]
        proxy.corrupt.add(bad)
        before = layer_dirs(cryod)
        status, body = pull_raw(cryod, f"{proxy.host}/test/layered", "latest")
        assert status == 200
        lines = stream_lines(body)
        assert "errorDetail" in lines[-1], lines
        assert f"filesystem layer verification failed for digest {bad}" in lines[-1]["error"]
        assert image_ids(cryod) == set()
        assert layer_dirs(cryod) == before
        assert os.listdir(cryod.root / "images" / "tmp") == []
        # The CLI shows the same error and fails.
        login(cryod, proxy.host)
        r = cryod.docker("pull", f"{proxy.host}/test/layered")
        assert r.returncode != 0
        assert "filesystem layer verification failed" in r.stderr
        proxy.corrupt.clear()
        r = cryod.docker("pull", f"{proxy.host}/test/layered")
        assert r.returncode == 0, r.stderr
    finally:
        proxy.close()


def test_registry_killed_mid_download_leaves_no_half_image_and_retry_works(cryod, registry):
    proxy = FaultProxy(registry)
    try:
        m, _, _ = registry.manifest("test/layered", "latest")
        # The biggest layer: half of it arrives, then the registry dies.
        big = max(m["layers"], key=lambda l: l["size"])["digest"]
        proxy.die_on = big
        before = layer_dirs(cryod)
        status, body = pull_raw(cryod, f"{proxy.host}/test/layered", "latest")
        assert status == 200
        lines = stream_lines(body)
        assert "errorDetail" in lines[-1], lines
        assert big in proxy.blob_gets, (big, proxy.blob_gets, lines)
        assert "broke off" in lines[-1]["error"] or "closed the connection" in lines[-1]["error"], lines[-1]
        assert registry.proc.poll() is not None
        assert image_ids(cryod) == set()
        assert layer_dirs(cryod) == before
        assert os.listdir(cryod.root / "images" / "tmp") == []
        # While it is down: a clear error before the stream.
        status, body = pull_raw(cryod, f"{proxy.host}/test/layered", "latest")
        assert status >= 500
        proxy.die_on = None
        registry.start()
        status, body = pull_raw(cryod, f"{proxy.host}/test/layered", "latest")
        assert status == 200
        assert "errorDetail" not in body.decode(), body
        assert len(json.loads(cryod.ok("image", "inspect", f"{proxy.host}/test/layered"))[0]["RootFS"]["Layers"]) == 3
    finally:
        if registry.proc.poll() is not None:
            registry.start()
        proxy.close()


def test_layers_already_stored_are_not_fetched_again(cryod, registry):
    proxy = FaultProxy(registry)
    try:
        status, body = pull_raw(cryod, f"{proxy.host}/test/busybox", "latest")
        assert status == 200 and b"errorDetail" not in body, body
        busybox_layer = registry.manifest("test/busybox", "latest")[0]["layers"][0]["digest"]
        assert busybox_layer in proxy.blob_gets
        proxy.blob_gets.clear()
        # layered shares busybox's base layer: that one is "Already exists" and not fetched.
        status, body = pull_raw(cryod, f"{proxy.host}/test/layered", "latest")
        assert status == 200 and b"errorDetail" not in body, body
        lines = stream_lines(body)
        layered = registry.manifest("test/layered", "latest")[0]
        base = layered["layers"][0]["digest"]
        assert base == busybox_layer
        assert {"status": "Already exists", "progressDetail": {}, "id": base[7:19]} in lines
        assert base not in proxy.blob_gets
        assert set(proxy.blob_gets) == {l["digest"] for l in layered["layers"][1:]} | {layered["config"]["digest"]}
        # The same image under another name: no layer fetched at all.
        proxy.blob_gets.clear()
        r = cryod.docker("tag", f"{proxy.host}/test/layered", "again:v1")
        assert r.returncode == 0, r.stderr
        assert json.loads(cryod.ok("image", "inspect", "again:v1"))[0]["RootFS"]["Layers"]
        status, body = pull_raw(cryod, f"{proxy.host}/test/layered", "latest")
        assert status == 200
        assert [b for b in proxy.blob_gets if b != layered["config"]["digest"]] == []
    finally:
        proxy.close()


def test_tag(cryod, registry):
    login(cryod, registry.host)
    cryod.ok("pull", f"{registry.host}/test/busybox")
    cryod.ok("tag", f"{registry.host}/test/busybox", "mine/box:v1")
    assert json.loads(cryod.ok("image", "inspect", "mine/box:v1"))[0]["Id"] == BUSYBOX_ID
    r = cryod.docker("tag", "no-such-image", "x:y")
    assert r.returncode != 0
    assert "No such image" in r.stderr or "no such image" in r.stderr
    import docker
    c = docker.DockerClient(base_url=cryod.host, timeout=60)
    try:
        assert c.images.get("mine/box:v1").tag("mine/box", "v2") is True
    finally:
        c.close()


def test_bearer_token_flow(cryod, registry):
    from urllib.parse import parse_qs, urlsplit
    proxy = FaultProxy(registry, bearer=True)
    try:
        r = cryod.docker("pull", f"{proxy.host}/test/busybox")
        assert r.returncode != 0
        assert "getting a token" in r.stderr and "401" in r.stderr
        bad = cryod.docker("login", "-u", USER, "--password-stdin", proxy.host, input="wrong\n")
        assert bad.returncode != 0
        assert f"login attempt to http://{proxy.host}/token failed with status: 401 Unauthorized" in bad.stderr
        proxy.token_queries.clear()
        login(cryod, proxy.host)
        q = parse_qs(urlsplit(proxy.token_queries[-1]).query)
        assert q["offline_token"] == ["true"] and q["client_id"] == ["docker"] and q["account"] == [USER]
        r = cryod.docker("pull", f"{proxy.host}/test/busybox")
        assert r.returncode == 0, r.stderr
        q = parse_qs(urlsplit(proxy.token_queries[-1]).query)
        assert q["scope"] == ["repository:test/busybox:pull"]
        assert q["service"] == ["test-registry"]
        assert json.loads(cryod.ok("image", "inspect", f"{proxy.host}/test/busybox"))[0]["Id"] == BUSYBOX_ID
    finally:
        proxy.close()


def test_ca_from_certs_dir_is_verified(cryod, registry):
    """A CA in certs.d/HOST:PORT/ makes TLS verified, even on loopback."""
    hostdir = cryod.certs_dir / registry.host
    hostdir.mkdir()
    try:
        other = hostdir / "other.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
                        "-keyout", str(hostdir / "other.key"), "-out", str(other)], check=True, capture_output=True)
        (hostdir / "other.key").unlink()
        status, body = pull_raw(cryod, f"{registry.host}/test/busybox", "latest")
        assert status == 500, body
        assert "CERTIFICATE_VERIFY_FAILED" in body.decode(), body
        other.unlink()
        shutil.copy(registry.base / "cert.pem", hostdir / "ca.crt")
        status, body = pull_raw(cryod, f"{registry.host}/test/busybox", "latest")
        assert status == 200 and b"errorDetail" not in body, body
    finally:
        shutil.rmtree(hostdir, ignore_errors=True)


def test_insecure_registry_flag_is_validated():
    r = subprocess.run([str(BIN_DIR / "cryod"), "--insecure-registry", "10.0.0.0/99"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "--insecure-registry \"10.0.0.0/99\"" in r.stderr


def test_cryo_cli_pull_and_tag(cryod, registry):
    from conftest import BIN_DIR
    cryo = [str(BIN_DIR / "cryo"), "-H", cryod.host]
    ref = f"{registry.host}/test/busybox"
    r = subprocess.run([*cryo, "pull", ref], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "no basic auth credentials" in r.stderr
    r = subprocess.run([*cryo, "pull", "-u", USER, "--password-stdin", ref], input=PASSWORD + "\n",
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "latest: Pulling from test/busybox" in r.stdout
    assert f"Status: Downloaded newer image for {ref}:latest" in r.stdout
    assert "[=" not in r.stdout   # byte bars are left out, as the docker CLI does without a terminal
    r = subprocess.run([*cryo, "tag", ref, "cli/tagged:v1"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(cryod.ok("image", "inspect", "cli/tagged:v1"))[0]["Id"] == BUSYBOX_ID


def test_only_local_registries_never_contacts_docker_hub(cryod):
    """The engine tests' cryods run with --only-local-registries: `docker run` of a missing
    image makes the docker CLI pull it, and that must not leave the machine."""
    r = cryod.docker("pull", "alpine")
    assert r.returncode != 0
    assert "registry registry-1.docker.io is not contacted: cryod runs with --only-local-registries" in r.stderr
    r = cryod.docker("run", "--rm", "nosuchimage:7", "true")
    assert r.returncode == 125
    assert "--only-local-registries" in r.stderr


def test_cryod_killed_mid_pull_leaves_nothing_and_the_pull_works_after_restart(cryod, registry):
    proxy = FaultProxy(registry)
    try:
        m, _, _ = registry.manifest("test/layered", "latest")
        proxy.stall_on = max(m["layers"], key=lambda l: l["size"])["digest"]
        result = {}

        def pull():
            try:
                result["r"] = pull_raw(cryod, f"{proxy.host}/test/layered", "latest")
            except Exception as e:  # the connection dies with cryod
                result["e"] = e

        t = threading.Thread(target=pull, daemon=True)
        t.start()
        assert proxy.stalled.wait(60), "the download never started"
        assert os.listdir(cryod.root / "images" / "tmp") != []   # the pull's staging
        cryod.restart(signal.SIGKILL)
        t.join(30)
        proxy.release.set()
        assert os.listdir(cryod.root / "images" / "tmp") == []
        assert not [n for n in layer_dirs(cryod) if n.startswith(".tmp-")]
        assert image_ids(cryod) == set()
        proxy.stall_on = None
        status, body = pull_raw(cryod, f"{proxy.host}/test/layered", "latest")
        assert status == 200 and b"errorDetail" not in body, body
    finally:
        proxy.close()


def test_push_of_a_committed_image_then_pull_it_back(cryod, registry):
    """`docker push` of an image cryod made (commit): every blob arrives (the registry checks
    each digest), the docker CLI shows dockerd's lines and the digest, a second push finds the
    layers there, skopeo reads the image, and a pull into an empty store runs it."""
    cryod.ok("load", "-i", IMAGES / "busybox.tar")
    cryod.ok("run", "--name", "pushsrc", "busybox", "sh", "-c", "echo pushed > /marker")
    ref = f"{registry.host}/test/pushed:v1"
    cryod.ok("commit", "pushsrc", ref)
    denied = cryod.docker("push", ref, timeout=120)
    assert denied.returncode != 0 and "no basic auth credentials" in denied.stderr, denied.stderr
    login(cryod, registry.host)
    r = cryod.docker("push", ref, timeout=300)
    assert r.returncode == 0, r.stderr + cryod.log_tail()
    assert f"The push refers to repository [{registry.host}/test/pushed]" in r.stdout, r.stdout
    _, digest, body = registry.manifest("test/pushed", "v1")
    assert f"v1: digest: {digest} size: {len(body)}" in r.stdout, r.stdout
    again = cryod.docker("push", ref, timeout=300)
    assert again.returncode == 0 and again.stdout.count("Layer already exists") == 2, again.stdout
    inspected = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--creds", f"{USER}:{PASSWORD}",
                                f"docker://{ref}"], capture_output=True, text=True, timeout=120)
    assert inspected.returncode == 0 and json.loads(inspected.stdout)["Digest"] == digest, inspected.stderr
    cryod.remove_all_containers()
    cryod.docker("rmi", "-f", *image_ids(cryod))
    assert image_ids(cryod) == set()
    cryod.ok("pull", ref, timeout=300)
    assert cryod.ok("run", "--rm", ref, "cat", "/marker") == "pushed"
    missing = cryod.docker("push", f"{registry.host}/test/nothing:here", timeout=60)
    assert missing.returncode != 0 and "No such image" in missing.stderr, missing.stderr
    # The cryo CLI, with its own credentials flags.
    cryod.ok("tag", ref, f"{registry.host}/test/pushed:v2")
    r = subprocess.run([str(BIN_DIR / "cryo"), "-H", cryod.host, "push", "--username", USER, "--password-stdin",
                        f"{registry.host}/test/pushed:v2"], input=PASSWORD + "\n", capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "v2: digest: sha256:" in r.stdout and "Layer already exists" in r.stdout, r


# --------------------------------------------------------------------------------------------
# registry mirrors


def test_registry_mirror_serves_docker_hub_images_and_is_passed_over_when_it_lacks_one(registry):
    """`--registry-mirror`: a Docker Hub image is asked of the mirror first (the local registry
    here, holding library/busybox); an image the mirror lacks goes on to Docker Hub, which this
    cryod (--only-local-registries) refuses without contacting it, naming what the mirror said."""
    _check_requirements()
    registry.seed(f"docker-archive:{IMAGES / 'busybox.tar'}", "library/busybox:latest")
    base = tempfile.mkdtemp(prefix="cr-", dir="/tmp")
    d = Daemon(base, extra_args=["--registry-mirror", f"https://{registry.host}"])
    try:
        d.start()
        before = registry.log.read_text(errors="replace").count("/v2/library/busybox/manifests/latest")
        status, body = pull_raw(d, "busybox", "latest")
        assert status == 200 and b"errorDetail" not in body, body + d.log_tail().encode()
        assert "Status: Downloaded newer image for busybox:latest" in body.decode()
        assert json.loads(d.ok("image", "inspect", "busybox:latest"))[0]["Id"] == BUSYBOX_ID
        assert registry.log.read_text(errors="replace").count("/v2/library/busybox/manifests/latest") > before

        status, body = pull_raw(d, "nosuch/image", "latest")
        text = body.decode()
        assert "registry registry-1.docker.io is not contacted" in text, text
        assert f"tried first: mirror {registry.host}" in text, text

        info = d.docker("info")
        assert info.returncode == 0, info.stderr
        assert "Registry Mirrors:" in info.stdout and f"https://{registry.host}/" in info.stdout, info.stdout
        # Not a Docker Hub image: the mirror is not asked.
        status, body = pull_raw(d, f"{registry.host}/test/busybox", "latest")
        assert status == 200 and b"errorDetail" not in body, body
    finally:
        cleanup(d)


@pytest.mark.parametrize("url,why", [
    ("127.0.0.1:5000", "a mirror is a URL with a scheme"),
    ("https://mirror.example/v2/", "a path, query or fragment is not supported"),
    ("https://user:pw@mirror.example", "credentials in the URL are not supported"),
])
def test_registry_mirror_flag_is_validated(url, why):
    r = subprocess.run([str(BIN_DIR / "cryod"), "--registry-mirror", url], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert f"registry mirror \"{url}\": {why}" in r.stderr, r.stderr
