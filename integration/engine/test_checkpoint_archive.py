"""Checkpoint archives (issue 12): export in podman's layout, import as new containers
(clones), checkpointctl reading cryo's archives, podman's archives imported by cryo,
hostile archives refused before anything is created."""

import gzip
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
import uuid

import pytest

from conftest import BIN_DIR, COUNTER, IMAGES, Daemon, cleanup, counter_values, inspect, unavailable, wait_for


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="cryo-archive-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


STATEFUL = ("echo kept > /kept; rm -f /bin/zcat; echo shm > /dev/shm/s; " + COUNTER)


def start_counter(cryo, name):
    cryo.ok("run", "-d", "--name", name, "busybox", "sh", "-c", STATEFUL)
    wait_for(lambda: len(counter_values(cryo.ok("logs", name).stdout)) >= 5, what=f"{name} counting")


def assert_is_clone(cryo, clone, source_info, last_before):
    info = inspect(cryo.daemon, clone)
    assert info["State"]["Running"], info["State"]
    assert info["Name"] == "/" + clone
    assert info["Id"] != source_info["Id"]
    ip = info["NetworkSettings"]["IPAddress"]
    assert ip and ip != source_info["NetworkSettings"]["IPAddress"]
    # State kept: the counter goes on from where it was, in the clone's own log.
    wait_for(lambda: len(counter_values(cryo.ok("logs", clone).stdout)) >= 3, what=f"{clone} counting")
    assert counter_values(cryo.ok("logs", clone).stdout)[0] >= last_before
    # Rootfs changes (an added file, a deleted one) and /dev/shm came along.
    assert cryo.ok("exec", clone, "cat", "/kept").stdout == "kept\n"
    assert cryo("exec", clone, "test", "-e", "/bin/zcat").returncode == 1
    assert cryo.ok("exec", clone, "cat", "/dev/shm/s").stdout == "shm\n"
    # Who it is: its hostname, /etc/hostname and /etc/hosts.
    short = info["Id"][:12]
    assert cryo.ok("exec", clone, "hostname").stdout.strip() == short
    assert cryo.ok("exec", clone, "cat", "/etc/hostname").stdout.strip() == short
    hosts = cryo.ok("exec", clone, "cat", "/etc/hosts").stdout
    assert ip in hosts and short in hosts
    return info


def test_export_and_import_as_a_new_container(cryo, name, tmp):
    start_counter(cryo, name)
    src = inspect(cryo.daemon, name)
    archive = os.path.join(tmp, "cp.tar.zst")
    cryo.ok("container", "checkpoint", "--leave-running", "--export", archive, name)
    assert stat.S_IMODE(os.stat(archive).st_mode) == 0o600
    with open(archive, "rb") as f:
        assert f.read(4) == b"\x28\xb5\x2f\xfd"   # zstd by default
    last = counter_values(cryo.ok("logs", name).stdout)[-1]
    # The one-step export leaves no checkpoint behind.
    assert cryo.ok("checkpoint", "ls", name).stdout.split() == ["CHECKPOINT", "NAME"]
    clone = name + "-clone"
    r = cryo.ok("container", "restore", "--import", archive, "--name", clone)
    info = assert_is_clone(cryo, clone, src, last - 20)
    assert r.stdout.strip() == info["Id"]
    # The source runs on, untouched.
    assert inspect(cryo.daemon, name)["State"]["Running"]


@pytest.mark.parametrize("compress", ["gzip", "none"])
def test_three_clones_from_one_archive(cryo, name, tmp, compress):
    start_counter(cryo, name)
    src = inspect(cryo.daemon, name)
    cryo.ok("checkpoint", "create", name, "cp1")     # the source stops
    archive = os.path.join(tmp, "cp.tar")
    cryo.ok("checkpoint", "export", "--compress", compress, "-o", archive, name, "cp1")
    last = counter_values(cryo.ok("logs", name).stdout)[-1]
    with open(archive, "rb") as f:
        magic = f.read(2)
    assert (magic == b"\x1f\x8b") == (compress == "gzip")
    ids, ips = set(), set()
    for i in range(3):
        cryo.ok("container", "restore", "--import", archive, "--name", f"{name}-{i}")
        info = assert_is_clone(cryo, f"{name}-{i}", src, last)
        ids.add(info["Id"])
        ips.add(info["NetworkSettings"]["IPAddress"])
    assert len(ids) == 3 and len(ips) == 3


def test_published_ports_and_address_of_an_import(cryo, name, tmp):
    start_counter(cryo, name)
    archive = os.path.join(tmp, "cp.tar")
    cryo.ok("container", "checkpoint", "--leave-running", "-e", archive, name)
    subnet = cryo.daemon.subnet_prefix
    cryo.ok("container", "restore", "-i", archive, "-n", name + "-p", "--ip", subnet + ".77", "-p", "127.0.0.1::8080")
    info = inspect(cryo.daemon, name + "-p")
    assert info["NetworkSettings"]["IPAddress"] == subnet + ".77"
    assert info["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"] not in ("", "0")


