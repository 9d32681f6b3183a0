#!/usr/bin/env python3
"""`cryo migrate` between two simulated hosts, against podman 4.3's checkpoint export/import and
runc + CRIU by hand (issue 11, live migration).

The hosts: a LAN of network namespaces (integration/engine/lan.py) with hostA, hostB, a namespace for
the runc anchor and a client, all on one bridge, addresses in a random 198.19.X.0/24 inside
those namespaces only. A cryod runs in hostA and one in hostB (nsenter --net; each with its own
--root, --exec-root, socket, --bridge, --default-subnet and --cgroup-parent), each with a
macvlan network "mv" on its eth0 with the same subnet and disjoint --ip-range, as
integration/engine/test_migrate.py sets them up. The container keeps its address and MAC across the
move.

The container (image: busybox + the static bench/fixtures/memecho.c): touches N MiB of
incompressible memory (0 = "small", and --big-mib, default 1024), then echoes UDP datagrams on
port 7001. A poller in the client namespace sends one datagram every --poll-ms (default 5 ms)
and records when each answer arrives (CLOCK_MONOTONIC, the same clock as this script's).

Per round, tools rotating (A B C, B C A, C A B, ...) after warm-up rounds:
  cryo    `cryo -H A migrate --format json NAME unix://B-socket` (stop-and-copy), wall time of
          the CLI; the container goes A→B, the next round B→A. Its report gives cryod's own
          downtime (frozen → committed), the phases and the bytes sent.
  podman  `podman container checkpoint --export F NAME` → `cp F F2` (the "transfer") →
          `podman container restore --import F2 --name NEW`, CLI, runc, --network none, one
          machine (podman has no second host here: export, copy, import on the same storage).
          The old container is removed after the import, untimed.
  runc    `runc checkpoint --image-path D ID` → `cp -a D D2` → `runc restore -d --image-path D2`,
          one machine, the container in the LAN's "runc" namespace (joined by path, so the
          address stays: the client polls it the same way, and its gap is measured too).
Downtime (client-visible) = the longest gap between two consecutive answers while the move
runs: the last answer from the old copy → the first answer from the new one (resolution: one
poll interval).
  cryo-pc `cryo migrate --post-copy` between the same two cryods (its own container): the copy
          on B runs once everything but the memory has arrived; the memory follows on demand and
          in the background, and the report says when the last page arrived (B's criu lazy-pages
          exited 0: A's frozen copy is removed then). Its rows: end to end (the CLI returns after
          the last page), the client-visible downtime, "all pages on B" (resumed → last page).
  criu, criu-lazy  an anchor: CRIU 4.2 alone moves a plain process with the same memory from
          hostA's namespace to hostB's over TCP (bench/criu-bare-migrate.sh): `criu` by its page
          server (dump → restore, end to end), `criu-lazy` by its lazy pages ("all pages" from
          the restore until `criu lazy-pages` exits). No container, cgroup, relay or TLS.

Targets (issue 11): 1 GiB stop-and-copy end to end <= 1.5 s and >= 5x faster than podman's
export → import; small container downtime <= 0.15 s; post-copy downtime <= 0.2 s at 1 GiB with
all pages on B within 2 s.

Run as root after scripts/setup.sh:
    sudo bench/migrate-bench.py --runs 5 --warmup 1 [--big-mib 1024] [--skip-big] [--json F]
"""
import argparse, json, os, shutil, signal, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration", "engine"))
from benchlib import API, ROOT, PodmanService, build, med, remove_work, sh, versions_line, wait_socket, write_json  # noqa: E402
from lan import Lan  # noqa: E402

IMAGE = "migbox:latest"
PORT = 7001
CGROUP_ROOT = "/sys/fs/cgroup"

# The client: one datagram every EVERY ms; answers' arrival times kept. Commands on stdin, one
# at a time: "last" prints the latest answer's time, "stop" prints every answer's time and ends.
POLLER = r"""
import json, os, select, socket, struct, sys, time
ip, port, every = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) / 1000
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setblocking(False)
got, seq = [], 0
nxt = time.monotonic()
end = nxt + float(sys.argv[4])
print("polling", flush=True)
while time.monotonic() < end:
    now = time.monotonic()
    if now >= nxt:
        try:
            s.sendto(struct.pack("!Q", seq), (ip, port))
        except OSError:
            pass
        seq += 1
        nxt = max(nxt + every, now)
    r, _, _ = select.select([s, 0], [], [], max(0.0, nxt - time.monotonic()))
    if s in r:
        while True:
            try:
                s.recv(64)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue
            got.append(time.monotonic())
    if 0 in r:
        cmd = os.read(0, 64).decode().strip()
        if cmd == "last":
            print(got[-1] if got else 0.0, flush=True)
        elif cmd in ("stop", ""):
            break
print(json.dumps({"sent": seq, "answers": got}), flush=True)
"""


