#!/usr/bin/env python3
"""Checkpoint/restore of a Redis container holding established TCP connections, cryod against
podman 4.3 (runc, CRIU 4.2), through their APIs (issue 4, networking speed).

Both engines run side by side on this machine with private state, each with its own bridge
network on a random 198.19.X.0/24 subnet (cryod's default network via -b/--default-subnet, a
`podman network create --subnet` CNI network for podman). Each runs redis:latest (the archive
from scripts/make-app-images.sh) and this script, in the host's network namespace, opens N
TCP connections to the container's address on the bridge — the same path for both engines.
Per round, engines alternating (A B, B A, ...) after warm-up rounds:
  untimed   every connection SETs its own key to a value new in this round
  checkpoint  cryod: POST /containers/{id}/checkpoints?tcp-established=1 {"Exit": true}
              podman: POST /libpod/containers/{name}/checkpoint?tcpEstablished=true
  restore     cryod: POST /containers/{id}/start?checkpoint=NAME
              podman: POST /libpod/containers/{name}/restore?tcpEstablished=true
  untimed   every connection — the same socket, never reconnected — answers PING, GETs its
            key's value of this round and reports the same CLIENT ID as when it connected
Times are end to end: request sent → response received. Prints medians and podman/cryod
ratios per connection count, against issue 4's target (cryod at least 2x faster).

Run as root after scripts/setup.sh and scripts/make-app-images.sh:
    sudo bench/net-bench.py --runs 7 --warmup 2 --conns 1,100
"""
import argparse, json, os, random, shutil, socket, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import PODMAN_API, PodmanService, build, med, remove_work, sh, start_cryod, stop, versions_line, write_json  # noqa: E402

IMAGE = "redis:latest"
PORT = 6379


def resp(*args):
    """A Redis command in RESP (an array of bulk strings)."""
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def bulk(s):
    b = s.encode()
    return b"$%d\r\n%s\r\n" % (len(b), b)


class Clients:
    """N established connections to one Redis server, held open for the container's life."""

    def __init__(self, ip, n, timeout=30):
        self.socks, self.ids = [], []
        for _ in range(n):
            s = socket.create_connection((ip, PORT), timeout=timeout)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.socks.append(s)
        for s in self.socks:
            s.sendall(resp("CLIENT", "ID"))
        for s in self.socks:
            line = self._line(s)
            assert line.startswith(b":"), line
            self.ids.append(int(line[1:]))

    @staticmethod
    def _line(s):
        buf = b""
        while not buf.endswith(b"\r\n"):
            c = s.recv(1)
            if not c:
                raise RuntimeError("connection closed by the server")
            buf += c
        return buf

    @staticmethod
    def _exactly(s, want, what):
        got = b""
        while len(got) < len(want):
            c = s.recv(len(want) - len(got))
            if not c:
                raise RuntimeError(f"{what}: connection closed by the server after {got!r}")
            got += c
        if got != want:
            raise RuntimeError(f"{what}: expected {want!r}, got {got!r}")

    def set_round(self, r):
        for i, s in enumerate(self.socks):
            s.sendall(resp("SET", f"nb:{i}", f"round{r}-conn{i}"))
        for i, s in enumerate(self.socks):
            self._exactly(s, b"+OK\r\n", f"SET on connection {i}")

    def verify_round(self, r):
        for i, s in enumerate(self.socks):
            s.sendall(resp("PING") + resp("GET", f"nb:{i}") + resp("CLIENT", "ID"))
        for i, s in enumerate(self.socks):
            want = b"+PONG\r\n" + bulk(f"round{r}-conn{i}") + b":%d\r\n" % self.ids[i]
            self._exactly(s, want, f"after restore, connection {i}")

    def close(self):
        for s in self.socks:
            s.close()


def wait_redis(ip, timeout=60):
    end = time.time() + timeout
    while True:
        try:
            with socket.create_connection((ip, PORT), timeout=2) as s:
                s.sendall(resp("PING"))
                if s.recv(7) == b"+PONG\r\n":
                    return
        except OSError:
            if time.time() > end:
                raise RuntimeError(f"redis at {ip}:{PORT} never answered")
        time.sleep(0.05)


def keep(src, dest):
    if os.path.exists(src):
        shutil.copy(src, dest)


class Cryo:
    name = "cryod"

    def __init__(self, api, root):
        self.api, self.root = api, root

    def run(self, name):
        r = self.api.call("POST", f"/v1.50/containers/create?name={name}", {"Image": IMAGE, "HostConfig": {"NetworkMode": "bridge"}})
        self.api.call("POST", f"/v1.50/containers/{r['Id']}/start")
        nets = self.api.call("GET", f"/v1.50/containers/{name}/json")["NetworkSettings"]["Networks"]
        return next(iter(nets.values()))["IPAddress"]

    def checkpoint(self, name, cp):
        return self.api.timed("POST", f"/v1.50/containers/{name}/checkpoints?tcp-established=1", {"CheckpointID": cp, "Exit": True})

    def restore(self, name, cp):
        return self.api.timed("POST", f"/v1.50/containers/{name}/start?checkpoint={cp}")

    def after_restore(self, name, cp, logs=None):
        if logs:
            cid = self.api.call("GET", f"/v1.50/containers/{name}/json")["Id"]
            keep(f"{self.root}/containers/{cid}/checkpoints/{cp}/dump.log", f"{logs}/cryod-{name}-dump.log")
            keep(f"{self.root}/containers/{cid}/restore-work/restore.log", f"{logs}/cryod-{name}-restore.log")
        self.api.call("DELETE", f"/v1.50/containers/{name}/checkpoints/{cp}")

    def remove(self, name):
        self.api.call("DELETE", f"/v1.50/containers/{name}?force=1", ok=(204, 404))


