"""Every operation that changes a container takes its lock (issue 14, item 2): a request that
arrives while a checkpoint holds it waits for the checkpoint instead of acting in its middle.

The race is made, not hoped for: this module's cryod runs with `CRYO_FAULT=POINT:hold`, which
stops a checkpoint at a named step until the test creates `$CRYO_FAULT_RELEASE/POINT`. The
other request is sent while the checkpoint is held; the checkpoint is let go once that request
has come back (the bug) or has had a moment to arrive (the fix: it waits for the lock). Only
the outcome is asserted, never a time."""

import subprocess
import time

import pytest

from conftest import CGROUP_ROOT, COUNTER, Daemon, counter_values, fixture_daemon, inspect, wait_for

POINTS = ("checkpoint-started", "checkpoint-frozen", "create-volumes-made")


def hold_daemon(base):
    """A cryod whose checkpoints stop at POINTS while a test holds them (`held`)."""
    d = Daemon(base)
    d.fault = ",".join(f"{p}:hold" for p in POINTS)
    for p in POINTS:   # released: a checkpoint goes through unless a test holds it
        d.release(p)
    return d


@pytest.fixture(scope="module")
def hd(criu):
    with fixture_daemon("cryo-lk-", hold_daemon) as d:
        yield d


@pytest.fixture
def hdc(hd):
    yield hd
    hd.remove_all_containers()


def frozen(cid):
    """Whether the container's cgroup is frozen: v1 freezer, or v2's cgroup.freeze (hybrid or unified)."""
    v1 = CGROUP_ROOT / "freezer" / "cryo" / cid / "freezer.state"
    if v1.exists():
        return v1.read_text().strip() != "THAWED"
    for v2 in (CGROUP_ROOT / "unified" / "cryo" / cid / "cgroup.freeze", CGROUP_ROOT / "cryo" / cid / "cgroup.freeze"):
        if v2.exists():
            return v2.read_text().strip() == "1"
    pytest.fail(f"no freezer found for container {cid}")


def docker_bg(d, *args):
    return subprocess.Popen(["docker", *args], env=d.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def held_checkpoint(d, point, name, *args):
    """Starts `docker checkpoint create ARGS` and returns once it is held at `point`."""
    before = d.holds(point)
    cp = docker_bg(d, "checkpoint", "create", *args)
    wait_for(lambda: d.holds(point) > before or cp.poll() is not None, timeout=60, interval=0.02,
             what=f"the checkpoint held at {point}")
    assert cp.poll() is None, f"the checkpoint ended before {point}: {cp.communicate()}"
    return cp


def let_arrive(proc, seconds=3):
    """Paces the test (asserts nothing): until `proc` is done, or has had `seconds` to reach
    cryod and queue on the lock."""
    end = time.monotonic() + seconds
    while proc.poll() is None and time.monotonic() < end:
        time.sleep(0.02)


def finish(proc, what, timeout=120):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"{what} did not finish")
    return proc.returncode, out, err


def test_pause_during_a_leave_running_checkpoint_matches_the_cgroup(hdc, name):
    """The pause lands after the checkpoint froze the container: unlocked, it was undone by the
    checkpoint's thaw while the record said paused."""
    d = hdc
    d.ok("run", "-d", "--name", name, "busybox", "sh", "-c", COUNTER)
    cid = inspect(d, name)["Id"]
    with d.held("checkpoint-frozen"):
        cp = held_checkpoint(d, "checkpoint-frozen", name, "--leave-running", name, "c1")
        pause = docker_bg(d, "pause", name)
        let_arrive(pause)
    assert finish(cp, "the checkpoint")[0] == 0, cp
    code, _, err = finish(pause, "the pause")
    assert code == 0, err
    status = inspect(d, name)["State"]["Status"]
    assert status == "paused"
    assert frozen(cid), "the record says paused, the cgroup is thawed"
    n = len(counter_values(d.ok("logs", name)))
    d.ok("unpause", name)
    assert not frozen(cid)
    wait_for(lambda: len(counter_values(d.ok("logs", name))) > n, what="the counter after unpause")


def test_exec_during_a_checkpoint_waits_for_it(hdc, name):
    """An exec's process started in the middle of a checkpoint is outside the init's tree: the
    checkpoint was refused. Now the exec waits, the checkpoint succeeds, then the exec runs."""
    d = hdc
    d.ok("run", "-d", "--name", name, "busybox", "sleep", "100000")
    with d.held("checkpoint-started"):
        cp = held_checkpoint(d, "checkpoint-started", name, "--leave-running", name, "c1")
        ex = docker_bg(d, "exec", "-d", name, "sleep", "100000")
        let_arrive(ex)
    code, _, err = finish(cp, "the checkpoint")
    assert code == 0, f"the checkpoint failed: {err}"
    code, _, err = finish(ex, "the exec")
    assert code == 0, err
    assert "c1" in d.ok("checkpoint", "ls", name).split()
    # the init and the exec'd process
    assert d.ok("exec", name, "ps", "-o", "args").splitlines().count("sleep 100000") == 2