def checkpointctl():
    exe = shutil.which("checkpointctl")
    if exe is None:
        unavailable("checkpointctl is not installed (scripts/setup.sh installs it)")
    return exe


def test_checkpointctl_reads_cryos_archive(cryo, name, tmp):
    ctl = checkpointctl()
    start_counter(cryo, name)
    info = inspect(cryo.daemon, name)
    archive = os.path.join(tmp, "cp.tar.zst")
    cryo.ok("container", "checkpoint", "--leave-running", "--export", archive, name)
    show = subprocess.run([ctl, "show", archive], capture_output=True, text=True, timeout=60)
    assert show.returncode == 0, show.stderr
    assert name in show.stdout and "busybox" in show.stdout and info["Id"][:12] in show.stdout, show.stdout
    assert "Podman" in show.stdout or "cryo" in show.stdout
    ins = subprocess.run([ctl, "inspect", "--ps-tree", "--stats", archive], capture_output=True, text=True, timeout=60)
    assert ins.returncode == 0, ins.stderr
    out = ins.stdout
    assert name in out and "busybox" in out and "Engine: Podman" in out, out
    assert "[1]  sh" in out and "sleep" in out, out          # the process tree
    assert "Memory pages size" in out and "Root FS diff size" in out, out
    assert "Pages written" in out, out                      # CRIU's dump statistics


# --- hostile archives: refused, nothing created

def members_of(archive):
    with tarfile.open(archive) as t:
        return [(m, t.extractfile(m).read() if m.isfile() else None) for m in t.getmembers()]


def repack(members, out, extra=(), replace=None, compress=None):
    mode = "w:gz" if compress == "gzip" else "w"
    with tarfile.open(out, mode) as t:
        for m, data in list(members) + list(extra):
            if replace and m.name in replace:
                data = replace[m.name]
                m.size = len(data)
            t.addfile(m, io.BytesIO(data) if data is not None else None)


def assert_refused(cryo, archive, words, before):
    r = cryo("container", "restore", "--import", archive, "--name", "hostile-" + uuid.uuid4().hex[:6])
    assert r.returncode != 0, r.stdout
    assert "refused" in r.stderr and all(w in r.stderr for w in words), r.stderr
    assert sorted(cryo.ok("ps", "-aq", "--no-trunc").stdout.split()) == before
    imports = cryo.daemon.root / "imports"
    assert not imports.exists() or os.listdir(imports) == []


