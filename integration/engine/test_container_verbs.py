"""The everyday container verbs of issue 13 through the real docker CLI and docker-py:
--init, top, rename, diff, container prune, stats."""

import json
import re
import time
import subprocess

import pytest

from conftest import inspect, unavailable, wait_for


def run_sleeper(d, name, *opts):
    d.ok("run", "-d", "--name", name, *opts, "busybox", "sleep", "1000")


def pid1_cmdline(d, name):
    return d.ok("exec", name, "sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline").strip()


def assert_orphans_reaped(d, name):
    """An exec leaves an orphan behind: it is re-parented to PID 1, which must reap it when
    it exits (a PID 1 that does not reap leaves /proc/PID as a zombie for ever)."""
    pid = d.ok("exec", name, "sh", "-c", "sleep 0.3 & echo $!")
    assert pid.isdigit(), pid
    wait_for(lambda: d.docker("exec", name, "test", "-e", f"/proc/{pid}").returncode != 0,
             timeout=20, what=f"the orphan {pid} to be reaped")


def assert_stop_forwards_term(d, name):
    """docker stop sends SIGTERM to PID 1: the init forwards it to `sleep`, which dies of it
    (exit 143). Without an init, `sleep` as PID 1 ignores SIGTERM and is killed (137)."""
    d.ok("stop", "-t", "60", name, timeout=120)
    st = inspect(d, name)["State"]
    assert not st["Running"]
    assert st["ExitCode"] == 143, st


# ------------------------------------------------------------------------------------------
# --init


def test_init_is_pid1_reaps_orphans_and_forwards_stop(docker_cli, name):
    d = docker_cli
    run_sleeper(d, name, "--init")
    assert pid1_cmdline(d, name).startswith("/sbin/docker-init -- sleep 1000")
    c = inspect(d, name)
    assert c["HostConfig"]["Init"] is True
    assert c["Path"] == "sleep" and c["Args"] == ["1000"], (c["Path"], c["Args"])
    assert_orphans_reaped(d, name)
    assert_stop_forwards_term(d, name)


def test_init_keeps_working_after_checkpoint_restore(docker_cli, name, criu):
    d = docker_cli
    run_sleeper(d, name, "--init")
    assert d.ok("checkpoint", "create", name, "cp1", timeout=120) == "cp1"
    d.ok("start", "--checkpoint", "cp1", name, timeout=120)
    assert inspect(d, name)["State"]["Running"]
    assert pid1_cmdline(d, name).startswith("/sbin/docker-init -- sleep 1000")
    assert_orphans_reaped(d, name)
    assert_stop_forwards_term(d, name)


def test_init_exit_code_and_missing_command(docker_cli, name):
    d = docker_cli
    r = d.docker("run", "--init", "--name", name, "busybox", "sh", "-c", "exit 7")
    assert r.returncode == 7, r
    r = d.docker("run", "--rm", "--init", "busybox", "/no/such/command")
    assert r.returncode == 127, r


def test_init_docker_py(dpy, name):
    c = dpy.containers.run("busybox", "sleep 1000", init=True, detach=True, name=name)
    c.reload()
    assert c.attrs["HostConfig"]["Init"] is True
    # The init forks the command just after the start: wait for it to be there.
    cmds = wait_for(lambda: [row[-1] for row in c.top()["Processes"]] if len(c.top()["Processes"]) == 2 else None,
                    what="the init and its command")
    assert cmds[0].startswith("/sbin/docker-init -- sleep 1000"), cmds
    assert cmds[1] == "sleep 1000", cmds


# ------------------------------------------------------------------------------------------
# top


def test_top_default_and_ps_args(docker_cli, name):
    d = docker_cli
    run_sleeper(d, name)
    out = d.ok("top", name).splitlines()
    assert out[0].split()[:3] == ["UID", "PID", "PPID"], out
    assert len(out) == 2 and out[1].endswith("sleep 1000"), out
    out = d.ok("top", name, "-o", "pid,comm").splitlines()
    assert out[0].split() == ["PID", "COMMAND"], out
    assert out[1].split()[1] == "sleep", out
    r = d.docker("top", name, "-o", "comm")
    assert r.returncode != 0 and "PID" in r.stderr, r
    d.ok("stop", "-t", "0", name)
    r = d.docker("top", name)
    assert r.returncode != 0 and "not running" in r.stderr, r