def test_kill_during_a_checkpoint_waits_for_it(hdc, name):
    """`docker kill` while a checkpoint runs waits for it (it used to kill the tasks under CRIU
    and fail the checkpoint), then kills."""
    d = hdc
    d.ok("run", "-d", "--name", name, "busybox", "sh", "-c", COUNTER)
    with d.held("checkpoint-started"):
        cp = held_checkpoint(d, "checkpoint-started", name, "--leave-running", name, "c1")
        k = docker_bg(d, "kill", name)
        let_arrive(k)
    code, _, err = finish(cp, "the checkpoint")
    assert code == 0, f"the checkpoint failed: {err}"
    code, _, err = finish(k, "the kill")
    assert code == 0, err
    assert "c1" in d.ok("checkpoint", "ls", name).split()
    wait_for(lambda: not inspect(d, name)["State"]["Running"], timeout=30, what="the container killed")


def test_the_daemon_answers_while_a_checkpoint_is_held(hdc, name):
    """A checkpoint stalled on a pool thread (a `hold` inside the dump) holds its container's
    lock and nothing else: the engine actor and the other containers go on. `/_ping`, the
    container list, an inspect of the held container, a new container's whole life, an exec in
    another container and its stop all finish while it is held."""
    d = hdc
    other = name + "-other"
    d.ok("run", "-d", "--name", name, "busybox", "sh", "-c", COUNTER)
    d.ok("run", "-d", "--name", other, "busybox", "sh", "-c", COUNTER)
    with d.held("checkpoint-frozen"):
        cp = held_checkpoint(d, "checkpoint-frozen", name, "--leave-running", name, "c1")
        st, _, body = d.http("GET", "/_ping", timeout=20)
        assert (st, body) == (200, b"OK"), (st, body)
        st, _, body = d.http("GET", "/containers/json", timeout=20)
        assert st == 200 and name.encode() in body, (st, body[:300])
        assert inspect(d, name)["State"]["Running"]
        assert d.ok("run", "--rm", "busybox", "echo", "alive", timeout=60).strip() == "alive"
        assert d.ok("exec", other, "echo", "hi").strip() == "hi"
        d.ok("stop", "-t", "1", other, timeout=60)
        assert cp.poll() is None, "the checkpoint was let go before the end of the block"
    code, _, err = finish(cp, "the held checkpoint")
    assert code == 0, err
    assert "c1" in d.ok("checkpoint", "ls", name).split()


def test_kill_during_a_stop_goes_through(hdc, name):
    """A stop holds the lock while it waits out its grace period; a kill does not wait for it
    (as in Docker, `docker kill` cuts a long stop short)."""
    d = hdc
    d.ok("run", "-d", "--name", name, "busybox", "sh", "-c", "trap '' TERM; " + COUNTER)
    stop = docker_bg(d, "stop", "-t", "600", name)
    let_arrive(stop, seconds=2)
    assert stop.poll() is None, "the stop did not wait for its grace period"
    d.ok("kill", name, timeout=60)
    code, _, err = finish(stop, "the stop", timeout=60)
    assert code == 0, err
    assert not inspect(d, name)["State"]["Running"]


def test_restart_and_checkpoint_do_not_interleave(hdc, name):
    """A restart arriving during a checkpoint waits for it, then stops and starts as one."""
    d = hdc
    d.ok("run", "-d", "--name", name, "busybox", "sh", "-c", COUNTER)
    with d.held("checkpoint-started"):
        cp = held_checkpoint(d, "checkpoint-started", name, "--leave-running", name, "c1")
        r = docker_bg(d, "restart", "-t", "1", name)
        let_arrive(r)
    code, _, err = finish(cp, "the checkpoint")
    assert code == 0, f"the checkpoint failed: {err}"
    code, _, err = finish(r, "the restart")
    assert code == 0, err
    st = inspect(d, name)
    assert st["State"]["Running"] and st["RestartCount"] == 1


def test_volume_rm_during_a_create_that_mounts_it_is_refused(hdc, name):
    """A create that made its volume but has no record yet holds a claim on it: `volume rm`
    meanwhile is refused (409) instead of taking the volume from under the new container."""
    d = hdc
    v = "v" + name
    d.ok("volume", "create", v)
    try:
        with d.held("create-volumes-made"):
            before = d.holds("create-volumes-made")
            create = docker_bg(d, "create", "--name", name, "-v", f"{v}:/data", "busybox", "true")
            wait_for(lambda: d.holds("create-volumes-made") > before or create.poll() is not None, timeout=60,
                     interval=0.02, what="the create held with its volume made")
            assert create.poll() is None, create.communicate()
            r = d.docker("volume", "rm", v)
            assert r.returncode != 0 and "a container mounting it is being created" in r.stderr, r
        code, _, err = finish(create, "the create")
        assert code == 0, err
        assert [m["Name"] for m in inspect(d, name)["Mounts"]] == [v]
        r = d.docker("volume", "rm", v)
        assert r.returncode != 0 and "volume is in use" in r.stderr, r
    finally:
        d.docker("rm", "-f", name)
        d.docker("volume", "rm", "-f", v)
