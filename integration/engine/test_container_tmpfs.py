"""The container's /dev, /sys/fs/cgroup holder and masked directories live in a host tmpfs
per container (`<root>/containers/<id>/tmpfs`, ContainerTmpfs) bound into it, so CRIU sees
external bind mounts instead of tmpfs mounts it would archive with tar:
- inside the container /dev holds working device nodes and the usual symlinks, the masked
  directories are empty and read-only, /sys/fs/cgroup shows the hierarchies read-only;
- the same after checkpoint/restore (no tmpfs archive in the checkpoint, a file made in
  /dev carries on) and after a simulated reboot (the host tmpfs is remade before the restore);
- the host tmpfs is unmounted when the container is removed.
"""

import json
import os
import signal
from pathlib import Path

from conftest import COUNTER, counter_values, inspect, mounts_under, wait_for
from test_reboot_and_faults import own_daemon, simulate_reboot  # noqa: F401 (fixture)

# One exec that reports what a container sees; every line is "name=value".
PROBE = r"""
for d in null zero full random urandom tty; do
  if [ -c /dev/$d ]; then echo "chr_$d=$(stat -c '%t:%T:%a' /dev/$d)"; else echo "chr_$d=missing"; fi
done
echo "null_write=$(echo x > /dev/null && echo ok)"
echo "zero_read=$(head -c 16 /dev/zero | wc -c)"
echo "urandom_read=$(head -c 16 /dev/urandom | wc -c)"
echo "full_write=$(echo x 2>/dev/null > /dev/full && echo ok || echo ENOSPC)"
for l in ptmx fd stdin stdout stderr; do echo "link_$l=$(readlink /dev/$l)"; done
for m in /dev/pts /dev/shm /dev/mqueue; do
  echo "mnt_$m=$(awk -v m=$m '$5 == m { for (i = 7; i <= NF; i++) if ($i == "-") { print $(i+1); exit } }' /proc/self/mountinfo)"
done
for p in /proc/acpi /sys/firmware; do
  if [ -d $p ]; then
    echo "masked_$p=$(ls -A $p | wc -l):$(mkdir $p/x 2>/dev/null && echo writable || echo ro)"
  fi
done
echo "cgroup_memory=$(test -r /sys/fs/cgroup/memory/memory.limit_in_bytes && echo ok)"
echo "cgroup_write=$(mkdir /sys/fs/cgroup/x 2>/dev/null && echo writable || echo ro)"
echo "mine=$(cat /dev/mine 2>/dev/null)"
"""


def probe(d, ref):
    out = d.ok("exec", ref, "sh", "-c", PROBE)
    return dict(l.split("=", 1) for l in out.splitlines() if "=" in l)


def assert_sees_defaults(p):
    want = {"null": "1:3", "zero": "1:5", "full": "1:7", "random": "1:8", "urandom": "1:9", "tty": "5:0"}
    for dev, nums in want.items():
        assert p[f"chr_{dev}"] == nums + ":666", (dev, p)
    assert p["null_write"] == "ok" and p["zero_read"] == "16" and p["urandom_read"] == "16", p
    assert p["full_write"] == "ENOSPC", p
    assert p["link_ptmx"] == "pts/ptmx" and p["link_fd"] == "/proc/self/fd", p
    assert [p["link_stdin"], p["link_stdout"], p["link_stderr"]] == [f"/proc/self/fd/{i}" for i in range(3)], p
    assert p["mnt_/dev/pts"] == "devpts" and p["mnt_/dev/mqueue"] == "mqueue" and p["mnt_/dev/shm"] == "tmpfs", p
    for path in ("/proc/acpi", "/sys/firmware"):
        if os.path.isdir(path):
            assert p[f"masked_{path}"] == "0:ro", (path, p)
    assert p["cgroup_memory"] == "ok" and p["cgroup_write"] == "ro", p


def host_tmpfs(d, cid):
    return d.root / "containers" / cid / "tmpfs"


