"""Hostile input through the API. No request, however odd, may crash cryod: every test
checks /_ping (and that the process is still there) afterwards. Odd values get Docker's
400s at create, before anything is written; idle connections are closed and cryod keeps
answering when they pile up; image archives can neither read host files nor fill the disk."""

import gzip
import hashlib
import io
import json
import os
import resource
import socket
import tarfile
import tempfile
import time
import uuid

import pytest

from conftest import Daemon, IMAGES, cleanup

CREATE = "/v1.50/containers/create"
# A container that exits on SIGTERM (busybox sh as PID 1 would ignore it).
TERM_EXITS = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait; done"]


def alive(d):
    assert d.proc.poll() is None, f"cryod died (exit {d.proc.returncode}); log:\n{d.log_tail()}"
    st, _, body = d.http("GET", "/_ping", timeout=30)
    assert (st, body) == (200, b"OK")


def create(d, body, name=None):
    path = CREATE + (f"?name={name}" if name else "")
    st, _, out = d.http("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    return st, (json.loads(out) if out.strip() else {})


def container_dirs(d):
    cdir = d.root / "containers"
    return sorted(p.name for p in cdir.iterdir()) if cdir.is_dir() else []


# --------------------------------------------------------------------------------------------
# numbers that crashed cryod


def test_cpus_beyond_int64_range_is_400(docker_cli):
    r = docker_cli.docker("create", "--cpus", "100000000", "busybox", "true")
    assert r.returncode != 0
    assert "Range of CPUs is from 0.01 to" in r.stderr, r.stderr
    alive(docker_cli)


def test_quota_with_negative_period_is_400(docker_cli):
    st, out = create(docker_cli, {"Image": "busybox", "Cmd": ["true"],
                                  "HostConfig": {"CpuQuota": 50000, "CpuPeriod": -1}})
    assert st == 400, out
    assert "CPU cfs period can not be less than 1ms" in out["message"]
    alive(docker_cli)


def test_huge_stop_timeouts_wait_instead_of_crashing(docker_cli, name):
    st, out = create(docker_cli, {"Image": "busybox", "Cmd": TERM_EXITS, "StopTimeout": 99999999999}, name=name)
    assert st == 201, out
    # The container's own StopTimeout, then -t on stop and restart: each waits for the exit.
    docker_cli.ok("start", name)
    docker_cli.ok("stop", name)
    alive(docker_cli)
    docker_cli.ok("start", name)
    docker_cli.ok("stop", "-t", "99999999999", name)
    alive(docker_cli)
    docker_cli.ok("restart", "-t", "99999999999", name)
    alive(docker_cli)
    assert docker_cli.ok("inspect", "-f", "{{.State.Running}}", name) == "true"
    st, _, body = docker_cli.http("POST", f"/v1.50/containers/{name}/stop?t=99999999999999999999999")
    assert st == 400, body
    st, _, body = docker_cli.http("POST", f"/v1.50/containers/{name}/restart?t=abc")
    assert st == 400, body
    alive(docker_cli)


# --------------------------------------------------------------------------------------------
# values refused at create, with nothing left behind


REFUSED = [
    ({"HostConfig": {"Memory": -1}}, "Minimum memory limit allowed is 6MB"),
    ({"HostConfig": {"NanoCpus": -1000000000}}, "Range of CPUs"),
    ({"HostConfig": {"CpuShares": -1}}, "shares"),
    ({"HostConfig": {"ShmSize": -1}}, "SHM size can not be less than 0"),
    ({"HostConfig": {"CpuQuota": -5}}, "quota"),
    ({"HostConfig": {"ConsoleSize": [-1, -1]}}, "ConsoleSize"),
    ({"Hostname": "../../etc"}, "invalid hostname format"),
    ({"Hostname": "a" * 65}, "hostname"),
    ({"Env": ["BIG=" + "x" * 1000000]}, "Env"),
    ({"Cmd": ["echo", "y" * 200000]}, "Cmd"),
    ({"Labels": {"l": "z" * 300000}}, "Labels"),
    ({"User": ":"}, "invalid user"),
]


@pytest.mark.parametrize("extra,message", REFUSED, ids=[m for _, m in REFUSED])
def test_odd_values_are_refused_at_create(docker_cli, extra, message):
    before = container_dirs(docker_cli)
    body = {"Image": "busybox", "Cmd": ["true"]}
    body.update(extra)
    st, out = create(docker_cli, body)
    assert st == 400, out
    assert message in out["message"], out
    assert container_dirs(docker_cli) == before, "a refused create left a directory behind"
    alive(docker_cli)


def test_odd_exec_values_are_refused(docker_cli, name):
    docker_cli.ok("run", "-d", "--name", name, "busybox", "sleep", "600")
    for extra, message in (({"ConsoleSize": [-1, -1]}, "ConsoleSize"), ({"User": "::"}, "invalid user"),
                           ({"Env": ["X=" + "x" * 200000]}, "Env")):
        body = {"Cmd": ["true"], "AttachStdout": True}
        body.update(extra)
        st, _, out = docker_cli.http("POST", f"/v1.50/containers/{name}/exec", body=json.dumps(body),
                                     headers={"Content-Type": "application/json"})
        if st == 201:   # the user is only looked up at start
            exec_id = json.loads(out)["Id"]
            st, _, out = docker_cli.http("POST", f"/v1.50/exec/{exec_id}/start", body=json.dumps({"Detach": True}),
                                         headers={"Content-Type": "application/json"})
        assert st == 400, (extra, out)
        assert message.encode() in out, out
        alive(docker_cli)


def test_overlong_name_is_refused_at_create(docker_cli):
    before = container_dirs(docker_cli)
    st, out = create(docker_cli, {"Image": "busybox", "Cmd": ["true"]}, name="a" * 300)
    assert st == 400, out
    assert "Invalid container name" in out["message"]
    assert container_dirs(docker_cli) == before
    alive(docker_cli)


def test_pids_limit_zero_or_negative_is_unlimited_like_docker(docker_cli, name):
    st, out = create(docker_cli, {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"PidsLimit": -7}}, name=name)
    assert st == 201, out
    assert docker_cli.ok("inspect", "-f", "{{json .HostConfig.PidsLimit}}", name) in ("null", "0")
    # The CLI reads the stored container back: it must still inspect and remove.
    docker_cli.ok("rm", name)


