"""Crash consistency of checkpoint and restore (issue 10, items 3, 4 and 8): "never zero copies,
never two". cryod, CRIU or a monitor is SIGKILLed at a named step (cryod's fault points:
CRYO_FAULT=POINT:kill or POINT:kill-criu), cryod is started again, and then:
- the container runs (thawed, its network unlocked), or a complete checkpoint of it exists and
  restores with its counter continuing — never both where the checkpoint was meant to stop it;
- `inspect` tells the truth (status, pid), a restore over a running container is refused;
- nothing is left behind: no `.incomplete-*` directory, no `inet cryo-lock` table, no process
  of the container outside what the record says, no CRIU process;
- no operation hangs (every docker call has a timeout, which fails the test).
Also: kill and stop of a container whose cgroup is frozen behind cryod's back.

One cryod on its own root for the module; each scenario restarts it with or without a fault.
A table of fault points and outcomes is printed at the end.
"""

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (CGROUP_ROOT, COUNTER, counter_values, fixture_daemon,
                      inspect, wait_for)

OUTCOMES = []


@pytest.fixture(scope="module")
def fd(criu, request):
    try:
        with fixture_daemon("cryo-cc-") as d:
            yield d
    finally:
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print(f"\n\n{'fault point':<46} {'operation':<27} outcome")
            for point, op, outcome in OUTCOMES:
                print(f"{point:<46} {op:<27} {outcome}")


@pytest.fixture
def ctr(fd):
    names = []

    def make(name, *opts):
        names.append(name)
        cid = fd.ok("run", "-d", "--name", name, *opts, "busybox", "sh", "-c", COUNTER)
        wait_for(lambda: len(counter_values(fd.ok("logs", name))) >= 3, what="counter output")
        return cid

    yield make
    # A test that failed early must not leave its fault to the next one.
    if fd.fault or fd.proc is None or fd.proc.poll() is not None:
        fd.without_fault()
    for n in names:
        fd.docker("rm", "-f", n, timeout=120)


# ------------------------------------------------------------------------------------------
# what is on the host