def test_top_docker_py(dpy, name):
    c = dpy.containers.run("busybox", "sleep 1000", detach=True, name=name)
    top = c.top(ps_args="-o pid,args")
    assert top["Titles"] == ["PID", "COMMAND"], top
    assert [row[1] for row in top["Processes"]] == ["sleep 1000"], top


# ------------------------------------------------------------------------------------------
# rename


def test_rename(docker_cli, name):
    d = docker_cli
    run_sleeper(d, name)
    other = name + "-other"
    run_sleeper(d, other)
    new = name + "-new"
    d.ok("rename", name, new)
    assert inspect(d, new)["Name"] == "/" + new
    assert d.docker("inspect", name).returncode != 0
    assert new in d.ok("ps", "--format", "{{.Names}}").split()
    # A name in use: 409, nothing changes.
    r = d.docker("rename", new, other)
    assert r.returncode != 0 and "already in use" in r.stderr, r
    st, _, body = d.http("POST", f"/v1.50/containers/{new}/rename?name={other}")
    assert st == 409, body
    assert inspect(d, other)["Name"] == "/" + other
    r = d.docker("rename", new, new)
    assert r.returncode != 0, r
    r = d.docker("rename", new, "bad name!")
    assert r.returncode != 0 and "Invalid container name" in r.stderr, r


def test_rename_keeps_checkpoints(docker_cli, name, criu):
    d = docker_cli
    d.ok("run", "-d", "--name", name, "busybox", "sh", "-c", "echo started; sleep 1000")
    assert d.ok("checkpoint", "create", name, "cp1", timeout=120) == "cp1"
    new = name + "-new"
    d.ok("rename", name, new)
    assert "cp1" in d.ok("checkpoint", "ls", new).split()
    d.ok("start", "--checkpoint", "cp1", new, timeout=120)
    assert inspect(d, new)["State"]["Running"]
    assert d.ok("exec", new, "echo", "alive") == "alive"


def test_rename_docker_py(dpy, name):
    c = dpy.containers.run("busybox", "sleep 1000", detach=True, name=name)
    c.rename(name + "-py")
    c.reload()
    assert c.name == name + "-py"


# ------------------------------------------------------------------------------------------
# diff


def test_diff(docker_cli, name):
    d = docker_cli
    d.ok("run", "--name", name, "busybox", "sh", "-c",
         "echo x > /new; mkdir /newdir; echo y > /newdir/f; rm /bin/ls; echo z >> /etc/passwd")
    lines = d.ok("diff", name).splitlines()
    for want in ["A /new", "A /newdir", "A /newdir/f", "D /bin/ls", "C /bin", "C /etc", "C /etc/passwd"]:
        assert want in lines, (want, lines)
    # What cryo mounts over is not the container's change.
    for path in ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev", "/proc", "/sys"]:
        assert not any(l.endswith(" " + path) for l in lines), (path, lines)
    st, _, body = d.http("GET", f"/v1.50/containers/{name}/changes")
    assert st == 200
    changes = {c["Path"]: c["Kind"] for c in json.loads(body)}
    assert changes["/new"] == 1 and changes["/bin/ls"] == 2 and changes["/etc/passwd"] == 0, changes


def test_diff_docker_py_and_unchanged(dpy, name):
    c = dpy.containers.run("busybox", "true", name=name, detach=True)
    c.wait()
    assert not c.diff()
    c2 = dpy.containers.run("busybox", "touch /added", name=name + "-2", detach=True)
    c2.wait()
    assert {"Path": "/added", "Kind": 1} in c2.diff()


# ------------------------------------------------------------------------------------------
# container prune