def test_dev_masked_and_cgroup_across_checkpoint_restore(docker_cli, name, criu):
    d = docker_cli
    cid = d.ok("run", "-d", "--name", name, "busybox", "sh", "-c", COUNTER)
    wait_for(lambda: len(counter_values(d.ok("logs", name))) >= 3, what="counter output")
    assert str(host_tmpfs(d, cid)) in mounts_under(d.root), "the host tmpfs is mounted at start"
    assert_sees_defaults(probe(d, name))
    d.ok("exec", name, "sh", "-c", "echo kept > /dev/mine")

    d.ok("checkpoint", "create", name, "cp1", timeout=120)
    images = d.root / "containers" / cid / "checkpoints" / "cp1"
    assert (images / "inventory.img").exists()
    archived = sorted(f.name for f in images.iterdir() if f.name.startswith("tmpfs-"))
    assert archived == [], f"CRIU archived tmpfs mounts: {archived}"
    d.ok("start", "--checkpoint", "cp1", name, timeout=120)
    p = probe(d, name)
    assert_sees_defaults(p)
    assert p["mine"] == "kept", "same boot: the host tmpfs stayed mounted, /dev/mine carries on"
    vals = wait_for(lambda: (v := counter_values(d.ok("logs", name))) and len(v) >= 8 and v, what="counter after restore")
    assert vals == list(range(len(vals))), vals

    d.ok("rm", "-f", name)
    assert [m for m in mounts_under(d.root) if f"/containers/{cid}" in m] == [], "rm unmounts the host tmpfs"


def test_tty_container_restores_its_console(docker_cli, name, criu):
    d = docker_cli
    d.ok("run", "-d", "-t", "--name", name, "busybox", "sleep", "100000")
    d.ok("checkpoint", "create", name, "cpt", timeout=120)
    d.ok("start", "--checkpoint", "cpt", name, timeout=120)
    assert inspect(d, name)["State"]["Running"]
    assert_sees_defaults(probe(d, name))
    d.ok("rm", "-f", name)


def test_fresh_start_gets_a_fresh_dev(docker_cli, name):
    d = docker_cli
    d.ok("run", "-d", "--name", name, "busybox", "sleep", "100000")
    d.ok("exec", name, "sh", "-c", "echo old > /dev/mine")
    d.ok("stop", "-t", "0", name)
    d.ok("start", name)
    p = probe(d, name)
    assert p["mine"] == "", "a start (not a restore) gets Docker's fresh /dev"
    assert_sees_defaults(p)
    d.ok("rm", "-f", name)


def test_restore_after_reboot_remakes_the_host_tmpfs(own_daemon):  # noqa: F811 (fixture)
    d = own_daemon(["--checkpoint-on-shutdown"])
    cid = d.ok("run", "-d", "--name", "rb", "busybox", "sh", "-c", COUNTER)
    wait_for(lambda: len(counter_values(d.ok("logs", "rb"))) >= 3, what="counter output")
    d.ok("exec", "rb", "sh", "-c", "echo lost > /dev/mine")
    d.stop(signal.SIGTERM, timeout=60)
    simulate_reboot(d)
    assert mounts_under(d.root) == []
    d.start(timeout=60)
    st = json.loads(d.ok("inspect", "rb"))[0]["State"]
    assert st["Running"], st
    assert str(host_tmpfs(d, cid)) in mounts_under(d.root)
    p = probe(d, "rb")
    assert_sees_defaults(p)
    assert p["mine"] == "", "after a reboot /dev starts from the defaults"
    before = len(counter_values(d.ok("logs", "rb")))
    wait_for(lambda: len(counter_values(d.ok("logs", "rb"))) >= before + 3, what="counter after restore")
    d.ok("rm", "-f", "rb")
    assert [m for m in mounts_under(d.root) if f"/containers/{cid}" in m] == []
    assert not Path(host_tmpfs(d, cid)).exists()
