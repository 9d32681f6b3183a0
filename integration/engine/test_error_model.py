"""The error model through the API (issue 14, item 3): a command that cannot be run gets
126 or 127 from the errno of its exec, never from words in the message; a malformed image
archive is a 400 and a full disk a 500; an exit record that cannot be written is reported,
not swallowed."""

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from conftest import inspect, wait_for

# A name that says the opposite of what is true of it (the file exists, it is not executable).
MISLEADING = "no such file or directory"


@pytest.fixture
def host_dir():
    d = Path(tempfile.mkdtemp(prefix="cryo-e2e-errors-"))
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def failed_start_exit_code(d, name, *args):
    d.ok("create", "--name", name, *args)
    r = d.docker("start", name)
    assert r.returncode != 0, r
    return inspect(d, name)["State"]["ExitCode"], r


def test_missing_command_is_127(docker_cli, name):
    code, r = failed_start_exit_code(docker_cli, name, "busybox", "/nonexistent")
    assert code == 127, r
    assert "/nonexistent" in r.stderr


def test_non_executable_file_is_126(docker_cli, name):
    code, r = failed_start_exit_code(docker_cli, name, "busybox", "/etc/passwd")
    assert code == 126, r


def test_126_even_when_the_path_reads_like_a_missing_file(docker_cli, name, host_dir):
    # The message holds "no such file or directory" (the path), the errno is EACCES: 126.
    # Matching the text said 127.
    (host_dir / MISLEADING).write_text("not a program\n")
    os.chmod(host_dir / MISLEADING, 0o644)
    code, r = failed_start_exit_code(docker_cli, name, "-v", f"{host_dir}:/x", "busybox", f"/x/{MISLEADING}")
    assert code == 126, r


def test_docker_run_of_a_missing_command_exits_127(docker_cli, name):
    r = docker_cli.docker("run", "--name", name, "busybox", "/nonexistent")
    assert r.returncode == 127, r


def test_exec_of_a_missing_or_non_executable_command(docker_cli, name, host_dir):
    d = docker_cli
    (host_dir / MISLEADING).write_text("not a program\n")
    os.chmod(host_dir / MISLEADING, 0o644)
    d.ok("run", "-d", "--name", name, "-v", f"{host_dir}:/x", "busybox", "sleep", "1000")
    r = d.docker("exec", name, "/nonexistent")
    assert r.returncode == 127, r
    r = d.docker("exec", name, "nosuchcommand")
    assert r.returncode == 127, r
    r = d.docker("exec", name, "/etc/passwd")
    assert r.returncode == 126, r
    r = d.docker("exec", name, f"/x/{MISLEADING}")
    assert r.returncode == 126, r
    # A command's own 127 is still its own.
    r = d.docker("exec", name, "sh", "-c", "exit 127")
    assert r.returncode == 127, r


def test_other_start_failures_are_not_126_or_127(docker_cli, name, host_dir):
    # A working directory that is a file: the start fails, not because of the command.
    # (Its error text names a path holding "permission denied".)
    weird = host_dir / "permission denied"
    weird.write_text("a file, not a directory\n")
    d = docker_cli
    d.ok("create", "--name", name, "-v", f"{host_dir}:/x", "-w", f"/x/{weird.name}", "busybox", "true")
    r = d.docker("start", name)
    assert r.returncode != 0, r
    assert "permission denied" in r.stderr, r
    assert inspect(d, name)["State"]["ExitCode"] == 128, r


# --------------------------------------------------------------------------------------------
# image load: the archive's fault 400, cryod's own 500


