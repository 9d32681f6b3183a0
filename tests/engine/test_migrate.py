"""`cryo migrate` between two cryods on a LAN of network namespaces (lan.py): hostA and hostB
each run a cryod of their own (own root, exec-root, socket, cgroup parent), a client
namespace talks to the containers over the LAN. Real CRIU, real CNI (macvlan and bridge).

- A TCP echo server on a macvlan network moves A→B→A→B with --tcp-established: the
  client's one connection carries on (it never reconnects), address and MAC stay, the target
  announces them, the writable layer (files created, changed, deleted) and the log arrive,
  the memory (a shell counter) goes on from where it was, and the source has no copy left.
- A bridge network with -p: the published port answers on B after the move.
- Refusals checked by the target before anything is frozen (the container keeps running on
  A, nothing is left on B): a name in use there, a network missing there or with another
  subnet, a bind-mounted path missing there, an unreachable target.
- Failure points (CRYO_FAULT kills a cryod at a step; CRIU killed during the dump): after
  both daemons are up again exactly one copy runs, never two, never none.

Addresses: a random 198.19.x.0/24 inside the test's own namespaces only.
"""

import json
import os
import subprocess
import tempfile
import time

import pytest

from conftest import BIN_DIR, IMAGES, Daemon, cleanup, wait_for
from lan import Lan
from test_macvlan import CLIENT, SERVER, SNIFFER, _requirements, endpoint, exchange, macvlan, read_line

COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /tmp/c.new; mv /tmp/c.new /tmp/count; echo tick $i; sleep 0.1; done"


class HostDaemon(Daemon):
    """A cryod in a host namespace; `fault` (POINT:kill) is armed for its next start."""
    fault = None

    def cryod_env(self):
        env = super().cryod_env()
        if self.fault:
            env["CRYO_FAULT"] = self.fault
        return env


def start_host(lan, role):
    base = tempfile.mkdtemp(prefix="cmig-", dir="/tmp")
    # Container ids repeat across the two daemons (a migrated container keeps its id): each
    # host has a cgroup parent of its own, as each machine of a real LAN would.
    d = HostDaemon(base, extra_args=["--cgroup-parent", f"/cryo-{role}-{lan.suffix}"], netns=lan.ns(role))
    d.bridge = "cryo0"
    d.subnet_prefix = f"198.18.{lan.third}"
    try:
        d.start()
        d.ok("load", "-i", IMAGES / "busybox.tar", timeout=120)
    except BaseException:
        cleanup(d)
        raise
    return d


@pytest.fixture
def lan():
    _requirements()
    with Lan(["hostA", "hostB"]) as l:
        yield l


@pytest.fixture
def two(lan):
    a, b = start_host(lan, "hostA"), start_host(lan, "hostB")
    yield a, b
    for d in (a, b):
        d.fault = None
        if d.proc is None or d.proc.poll() is not None:
            try:
                d.start()
            except Exception:
                pass
        cleanup(d)
        print(f"\ncryod log: {d.log_path}")