class Poller:
    """POLLER in the client namespace, aimed at ip:PORT."""

    def __init__(self, lan, ip, every_ms, limit_s=1800):
        self.p = lan.spawn("client", sys.executable, "-c", POLLER, ip, PORT, every_ms, limit_s,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline().strip()
        if line != "polling":
            raise RuntimeError(f"the poller did not start (got {line!r})")

    def last(self):
        self.p.stdin.write("last\n")
        self.p.stdin.flush()
        return float(self.p.stdout.readline())

    def wait_answer_after(self, t, timeout=30):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.last() > t:
                return True
            time.sleep(0.02)
        return False

    def stop(self):
        self.p.stdin.write("stop\n")
        self.p.stdin.flush()
        out = self.p.stdout.readline()
        self.p.wait(timeout=10)
        return json.loads(out)["answers"]


def gap_ms(answers, t0, t1):
    """The longest silence between two answers that overlaps [t0, t1] (the move), in ms, and
    when the first answer after it came (ms after t0)."""
    best, resumed = 0.0, None
    for a, b in zip(answers, answers[1:]):
        if b >= t0 and a <= t1 and b - a > best:
            best, resumed = b - a, b
    return best * 1000, (resumed - t0) * 1000 if resumed else None


def poll_until_answered(lan, ip, timeout=120):
    """Waits until ip:PORT echoes (a short poller run)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r = lan.run("client", sys.executable, "-c",
                    "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.settimeout(0.2)\n"
                    "try:\n s.sendto(b'x',(sys.argv[1],int(sys.argv[2])));print(s.recv(8))\nexcept OSError:pass",
                    ip, PORT, check=False)
        if "x" in r.stdout:
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing answers at {ip}:{PORT}")


# --------------------------------------------------------------------------------------------
# cryo: two cryods, one per host namespace


class Host:
    def __init__(self, lan, role, index, work, bin_dir):
        self.lan, self.role, self.index, self.bin_dir = lan, role, index, bin_dir
        # Short paths: a monitor socket is EXEC_ROOT/mon/<64 hex>.sock and cryod reaches it
        # through SwiftNIO, which refuses paths over 103 bytes; /var/tmp/mb.XXXXXXXX/hostA/run
        # made 104, and cryod then took every container for exited ~2 s after its start.
        self.base = os.path.join(work, role[-1])
        os.makedirs(self.base)
        self.sock = os.path.join(self.base, "d.sock")
        self.host = "unix://" + self.sock
        self.target = self.host     # what the other cryod dials (--transport tls: tcp://)
        self.cgroup_parent = f"mb-{role}-{lan.suffix}"
        self.log = os.path.join(work, f"cryod-{role}.log")
        self.proc = None
        self.api = API(self.sock)

    def start(self, env=None, ca=None):
        cmd = ["nsenter", f"--net=/run/netns/{self.lan.ns(self.role)}", os.path.join(self.bin_dir, "cryod"),
               "--root", os.path.join(self.base, "root"), "--exec-root", os.path.join(self.base, "r"), "-H", self.host,
               "--bridge", "cryo0", "--default-subnet", f"198.18.{self.lan.third}.0/24",
               "--cgroup-parent", "/" + self.cgroup_parent]
        if ca:
            # As between two machines: the target is tcp://ITS-LAN-IP:2376, mutual TLS.
            certs = os.path.join(self.base, "tls")
            sh(os.path.join(self.bin_dir, "cryo"), "tls", "issue", "--ca", ca, "--name", self.role.lower(),
               "--ip", self.lan.ip(self.role), "--out", certs, stdout=subprocess.DEVNULL)
            self.target = f"tcp://{self.lan.ip(self.role)}:2376"
            cmd += ["-H", self.target, "--tlsverify", "--tlscacert", certs + "/ca.pem", "--tlscert", certs + "/cert.pem",
                    "--tlskey", certs + "/key.pem"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, env=env)
        wait_socket(self.sock, self.proc)
        lan = self.lan
        self.api.call("POST", "/v1.50/networks/create", {
            "Name": "mv", "Driver": "macvlan", "Options": {"parent": "eth0"},
            "IPAM": {"Config": [{"Subnet": lan.subnet, "Gateway": lan.addr(1), "IPRange": lan.ip_range(self.index)}]}})

    def cryo(self, *args, timeout=600):
        return subprocess.run([os.path.join(self.bin_dir, "cryo"), "-H", self.host, *map(str, args)],
                              capture_output=True, text=True, timeout=timeout)

    def names(self):
        return [c["Names"][0].lstrip("/") for c in self.api.call("GET", "/v1.50/containers/json?all=1")]

    def remove_all(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            for c in self.api.call("GET", "/v1.50/containers/json?all=1"):
                self.api.call("DELETE", f"/v1.50/containers/{c['Id']}?force=1", ok=(204, 404))
        except Exception as e:  # keep cleaning up
            print(f"cleanup: cryod {self.role}: {e}", file=sys.stderr)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        remove_cgroup_tree(self.cgroup_parent)


# This VM's balloon reports free guest memory to its host, which takes it back: touching it
# again costs a host fault per page (here ~0.4 s per GiB of memory still backed, 2-9 s per GiB
# of memory given back). How much the guest gave back while a move ran tells such a round apart.
REPORTED_KIB = "/sys/module/page_reporting/parameters/reported_kib"


def reported_kib():
    try:
        return int(open(REPORTED_KIB).read())
    except (OSError, ValueError):
        return None


def fresh_memory_ms_per_gib(mib=64):
    """Time to touch MIB of fresh anonymous memory, scaled to a GiB (a child process, so the
    memory goes back at its exit): how expensive new memory is on this machine right now."""
    code = ("import mmap,time\n"
            f"n={mib}<<20\n"
            "m=mmap.mmap(-1,n)\n"
            "t=time.monotonic()\n"
            "for i in range(0,n,4096): m[i]=1\n"
            "print(time.monotonic()-t)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    try:
        return float(r.stdout) * 1000 * 1024 / mib
    except ValueError:
        return None


def remove_cgroup_tree(name):
    """Kills what is left in /sys/fs/cgroup/*/NAME (and unified/NAME) and removes those cgroups:
    only the cgroup parent this script gave its own cryod."""
    dirs = [os.path.join(CGROUP_ROOT, h, name) for h in os.listdir(CGROUP_ROOT)] + [os.path.join(CGROUP_ROOT, name)]
    dirs = [d for d in dirs if os.path.isdir(d)]
    for d in dirs:
        if os.path.exists(os.path.join(d, "freezer.state")):
            try:
                open(os.path.join(d, "freezer.state"), "w").write("THAWED")
            except OSError:
                pass
        for sub, _, _ in os.walk(d):
            try:
                pids = open(os.path.join(sub, "cgroup.procs")).read().split()
            except OSError:
                continue
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
    for d in dirs:
        for _ in range(20):
            try:
                for sub in sorted((s for s, _, _ in os.walk(d)), key=len, reverse=True):
                    os.rmdir(sub)
                break
            except OSError:
                time.sleep(0.1)


class Cryo:
    name = "cryo"
    flags = ()

    def __init__(self, lan, a, b, every_ms):
        self.lan, self.hosts, self.every_ms = lan, [a, b], every_ms
        self.at = 0     # index of the host the container is on
        self.n = None
        self.ip = None

    def setup(self, name, mib):
        h = self.hosts[self.at]
        r = h.api.call("POST", f"/v1.50/containers/create?name={name}",
                       {"Image": IMAGE, "Cmd": ["/memecho", str(mib), str(PORT)], "HostConfig": {"NetworkMode": "mv"}})
        h.api.call("POST", f"/v1.50/containers/{r['Id']}/start")
        self.n = name
        self.ip = h.api.call("GET", f"/v1.50/containers/{name}/json")["NetworkSettings"]["Networks"]["mv"]["IPAddress"]
        poll_until_answered(self.lan, self.ip)

    def move(self):
        src, dst = self.hosts[self.at], self.hosts[1 - self.at]
        poller = Poller(self.lan, self.ip, self.every_ms)
        try:
            time.sleep(0.1)
            reported0 = reported_kib()
            t0 = time.monotonic()
            r = src.cryo("migrate", "--format", "json", *self.flags, self.n, dst.target)
            t1 = time.monotonic()
            reported1 = reported_kib()
            if r.returncode != 0:
                raise RuntimeError(f"cryo migrate {src.role} -> {dst.role} failed: {r.stderr.strip()}")
            if not poller.wait_answer_after(t1):
                raise RuntimeError(f"no answer from {self.ip} on {dst.role} within 30 s after the move")
        finally:
            answers = poller.stop()
        self.at = 1 - self.at
        if self.n not in dst.names() or self.n in src.names():
            raise RuntimeError(f"after the move: {src.role} has {src.names()}, {dst.role} has {dst.names()}")
        report = json.loads(r.stdout)
        gap, resumed = gap_ms(answers, t0, t1)
        out = {"total": (t1 - t0) * 1000, "gap": gap, "resumed": resumed, "report": report,
               "route": f"{src.role}->{dst.role}"}
        if reported0 is not None and reported1 is not None:
            out["reportedMiB"] = (reported1 - reported0) / 1024
        if report.get("pagesCompleteMs") is not None:
            out["pages"] = report["pagesCompleteMs"]
        return out


    def teardown(self):
        for h in self.hosts:
            if self.n in h.names():
                h.api.call("DELETE", f"/v1.50/containers/{self.n}?force=1", ok=(204, 404))
        self.n = None


class CryoPostCopy(Cryo):
    """cryo migrate --post-copy, its own container on the same two cryods."""
    name = "cryo-pc"
    flags = ("--post-copy",)

    def setup(self, name, mib):
        super().setup(name + "pc", mib)


# --------------------------------------------------------------------------------------------
# anchors


class Podman:
    name = "podman"

    def __init__(self, work):
        self.work = work
        self.pod = PodmanService(work)
        self.names = []
        self.k = 0

    def load(self, image_tar):
        self.pod.run("load", "-i", image_tar, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def setup(self, name, mib):
        self.base = name
        n = f"{name}-p0"
        self.pod.run("run", "-d", "--name", n, "--network", "none", IMAGE, "/memecho", str(mib), str(PORT),
                     stdout=subprocess.DEVNULL)
        self.names = [n]
        end = time.monotonic() + 300
        while b"ready" not in self.pod.run("logs", n, capture_output=True).stdout:
            if time.monotonic() > end:
                raise RuntimeError(f"podman: {n} never printed ready")
            time.sleep(0.05)

    def move(self):
        old = self.names[-1]
        self.k += 1
        new = f"{self.base}-p{self.k}"
        f = os.path.join(self.work, "podman-export.tar.gz")
        f2 = os.path.join(self.work, "podman-import.tar.gz")
        t0 = time.monotonic()
        self.pod.run("container", "checkpoint", "--export", f, old, stdout=subprocess.DEVNULL)
        t1 = time.monotonic()
        sh("cp", f, f2)
        t2 = time.monotonic()
        self.pod.run("container", "restore", "--import", f2, "--name", new, stdout=subprocess.DEVNULL)
        t3 = time.monotonic()
        self.names.append(new)
        size = os.path.getsize(f)
        self.pod.run("rm", "-f", old, stdout=subprocess.DEVNULL)
        self.names.remove(old)
        os.unlink(f)
        os.unlink(f2)
        return {"total": (t3 - t0) * 1000, "checkpoint": (t1 - t0) * 1000, "copy": (t2 - t1) * 1000,
                "restore": (t3 - t2) * 1000, "bytes": size}

    def teardown(self):
        for n in self.names:
            self.pod.run("rm", "-f", n, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.names = []


class Runc:
    """runc + CRIU by hand; the container joins the LAN namespace "runc" by path, so its
    address stays across checkpoint and restore and the client measures its gap too."""
    name = "runc"

    def __init__(self, lan, work, rootfs, every_ms):
        self.lan, self.work, self.every_ms = lan, work, every_ms
        self.state = os.path.join(work, "runc-state")
        self.bundle = os.path.join(work, "runc-bundle")
        shutil.copytree(rootfs, os.path.join(self.bundle, "rootfs"), symlinks=True)
        sh("runc", "spec", "--bundle", self.bundle)
        self.id = None
        self.ip = lan.ip("runc")

    def setup(self, name, mib):
        cfg = os.path.join(self.bundle, "config.json")
        c = json.load(open(cfg))
        c["process"]["terminal"] = False
        c["process"]["args"] = ["/memecho", str(mib), str(PORT)]
        c["root"]["readonly"] = False
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"] + \
            [{"type": "network", "path": f"/run/netns/{self.lan.ns('runc')}"}]
        c["linux"]["cgroupsPath"] = f"/mb-runc-{self.lan.suffix}/{name}"
        json.dump(c, open(cfg, "w"))
        self.id = f"mb-{self.lan.suffix}-{name}"
        sh("runc", "--root", self.state, "run", "-d", "--bundle", self.bundle, self.id,
           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        poll_until_answered(self.lan, self.ip)

    def move(self):
        d, d2 = os.path.join(self.work, "runc-images"), os.path.join(self.work, "runc-images-copy")
        w = os.path.join(self.work, "runc-work")
        for x in (d, d2, w):
            shutil.rmtree(x, ignore_errors=True)
        poller = Poller(self.lan, self.ip, self.every_ms)
        try:
            time.sleep(0.1)
            t0 = time.monotonic()
            sh("runc", "--root", self.state, "checkpoint", "--image-path", d, "--work-path", w, self.id)
            t1 = time.monotonic()
            sh("cp", "-a", d, d2)
            t2 = time.monotonic()
            sh("runc", "--root", self.state, "restore", "-d", "--image-path", d2, "--work-path", w, "--bundle", self.bundle,
               self.id, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            t3 = time.monotonic()
            if not poller.wait_answer_after(t3):
                raise RuntimeError("runc: no answer within 30 s after the restore")
        finally:
            answers = poller.stop()
        size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)
        for x in (d, d2, w):
            shutil.rmtree(x, ignore_errors=True)
        gap, resumed = gap_ms(answers, t0, t3)
        return {"total": (t3 - t0) * 1000, "checkpoint": (t1 - t0) * 1000, "copy": (t2 - t1) * 1000,
                "restore": (t3 - t2) * 1000, "gap": gap, "resumed": resumed, "bytes": size}

    def teardown(self):
        if self.id:
            sh("runc", "--root", self.state, "delete", "--force", self.id, check=False,
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.id = None

    def close(self):
        self.teardown()
        remove_cgroup_tree(f"mb-runc-{self.lan.suffix}")


class CriuBare:
    """CRIU alone (bench/criu-bare-migrate.sh): a plain process with the same memory moved from
    hostA's namespace to hostB's over TCP, by CRIU's page server (`criu`, stop-and-copy) or its
    lazy pages (`criu-lazy`, post-copy), with CRIU's own defaults and nothing of cryo: what
    CRIU by itself does on this machine."""

    def __init__(self, lan, work, memecho, mode):
        self.lan, self.work, self.memecho, self.mode = lan, work, memecho, mode
        self.name = "criu" if mode == "stop-and-copy" else "criu-lazy"
        self.mib = 0

    def setup(self, name, mib):
        self.mib = mib

    def move(self):
        r = subprocess.run([os.path.join(HERE, "criu-bare-migrate.sh"), self.mode, str(self.mib),
                            self.lan.ns("hostA"), self.lan.ip("hostA"), self.lan.ns("hostB"), self.lan.ip("hostB"),
                            self.memecho, self.work], capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            raise RuntimeError(f"{self.name}: {r.stderr.strip()[-2000:]}")
        return json.loads(r.stdout.strip().splitlines()[-1])

    def teardown(self):
        pass


# --------------------------------------------------------------------------------------------


def median_of(samples, key):
    xs = [s[key] for s in samples if s.get(key) is not None]
    return med([x / 1000 for x in xs]) if xs else None


def fmt(v):
    if v is None:
        return "–"
    return f"{v:.1f} ms" if v < 1000 else f"{v / 1000:.2f} s"


def mib(n):
    return f"{n / 1048576:.1f} MiB" if n >= 1 << 20 else f"{n / 1024:.1f} KiB"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--skip-big", action="store_true", help="the small container only")
    ap.add_argument("--skip-small", action="store_true", help="the big container only")
    ap.add_argument("--poll-ms", type=float, default=5.0, help="the client's interval (default 5 ms; the issue asks <= 10)")
    ap.add_argument("--only", choices=("cryo", "cryo-pc", "podman", "runc", "criu", "criu-lazy"), action="append",
                    help="run only these tools (repeatable; to debug: no ratios for missing ones)")
    ap.add_argument("--bin-dir", help="directory with cryod, cryo, cryo-monitor, cryo-runtime (default: build release)")
    ap.add_argument("--cryod-env", action="append", default=[], metavar="K=V",
                    help="extra environment for both cryods (e.g. CRYO_TRACE=1: step timings in their logs)")
    ap.add_argument("--keep-logs", metavar="DIR", help="copy both cryods' logs to DIR at the end")
    ap.add_argument("--json", help="also write the medians, ratios and targets to this file (bench/all)")
    ap.add_argument("--transport", choices=("unix", "tls"), default="unix",
                    help="how cryod A reaches cryod B: its unix socket (default), or tcp:// with mutual TLS on the "
                         "LAN, as between two machines (every byte encrypted and decrypted once)")
    ap.add_argument("--probe-memory", action="store_true",
                    help="before each move, time touching 64 MiB of fresh memory (ms per GiB): on this VM, memory "
                         "its host has taken back costs 5-20x more to touch, and the restore allocates 1 GiB")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("migrate-bench: run as root")
    tools = a.only or ["cryo", "cryo-pc", "podman", "runc", "criu", "criu-lazy"]
    with_cryo = "cryo" in tools or "cryo-pc" in tools
    bin_dir = a.bin_dir or (build() if with_cryo else None)
    work = tempfile.mkdtemp(prefix="mb.", dir="/var/tmp")
    hosts, live, runc, podman = [], [], None, None
    results = {}
    sizes = ([] if a.skip_small else [("small", 0)]) + ([] if a.skip_big else [(f"{a.big_mib} MiB", a.big_mib)])
    lan = Lan(["hostA", "hostB", "runc"])
    try:
        lan.__enter__()
        rootfs = os.path.join(work, "rootfs")
        sh("bash", os.path.join(ROOT, "scripts", "make-busybox-rootfs.sh"), rootfs, stdout=subprocess.DEVNULL)
        sh("gcc", "-static", "-O2", "-o", os.path.join(rootfs, "memecho"), os.path.join(HERE, "fixtures", "memecho.c"))
        image_tar = os.path.join(work, "image.tar")
        sh(sys.executable, os.path.join(ROOT, "scripts", "make-image.py"), "--rootfs", rootfs, "--tag", IMAGE,
           "-o", image_tar, stdout=subprocess.DEVNULL)
        engines = []
        if with_cryo:
            env = dict(os.environ, **dict(kv.split("=", 1) for kv in a.cryod_env))
            ca = None
            if a.transport == "tls":
                ca = os.path.join(work, "ca")
                sh(os.path.join(bin_dir, "cryo"), "tls", "init", "--dir", ca, "--name", "migrate-bench",
                   stdout=subprocess.DEVNULL)
            for i, role in enumerate(("hostA", "hostB")):
                h = Host(lan, role, i, work, bin_dir)
                hosts.append(h)
                h.start(env, ca)
                h.api.upload("/v1.50/images/load?quiet=1", image_tar)
            if "cryo" in tools:
                engines.append(Cryo(lan, hosts[0], hosts[1], a.poll_ms))
            if "cryo-pc" in tools:
                engines.append(CryoPostCopy(lan, hosts[0], hosts[1], a.poll_ms))
        if "podman" in tools:
            podman = Podman(work)
            podman.load(image_tar)
            engines.append(podman)
        if "runc" in tools:
            runc = Runc(lan, work, rootfs, a.poll_ms)
            engines.append(runc)
        for mode, tool in (("stop-and-copy", "criu"), ("lazy", "criu-lazy")):
            if tool in tools:
                engines.append(CriuBare(lan, work, os.path.join(rootfs, "memecho"), mode))
        print(f"machine: {os.uname().release}, {os.cpu_count()} cpus; cryod {bin_dir}; transport {a.transport}")
        print(versions_line())
        print(f"LAN {lan.subnet} (namespaces *-{lan.suffix}); client polls UDP every {a.poll_ms:g} ms; work dir {work}")

        for label, m in sizes:
            name = f"mig{m}"
            for e in engines:
                live.append(e)
                e.setup(name, m)
            samples = {e.name: [] for e in engines}
            for i in range(a.warmup + a.runs):
                k = i % len(engines)
                line = []
                for e in engines[k:] + engines[:k]:
                    probe = fresh_memory_ms_per_gib() if a.probe_memory else None
                    s = e.move()
                    if probe is not None:
                        s["probe"] = probe
                    if i >= a.warmup:
                        samples[e.name].append(s)
                    extra = f", gap {s['gap']:.0f} ms" if "gap" in s else ""
                    if "report" in s:
                        extra += " (" + ", ".join(f"{ph['name']} {ph['ms']:.0f}" for ph in s["report"]["phases"]
                                                  if ph["name"] not in ("check", "layers")) + ")"
                    if "probe" in s:
                        extra += f", fresh memory {s['probe']:.0f} ms/GiB before"
                    if "reportedMiB" in s:
                        extra += f", {s['reportedMiB']:.0f} MiB given back to the VM host during it"
                    line.append(f"{e.name} {s['total']:.0f} ms{extra}")
                print(f"  {label}, round {i}{' (warm-up)' if i < a.warmup else ''}: " + "; ".join(line), flush=True)
            for e in engines:
                e.teardown()
                live.remove(e)
            results[label] = samples
    finally:
        for e in live:
            try:
                e.teardown()
            except Exception as err:  # keep cleaning up
                print(f"cleanup: {e.name}: {err}", file=sys.stderr)
        if runc is not None:
            runc.close()
        for h in hosts:
            h.remove_all()
            h.stop()
        if a.keep_logs:
            os.makedirs(a.keep_logs, exist_ok=True)
            for h in hosts:
                if os.path.exists(h.log):
                    shutil.copy(h.log, a.keep_logs)
        lan.close()
        remove_work(work)

    report(a, results, tools)


def report(a, results, tools):
    big = f"{a.big_mib} MiB"
    print(f"\nmedians of {a.runs} rounds (after {a.warmup} warm-up), tools rotating each round")
    rows = []
    for label, s in results.items():
        c, p, r = s.get("cryo", []), s.get("podman", []), s.get("runc", [])
        pc = s.get("cryo-pc", [])
        print(f"\n{label} container")
        print(f"{'':<34}{'cryo':>12}{'podman':>12}{'runc+CRIU':>12}")
        print(f"{'end to end':<34}{fmt(median_of(c, 'total')):>12}{fmt(median_of(p, 'total')):>12}{fmt(median_of(r, 'total')):>12}")
        print(f"{'client-visible downtime':<34}{fmt(median_of(c, 'gap')):>12}{'(no net)':>12}{fmt(median_of(r, 'gap')):>12}")
        print(f"{'  checkpoint / export':<34}{'':>12}{fmt(median_of(p, 'checkpoint')):>12}{fmt(median_of(r, 'checkpoint')):>12}")
        print(f"{'  copy':<34}{'':>12}{fmt(median_of(p, 'copy')):>12}{fmt(median_of(r, 'copy')):>12}")
        print(f"{'  restore / import':<34}{'':>12}{fmt(median_of(p, 'restore')):>12}{fmt(median_of(r, 'restore')):>12}")
        if c:
            print(f"{'cryod downtime (frozen→committed)':<34}{fmt(med([x['report']['downtimeMs'] / 1000 for x in c])):>12}")
            print(f"{'first answer after start of move':<34}{fmt(median_of(c, 'resumed')):>12}")
            names = [ph["name"] for ph in c[0]["report"]["phases"]]
            for n in names:
                v = med([next(ph["ms"] for ph in x["report"]["phases"] if ph["name"] == n) / 1000 for x in c])
                print(f"{'  phase ' + n:<34}{fmt(v):>12}")
            b = c[-1]["report"]["bytes"]
            print(f"bytes sent by cryo (last round): memory {mib(b['memory'])}, images {mib(b['images'])}, "
                  f"rootfs {mib(b['rootfs'])}, layers {mib(b['layers'])}, log {b['log']} B")
        if pc:
            print(f"{'post-copy: end to end':<34}{fmt(median_of(pc, 'total')):>12}")
            print(f"{'post-copy: client-visible downtime':<34}{fmt(median_of(pc, 'gap')):>12}")
            print(f"{'post-copy: cryod downtime':<34}{fmt(med([x['report']['downtimeMs'] / 1000 for x in pc])):>12}")
            print(f"{'post-copy: all pages on B after':<34}{fmt(median_of(pc, 'pages')):>12}")
            for n in [ph["name"] for ph in pc[0]["report"]["phases"]]:
                v = med([next(ph["ms"] for ph in x["report"]["phases"] if ph["name"] == n) / 1000 for x in pc])
                print(f"{'  post-copy phase ' + n:<34}{fmt(v):>12}")
            b = pc[-1]["report"]["bytes"]
            print(f"bytes sent by cryo post-copy (last round): memory {mib(b['memory'])}, images {mib(b['images'])}, "
                  f"rootfs {mib(b['rootfs'])}, layers {mib(b['layers'])}, log {b['log']} B")
            big_or_small = label == big
            rows.append({"metric": f"{label}: end to end, post-copy (CLI returns after the last page)",
                         "values": {"cryo post-copy": median_of(pc, "total"), **({"cryo stop-and-copy": median_of(c, "total")} if c else {})},
                         "ratio_name": "", "ratio": None, "target": "–", "met": None})
            gap = median_of(pc, "gap")
            rows.append({"metric": f"{label}: client-visible downtime, post-copy", "values": {"cryo post-copy": gap},
                         "ratio_name": "", "ratio": None, "target": "<= 200 ms" if big_or_small else "–",
                         "met": gap <= 200 if big_or_small else None})
            pages = median_of(pc, "pages")
            rows.append({"metric": f"{label}: post-copy, all pages on B after it resumed", "values": {"cryo post-copy": pages},
                         "ratio_name": "", "ratio": None, "target": "<= 2 s" if big_or_small else "–",
                         "met": pages <= 2000 if big_or_small else None})
        if p:
            print(f"podman's export archive: {mib(p[-1]['bytes'])}; runc's image dir: {mib(r[-1]['bytes']) if r else '–'}")
        vals = {}
        if c:
            vals["cryo"] = median_of(c, "total")
        if p:
            vals["podman export→import"] = median_of(p, "total")
        if r:
            vals["runc+CRIU by hand"] = median_of(r, "total")
        if c and p:
            ratio = vals["podman export→import"] / vals["cryo"]
            if label == big:
                rows.append({"metric": f"{label}: end to end, stop-and-copy", "values": vals, "ratio_name": "podman/cryo",
                             "ratio": ratio, "target": ">= 5x faster than podman", "met": ratio >= 5})
            else:
                rows.append({"metric": f"{label}: end to end, stop-and-copy", "values": vals, "ratio_name": "podman/cryo",
                             "ratio": ratio, "target": "–", "met": None})
        if c and label == big:
            t = vals["cryo"]
            v2 = {k: v for k, v in vals.items() if k != "podman export→import"}
            rows.append({"metric": f"{label}: end to end, stop-and-copy", "values": v2, "ratio_name": "runc/cryo",
                         "ratio": v2["runc+CRIU by hand"] / t if r else None, "target": "<= 1.5 s", "met": t <= 1500})
        if c:
            gv = {"cryo": median_of(c, "gap")}
            if r:
                gv["runc+CRIU by hand"] = median_of(r, "gap")
            ratio = gv["runc+CRIU by hand"] / gv["cryo"] if r else None
            small = label == "small"
            rows.append({"metric": f"{label}: client-visible downtime", "values": gv, "ratio_name": "runc/cryo", "ratio": ratio,
                         "target": "<= 150 ms" if small else "– (stop-and-copy)", "met": gv["cryo"] <= 150 if small else None})
        bc, bl = s.get("criu", []), s.get("criu-lazy", [])
        if bc or bl:
            print(f"{'bare CRIU stop-and-copy: end to end':<34}{fmt(median_of(bc, 'total')):>12}")
            print(f"{'bare CRIU lazy: all pages after':<34}{fmt(median_of(bl, 'pages')):>12}")
        if label == big and bc:
            v = {"bare CRIU": median_of(bc, "total"), **({"cryo": median_of(c, "total")} if c else {})}
            rows.append({"metric": f"{label}: end to end, stop-and-copy, bare CRIU (anchor)", "values": v,
                         "ratio_name": "cryo/bare" if c else "", "ratio": v["cryo"] / v["bare CRIU"] if c else None,
                         "target": "(<= 1.5 s for cryo)", "met": None})
        if label == big and bl:
            v = {"bare CRIU lazy": median_of(bl, "pages"), **({"cryo post-copy": median_of(pc, "pages")} if pc else {})}
            rows.append({"metric": f"{label}: post-copy, all pages after the restore, bare CRIU (anchor)", "values": v,
                         "ratio_name": "cryo/bare" if pc else "", "ratio": v["cryo post-copy"] / v["bare CRIU lazy"] if pc else None,
                         "target": "(<= 2 s for cryo)", "met": None})
    # Every sample, in round order (this VM's memory and disk speed swing from round to round).
    print("\nsamples (ms, round order):")
    for label, s in results.items():
        for who, xs in s.items():
            print(f"  {label:<10}{who:<8}end to end " + " ".join(f"{x['total']:.0f}" for x in xs))
            if "gap" in xs[0]:
                print(f"  {label:<10}{who:<8}downtime   " + " ".join(f"{x['gap']:.0f}" for x in xs))
            if who == "cryo-pc":
                print(f"  {label:<10}{who:<8}all pages  " + " ".join(f"{x.get('pages', 0):.0f}" for x in xs))
                for n in ("dump", "transfer", "restore", "resume"):
                    print(f"  {label:<10}{who:<8}{n:<11}" + " ".join(
                        f"{next(ph['ms'] for ph in x['report']['phases'] if ph['name'] == n):.0f}" for x in xs))
            elif who == "cryo":
                for n in ("dump", "transfer", "restore", "commit"):
                    print(f"  {label:<10}{who:<8}{n:<11}" + " ".join(
                        f"{next(ph['ms'] for ph in x['report']['phases'] if ph['name'] == n):.0f}" for x in xs))
            elif who in ("criu", "criu-lazy"):
                for n in ("dump", "restore") + (("pages",) if who == "criu-lazy" else ()):
                    print(f"  {label:<10}{who:<8}{n:<11}" + " ".join(f"{x[n]:.0f}" for x in xs))
            else:
                for n in ("checkpoint", "copy", "restore"):
                    print(f"  {label:<10}{who:<8}{n:<11}" + " ".join(f"{x[n]:.0f}" for x in xs))
    if any("probe" in x or "reportedMiB" in x for xs in (v for r in results.values() for v in r.values()) for x in xs):
        for label, s in results.items():
            for who, xs in s.items():
                if any("probe" in x for x in xs):
                    print(f"  {label:<10}{who:<8}fresh mem  " + " ".join(f"{x.get('probe', 0):.0f}" for x in xs) + " (ms/GiB before)")
                if any("reportedMiB" in x for x in xs):
                    print(f"  {label:<10}{who:<8}given back " + " ".join(f"{x.get('reportedMiB', 0):.0f}" for x in xs) + " (MiB)")
    print("\ntargets:")
    for r in rows:
        verdict = "–" if r["met"] is None else ("met" if r["met"] else "NOT met")
        vals = ", ".join(f"{k} {fmt(v)}" for k, v in r["values"].items())
        ratio = f"{r['ratio_name']} {r['ratio']:.2f}x" if r["ratio"] is not None else ""
        print(f"  {r['metric']}: {vals}  {ratio}  target {r['target']}: {verdict}")
    write_json(a.json, "migrate", f"bench/migrate-bench.py --runs {a.runs} --warmup {a.warmup}" +
               (" --skip-big" if a.skip_big else f" --big-mib {a.big_mib}"), rows,
               [f"medians of {a.runs} rounds after {a.warmup} warm-up, tools rotating",
                f"two cryods in network namespaces of one machine (hostA, hostB), macvlan; a client polls UDP every {a.poll_ms:g} ms",
                "podman: checkpoint --export → cp → restore --import on one machine (no second host), --network none",
                "runc: checkpoint → cp -a → restore on one machine, the network namespace kept (joined by path)"])


if __name__ == "__main__":
    main()
