"""Every verb of issue 3 through the real docker CLI (28.x) against a real cryod."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import COUNTER, IMAGES, counter_values, inspect, unavailable, wait_for

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z ")


def running(d, ref):
    return inspect(d, ref)["State"]["Running"]


def logs(d, ref, *args):
    return d.ok("logs", *args, ref)


# ------------------------------------------------------------------------------------------
# images


def test_load_docker_archive(docker_cli):
    d = docker_cli
    out = d.ok("load", "-i", IMAGES / "busybox.tar", timeout=120)
    assert "Loaded image: busybox:latest" in out
    imgs = d.ok("images", "--format", "{{.Repository}}:{{.Tag}}").split()
    assert "busybox:latest" in imgs


def test_load_oci_archive_and_run(docker_cli):
    d = docker_cli
    out = d.ok("load", "-i", IMAGES / "busybox-oci.tar", timeout=120)
    assert "busybox-oci:latest" in out
    assert "busybox-oci:latest" in d.ok("images", "--format", "{{.Repository}}:{{.Tag}}").split()
    assert d.ok("run", "--rm", "busybox-oci", "echo", "from-oci") == "from-oci"


def test_load_layered_whiteouts(docker_cli):
    d = docker_cli
    d.ok("load", "-i", IMAGES / "layered.tar", timeout=120)
    out = d.ok("run", "--rm", "layered", "sh", "-c",
               "test -e /x && echo x-present; ls /d; cat /y; echo; cat /top")
    assert "x-present" not in out
    lines = out.split()
    assert "c" in lines and "a" not in lines and "b" not in lines
    assert "y from layer 3" in out
    assert "layer 3" in out


def test_import_gz_then_run(docker_cli):
    d = docker_cli
    out = d.ok("import", IMAGES / "busybox-rootfs.tar.gz", "imported:v1", timeout=120)
    assert out.startswith("sha256:")
    assert "imported:v1" in d.ok("images", "--format", "{{.Repository}}:{{.Tag}}").split()
    assert d.ok("run", "--rm", "imported:v1", "echo", "imported-ok") == "imported-ok"


def test_image_inspect(docker_cli):
    d = docker_cli
    info = json.loads(d.ok("image", "inspect", "busybox"))[0]
    assert info["Id"].startswith("sha256:") and len(info["Id"]) == 71
    assert "busybox:latest" in info["RepoTags"]
    assert info["Config"]["Cmd"] == ["sh"]
    assert info["Os"] == "linux"
    # by id as well
    again = json.loads(d.ok("image", "inspect", info["Id"]))[0]
    assert again["Id"] == info["Id"]


def test_rmi_and_conflict_when_used(docker_cli, name):
    d = docker_cli
    d.ok("import", IMAGES / "busybox-rootfs.tar.gz", "torm:1", timeout=120)
    d.ok("create", "--name", name, "torm:1", "true")
    # by id: always a conflict while a container uses it (by tag it may only untag when an
    # identical import already carries another tag, as in Docker)
    image_id = json.loads(d.ok("image", "inspect", "torm:1"))[0]["Id"]
    r = d.docker("rmi", image_id)
    assert r.returncode == 1, r
    assert "conflict" in r.stderr.lower(), r.stderr
    st, _, body = d.http("DELETE", f"/v1.50/images/{image_id}")
    assert st == 409, (st, body)
    assert "message" in json.loads(body)
    d.ok("rm", name)
    out = d.ok("rmi", "torm:1")
    assert "torm:1" in out
    assert "torm:1" not in d.ok("images", "--format", "{{.Repository}}:{{.Tag}}").split()


def test_rmi_unknown(docker_cli):
    r = docker_cli.docker("rmi", "nosuchimage:1")
    assert r.returncode == 1
    assert "No such image" in r.stderr, r.stderr


def test_image_inspect_unknown(docker_cli):
    r = docker_cli.docker("image", "inspect", "nosuchimage:1")
    assert r.returncode == 1
    assert "No such image" in r.stderr, r.stderr


# ------------------------------------------------------------------------------------------
# run


def test_run_rm_echo(docker_cli, name):
    d = docker_cli
    assert d.ok("run", "--rm", "--name", name, "busybox", "echo", "hi") == "hi"
    assert name not in d.ok("ps", "-a", "--format", "{{.Names}}").split()


def test_run_attached_stdout_stderr_and_exit_code(docker_cli):
    d = docker_cli
    r = d.docker("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert r.returncode == 3, r
    assert r.stdout == "out\n"
    assert r.stderr == "err\n"


def test_run_i_pipes_stdin(docker_cli):
    r = docker_cli.docker("run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done",
                          input="abc\nline2\n")
    assert r.returncode == 0, r
    assert r.stdout == "abc\nline2\ndone\n"


def test_run_tty_via_script(docker_cli):
    """`docker run -t` needs a terminal: `script` provides one."""
    if shutil.which("script") is None:
        unavailable("script (util-linux) not installed")
    d = docker_cli
    cmd = f"docker run --rm -t busybox sh -c 'tty; exit 2'"
    r = subprocess.run(["script", "-qefc", cmd, "/dev/null"], env=d.env, capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert "/dev/pts/" in r.stdout or "/dev/console" in r.stdout, r
    assert r.returncode == 2, r


def test_run_env_workdir_hostname_entrypoint(docker_cli):
    d = docker_cli
    out = d.ok("run", "--rm", "-e", "FOO=bar", "-e", "EMPTY=", "-w", "/tmp/work",
               "--hostname", "myhost", "busybox", "sh", "-c", 'echo "$FOO|$EMPTY|$(pwd)|$(hostname)"')
    assert out == "bar||/tmp/work|myhost"
    out = d.ok("run", "--rm", "--entrypoint", "echo", "busybox", "via", "entrypoint")
    assert out == "via entrypoint"
    # PATH is set by default
    assert "/bin" in d.ok("run", "--rm", "busybox", "sh", "-c", "echo $PATH")


def test_run_bind_mounts_rw_and_ro(docker_cli):
    d = docker_cli
    host = Path(tempfile.mkdtemp(prefix="cryo-e2e-bind-"))
    try:
        (host / "in.txt").write_text("from host\n")
        out = d.ok("run", "--rm", "-v", f"{host}:/data", "busybox", "sh", "-c",
                   "cat /data/in.txt; echo written > /data/out.txt")
        assert out == "from host"
        assert (host / "out.txt").read_text() == "written\n"
        r = d.docker("run", "--rm", "-v", f"{host}:/data:ro", "busybox", "sh", "-c",
                     "cat /data/in.txt; echo x > /data/ro.txt")
        assert r.returncode != 0, r
        assert "from host" in r.stdout
        assert "Read-only" in r.stderr or "read-only" in r.stderr, r.stderr
        assert not (host / "ro.txt").exists()
    finally:
        shutil.rmtree(host, ignore_errors=True)


def test_run_resource_limits(docker_cli, name):
    d = docker_cli
    out = d.ok("run", "--rm", "--memory", "64m", "--pids-limit", "42", "--cpus", "0.5", "busybox",
               "sh", "-c",
               "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max "
               "/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us")
    mem, pids, quota, period = out.split()
    assert int(mem) == 64 * 1024 * 1024
    assert pids == "42"
    assert int(quota) / int(period) == pytest.approx(0.5)
    d.ok("run", "-d", "--name", name, "--memory", "64m", "--pids-limit", "42", "--cpus", "0.5",
         "busybox", "sleep", "100")
    hc = inspect(d, name)["HostConfig"]
    assert hc["Memory"] == 64 * 1024 * 1024
    assert hc["NanoCpus"] == 500_000_000
    assert hc["PidsLimit"] == 42


def test_run_d_name_ps(docker_cli, name):
    d = docker_cli
    cid = d.ok("run", "-d", "--name", name, "busybox", "sleep", "1000")
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    assert name in d.ok("ps", "--format", "{{.Names}}").split()
    assert cid[:12] in d.ok("ps", "-q").split()
    assert cid[:12] in d.ok("ps", "-a", "-q").split()
    assert cid in d.ok("ps", "-a", "-q", "--no-trunc").split()
    line = [l for l in d.ok("ps").splitlines() if name in l][0]
    assert "Up" in line and "busybox" in line


def test_ps_a_shows_exited(docker_cli, name):
    d = docker_cli
    assert d.docker("run", "--name", name, "busybox", "sh", "-c", "exit 6").returncode == 6
    assert name not in d.ok("ps", "--format", "{{.Names}}").split()
    rows = d.ok("ps", "-a", "--format", "{{.Names}} {{.Status}}").splitlines()
    row = [r for r in rows if r.startswith(name + " ")]
    assert row and "Exited (6)" in row[0], rows


def test_create_then_start(docker_cli, name):
    d = docker_cli
    cid = d.ok("create", "--name", name, "busybox", "sh", "-c", "echo created-output")
    st = inspect(d, name)["State"]
    assert st["Status"] == "created" and not st["Running"]
    assert d.ok("start", name) == name
    assert d.ok("wait", name) == "0"
    assert logs(d, name) == "created-output"
    assert inspect(d, cid)["State"]["Status"] == "exited"


def test_start_a(docker_cli, name):
    d = docker_cli
    d.ok("create", "--name", name, "busybox", "sh", "-c", "echo attached; exit 4")
    r = d.docker("start", "-a", name)
    assert r.stdout == "attached\n" and r.returncode == 4, r


# ------------------------------------------------------------------------------------------
# lifecycle


def test_stop_t_kills_after_timeout(docker_cli, name):
    d = docker_cli
    # pid 1 without a TERM handler ignores SIGTERM: stop must SIGKILL after -t.
    d.ok("run", "-d", "--name", name, "busybox", "sleep", "1000")
    t0 = time.monotonic()
    assert d.ok("stop", "-t", "1", name) == name
    took = time.monotonic() - t0
    assert 0.8 < took < 10, took
    st = inspect(d, name)["State"]
    assert not st["Running"] and st["Status"] == "exited"
    assert st["ExitCode"] == 137


def test_stop_graceful_exit_code(docker_cli, name):
    d = docker_cli
    d.ok("run", "-d", "--name", name, "busybox", "sh", "-c",
         "trap 'echo bye; exit 7' TERM; while true; do sleep 0.1; done")
    time.sleep(0.5)
    t0 = time.monotonic()
    d.ok("stop", "-t", "10", name)
    assert time.monotonic() - t0 < 5
    assert inspect(d, name)["State"]["ExitCode"] == 7
    assert "bye" in logs(d, name)


def test_stop_of_stopped_container_is_ok(docker_cli, name):
    d = docker_cli
    d.ok("run", "--name", name, "busybox", "true")
    r = d.docker("stop", name)
    assert r.returncode == 0, r


def test_restart(docker_cli, name):
    d = docker_cli
    d.ok("run", "-d", "--name", name, "busybox", "sh", "-c",
         "echo started; trap 'exit 0' TERM; while true; do sleep 0.1; done")
    pid1 = inspect(d, name)["State"]["Pid"]
    assert d.ok("restart", "-t", "5", name) == name
    st = inspect(d, name)["State"]
    assert st["Running"] and st["Pid"] != pid1
    wait_for(lambda: logs(d, name).split().count("started") == 2, what="second start in logs")
    # restart of an exited container starts it
    d.ok("stop", name)
    d.ok("restart", name)
    assert running(d, name)


def test_kill_signal(docker_cli, name):
    d = docker_cli
    d.ok("run", "-d", "--name", name, "busybox", "sh", "-c",
         "trap 'echo got-hup' HUP; echo ready; while true; do sleep 0.1; done")
    wait_for(lambda: "ready" in logs(d, name), what="ready")
    d.ok("kill", "-s", "HUP", name)
    wait_for(lambda: "got-hup" in logs(d, name), what="got-hup in logs")
    assert running(d, name)
    d.ok("kill", "-s", "SIGUSR1", name)  # no handler: sh dies of USR1 only if not pid 1 → ignored
    d.ok("kill", name)
    wait_for(lambda: not running(d, name), what="exit after kill")
    assert inspect(d, name)["State"]["ExitCode"] == 137


def test_kill_of_stopped_is_error(docker_cli, name):
    d = docker_cli
    d.ok("run", "--name", name, "busybox", "true")
    r = d.docker("kill", name)
    assert r.returncode == 1, r
    assert "not running" in r.stderr, r.stderr


def test_pause_unpause(docker_cli, name):
    d = docker_cli
    d.ok("run", "-d", "--name", name, "busybox", "sh", "-c", COUNTER)
    wait_for(lambda: len(logs(d, name).split()) >= 3, what="counter output")
    assert d.ok("pause", name) == name
    st = inspect(d, name)["State"]
    assert st["Paused"] is True and st["Status"] == "paused" and st["Running"] is True
    assert "Paused" in [l for l in d.ok("ps").splitlines() if name in l][0]
    n1 = len(logs(d, name).split())
    time.sleep(0.6)
    assert len(logs(d, name).split()) == n1, "a paused container must not run"
    assert d.ok("unpause", name) == name
    st = inspect(d, name)["State"]
    assert st["Paused"] is False and st["Status"] == "running"
    wait_for(lambda: len(logs(d, name).split()) > n1, what="counter resumes")


def test_rm_and_rm_f(docker_cli, name):
    d = docker_cli
    d.ok("run", "-d", "--name", name, "busybox", "sleep", "1000")
    r = d.docker("rm", name)
    assert r.returncode == 1 and ("running" in r.stderr.lower()), r
    assert d.ok("rm", "-f", name) == name
    assert name not in d.ok("ps", "-a", "--format", "{{.Names}}").split()
    r = d.docker("inspect", name)
    assert r.returncode == 1


def test_rm_f_paused(docker_cli, name):
    d = docker_cli
    d.ok("run", "-d", "--name", name, "busybox", "sleep", "1000")
    d.ok("pause", name)
    d.ok("rm", "-f", name)
    assert name not in d.ok("ps", "-a", "--format", "{{.Names}}").split()


def test_inspect_fields(docker_cli, name):
    d = docker_cli
    cid = d.ok("run", "-d", "--name", name, "-e", "FOO=bar", "--hostname", "hh", "busybox",
               "sleep", "1000")
    c = inspect(d, name)
    assert c["Id"] == cid
    assert c["Name"] == "/" + name
    assert c["Config"]["Image"] == "busybox"
    assert c["Config"]["Cmd"] == ["sleep", "1000"]
    assert "FOO=bar" in c["Config"]["Env"]
    assert c["Config"]["Hostname"] == "hh"
    assert c["Config"]["Tty"] is False
    assert c["Image"].startswith("sha256:")
    st = c["State"]
    assert st["Status"] == "running" and st["Running"] and st["Pid"] > 0
    assert st["StartedAt"].startswith(time.strftime("%Y"))
    assert c["HostConfig"]["LogConfig"]["Type"] == "json-file"
    assert c["Created"].startswith(time.strftime("%Y"))
    assert d.ok("inspect", "-f", "{{.State.Running}}", name) == "true"
    # the pid is a real process
    assert os.path.exists(f"/proc/{st['Pid']}")


def test_inspect_unknown(docker_cli):
    r = docker_cli.docker("inspect", "nosuchthing")
    assert r.returncode == 1
    assert "No such object: nosuchthing" in r.stderr, r.stderr


# ------------------------------------------------------------------------------------------
# logs and wait


def test_logs_tail_and_timestamps(docker_cli, name):
    d = docker_cli
    d.ok("run", "--name", name, "busybox", "sh", "-c", "for i in 1 2 3 4 5; do echo $i; done; sleep 0.3; echo e >&2")
    r = d.docker("logs", name)
    assert r.stdout == "1\n2\n3\n4\n5\n" and r.stderr == "e\n", r
    r = d.docker("logs", "--tail", "3", name)
    assert (r.stdout, r.stderr) == ("4\n5\n", "e\n"), r
    r = d.docker("logs", "--tail", "1", name)
    assert (r.stdout, r.stderr) == ("", "e\n"), r
    lines = d.ok("logs", "--timestamps", name).splitlines()
    assert len(lines) == 5 and all(TS.match(l) for l in lines), lines
    assert [l.split(" ", 1)[1] for l in lines] == ["1", "2", "3", "4", "5"]


def test_logs_follow(docker_cli, name):
    d = docker_cli
    d.ok("run", "-d", "--name", name, "busybox", "sh", "-c", COUNTER)
    p = subprocess.Popen(["docker", "logs", "-f", name], env=d.env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        got = []
        deadline = time.monotonic() + 20
        while len(got) < 15 and time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            got.append(int(line))
        assert got == list(range(15)), got
    finally:
        p.terminate()
        p.wait(timeout=10)
    # the daemon is fine after the client went away
    assert running(d, name)


def test_logs_follow_ends_when_container_exits(docker_cli, name):
    d = docker_cli
    d.ok("run", "-d", "--name", name, "busybox", "sh", "-c", "echo a; sleep 1; echo b")
    r = d.docker("logs", "-f", name, timeout=20)
    assert r.stdout == "a\nb\n", r


def test_wait_exit_code(docker_cli, name):
    d = docker_cli
    d.ok("run", "-d", "--name", name, "busybox", "sh", "-c", "sleep 0.5; exit 5")
    assert d.ok("wait", name) == "5"
    # wait on an already exited container returns at once
    assert d.ok("wait", name, timeout=10) == "5"


# ------------------------------------------------------------------------------------------
# exec


def test_exec(docker_cli, name):
    d = docker_cli
    d.ok("run", "-d", "--name", name, "busybox", "sleep", "1000")
    assert d.ok("exec", name, "echo", "in-exec") == "in-exec"
    r = d.docker("exec", name, "sh", "-c", "echo o; echo e >&2; exit 4")
    assert (r.returncode, r.stdout, r.stderr) == (4, "o\n", "e\n"), r
    assert d.ok("exec", "-e", "X=1", "-w", "/etc", name, "sh", "-c", "echo $X $(pwd)") == "1 /etc"
    r = d.docker("exec", "-i", name, "sh", "-c", "cat; echo eof", input="stdin-data\n")
    assert r.stdout == "stdin-data\neof\n", r
    assert d.ok("exec", "-d", name, "sh", "-c", "echo detached > /tmp/f") == ""
    wait_for(lambda: d.docker("exec", name, "cat", "/tmp/f").stdout == "detached\n", what="exec -d output")
    r = d.docker("exec", name, "nosuchcommand")
    assert r.returncode != 0


def test_exec_tty_via_script(docker_cli, name):
    if shutil.which("script") is None:
        unavailable("script (util-linux) not installed")
    d = docker_cli
    d.ok("run", "-d", "--name", name, "busybox", "sleep", "1000")
    r = subprocess.run(["script", "-qefc", f"docker exec -t {name} sh -c 'tty; exit 3'", "/dev/null"],
                       env=d.env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert "/dev/pts/" in r.stdout, r
    assert r.returncode == 3, r


def test_exec_on_stopped_container_fails(docker_cli, name):
    d = docker_cli
    d.ok("run", "--name", name, "busybox", "true")
    r = d.docker("exec", name, "true")
    assert r.returncode != 0
    assert "not running" in r.stderr, r.stderr


# ------------------------------------------------------------------------------------------
# checkpoints


def _counter(d, name, at_least=10):
    d.ok("run", "-d", "--name", name, "busybox", "sh", "-c", COUNTER)
    wait_for(lambda: len(counter_values(logs(d, name))) >= at_least, what="counter output")


def test_checkpoint_create_and_restore_counter_continues(docker_cli, name, criu):
    d = docker_cli
    _counter(d, name)
    assert d.ok("checkpoint", "create", name, "cp1", timeout=120) == "cp1"
    st = inspect(d, name)["State"]
    assert not st["Running"]
    assert "cp1" in d.ok("checkpoint", "ls", name).split()
    before = counter_values(logs(d, name))
    time.sleep(0.5)
    assert counter_values(logs(d, name)) == before, "stopped by checkpoint, must not run"
    assert d.ok("start", "--checkpoint", "cp1", name, timeout=120) == ""
    assert running(d, name)
    wait_for(lambda: len(counter_values(logs(d, name))) >= len(before) + 10, what="counter after restore")
    vals = counter_values(logs(d, name))
    # continues from where it was: one unbroken sequence, no restart from 0
    assert vals == list(range(len(vals))), vals
    # logs -f on the restored container
    r = subprocess.Popen(["docker", "logs", "-f", "--tail", "1", name], env=d.env,
                         stdout=subprocess.PIPE, text=True)
    try:
        a = int(r.stdout.readline())
        b = int(r.stdout.readline())
        assert b == a + 1 and a >= len(before)
    finally:
        r.terminate()
        r.wait(timeout=10)
    # ps, inspect, exec, stop work on the restored container
    assert name in d.ok("ps", "--format", "{{.Names}}").split()
    assert inspect(d, name)["State"]["Pid"] > 0
    assert d.ok("exec", name, "echo", "exec-after-restore") == "exec-after-restore"
    d.ok("stop", "-t", "1", name)
    assert not running(d, name)


def test_checkpoint_leave_running_then_restore(docker_cli, name, criu):
    d = docker_cli
    _counter(d, name)
    assert d.ok("checkpoint", "create", "--leave-running", name, "cp2", timeout=120) == "cp2"
    assert running(d, name)
    n = len(counter_values(logs(d, name)))
    wait_for(lambda: len(counter_values(logs(d, name))) > n + 5, what="counter keeps going")
    d.ok("stop", "-t", "1", name)
    vals = counter_values(logs(d, name))
    d.ok("start", "--checkpoint", "cp2", name, timeout=120)
    wait_for(lambda: len(counter_values(logs(d, name))) > len(vals) + 3, what="counter after restore")
    after = counter_values(logs(d, name))[len(vals):]
    # restored from the checkpoint taken while running: continues from the value then,
    # neither from 0 nor from where the container was stopped
    assert 0 < after[0] <= vals[-1], (vals, after)
    assert after == list(range(after[0], after[0] + len(after)))


def test_network_none_loopback_server_survives_restore(docker_cli, name, criu):
    """--network none: cryod dumps with CRIU inside the container's namespace (the images hold
    no network namespace) and takes no lock; the restored namespace's loopback carries the
    restored listening socket."""
    d = docker_cli
    d.ok("run", "-d", "--name", name, "--network", "none", "busybox",
         "sh", "-c", "mkdir -p /www && echo hello-lo > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www")
    get = ("exec", name, "wget", "-qO-", "http://127.0.0.1:8080/index.html")
    wait_for(lambda: d.docker(*get).stdout.strip() == "hello-lo", what="httpd on the loopback")
    cpdir = d.root / "cpdirs" / name          # a --checkpoint-dir must be inside cryod's root
    cpdir.mkdir(parents=True)
    d.ok("checkpoint", "create", "--checkpoint-dir", cpdir, name, "lo1", timeout=120)
    images = sorted(p.name for p in (cpdir / "lo1").iterdir())
    assert "inventory.img" in images, images
    assert not [f for f in images if f.startswith("netns-")], f"a network namespace was dumped: {images}"
    d.ok("start", "--checkpoint", "lo1", "--checkpoint-dir", cpdir, name, timeout=120)
    assert running(d, name)
    assert d.ok(*get) == "hello-lo"
    assert d.ok("exec", name, "ls", "/sys/class/net").split() == ["lo"]


def test_checkpoint_ls_rm_and_conflict(docker_cli, name, criu):
    d = docker_cli
    _counter(d, name, at_least=2)
    d.ok("checkpoint", "create", "--leave-running", name, "a1", timeout=120)
    d.ok("checkpoint", "create", "--leave-running", name, "a2", timeout=120)
    out = d.ok("checkpoint", "ls", name).splitlines()
    assert out[0].strip() == "CHECKPOINT NAME"
    assert sorted(l.strip() for l in out[1:]) == ["a1", "a2"]
    r = d.docker("checkpoint", "create", "--leave-running", name, "a1", timeout=120)
    assert r.returncode == 1 and "exists" in r.stderr, r
    st, _, body = d.http("POST", f"/v1.50/containers/{name}/checkpoints",
                         body=json.dumps({"CheckpointID": "a1", "Exit": False}),
                         headers={"Content-Type": "application/json"})
    assert st == 409, (st, body)
    assert running(d, name)
    d.ok("checkpoint", "rm", name, "a1")
    assert [l.strip() for l in d.ok("checkpoint", "ls", name).splitlines()[1:]] == ["a2"]
    r = d.docker("checkpoint", "rm", name, "a1")
    assert r.returncode == 1, r
    r = d.docker("start", "--checkpoint", "nosuchcp", name)
    assert r.returncode != 0, r


def test_checkpoint_dir(docker_cli, name, criu):
    d = docker_cli
    _counter(d, name, at_least=3)
    # cryod accepts a --checkpoint-dir only inside its root (nothing written elsewhere)
    outside = tempfile.mkdtemp(prefix="cryo-e2e-cpdir-")
    try:
        r = d.docker("checkpoint", "create", "--checkpoint-dir", outside, name, "x0")
        assert r.returncode == 1 and "outside" in r.stderr, r
        assert os.listdir(outside) == []
    finally:
        shutil.rmtree(outside, ignore_errors=True)
    cpdir = d.root / "cpdirs" / name
    cpdir.mkdir(parents=True)
    d.ok("checkpoint", "create", "--checkpoint-dir", cpdir, name, "x1", timeout=120)
    assert "x1" in d.ok("checkpoint", "ls", "--checkpoint-dir", cpdir, name).split()
    assert "x1" not in d.ok("checkpoint", "ls", name).split()
    assert os.listdir(cpdir), "checkpoint written into --checkpoint-dir"
    n = len(counter_values(logs(d, name)))
    d.ok("start", "--checkpoint", "x1", "--checkpoint-dir", cpdir, name, timeout=120)
    wait_for(lambda: len(counter_values(logs(d, name))) > n + 3, what="counter after restore")
    vals = counter_values(logs(d, name))
    assert vals == list(range(len(vals)))


# ------------------------------------------------------------------------------------------
# error shapes


def test_unknown_container_errors(docker_cli):
    d = docker_cli
    for verb in (["stop"], ["start"], ["kill"], ["logs"], ["wait"], ["pause"], ["rm"],
                 ["restart"], ["exec"], ["checkpoint", "ls"]):
        args = verb + ["nosuchcontainer"] + (["true"] if verb == ["exec"] else [])
        r = d.docker(*args)
        assert r.returncode == 1, (verb, r)
        assert "No such container" in r.stderr, (verb, r.stderr)


def test_run_unknown_image(docker_cli):
    r = docker_cli.docker("run", "--rm", "--pull=never", "nosuchimage:7", "true")
    assert r.returncode == 125, r
    assert "No such image" in r.stderr, r.stderr
    r = docker_cli.docker("run", "--rm", "nosuchimage:7", "true")
    assert r.returncode == 125, r


def test_name_in_use(docker_cli, name):
    d = docker_cli
    d.ok("create", "--name", name, "busybox", "true")
    r = d.docker("create", "--name", name, "busybox", "true")
    assert r.returncode == 1, r
    assert "already in use" in r.stderr, r.stderr
    r = d.docker("run", "-d", "--name", name, "busybox", "true")
    assert r.returncode == 125, r
    assert "already in use" in r.stderr, r.stderr
    st, _, body = d.http("POST", f"/v1.50/containers/create?name={name}",
                         body=json.dumps({"Image": "busybox", "Cmd": ["true"]}),
                         headers={"Content-Type": "application/json"})
    assert st == 409, (st, body)


def test_start_running_container_is_ok(docker_cli, name):
    d = docker_cli
    d.ok("run", "-d", "--name", name, "busybox", "sleep", "1000")
    r = d.docker("start", name)
    assert r.returncode == 0, r


def test_run_rm_failed_start_does_not_hang(docker_cli, name):
    """A start that fails (no such executable) must remove a --rm container, else the CLI
    waits forever for wait?condition=removed."""
    d = docker_cli
    r = d.docker("run", "--rm", "--name", name, "busybox", "/nonexistent", timeout=30)
    # docker answers 127 here (it looks for "no such file or directory" in the message)
    assert r.returncode in (125, 127), r
    assert "/nonexistent" in r.stderr
    assert name not in d.ok("ps", "-a", "--format", "{{.Names}}").split()
