"""A LAN of network namespaces for multi-host tests: one "LAN" namespace holding a bridge, N
"host" namespaces (hostA, hostB, …) each with an `eth0` veth on that bridge and an address of
the LAN's subnet, and a client namespace on it. Every name carries a random suffix, so test
runs side by side never meet; nothing is created in (or touches) the host's own namespace:
the veth pairs are made inside the LAN namespace with their peer sent straight into the host
namespace. Addresses: a random 198.19.x.0/24 (inside 198.18.0.0/15), only inside these
namespaces.

    with Lan(["hostA", "hostB"]) as lan:
        lan.run("client", "ping", "-c1", lan.ip("hostA"))
        d = Daemon(base, netns=lan.ns("hostA"))

Cleanup (on exit, also after a failure, and safe to call twice): processes started through
`spawn` are killed, then every process still in one of the namespaces (`ip netns pids`), then
the namespaces are deleted (their links go with them).
"""

import os
import random
import signal
import subprocess
import time
import uuid


def _ip(*args, check=True):
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {r.stderr.strip()}")
    return r


class Lan:
    def __init__(self, hosts=("hostA", "hostB"), client="client"):
        self.suffix = uuid.uuid4().hex[:8]
        self.third = random.randint(2, 254)
        self.subnet = f"198.19.{self.third}.0/24"
        self.prefix = 24
        self.lan = f"lan-{self.suffix}"
        self.hosts = list(hosts)
        self.client = client
        self._ns = {}       # role -> namespace name
        self._addr = {}     # role -> IPv4 address on the LAN
        self._procs = []
        self._created = []  # namespaces made, in order

    # --- addresses

    def ns(self, role):
        return self._ns[role]

    def ip(self, role):
        return self._addr[role]

    def addr(self, last):
        """The LAN address 198.19.X.last."""
        return f"198.19.{self.third}.{last}"

    def ip_range(self, i):
        """A /27 of the LAN for host number i (0, 1, …): disjoint per host, for --ip-range."""
        return f"198.19.{self.third}.{64 + 32 * i}/27"

    # --- set up / tear down

    def __enter__(self):
        try:
            self._netns_add(self.lan)
            _ip("-n", self.lan, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.lan, "link", "set", "br0", "up")
            roles = self.hosts + ([self.client] if self.client else [])
            for i, role in enumerate(roles):
                ns = f"{role}-{self.suffix}"
                self._netns_add(ns)
                self._ns[role] = ns
                port = f"p{i}"
                # The veth is born in the LAN namespace, its peer goes straight to `ns`.
                _ip("-n", self.lan, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
                _ip("-n", self.lan, "link", "set", port, "master", "br0", "up")
                addr = self.addr(200 + i) if role == self.client else self.addr(2 + i)
                self._addr[role] = addr
                _ip("-n", ns, "addr", "add", f"{addr}/{self.prefix}", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
            return self
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()
        return False

    def _netns_add(self, name):
        _ip("netns", "add", name)
        self._created.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def close(self):
        for p in self._procs:
            if p.poll() is None:
                try:
                    p.kill()
                    p.wait(timeout=10)
                except Exception:
                    pass
        self._procs = []
        for ns in reversed(self._created):
            # Whatever still runs in the namespace (a daemon's children, a test's server).
            for _ in range(3):
                r = _ip("netns", "pids", ns, check=False)
                pids = [int(x) for x in r.stdout.split() if x.isdigit()]
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.2)
            _ip("netns", "del", ns, check=False)
        self._created = []

    # --- running things inside

    def run(self, role, *cmd, check=True, timeout=60, **kw):
        """Runs cmd in the namespace of `role` ("lan" for the LAN's own); returns CompletedProcess."""
        ns = self.lan if role == "lan" else self._ns[role]
        r = subprocess.run(["ip", "netns", "exec", ns, *map(str, cmd)], capture_output=True, text=True,
                           timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, cmd))} in {ns} failed ({r.returncode}): {r.stderr.strip()}")
        return r

    def spawn(self, role, *cmd, **kw):
        """Starts cmd in the namespace of `role`; killed at cleanup."""
        ns = self.lan if role == "lan" else self._ns[role]
        p = subprocess.Popen(["ip", "netns", "exec", ns, *map(str, cmd)], **kw)
        self._procs.append(p)
        return p

    def neighbor(self, role, ip):
        """The MAC `role`'s neighbour table holds for ip on eth0 (None if none)."""
        r = _ip("-n", self._ns[role], "neigh", "show", ip, "dev", "eth0", check=False)
        for line in r.stdout.splitlines():
            parts = line.split()
            if "lladdr" in parts:
                return parts[parts.index("lladdr") + 1]
        return None