class Podman:
    name = "podman"

    def __init__(self, api, network):
        self.api, self.network = api, network

    def run(self, name):
        spec = {"name": name, "image": IMAGE, "netns": {"nsmode": "bridge"}, "Networks": {self.network: {}},
                "r_limits": [{"type": "nofile", "hard": 1024, "soft": 1024}, {"type": "nproc", "hard": 4096, "soft": 4096}]}
        r = self.api.call("POST", f"{PODMAN_API}/containers/create", spec)
        self.api.call("POST", f"{PODMAN_API}/containers/{r['Id']}/start")
        nets = self.api.call("GET", f"{PODMAN_API}/containers/{name}/json")["NetworkSettings"]["Networks"]
        return nets[self.network]["IPAddress"]

    keep_logs = False

    def checkpoint(self, name, cp):
        k = "&keep=true" if self.keep_logs else ""
        return self.api.timed("POST", f"{PODMAN_API}/containers/{name}/checkpoint?tcpEstablished=true{k}")

    def restore(self, name, cp):
        k = "&keep=true" if self.keep_logs else ""
        return self.api.timed("POST", f"{PODMAN_API}/containers/{name}/restore?tcpEstablished=true{k}")

    def after_restore(self, name, cp, logs=None):
        # Without keep=true podman's restore removes the checkpoint files itself.
        if logs:
            d = self.api.call("GET", f"{PODMAN_API}/containers/{name}/json")["StaticDir"]
            keep(f"{d}/dump.log", f"{logs}/podman-{name}-dump.log")
            keep(f"{d}/restore.log", f"{logs}/podman-{name}-restore.log")

    def remove(self, name):
        self.api.call("DELETE", f"{PODMAN_API}/containers/{name}?force=true", ok=(200, 204, 404))


