"""The main flows through docker-py 7.1 against a real cryod."""

import threading
import time

import pytest

from conftest import COUNTER, IMAGES, counter_values, wait_for

try:
    import docker
except ImportError:  # every test takes the `dpy` fixture, which reports it through `unavailable`
    docker = None


def test_version_and_ping(dpy):
    assert dpy.ping() is True
    v = dpy.version()
    assert v["ApiVersion"] == "1.50"


def test_images_load_list_get(dpy):
    with open(IMAGES / "busybox.tar", "rb") as f:
        imgs = dpy.images.load(f.read())
    assert any("busybox:latest" in i.tags for i in imgs), imgs
    listed = dpy.images.list()
    assert any("busybox:latest" in i.tags for i in listed)
    img = dpy.images.get("busybox")
    assert img.id.startswith("sha256:")
    assert img.attrs["Config"]["Cmd"] == ["sh"]
    with pytest.raises(docker.errors.ImageNotFound):
        dpy.images.get("nosuchimage:1")


def test_images_load_oci(dpy):
    with open(IMAGES / "busybox-oci.tar", "rb") as f:
        imgs = dpy.images.load(f.read())
    assert any("busybox-oci:latest" in i.tags for i in imgs), imgs


def test_run_blocking_output(dpy):
    out = dpy.containers.run("busybox", ["sh", "-c", "echo hello; echo world"], remove=True)
    assert out == b"hello\nworld\n"


def test_run_blocking_stderr(dpy):
    out = dpy.containers.run("busybox", ["sh", "-c", "echo o; echo e >&2"], stdout=False,
                             stderr=True, remove=True)
    assert out == b"e\n"


def test_run_nonzero_raises_container_error(dpy):
    with pytest.raises(docker.errors.ContainerError) as ei:
        dpy.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 3"], remove=True)
    assert ei.value.exit_status == 3


def test_run_detach_list_logs_stop(dpy):
    c = dpy.containers.run("busybox", ["sh", "-c", COUNTER], detach=True, name="dpy-counter",
                           environment={"A": "b"}, working_dir="/tmp", hostname="pyhost")
    assert c.name == "dpy-counter"
    c.reload()
    assert c.status == "running"
    assert "A=b" in c.attrs["Config"]["Env"]
    ids = [x.id for x in dpy.containers.list()]
    assert c.id in ids
    wait_for(lambda: len(counter_values(c.logs().decode())) >= 5, what="counter logs")
    vals = counter_values(c.logs().decode())
    assert vals[:5] == [0, 1, 2, 3, 4]
    assert c.logs(tail=1).decode().count("\n") == 1
    ts = c.logs(timestamps=True, tail=2).decode().splitlines()
    assert len(ts) == 2 and all("T" in l.split()[0] and l.split()[0].endswith("Z") for l in ts)
    # streaming logs
    stream = c.logs(stream=True, follow=True)
    got = b""
    while got.count(b"\n") < 3:
        got += next(stream)
    stream.close()
    t0 = time.monotonic()
    c.stop(timeout=1)
    assert time.monotonic() - t0 < 10
    c.reload()
    assert c.status == "exited"
    assert c.id not in [x.id for x in dpy.containers.list()]
    assert c.id in [x.id for x in dpy.containers.list(all=True)]


def test_wait(dpy):
    c = dpy.containers.run("busybox", ["sh", "-c", "sleep 0.3; exit 9"], detach=True)
    assert c.wait(timeout=30)["StatusCode"] == 9
    assert c.wait(timeout=30)["StatusCode"] == 9


def test_exec_run(dpy):
    c = dpy.containers.run("busybox", ["sleep", "1000"], detach=True)
    r = c.exec_run(["sh", "-c", "echo out; exit 6"])
    assert r.exit_code == 6 and r.output == b"out\n"
    r = c.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True)
    assert r.output == (b"o\n", b"e\n")
    r = c.exec_run(["sh", "-c", "tty; echo $TERM"], tty=True)
    assert r.exit_code == 0
    assert b"/dev/pts/" in r.output, r.output
    assert b"\r\n" in r.output  # a tty translates newlines
    r = c.exec_run("pwd", workdir="/etc", environment={"Z": "1"})
    assert r.output == b"/etc\n"
    r = c.exec_run(["sh", "-c", "echo d > /tmp/d"], detach=True)
    wait_for(lambda: c.exec_run(["cat", "/tmp/d"]).output == b"d\n", what="detached exec")


