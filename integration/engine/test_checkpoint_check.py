"""`cryo checkpoint check CONTAINER` (issue 12): a dry run that says whether a running container
can be checkpointed and, when not, names the process and the resource. Cases made here: a
plain container and one with a terminal (-t) (can: and a real checkpoint then works), a unix
socket connected to a process on the host and io_uring (cannot: and a real checkpoint fails)."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading

import pytest

from conftest import IMAGES, REPO, unavailable, wait_for

# io_uring_setup(2) on x86_64 through ctypes, then hold the ring open.
IO_URING = ("import ctypes, time; libc = ctypes.CDLL(None, use_errno=True); p = ctypes.create_string_buffer(120); "
            "fd = libc.syscall(425, 4, p); print('ring', fd, ctypes.get_errno(), flush=True); time.sleep(100000)")
UNIX_CLIENT = ("import socket, time; s = socket.socket(socket.AF_UNIX); s.connect('/ext/host.sock'); "
               "print('connected', flush=True); time.sleep(100000)")


@pytest.fixture
def python_image(cryo):
    if not (IMAGES / "python-http.tar").is_file():
        r = subprocess.run(["bash", str(REPO / "scripts" / "make-app-images.sh"), str(IMAGES)],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            unavailable(f"scripts/make-app-images.sh failed: {r.stderr[-2000:]}")
    cryo.ok("load", "-i", IMAGES / "python-http.tar", timeout=300)
    return "python-http:latest"


def check(cryo, name):
    """(exit code, JSON answer, human answer)."""
    j = cryo("checkpoint", "check", "--format", "json", name)
    text = cryo("checkpoint", "check", name)
    assert j.returncode == text.returncode, (j, text)
    return j.returncode, json.loads(j.stdout), text.stdout


def holds(cryo, name):
    """The answer "cannot" holds: a real checkpoint (leave-running) fails, and the container runs on."""
    r = cryo("checkpoint", "create", "--leave-running", name, "cpx", timeout=300)
    assert r.returncode != 0, r.stdout
    assert cryo.ok("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true"


def test_check_plain_container_can(cryo, name):
    cryo.ok("run", "-d", "--name", name, "busybox", "sh", "-c", "exec 3>/tmp/f; sleep 100000 | cat")
    rc, answer, text = check(cryo, name)
    assert rc == 0, answer
    assert answer["checkpointable"] is True and answer["problems"] == [], answer
    assert answer["criuVersion"] and len(answer["pids"]) >= 3
    assert "can be checkpointed" in text
    # The answer holds: a real checkpoint works.
    cryo.ok("checkpoint", "create", "--leave-running", name, "cp1")


def test_check_terminal_is_a_note(cryo, name):
    """A terminal (-t) is not in the way: cryo checkpoints it through CRIU's orphan pts master.
    The check says so as a note naming the process, and a real checkpoint works."""
    cryo.ok("run", "-d", "-t", "--name", name, "busybox", "sh", "-c", "sleep 100000")
    rc, answer, text = check(cryo, name)
    assert rc == 0 and answer["checkpointable"] is True and answer["problems"] == [], answer
    ttys = [p for p in answer["notes"] if p["kind"] == "terminal"]
    assert ttys and all(p["pid"] and p["comm"] in ("sh", "sleep") and p["resource"].startswith("/dev/pts/") for p in ttys), answer
    assert "can be checkpointed" in text and "note: process" in text and "/dev/pts/" in text
    cryo.ok("checkpoint", "create", "--leave-running", name, "cpt")


def test_check_external_unix_socket_cannot(cryo, name, python_image):
    d = tempfile.mkdtemp(prefix="cryo-check-")
    server = socket.socket(socket.AF_UNIX)
    accepted = []
    try:
        server.bind(os.path.join(d, "host.sock"))
        server.listen(1)
        t = threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True)
        t.start()
        cryo.ok("run", "-d", "--name", name, "-v", f"{d}:/ext", python_image, "python3", "-c", UNIX_CLIENT)
        wait_for(lambda: "connected" in cryo("logs", name).stdout, what="the container's client connected")
        rc, answer, text = check(cryo, name)
        assert rc == 1, answer
        ext = [p for p in answer["problems"] if p["kind"] == "external-unix-socket"]
        assert ext and ext[0]["comm"] == "python3" and ext[0]["pid"] in answer["pids"] and ext[0]["fd"] is not None, answer
        assert "outside the container" in text and "python3" in text
        holds(cryo, name)
    finally:
        server.close()
        for c in accepted:
            c.close()
        shutil.rmtree(d, ignore_errors=True)


def test_check_io_uring_cannot(cryo, name, python_image):
    # The default seccomp profile refuses io_uring (as docker's does): this container goes without.
    cryo.ok("run", "-d", "--name", name, "--security-opt", "seccomp=unconfined", python_image, "python3", "-c", IO_URING)
    wait_for(lambda: "ring" in cryo("logs", name).stdout, what="io_uring_setup called")
    fd = cryo("logs", name).stdout.split()[1]
    if int(fd) < 0:
        unavailable(f"io_uring_setup failed in the container: {cryo('logs', name).stdout.strip()}")
    rc, answer, text = check(cryo, name)
    assert rc == 1, answer
    rings = [p for p in answer["problems"] if p["kind"] == "io_uring"]
    assert rings == [dict(rings[0], pid=rings[0]["pid"], comm="python3", fd=int(fd), resource="anon_inode:[io_uring]")], answer
    assert "io_uring" in text
    holds(cryo, name)


def test_check_api_errors(cryo, name):
    status, _, _ = cryo.daemon.http("GET", "/containers/nope-nothing/checkpoint/check")
    assert status == 404
    cryo.ok("create", "--name", name, "busybox", "true")
    status, _, body = cryo.daemon.http("GET", f"/containers/{name}/checkpoint/check")
    assert status == 409 and b"not running" in body, (status, body)
    r = cryo("checkpoint", "check", name)
    assert r.returncode != 0 and "not running" in r.stderr