def test_container_prune_filters(docker_cli, name):
    d = docker_cli
    d.ok("run", "--name", name + "-a", "--label", "grp=a", "busybox", "sh", "-c", "head -c 300000 /dev/zero > /blob")
    d.ok("run", "--name", name + "-b", "busybox", "true")
    run_sleeper(d, name + "-run", "--label", "grp=a")
    ida = inspect(d, name + "-a")["Id"]
    # Created within the hour: `until=1h` matches nothing.
    out = d.ok("container", "prune", "-f", "--filter", "until=1h")
    assert "Total reclaimed space: 0B" in out, out
    out = d.ok("container", "prune", "-f", "--filter", "label=grp=a")
    assert ida in out, out
    m = re.search(r"Total reclaimed space: ([\d.]+)kB", out)
    assert m and float(m.group(1)) >= 300, out
    assert d.docker("inspect", name + "-a").returncode != 0
    assert inspect(d, name + "-b")["State"]["Status"] == "exited"
    d.ok("container", "prune", "-f")
    assert d.docker("inspect", name + "-b").returncode != 0
    assert inspect(d, name + "-run")["State"]["Running"], "a running container is never pruned"
    r = d.docker("container", "prune", "-f", "--filter", "dangling=true")
    assert r.returncode != 0 and "invalid filter" in r.stderr, r


def test_container_prune_docker_py(dpy, name):
    c = dpy.containers.run("busybox", "true", name=name, detach=True, labels={"k": "v"})
    c.wait()
    keep = dpy.containers.run("busybox", "true", name=name + "-keep", detach=True)
    keep.wait()
    r = dpy.containers.prune(filters={"label": "k=v"})
    assert r["ContainersDeleted"] == [c.id], r
    assert "SpaceReclaimed" in r
    keep.reload()


# ------------------------------------------------------------------------------------------
# stats


def size_bytes(s):
    m = re.fullmatch(r"([\d.]+)\s*([kKMGT]?i?B)", s.strip())
    assert m, s
    mult = {"B": 1, "kB": 1e3, "KiB": 1024, "MB": 1e6, "MiB": 1 << 20, "GB": 1e9, "GiB": 1 << 30}[m.group(2)]
    return float(m.group(1)) * mult


def test_stats_no_stream_prints_real_numbers(docker_cli, name):
    d = docker_cli
    d.ok("run", "-d", "--name", name, "--memory", "64m", "busybox", "sh", "-c",
         "head -c 8000000 /dev/zero > /dev/shm/fill; while :; do :; done")
    wait_for(lambda: d.docker("exec", name, "test", "-s", "/dev/shm/fill").returncode == 0, what="the fill")
    out = d.ok("stats", "--no-stream", "--format",
               "{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.NetIO}}|{{.BlockIO}}|{{.PIDs}}", name)
    cpu, mem, memp, net, blk, pids = out.split("|")
    assert float(cpu.rstrip("%")) > 1, out
    used, limit = mem.split(" / ")
    assert size_bytes(limit) == 64 << 20, out
    assert size_bytes(used) > 1 << 20, out
    assert float(memp.rstrip("%")) > 0, out
    assert " / " in net and " / " in blk, out
    assert int(pids) >= 1, out