def cryo(d, *args, timeout=300):
    """The cryo CLI against d; CompletedProcess (text)."""
    return subprocess.run([str(BIN_DIR / "cryo"), "-H", d.host, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def migrate(src, dst, name, *flags, ok=True):
    r = cryo(src, "migrate", "--format", "json", *flags, name, dst.host)
    if ok:
        assert r.returncode == 0, f"migrate {name} {src.host} -> {dst.host} failed: {r.stderr}\nA: {src.log_tail(20)}\nB: {dst.log_tail(20)}"
        return json.loads(r.stdout)
    return r


def names(d, all=True):
    out = d.ok("ps", *(["-a"] if all else []), "--format", "{{.Names}} {{.State}}")
    return dict(line.split() for line in out.splitlines() if line.strip())


def counter(d, name):
    return int(d.ok("exec", name, "cat", "/tmp/count"))


# --------------------------------------------------------------------------------------------


def test_migrate_back_and_forth_keeps_tcp_ip_mac_files_memory_and_log(lan, two, criu):
    a, b = two
    macvlan(a, lan, "mv", host_index=0)
    macvlan(b, lan, "mv", host_index=1)
    # State of three kinds: memory (a counter in a shell beside the echo server, both under
    # the container's init: CRIU dumps that tree), the writable layer, the log.
    a.ok("run", "-d", "--name", "web", "--network", "mv", "busybox", "sh", "-c",
         f"({COUNTER}) > /dev/null & {SERVER}")
    ip, mac = endpoint(a, "web", "mv")
    wait_for(lambda: exchange(lan, ip, "hi") == "hi", timeout=30, what=f"the echo server at {ip}:7000")
    a.ok("exec", "web", "sh", "-c", "echo created > /new.txt; echo v1 > /changed.txt; rm /etc/group")
    a.ok("exec", "web", "sh", "-c", "echo v2 > /changed.txt")
    client = lan.spawn("client", "python3", "-c", CLIENT, ip, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert read_line(client, "connection to the server") == "connected"

    def echo(text):
        client.stdin.write(text + "\n")
        client.stdin.flush()
        return read_line(client, f"echo of {text!r}")

    assert echo("on A") == "echo on A"
    hosts = [a, b]
    for hop in range(3):
        src, dst = hosts[hop % 2], hosts[(hop + 1) % 2]
        before = counter(src, "web")
        sniffer = lan.spawn("client", "python3", "-c", SNIFFER, ip, stdout=subprocess.PIPE, text=True)
        assert read_line(sniffer, "sniffer start") == "ready"
        report = migrate(src, dst, "web", "--tcp-established")
        assert report["container"] == "web" and report["mode"] == "stop-and-copy"
        assert report["bytes"]["memory"] > 0 and report["bytes"]["images"] > 0
        assert report["downtimeMs"] > 0 and report["totalMs"] >= report["downtimeMs"]
        # The target announced the address once the source had let go.
        assert read_line(sniffer, f"gratuitous ARP for {ip} after hop {hop}") == mac
        sniffer.kill()
        assert "web" not in names(src), f"the source still lists the container after hop {hop}"
        assert names(dst)["web"] == "running"
        assert endpoint(dst, "web", "mv") == (ip, mac)
        assert echo(f"hop {hop}") == f"echo hop {hop}", f"the client's connection did not survive hop {hop}"
        after = counter(dst, "web")
        assert after >= before, f"the counter went back from {before} to {after}: memory was not carried"
        assert dst.ok("exec", "web", "cat", "/new.txt") == "created"
        assert dst.ok("exec", "web", "cat", "/changed.txt") == "v2"
        assert dst.docker("exec", "web", "ls", "/etc/group").returncode != 0, "a deleted file came back"
        assert lan.neighbor("client", ip) == mac
    client.stdin.close()


def test_migrate_sends_missing_image_layers_and_the_log(lan, two, criu):
    a, b = two
    a.ok("run", "-d", "--name", "c1", "--network", "none", "busybox", "sh", "-c", COUNTER)
    wait_for(lambda: "tick 3" in a.ok("logs", "c1"), timeout=30, what="the counter's log")
    b.ok("rmi", "busybox")
    report = migrate(a, b, "c1")
    assert report["layersSent"] >= 1 and report["bytes"]["layers"] > 0
    assert "busybox:latest" in b.ok("images", "--format", "{{.Repository}}:{{.Tag}}")
    logs = b.ok("logs", "c1").splitlines()
    assert logs[0] == "tick 1", "the log on B does not start with A's history"
    n = int(logs[-1].split()[1])
    wait_for(lambda: int(b.ok("logs", "c1").splitlines()[-1].split()[1]) > n + 2, timeout=30,
             what="the counter going on on B")
    assert "tick 1\ntick 2" in b.ok("logs", "c1"), "A's history is missing on B"


def test_migrate_bridge_network_publishes_the_port_on_the_target(lan, two, criu):
    a, b = two
    a.ok("run", "-d", "--name", "pub", "-p", "7000:7000", "busybox", "sh", "-c",
         "while true; do nc -l -p 7000 -e echo here; done")
    wait_for(lambda: exchange(lan, lan.ip("hostA"), "x") == "here", timeout=30, what="the published port on A")
    migrate(a, b, "pub")
    wait_for(lambda: exchange(lan, lan.ip("hostB"), "x") == "here", timeout=30, what="the published port on B")
    assert "pub" not in names(a)


@pytest.mark.parametrize("case", ["name-taken", "no-network", "other-subnet", "bind-missing", "unreachable"])
def test_migrate_refused_before_anything_is_frozen(lan, two, criu, case):
    a, b = two
    macvlan(a, lan, "mv", host_index=0)
    args = ["--network", "mv"]
    target = b.host
    if case == "name-taken":
        macvlan(b, lan, "mv", host_index=1)
        b.ok("create", "--name", "xx", "busybox", "true")
        want = "already exists"
    elif case == "no-network":
        want = "no network named mv"
    elif case == "other-subnet":
        b.ok("network", "create", "-d", "macvlan", "-o", "parent=eth0", "--subnet", "198.19.1.0/24", "mv")
        want = "subnet"
    elif case == "bind-missing":
        macvlan(b, lan, "mv", host_index=1)
        src = tempfile.mkdtemp(prefix="cmig-bind-")
        args += ["-v", f"{src}:/data"]
        want = src
    else:
        target = "unix:///nonexistent/cryo.sock"
        want = "cannot reach"
    a.ok("run", "-d", "--name", "xx", *args, "busybox", "sh", "-c", COUNTER)
    if case == "bind-missing":
        os.rmdir(src)   # gone on "B" (the same machine: it was only there for A's create)
    before = counter(a, "xx")
    r = cryo(a, "migrate", "xx", target)
    assert r.returncode == 1, r.stdout
    assert want in r.stderr, r.stderr
    assert names(a)["xx"] == "running"
    wait_for(lambda: counter(a, "xx") > before, timeout=10, what="the container still running on A")
    if case != "name-taken":
        assert "xx" not in names(b)
    assert os.listdir(b.root / "migrations") == [] if (b.root / "migrations").exists() else True


@pytest.mark.parametrize("side,point,where", [
    ("A", "migrate-out-dumped", "A"),        # A dies frozen, before sending anything: A resumes
    ("B", "migrate-in-restored", "A"),       # B dies after restoring, before answering: A resumes
    ("A", "migrate-out-committing", "B"),    # A dies after committing: B has it, A removes its copy
    ("B", "migrate-in-committed", "B"),      # B dies after committing: A asks, learns, lets go
    ("A", "checkpoint-frozen:kill-criu", "A"),  # CRIU dies during the dump: A resumes
])
def test_migrate_failure_points_leave_exactly_one_copy(lan, two, criu, side, point, where):
    a, b = two
    a.ok("run", "-d", "--name", "ff", "--network", "none", "busybox", "sh", "-c", COUNTER)
    wait_for(lambda: counter(a, "ff") > 2, timeout=30, what="the counter")
    victim = a if side == "A" else b
    victim.fault = point if ":" in point else point + ":kill"
    victim.restart()
    if side == "B" and point == "migrate-in-committed":
        # A asks B how it ended while B is down: B comes back within A's retries.
        def revive():
            wait_for(lambda: victim.proc.poll() is not None, timeout=120, what=f"cryod B killed at {point}")
            victim.fault = None
            victim.start()
        import threading
        t = threading.Thread(target=revive)
        t.start()
        r = cryo(a, "migrate", "ff", b.host)
        t.join()
    else:
        r = cryo(a, "migrate", "ff", b.host)
        if ":" not in point:
            # The victim died: bring it back (its recovery settles the migration).
            wait_for(lambda: victim.proc.poll() is not None, timeout=60,
                     what=f"cryod {side} killed at {point} (migrate: rc={r.returncode} {r.stderr})")
        victim.fault = None
        if victim.proc.poll() is not None:
            victim.start()
        else:
            victim.restart()
    if where == "A" and side == "B":
        assert r.returncode == 1, r.stdout
    ra, rb = names(a), names(b)
    state = {"A": ra.get("ff"), "B": rb.get("ff")}
    running = [h for h, s in state.items() if s == "running"]
    assert running == [where], f"after a kill at {point}: A={state['A']} B={state['B']} (want it running on {where} only)\nA log: {a.log_tail(15)}\nB log: {b.log_tail(15)}"
    holder = a if where == "A" else b
    n = counter(holder, "ff")
    wait_for(lambda: counter(holder, "ff") > n, timeout=10, what=f"the counter going on on {where}")
    other = b if where == "A" else a
    assert "ff" not in names(other), f"a copy is left on {'B' if where == 'A' else 'A'}: {names(other)}"
