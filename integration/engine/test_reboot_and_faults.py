"""What checkpoint/restore exists for, and what must not go wrong (issue 3):
- a shutdown of cryod with --checkpoint-on-shutdown checkpoints every running container and,
  after a simulated reboot (no monitors, no containers, no mounts, an empty exec-root), the
  next cryod restores them: a counter continues from where it was;
- without it, a container lost to a reboot is reported exited with an error;
- a checkpoint that fails leaves the container running and lists no half checkpoint;
- a restore that fails leaves the checkpoint intact and the error in inspect;
- archives that escape their directory or do not match their digests are refused.
Each test runs its own cryod on its own temp root (the reboot kills everything of that root).
"""

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

from conftest import COUNTER, IMAGES, Daemon, _check_requirements, cleanup, counter_values, kill_monitors, unmount_all, wait_for


class OwnDaemon(Daemon):
    """A cryod with extra flags (e.g. --checkpoint-on-shutdown)."""

    def __init__(self, base, extra=()):
        super().__init__(base, extra_args=extra)


@pytest.fixture
def own_daemon(criu):
    _check_requirements()
    made = []

    def make(extra=()):
        base = tempfile.mkdtemp(prefix="cryo-rb-", dir="/tmp")
        d = OwnDaemon(base, extra)
        made.append(d)
        d.start()
        d.ok("load", "-i", IMAGES / "busybox.tar", timeout=120)
        return d

    yield make
    for d in made:
        cleanup(d)


def logged_values(d, cid):
    """Counter values from the container's json-file log (readable while cryod is down)."""
    log = d.root / "containers" / cid / f"{cid}-json.log"
    return [int(json.loads(l)["log"]) for l in log.read_text().splitlines() if json.loads(l)["log"].strip().isdigit()]


def monitors_of(d):
    out = subprocess.run(["pgrep", "-f", f"cryo-monitor {d.root}"], capture_output=True, text=True).stdout
    return out.split()


def simulate_reboot(d):
    """Everything a reboot takes away: processes, mounts, the tmpfs exec-root."""
    kill_monitors(d.base)
    unmount_all(d.base)
    shutil.rmtree(d.run, ignore_errors=True)


def test_reboot_with_checkpoint_on_shutdown_restores_counter(own_daemon):
    d = own_daemon(["--checkpoint-on-shutdown"])
    cid = d.ok("run", "-d", "--name", "ctr", "busybox", "sh", "-c", COUNTER)
    wait_for(lambda: len(counter_values(d.ok("logs", "ctr"))) >= 5, what="counter output")
    d.stop(signal.SIGTERM, timeout=60)
    assert monitors_of(d) == [], "the shutdown checkpoint stops the container and its monitor"
    before = logged_values(d, cid)
    assert before == list(range(len(before))), before
    record = json.loads((d.root / "containers" / cid / "container.json").read_text())
    assert record["restoreOnStart"] == "cryod-shutdown"

    simulate_reboot(d)
    d.start(timeout=60)
    st = json.loads(d.ok("inspect", "ctr"))[0]["State"]
    assert st["Running"], st
    wait_for(lambda: len(counter_values(d.ok("logs", "ctr"))) >= len(before) + 5, what="counter after restore")
    after = counter_values(d.ok("logs", "ctr"))
    # The counter continued: one unbroken sequence, no restart from 0.
    assert after == list(range(len(after))), after
    assert not (d.root / "containers" / cid / "checkpoints" / "cryod-shutdown").exists()
    d.ok("stop", "-t", "1", "ctr")


def test_reboot_without_checkpointing_reports_the_loss(own_daemon):
    d = own_daemon()
    d.ok("run", "-d", "--name", "lost", "busybox", "sleep", "100000")
    d.stop(signal.SIGKILL)
    simulate_reboot(d)
    d.start()
    st = json.loads(d.ok("inspect", "lost"))[0]["State"]
    assert st["Status"] == "exited" and not st["Running"], st
    assert "monitor is gone" in st["Error"], st
    d.ok("start", "lost")
    assert json.loads(d.ok("inspect", "lost"))[0]["State"]["Running"]
    d.ok("rm", "-f", "lost")


def test_failed_checkpoint_keeps_container_running(own_daemon):
    d = own_daemon()
    # An established TCP connection inside the container: CRIU refuses it without --tcp-established.
    script = ("nc -l -p 5000 -e cat & sleep 0.3; "
              "(while true; do echo ping; sleep 1; done) | nc 127.0.0.1 5000 > /dev/null & sleep 100000")
    cid = d.ok("run", "-d", "--name", "tcp", "busybox", "sh", "-c", script)
    time.sleep(1)
    r = d.docker("checkpoint", "create", "tcp", "cp1")
    assert r.returncode == 1
    assert "tcp-established" in r.stderr, r.stderr
    assert "keeps running" in r.stderr, r.stderr
    st = json.loads(d.ok("inspect", "tcp"))[0]["State"]
    assert st["Running"], st
    assert d.ok("checkpoint", "ls", "tcp").splitlines() == ["CHECKPOINT NAME"]
    cps = d.root / "containers" / cid / "checkpoints"
    assert not cps.exists() or list(cps.iterdir()) == [], list(cps.iterdir())
    assert (d.root / "containers" / cid / "checkpoint-cp1-failed.log").exists()
    # Still usable: exec works and a later checkpoint of a calmer container succeeds.
    assert d.ok("exec", "tcp", "echo", "alive") == "alive"
    d.ok("rm", "-f", "tcp")


