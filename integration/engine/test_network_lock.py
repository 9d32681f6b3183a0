"""The network lock around a --tcp-established checkpoint and its restore, observed from
outside: the container's namespace (NetworkSettings.SandboxKey, a file cryod binds) is read
with `nsenter --net=FILE nft list table inet cryo-lock` while CRIU works, and CRIU's own logs
are read after.

- Dump: cryod's CRIU runs inside the container's namespace (so the images hold no network
  namespace); right after freezing, the runtime locks the namespace with cryo's nft table
  (NetworkLock: input and output dropped but for CRIU's mark; CRIU's own lock is skipped), so
  while the table is there a new connection to the container's listening port gets no
  answer; the --leave-running dump ends unlocked and the connection carries on. The log
  shows CRIU's lock and unlock steps, no lock scripts and no "script error".
- Restore: cryod locks the fresh namespace before the CNI plugins give it an address, and
  the runtime removes the lock at CRIU's pre-resume, right before the tasks run:
  restore.log has no iptables run at all, and afterwards the namespace holds no lock.

The windows are short (tenths of seconds), so the container holds ~250 MB of memory to make
the dump and restore last long enough to be seen; if the poller never sees the lock in the
dump window the test fails (it says so), it never passes on an unobserved lock. Addresses:
a 198.19.x.0/24 network; traffic only between the host and that bridge.
"""

import json
import socket
import subprocess
import threading
import time

import pytest

from conftest import inspect, wait_for
from test_networking import ip_of, net  # noqa: F401  (the `net` fixture)

# 7000: an echo server for the established connection; 7001: a listener left idle, whose
# SYN-ACKs the kernel would send even for frozen tasks — unless the namespace is locked.
HOG = ("x=$(head -c 250000000 /dev/zero | tr '\\0' a); echo ready; "
       "while true; do nc -l -p 7001 </dev/null; done & while true; do nc -l -p 7000 -e cat; done")


def criu_chain(sandbox):
    """The lock's rules in the namespace: cryo's nft table `inet cryo-lock` (empty list: no lock)."""
    r = subprocess.run(["nsenter", f"--net={sandbox}", "nft", "list", "table", "inet", "cryo-lock"],
                       capture_output=True, text=True)
    return [l.strip() for l in r.stdout.splitlines() if l.strip()] if r.returncode == 0 else []


def locked(rules):
    """Whether the table's chains drop by policy (the lock is complete)."""
    return sum("policy drop" in r for r in rules) == 2


def probe(ip, timeout):
    """A new TCP connection to the idle listener ip:7001: "accepted", "refused" or "timeout"."""
    try:
        socket.create_connection((ip, 7001), timeout=timeout).close()
        return "accepted"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "timeout"


def answers(ip, timeout):
    return probe(ip, timeout) == "accepted"


class Client:
    """One established connection to the container's echo server."""

    def __init__(self, ip):
        self.s = socket.create_connection((ip, 7000), timeout=30)

    def echo(self, text):
        self.s.sendall(text.encode())
        data = b""
        while len(data) < len(text):
            chunk = self.s.recv(100)
            assert chunk, "connection closed"
            data += chunk
        return data.decode()


def start_hog(d, net, name):
    network, _ = net("lk")
    d.ok("run", "-d", "--name", name, "--network", network, "--memory", "512m", "busybox", "sh", "-c", HOG)
    wait_for(lambda: "ready" in d.docker("logs", name).stdout, timeout=120, what="the container's memory")
    ip = ip_of(d, name, network)
    wait_for(lambda: answers(ip, 2), what="the echo server")
    return ip, inspect(d, name)["NetworkSettings"]["SandboxKey"]


def checkpoint(d, name, cp, leave_running):
    body = json.dumps({"CheckpointID": cp, "Exit": not leave_running})
    return d.http("POST", f"/containers/{name}/checkpoints?tcp-established=1", body=body,
                  headers={"Content-Type": "application/json"}, timeout=300)


def test_dump_locks_the_namespace_and_leave_running_unlocks(docker_cli, net, name, criu):
    d = docker_cli
    ip, sandbox = start_hog(d, net, name)
    client = Client(ip)
    assert client.echo("a\n") == "a\n"
    assert criu_chain(sandbox) == []

    result = {}
    t = threading.Thread(target=lambda: result.update(r=checkpoint(d, name, "lk1", leave_running=True)))
    t.start()
    seen, probes = [], []
    while t.is_alive():
        rules = criu_chain(sandbox)
        # Only a table whose two chains drop by policy is the whole lock.
        if locked(rules):
            seen = rules
            # A new connection while the lock is in place must get no answer at all (no
            # SYN-ACK, no RST). Count the probe only if the lock was still there after it.
            outcome = probe(ip, 0.1)
            if locked(criu_chain(sandbox)):
                probes.append(outcome)
    t.join()
    status = result["r"][0]
    assert status == 201, result["r"]
    assert seen, "the lock was never seen in the container's namespace during the dump"
    assert probes and all(p == "timeout" for p in probes), f"probes while the namespace was locked: {probes}"
    # Unlocked after a --leave-running dump: no chain, the old connection and new ones work.
    assert criu_chain(sandbox) == []
    assert client.echo("b\n") == "b\n"
    assert answers(ip, 5)
    cid = inspect(d, name)["Id"]
    images = d.root / "containers" / cid / "checkpoints" / "lk1"
    assert not list(images.glob("netns-*.img")), "CRIU dumped the network namespace: it ran outside it"
    log = (images / "dump.log").read_text(errors="replace")
    for line in ("Lock network", "Unlock network"):
        assert line in log, line
    # Inside the namespace CRIU neither locks it nor asks us to (no notification).
    assert "Running network-lock scripts" not in log and "iptables" not in log
    assert "script error" not in log


def test_restore_keeps_the_namespace_locked_until_criu_unlocks(docker_cli, net, name, criu):
    d = docker_cli
    ip, sandbox = start_hog(d, net, name)
    client = Client(ip)
    assert client.echo("a\n") == "a\n"
    st, _, body = checkpoint(d, name, "lk2", leave_running=False)
    assert st == 201, body
    wait_for(lambda: not inspect(d, name)["State"]["Running"], what="the container to stop")

    result = {}
    t = threading.Thread(target=lambda: result.update(r=d.docker("start", "--checkpoint", "lk2", name, timeout=300)))
    t.start()
    seen = []
    while t.is_alive():
        seen = criu_chain(sandbox) or seen
    t.join()
    assert result["r"].returncode == 0, result["r"].stderr
    cid = inspect(d, name)["Id"]
    log = (d.root / "containers" / cid / "restore-work" / "restore.log").read_text(errors="replace")
    assert "Unlock network" in log
    assert "Bad rule" not in log and "iptables-restore" not in log, \
        "CRIU ran iptables at restore:\n" + "\n".join(l for l in log.splitlines() if "rror" in l or "iptables" in l)
    assert criu_chain(sandbox) == [], "the restored namespace is still locked"
    assert client.echo("b\n") == "b\n"
    print(f"lock seen by the poller during the restore: {bool(seen)}")