def test_shm_size_is_honoured(docker_cli):
    out = docker_cli.ok("run", "--rm", "--shm-size", "96m", "busybox", "df", "-k", "/dev/shm")
    assert "98304" in out, out


# --------------------------------------------------------------------------------------------
# HTTP framing


def test_body_over_the_limit_is_413(docker_cli):
    body = json.dumps({"Image": "busybox", "Cmd": ["true"], "Labels": {"x": "y" * (2 << 20)}})
    st, _, out = docker_cli.http("POST", CREATE, body=body, headers={"Content-Type": "application/json"})
    assert st == 413, out
    assert "too large" in json.loads(out)["message"]
    alive(docker_cli)


def test_bad_chunk_size_is_400(docker_cli):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    try:
        s.connect(docker_cli.sock)
        s.sendall(b"POST /v1.50/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    finally:
        s.close()
    assert got.startswith(b"HTTP/1.1 400"), got
    alive(docker_cli)


# --------------------------------------------------------------------------------------------
# a daemon of its own: short idle timeout, small image extraction limit

IDLE_SECONDS = 2
EXTRACT_LIMIT = 64 << 20


@pytest.fixture(scope="module")
def strict_daemon():
    base = tempfile.mkdtemp(prefix="ch-", dir="/tmp")
    d = Daemon(base, extra_args=["--idle-timeout", str(IDLE_SECONDS), "--image-extract-limit", str(EXTRACT_LIMIT)])
    # Started with a low soft RLIMIT_NOFILE (inherited): cryod raises it to the hard one.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), hard))
        try:
            d.start()
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        yield d
    finally:
        cleanup(d)


def test_cryod_raises_its_open_file_limit(strict_daemon):
    soft, hard = resource.prlimit(strict_daemon.proc.pid, resource.RLIMIT_NOFILE)
    assert soft == hard, (soft, hard)


def set_soft_nofile(pid, n):
    """Sets cryod's soft RLIMIT_NOFILE (the hard one stays); returns the previous soft one."""
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (n, hard))
    return soft


def connect_when_accepted(path, attempts=600):
    """A unix-socket connect that waits (bounded) while the listen backlog is full."""
    for _ in range(attempts):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        try:
            s.connect(path)
            return s
        except BlockingIOError:
            s.close()
            time.sleep(0.1)
    pytest.fail(f"cryod accepted no connection on {path} for {attempts / 10} s")


def test_idle_connections_are_closed_and_cryod_keeps_answering(strict_daemon):
    d = strict_daemon
    # A small descriptor limit: more idle connections than cryod has descriptors for.
    previous = set_soft_nofile(d.proc.pid, 400)
    conns = []
    try:
        for _ in range(600):
            conns.append(connect_when_accepted(d.sock))
        conns[-1].sendall(b"GET /_ping HTTP/1.1\r\nHost: x")   # a head that never ends
        # Full of idle connections: a new one is still served (the longest idle makes room).
        alive(d)
        # Every idle connection is closed by cryod, at the latest after the idle timeout: EOF.
        for s in conns:
            assert s.recv(1) == b""
        alive(d)
        fds = len(os.listdir(f"/proc/{d.proc.pid}/fd"))
        assert fds < 400, fds
    finally:
        for s in conns:
            s.close()
        set_soft_nofile(d.proc.pid, previous)