def tar_bytes(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for n, content in members.items():
            info = tarfile.TarInfo(n)
            info.size = len(content)
            t.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def test_malformed_archive_is_400(docker_cli):
    st, _, out = docker_cli.http("POST", "/v1.50/images/load", body=b"not an archive at all" * 100,
                                 headers={"Content-Type": "application/x-tar"})
    assert st == 400, out
    st, _, out = docker_cli.http("POST", "/v1.50/images/load", body=tar_bytes({"hello.txt": b"hi"}),
                                 headers={"Content-Type": "application/x-tar"})
    assert st == 400, out
    assert b"not an image archive" in out, out


@pytest.fixture
def small_image_tmp(docker_cli):
    """cryod's image staging directory on a 1 MiB tmpfs: a full disk while loading."""
    tmp = docker_cli.root / "images" / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "cryo-e2e-errors", str(tmp)], check=True)
    try:
        yield tmp
    finally:
        subprocess.run(["umount", "-l", str(tmp)], check=False)


def repetitive_tar_gz(size):
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as gz:
        with tarfile.open(fileobj=gz, mode="w") as t:
            info = tarfile.TarInfo("zeros")
            info.size = size
            t.addfile(info, io.BytesIO(b"x" * size))   # not zeros: those unpack as holes
    return buf.getvalue()


def test_full_disk_while_storing_the_upload_is_500(docker_cli, small_image_tmp):
    body = os.urandom(3 << 20)   # does not fit in 1 MiB
    st, _, out = docker_cli.http("POST", "/v1.50/images/load", body=body, headers={"Content-Type": "application/x-tar"})
    assert st == 500, out
    assert b"No space left on device" in out, out


def test_full_disk_while_unpacking_is_500(docker_cli, small_image_tmp):
    body = repetitive_tar_gz(4 << 20)   # a few KB that unpack to 4 MiB
    assert len(body) < 256 << 10
    st, _, out = docker_cli.http("POST", "/v1.50/images/load", body=body, headers={"Content-Type": "application/x-tar"})
    assert st == 500, out
    assert b"No space left on device" in out, out
    assert list(small_image_tmp.iterdir()) == []


def test_checkpoint_archive_refusal_is_400_and_full_disk_while_unpacking_500(docker_cli):
    """A checkpoint archive that is not one is the client's (400, with the reason); a disk
    that fills while cryod unpacks a sound one is cryod's (500), not a refusal."""
    st, _, out = docker_cli.http("POST", "/v1.50/containers/restore", body=b"not an archive" * 100,
                                 headers={"Content-Type": "application/x-tar"})
    assert st == 400, out
    assert b"checkpoint archive refused" in out and b"not a readable tar archive" in out, out
    imports = docker_cli.root / "imports"
    imports.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "cryo-e2e-errors", str(imports)], check=True)
    try:
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb") as gz:
            with tarfile.open(fileobj=gz, mode="w") as t:
                info = tarfile.TarInfo("checkpoint/pages-1.img")
                info.size = 4 << 20
                t.addfile(info, io.BytesIO(b"x" * info.size))
        st, _, out = docker_cli.http("POST", "/v1.50/containers/restore", body=buf.getvalue(),
                                     headers={"Content-Type": "application/x-tar"})
        assert st == 500, out
        assert b"unpacking the checkpoint archive" in out and b"No space left on device" in out, out
    finally:
        subprocess.run(["umount", "-l", str(imports)], check=False)


# --------------------------------------------------------------------------------------------
# exit.json


def test_exit_record_that_cannot_be_written_is_reported(docker_cli, name):
    d = docker_cli
    cid = d.ok("run", "-d", "--name", name, "busybox", "sh", "-c",
               "trap 'exit 3' TERM; while :; do sleep 1 & wait; done").strip()
    cdir = d.root / "containers" / cid
    assert cdir.is_dir(), cdir
    # exit.json goes into the container's directory: an immutable directory refuses it
    # (the files already open there, such as the log, are still written).
    subprocess.run(["chattr", "+i", str(cdir)], check=True)
    try:
        d.ok("stop", name)
        state = inspect(d, name)["State"]
    finally:
        subprocess.run(["chattr", "-i", str(cdir)], check=False)
    assert state["Status"] == "exited", state
    assert state["ExitCode"] == 3, state
    assert "exit.json" in state["Error"] and "Operation not permitted" in state["Error"], state
    assert "exit.json" in d.log_tail(200)
