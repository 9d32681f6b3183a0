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
    holds(cryo, name)


def _cgroups_of(pid):
    """Each mounted hierarchy's directory of `pid`'s cgroup (v1 controllers, named, unified)."""
    out = []
    for line in open(f"/proc/{pid}/cgroup").read().splitlines():
        _, controllers, path = line.split(":", 2)
        sub = "unified" if not controllers else controllers.split(",")[0].replace("name=", "")
        d = f"/sys/fs/cgroup/{sub}{path}"
        if os.path.isdir(d):
            out.append(d)
    return out


def test_check_host_file_cannot(cryo, name):
    """A process of the container (its namespaces and cgroup) holding a file of the host's
    filesystem, as a host file handed over as stdio would be: CRIU cannot reopen it inside
    the container. Named with its process and path."""
    cryo.ok("run", "-d", "--name", name, "busybox", "sh", "-c", "sleep 100000")
    init = int(cryo.ok("inspect", "-f", "{{.State.Pid}}", name).stdout.strip())
    d = tempfile.mkdtemp(prefix="cryo-check-host-")
    host_file = os.path.join(d, "stdin-from-the-host")
    with open(host_file, "w") as f:
        f.write("host data\n")
    # fd 3 is opened on the host, then the process enters the container's mount and PID
    # namespaces keeping it, and is moved into the container's cgroup.
    p = subprocess.Popen(["bash", "-c", f"exec 3<{host_file}; exec nsenter -t {init} -m -p -- /bin/sleep 100000"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: os.path.exists(f"/proc/{p.pid}/ns/mnt") and
                 os.readlink(f"/proc/{p.pid}/ns/mnt") == os.readlink(f"/proc/{init}/ns/mnt"),
                 what="the holder inside the container's mount namespace")
        wait_for(lambda: [int(c) for c in os.listdir("/proc") if c.isdigit() and _ppid(int(c)) == p.pid],
                 what="the holder's sleep in the container's PID namespace")
        holders = [p.pid] + [int(c) for c in os.listdir("/proc") if c.isdigit() and _ppid(int(c)) == p.pid]
        for cg in _cgroups_of(init):
            for h in holders:
                with open(os.path.join(cg, "cgroup.procs"), "w") as f:
                    f.write(str(h))
        rc, answer, text = check(cryo, name)
        assert rc == 1, answer
        # fd 3 of each holder; their stdio (the host's /dev/null) is a host file as well.
        found = [q for q in answer["problems"] if q["kind"] == "host-file" and q["fd"] == 3]
        assert found and all(q["resource"] == host_file and q["pid"] in holders
                             and q["comm"] in ("nsenter", "sleep") for q in found), answer
        assert {q["resource"] for q in answer["problems"] if q["kind"] == "host-file"} <= {host_file, "/dev/null"}, answer
        assert host_file in text and "cannot" in text
        holds(cryo, name)
    finally:
        for h in [int(c) for c in os.listdir("/proc") if c.isdigit() and _ppid(int(c)) == p.pid] + [p.pid]:
            try:
                os.kill(h, 9)
            except ProcessLookupError:
                pass
        p.wait()
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
