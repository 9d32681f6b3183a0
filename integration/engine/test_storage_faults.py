"""Storage faults (issue 10, the fault suite): a disk that fills up during a checkpoint, and
checkpoint images that are truncated or corrupt. After each: the container runs (a failed
checkpoint) or its checkpoint is left exactly as it was and restorable once repaired (a failed
restore), `inspect` tells the truth, and nothing half-written is left or listed."""

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import COUNTER, counter_values, inspect, wait_for


def tree_digest(path):
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(path).rglob("*")) if p.is_file()}


def counter(d, name):
    d.ok("run", "-d", "--name", name, "busybox", "sh", "-c", COUNTER)
    wait_for(lambda: len(counter_values(d.ok("logs", name))) >= 3, what="counter output")
    return inspect(d, name)["Id"]


def assert_counts_on(d, name):
    n = len(counter_values(d.ok("logs", name)))
    wait_for(lambda: len(counter_values(d.ok("logs", name))) >= n + 3, what="the counter going on")
    vals = counter_values(d.ok("logs", name))
    assert vals == list(range(len(vals))), f"the counter skipped or went back: {vals[-15:]}"


def test_disk_full_during_checkpoint_keeps_the_container_running(docker_cli, name, criu):
    d = docker_cli
    # the counter's shell holds ~8 MB of random text, so its dump is larger than the 1 MiB file
    # system (/dev/shm would not do: it is the host's tmpfs, outside the checkpoint)
    d.ok("run", "-d", "--name", name, "busybox", "sh", "-c",
         "x=$(head -c 3000000 /dev/urandom | od -An -x); " + COUNTER)
    wait_for(lambda: len(counter_values(d.ok("logs", name))) >= 3, what="counter output")
    small = d.root / "cpdirs" / f"full-{name}"
    small.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], check=True)
    try:
        r = d.docker("checkpoint", "create", "--checkpoint-dir", small, name, "cp1", timeout=120)
        assert r.returncode != 0, r
        assert "keeps running" in r.stderr or "No space" in r.stderr or "space" in r.stderr.lower(), r.stderr
        st = inspect(d, name)["State"]
        assert st["Running"] and st["Status"] == "running", st
        assert_counts_on(d, name)
        left = os.listdir(small)
        assert left == [], f"a failed checkpoint left {left}"
        assert "cp1" not in d.ok("checkpoint", "ls", "--checkpoint-dir", small, name).split()
        # and a checkpoint on a file system with room works right after
        d.ok("checkpoint", "create", "--leave-running", name, "ok1", timeout=120)
        assert "ok1" in d.ok("checkpoint", "ls", name).split()
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


def truncate_half(p):
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def garbage(p):
    data = bytearray(p.read_bytes())
    for i in range(8, len(data), 7):
        data[i] ^= 0x5A
    p.write_bytes(bytes(data))


CORRUPTIONS = [
    ("pages-*.img", truncate_half, "truncated memory pages"),
    ("core-*.img", garbage, "garbage in a task's core image"),
    ("inventory.img", truncate_half, "truncated inventory"),
    ("pstree.img", lambda p: p.write_bytes(b""), "empty process tree"),
]


@pytest.mark.parametrize("pattern,damage,what", CORRUPTIONS, ids=[c[2] for c in CORRUPTIONS])
def test_corrupt_checkpoint_image_fails_the_restore_and_is_left_as_it_was(docker_cli, name, criu, pattern, damage, what):
    d = docker_cli
    cid = counter(d, name)
    d.ok("checkpoint", "create", name, "cp1", timeout=120)
    cp = d.root / "containers" / cid / "checkpoints" / "cp1"
    victim = sorted(cp.glob(pattern))[0]
    good = victim.read_bytes()
    damage(victim)
    before = tree_digest(cp)

    r = d.docker("start", "--checkpoint", "cp1", name, timeout=120)
    assert r.returncode != 0, f"a restore from {what} succeeded: {r}"
    st = inspect(d, name)["State"]
    assert not st["Running"] and st["Status"] == "exited", st
    assert st["Error"], f"no error recorded for a failed restore ({what})"
    assert tree_digest(cp) == before, f"the failed restore changed the checkpoint ({what})"
    assert "cp1" in d.ok("checkpoint", "ls", name).split()
    # nothing of the failed restore lives on: no process in the container's cgroup
    for hier in ("pids", "memory", "freezer"):
        procs = Path("/sys/fs/cgroup", hier, "cryo", cid, "cgroup.procs")
        if procs.exists():
            assert procs.read_text().split() == [], f"{what}: processes left in {procs}"

    # repaired, the same checkpoint restores and the counter goes on from where it was
    victim.write_bytes(good)
    d.ok("start", "--checkpoint", "cp1", name, timeout=120)
    assert_counts_on(d, name)
