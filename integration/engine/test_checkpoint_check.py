"""`cryo checkpoint check CONTAINER` (issue 12): a dry run that says whether a running container
can be checkpointed and, when not, names the process and the resource. Cases made here: a
plain container and one with a terminal (-t) (can: and a real checkpoint then works), a unix
socket connected to a process on the host, io_uring, an open device and a host file held by a
process of the container (cannot: and a real checkpoint fails)."""

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


def holds(cryo, name, why=None):
    """The answer "cannot" holds: a real checkpoint (leave-running) fails — for the reason
    CRIU's log gives as `why`, when given — and the container runs on."""
    r = cryo("checkpoint", "create", "--leave-running", name, "cpx", timeout=300)
    assert r.returncode != 0, r.stdout
    assert why is None or why in r.stderr, r.stderr
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


def test_check_open_device_cannot(cryo, name):
    """A device CRIU cannot restore by path (/dev/fuse, given with --device) held open by the
    container's shell: named with its process and path."""
    cryo.ok("run", "-d", "--name", name, "--device", "/dev/fuse", "busybox", "sh", "-c",
            "exec 3<>/dev/fuse; echo opened; sleep 100000")
    wait_for(lambda: "opened" in cryo("logs", name).stdout, what="the device opened")
    rc, answer, text = check(cryo, name)
    assert rc == 1, answer
    devices = [p for p in answer["problems"] if p["kind"] == "device"]
    assert devices and {p["resource"] for p in devices} == {"/dev/fuse"}, answer
    assert all(p["comm"] in ("sh", "sleep") and p["pid"] in answer["pids"] and p["fd"] == 3 for p in devices), answer
    assert "/dev/fuse" in text and "cannot" in text
    holds(cryo, name, why="chr 10:229")   # CRIU: "Can't dump file 3 of that type … (chr 10:229)"


def test_check_host_file_cannot(cryo, name):
    """A process of the container holding a file of the host's filesystem, as a host file
    handed over as stdio would be: CRIU cannot reopen it inside the container. Named with its
    process, fd and path, and a real checkpoint fails on it. The file comes in through a helper
    that holds it open inside the container's PID namespace: the container's own shell opens it
    by /proc/<helper>/fd/3 and the helper goes, so the holders are the container's own
    processes (its dump tree) and nothing else is in its namespaces."""
    cryo.ok("run", "-d", "--name", name, "--cap-add", "SYS_PTRACE", "busybox", "sh", "-c",
            "while [ ! -s /tmp/holder ]; do sleep 0.1; done; exec 4</proc/$(cat /tmp/holder)/fd/3; "
            "touch /tmp/opened; sleep 100000")
    init = int(cryo.ok("inspect", "-f", "{{.State.Pid}}", name).stdout.strip())
    d = tempfile.mkdtemp(prefix="cryo-check-host-")
    host_file = os.path.join(d, "stdin-from-the-host")
    with open(host_file, "w") as f:
        f.write("host data\n")
    # fd 3 is opened on the host; nsenter's child (sleep) is in the container's PID namespace.
    p = subprocess.Popen(["bash", "-c", f"exec 3<{host_file}; exec nsenter -t {init} -p -- /bin/sleep 100000"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def helpers():
        return [int(c) for c in os.listdir("/proc") if c.isdigit() and _ppid(int(c)) == p.pid]

    try:
        wait_for(helpers, what="the helper in the container's PID namespace")
        nspid = open(f"/proc/{helpers()[0]}/status").read().split("NSpid:")[1].split("\n")[0].split()[-1]
        cryo.ok("exec", name, "sh", "-c", f"echo {nspid} > /tmp/holder")
        wait_for(lambda: cryo("exec", name, "test", "-e", "/tmp/opened").returncode == 0,
                 what="the container's shell opening the host file")
    finally:
        for h in helpers() + [p.pid]:
            try:
                os.kill(h, 9)
            except ProcessLookupError:
                pass
        p.wait()
    try:
        rc, answer, text = check(cryo, name)
        assert rc == 1, answer
        found = [q for q in answer["problems"] if q["kind"] == "host-file"]
        assert found and all(q["resource"] == host_file and q["fd"] == 4 and q["pid"] in answer["pids"]
                             and q["comm"] in ("sh", "sleep") for q in found), answer
        assert {q["kind"] for q in answer["problems"]} == {"host-file"}, answer
        assert host_file in text and "cannot" in text
        holds(cryo, name, why=f"fd=4 path={host_file}")   # CRIU: "Can't lookup mount=N for fd=4 path=…"
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _ppid(pid):
    try:
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def test_check_api_errors(cryo, name):
    status, _, _ = cryo.daemon.http("GET", "/containers/nope-nothing/checkpoint/check")
    assert status == 404
    cryo.ok("create", "--name", name, "busybox", "true")
    status, _, body = cryo.daemon.http("GET", f"/containers/{name}/checkpoint/check")
    assert status == 409 and b"not running" in body, (status, body)
    r = cryo("checkpoint", "check", name)
    assert r.returncode != 0 and "not running" in r.stderr