def test_kill_restart_remove(dpy):
    c = dpy.containers.run("busybox", ["sh", "-c", "trap 'echo usr1' USR1; while true; do sleep 0.1; done"],
                           detach=True)
    time.sleep(0.3)
    c.kill(signal="SIGUSR1")
    wait_for(lambda: b"usr1" in c.logs(), what="usr1 in logs")
    c.reload()
    pid = c.attrs["State"]["Pid"]
    c.restart(timeout=1)
    c.reload()
    assert c.status == "running" and c.attrs["State"]["Pid"] != pid
    c.kill()
    assert c.wait(timeout=30)["StatusCode"] == 137
    with pytest.raises(docker.errors.APIError) as ei:
        c.kill()
    assert ei.value.status_code == 409
    c.start()
    c.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        dpy.containers.get(c.id)


def test_pause_unpause(dpy):
    c = dpy.containers.run("busybox", ["sleep", "1000"], detach=True)
    c.pause()
    c.reload()
    assert c.status == "paused" and c.attrs["State"]["Paused"] is True
    c.unpause()
    c.reload()
    assert c.status == "running"


def test_attach_stream_logs(dpy):
    c = dpy.containers.run("busybox", ["sh", "-c", "echo first; sleep 0.5; echo second; sleep 0.5"],
                           detach=True)
    time.sleep(0.2)
    chunks = []

    def read():
        for chunk in c.attach(stream=True, logs=True, stdout=True, stderr=True):
            chunks.append(chunk)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(timeout=20)
    assert not t.is_alive(), f"attach stream did not end; got {chunks!r}"
    assert b"".join(chunks) == b"first\nsecond\n"


def test_errors(dpy, daemon):
    with pytest.raises(docker.errors.NotFound) as ei:
        dpy.containers.get("nosuchcontainer")
    assert "No such container" in str(ei.value)
    with pytest.raises(docker.errors.ImageNotFound):
        dpy.containers.create("nosuchimage:5", "true")
    dpy.containers.create("busybox", "true", name="dpy-dup")
    with pytest.raises(docker.errors.APIError) as ei:
        dpy.containers.create("busybox", "true", name="dpy-dup")
    assert ei.value.status_code == 409
    c = dpy.containers.run("busybox", ["sleep", "1000"], detach=True)
    with pytest.raises(docker.errors.APIError) as ei:
        c.remove()
    assert ei.value.status_code == 409
    # an image with a single tag used by a container cannot be removed (busybox itself may
    # share its id with busybox-oci, and then removing the tag only untags: Docker does that too)
    daemon.ok("import", IMAGES / "busybox-rootfs.tar.gz", "dpy-used:1", timeout=120)
    dpy.containers.create("dpy-used:1", "true")
    with pytest.raises(docker.errors.APIError) as ei:
        dpy.images.remove(dpy.images.get("dpy-used:1").id)
    assert ei.value.status_code == 409


def test_low_level_checkpoint(dpy, daemon, criu):
    """docker-py has no checkpoint API: the raw endpoints through its low-level session."""
    api = dpy.api
    c = dpy.containers.run("busybox", ["sh", "-c", COUNTER], detach=True)
    wait_for(lambda: len(counter_values(c.logs().decode())) >= 5, what="counter")
    r = api._post_json(api._url("/containers/{0}/checkpoints", c.id), data={"CheckpointID": "p1", "Exit": True})
    assert r.status_code == 201, r.text
    r = api._get(api._url("/containers/{0}/checkpoints", c.id))
    assert r.json() == [{"Name": "p1"}]
    n = len(counter_values(c.logs().decode()))
    r = api._post(api._url("/containers/{0}/start", c.id), params={"checkpoint": "p1"})
    assert r.status_code == 204, r.text
    wait_for(lambda: len(counter_values(c.logs().decode())) > n + 3, what="counter after restore")
    vals = counter_values(c.logs().decode())
    assert vals == list(range(len(vals)))
    r = api._delete(api._url("/containers/{0}/checkpoints/{1}", c.id, "p1"))
    assert r.status_code == 204
