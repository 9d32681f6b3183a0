"""Integration tests of the `cryo` CLI against a real cryod.

Self-contained (no conftest): the `cryo_env` fixture starts cryod on a private socket
under a short temp dir (/tmp/cryo-cli-XXXX: unix socket paths must stay < 108 bytes),
loads busybox with `cryo load`, and on teardown always removes every container, stops
cryod, unmounts whatever is still mounted under the temp dir and kills leftover
cryo-monitor processes that belong to it.

Needs root, the built binaries (CRYO_BIN_DIR, default <repo>/.build/debug) and the test
images from scripts/make-test-images.sh (CRYO_TEST_IMAGES, default
/var/cache/cryo/test-images). A missing prerequisite goes through conftest's `unavailable`:
skipped locally, a failure under CI=true.
"""

import json
import os
import random
import re
import socket
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import unavailable
from test_networking import fetch_or_none

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("CRYO_BIN_DIR", os.path.join(REPO, ".build", "debug"))
IMAGES = os.environ.get("CRYO_TEST_IMAGES", "/var/cache/cryo/test-images")


class Cryo:
    """Runs the `cryo` binary against one daemon socket."""

    def __init__(self, host):
        self.host = host
        self.exe = os.path.join(BIN, "cryo")

    def __call__(self, *args, input=None, timeout=60, env=None, host=True):
        argv = [self.exe] + (["-H", self.host] if host else []) + [str(a) for a in args]
        e = dict(os.environ)
        e.pop("CRYO_HOST", None)
        if env:
            e.update(env)
        return subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, env=e)

    def ok(self, *args, **kw):
        r = self(*args, **kw)
        assert r.returncode == 0, f"cryo {' '.join(map(str, args))} → rc {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
        return r