def free_subnets(k):
    """K random 198.19.X.0/24 subnets no interface of this host uses (other tests pick the same way)."""
    used = sh("ip", "-4", "-o", "addr", capture_output=True, text=True).stdout
    choices = [x for x in range(2, 255) if f"198.19.{x}." not in used]
    return [f"198.19.{x}" for x in random.sample(choices, k)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--conns", default="1,100", help="connection counts, comma-separated (default 1,100)")
    ap.add_argument("--bin-dir", help="directory with cryod, cryo-monitor, cryo-runtime (default: build release)")
    ap.add_argument("--image", default=os.environ.get("CRYO_TEST_IMAGES", "/var/cache/cryo/test-images") + "/redis.tar")
    ap.add_argument("--cryod-env", action="append", default=[], metavar="K=V",
                    help="extra environment for cryod (e.g. CRYO_TRACE=1); its stderr then goes to --cryod-log")
    ap.add_argument("--only", choices=("cryod", "podman"), help="run one engine alone (to debug; no ratios)")
    ap.add_argument("--settle-ms", type=int, default=0,
                    help="untimed pause between checkpoint and restore (default 0: back to back), to see how much "
                         "of a restore is work left over from the checkpoint")
    ap.add_argument("--keep-logs", metavar="DIR", help="copy CRIU's dump.log and restore.log of each engine's last round to DIR")
    ap.add_argument("--cryod-log", help="file for cryod's stderr (default: discarded)")
    ap.add_argument("--json", help="also write the medians, ratios and targets to this file (bench/all)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("net-bench: run as root")
    if not os.path.exists(a.image):
        sys.exit(f"net-bench: {a.image} missing: run scripts/make-app-images.sh")
    conns = [int(x) for x in a.conns.split(",")]
    use_cryod, use_podman = a.only != "podman", a.only != "cryod"
    bin_dir = (a.bin_dir or build()) if use_cryod else None
    work = tempfile.mkdtemp(prefix="nb.", dir="/var/tmp")
    tag = os.path.basename(work)[3:9].lower().replace("_", "x")
    csub, psub = free_subnets(2)
    cbridge, pbridge, pnet = f"nbc{tag}", None, f"nb-{tag}"
    procs, live = [], []
    pod = None
    results = {}
    try:
        engines = []
        if use_cryod:
            env = dict(os.environ, **dict(kv.split("=", 1) for kv in a.cryod_env))
            cryod, capi = start_cryod(bin_dir, work, ["-b", cbridge, "--default-subnet", f"{csub}.0/24"], env=env, log=a.cryod_log)
            procs.append(cryod)
            capi.upload("/v1.50/images/load?quiet=1", a.image)
            engines.append(Cryo(capi, os.path.join(work, "croot")))
        if use_podman:
            pod = PodmanService(work, netns="bridge")
            pod.run("load", "-i", a.image, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # podman 4.3 names the bridge itself (the first free cni-podmanN)
            pod.run("network", "create", "--disable-dns", "--subnet", f"{psub}.0/24", pnet, stdout=subprocess.DEVNULL)
            pbridge = json.loads(pod.run("network", "inspect", pnet, capture_output=True).stdout)[0]["network_interface"]
            pserv, papi = pod.start()
            procs.append(pserv)
            engines.append(Podman(papi, pnet))
            engines[-1].keep_logs = bool(a.keep_logs)
        if a.keep_logs:
            os.makedirs(a.keep_logs, exist_ok=True)
        print(f"machine: {os.uname().release}, {os.cpu_count()} cpus; cryod {bin_dir}")
        print(versions_line())
        print(f"networks: cryod {csub}.0/24 on {cbridge}, podman {psub}.0/24 on {pbridge}; client in the host netns")

        for n in conns:
            name = f"redis{n}"
            clients = {}
            for e in engines:
                live.append((e, name))
                ip = e.run(name)
                wait_redis(ip)
                clients[e.name] = Clients(ip, n)
            ck = {e.name: [] for e in engines}
            rs = {e.name: [] for e in engines}
            for i in range(a.warmup + a.runs):
                got = {}
                for e in (engines if i % 2 == 0 else engines[::-1]):
                    cl = clients[e.name]
                    cl.set_round(i)
                    cp = f"cp{i}"
                    c = e.checkpoint(name, cp)
                    if a.settle_ms:
                        time.sleep(a.settle_ms / 1000)
                    r = e.restore(name, cp)
                    cl.verify_round(i)
                    e.after_restore(name, cp, a.keep_logs if i == a.warmup + a.runs - 1 else None)
                    got[e.name] = (c, r)
                    if i >= a.warmup:
                        ck[e.name].append(c)
                        rs[e.name].append(r)
                print(f"  {n} conn(s), round {i}{' (warm-up)' if i < a.warmup else ''}, checkpoint/restore: " +
                      ", ".join(f"{k} {c * 1000:.0f}/{r * 1000:.0f} ms" for k, (c, r) in got.items()), flush=True)
            for e in engines:
                clients[e.name].close()
                e.remove(name)
                live.remove((e, name))
            results[n] = (ck, rs)
    finally:
        for e, name in live:
            try:
                e.remove(name)
            except Exception as err:  # keep cleaning up
                print(f"cleanup: {e.name} {name}: {err}", file=sys.stderr)
        stop(procs)
        if pod is not None:
            pod.run("network", "rm", "-f", pnet, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for br in (cbridge, pbridge):
            if br:
                sh("ip", "link", "del", br, check=False, stderr=subprocess.DEVNULL)
        sh("rm", "-rf", f"/var/lib/cni/networks/{pnet}", check=False)
        remove_work(work)

    if a.only:
        for n, (ck, rs) in results.items():
            print(f"{n} conn(s), {a.only}: checkpoint {med(ck[a.only]):.1f} ms, restore {med(rs[a.only]):.1f} ms")
        return
    print(f"\nmedians of {a.runs} rounds (after {a.warmup} warm-up), engines alternating each round"
          f"{f', {a.settle_ms} ms pause before each restore' if a.settle_ms else ''}; target: podman/cryod >= 2x")
    for n, (ck, rs) in results.items():
        print(f"\n{n} established connection{'s' if n != 1 else ''}")
        print(f"{'metric':<14}{'cryod':>11}{'podman':>11}{'podman/cryod':>14}  target 2x")
        for label, t in (("checkpoint", ck), ("restore", rs),
                         ("both", {k: [x + y for x, y in zip(ck[k], rs[k])] for k in ck})):
            c, p = med(t["cryod"]), med(t["podman"])
            print(f"{label:<14}{c:>9.1f}ms{p:>9.1f}ms{p / c:>13.2f}x  {'met' if p / c >= 2 else 'NOT met'}")
    rows = []
    for n, (ck, rs) in results.items():
        for label, t in (("checkpoint", ck), ("restore", rs)):
            vals = {k: med(v) for k, v in t.items()}
            ratio = vals["podman"] / vals["cryod"]
            rows.append({"metric": f"Redis, {n} conn{'s' if n != 1 else ''}: {label}", "values": vals,
                         "ratio_name": "podman/cryod", "ratio": ratio, "target": ">= 2x faster than podman", "met": ratio >= 2})
    write_json(a.json, "net", f"bench/net-bench.py --runs {a.runs} --warmup {a.warmup} --conns {a.conns}", rows,
               [f"medians of {a.runs} rounds after {a.warmup} warm-up, engines alternating"])


if __name__ == "__main__":
    main()
