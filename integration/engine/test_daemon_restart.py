"""Containers outlive cryod: stop it with SIGTERM or SIGKILL, start it again."""

import signal
import subprocess
import time

import pytest

from conftest import COUNTER, counter_values, inspect, wait_for


def logs(d, ref):
    return d.ok("logs", ref)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_containers_survive_daemon_restart(docker_cli, restart_daemon, name, sig):
    d = docker_cli
    d.ok("run", "-d", "--name", name, "busybox", "sh", "-c", COUNTER)
    wait_for(lambda: len(counter_values(logs(d, name))) >= 5, what="counter output")
    pid = inspect(d, name)["State"]["Pid"]
    follow = subprocess.Popen(["docker", "logs", "-f", name], env=d.env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        restart_daemon(sig)
        # the follower ends when cryod goes away (no hang)
        follow.wait(timeout=20)
    finally:
        if follow.poll() is None:
            follow.kill()
    st = inspect(d, name)["State"]
    assert st["Running"] and st["Pid"] == pid
    assert name in d.ok("ps", "--format", "{{.Names}}").split()
    n = len(counter_values(logs(d, name)))
    # the monitor kept logging while cryod was down and keeps going
    wait_for(lambda: len(counter_values(logs(d, name))) > n + 3, what="logs after restart")
    vals = counter_values(logs(d, name))
    assert vals == list(range(len(vals)))
    # logs -f resumes
    p = subprocess.Popen(["docker", "logs", "-f", "--tail", "0", name], env=d.env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        a = int(p.stdout.readline())
        b = int(p.stdout.readline())
        assert b == a + 1
    finally:
        p.terminate()
        p.wait(timeout=10)
    assert d.ok("exec", name, "echo", "exec-ok") == "exec-ok"
    d.ok("stop", "-t", "1", name)
    st = inspect(d, name)["State"]
    assert not st["Running"] and st["ExitCode"] == 137


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_exit_while_daemon_down(docker_cli, daemon, restart_daemon, name, sig):
    d = docker_cli
    d.ok("run", "-d", "--name", name, "busybox", "sh", "-c", "echo before; sleep 2; echo after; exit 42")
    wait_for(lambda: "before" in logs(d, name), what="first line")
    d.stop(sig)
    time.sleep(3)
    d.start()
    st = inspect(d, name)["State"]
    assert not st["Running"] and st["Status"] == "exited"
    assert st["ExitCode"] == 42
    assert logs(d, name).split() == ["before", "after"]
    assert d.ok("wait", name, timeout=10) == "42"
    # and it can be started again
    d.ok("start", name)
    assert d.ok("wait", name, timeout=30) == "42"


def test_container_states_survive_daemon_kill(docker_cli, restart_daemon, name):
    """Several containers, stopped/running/created, all come back with the right state."""
    d = docker_cli
    d.ok("run", "-d", "--name", name + "r", "busybox", "sleep", "1000")
    assert d.docker("run", "--name", name + "e", "busybox", "sh", "-c", "exit 3").returncode == 3
    d.ok("create", "--name", name + "c", "busybox", "true")
    d.ok("run", "-d", "--name", name + "p", "busybox", "sleep", "1000")
    d.ok("pause", name + "p")
    restart_daemon(signal.SIGKILL)
    assert inspect(d, name + "r")["State"]["Status"] == "running"
    e = inspect(d, name + "e")["State"]
    assert e["Status"] == "exited" and e["ExitCode"] == 3
    assert inspect(d, name + "c")["State"]["Status"] == "created"
    assert inspect(d, name + "p")["State"]["Status"] == "paused"
    d.ok("unpause", name + "p")
    assert inspect(d, name + "p")["State"]["Status"] == "running"
    d.ok("start", name + "c")
    assert d.ok("wait", name + "c") == "0"