def test_cryo_stats_streams_and_samples(cryo, name):
    """`cryo stats`: a live table redrawn every second until interrupted (the running
    containers when none is named), one sample with --no-stream, docker's template fields and
    JSON lines."""
    d = cryo.daemon
    d.ok("run", "-d", "--name", name, "--memory", "64m", "busybox", "sh", "-c", "while :; do :; done")
    idle = name + "-idle"
    d.ok("run", "-d", "--name", idle, "busybox", "sleep", "1000")
    out = cryo.ok("stats", "--no-stream", "--format", "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}", name).stdout
    nm, cpu, mem, pids = out.strip().split("|")
    assert nm == name and float(cpu.rstrip("%")) > 1 and mem.endswith(" / 64MiB") and int(pids) >= 1, out

    lines = cryo.ok("stats", "--no-stream", "--format", "json").stdout.splitlines()
    rows = {json.loads(l)["Name"]: json.loads(l) for l in lines}
    assert {name, idle} <= set(rows), lines
    assert set(rows[name]) == {"Container", "ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs"}

    # Streaming: the table comes again every second; the command runs until it is stopped.
    from conftest import BIN_DIR
    p = subprocess.Popen([str(BIN_DIR / "cryo"), "-H", d.host, "stats", idle], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(4.5)
        assert p.poll() is None, p.communicate()
    finally:
        p.terminate()
        stdout, stderr = p.communicate(timeout=10)
    assert stdout.count("CONTAINER ID") >= 2, stdout + stderr
    assert stdout.count(idle) >= 2, stdout

    r = cryo("stats", "--no-stream", "nosuch" + name)
    assert r.returncode != 0 and "No such container" in r.stderr, r


def test_stats_api_stream_and_one_shot(docker_cli, name):
    d = docker_cli
    run_sleeper(d, name)
    st, _, body = d.http("GET", f"/v1.50/containers/{name}/stats?stream=0", timeout=30)
    assert st == 200, body
    s = json.loads(body)
    assert s["name"] == "/" + name and s["id"] == inspect(d, name)["Id"]
    assert s["precpu_stats"]["system_cpu_usage"] > 0
    assert s["cpu_stats"]["system_cpu_usage"] > s["precpu_stats"]["system_cpu_usage"]
    assert s["cpu_stats"]["online_cpus"] >= 1
    assert s["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert s["memory_stats"]["usage"] > 0 and s["memory_stats"]["limit"] > 0
    assert s["pids_stats"]["current"] == 1
    assert "eth0" in s["networks"], s["networks"]
    st, _, body = d.http("GET", f"/v1.50/containers/{name}/stats?stream=0&one-shot=1")
    assert st == 200 and json.loads(body)["precpu_stats"]["system_cpu_usage"] == 0
    st, _, body = d.http("GET", f"/v1.50/containers/{name}/stats?stream=1&one-shot=1")
    assert st == 400, body


def test_stats_docker_py_stream(dpy, name):
    c = dpy.containers.run("busybox", "sleep 1000", detach=True, name=name)
    one = c.stats(stream=False)
    assert one["pids_stats"]["current"] == 1
    frames = c.stats(stream=True, decode=True)
    first, second = next(frames), next(frames)
    assert second["precpu_stats"]["system_cpu_usage"] == first["cpu_stats"]["system_cpu_usage"]
    frames.close()


# ------------------------------------------------------------------------------------------
# update


def stats_once(d, name):
    st, _, body = d.http("GET", f"/v1.50/containers/{name}/stats?stream=0&one-shot=1")
    assert st == 200, body
    return json.loads(body)


def test_update_limits_on_a_running_container(docker_cli, name):
    d = docker_cli
    run_sleeper(d, name)
    assert d.ok("update", "--memory", "32m", "--pids-limit", "10", "--cpus", "0.5", name) == name
    hc = inspect(d, name)["HostConfig"]
    assert (hc["Memory"], hc["PidsLimit"], hc["NanoCpus"]) == (32 << 20, 10, 500_000_000), hc
    s = stats_once(d, name)
    assert s["memory_stats"]["limit"] == 32 << 20 and s["pids_stats"]["limit"] == 10, s
    # The pids limit is enforced at once: the 10th process cannot be forked.
    out = d.docker("exec", name, "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 100 >/dev/null 2>&1 & done; echo done")
    assert "fork" in (out.stdout + out.stderr).lower() or out.returncode != 0, out
    # A restart keeps the new limits.
    d.ok("restart", "-t", "0", name, timeout=120)
    s = stats_once(d, name)
    assert s["memory_stats"]["limit"] == 32 << 20 and s["pids_stats"]["limit"] == 10, s
    # What cryo cannot change is refused, not ignored.
    for opts in (["--cpuset-cpus", "0"], ["--memory-reservation", "16m"]):
        r = d.docker("update", *opts, name)
        assert r.returncode != 0 and "cannot update" in r.stderr, (opts, r)
    # (--restart is honoured: test_restart_policy.py.)
    assert inspect(d, name)["HostConfig"]["RestartPolicy"]["Name"] == "no"


def test_update_docker_py(dpy, name):
    c = dpy.containers.run("busybox", "sleep 1000", detach=True, name=name)
    c.update(mem_limit="48m")
    c.reload()
    assert c.attrs["HostConfig"]["Memory"] == 48 << 20
