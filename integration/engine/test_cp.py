"""`docker cp` against cryod with the real docker CLI (issue 13): both directions, running and
stopped containers, tar on stdout, dockerd's messages, and the host boundary — a container's
symlinks resolve inside the container, a hostile tar writes nothing outside it."""

import io
import os
import subprocess
import tarfile
import urllib.parse
import uuid
from pathlib import Path

import pytest

from conftest import inspect


def run_sleeper(d, name, *opts):
    d.ok("run", "-d", "--name", name, *opts, "busybox", "sleep", "1000")


def docker_bytes(d, *args, input=None):
    """The docker CLI with binary stdout (a tar)."""
    return subprocess.run(["docker", *args], env=d.env, input=input, capture_output=True, timeout=60)


def tar_of(members):
    """An uncompressed tar: members are (name, kind, payload) with kind file/dir/symlink/chr."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            info.mode = 0o644
            if kind == "file":
                data = payload.encode()
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "chr": tarfile.CHRTYPE}[kind]
            if kind == "symlink":
                info.linkname = payload
            if kind == "chr":
                info.devmajor, info.devminor = 1, 3
            t.addfile(info)
    return buf.getvalue()


def put_archive(d, ref, path, body):
    q = urllib.parse.urlencode({"path": path, "noOverwriteDirNonDir": "true"})
    return d.http("PUT", f"/containers/{ref}/archive?{q}", body=body, headers={"Content-Type": "application/x-tar"})


# ------------------------------------------------------------------------------------------
# both directions


def test_cp_file_and_directory_both_ways_running(docker_cli, name, tmp_path):
    d = docker_cli
    run_sleeper(d, name)
    f = tmp_path / "f.txt"
    f.write_text("hello from the host\n")
    d.ok("cp", str(f), f"{name}:/tmp/f.txt")
    assert d.ok("exec", name, "cat", "/tmp/f.txt") == "hello from the host"

    src = tmp_path / "tree"
    (src / "a").mkdir(parents=True)
    (src / "a" / "b.txt").write_text("bee\n")
    (src / "exe").write_text("#!/bin/sh\n")
    (src / "exe").chmod(0o755)
    os.symlink("a/b.txt", src / "link")
    d.ok("cp", str(src), f"{name}:/tmp/")                    # into an existing directory
    assert d.ok("exec", name, "cat", "/tmp/tree/a/b.txt") == "bee"
    assert d.ok("exec", name, "readlink", "/tmp/tree/link") == "a/b.txt"
    assert d.ok("exec", name, "stat", "-c", "%a", "/tmp/tree/exe") == "755"
    d.ok("cp", f"{src}/.", f"{name}:/tmp/contents")          # the contents, to a new directory
    assert d.ok("exec", name, "cat", "/tmp/contents/a/b.txt") == "bee"

    d.ok("exec", name, "sh", "-c", "mkdir -p /data/x && echo hi > /data/x/y && ln -s x/y /data/l")
    out = tmp_path / "out"
    d.ok("cp", f"{name}:/data", str(out))
    assert (out / "x" / "y").read_text() == "hi\n"
    assert os.readlink(out / "l") == "x/y"
    d.ok("cp", f"{name}:/etc/hostname", str(tmp_path / "hostname"))
    assert (tmp_path / "hostname").read_text().strip() == d.ok("exec", name, "hostname")


def test_cp_into_never_started_and_stopped_containers(docker_cli, name, tmp_path):
    d = docker_cli
    f = tmp_path / "payload"
    f.write_text("copied before the start\n")
    d.ok("create", "--name", name, "busybox", "cat", "/copied")
    d.ok("cp", str(f), f"{name}:/copied")
    r = d.docker("start", "-a", name)
    assert r.returncode == 0, r
    assert r.stdout == "copied before the start\n"

    # Stopped after running: copy in, copy out, start again, the file is there.
    other = name + "b"
    run_sleeper(d, other)
    d.ok("stop", "-t", "0", other)
    f.write_text("copied while stopped\n")
    d.ok("cp", str(f), f"{other}:/tmp/")
    back = docker_bytes(d, "cp", f"{other}:/tmp/payload", "-")
    assert back.returncode == 0, back.stderr
    with tarfile.open(fileobj=io.BytesIO(back.stdout)) as t:
        assert t.extractfile("payload").read() == b"copied while stopped\n"
    d.ok("start", other)
    assert d.ok("exec", other, "cat", "/tmp/payload") == "copied while stopped"


def test_cp_to_stdout_is_a_tar_with_the_stat_header(docker_cli, name):
    d = docker_cli
    run_sleeper(d, name)
    r = docker_bytes(d, "cp", f"{name}:/etc/hostname", "-")
    assert r.returncode == 0, r.stderr
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as t:
        names = t.getnames()
        assert names == ["hostname"], names
        assert t.extractfile("hostname").read().decode().strip() == d.ok("exec", name, "hostname")
    status, headers, _ = d.http("HEAD", f"/containers/{name}/archive?path=/etc")
    assert status == 200
    import base64
    import json
    st = json.loads(base64.b64decode(headers["x-docker-container-path-stat"]))
    assert st["name"] == "etc" and st["mode"] & (1 << 31), st     # Go's os.ModeDir


def test_cp_missing_path_and_bad_requests(docker_cli, name, tmp_path):
    d = docker_cli
    run_sleeper(d, name)
    r = d.docker("cp", f"{name}:/no/such/file", str(tmp_path / "x"))
    assert r.returncode != 0
    assert f"Could not find the file /no/such/file in container {name}" in r.stderr, r.stderr
    status, _, _ = d.http("HEAD", f"/containers/{name}/archive?path=/nope")
    assert status == 404
    status, _, body = d.http("GET", f"/containers/{name}/archive?path=")
    assert status == 400 and b"path cannot be empty" in body
    status, _, body = put_archive(d, name, "/etc/hostname", tar_of([("x", "file", "x")]))
    assert status == 400 and b"extraction point is not a directory" in body, body
    status, _, body = d.http("GET", "/containers/nosuchcontainer/archive?path=/etc")
    assert status == 404
    r = d.docker("cp", f"{name}:/proc/1/status", "-")
    assert r.returncode != 0 and "kernel filesystem" in r.stderr, r.stderr


# ------------------------------------------------------------------------------------------
# the host boundary


def test_container_symlinks_resolve_inside_the_container(docker_cli, name, tmp_path):
    d = docker_cli
    run_sleeper(d, name)
    marker = f"cryo-cp-escape-{uuid.uuid4().hex[:8]}"
    host_file = Path("/tmp") / marker
    host_file.write_text("host original\n")
    try:
        d.ok("exec", name, "sh", "-c", f"ln -s / /escape && ln -s /tmp/{marker} /evil")
        # Reading through /escape reads the container's /etc/hostname, not the host's.
        d.ok("cp", f"{name}:/escape/etc/hostname", str(tmp_path / "via-escape"))
        assert (tmp_path / "via-escape").read_text().strip() == d.ok("exec", name, "hostname")
        assert (tmp_path / "via-escape").read_text() != Path("/etc/hostname").read_text()

        # Writing through /escape writes the container's /tmp, not the host's.
        f = tmp_path / marker
        f.write_text("written by docker cp\n")
        d.ok("cp", str(f), f"{name}:/escape/tmp/{marker}")
        assert host_file.read_text() == "host original\n"
        assert d.ok("exec", name, "cat", f"/tmp/{marker}") == "written by docker cp"

        # A link to a host-looking path: without -L the link itself, with -L the container's file.
        r = docker_bytes(d, "cp", f"{name}:/evil", "-")
        with tarfile.open(fileobj=io.BytesIO(r.stdout)) as t:
            m = t.getmember("evil")
            assert m.issym() and m.linkname == f"/tmp/{marker}"
        d.ok("cp", "-L", f"{name}:/evil", str(tmp_path / "followed"))
        assert (tmp_path / "followed").read_text() == "written by docker cp\n"

        # Copying onto the link writes the container's file it names, never the host's.
        f.write_text("second write\n")
        d.ok("cp", str(f), f"{name}:/evil")
        assert host_file.read_text() == "host original\n"
        assert d.ok("exec", name, "cat", f"/tmp/{marker}") == "second write"
    finally:
        host_file.unlink(missing_ok=True)


def test_hostile_tar_is_refused_and_contained(docker_cli, name):
    d = docker_cli
    run_sleeper(d, name)
    marker = f"cryo-cp-hostile-{uuid.uuid4().hex[:8]}"
    host = Path("/tmp") / marker
    try:
        for members in ([("ok", "file", "1"), (f"../../../../../../tmp/{marker}", "file", "pwned")],
                        [(f"/tmp/{marker}", "file", "pwned")],
                        [("l", "symlink", "/tmp"), (f"l/{marker}", "file", "pwned")],
                        [("hostdir", "symlink", "/proc/1/root/tmp"), (f"hostdir/{marker}", "file", "pwned")]):
            status, _, body = put_archive(d, name, "/", tar_of(members))
            assert status == 400, (members, status, body)
            assert not host.exists(), f"{members} wrote {host} on the host"
        assert d.docker("exec", name, "test", "-e", f"/tmp/{marker}").returncode != 0
        assert d.docker("exec", name, "test", "-e", "/ok").returncode != 0, "a refused archive was partly written"
        status, _, body = put_archive(d, name, "/tmp", tar_of([("null", "chr", None)]))
        assert status == 400 and b"device node" in body, body
        assert d.docker("exec", name, "test", "-e", "/tmp/null").returncode != 0
    finally:
        host.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------
# mounts


def test_running_container_is_served_through_its_own_mounts(docker_cli, name, tmp_path):
    """/dev/shm (a tmpfs) and a named volume exist only in the container's mount namespace:
    a copy reaches them there."""
    d = docker_cli
    vol = name + "vol"
    try:
        run_sleeper(d, name, "-v", f"{vol}:/data")
        f = tmp_path / "f"
        f.write_text("through the mounts\n")
        d.ok("cp", str(f), f"{name}:/dev/shm/")
        assert d.ok("exec", name, "cat", "/dev/shm/f") == "through the mounts"
        d.ok("exec", name, "sh", "-c", "echo from-shm > /dev/shm/g")
        d.ok("cp", f"{name}:/dev/shm/g", str(tmp_path / "g"))
        assert (tmp_path / "g").read_text() == "from-shm\n"
        d.ok("cp", str(f), f"{name}:/data/")
        r = d.docker("run", "--rm", "-v", f"{vol}:/v", "busybox", "cat", "/v/f")
        assert r.returncode == 0 and r.stdout == "through the mounts\n", r
    finally:
        d.docker("rm", "-f", name)
        d.docker("volume", "rm", "-f", vol)


def test_stopped_container_mount_points_are_refused(docker_cli, name, tmp_path):
    """A stopped container has no volumes mounted: a path on one is refused, never served
    from (or written to) the directory underneath."""
    d = docker_cli
    vol = name + "vol"
    try:
        d.ok("create", "--name", name, "-v", f"{vol}:/data", "busybox", "sleep", "1000")
        f = tmp_path / "f"
        f.write_text("x\n")
        for dst in ("/data", "/data/f"):   # the CLI's own stat fails: it sends the PUT for / or /data
            r = d.docker("cp", str(f), f"{name}:{dst}")
            assert r.returncode != 0 and "only while it runs" in r.stderr, (dst, r.stderr)
        status, _, body = put_archive(d, name, "/", tar_of([("data/f", "file", "x")]))
        assert status == 409 and b"only while it runs" in body, body
        r = d.docker("cp", f"{name}:/data", "-")
        assert r.returncode != 0 and "only while it runs" in r.stderr, r.stderr
        # Elsewhere the stopped container is copied to as usual.
        d.ok("cp", str(f), f"{name}:/tmp/")
        assert inspect(d, name)["State"]["Status"] == "created"
    finally:
        d.docker("rm", "-f", name)
        d.docker("volume", "rm", "-f", vol)


# ------------------------------------------------------------------------------------------
# the cryo CLI's cp: the same rules through the same endpoints


def test_cryo_cp_both_ways(cryo, name, tmp_path):
    d = cryo.daemon
    run_sleeper(d, name)
    src = tmp_path / "tree"
    (src / "a").mkdir(parents=True)
    (src / "a" / "b.txt").write_text("bee\n")
    os.symlink("a/b.txt", src / "link")
    cryo.ok("cp", src, f"{name}:/tmp/")
    assert d.ok("exec", name, "cat", "/tmp/tree/a/b.txt") == "bee"
    assert d.ok("exec", name, "readlink", "/tmp/tree/link") == "a/b.txt"
    cryo.ok("cp", f"{src}/.", f"{name}:/tmp/contents")
    assert d.ok("exec", name, "cat", "/tmp/contents/a/b.txt") == "bee"

    d.ok("exec", name, "sh", "-c", "mkdir -p /data/x && echo hi > /data/x/y && ln -s /etc/passwd /data/abs")
    out = tmp_path / "out"
    cryo.ok("cp", f"{name}:/data", out)
    assert (out / "x" / "y").read_text() == "hi\n"
    assert os.readlink(out / "abs") == "/etc/passwd"      # copied as a link, never followed
    cryo.ok("cp", f"{name}:/data/x/y", tmp_path / "renamed")
    assert (tmp_path / "renamed").read_text() == "hi\n"

    tar = subprocess.run([str(cryo_bin(cryo)), "-H", d.host, "cp", f"{name}:/data/x", "-"], capture_output=True, timeout=60)
    assert tar.returncode == 0, tar.stderr
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as t:
        assert t.extractfile("x/y").read() == b"hi\n"
    r = subprocess.run([str(cryo_bin(cryo)), "-H", d.host, "cp", "-", f"{name}:/tmp"],
                       input=tar_of([("fromstdin.txt", "file", "piped\n")]), capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert d.ok("exec", name, "cat", "/tmp/fromstdin.txt") == "piped"

    r = cryo("cp", f"{name}:/no/such/path", tmp_path / "x")
    assert r.returncode != 0 and "Could not find the file /no/such/path" in r.stderr, r
    r = cryo("cp", src, tmp_path / "y")
    assert r.returncode != 0 and "container" in r.stderr, r
    r = cryo("cp", src, f"{name}:/tmp/tree/a/b.txt")
    assert r.returncode != 0 and "directory to a file" in r.stderr, r


def cryo_bin(cryo):
    from conftest import BIN_DIR
    return BIN_DIR / "cryo"