def mounts_under(path):
    """Mount points below `path`, deepest first."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == path or mp.startswith(path + "/"):
                found.append(mp)
    return sorted(set(found), key=len, reverse=True)


def processes_referring_to(path):
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if path in cmd and "cryo-monitor" in cmd:
            pids.append(int(p))
    return pids


@pytest.fixture(scope="module")
def cryo_env():
    if os.geteuid() != 0:
        unavailable("these tests need root (cryod creates namespaces, cgroups and mounts)")
    for b in ("cryo", "cryod", "cryo-monitor"):
        if not os.access(os.path.join(BIN, b), os.X_OK):
            unavailable(f"{BIN}/{b} missing: run `swift build` first")
    busybox = os.path.join(IMAGES, "busybox.tar")
    if not os.path.exists(busybox):
        unavailable(f"{busybox} missing: run scripts/make-test-images.sh")

    tmp = tempfile.mkdtemp(prefix="cryo-cli-", dir="/tmp")
    sock = os.path.join(tmp, "d.sock")
    log = open(os.path.join(tmp, "cryod.log"), "w")
    # Its own default bridge and subnet: other cryods on this host keep their own allocations.
    bridge = "cryocli" + uuid.uuid4().hex[:6]
    daemon = subprocess.Popen(
        [os.path.join(BIN, "cryod"), "--root", os.path.join(tmp, "root"), "--exec-root", os.path.join(tmp, "run"),
         "-H", "unix://" + sock, "--bridge", bridge, "--default-subnet", f"198.18.{random.randint(100, 250)}.0/24"],
        stdout=log, stderr=subprocess.STDOUT)
    cryo = Cryo("unix://" + sock)
    try:
        deadline = time.time() + 30
        while True:
            if daemon.poll() is not None:
                raise AssertionError("cryod exited: " + open(os.path.join(tmp, "cryod.log")).read())
            if os.path.exists(sock) and cryo("version").returncode == 0:
                break
            assert time.time() < deadline, "cryod did not come up in 30 s"
            time.sleep(0.1)
        r = cryo.ok("load", "-i", busybox)
        assert "Loaded image: busybox:latest" in r.stdout
        yield {"cryo": cryo, "tmp": tmp, "sock": sock}
    finally:
        try:
            ids = cryo("ps", "-aq", timeout=30).stdout.split()
            if ids:
                cryo("rm", "-f", *ids, timeout=120)
            nets = [n for n in cryo("network", "ls", "--format", "json", timeout=30).stdout.splitlines() if n.strip()]
            for n in nets:
                if json.loads(n)["Name"] != "cryo0":
                    cryo("network", "rm", json.loads(n)["Name"], timeout=60)
        except Exception:
            pass
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
        for pid in processes_referring_to(tmp):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for mp in mounts_under(tmp):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        for br in network_bridges(os.path.join(tmp, "root")):
            subprocess.run(["ip", "link", "del", br], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def network_bridges(root):
    """Every bridge of the daemon's networks (its cryo0 bridge too: it is the test's own)."""
    try:
        with open(os.path.join(root, "networks", "networks.json")) as f:
            return [n["bridge"] for n in json.load(f)["networks"] if n.get("bridge") and n["bridge"] != "cryo0"]
    except (OSError, ValueError, KeyError):
        return []


def wait_until(pred, timeout=10, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def test_help_for_every_command(cryo_env):
    cryo = cryo_env["cryo"]
    for cmd in (["run"], ["create"], ["start"], ["stop"], ["restart"], ["kill"], ["pause"], ["unpause"], ["rm"],
                ["ps"], ["inspect"], ["logs"], ["wait"], ["exec"], ["attach"], ["checkpoint", "create"],
                ["checkpoint", "ls"], ["checkpoint", "rm"], ["images"], ["load"], ["import"], ["rmi"],
                ["image", "inspect"], ["version"], ["info"], ["port"], ["network", "create"], ["network", "ls"],
                ["network", "inspect"], ["network", "rm"], ["checkpoint", "export"], ["container", "checkpoint"],
                ["container", "restore"]):
        r = cryo(*cmd, "--help", host=False)
        assert r.returncode == 0, (cmd, r.stderr)
        assert "USAGE: cryo " + " ".join(cmd) in r.stdout, (cmd, r.stdout)


def test_run_rm_echo_separates_streams_and_exit_code(cryo_env):
    cryo = cryo_env["cryo"]
    r = cryo("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
    r = cryo.ok("run", "--rm", "-e", "GREETING=hi there", "-w", "/tmp", "--hostname", "box",
                "busybox", "sh", "-c", 'echo "$GREETING"; pwd; hostname')
    assert r.stdout == "hi there\n/tmp\nbox\n"
    # --rm: nothing left behind
    assert cryo.ok("ps", "-aq").stdout.strip() == ""


def test_run_confinement_flags(cryo_env):
    """cryo's run has docker's confinement flags, with the same effect."""
    cryo = cryo_env["cryo"]
    profile = os.path.join(cryo_env["tmp"], "profile.json")
    with open(profile, "w") as f:
        json.dump({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}, f)
    r = cryo.ok("run", "--rm", "--network", "none", "--cap-drop", "ALL", "--cap-add", "kill", "--security-opt", "no-new-privileges",
                "busybox", "grep", "-E", "^(CapEff|NoNewPrivs|Seccomp):", "/proc/self/status")
    assert r.stdout.split() == ["CapEff:", "0000000000000020", "NoNewPrivs:", "1", "Seccomp:", "2"], r.stdout
    r = cryo("run", "--rm", "--network", "none", "--security-opt", "seccomp=" + profile, "busybox", "mkdir", "/x")
    assert r.returncode != 0 and "Operation not permitted" in r.stderr, r.stderr
    r = cryo.ok("run", "--rm", "--network", "none", "--pid", "host", "--device", "/dev/fuse:/dev/f:r", "busybox", "sh", "-c",
                "readlink /proc/self/ns/pid; ls -l /dev/f")
    assert r.stdout.splitlines()[0] == os.readlink("/proc/self/ns/pid"), r.stdout
    assert re.search(r" 10,\s+229 .*/dev/f$", r.stdout, re.M), r.stdout
    r = cryo("run", "--rm", "--ipc", "container:x", "busybox", "true")
    assert r.returncode == 125 and "IpcMode" in r.stderr, (r.returncode, r.stderr)


def test_run_interactive_stdin_and_entrypoint(cryo_env):
    cryo = cryo_env["cryo"]
    r = cryo("run", "--rm", "-i", "busybox", "cat", input="line one\nline two\n")
    assert (r.returncode, r.stdout) == (0, "line one\nline two\n"), r.stderr
    r = cryo.ok("run", "--rm", "--entrypoint", "echo", "busybox", "via", "entrypoint")
    assert r.stdout == "via entrypoint\n"


def test_detached_lifecycle_ps_logs_exec_stop_rm(cryo_env):
    cryo = cryo_env["cryo"]
    r = cryo.ok("run", "-d", "--name", "web", "--memory", "64m", "--pids-limit", "64", "busybox", "sh", "-c",
                "echo warn >&2; sleep 0.3; echo started; while true; do sleep 1; done")
    cid = r.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid), r.stdout
    ps = cryo.ok("ps").stdout.splitlines()
    assert ps[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    row = next(l for l in ps[1:] if l.endswith("web"))
    assert row.startswith(cid[:12]) and " Up " in row
    assert cid[:12] in cryo.ok("ps", "-q").stdout.split()
    lines = [json.loads(l) for l in cryo.ok("ps", "--format", "json").stdout.splitlines()]
    mine = next(j for j in lines if j["Names"] == "web")
    assert mine["ID"] == cid[:12] and mine["State"] == "running" and mine["Image"] == "busybox"

    assert wait_until(lambda: "started" in cryo("logs", "web").stdout)
    logs = cryo.ok("logs", "web")
    assert logs.stdout == "started\n" and logs.stderr == "warn\n"
    assert cryo.ok("logs", "--tail", "1", "web").stdout == "started\n"
    ts = cryo.ok("logs", "-t", "web").stdout
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z started\n", ts), ts

    r = cryo("exec", "web", "sh", "-c", "echo hi; echo bad >&2; exit 5")
    assert (r.returncode, r.stdout, r.stderr) == (5, "hi\n", "bad\n")
    r = cryo.ok("exec", "-e", "X=42", "-w", "/etc", "web", "sh", "-c", 'echo "$X $(pwd)"')
    assert r.stdout == "42 /etc\n"
    assert cryo("exec", "-i", "web", "cat", input="piped\n").stdout == "piped\n"
    assert cryo.ok("exec", "-d", "web", "sh", "-c", "echo bg > /tmp/bg").stdout == ""
    assert wait_until(lambda: cryo("exec", "web", "cat", "/tmp/bg").stdout == "bg\n")

    info = json.loads(cryo.ok("inspect", "web").stdout)
    assert isinstance(info, list) and info[0]["Id"] == cid and info[0]["State"]["Running"] is True
    assert info[0]["HostConfig"]["Memory"] == 64 * 1024 * 1024 and info[0]["HostConfig"]["PidsLimit"] == 64

    assert cryo.ok("pause", "web").stdout == "web\n"
    assert json.loads(cryo.ok("inspect", "web").stdout)[0]["State"]["Status"] == "paused"
    assert cryo.ok("unpause", "web").stdout == "web\n"

    t0 = time.time()
    assert cryo.ok("stop", "-t", "1", "web").stdout == "web\n"
    assert time.time() - t0 < 10
    assert cid[:12] not in cryo.ok("ps", "-q").stdout
    assert "Exited (" in cryo.ok("ps", "-a").stdout
    assert cryo.ok("wait", "web").stdout.strip() in ("137", "143")
    assert cryo.ok("rm", "web").stdout == "web\n"
    r = cryo("inspect", "web")
    assert (r.returncode, r.stdout.strip(), r.stderr.strip()) == (1, "[]", "Error: No such object: web")


def test_create_start_attach_and_kill(cryo_env):
    cryo = cryo_env["cryo"]
    cid = cryo.ok("create", "--name", "later", "busybox", "sh", "-c", "echo from start; exit 7").stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    r = cryo("start", "-a", "later")
    assert (r.returncode, r.stdout) == (7, "from start\n"), r.stderr
    assert cryo.ok("rm", "later").stdout == "later\n"

    # The shell is pid 1 of its namespace: only signals it traps reach it.
    cryo.ok("run", "-d", "--name", "victim", "busybox", "sh", "-c",
            "trap 'exit 9' HUP; echo ready; while true; do sleep 0.1; done")
    assert wait_until(lambda: cryo("logs", "victim").stdout == "ready\n")
    assert cryo.ok("kill", "-s", "HUP", "victim").stdout == "victim\n"
    assert cryo.ok("wait", "victim").stdout.strip() == "9"
    r = cryo("kill", "victim")
    assert r.returncode == 1 and r.stderr.startswith("Error response from daemon: ")
    cryo.ok("rm", "-f", "victim")


def last_number(text):
    nums = [int(x) for x in text.split() if x.isdigit()]
    assert nums, text
    return nums[-1], nums


def test_checkpoint_create_and_restore_counter_continues(cryo_env):
    cryo = cryo_env["cryo"]
    cryo.ok("run", "-d", "--name", "counter", "busybox", "sh", "-c",
            "i=0; while true; do i=$((i+1)); echo $i; sleep 0.1; done")
    assert wait_until(lambda: len(cryo("logs", "counter").stdout.split()) >= 5)

    # Human output: the name on stdout (like docker), CRIU's numbers on stderr.
    r = cryo.ok("checkpoint", "create", "counter", "cp1")
    assert r.stdout == "cp1\n"
    m = re.search(r"freeze ([\d.]+) (ms|s).*memory dump ([\d.]+) (ms|s).*?(\d+) pages written.* ([\d.]+)(B|kB|MB|GB) written; total ([\d.]+) (ms|s)",
                  r.stderr)
    assert m, r.stderr
    assert int(m.group(5)) > 0
    assert json.loads(cryo.ok("inspect", "counter").stdout)[0]["State"]["Running"] is False
    before, _ = last_number(cryo.ok("logs", "counter").stdout)
    assert "cp1" in cryo.ok("checkpoint", "ls", "counter").stdout.split()

    r = cryo.ok("start", "--checkpoint", "cp1", "counter")
    assert r.stdout == ""
    assert wait_until(lambda: last_number(cryo("logs", "counter").stdout)[0] >= before + 5)
    _, nums = last_number(cryo.ok("logs", "counter").stdout)
    # The counter continued from where it was: never back to 1, no gap, no repeat.
    assert nums == list(range(1, len(nums) + 1)), nums[-20:]

    # --format json: the report, and the container keeps running with --leave-running.
    r = cryo.ok("checkpoint", "create", "--leave-running", "--format", "json", "counter", "cp2")
    report = json.loads(r.stdout)
    assert report["name"] == "cp2" and report["leftRunning"] is True
    assert report["durationMs"] > 0 and report["bytesWritten"] > 0
    assert report["criu"]["pagesWritten"] > 0 and report["criu"]["frozenTimeUs"] > 0
    assert json.loads(cryo.ok("inspect", "counter").stdout)[0]["State"]["Running"] is True
    names = [c["Name"] for c in json.loads(cryo.ok("checkpoint", "ls", "--format", "json", "counter").stdout)]
    assert "cp2" in names
    cryo.ok("checkpoint", "rm", "counter", "cp2")
    assert "cp2" not in cryo.ok("checkpoint", "ls", "counter").stdout.split()
    r = cryo("checkpoint", "create", "--leave-running", "counter", "cp1")
    assert r.returncode == 1 and "Error response from daemon:" in r.stderr
    cryo.ok("rm", "-f", "counter")


def test_unknown_container_and_image_errors(cryo_env):
    cryo = cryo_env["cryo"]
    for args in (["stop", "nope"], ["start", "nope"], ["logs", "nope"], ["exec", "nope", "true"],
                 ["rm", "nope"], ["checkpoint", "create", "nope", "cp"], ["wait", "nope"]):
        r = cryo(*args)
        assert r.returncode == 1, (args, r)
        assert r.stderr == "Error response from daemon: No such container: nope\n", (args, r.stderr)
    r = cryo("run", "--rm", "busybox:nope", "true")
    assert r.returncode == 125
    assert r.stderr.startswith("Unable to find image 'busybox:nope' locally\ncryo: Error response from daemon: ")
    r = cryo("run", "--rm", "busybox", "/no/such/binary")
    assert r.returncode in (126, 127), r
    r = cryo("run", "--bogus-flag", "busybox")
    assert r.returncode == 125 and "--bogus-flag" in r.stderr



def test_run_exit_status_of_a_command_that_cannot_be_run(cryo_env):
    """127 for a missing command, 126 for one that cannot be executed, from what cryod
    recorded (the errno of the exec), not from words in the message: a non-executable file
    named "no such file or directory" is 126."""
    cryo = cryo_env["cryo"]
    host = tempfile.mkdtemp(prefix="cryo-cli-errors-")
    try:
        os.chmod(host, 0o755)
        odd = os.path.join(host, "no such file or directory")
        with open(odd, "w") as f:
            f.write("not a program\n")
        os.chmod(odd, 0o644)
        r = cryo("run", "--rm", "busybox", "/no/such/binary")
        assert r.returncode == 127, r
        r = cryo("run", "--rm", "busybox", "/etc/passwd")
        assert r.returncode == 126, r
        r = cryo("run", "--rm", "-v", f"{host}:/x", "busybox", "/x/no such file or directory")
        assert r.returncode == 126, r
        r = cryo("run", "--rm", "-d", "busybox", "/no/such/binary")
        assert r.returncode == 127, r
    finally:
        shutil.rmtree(host, ignore_errors=True)

def test_host_resolution(cryo_env):
    cryo = cryo_env["cryo"]
    # CRYO_HOST alone
    r = cryo("version", host=False, env={"CRYO_HOST": cryo.host})
    assert r.returncode == 0 and "API version:      1.50" in r.stdout
    # -H wins over CRYO_HOST
    r = cryo("ps", env={"CRYO_HOST": "unix:///nonexistent/cryo.sock"})
    assert r.returncode == 0, r.stderr
    r = cryo("ps", host=False, env={"CRYO_HOST": "unix:///nonexistent/cryo.sock"})
    assert r.returncode == 1 and "Cannot connect to the cryo daemon at unix:///nonexistent/cryo.sock" in r.stderr


def test_images_load_stdin_import_inspect_rmi(cryo_env):
    cryo = cryo_env["cryo"]
    with open(os.path.join(IMAGES, "busybox-oci.tar"), "rb") as f:
        r = subprocess.run([cryo.exe, "-H", cryo.host, "load"], stdin=f, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "Loaded image: busybox-oci:latest" in r.stdout, r.stderr
    r = cryo.ok("import", os.path.join(IMAGES, "busybox-rootfs.tar.gz"), "imported:v1")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", r.stdout), r.stdout
    table = cryo.ok("images").stdout.splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert any(l.split()[:2] == ["imported", "v1"] for l in table)
    assert all(re.fullmatch(r"[0-9a-f]{12}", i) for i in cryo.ok("images", "-q").stdout.split())
    info = json.loads(cryo.ok("image", "inspect", "imported:v1").stdout)
    assert info[0]["RepoTags"] == ["imported:v1"]
    assert cryo.ok("run", "--rm", "imported:v1", "/bin/busybox", "echo", "imported ok").stdout == "imported ok\n"
    r = cryo.ok("rmi", "imported:v1")
    assert "Untagged: imported:v1" in r.stdout
    r = cryo("image", "inspect", "imported:v1")
    assert r.returncode == 1 and "No such image" in r.stderr


# --- networking: network create/ls/inspect/rm, -p/-P/--ip/--network, port, ps PORTS,
# checkpoint --tcp-established. Networks on random 198.19.x.0/24 subnets, ports on 127.0.0.1.


def make_network(cryo, *extra):
    for _ in range(20):
        name = "cli" + uuid.uuid4().hex[:8]
        pre = f"198.19.{random.randint(1, 254)}"
        r = cryo("network", "create", "--subnet", f"{pre}.0/24", *extra, name)
        if r.returncode == 0:
            return name, pre, r.stdout.strip()
        assert "overlaps" in r.stderr, r.stderr
    pytest.fail("no free 198.19.x.0/24 subnet")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_network_create_ls_inspect_rm(cryo_env):
    cryo = cryo_env["cryo"]
    name, pre, nid = make_network(cryo, "--label", "team=a", "--internal")
    assert re.fullmatch(r"[0-9a-f]{64}", nid), nid
    table = cryo.ok("network", "ls").stdout.splitlines()
    assert table[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert any(l.split()[:4] == [nid[:12], name, "bridge", "local"] for l in table[1:]), table
    assert nid[:12] in cryo.ok("network", "ls", "-q").stdout.split()
    lines = [json.loads(l) for l in cryo.ok("network", "ls", "--format", "json").stdout.splitlines()]
    mine = [l for l in lines if l["Name"] == name]
    assert mine and mine[0]["Labels"] == "team=a" and mine[0]["Internal"] == "true", lines
    assert "cryo0" in [l["Name"] for l in lines]
    info = json.loads(cryo.ok("network", "inspect", name).stdout)
    assert info[0]["Id"] == nid and info[0]["IPAM"]["Config"][0]["Subnet"] == f"{pre}.0/24"
    assert info[0]["Internal"] is True and info[0]["Labels"] == {"team": "a"}
    # Refusals: overlapping subnet (nothing created), unknown names, cryo0, a gateway without subnet.
    r = cryo("network", "create", "--subnet", f"{pre}.128/25", name + "x")
    assert r.returncode == 1 and "overlaps" in r.stderr and r.stderr.startswith("Error response from daemon:"), r.stderr
    assert name + "x" not in cryo.ok("network", "ls").stdout
    r = cryo("network", "inspect", name, "nosuchnet")
    assert r.returncode == 1 and "Error: No such network: nosuchnet" in r.stderr
    assert json.loads(r.stdout)[0]["Name"] == name
    r = cryo("network", "rm", "cryo0")
    assert r.returncode == 1 and "Error response from daemon" in r.stderr
    r = cryo("network", "create", "--gateway", "198.19.0.1", name + "y")
    assert r.returncode == 125, r.stderr
    assert cryo.ok("network", "rm", name).stdout.split() == [name]
    r = cryo("network", "rm", name)
    assert r.returncode == 1 and "not found" in r.stderr, r.stderr


def test_publish_ip_port_and_ps(cryo_env):
    cryo = cryo_env["cryo"]
    name, pre, _ = make_network(cryo)
    port = free_port()
    server = "while true; do echo hi | nc -l -p 80; done & while true; do echo ho | nc -l -p 81; done"
    cid = cryo.ok("run", "-d", "--name", "pub1", "--network", name, "--ip", f"{pre}.50", "--hostname", "web",
                  "-p", f"127.0.0.1:{port}:80", "--publish", "127.0.0.1::81", "--expose", "82", "-P",
                  "busybox", "sh", "-c", server).stdout.strip()
    info = json.loads(cryo.ok("inspect", cid).stdout)[0]
    assert info["NetworkSettings"]["Networks"][name]["IPAddress"] == f"{pre}.50"
    ports = info["NetworkSettings"]["Ports"]
    assert ports["80/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(port)}], ports
    random81 = int(ports["81/tcp"][0]["HostPort"])
    random82 = int(ports["82/tcp"][0]["HostPort"])
    assert random81 > 0 and random82 > 0 and len({port, random81, random82}) == 3, ports
    assert wait_until(lambda: fetch_or_none(port) == b"hi\n", timeout=15)
    assert wait_until(lambda: fetch_or_none(random81) == b"ho\n", timeout=15)
    # cryo port: every mapping, or one.
    lines = cryo.ok("port", "pub1").stdout.splitlines()
    assert lines == [f"80/tcp -> 127.0.0.1:{port}", f"81/tcp -> 127.0.0.1:{random81}", f"82/tcp -> 0.0.0.0:{random82}"], lines
    assert cryo.ok("port", "pub1", "81").stdout.strip() == f"127.0.0.1:{random81}"
    r = cryo("port", "pub1", "9999/udp")
    assert r.returncode == 1 and "No public port '9999/udp' published for pub1" in r.stderr
    # ps PORTS (table and json).
    row = [l for l in cryo.ok("ps").stdout.splitlines() if l.endswith("pub1")]
    assert row and f"127.0.0.1:{port}->80/tcp, 127.0.0.1:{random81}->81/tcp, 0.0.0.0:{random82}->82/tcp" in row[0], row
    js = [json.loads(l) for l in cryo.ok("ps", "--format", "json").stdout.splitlines()]
    assert [j["Ports"] for j in js if j["Names"] == "pub1"] == [f"127.0.0.1:{port}->80/tcp, 127.0.0.1:{random81}->81/tcp, 0.0.0.0:{random82}->82/tcp"]
    assert cryo.ok("exec", "pub1", "hostname").stdout.strip() == "web"
    # The same fixed address and host port are refused for a second container, nothing allocated.
    r = cryo("run", "-d", "--name", "pub2", "--network", name, "--ip", f"{pre}.50", "busybox", "sleep", "100")
    assert r.returncode == 125 and "already in use" in r.stderr, r.stderr
    r = cryo("run", "-d", "--name", "pub3", "--network", name, "-p", f"127.0.0.1:{port}:80", "busybox", "sleep", "100")
    assert r.returncode == 125 and "is not available" in r.stderr, r.stderr
    # Bad specs are flag errors (125) before anything reaches the daemon.
    for spec in ("80-90:80-90", "x:80", "80/sctp"):
        r = cryo("run", "-p", spec, "busybox", "true")
        assert r.returncode == 125 and "invalid port specification" in r.stderr, (spec, r.stderr)
    cryo.ok("rm", "-f", "pub1", "pub2", "pub3")
    # Released: the address and the host port can be had again.
    cryo.ok("run", "-d", "--name", "pub4", "--network", name, "--ip", f"{pre}.50", "-p", f"127.0.0.1:{port}:80",
            "busybox", "sleep", "100")
    cryo.ok("rm", "-f", "pub4")
    cryo.ok("network", "rm", name)


def test_checkpoint_tcp_established_keeps_a_connection(cryo_env):
    cryo = cryo_env["cryo"]
    name, pre, _ = make_network(cryo)
    port = free_port()
    cryo.ok("run", "-d", "--name", "tcp1", "--network", name, "-p", f"127.0.0.1:{port}:7000",
            "busybox", "sh", "-c", "while true; do nc -l -p 7000 -e cat; done")
    sock = None
    for _ in range(100):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=2)
            sock.settimeout(30)
            sock.sendall(b"one\n")
            if sock.recv(100) == b"one\n":
                break
        except OSError:
            pass
        if sock:
            sock.close()
            sock = None
        time.sleep(0.1)
    assert sock is not None, "the echo server never answered"
    try:
        # Without --tcp-established CRIU refuses the established connection; the container runs on.
        r = cryo("checkpoint", "create", "tcp1", "nocp")
        assert r.returncode == 1 and "Error response from daemon" in r.stderr, r.stderr
        assert json.loads(cryo.ok("inspect", "tcp1").stdout)[0]["State"]["Running"] is True
        r = cryo.ok("checkpoint", "create", "--tcp-established", "tcp1", "cp1", timeout=120)
        assert r.stdout.strip() == "cp1"
        assert cryo.ok("start", "--checkpoint", "cp1", "tcp1", timeout=120).stdout == ""
        sock.sendall(b"two\n")
        assert sock.recv(100) == b"two\n"
    finally:
        sock.close()
    cryo.ok("rm", "-f", "tcp1")
    cryo.ok("network", "rm", name)
