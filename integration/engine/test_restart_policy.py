"""Restart policies (issue 13) with real containers, through the docker CLI, the cryo CLI and
the raw API: on-failure:N counts failures and stops at N; always restarts after exit 0; a
manual stop or kill is not followed by a restart; after a cryod restart `always` comes back
and a manually stopped `unless-stopped` does not; after a reboot, the running ones with a
policy come back; a checkpoint that stops an `always` container does not restart it and its
restore works; --rm with a policy and invalid policies are refused; `update --restart` on a
running container takes effect. No timed assertions: every wait polls with a generous
timeout, and "not restarted" is checked when the exit has been handled (a stop returns only
then, and the restart is decided in the same step that records the exit)."""

import json
import shutil
import signal
import subprocess
import tempfile

import pytest

from conftest import (BIN_DIR, COUNTER, IMAGES, Daemon, _check_requirements, cleanup, counter_values, inspect,
                      kill_monitors, unmount_all, wait_for)

# A container that exits on its own (code 0) when told to through a file; the file is removed
# at each start, so a restarted container waits again.
WAITER = "rm -f /tmp/go; while [ ! -f /tmp/go ]; do sleep 0.1; done"


def state(d, name):
    return inspect(d, name)["State"]


def restart_count(d, name):
    return inspect(d, name)["RestartCount"]


def create_raw(d, body, name):
    return d.http("POST", f"/v1.50/containers/create?name={name}", body=json.dumps(body),
                  headers={"Content-Type": "application/json"})