def cgroup_pids(cid):
    pids = set()
    if CGROUP_ROOT.is_dir():
        for h in CGROUP_ROOT.iterdir():
            try:
                pids.update(int(p) for p in (h / "cryo" / cid / "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                pass
    return pids


def frozen(cid):
    try:
        return (CGROUP_ROOT / "freezer" / "cryo" / cid / "freezer.state").read_text().strip() != "THAWED"
    except OSError:
        try:
            return (CGROUP_ROOT / "unified" / "cryo" / cid / "cgroup.freeze").read_text().strip() == "1"
        except OSError:
            return False


def lock_table(d, cid):
    ns = d.run / "netns" / cid
    if not ns.exists():
        return False
    r = subprocess.run(["nsenter", f"--net={ns}", "nft", "list", "table", "inet", "cryo-lock"],
                       capture_output=True, text=True, timeout=30)
    return r.returncode == 0


def incomplete(d, cid):
    cps = d.root / "containers" / cid / "checkpoints"
    return sorted(p.name for p in cps.glob(".incomplete-*")) if cps.is_dir() else []


def checkpoints(d, name):
    return d.ok("checkpoint", "ls", name).splitlines()[1:]


def criu_descendants(d):
    """CRIU processes below cryod or left over from its monitors (orphans of a monitor go to
    cryod, a child subreaper)."""
    children = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(p.name))
    out, todo = [], list(children.get(d.proc.pid, []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].startswith(b"criu"):
            out.append((pid, b" ".join(argv).decode(errors="replace")))
    return out


def monitors_of(d, cid):
    config = str(d.root / "containers" / cid / "monitor.json").encode()
    out = []
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and config in (p / "cmdline").read_bytes().split(b"\0"):
                out.append(int(p.name))
        except OSError:
            pass
    return out


def assert_running_and_clean(d, name, cid):
    st = inspect(d, name)["State"]
    assert st["Status"] == "running" and st["Running"], st
    assert st["Pid"] > 0 and st["Pid"] in cgroup_pids(cid), (st["Pid"], cgroup_pids(cid))
    assert not frozen(cid), "the container must be thawed"
    assert not lock_table(d, cid), "the inet cryo-lock table must be gone from its namespace"
    assert incomplete(d, cid) == []
    n = len(counter_values(d.ok("logs", name)))
    wait_for(lambda: len(counter_values(d.ok("logs", name))) >= n + 3, what="the counter going on")


def assert_restorable(d, name, cp):
    """The checkpoint restores and the counter continues from where it was, with no gap."""
    n = len(counter_values(d.ok("logs", name)))
    d.ok("start", "--checkpoint", cp, name, timeout=120)
    wait_for(lambda: len(counter_values(d.ok("logs", name))) >= n + 3, what="counter after restore")
    vals = counter_values(d.ok("logs", name))
    assert vals == list(range(len(vals))), vals
    st = inspect(d, name)["State"]
    assert st["Running"] and st["Pid"] in cgroup_pids(inspect(d, name)["Id"]), st


def stop_works(d, name, cid):
    d.ok("stop", "-t", "1", name, timeout=60)
    st = inspect(d, name)["State"]
    assert not st["Running"], st
    assert cgroup_pids(cid) == set()


def killed_at(fd, point, *docker_args):
    """cryod SIGKILLed at `point` during `docker DOCKER_ARGS` (which fails), then a clean cryod."""
    fd.with_fault(f"{point}:kill")
    r = fd.docker(*docker_args)
    assert r.returncode != 0, r.stdout
    fd.wait_killed(point)
    fd.without_fault()


def assert_restored_once(fd, name, cid):
    """The restore went through though cryod died: running with a pid in its cgroup; a second
    restore is refused and replaces nothing; the counter goes on, never backwards."""
    st = inspect(fd, name)["State"]
    assert st["Status"] == "running" and st["Pid"] in cgroup_pids(cid), (st, cgroup_pids(cid))
    vals = counter_values(fd.ok("logs", name))
    refused = fd.docker("start", "--checkpoint", "cp1", name)
    assert refused.returncode != 0
    assert inspect(fd, name)["State"]["Pid"] == st["Pid"], "a second restore must not replace the running container"
    wait_for(lambda: len(counter_values(fd.ok("logs", name))) >= len(vals) + 3, what="counter going on")
    after = counter_values(fd.ok("logs", name))
    assert after == list(range(len(after))), "the state never goes backwards"


# ------------------------------------------------------------------------------------------
# SIGKILL of cryod during `checkpoint create`


@pytest.mark.parametrize("point", ["checkpoint-frozen", "checkpoint-notify-post-dump"])
def test_cryod_killed_before_dump_is_complete_container_runs_on(fd, ctr, name, point):
    cid = ctr(name)
    killed_at(fd, point, "checkpoint", "create", name, "cp1")
    assert_running_and_clean(fd, name, cid)
    assert checkpoints(fd, name) == []
    # The same name checkpoints now, and kill works on it afterwards.
    fd.ok("checkpoint", "create", "--leave-running", name, "cp1", timeout=120)
    assert checkpoints(fd, name) == ["cp1"]
    stop_works(fd, name, cid)
    OUTCOMES.append((f"{point}:kill", "checkpoint create", "container runs (thawed, unlocked), no checkpoint"))


@pytest.mark.parametrize("point", ["checkpoint-dump-complete", "checkpoint-dumped", "checkpoint-renamed"])
def test_cryod_killed_after_dump_is_complete_checkpoint_kept_container_stopped(fd, ctr, name, point):
    cid = ctr(name)
    killed_at(fd, point, "checkpoint", "create", name, "cp1")
    # Never two: the container lives in the checkpoint only.
    wait_for(lambda: not inspect(fd, name)["State"]["Running"], what="the container stopped")
    st = inspect(fd, name)["State"]
    assert st["Status"] == "exited" and st["Pid"] == 0, st
    assert cgroup_pids(cid) == set()
    assert incomplete(fd, cid) == []
    assert checkpoints(fd, name) == ["cp1"]
    assert_restorable(fd, name, "cp1")
    stop_works(fd, name, cid)
    OUTCOMES.append((f"{point}:kill", "checkpoint create", "checkpoint kept, container stopped; restores"))


def test_cryod_killed_after_leave_running_dump_both_kept(fd, ctr, name):
    point = "checkpoint-dump-complete"
    cid = ctr(name)
    killed_at(fd, point, "checkpoint", "create", "--leave-running", name, "cp1")
    assert_running_and_clean(fd, name, cid)
    assert checkpoints(fd, name) == ["cp1"]
    stop_works(fd, name, cid)
    fd.ok("start", "--checkpoint", "cp1", name, timeout=120)
    assert inspect(fd, name)["State"]["Running"]
    OUTCOMES.append((f"{point}:kill", "checkpoint --leave-running", "container runs, checkpoint kept"))


def test_criu_killed_before_dump_is_complete_checkpoint_fails_container_runs(fd, ctr, name):
    point = "checkpoint-frozen"
    cid = ctr(name)
    fd.with_fault(f"{point}:kill-criu")
    r = fd.docker("checkpoint", "create", name, "cp1", timeout=120)
    assert r.returncode != 0
    assert "keeps running" in r.stderr, r.stderr
    assert fd.proc.poll() is None, "cryod survives"
    fd.without_fault()
    assert_running_and_clean(fd, name, cid)
    assert checkpoints(fd, name) == []
    assert criu_descendants(fd) == []
    stop_works(fd, name, cid)
    OUTCOMES.append((f"{point}:kill-criu", "checkpoint create", "fails; container runs, no checkpoint"))


def test_criu_killed_after_dump_is_complete_checkpoint_stands(fd, ctr, name):
    point = "checkpoint-dump-complete"
    cid = ctr(name)
    fd.with_fault(f"{point}:kill-criu")
    fd.ok("checkpoint", "create", name, "cp1", timeout=120)
    fd.without_fault()
    st = inspect(fd, name)["State"]
    assert not st["Running"], st
    assert cgroup_pids(cid) == set()
    assert checkpoints(fd, name) == ["cp1"]
    assert_restorable(fd, name, "cp1")
    OUTCOMES.append((f"{point}:kill-criu", "checkpoint create", "succeeds (images complete); restores"))


# ------------------------------------------------------------------------------------------
# SIGKILL of cryod during `start --checkpoint`


def checkpointed(fd, ctr, name, *opts):
    cid = ctr(name, *opts)
    fd.ok("checkpoint", "create", name, "cp1", timeout=120)
    assert not inspect(fd, name)["State"]["Running"]
    return cid


def test_cryod_killed_while_monitor_restores_without_network(fd, ctr, name):
    # No network: nothing holds the restore for cryod, which finishes without it.
    point = "monitor-spawned"
    cid = checkpointed(fd, ctr, name, "--network", "none")
    killed_at(fd, point, "start", "--checkpoint", "cp1", name)
    assert_restored_once(fd, name, cid)
    stop_works(fd, name, cid)
    OUTCOMES.append((f"{point}:kill", "start --checkpoint (none)", "restored, running with its pid; 2nd restore refused"))


def test_cryod_killed_while_networked_restore_waits_for_it(fd, ctr, name):
    # With a network the restore waits at CRIU's post-setup-namespaces for cryod's attach: a
    # cryod that dies there fails the restore.
    point = "monitor-spawned"
    cid = checkpointed(fd, ctr, name)
    killed_at(fd, point, "start", "--checkpoint", "cp1", name)
    st = inspect(fd, name)["State"]
    assert st["Status"] == "exited" and st["Pid"] == 0 and st["Error"], st
    assert cgroup_pids(cid) == set()
    assert checkpoints(fd, name) == ["cp1"]
    assert_restorable(fd, name, "cp1")
    OUTCOMES.append((f"{point}:kill", "start --checkpoint", "restore failed at the gate; checkpoint restores"))


def test_cryod_killed_after_monitor_reported(fd, ctr, name):
    point = "restore-monitor-reported"
    cid = checkpointed(fd, ctr, name)
    killed_at(fd, point, "start", "--checkpoint", "cp1", name)
    assert not lock_table(fd, cid)
    assert_restored_once(fd, name, cid)
    stop_works(fd, name, cid)
    OUTCOMES.append((f"{point}:kill", "start --checkpoint", "running with its pid; 2nd restore refused"))


# ------------------------------------------------------------------------------------------
# SIGKILL of CRIU or of the monitor during a restore


@pytest.mark.parametrize("point", ["restore-notify-setup-namespaces", "restore-notify-post-setup-namespaces",
                                   "restore-notify-post-restore"])
def test_criu_killed_during_restore_fails_promptly(fd, ctr, name, point):
    cid = checkpointed(fd, ctr, name)
    fd.with_fault(f"{point}:kill-criu")
    r = fd.docker("start", "--checkpoint", "cp1", name, timeout=120)
    assert r.returncode != 0, r.stdout
    assert "criu" in r.stderr, r.stderr
    assert fd.proc.poll() is None, "cryod survives"
    st = inspect(fd, name)["State"]
    assert st["Status"] == "exited" and st["Pid"] == 0, st
    assert cgroup_pids(cid) == set()
    assert criu_descendants(fd) == []
    fd.without_fault()
    assert checkpoints(fd, name) == ["cp1"]
    assert_restorable(fd, name, "cp1")
    OUTCOMES.append((f"{point}:kill-criu", "start --checkpoint", "fails promptly, nothing left; checkpoint restores"))


def test_a_failed_restore_carries_the_monitors_log(fd, ctr, name):
    """What the monitor logged while it restored is in the error cryod answers, and stays in
    its log file under the exec-root."""
    point = "restore-notify-setup-namespaces"
    cid = checkpointed(fd, ctr, name)
    fd.with_fault(f"{point}:kill-criu")
    try:
        r = fd.docker("start", "--checkpoint", "cp1", name, timeout=120)
        assert r.returncode != 0, r.stdout
        log = fd.run / "mon" / f"{cid}.log"
        assert f"the monitor's log, {log}" in r.stderr, r.stderr
        assert "cryo-monitor: restoring container" in r.stderr, r.stderr
        assert "cryo-monitor: restoring the container failed" in r.stderr, r.stderr
        assert "restoring the container failed" in log.read_text()
    finally:
        fd.without_fault()
    assert checkpoints(fd, name) == ["cp1"]


def test_monitor_killed_after_restoring(fd, ctr, name):
    point = "restore-monitor-ready"
    cid = checkpointed(fd, ctr, name)
    fd.with_fault(f"{point}:kill")
    r = fd.docker("start", "--checkpoint", "cp1", name, timeout=120)
    assert r.returncode != 0
    assert fd.proc.poll() is None, "cryod survives"
    st = inspect(fd, name)["State"]
    assert st["Status"] == "exited" and st["Pid"] == 0, st
    # Never two: the restored tasks did not outlive their monitor.
    assert cgroup_pids(cid) == set()
    fd.without_fault()
    assert checkpoints(fd, name) == ["cp1"]
    assert_restorable(fd, name, "cp1")
    OUTCOMES.append((f"{point}:kill (monitor)", "start --checkpoint", "fails, restored tasks killed; checkpoint restores"))


# ------------------------------------------------------------------------------------------
# kill and stop of a frozen container


def freeze_behind_cryods_back(cid):
    f = CGROUP_ROOT / "freezer" / "cryo" / cid / "freezer.state"
    if f.exists():
        f.write_text("FROZEN")
    else:
        (CGROUP_ROOT / "unified" / "cryo" / cid / "cgroup.freeze").write_text("1")
    wait_for(lambda: frozen(cid), what="frozen")


@pytest.mark.parametrize("verb", ["kill", "stop"])
def test_kill_and_stop_of_a_frozen_container(fd, ctr, name, verb):
    cid = ctr(name)
    freeze_behind_cryods_back(cid)
    if verb == "kill":
        fd.ok("kill", name)
        fd.ok("wait", name, timeout=60)
    else:
        fd.ok("stop", "-t", "1", name, timeout=60)
    st = inspect(fd, name)["State"]
    assert not st["Running"] and st["Status"] == "exited", st
    assert cgroup_pids(cid) == set()
    OUTCOMES.append(("(cgroup frozen by hand)", verb, "the container exits"))


def test_restart_reports_a_frozen_container_as_paused(fd, ctr, name):
    cid = ctr(name)
    freeze_behind_cryods_back(cid)
    fd.stop(signal.SIGKILL)
    fd.without_fault()
    assert inspect(fd, name)["State"]["Status"] == "paused"
    fd.ok("unpause", name)
    assert_running_and_clean(fd, name, cid)
    OUTCOMES.append(("(cgroup frozen, cryod restarted)", "inspect / unpause", "paused, unpause works"))


# ------------------------------------------------------------------------------------------
# the tester's way: a 300 MB container, cryod SIGKILLed a moment into the operation


HOG = "(head -c 300000000 /dev/zero; sleep 1000000) | tail -c 300000000 > /dev/null & "


def rss_kb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def big_container(fd, name):
    cid = fd.ok("run", "-d", "--name", name, "busybox", "sh", "-c", HOG + COUNTER)
    wait_for(lambda: any(rss_kb(p) > 280_000 for p in cgroup_pids(cid)), timeout=60, what="300 MB touched")
    wait_for(lambda: len(counter_values(fd.ok("logs", name))) >= 3, what="counter output")
    return cid


def kill_cryod_during(fd, args, delay):
    client = subprocess.Popen(["docker", *args], env=fd.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(delay)
    fd.proc.kill()
    fd.proc.wait(timeout=30)
    client.communicate(timeout=60)
    fd.without_fault()


@pytest.mark.parametrize("delay", [0.05, 0.3, 1.0])
def test_sigkill_of_cryod_during_a_large_checkpoint(fd, name, delay):
    try:
        cid = big_container(fd, name)
        kill_cryod_during(fd, ["checkpoint", "create", name, "cp1"], delay)
        st = inspect(fd, name)["State"]
        if st["Running"]:
            assert_running_and_clean(fd, name, cid)
            assert checkpoints(fd, name) == [], "never two: a running container and a checkpoint meant to stop it"
            stop_works(fd, name, cid)
            outcome = "container runs (thawed, unlocked), no checkpoint"
        else:
            assert st["Status"] == "exited" and cgroup_pids(cid) == set(), st
            assert incomplete(fd, cid) == []
            assert checkpoints(fd, name) == ["cp1"], "never zero: stopped, so the checkpoint must be there"
            assert_restorable(fd, name, "cp1")
            outcome = "checkpoint kept, container stopped; restores"
        OUTCOMES.append((f"SIGKILL cryod after {delay} s (300 MB)", "checkpoint create", outcome))
    finally:
        fd.docker("rm", "-f", name, timeout=120)


@pytest.mark.parametrize("delay", [0.05, 0.3, 1.0])
def test_sigkill_of_cryod_during_a_large_restore(fd, name, delay):
    try:
        cid = big_container(fd, name)
        fd.ok("checkpoint", "create", name, "cp1", timeout=120)
        kill_cryod_during(fd, ["start", "--checkpoint", "cp1", name], delay)
        st = inspect(fd, name)["State"]
        if st["Running"]:
            assert st["Pid"] in cgroup_pids(cid), (st, cgroup_pids(cid))
            vals = counter_values(fd.ok("logs", name))
            assert fd.docker("start", "--checkpoint", "cp1", name).returncode != 0, "restore over a running container"
            assert inspect(fd, name)["State"]["Pid"] == st["Pid"]
            wait_for(lambda: len(counter_values(fd.ok("logs", name))) >= len(vals) + 3, what="counter going on")
            after = counter_values(fd.ok("logs", name))
            assert after == list(range(len(after))), "the state never goes backwards"
            outcome = "restored, running with its pid; 2nd restore refused"
        else:
            assert st["Status"] == "exited" and cgroup_pids(cid) == set(), st
            assert checkpoints(fd, name) == ["cp1"]
            assert_restorable(fd, name, "cp1")
            outcome = "restore failed; checkpoint intact and restores"
        OUTCOMES.append((f"SIGKILL cryod after {delay} s (300 MB)", "start --checkpoint", outcome))
    finally:
        fd.docker("rm", "-f", name, timeout=120)


def test_cryod_killed_during_a_start_leaves_nothing_running(fd, name):
    point = "start-monitor-ready"
    try:
        fd.ok("create", "--name", name, "busybox", "sh", "-c", COUNTER)
        cid = inspect(fd, name)["Id"]
        fd.with_fault(f"{point}:kill")
        assert fd.docker("start", name).returncode != 0
        fd.wait_killed(point)
        fd.without_fault()
        st = inspect(fd, name)["State"]
        assert not st["Running"], st
        assert cgroup_pids(cid) == set(), "a container nobody started must not be left waiting"
        assert monitors_of(fd, cid) == [], "its monitor is gone"
        fd.ok("start", name)
        wait_for(lambda: len(counter_values(fd.ok("logs", name))) >= 3, what="counter output")
        OUTCOMES.append((f"{point}:kill", "start", "nothing left running; start works"))
    finally:
        if fd.fault or fd.proc.poll() is not None:
            fd.without_fault()
        fd.docker("rm", "-f", name, timeout=120)


def test_restart_removes_half_checkpoints_no_operation_accounts_for(fd, ctr, name):
    # What a cryod without operation records left behind (the tester's ~300 MB of them).
    cid = ctr(name)
    stray = fd.root / "containers" / cid / "checkpoints" / ".incomplete-old"
    stray.mkdir(parents=True)
    (stray / "pages-1.img").write_bytes(b"\0" * 4096)
    fd.stop(signal.SIGKILL)
    fd.without_fault()
    assert incomplete(fd, cid) == []
    assert inspect(fd, name)["State"]["Running"]
    OUTCOMES.append(("(.incomplete-* from an older cryod)", "cryod start", "removed"))


def test_sigkill_of_a_running_containers_monitor_leaves_nothing_running(fd, ctr, name):
    cid = ctr(name)
    monitors = monitors_of(fd, cid)
    assert len(monitors) == 1, monitors
    os.kill(monitors[0], signal.SIGKILL)
    wait_for(lambda: not inspect(fd, name)["State"]["Running"], what="the container reported exited")
    st = inspect(fd, name)["State"]
    assert "monitor" in st["Error"], st
    # The record says exited: nothing of the container may run on without its monitor.
    assert cgroup_pids(cid) == set()
    fd.ok("start", name)
    assert inspect(fd, name)["State"]["Running"]
    OUTCOMES.append(("SIGKILL of the monitor", "(running)", "exited with the error, nothing left; start works"))


# ------------------------------------------------------------------------------------------
# SIGKILL of cryod during a clone (import, clone and fork share it: `restore-new`)


def _cryo_killed_at(fd, point, *args):
    """`cryo ARGS` with cryod armed to die at `point`; after its restart, every container's
    state by name."""
    from conftest import BIN_DIR
    fd.with_fault(f"{point}:kill")
    r = subprocess.run([str(BIN_DIR / "cryo"), "-H", fd.host, *args], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0, r.stdout
    fd.wait_killed(point)
    fd.without_fault()
    listed = fd.ok("ps", "-a", "--format", "{{.Names}} {{.State}}").split("\n")
    return dict(l.split() for l in listed if l.strip())


@pytest.mark.parametrize("point,kept", [("restore-new-created", False), ("restore-new-running", True)])
def test_cryod_killed_during_a_clone_leaves_it_whole_or_gone(fd, ctr, name, point, kept):
    """Killed after the new container's record was made but before its restore ran: the
    restart removes it (no half-made container to be started later as if whole). Killed after
    it ran: it is kept, running, and the source is untouched either way."""
    ctr(name)
    fd.ok("checkpoint", "create", "--leave-running", name, "cp1")
    clone = name + "-clone"
    states = _cryo_killed_at(fd, point, "container", "restore", "--checkpoint", "cp1", "--name", clone, name)
    assert states.get(name) == "running", states
    if kept:
        assert states.get(clone) == "running", states
        n = len(counter_values(fd.ok("logs", clone)))
        wait_for(lambda: len(counter_values(fd.ok("logs", clone))) > n, what="the clone's counter going on")
        fd.ok("rm", "-f", clone)
    else:
        assert clone not in states, f"a half-made clone was left: {states}"
    OUTCOMES.append((point, "clone", "clone running, source untouched" if kept else "half-made clone removed, source untouched"))


@pytest.mark.parametrize("point", ["checkpoint-started", "restore-new-created", "checkpoint-renamed"])
def test_cryod_killed_during_a_fork_leaves_the_source_running_and_no_copy(fd, ctr, name, point):
    """A fork makes its copy's container while the source is dumped: killed at any point
    before the copy's restore, the restart leaves the source running (thawed, unlocked) and
    removes the half-made copy, whichever of the two was further along."""
    ctr(name)
    copy = name + "-fork"
    states = _cryo_killed_at(fd, point, "fork", name, copy)
    assert states.get(name) == "running", states
    assert copy not in states, f"a half-made copy was left: {states}"
    n = len(counter_values(fd.ok("logs", name)))
    wait_for(lambda: len(counter_values(fd.ok("logs", name))) > n, what="the source's counter going on")
    OUTCOMES.append((point, "fork", "source running, half-made copy removed"))


# ------------------------------------------------------------------------------------------
# SIGKILL of cryod while a running container joins or leaves a network


def _ip_in_container(fd, name):
    """The IPv4 addresses of the container's eth0 ("" when it has none)."""
    r = fd.docker("exec", name, "ip", "-4", "-o", "addr", "show", "dev", "eth0")
    return r.stdout if r.returncode == 0 else ""


@pytest.mark.parametrize("point,kept", [("network-attached", False), ("network-connect-attached", True)])
def test_cryod_killed_during_a_network_connect_leaves_it_attached_or_not_at_all(fd, ctr, name, point, kept):
    """Killed after CNI attached the running container but before its record said so, the
    restart deletes the attachment and leaves it off the network, its address free again;
    killed after the record said so, the restart keeps it. Never an address in use that no
    record knows."""
    net, octet = name + "n", random.randint(1, 254)
    ip = f"198.19.{octet}.77"
    fd.ok("network", "create", "--subnet", f"198.19.{octet}.0/24", net)
    try:
        ctr(name)
        fd.ok("network", "disconnect", "cryo0", name)
        fd.with_fault(f"{point}:kill")
        r = fd.docker("network", "connect", "--ip", ip, net, name)
        assert r.returncode != 0, r.stdout
        fd.wait_killed(point)
        fd.without_fault()
        st = json.loads(fd.ok("inspect", name))[0]
        assert st["State"]["Running"], st["State"]
        networks = st["NetworkSettings"]["Networks"] or {}
        if kept:
            assert networks.get(net, {}).get("IPAddress") == ip, networks
            assert ip in _ip_in_container(fd, name)
        else:
            assert networks == {}, networks
            assert ip not in _ip_in_container(fd, name)
            fd.ok("network", "connect", "--ip", ip, net, name)   # the address was released
            assert ip in _ip_in_container(fd, name)
        fd.ok("rm", "-f", name)
        fd.ok("network", "rm", net)   # nothing of it is left in use
        OUTCOMES.append((point, "network connect", "attached and recorded" if kept else "attachment undone, address free"))
    finally:
        fd.docker("rm", "-f", name)
        fd.docker("network", "rm", net)


def test_cryod_killed_during_a_network_disconnect_finishes_it(fd, ctr, name):
    """Killed after CNI detached the running container but before its record said so: the
    restart finishes the disconnect (the record no longer claims the address, which is free)."""
    net, octet = name + "n", random.randint(1, 254)
    ip = f"198.19.{octet}.78"
    fd.ok("network", "create", "--subnet", f"198.19.{octet}.0/24", net)
    try:
        ctr(name, "--network", net, "--ip", ip)
        fd.with_fault("network-disconnect-detached:kill")
        r = fd.docker("network", "disconnect", net, name)
        assert r.returncode != 0, r.stdout
        fd.wait_killed("network-disconnect-detached")
        fd.without_fault()
        st = json.loads(fd.ok("inspect", name))[0]
        assert st["State"]["Running"], st["State"]
        assert (st["NetworkSettings"]["Networks"] or {}) == {}, st["NetworkSettings"]["Networks"]
        assert ip not in _ip_in_container(fd, name)
        fd.ok("network", "connect", "--ip", ip, net, name)
        assert ip in _ip_in_container(fd, name)
        OUTCOMES.append(("network-disconnect-detached", "network disconnect", "finished, address free"))
    finally:
        fd.docker("rm", "-f", name)
        fd.docker("network", "rm", net)
