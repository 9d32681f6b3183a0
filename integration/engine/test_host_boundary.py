"""What a host user, or a client of the API, can reach of cryod's state (issue 10, items 1 and 6).

1. Files a container (or an image) made setuid-root, and device nodes, live in the container's
   upper directory, its overlay rootfs and the image layers; the overlay cannot be nosuid/nodev
   (the container needs both), so cryod's root must be closed to other host users, as dockerd's.
6. A client-chosen `--checkpoint-dir` must not escape cryod's root through a symlink (one a
   container planted in its own rootfs, say), nor land in cryod's own state directories.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import COUNTER, counter_values, inspect, wait_for

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


@pytest.fixture
def open_base(docker_cli):
    """The test daemon lives under a 0700 mkdtemp dir; open it like /var/lib is open, so the
    only thing between a host user and cryod's state is cryod's own modes."""
    old = os.stat(docker_cli.base).st_mode & 0o7777
    os.chmod(docker_cli.base, 0o755)
    try:
        yield docker_cli
    finally:
        os.chmod(docker_cli.base, old)


def as_nobody(*argv):
    # Through a shell: setpriv itself execs its argument in a way that skips the path lookup
    # as the new user (seen with util-linux 2.38), a shell looks the path up as nobody.
    return subprocess.run(NOBODY + ["/bin/sh", "-c", 'exec "$@"', "sh"] + [str(a) for a in argv],
                          capture_output=True, text=True, timeout=30)


def test_setuid_file_planted_by_container_is_out_of_host_users_reach(open_base, name):
    d = open_base
    d.ok("run", "-d", "--name", name, "busybox", "sleep", "1000")
    d.ok("exec", name, "sh", "-c", "cp /bin/busybox /suid-true; chown 0:0 /suid-true; chmod 4755 /suid-true")
    cid = inspect(d, name)["Id"]
    cdir = d.root / "containers" / cid
    planted = [cdir / "upper" / "suid-true", cdir / "bundle" / "rootfs" / "suid-true"]
    for p in planted:
        assert os.stat(p).st_mode & 0o4000, f"{p} should be setuid (as root sees it)"
        r = as_nobody(p)
        assert r.returncode != 0 and "Permission denied" in (r.stdout + r.stderr), \
            f"a host user ran a container's setuid-root file {p}: rc={r.returncode} {r.stdout}{r.stderr}"
    for p in (d.root, d.root / "containers", cdir, d.run):
        mode = os.stat(p).st_mode & 0o777
        assert mode & 0o007 == 0, f"{p} is open to other users: {oct(mode)}"


def test_image_layers_out_of_host_users_reach(open_base):
    d = open_base
    layers = d.root / "images" / "layers" / "sha256"
    some = next(p for p in layers.iterdir() if (p / "bin" / "busybox").exists())
    r = as_nobody("stat", some / "bin" / "busybox")
    assert r.returncode != 0 and "Permission denied" in r.stderr, r


def test_existing_root_is_tightened_at_start(docker_cli, restart_daemon):
    d = docker_cli
    os.chmod(d.root, 0o755)
    os.chmod(d.root / "containers", 0o711)
    restart_daemon()
    assert os.stat(d.root).st_mode & 0o777 == 0o700
    assert os.stat(d.root / "containers").st_mode & 0o777 == 0o700


# ------------------------------------------------------------------------------------------
# --checkpoint-dir


def _running_counter(d, name):
    d.ok("run", "-d", "--name", name, "busybox", "sh", "-c", COUNTER)
    wait_for(lambda: len(counter_values(d.ok("logs", name))) >= 3, what="counter output")
    return inspect(d, name)["Id"]


def test_checkpoint_dir_through_a_containers_symlink_is_refused(docker_cli, name, criu):
    d = docker_cli
    cid = _running_counter(d, name)
    outside = Path(tempfile.mkdtemp(prefix="cryo-e2e-outside-"))
    try:
        d.ok("exec", name, "ln", "-s", str(outside), "/escape")
        via = d.root / "containers" / cid / "upper" / "escape"
        assert via.is_symlink()
        r = d.docker("checkpoint", "create", "--checkpoint-dir", via, name, "x")
        assert r.returncode != 0, r
        assert os.listdir(outside) == [], "a checkpoint was written outside cryod's root"
        # the same through a link somewhere else under the root (not a state directory)
        (d.root / "cpdirs").mkdir(exist_ok=True)
        link = d.root / "cpdirs" / f"link-{name}"
        link.symlink_to(outside)
        (outside / "victim").mkdir()
        (outside / "victim" / "inventory.img").write_text("not a checkpoint of cryo's")
        r = d.docker("checkpoint", "create", "--checkpoint-dir", link, name, "x")
        assert r.returncode != 0 and "symbolic link" in r.stderr, r
        r = d.docker("checkpoint", "rm", "--checkpoint-dir", link, name, "victim")
        assert r.returncode != 0 and "symbolic link" in r.stderr, r
        assert (outside / "victim" / "inventory.img").exists(), "checkpoint rm deleted outside the root"
        assert sorted(os.listdir(outside)) == ["victim"]
        assert inspect(d, name)["State"]["Running"], "a refused checkpoint must leave the container running"
    finally:
        shutil.rmtree(outside, ignore_errors=True)


def test_checkpoint_dir_in_cryods_state_is_refused(docker_cli, name, criu):
    d = docker_cli
    cid = _running_counter(d, name)
    other = "o" + name
    d.ok("run", "-d", "--name", other, "busybox", "sleep", "1000")
    oid = inspect(d, other)["Id"]
    odir = d.root / "containers" / oid
    # rm: another container's state is not a checkpoint directory
    for cp in ("upper", "container.json", "bundle"):
        r = d.docker("checkpoint", "rm", "--checkpoint-dir", odir, name, cp)
        assert r.returncode != 0 and "cryod's own state" in r.stderr, r
    assert (odir / "upper").is_dir() and (odir / "container.json").is_file()
    # create: never into an image layer (where other containers would read the memory dump)
    layer = next((d.root / "images" / "layers" / "sha256").iterdir())
    before = sorted(os.listdir(layer))
    for target in (layer, d.root / "containers" / cid / "checkpoints", d.root / "networks", d.root, d.run / "x"):
        r = d.docker("checkpoint", "create", "--checkpoint-dir", target, name, "x")
        assert r.returncode != 0, (target, r)
        assert "refused" in r.stderr or "outside" in r.stderr, (target, r.stderr)
    assert sorted(os.listdir(layer)) == before
    assert inspect(d, name)["State"]["Running"]
    # and an ordinary directory under the root still works, listing and removing included
    ok = d.root / "cpdirs" / name
    d.ok("checkpoint", "create", "--leave-running", "--checkpoint-dir", ok, name, "c1", timeout=120)
    assert "c1" in d.ok("checkpoint", "ls", "--checkpoint-dir", ok, name).split()
    d.ok("checkpoint", "rm", "--checkpoint-dir", ok, name, "c1")
    assert not (ok / "c1").exists()


def test_exec_root_too_long_for_monitor_sockets_is_refused_at_start():
    """An --exec-root whose monitor sockets would pass 103 bytes (the most cryod's socket
    library reaches) stops cryod at start with the reason, instead of every container
    looking exited two seconds after it started."""
    from conftest import BIN_DIR
    base = tempfile.mkdtemp(prefix="cryo-long-", dir="/tmp")
    try:
        # <exec-root>/mon/<64 hex>.sock = len(exec_root) + 5 + 64 + 5 bytes: 104.
        exec_root = base + "/" + "r" * (104 - 74 - len(base) - 1)
        assert len(exec_root) + 74 == 104
        r = subprocess.run([str(BIN_DIR / "cryod"), "--root", base + "/root", "--exec-root", exec_root,
                            "-H", "unix://" + base + "/d.sock"], capture_output=True, text=True, timeout=60)
        assert r.returncode != 0
        assert "too long" in r.stderr and "103" in r.stderr, r.stderr
    finally:
        shutil.rmtree(base, ignore_errors=True)