@pytest.fixture
def cryo(docker_cli):
    d = docker_cli

    def run(*args, check=True):
        r = subprocess.run([str(BIN_DIR / "cryo"), "-H", d.host, *map(str, args)],
                           capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            pytest.fail(f"cryo {' '.join(map(str, args))} failed rc={r.returncode}: {r.stderr}")
        return r
    return run


def test_on_failure_2_restarts_twice_then_stays_exited(docker_cli, name):
    d = docker_cli
    d.ok("run", "-d", "--restart", "on-failure:2", "--name", name, "busybox", "false")
    wait_for(lambda: state(d, name)["Status"] == "exited" and restart_count(d, name) == 2,
             timeout=60, what="two restarts, then exited")
    c = inspect(d, name)
    assert c["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert c["State"]["ExitCode"] == 1 and not c["State"]["Restarting"]
    # Exited for good: `docker wait` answers at once with the last code.
    assert d.ok("wait", name, timeout=30) == "1"
    assert restart_count(d, name) == 2
    assert d.ok("ps", "-a", "--filter", f"name={name}", "--format", "{{.Status}}").startswith("Exited (1)")


def test_on_failure_does_not_restart_after_exit_0(docker_cli, name):
    d = docker_cli
    d.ok("run", "-d", "--restart", "on-failure", "--name", name, "busybox", "true")
    assert d.ok("wait", name, timeout=30) == "0"
    st = state(d, name)
    assert st["Status"] == "exited" and restart_count(d, name) == 0, st


def test_always_restarts_after_exit_0_and_a_stop_ends_it(docker_cli, name):
    d = docker_cli
    d.ok("run", "-d", "--restart", "always", "--name", name, "busybox", "sh", "-c", "echo started")
    wait_for(lambda: restart_count(d, name) >= 3, timeout=60, what="three restarts")
    wait_for(lambda: d.ok("logs", name).split().count("started") >= 3, timeout=60, what="three runs in the log")
    # Running or waiting out its back-off ("Restarting (0) … ago" in ps): a stop ends it.
    d.ok("stop", "-t", "1", name)
    st = state(d, name)
    assert st["Status"] == "exited" and not st["Restarting"] and not st["Running"], st


def test_ps_shows_restarting_during_the_back_off(docker_cli, name):
    d = docker_cli
    d.ok("run", "-d", "--restart", "always", "--name", name, "busybox", "sh", "-c", "exit 3")
    # The back-off doubles (0.1 s, 0.2 s, … 6.4 s): after a few restarts it waits long enough
    # to be seen.
    status = wait_for(lambda: (lambda s: s if s.startswith("Restarting (3)") else None)(
        d.ok("ps", "-a", "--filter", f"name={name}", "--format", "{{.Status}}")), timeout=90, what="Restarting in ps")
    assert status.endswith("ago"), status
    c = inspect(d, name)
    assert c["State"]["Restarting"] or c["State"]["Status"] == "running"
    d.ok("rm", "-f", name)
    assert d.docker("inspect", name).returncode != 0


def test_manual_stop_and_kill_are_not_followed_by_a_restart(docker_cli, name):
    d = docker_cli
    for policy in ("always", "unless-stopped", "on-failure"):
        n = f"{name}-{policy}"
        d.ok("run", "-d", "--restart", policy, "--name", n, "busybox", "sleep", "1000")
        d.ok("stop", "-t", "1", n)
        st = state(d, n)
        assert st["Status"] == "exited" and st["ExitCode"] == 137 and restart_count(d, n) == 0, (policy, st)
        d.ok("start", n)
        d.ok("kill", n)
        assert d.ok("wait", n, timeout=30) == "137"
        st = state(d, n)
        assert st["Status"] == "exited" and restart_count(d, n) == 0, (policy, st)


def test_an_exit_of_its_own_restarts_and_the_restart_verb_does_not_count(docker_cli, name):
    d = docker_cli
    d.ok("run", "-d", "--restart", "unless-stopped", "--name", name, "busybox", "sh", "-c", WAITER)
    d.ok("exec", name, "touch", "/tmp/go")
    wait_for(lambda: restart_count(d, name) == 1 and state(d, name)["Running"], timeout=60, what="the restart")
    # The restart verb's stop is cryo's own: no restart by policy on top of it.
    d.ok("restart", "-t", "1", name)
    st = state(d, name)
    assert st["Running"] and st["Status"] == "running", st
    d.ok("rm", "-f", name)


def test_update_restart_on_a_running_container(docker_cli, cryo, name):
    d = docker_cli
    d.ok("run", "-d", "--name", name, "busybox", "sh", "-c", WAITER)
    assert d.ok("update", "--restart", "always", name) == name
    assert inspect(d, name)["HostConfig"]["RestartPolicy"]["Name"] == "always"
    d.ok("exec", name, "touch", "/tmp/go")
    # Status, not Running: a container waiting out its back-off is Running (as in dockerd) but
    # not yet started again; and its new shell must have removed the old /tmp/go first.
    wait_for(lambda: restart_count(d, name) == 1 and state(d, name)["Status"] == "running", timeout=60,
             what="the restart by the new policy")
    wait_for(lambda: d.docker("exec", name, "test", "-e", "/tmp/go").returncode == 1, timeout=30,
             what="the restarted command waiting for /tmp/go again")
    # The cryo CLI's update: back to no restarts.
    assert cryo("update", "--restart", "no", name).stdout.strip() == name
    assert inspect(d, name)["HostConfig"]["RestartPolicy"]["Name"] == "no"
    d.ok("exec", name, "touch", "/tmp/go")
    assert d.ok("wait", name, timeout=30) == "0"
    assert state(d, name)["Status"] == "exited" and restart_count(d, name) == 1
    # cryo update's other flags go to the same endpoint.
    r = cryo("update", "--memory", "64m", "--pids-limit", "50", "--cpu-shares", "512", "--cpus", "0.5", name)
    assert r.stdout.strip() == name
    h = inspect(d, name)["HostConfig"]
    assert h["Memory"] == 64 << 20 and h["PidsLimit"] == 50 and h["CpuShares"] == 512 and h["NanoCpus"] == 500_000_000
    assert cryo("update", name, check=False).returncode != 0


def test_cryo_run_restart_flag(docker_cli, cryo, name):
    d = docker_cli
    cryo("run", "-d", "--restart", "on-failure:3", "--name", name, "busybox", "sh", "-c", "exit 7")
    wait_for(lambda: state(d, name)["Status"] == "exited" and restart_count(d, name) == 3, timeout=90,
             what="three restarts, then exited")
    assert inspect(d, name)["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    r = cryo("create", "--restart", "on-failure:x", "busybox", "true", check=False)
    assert r.returncode != 0 and "maximum retry count must be an integer" in r.stderr


def test_rm_with_a_policy_and_invalid_policies_are_refused(docker_cli, name):
    d = docker_cli
    base = {"Image": "busybox", "Cmd": ["true"]}
    st, _, body = create_raw(d, {**base, "HostConfig": {"AutoRemove": True, "RestartPolicy": {"Name": "always"}}}, name)
    assert st == 400 and b"conflicting options: cannot specify both --restart and --rm" in body, (st, body)
    st, _, body = create_raw(d, {**base, "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}, name)
    assert st == 400 and b"invalid restart policy: unknown policy 'sometimes'" in body, (st, body)
    st, _, body = create_raw(d, {**base, "HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": -1}}}, name)
    assert st == 400 and b"maximum retry count cannot be negative" in body, (st, body)
    st, _, body = create_raw(d, {**base, "HostConfig": {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 2}}}, name)
    assert st == 400 and b"can only be used with 'on-failure'" in body, (st, body)
    assert d.docker("inspect", name).returncode != 0, "nothing was created"
    # --rm with no policy is fine; update cannot add a policy to an --rm container.
    st, _, body = create_raw(d, {**base, "HostConfig": {"AutoRemove": True, "RestartPolicy": {"Name": "no"}}}, name)
    assert st == 201, (st, body)
    r = d.docker("update", "--restart", "always", name)
    assert r.returncode != 0 and "AutoRemove" in r.stderr
    r = d.docker("update", "--restart", "sometimes", name)
    assert r.returncode != 0 and "unknown policy" in r.stderr


def test_checkpoint_of_an_always_container_does_not_restart_it(docker_cli, criu, name):
    d = docker_cli
    d.ok("run", "-d", "--restart", "always", "--name", name, "busybox", "sh", "-c", COUNTER)
    wait_for(lambda: len(counter_values(d.ok("logs", name))) >= 5, what="counter output")
    assert d.ok("checkpoint", "create", name, "cp1", timeout=120) == "cp1"
    # A wrongly restarted container would be running (or restarting) instead, never exited.
    wait_for(lambda: state(d, name)["Status"] == "exited", timeout=60, what="exited after the checkpoint")
    st = state(d, name)
    assert not st["Restarting"] and restart_count(d, name) == 0, st
    before = counter_values(d.ok("logs", name))
    d.ok("start", "--checkpoint", "cp1", name, timeout=120)
    assert state(d, name)["Running"]
    wait_for(lambda: len(counter_values(d.ok("logs", name))) >= len(before) + 5, what="counter after the restore")
    after = counter_values(d.ok("logs", name))
    assert after == list(range(len(after))), "the restore continued the counter, not a fresh start"
    d.ok("rm", "-f", name)


def test_after_cryod_restart_always_comes_back_unless_stopped_does_not(docker_cli, restart_daemon, name):
    d = docker_cli
    d.ok("run", "-d", "--restart", "always", "--name", name + "-a", "busybox", "sleep", "1000")
    d.ok("run", "-d", "--restart", "unless-stopped", "--name", name + "-u", "busybox", "sleep", "1000")
    d.ok("run", "-d", "--restart", "no", "--name", name + "-n", "busybox", "sleep", "1000")
    for suffix in ("-a", "-u", "-n"):
        d.ok("stop", "-t", "1", name + suffix)
    restart_daemon(signal.SIGTERM)
    wait_for(lambda: state(d, name + "-a")["Running"], timeout=60, what="the always container to come back")
    # The start-up pass runs once, oldest first: by now it has passed the other two.
    for suffix in ("-u", "-n"):
        st = state(d, name + suffix)
        assert st["Status"] == "exited" and st["ExitCode"] == 137, (suffix, st)


# -- a reboot needs a cryod of its own (it kills every monitor of its root)


@pytest.fixture
def own_daemon(criu):
    _check_requirements()
    base = tempfile.mkdtemp(prefix="cryo-rp-", dir="/tmp")
    d = Daemon(base)
    try:
        d.start()
        d.ok("load", "-i", IMAGES / "busybox.tar", timeout=120)
        yield d
    finally:
        cleanup(d)


def test_after_a_reboot_running_containers_with_a_policy_come_back(own_daemon):
    d = own_daemon
    for policy in ("always", "unless-stopped", "on-failure", "no"):
        d.ok("run", "-d", "--restart", policy, "--name", "r-" + policy, "busybox", "sleep", "100000")
    d.ok("run", "-d", "--restart", "unless-stopped", "--name", "r-stopped", "busybox", "sleep", "100000")
    d.ok("stop", "-t", "1", "r-stopped")
    d.stop(signal.SIGKILL)
    # What a reboot takes away: processes, mounts, the tmpfs exec-root.
    kill_monitors(d.base)
    unmount_all(d.base)
    shutil.rmtree(d.run, ignore_errors=True)
    d.start()
    for policy in ("always", "unless-stopped", "on-failure"):
        wait_for(lambda: inspect(d, "r-" + policy)["State"]["Running"], timeout=90, what=f"r-{policy} after the reboot")
        assert d.ok("exec", "r-" + policy, "echo", "ok") == "ok"
    st = inspect(d, "r-no")["State"]
    assert st["Status"] == "exited" and "monitor is gone" in st["Error"], st
    st = inspect(d, "r-stopped")["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 137, st