def tree_digest(path):
    out = {}
    for p in sorted(Path(path).rglob("*")):
        if p.is_file():
            out[str(p.relative_to(path))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def test_failed_restore_leaves_checkpoint_intact(own_daemon):
    d = own_daemon()
    cid = d.ok("run", "-d", "--name", "cr", "busybox", "sh", "-c", COUNTER)
    wait_for(lambda: len(counter_values(d.ok("logs", "cr"))) >= 3, what="counter output")
    d.ok("checkpoint", "create", "cr", "cp1")
    cp = d.root / "containers" / cid / "checkpoints" / "cp1"
    pagemaps = sorted(cp.glob("pagemap-*.img"))
    assert pagemaps, list(cp.iterdir())
    hidden = d.base / "hidden.img"
    shutil.move(pagemaps[0], hidden)
    before = tree_digest(cp)

    r = d.docker("start", "--checkpoint", "cp1", "cr")
    assert r.returncode != 0
    st = json.loads(d.ok("inspect", "cr"))[0]["State"]
    assert not st["Running"] and st["Status"] == "exited", st
    assert "restor" in st["Error"], st
    assert tree_digest(cp) == before, "a failed restore must not touch the checkpoint"
    assert "cp1" in d.ok("checkpoint", "ls", "cr")

    # Put the missing image back: the very same checkpoint now restores, counter continuing.
    shutil.move(hidden, pagemaps[0])
    n = len(counter_values(d.ok("logs", "cr")))
    d.ok("start", "--checkpoint", "cp1", "cr")
    wait_for(lambda: len(counter_values(d.ok("logs", "cr"))) >= n + 3, what="counter after restore")
    vals = counter_values(d.ok("logs", "cr"))
    assert vals == list(range(len(vals))), vals
    d.ok("rm", "-f", "cr")


def docker_save_archive(layer_members, tamper_digest=False):
    """A docker-save archive with one layer made of (name, bytes-or-None-for-dir, kind) entries."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as t:
        for name, data, kind in layer_members:
            ti = tarfile.TarInfo(name)
            if kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, data
                t.addfile(ti)
            elif data is None:
                ti.type = tarfile.DIRTYPE
                t.addfile(ti)
            else:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    layer_bytes = layer.getvalue()
    diff_id = hashlib.sha256(layer_bytes).hexdigest()
    if tamper_digest:
        diff_id = "0" * 64
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff_id]}}).encode()
    config_hex = hashlib.sha256(config).hexdigest()
    manifest = json.dumps([{"Config": f"{config_hex}.json", "RepoTags": ["evil:latest"], "Layers": ["layer.tar"]}]).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        for name, data in (("manifest.json", manifest), (f"{config_hex}.json", config), ("layer.tar", layer_bytes)):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize("members,what", [
    ([("../../../../../../tmp/cryo-escape-dotdot", b"x", "file")], ".."),
    ([("/tmp/cryo-escape-abs", b"x", "file")], "absolute"),
    ([("link", "/tmp", "sym"), ("link/cryo-escape-sym", b"x", "file")], "symlink"),
])
def test_archives_that_escape_are_refused(own_daemon, members, what):
    d = own_daemon()
    for p in ("/tmp/cryo-escape-dotdot", "/tmp/cryo-escape-abs", "/tmp/cryo-escape-sym"):
        if os.path.exists(p):
            os.unlink(p)
    archive = d.base / "evil.tar"
    archive.write_bytes(docker_save_archive(members))
    r = d.docker("load", "-i", archive)
    assert r.returncode != 0, r.stdout
    assert "Error response from daemon" in r.stderr and what in r.stderr.lower(), r.stderr
    for p in ("/tmp/cryo-escape-dotdot", "/tmp/cryo-escape-abs", "/tmp/cryo-escape-sym"):
        assert not os.path.exists(p), f"{p} was written outside the image store"
    assert "evil" not in d.ok("images")


def test_archive_with_wrong_digest_is_refused(own_daemon):
    d = own_daemon()
    archive = d.base / "bad.tar"
    archive.write_bytes(docker_save_archive([("hello", b"hi", "file")], tamper_digest=True))
    r = d.docker("load", "-i", archive)
    assert r.returncode != 0
    assert "digest" in r.stderr.lower(), r.stderr
    assert "evil" not in d.ok("images")
