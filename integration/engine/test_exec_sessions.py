"""Attached exec sessions must not starve the daemon (issue 14, item 2): each used to hold a
thread of cryod's 16-thread blocking pool in `read` (and one in `waitpid`) for as long as its
process lived, so 22 sessions stopped `docker run` and checkpoints altogether, even after the
clients had gone. With the relays on NIO's event loops, 30 sessions change nothing. Nothing here
is timed: the calls have to complete (each docker call has its own timeout)."""

import select
import subprocess
import time

import pytest

from conftest import COUNTER, counter_values, inspect, wait_for

SESSIONS = 30


def read_line(proc, timeout=60):
    """A line from an exec client, or a failure (not a hang) when none comes."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        pytest.fail(f"no output from an attached exec session within {timeout}s")
    return proc.stdout.readline().decode().strip()


def test_thirty_attached_exec_sessions_leave_run_and_checkpoint_working(docker_cli, name, criu):
    d = docker_cli
    d.ok("run", "-d", "--name", name, "busybox", "sleep", "100000")
    other = name + "-cr"
    d.ok("run", "-d", "--name", other, "busybox", "sh", "-c", COUNTER)
    clients = []
    try:
        for i in range(SESSIONS):
            clients.append(subprocess.Popen(
                ["docker", "exec", name, "sh", "-c", f"while true; do echo s{i}; sleep 1; done"],
                env=d.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL))
        # every session is attached and streaming
        for i, c in enumerate(clients):
            line = read_line(c)
            assert line == f"s{i}", f"session {i} said {line!r}"
        assert d.ok("run", "--rm", "busybox", "echo", "alive", timeout=60) == "alive"
        d.ok("checkpoint", "create", other, "c1", timeout=60)
        d.ok("start", "--checkpoint", "c1", other, timeout=60)
        n = len(counter_values(d.ok("logs", other)))
        wait_for(lambda: len(counter_values(d.ok("logs", other))) > n, what="the restored counter")
        # a tty session and a stdin session still work beside them
        r = d.docker("exec", "-i", name, "cat", input="through stdin\n", timeout=60)
        assert r.returncode == 0 and r.stdout == "through stdin\n", r
    finally:
        for c in clients:
            c.kill()
            c.wait(timeout=10)
    # the clients are gone, their processes run on (as in Docker): still nothing is starved
    assert d.ok("run", "--rm", "busybox", "echo", "alive again", timeout=60) == "alive again"
    d.ok("checkpoint", "create", "--leave-running", other, "c2", timeout=60)
    assert inspect(d, other)["State"]["Running"]


def test_exec_exit_codes_and_streams(docker_cli, name):
    d = docker_cli
    d.ok("run", "-d", "--name", name, "busybox", "sleep", "100000")
    r = d.docker("exec", name, "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (r.returncode, r.stdout, r.stderr) == (7, "out\n", "err\n"), r
    r = d.docker("exec", name, "sh", "-c", "kill -9 $$")
    assert r.returncode == 137, r
    big = d.docker("exec", name, "sh", "-c", "i=0; while [ $i -lt 20000 ]; do echo line$i; i=$((i+1)); done")
    lines = big.stdout.splitlines()
    assert big.returncode == 0 and len(lines) == 20000 and lines[-1] == "line19999"


def test_checkpoint_with_a_live_exec_process_is_refused_not_lossy(docker_cli, name, criu):
    """CRIU dumps the tree under the container's init; an exec'd process hangs under the
    runtime outside it, so a checkpoint used to leave it out silently (and kill it with the
    container). It is refused, naming the process, and the container keeps running."""
    d = docker_cli
    d.ok("run", "-d", "--name", name, "busybox", "sh", "-c", COUNTER)
    wait_for(lambda: len(counter_values(d.ok("logs", name))) >= 2, what="counter output")
    d.ok("exec", "-d", name, "sh", "-c", "echo $$ > /tmp/up; while true; do sleep 1000; done")
    wait_for(lambda: d.docker("exec", name, "test", "-e", "/tmp/up").returncode == 0, what="the exec'd loop")
    for args in (["--leave-running"], []):
        r = d.docker("checkpoint", "create", *args, name, "c1", timeout=60)
        assert r.returncode != 0 and "started by exec" in r.stderr, r
        assert inspect(d, name)["State"]["Running"]
    assert "c1" not in d.ok("checkpoint", "ls", name).split()
    n = len(counter_values(d.ok("logs", name)))
    wait_for(lambda: len(counter_values(d.ok("logs", name))) > n, what="the counter going on")
    # once the exec'd processes are gone, the checkpoint is taken
    d.ok("exec", name, "sh", "-c", "kill $(cat /tmp/up); sleep 0.2; kill $(pidof sleep) 2>/dev/null; true")
    wait_for(lambda: d.docker("checkpoint", "create", "--leave-running", name, "c2", timeout=60).returncode == 0,
             timeout=30, interval=0.5, what="a checkpoint once the exec'd process is gone")
