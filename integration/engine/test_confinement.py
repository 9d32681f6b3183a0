"""Docker's confinement by default, and the options that change it (issue 10, items 2 and 7),
through the real docker CLI.

A static probe (integration/fixtures/syscall-probe.c, bind-mounted at /probe) tries a list of system
calls in containers and prints the errno of each; the default outcomes are compared with
Docker's default profile (moby 28) and printed side by side with podman 4.3's (runc).
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from conftest import REPO, inspect, unavailable, wait_for

EPERM, ENOENT, EBADF, EINVAL, ENOSYS, ENOKEY = 1, 2, 9, 22, 38, 126

# What Docker's default profile (moby 28) gives the probe as root with Docker's default
# capabilities: an errno, or "allowed" (the call got past seccomp: 0 or an errno of its own).
DOCKER_DEFAULT = {
    "getpid": 0, "fork": 0, "clone-newuser": EPERM, "clone3": ENOSYS, "unshare-user": EPERM,
    "unshare-0": EPERM, "setns": EPERM, "mount": EPERM, "personality-0": 0, "personality-query": 0,
    "personality-read-implies-exec": EPERM, "socket-inet": 0, "socket-vsock": EPERM, "add_key": EPERM,
    "keyctl": EPERM, "request_key": EPERM, "io_uring_setup": EPERM, "perf_event_open": EPERM, "bpf": EPERM,
    "kexec_load": EPERM, "open_by_handle_at": EPERM, "ptrace": 0, "clock_settime": EPERM, "swapon": EPERM,
    "reboot": EPERM, "finit_module": EPERM, "kcmp": EPERM, "pidfd_getfd": EPERM, "chroot": 0,
    "sethostname": EPERM, "acct": EPERM, "userfaultfd": EPERM, "vmsplice": EBADF, "name_to_handle_at": "allowed",
    "mbind": EPERM, "syslog": EPERM,
    # Newer than libseccomp 2.5 knows: mseal is allowed by name, file_getattr (named by no
    # profile, newer than all it names) answers ENOSYS as runc makes it.
    "mseal": "allowed", "file_getattr": ENOSYS,
}

# Where podman 4.3's default profile differs from Docker's (so its outcome may differ): it
# leaves namespaces, mount, keyctl, syslog, pidfd_getfd and the mempolicy calls to the
# capabilities, allows AF_VSOCK sockets, blocks vmsplice (and does not list mseal), and answers
# ENOSYS (not EPERM) for what it does not list.
PODMAN_DIFFERS = {"clone-newuser", "clone3", "unshare-user", "unshare-0", "setns", "mount", "socket-vsock", "keyctl",
                  "syslog", "pidfd_getfd", "vmsplice", "mbind", "mseal"}


def outcome_class(v):
    if v in (EPERM, ENOSYS):
        return "blocked"
    return "allowed"


@pytest.fixture(scope="module")
def probe_dir():
    if shutil.which("gcc") is None:
        unavailable("gcc is needed to build integration/fixtures/syscall-probe.c")
    d = tempfile.mkdtemp(prefix="cryo-probe-")
    try:
        r = subprocess.run(["bash", str(REPO / "scripts" / "build-test-fixtures.sh"), d],
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            unavailable(f"building the test fixtures failed: {r.stderr[-2000:]}")
        os.chmod(d, 0o755)
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def parse_probe(text):
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            out[parts[0]] = int(parts[1]) if parts[1].lstrip("-").isdigit() else parts[1]
    return out


def run_probe(d, probe_dir, *opts, args=()):
    r = d.docker("run", "--rm", "--network", "none", "-e", "CRYO_PROBE_IN_CONTAINER=1",
                 "-v", f"{probe_dir}:/probe:ro", *opts, "busybox", "/probe/syscall-probe", *args, timeout=120)
    assert r.returncode == 0, f"probe failed rc={r.returncode}: {r.stdout} {r.stderr}"
    return parse_probe(r.stdout)


def status_field(text, field):
    m = re.search(rf"^{field}:\s*(\S+)", text, re.M)
    assert m, f"{field} not in {text!r}"
    return m.group(1)


def cap_mask(names):
    from_kernel = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
                   "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
                   "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
                   "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
                   "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP"]
    return sum(1 << from_kernel.index(n) for n in names)


DOCKER_CAPS = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
               "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"]


def host_status():
    return Path("/proc/self/status").read_text()


# ------------------------------------------------------------------------------------------
# the default profile, side by side with podman 4.3


def podman_probe(probe_dir):
    """The probe under podman 4.3 + runc, state in a temp dir; None if podman cannot run here."""
    if shutil.which("podman") is None or shutil.which("runc") is None:
        return None
    base = tempfile.mkdtemp(prefix="cryo-podman-")
    rootfs = Path(base) / "rootfs"
    try:
        rootfs.mkdir()
        subprocess.run(["tar", "-xzf", "/var/cache/cryo/test-images/busybox-rootfs.tar.gz", "-C", str(rootfs)],
                       check=True, timeout=60)
        (rootfs / "probe").mkdir(exist_ok=True)
        shutil.copy(Path(probe_dir) / "syscall-probe", rootfs / "probe" / "syscall-probe")
        # No CAP_SYS_RESOURCE here: podman must not raise rlimits above the host's.
        conf = Path(base) / "containers.conf"
        conf.write_text('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n'
                        '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nruntime = "runc"\n')
        env = dict(os.environ, CONTAINERS_CONF=str(conf))
        cli = ["podman", "--root", f"{base}/root", "--runroot", f"{base}/runroot", "--tmpdir", f"{base}/tmp",
               "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--runtime", "runc"]
        r = subprocess.run(cli + ["run", "--rm", "--network", "none", "-e", "CRYO_PROBE_IN_CONTAINER=1",
                                  "--rootfs", str(rootfs), "/probe/syscall-probe"],
                           capture_output=True, text=True, timeout=180, env=env)
        if r.returncode != 0:
            print(f"podman could not run the probe: {r.stderr[-1500:]}")
            return None
        return parse_probe(r.stdout)
    finally:
        subprocess.run(["bash", "-c", f"grep -o ' {base}[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_default_profile_is_dockers_side_by_side_with_podman(docker_cli, probe_dir):
    d = docker_cli
    got = run_probe(d, probe_dir)
    podman = podman_probe(probe_dir)
    print(f"\n{'syscall':<32}{'docker 28':>10}{'cryo':>8}{'podman 4.3':>12}")
    for k, want in DOCKER_DEFAULT.items():
        p = "-" if podman is None else podman.get(k, "?")
        print(f"{k:<32}{str(want):>10}{str(got.get(k)):>8}{str(p):>12}{'  (profiles differ)' if k in PODMAN_DIFFERS else ''}")
    assert set(got) == set(DOCKER_DEFAULT), got
    for k, want in DOCKER_DEFAULT.items():
        if want == "allowed":
            assert outcome_class(got[k]) == "allowed", (k, got[k])
        else:
            assert got[k] == want, f"{k}: docker's default gives {want}, cryo gave {got[k]}"
    if podman is None:
        unavailable("podman 4.3 with runc could not run the probe for the comparison")
    for k in DOCKER_DEFAULT:
        if k not in PODMAN_DIFFERS:
            assert outcome_class(got[k]) == outcome_class(podman[k]), f"{k}: cryo {got[k]}, podman {podman[k]}"
    # The filter is on, and no_new_privs is not (Docker's default).
    st = d.ok("run", "--rm", "--network", "none", "busybox", "cat", "/proc/self/status")
    assert status_field(st, "Seccomp") == "2"
    assert status_field(st, "NoNewPrivs") == "0"
    assert int(status_field(st, "CapEff"), 16) == cap_mask(DOCKER_CAPS)


def test_cap_add_sys_admin_unlocks_the_admin_syscalls(docker_cli, probe_dir):
    got = run_probe(docker_cli, probe_dir, "--cap-add", "SYS_ADMIN")
    # Past seccomp now; the kernel answers for itself.
    assert got["unshare-0"] == 0
    assert got["setns"] == EBADF
    assert got["mount"] == ENOENT
    assert got["clone3"] == 0
    assert got["clone-newuser"] == 0
    assert got["sethostname"] == EINVAL
    # Still blocked: not a capability matter in Docker's profile.
    assert got["keyctl"] == EPERM and got["add_key"] == EPERM
    assert got["personality-read-implies-exec"] == EPERM
    assert got["kexec_load"] == EPERM


def test_privileged_and_unconfined(docker_cli, probe_dir):
    d = docker_cli
    host_bnd = int(status_field(host_status(), "CapBnd"), 16)
    st = d.ok("run", "--rm", "--privileged", "--network", "none", "busybox", "cat", "/proc/self/status")
    assert status_field(st, "Seccomp") == "0"
    # Every capability the host can give (this sandbox lacks CAP_SYS_RESOURCE: not asked for).
    assert int(status_field(st, "CapEff"), 16) == host_bnd
    devs = d.ok("run", "--rm", "--privileged", "--network", "none", "busybox", "ls", "/dev")
    assert "kmsg" in devs.split() and "loop-control" in devs.split(), devs
    mi = d.ok("run", "--rm", "--privileged", "--network", "none", "busybox", "cat", "/proc/self/mountinfo")
    assert " /proc/kcore " not in mi and " /proc/sys " not in mi, "no masked or read-only paths"
    got = run_probe(d, probe_dir, "--privileged")
    # Past seccomp (this kernel may have no kexec at all: ENOSYS of its own).
    assert got["kexec_load"] in (EINVAL, ENOSYS) and got["keyctl"] == 0 and got["personality-read-implies-exec"] == 0

    st = d.ok("run", "--rm", "--security-opt", "seccomp=unconfined", "--network", "none", "busybox", "cat", "/proc/self/status")
    assert status_field(st, "Seccomp") == "0"
    assert int(status_field(st, "CapEff"), 16) == cap_mask(DOCKER_CAPS)
    got = run_probe(d, probe_dir, "--security-opt", "seccomp=unconfined")
    assert got["add_key"] == 0 and got["personality-read-implies-exec"] == 0


def test_custom_profile_in_dockers_format(docker_cli, probe_dir, tmp_path):
    d = docker_cli
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
        "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            # Only without CAP_SYS_ADMIN (Docker's `excludes`).
            {"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 11, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        ],
    }, indent=2))
    got = run_probe(d, probe_dir, "--security-opt", f"seccomp={profile}", args=("personality-0", "unshare-0", "add_key", "getpid"))
    assert got == {"personality-0": 13, "unshare-0": 11, "add_key": 0, "getpid": 0}, got
    got = run_probe(d, probe_dir, "--security-opt", f"seccomp={profile}", "--cap-add", "SYS_ADMIN", args=("unshare-0",))
    assert got == {"unshare-0": 0}, got
    bad = tmp_path / "bad.json"
    bad.write_text('{"defaultAction": "SCMP_ACT_NOTIFY"}')
    r = d.docker("create", "--security-opt", f"seccomp={bad}", "busybox")
    assert r.returncode != 0 and "SCMP_ACT_NOTIFY" in r.stderr, r.stderr


def test_containers_do_not_share_the_hosts_keyring(docker_cli, probe_dir, name):
    d = docker_cli
    key = "cryo-test-" + uuid.uuid4().hex[:8]
    opts = ["--network", "none", "--security-opt", "seccomp=unconfined", "-e", "CRYO_PROBE_IN_CONTAINER=1",
            "-v", f"{probe_dir}:/probe:ro"]
    cid = d.ok("run", "-d", "--name", name, *opts, "busybox", "sh", "-c",
               f"/probe/syscall-probe add-key {key} > /tmp/added && exec sleep 600")
    wait_for(lambda: d.docker("exec", name, "cat", "/tmp/added").stdout.strip().isdigit(), what="the key added")
    # The container's own session keyring; an exec joins the same one.
    assert d.ok("exec", name, "/probe/syscall-probe", "session-keyring").endswith(f"cryo-session.{cid}")
    assert d.ok("exec", name, "/probe/syscall-probe", "find-key", key).isdigit()
    # Another container and the host do not see it.
    r = d.docker("run", "--rm", *opts, "busybox", "/probe/syscall-probe", "find-key", key)
    assert r.stdout.strip() == f"ERRNO {ENOKEY}", r.stdout
    r = subprocess.run([f"{probe_dir}/syscall-probe", "find-key", key], capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() == f"ERRNO {ENOKEY}", r.stdout


def sleeping(d, ref):
    """Waits until the container's init has exec'd its program (a checkpoint must not catch
    it still in the runtime's code, between `start` and its execve)."""
    wait_for(lambda: "sleep" in d.docker("exec", ref, "cat", "/proc/1/cmdline").stdout, what="the init to exec sleep")


def test_checkpoint_and_restore_keep_the_filter_and_the_options(docker_cli, probe_dir, name, criu):
    d = docker_cli
    d.ok("run", "-d", "--name", name, "--network", "none", "--cap-drop", "CHOWN", "--security-opt", "no-new-privileges",
         "-e", "CRYO_PROBE_IN_CONTAINER=1", "-v", f"{probe_dir}:/probe:ro", "busybox", "sleep", "600")
    sleeping(d, name)
    d.ok("checkpoint", "create", name, "cp1", timeout=120)
    d.ok("start", "--checkpoint", "cp1", name, timeout=120)
    for pid in ("1", "self"):
        st = d.ok("exec", name, "cat", f"/proc/{pid}/status")
        assert status_field(st, "Seccomp") == "2", pid
        assert status_field(st, "NoNewPrivs") == "1", pid
        assert int(status_field(st, "CapEff"), 16) == cap_mask([c for c in DOCKER_CAPS if c != "CHOWN"]), pid
    got = parse_probe(d.ok("exec", name, "/probe/syscall-probe", "add_key", "personality-read-implies-exec", "getpid"))
    assert got == {"add_key": EPERM, "personality-read-implies-exec": EPERM, "getpid": 0}, got
    h = inspect(d, name)["HostConfig"]
    assert h["CapDrop"] == ["CAP_CHOWN"] and h["SecurityOpt"] == ["no-new-privileges"]
    # docker exec --privileged: every capability the host has; the filter stays.
    st = d.ok("exec", "--privileged", name, "cat", "/proc/self/status")
    assert int(status_field(st, "CapEff"), 16) == int(status_field(host_status(), "CapBnd"), 16)
    assert status_field(st, "Seccomp") == "2"

    # An unconfined container's restored tasks are in its own keyring, not the host's.
    other = name + "k"
    cid = d.ok("run", "-d", "--name", other, "--network", "none", "--security-opt", "seccomp=unconfined",
               "-e", "CRYO_PROBE_IN_CONTAINER=1", "-v", f"{probe_dir}:/probe:ro", "busybox", "sleep", "600")
    sleeping(d, other)
    d.ok("checkpoint", "create", other, "cp1", timeout=120)
    d.ok("start", "--checkpoint", "cp1", other, timeout=120)
    st = d.ok("exec", other, "cat", "/proc/1/status")
    assert status_field(st, "Seccomp") == "0"
    assert d.ok("exec", other, "/probe/syscall-probe", "session-keyring").endswith(f"cryo-session.{cid}")


def test_every_option_in_effect_and_shown_by_inspect(docker_cli, name):
    d = docker_cli
    st = d.ok("run", "--rm", "--network", "none", "--cap-drop", "ALL", "--cap-add", "NET_ADMIN", "--security-opt",
              "no-new-privileges:true", "busybox", "cat", "/proc/self/status")
    assert int(status_field(st, "CapEff"), 16) == cap_mask(["NET_ADMIN"])
    assert status_field(st, "NoNewPrivs") == "1"
    # A device, read-only by its cgroup rule.
    out = d.docker("run", "--rm", "--network", "none", "--device", "/dev/fuse:/dev/probe-fuse:r", "busybox", "sh", "-c",
                   "ls -l /dev/probe-fuse; dd if=/dev/probe-fuse of=/dev/null bs=1 count=0 && echo READ-OK; "
                   "echo x > /dev/probe-fuse || echo WRITE-REFUSED")
    assert re.search(r"^c.* 10,\s+229 .*/dev/probe-fuse", out.stdout, re.M), out.stdout
    assert "READ-OK" in out.stdout and "WRITE-REFUSED" in out.stdout, out.stdout + out.stderr
    # Without --device the same node is refused by the devices cgroup.
    out = d.docker("run", "--rm", "--network", "none", "busybox", "sh", "-c",
                   "mknod /dev/f c 10 229 && dd if=/dev/f of=/dev/null bs=1 count=0 && echo READ-OK")
    assert "READ-OK" not in out.stdout and "Operation not permitted" in out.stderr, out.stdout + out.stderr
    # Namespaces shared with the host.
    mine = {ns: os.readlink(f"/proc/self/ns/{ns}") for ns in ("pid", "ipc", "uts", "cgroup")}
    out = d.ok("run", "--rm", "--network", "none", "--pid", "host", "--ipc", "host", "--uts", "host", "--cgroupns", "host",
               "--userns", "host", "busybox", "sh", "-c",
               f"for n in pid ipc uts cgroup; do readlink /proc/self/ns/$n; done; test -d /proc/{os.getpid()} && echo SEES-HOST-PIDS; hostname")
    lines = out.splitlines()
    assert lines[:4] == [mine["pid"], mine["ipc"], mine["uts"], mine["cgroup"]], out
    assert lines[4] == "SEES-HOST-PIDS" and lines[5] == os.uname().nodename, out
    out = d.ok("run", "--rm", "--network", "none", "busybox", "sh", "-c", "for n in pid ipc uts cgroup; do readlink /proc/self/ns/$n; done")
    assert all(a != b for a, b in zip(out.splitlines(), [mine["pid"], mine["ipc"], mine["uts"], mine["cgroup"]])), out
    # systempaths=unconfined: nothing masked.
    mi = d.ok("run", "--rm", "--network", "none", "--security-opt", "systempaths=unconfined", "busybox", "cat", "/proc/self/mountinfo")
    assert " /proc/kcore " not in mi and " /proc/sys " not in mi
    # inspect.
    d.ok("create", "--name", name, "--cap-add", "NET_ADMIN", "--cap-drop", "MKNOD", "--security-opt", "no-new-privileges",
         "--device", "/dev/fuse", "--pid", "host", "--ipc", "host", "--cgroupns", "host", "--userns", "host", "busybox")
    h = inspect(d, name)["HostConfig"]
    assert h["CapAdd"] == ["CAP_NET_ADMIN"] and h["CapDrop"] == ["CAP_MKNOD"]
    assert h["SecurityOpt"] == ["no-new-privileges"]
    assert h["Devices"] == [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"}]
    assert (h["PidMode"], h["IpcMode"], h["CgroupnsMode"], h["UsernsMode"], h["Privileged"]) == ("host", "host", "host", "host", False)
    plain = inspect(d, d.ok("create", "busybox"))["HostConfig"]
    assert (plain["PidMode"], plain["IpcMode"], plain["CgroupnsMode"], plain["Privileged"]) == ("", "private", "private", False)


def test_pid_host_container_is_not_checkpointed(docker_cli, name, criu):
    d = docker_cli
    d.ok("run", "-d", "--name", name, "--network", "none", "--pid", "host", "busybox", "sleep", "600")
    r = d.docker("checkpoint", "create", name, "cp1", timeout=120)
    assert r.returncode != 0 and "--pid host" in r.stderr, r.stderr
    assert inspect(d, name)["State"]["Running"] is True


@pytest.mark.parametrize("host_config,words", [
    ({"PidMode": "container:abc"}, "PidMode"),
    ({"IpcMode": "container:abc"}, "IpcMode"),
    ({"UsernsMode": "private"}, "UsernsMode"),
    ({"CgroupnsMode": "bogus"}, "CgroupnsMode"),
    ({"UTSMode": "container:abc"}, "UTSMode"),
    ({"CapAdd": ["CAP_BOGUS"]}, "unknown capability"),
    ({"SecurityOpt": ["apparmor=docker-default"]}, "AppArmor"),
    ({"SecurityOpt": ["label=type:foo_t"]}, "SELinux"),
    ({"SecurityOpt": ["seccomp=/etc/profile.json"]}, "seccomp"),
    ({"SecurityOpt": ["seccomp={not json"]}, "seccomp"),
    ({"SecurityOpt": ["no-new-privileges=maybe"]}, "no-new-privileges"),
    ({"SecurityOpt": ["bogus=1"]}, "bogus"),
    ({"Devices": [{"PathOnHost": "/dev/cryo-none", "PathInContainer": "/dev/x", "CgroupPermissions": "rwm"}]}, "/dev/cryo-none"),
    ({"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/x", "CgroupPermissions": "rwx"}]}, "permissions"),
])
def test_unsupported_values_are_refused(docker_cli, host_config, words):
    body = json.dumps({"Image": "busybox", "Cmd": ["true"], "HostConfig": host_config})
    st, _, data = docker_cli.http("POST", "/v1.50/containers/create", body=body, headers={"Content-Type": "application/json"})
    assert st == 400, (st, data)
    assert words in json.loads(data)["message"], data


