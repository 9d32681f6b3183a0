"""Clones and fork (issue 12): a local checkpoint restored as new containers any number of
times, and `cryo fork` (a leave-running checkpoint restored beside the running container)."""

import json
import urllib.parse

from conftest import counter_values, inspect, wait_for
from test_checkpoint_archive import assert_is_clone, start_counter


def test_three_clones_from_one_checkpoint(cryo, name):
    start_counter(cryo, name)
    src = inspect(cryo.daemon, name)
    cryo.ok("checkpoint", "create", "--leave-running", name, "cp1")
    # The clones start from the checkpointed state: at least the value logged before it.
    checkpointed = counter_values(cryo.ok("logs", name).stdout)[-1]
    ids, ips = set(), set()
    for i in range(3):
        r = cryo.ok("container", "restore", "--checkpoint", "cp1", "--name", f"{name}-{i}", name)
        info = assert_is_clone(cryo, f"{name}-{i}", src, checkpointed)
        assert r.stdout.strip() == info["Id"]
        ids.add(info["Id"])
        ips.add(info["NetworkSettings"]["IPAddress"])
    assert len(ids) == 3 and len(ips) == 3
    # The checkpoint is still there, whole: listed, and the source restores from it.
    assert "cp1" in cryo.ok("checkpoint", "ls", name).stdout.split()
    cryo.ok("stop", "-t", "1", name)
    cryo.ok("start", "--checkpoint", "cp1", name)
    assert inspect(cryo.daemon, name)["State"]["Running"]
    wait_for(lambda: counter_values(cryo.ok("logs", name).stdout)[-1] > checkpointed, what="source restored")
    # Its images were not changed by the clones: the source keeps its own hostname.
    assert cryo.ok("exec", name, "hostname").stdout.strip() == src["Id"][:12]


def test_fork_of_a_running_container(cryo, name):
    script = "echo before > /tmp/mark; v=r$RANDOM$RANDOM; " \
             "i=0; while true; do echo $i $v; i=$((i+1)); sleep 0.1; done"
    cryo.ok("run", "-d", "--name", name, "busybox", "sh", "-c", script)
    wait_for(lambda: len(counter_values(cryo.ok("logs", name).stdout)) >= 5, what="source counting")
    src = inspect(cryo.daemon, name)
    secret = cryo.ok("logs", name).stdout.split()[1]
    fork = name + "-fork"
    r = cryo.ok("fork", name, fork)
    assert "paused" in r.stderr and "running after" in r.stderr
    # The source goes on: the same process, its counter advancing.
    after = inspect(cryo.daemon, name)
    assert after["State"]["Running"] and after["State"]["Pid"] == src["State"]["Pid"]
    n = counter_values(cryo.ok("logs", name).stdout)[-1]
    wait_for(lambda: counter_values(cryo.ok("logs", name).stdout)[-1] > n, what="source advancing")
    # The fork: its own ID, name, address and hostname, with the source's state at the fork.
    info = inspect(cryo.daemon, fork)
    assert r.stdout.strip() == info["Id"] and info["Id"] != src["Id"]
    assert info["State"]["Running"] and info["Name"] == "/" + fork
    assert info["NetworkSettings"]["IPAddress"] not in ("", src["NetworkSettings"]["IPAddress"])
    short = info["Id"][:12]
    assert cryo.ok("exec", fork, "hostname").stdout.strip() == short
    assert cryo.ok("exec", fork, "cat", "/etc/hostname").stdout.strip() == short
    assert cryo.ok("exec", fork, "cat", "/tmp/mark").stdout == "before\n"
    wait_for(lambda: len(cryo.ok("logs", fork).stdout.split("\n")) >= 3, what="fork counting")
    lines = [ln.split() for ln in cryo.ok("logs", fork).stdout.splitlines() if ln.strip()]
    assert all(ln[1] == secret for ln in lines)      # the value in the shell's memory
    # Only the fork's own lines: it went on from the source's count, not from 0.
    assert int(lines[0][0]) >= 5
    # No temporary checkpoint is left behind.
    assert cryo.ok("checkpoint", "ls", name).stdout.split() == ["CHECKPOINT", "NAME"]
    # The JSON report of a second fork.
    j = json.loads(cryo.ok("fork", "--format", "json", name, fork + "2").stdout)
    assert j["Name"] == fork + "2" and j["TimeToRunningMs"] > 0 and j["Source"] == name


def test_refusals(cryo, name):
    start_counter(cryo, name)
    cryo.ok("checkpoint", "create", "--leave-running", name, "cp1")
    d = cryo.daemon
    before = d.ok("ps", "-aq", "--no-trunc").split()
    # A name in use: 409, a clear message, nothing created.
    for path in (f"/containers/{name}/checkpoints/cp1/clone?name={name}", f"/containers/{name}/fork?name={name}"):
        status, _, body = d.http("POST", path)
        assert status == 409, (path, status, body)
        assert "already in use" in json.loads(body)["message"]
    r = cryo("container", "restore", "--checkpoint", "cp1", "--name", name, name)
    assert r.returncode != 0 and "already in use" in r.stderr
    r = cryo("fork", name, name)
    assert r.returncode != 0 and "already in use" in r.stderr
    # A checkpoint that does not exist: 404.
    q = urllib.parse.urlencode({"name": name + "-x"})
    status, _, body = d.http("POST", f"/containers/{name}/checkpoints/nope/clone?{q}")
    assert status == 404, (status, body)
    assert "nope" in json.loads(body)["message"]
    # The same from the CLI, and a clone without a name.
    assert cryo("container", "restore", "--checkpoint", "nope", "--name", name + "-x", name).returncode != 0
    assert cryo("container", "restore", "--checkpoint", "cp1", name).returncode != 0
    assert sorted(d.ok("ps", "-aq", "--no-trunc").split()) == sorted(before)
    # The source was not disturbed, and its checkpoint is still there.
    assert inspect(d, name)["State"]["Running"]
    assert "cp1" in cryo.ok("checkpoint", "ls", name).stdout.split()