def test_hostile_archives_are_refused_before_anything_is_created(cryo, name, tmp):
    start_counter(cryo, name)
    good = os.path.join(tmp, "good.tar")
    cryo.ok("container", "checkpoint", "--leave-running", "--compress", "none", "-e", good, name)
    before = sorted(cryo.ok("ps", "-aq", "--no-trunc").stdout.split())
    members = members_of(good)

    def member(name_, data=b"x", kind=tarfile.REGTYPE, link=""):
        ti = tarfile.TarInfo(name_)
        ti.type = kind
        ti.linkname = link
        ti.size = len(data) if kind == tarfile.REGTYPE else 0
        return ti, data if kind == tarfile.REGTYPE else None

    bad = os.path.join(tmp, "bad.tar")
    repack(members, bad, extra=[member("../../escaped")])
    assert_refused(cryo, bad, ["../../escaped", "path escape"], before)
    repack(members, bad, extra=[member("checkpoint/evil", kind=tarfile.SYMTYPE, link="/etc")])
    assert_refused(cryo, bad, ["checkpoint/evil", "symbolic link"], before)
    # Tampered: the config changed, its digest not.
    cfg = next(d for m, d in members if m.name == "config.dump")
    assert b'"busybox"' in cfg
    repack(members, bad, replace={"config.dump": cfg.replace(b'"busybox"', b'"busyb0x"')})
    assert_refused(cryo, bad, ["config.dump", "sha256"], before)
    # Truncated: cut in the middle of the images.
    with open(good, "rb") as f:
        data = f.read()
    with open(bad, "wb") as f:
        f.write(data[: len(data) // 2])
    assert_refused(cryo, bad, ["truncated"], before)
    # A hostile rootfs diff: a path escape inside the inner tar, digests made to match.
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w") as t:
        ti = tarfile.TarInfo("../../../../tmp/escaped-" + name)
        ti.size = 1
        t.addfile(ti, io.BytesIO(b"x"))
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["tar", "-C", d, "-xf", good], check=True)
        with open(os.path.join(d, "rootfs-diff.tar"), "wb") as f:
            f.write(inner.getvalue())
        import hashlib
        digests = json.load(open(os.path.join(d, "cryo-digests.json")))
        for m in digests["members"]:
            if m["path"] == "rootfs-diff.tar":
                m["size"] = len(inner.getvalue())
                m["sha256"] = hashlib.sha256(inner.getvalue()).hexdigest()
        json.dump(digests, open(os.path.join(d, "cryo-digests.json"), "w"))
        subprocess.run(["tar", "-C", d, "-cf", bad, "."], check=True)
    assert_refused(cryo, bad, ["rootfs-diff.tar", "path escape"], before)
    assert not os.path.exists("/tmp/escaped-" + name)


def test_a_decompression_bomb_is_refused(criu, tmp):
    """A 300 MiB member in a ~300 KiB gzip, against a cryod whose limit is 64 MiB."""
    base = tempfile.mkdtemp(prefix="cb-", dir="/tmp")
    d = Daemon(base, extra_args=["--image-extract-limit", str(64 << 20)])
    try:
        d.start()
        bomb = os.path.join(tmp, "bomb.tar.gz")
        with tarfile.open(bomb, "w:gz") as t:
            for n, data in (("config.dump", b"{}"), ("spec.dump", b"{}")):
                ti = tarfile.TarInfo(n)
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            ti = tarfile.TarInfo("checkpoint/pages-1.img")
            ti.size = 300 << 20

            class Zeros(io.RawIOBase):
                def __init__(self, n):
                    self.left = n

                def readable(self):
                    return True

                def readinto(self, b):
                    k = min(len(b), self.left)
                    b[:k] = bytes(k)
                    self.left -= k
                    return k
            t.addfile(ti, io.BufferedReader(Zeros(ti.size)))
        assert os.path.getsize(bomb) < 2 << 20
        r = subprocess.run([str(BIN_DIR / "cryo"), "-H", d.host, "container", "restore", "--import", bomb],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode != 0 and "decompression bomb" in r.stderr, r.stderr
        assert not (d.root / "imports").exists() or os.listdir(d.root / "imports") == []
    finally:
        cleanup(d)


# --- podman 4.3 (runc, cgroupfs) as the interop anchor

class Podman:
    """podman with all of its state in a temp dir: runc, cgroupfs, file events, ulimits it may
    set here (no CAP_SYS_RESOURCE above nofile 20000), no network of its own."""

    def __init__(self, base):
        self.base = base
        self.cli = ["podman", "--root", os.path.join(base, "root"), "--runroot", os.path.join(base, "run"),
                    "--cgroup-manager", "cgroupfs", "--runtime", "runc", "--events-backend", "file"]

    def __call__(self, *args, timeout=120):
        return subprocess.run(self.cli + list(map(str, args)), capture_output=True, text=True, timeout=timeout)

    def ok(self, *args, **kw):
        r = self(*args, **kw)
        assert r.returncode == 0, f"podman {' '.join(map(str, args))} → rc {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    def close(self):
        ids = self("ps", "-aq").stdout.split()
        if ids:
            self("rm", "-f", *ids)
        subprocess.run(["umount", "-R", "-l", os.path.join(self.base, "root", "overlay")], capture_output=True)
        self("system", "reset", "--force")
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def podman():
    if shutil.which("podman") is None or shutil.which("runc") is None:
        unavailable("podman and runc are needed for the interop tests (scripts/setup.sh)")
    p = Podman(tempfile.mkdtemp(prefix="cryo-podman-", dir="/tmp"))
    yield p
    p.close()


def test_podman_archive_is_imported_and_runs_on(cryo, podman, name, tmp):
    """podman 4.3 (runc, cgroupfs v1, no cgroup namespace) exports; cryo imports and the
    container runs on. It took: a source for each of runc's per-controller cgroup binds
    (/sys/fs/cgroup/cpu, …) although cryo's own containers have a cgroup namespace, and the
    new root's mode as runc had it (busybox's 0555; CRIU checks it)."""
    podman.ok("load", "-i", IMAGES / "busybox.tar")
    podman.ok("run", "-d", "--name", name, "--network", "none", "--ulimit", "nofile=1024:1024",
              "--ulimit", "nproc=4096:4096", "busybox", "sh", "-c", STATEFUL)
    wait_for(lambda: len(counter_values(podman.ok("logs", name).stdout)) >= 5, what="podman's counter")
    archive = os.path.join(tmp, "podman.tar.zst")
    podman.ok("container", "checkpoint", "--export", archive, name)
    last = counter_values(podman.ok("logs", name).stdout)[-1]
    r = cryo("container", "restore", "--import", archive, "--name", name)
    assert r.returncode == 0, r.stderr
    assert "not verified" in r.stderr     # podman's archives carry no digests
    info = inspect(cryo.daemon, name)
    assert info["State"]["Running"]
    wait_for(lambda: len(counter_values(cryo.ok("logs", name).stdout)) >= 3, what="the imported counter")
    assert counter_values(cryo.ok("logs", name).stdout)[0] >= last
    assert cryo.ok("exec", name, "cat", "/kept").stdout == "kept\n"
    assert cryo("exec", name, "test", "-e", "/bin/zcat").returncode == 1
    assert cryo.ok("exec", name, "cat", "/dev/shm/s").stdout == "shm\n"