CAP_NAMES = {24: "SYS_RESOURCE", 21: "SYS_ADMIN", 38: "PERFMON", 39: "BPF", 40: "CHECKPOINT_RESTORE",
             16: "SYS_MODULE", 25: "SYS_TIME", 17: "SYS_RAWIO"}


def test_a_capability_the_host_lacks_is_refused_by_name(docker_cli):
    """A capability missing from the host's bounding set (CAP_SYS_RESOURCE in this sandbox)
    is refused by name; on a host that has them all, an unknown name is refused instead."""
    bnd = int(status_field(host_status(), "CapBnd"), 16)
    missing = [name for bit, name in sorted(CAP_NAMES.items()) if not bnd & (1 << bit)]
    if missing:
        r = docker_cli.docker("create", "--cap-add", missing[0], "busybox")
        assert r.returncode != 0 and f"CAP_{missing[0]}" in r.stderr and "bounding set" in r.stderr, r.stderr
    else:
        r = docker_cli.docker("create", "--cap-add", "NO_SUCH_CAPABILITY", "busybox")
        assert r.returncode != 0 and "NO_SUCH_CAPABILITY" in r.stderr, r.stderr


@pytest.mark.parametrize("opts,check", [
    (["--ipc", "host"], "readlink /proc/self/ns/ipc"),
    (["--uts", "host"], "readlink /proc/self/ns/uts"),
    (["--cgroupns", "host"], "readlink /proc/self/ns/cgroup"),
    (["--device", "/dev/fuse:/dev/probe-fuse:r"], "ls -l /dev/probe-fuse"),
    (["--privileged"], "grep Seccomp: /proc/1/status"),
    (["--ipc", "none"], "test -e /dev/shm/x || echo no-shm-mount; grep -c ' /dev/shm ' /proc/self/mountinfo"),
])
def test_options_survive_checkpoint_and_restore(docker_cli, name, criu, opts, check):
    d = docker_cli
    d.ok("run", "-d", "--name", name, "--network", "none", *opts, "busybox", "sleep", "600")
    sleeping(d, name)
    before = d.docker("exec", name, "sh", "-c", check).stdout
    d.ok("checkpoint", "create", name, "cp1", timeout=120)
    d.ok("start", "--checkpoint", "cp1", name, timeout=120)
    after = d.docker("exec", name, "sh", "-c", check).stdout
    assert after == before, (before, after)
    seccomp = status_field(d.ok("exec", name, "cat", "/proc/1/status"), "Seccomp")
    assert seccomp == ("0" if "--privileged" in opts else "2")


from test_reboot_and_faults import own_daemon, simulate_reboot  # noqa: E402,F401 (a fixture)


def test_device_node_comes_back_for_a_restore_after_a_reboot(own_daemon):
    """/dev is a host tmpfs remade after a reboot: a --device node the container holds open
    must be in it again before CRIU reopens it."""
    d = own_daemon(["--checkpoint-on-shutdown"])
    d.ok("run", "-d", "--name", "dev", "--network", "none", "--device", "/dev/null:/dev/probe-null",
         "busybox", "sh", "-c", "exec 3>/dev/probe-null; exec sleep 600")
    sleeping(d, "dev")
    d.stop(timeout=60)
    simulate_reboot(d)
    d.start(timeout=60)
    st = inspect(d, "dev")["State"]
    assert st["Running"], st["Error"]
    assert d.ok("exec", "dev", "readlink", "/proc/1/fd/3") == "/dev/probe-null"
    assert re.search(r"^c.* 1,\s+3 .*/dev/probe-null$", d.ok("exec", "dev", "ls", "-l", "/dev/probe-null"), re.M)
    d.ok("rm", "-f", "dev")