def docker_save_tar(files):
    """A tar archive (bytes) of {name: bytes | ("symlink", target)}."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            if isinstance(content, tuple):
                info.type = tarfile.SYMTYPE
                info.linkname = content[1]
                t.addfile(info)
            else:
                info.size = len(content)
                t.addfile(info, io.BytesIO(content))
    return buf.getvalue()


@pytest.mark.parametrize("meta", ["manifest.json", "index.json"])
def test_symlinked_archive_metadata_is_not_followed(strict_daemon, meta):
    d = strict_daemon
    marker = "host-secret-" + uuid.uuid4().hex
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        # Valid JSON for either layout, so a followed link would parse and show up.
        f.write(json.dumps([{"Config": marker, "RepoTags": [marker], "Layers": []}]) if meta == "manifest.json"
                else json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": marker, "digest": "sha256:" + "0" * 64, "size": 1}]}))
        secret = f.name
    try:
        body = docker_save_tar({meta: ("symlink", secret), "oci-layout": b'{"imageLayoutVersion":"1.0.0"}'})
        st, _, out = d.http("POST", "/v1.50/images/load", body=body, headers={"Content-Type": "application/x-tar"})
        assert st == 400, out
        assert marker.encode() not in out, out
        assert b"not a regular file" in out, out
    finally:
        os.unlink(secret)
    alive(d)


def bomb_tar_gz(size):
    """A gzip'd tar holding one file of `size` zero bytes (a few hundred KB compressed)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9) as gz:
        info = tarfile.TarInfo("zeros")
        info.size = size
        gz.write(info.tobuf(format=tarfile.GNU_FORMAT))
        block = bytes(1 << 20)
        for _ in range(size // len(block)):
            gz.write(block)
        gz.write(bytes(size % len(block) + (-size) % 512 + 1024))   # rest, padding, end of archive
    return buf.getvalue()


def staging_leftovers(d):
    images = d.root / "images"
    left = [p.name for p in (images / "tmp").iterdir()] if (images / "tmp").is_dir() else []
    layers = images / "layers" / "sha256"
    left += [p.name for p in layers.iterdir()] if layers.is_dir() else []
    return left


def test_archive_expanding_past_the_limit_is_refused_and_cleaned_up(strict_daemon):
    d = strict_daemon
    bomb = bomb_tar_gz(4 * EXTRACT_LIMIT)
    assert len(bomb) < EXTRACT_LIMIT // 64
    for path in ("/v1.50/images/load", "/v1.50/images/create?fromSrc=-&repo=bomb"):
        st, _, out = d.http("POST", path, body=bomb, headers={"Content-Type": "application/x-tar"}, timeout=120)
        assert st == 400, (path, out)
        assert str(EXTRACT_LIMIT).encode() in out and b"refused" in out, out
        assert staging_leftovers(d) == [], staging_leftovers(d)
        alive(d)


def test_layer_whiteout_of_dot_is_refused_not_a_crash(docker_cli):
    # ".wh.." names "." as the file to delete: it trapped cryod while unpacking the layer.
    layer = docker_save_tar({".wh..": b""})
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": ["hostile:wh"], "Layers": ["layer.tar"]}]).encode()
    archive = docker_save_tar({"manifest.json": manifest, config_name: config, "layer.tar": layer})
    st, _, out = docker_cli.http("POST", "/v1.50/images/load", body=archive, headers={"Content-Type": "application/x-tar"})
    assert st == 400, out
    assert b"refused" in out, out
    alive(docker_cli)


def test_upload_larger_than_the_limit_is_413(strict_daemon):
    d = strict_daemon
    body = bytes(EXTRACT_LIMIT + (1 << 20))
    st, _, out = d.http("POST", "/v1.50/images/load", body=body, headers={"Content-Type": "application/x-tar"}, timeout=120)
    assert st == 413, out
    assert staging_leftovers(d) == [], staging_leftovers(d)
    alive(d)


def test_deeply_nested_json_is_400(docker_cli):
    for body in ("[" * 200000 + "]" * 200000, '{"Image":' * 100000 + '"x"' + "}" * 100000):
        st, _, out = docker_cli.http("POST", CREATE, body=body, headers={"Content-Type": "application/json"})
        assert st == 400, out
    alive(docker_cli)


def test_unfinished_creates_are_removed_at_start(docker_cli, restart_daemon):
    # What a create killed between its directory and its record leaves behind.
    stray = docker_cli.root / "containers" / ("f" * 64)
    (stray / "bundle").mkdir(parents=True)
    (stray / "bundle" / "config.json").write_text("{}")
    (stray / "hosts").write_text("")
    kept = docker_cli.ok("create", "busybox", "true")
    restart_daemon()
    assert not stray.exists()
    assert (docker_cli.root / "containers" / kept / "container.json").exists()
    alive(docker_cli)
