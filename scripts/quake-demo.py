#!/usr/bin/env python3
"""quake-demo.py --bin DIR --image quake.tar — the Quake demo's stage (scripts/quake-demo.sh
builds cryo and the image, then runs this).

Two simulated hosts on this machine: a LAN of network namespaces (integration/engine/lan.py:
hostA, hostB and a client on one bridge, 198.19.x.0/24), a cryod in hostA and one in hostB
(each its own --root, --exec-root, socket, default bridge and --cgroup-parent: container ids
repeat across daemons after a migration), and a macvlan network `quake` of the same subnet
on both (disjoint --ip-range per host). The OpenArena server runs with six bots on A; a
status poller in the client namespace (quake_status.py, from 100 source addresses) asks it
for its status ~100 times a second and gets ~10 answers a second (ioquake3's rate limits).
Then `cryo migrate quake tcp://B:2376` (mutual TLS), while the poller goes on; the demo checks that the
same game carries on on B — the same level start time (g_timestamp), the same players with
the scores they had, scores moving on afterwards — and prints the silence the client saw next
to the downtime cryo measured. Exit status 0 when the game carried on, 1 when not.

Everything is removed at the end, also after a failure or Ctrl-C: containers, daemons,
their mounts and cgroups, the namespaces. Addresses: only inside these namespaces.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "integration" / "engine"))
from lan import Lan  # noqa: E402

NAME = "quake"
BOTS = ["Sarge", "Major", "Grism", "Angelyss", "Kyonshi", "Gargoyle"]
BOT_SKILL = 5   # "nightmare": they frag often, so scores move every few seconds
PORT = 27960
POLL_INTERVAL = 0.01
# The poller's source addresses (last octet): outside the hosts (.2, .3), the client (.202)
# and the macvlan ranges of A and B (.64/27, .96/27). 100 of them: at one query per 10 ms
# round-robin each address sends once a second, ioquake3's per-address budget.
POLL_SOURCES = list(range(128, 200)) + list(range(203, 231))
GAME_LOG = "/tmp/oa/baseoa/games.log"


def say(msg=""):
    print(msg, flush=True)


class Failed(Exception):
    pass


class Host:
    """A cryod inside one host namespace of the LAN."""

    def __init__(self, lan, role, bin_dir, base, logs):
        self.lan, self.role, self.bin = lan, role, Path(bin_dir)
        self.base = Path(base) / role[-1]
        self.sock = f"{self.base}/d.sock"
        self.url = "unix://" + self.sock
        self.cgroup = f"/cryo-quake-{role}-{lan.suffix}"
        self.log = Path(logs) / f"cryod-{role}.log"
        self.proc = None
        # The daemons talk over TCP with mutual TLS: tcp://ITS-LAN-ADDRESS:2376.
        self.tcp = f"tcp://{lan.ip(role)}:2376"

    def start(self, ca):
        self.base.mkdir(parents=True)
        tls = f"{self.base}/tls"
        subprocess.run([str(self.bin / "cryo"), "tls", "issue", "--ca", ca, "--name", self.role.lower(),
                        "--ip", self.lan.ip(self.role), "--out", tls], check=True, capture_output=True)
        cmd = ["nsenter", f"--net=/run/netns/{self.lan.ns(self.role)}", str(self.bin / "cryod"),
               "--root", f"{self.base}/root", "--exec-root", f"{self.base}/run", "-H", self.url, "-H", self.tcp,
               "--tlsverify", "--tlscacert", f"{tls}/ca.pem", "--tlscert", f"{tls}/cert.pem", "--tlskey", f"{tls}/key.pem",
               "--bridge", "cryo0", "--default-subnet", f"198.18.{self.lan.third}.0/24",
               "--cgroup-parent", self.cgroup]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failed(f"cryod in {self.role} exited with {self.proc.returncode} at start:\n{self.log_tail()}")
            if self.cryo("version", check=False, timeout=5).returncode == 0:
                return
            time.sleep(0.1)
        raise Failed(f"cryod in {self.role} did not answer within 30 s:\n{self.log_tail()}")

    def cryo(self, *args, check=True, timeout=300):
        r = subprocess.run([str(self.bin / "cryo"), "-H", self.url, *map(str, args)], capture_output=True,
                           text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise Failed(f"cryo {' '.join(map(str, args))} on {self.role} failed ({r.returncode}): "
                         f"{r.stderr.strip()}\n{self.log_tail()}")
        return r

    def log_tail(self, n=15):
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return f"  (cryod {self.role} log, last lines)\n" + "\n".join("  | " + l for l in lines[-n:])

    def containers(self):
        """{name: state} of every container."""
        out = self.cryo("ps", "-a", "--format", "json").stdout
        return {c["Names"]: c["State"] for c in map(json.loads, out.splitlines()) if c}

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.cryo("rm", "-f", NAME, check=False, timeout=60)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


# --- cleanup of what the daemons leave behind (mounts, cgroups, monitors)


def kill_monitors(base):
    prefix = str(base).encode() + b"/"
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"cryo-monitor") and any(a.startswith(prefix) for a in argv[1:]):
            try:
                os.kill(int(d.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


def unmount_under(base):
    prefix = str(base).rstrip("/") + "/"
    for _ in range(5):
        mps = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            mp = line.split()[4].replace("\\040", " ")
            if mp.startswith(prefix):
                mps.append(mp)
        if not mps:
            return
        for mp in sorted(mps, key=lambda m: m.count("/"), reverse=True):
            if subprocess.run(["umount", mp], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", mp], capture_output=True)


def cgroup_dirs(parent):
    root = Path("/sys/fs/cgroup")
    dirs = [root / parent.lstrip("/")]    # cgroup v2
    dirs += [h / parent.lstrip("/") for h in root.iterdir() if h.is_dir()]
    return [d for d in dirs if d.is_dir()]


def remove_cgroup(parent):
    for d in cgroup_dirs(parent):
        for sub, _, _ in os.walk(d):
            try:
                Path(sub, "freezer.state").write_text("THAWED")
            except OSError:
                pass
            try:
                pids = Path(sub, "cgroup.procs").read_text().split()
            except OSError:
                continue
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
    time.sleep(0.2)
    for d in cgroup_dirs(parent):
        for _ in range(20):
            subs = sorted((Path(s) for s, _, _ in os.walk(d)), key=lambda p: len(p.parts), reverse=True)
            try:
                for s in subs:
                    s.rmdir()
                break
            except OSError:
                time.sleep(0.1)


# --- the poller


class Poller:
    """quake_status.py in the client namespace; its answers collected in self.answers."""

    def __init__(self, lan, server_ip):
        sources = [lan.addr(i) for i in POLL_SOURCES]
        for a in sources:
            lan.run("client", "ip", "addr", "add", f"{a}/32", "dev", "eth0")
        args = []
        for a in sources:
            args += ["--source", a]
        self.proc = lan.spawn("client", sys.executable, str(REPO / "scripts" / "quake_status.py"), server_ip,
                              "--port", PORT, "--interval", POLL_INTERVAL, *args,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.answers = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                a = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                self.answers.append(a)

    def last(self):
        with self.lock:
            return self.answers[-1] if self.answers else None

    def since(self, t):
        with self.lock:
            return [a for a in self.answers if a["t"] >= t]

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except Exception:
                self.proc.kill()


def scores(a):
    return {name: score for score, _, name in a["players"]}


def line(a, t0, where):
    sc = "  ".join(f"{n} {s}" for n, s in scores(a).items())
    return (f"  [{a['t'] - t0:6.2f}s] {where}: {a['info'].get('mapname')}, level started "
            f"{a['info'].get('g_timestamp')} | {sc}")


def game_log(host):
    """(level clock in seconds of the log's last line, number of level starts, the first line) of
    the server's games.log, read in the container: each line begins with the level time as
    "M:SS" (the game's clock, counted in server frames since the level started)."""
    text = host.cryo("exec", NAME, "cat", GAME_LOG).stdout
    lines = [l for l in text.splitlines() if l.strip()]
    if not lines:
        raise Failed(f"{GAME_LOG} on {host.role} is empty")
    clock = None
    for l in reversed(lines):
        head = l.split()[0]
        if ":" in head and head.replace(":", "").isdigit():
            m, sec = head.split(":")
            clock = int(m) * 60 + int(sec)
            break
    starts = sum(1 for l in lines if " InitGame:" in l or l.split(None, 1)[-1].startswith("InitGame:"))
    return clock, starts, lines[0]


def mmss(sec):
    return f"{sec // 60}:{sec % 60:02d}" if sec is not None else "?"


def summary(r):
    """cryo migrate's human report, from its JSON (the same text `cryo migrate` prints)."""
    def size(n):
        if n >= 1 << 20:
            return f"{n / 1048576:.1f} MiB"
        if n >= 1024:
            return f"{n / 1024:.1f} KiB"
        return f"{n} B"
    b = r["bytes"]
    word = "layer" if r["layersSent"] == 1 else "layers"
    phases = ", ".join(f"{p['name']} {round(p['ms'])} ms" for p in r["phases"])
    return (f"{r['container']} migrated to {r['target']} ({r['mode']}) in {r['totalMs'] / 1000:.1f} s; "
            f"downtime {round(r['downtimeMs'])} ms\n"
            f"  sent: memory {size(b['memory'])}, other images {size(b['images'])}, rootfs changes "
            f"{size(b['rootfs'])}, image layers {size(b['layers'])} ({r['layersSent']} {word}), log {size(b['log'])}\n"
            f"  phases: {phases}")


def watch(poller, until, t0, where, every=1.0):
    """Prints a status line about once a second until `until` (monotonic)."""
    shown = 0.0
    while time.monotonic() < until:
        a = poller.last()
        if a and a["t"] - shown >= every:
            say(line(a, t0, where))
            shown = a["t"]
        time.sleep(0.05)


def demo(args, lan, hosts, work):
    t0 = time.monotonic()
    a, b = hosts
    say(f"quake-demo: LAN {lan.subnet}: hostA {lan.ip('hostA')}, hostB {lan.ip('hostB')}, "
        f"client {lan.ip('client')} (namespaces *-{lan.suffix})")
    # One cluster CA; each daemon gets its certificate (its LAN address as SAN).
    ca = f"{work}/ca"
    subprocess.run([str(a.bin / "cryo"), "tls", "init", "--dir", ca, "--name", "quake-demo CA"], check=True, capture_output=True)
    for h in hosts:
        h.start(ca)
    say(f"quake-demo: cryod A at {a.url} and {a.tcp}, cryod B at {b.url} and {b.tcp} (mutual TLS)")
    # Both hosts hold the image (as hosts that pulled it would): the migration sends no layers.
    say(f"quake-demo: loading {args.image} on both hosts …")
    errors = []

    def load(h):
        try:
            h.cryo("load", "-i", args.image, timeout=600)
        except Exception as e:
            errors.append(e)
    threads = [threading.Thread(target=load, args=(h,)) for h in hosts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    for i, h in enumerate(hosts):
        h.cryo("network", "create", "-d", "macvlan", "-o", "parent=eth0", "--subnet", lan.subnet,
               "--gateway", lan.addr(1), "--ip-range", lan.ip_range(i), NAME)
    say(f"quake-demo: macvlan network '{NAME}' ({lan.subnet}) on both; A allocates from {lan.ip_range(0)}, "
        f"B from {lan.ip_range(1)}")

    cmd = ["+set", "fs_homepath", "/tmp/oa", "+set", "dedicated", "1", "+set", "sv_hostname", "cryo-quake-demo",
           "+set", "bot_enable", "1", "+set", "sv_maxclients", "8", "+set", "fraglimit", "0", "+set", "timelimit", "0",
           # The game's own log, flushed line by line: every line starts with the level clock.
           "+set", "g_log", "games.log", "+set", "g_logsync", "1",
           "+map", "oa_dm1"]
    for bot in BOTS:
        cmd += ["+addbot", bot, str(BOT_SKILL)]
    a.cryo("run", "-d", "--name", NAME, "--network", NAME, "cryo-quake:latest", *cmd)
    info = json.loads(a.cryo("inspect", NAME).stdout)[0]
    ip = info["NetworkSettings"]["Networks"][NAME]["IPAddress"]
    say(f"quake-demo: OpenArena server '{NAME}' started on A at {ip}:{PORT} (oa_dm1, bots {', '.join(BOTS)})")

    poller = Poller(lan, ip)
    try:
        return play(args, lan, hosts, poller, ip, t0)
    finally:
        poller.stop()


def play(args, lan, hosts, poller, ip, t0):
    a, b = hosts
    say(f"quake-demo: polling {ip} from {len(POLL_SOURCES)} client addresses, a getstatus every "
        f"{POLL_INTERVAL * 1000:.0f} ms")
    # The game is on when the bots are in and have scored a little.
    deadline = time.monotonic() + 90
    started = None
    shown = 0.0
    while time.monotonic() < deadline:
        x = poller.last()
        if x and started is None:
            started = time.monotonic()
        if x and x["t"] - shown >= 1.0:
            say(line(x, t0, "A"))
            shown = x["t"]
        if x and set(BOTS) <= set(scores(x)) and sum(scores(x).values()) >= 3 and \
                time.monotonic() - started >= args.before:
            break
        time.sleep(0.05)
    else:
        x = poller.last()
        raise Failed(f"the game on A did not get going within 90 s (last status: {x and scores(x)})")
    answers = poller.since(started)
    steady = [q["t"] - p["t"] for p, q in zip(answers, answers[1:])]
    say(f"quake-demo: on A: {len(answers)} answers in {answers[-1]['t'] - answers[0]['t']:.1f} s, "
        f"median gap {statistics.median(steady) * 1000:.0f} ms, longest {max(steady) * 1000:.0f} ms")

    clock_a, starts_a, head_a = game_log(a)
    say(f"quake-demo: the game's clock on A (games.log): {mmss(clock_a)} since the level started")
    say()
    say(f"quake-demo: cryo migrate {NAME} {b.tcp}")
    before = poller.last()
    m0 = time.monotonic()
    proc = subprocess.Popen([str(a.bin / "cryo"), "-H", a.url, "migrate", "--format", "json", NAME, b.tcp],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def relay():
        for l in proc.stderr:
            say(f"  cryo: {l.rstrip()}")
    rt = threading.Thread(target=relay, daemon=True)
    rt.start()
    out = proc.stdout.read()     # stderr is the relay's alone: communicate() would take lines from it
    proc.wait(timeout=600)
    rt.join(timeout=5)
    m1 = time.monotonic()
    if proc.returncode != 0:
        raise Failed(f"cryo migrate failed (exit {proc.returncode})\n{a.log_tail()}\n{b.log_tail()}")
    report = json.loads(out)
    for l in summary(report).splitlines():
        say("  " + l)
    say()

    # The silence: the longest gap between two answers, from the last answer before the
    # command on, once B has answered after the command returned (A's copy is gone by then).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not poller.since(m1):
        time.sleep(0.05)
    window = poller.since(before["t"])
    if not poller.since(m1) or len(window) < 2:
        raise Failed(f"the server at {ip} did not answer within 30 s after the migration")
    silence, before, first = max(((q["t"] - p["t"], p, q) for p, q in zip(window, window[1:])),
                                 key=lambda g: g[0])
    # Continuity as the client saw it.
    say(line(before, t0, "A") + "   <- the last answer before the silence")
    say(line(first, t0, "B") + "   <- the first answer after it")
    watch(poller, time.monotonic() + args.after, t0, "B")
    # The game must move on after the move: some score changes (bots frag every few seconds).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and scores(poller.last()) == scores(first):
        time.sleep(0.2)
    later = poller.last()
    if scores(later) != scores(first):
        say(line(later, t0, "B") + "   <- scores moved on since the first answer after the silence")

    # Where it runs now.
    on_a, on_b = a.containers(), b.containers()
    clock_b, starts_b, head_b = game_log(b) if on_b.get(NAME) == "running" else (None, None, None)
    say(f"quake-demo: the game's clock on B (games.log): {mmss(clock_b)} since the level started")

    sb, sf, sl = scores(before), scores(first), scores(later)
    checks = [
        ("the container runs on B and is gone from A", on_b.get(NAME) == "running" and NAME not in on_a,
         f"A: {on_a}, B: {on_b}"),
        ("the same server answers at the same address", first["info"].get("sv_hostname") == before["info"].get("sv_hostname"),
         f"{before['info'].get('sv_hostname')} -> {first['info'].get('sv_hostname')}"),
        ("same map", first["info"].get("mapname") == before["info"].get("mapname"),
         f"{before['info'].get('mapname')} -> {first['info'].get('mapname')}"),
        ("same level start time (g_timestamp): the level did not restart",
         first["info"].get("g_timestamp") == before["info"].get("g_timestamp"),
         f"{before['info'].get('g_timestamp')} -> {first['info'].get('g_timestamp')}"),
        ("same players", sorted(sf) == sorted(sb), f"{sorted(sb)} -> {sorted(sf)}"),
        # A bot's score moves by a frag or a suicide in the ~second between the two answers;
        # a restarted game would show every score back at 0.
        ("scores carried over (first answer on B = last on A, give or take a frag)",
         sum(sb.values()) > 0 and all(abs(sf.get(n, -99) - s) <= 2 for n, s in sb.items()),
         f"{sb} -> {sf}"),
        ("the game goes on on B (scores move after the migration)", sl != sf, f"{sf} -> {sl}"),
        ("the game's clock went on (games.log: same first line, one level start, later time on B)",
         head_b == head_a and starts_b == starts_a == 1 and clock_b is not None and clock_a is not None
         and clock_b > clock_a, f"{mmss(clock_a)} -> {mmss(clock_b)}, level starts {starts_a} -> {starts_b}"),
    ]
    say("quake-demo: checks")
    ok = True
    for what, passed, detail in checks:
        say(f"  {'ok  ' if passed else 'FAIL'} {what}: {detail}")
        ok = ok and passed
    say()
    say("quake-demo: numbers")
    say(f"  silence seen by the client:  {silence * 1000:.0f} ms (no status answer between "
        f"{before['t'] - t0:.2f}s and {first['t'] - t0:.2f}s; answers come ~10 a second, so the "
        f"server's own silence is up to ~100 ms shorter)")
    say(f"  cryo's downtime:             {report['downtimeMs']:.0f} ms (freeze on A → B committed)")
    say(f"  cryo migrate, end to end:    {(m1 - m0):.1f} s (report: {report['totalMs'] / 1000:.1f} s)")
    say(f"  memory sent:                 {report['bytes']['memory'] / 1048576:.1f} MiB")
    return ok, {"silence_ms": silence * 1000, "downtime_ms": report["downtimeMs"], "migrate_s": m1 - m0,
                "report": report}


def main():
    p = argparse.ArgumentParser(description="The Quake demo's stage (see scripts/quake-demo.sh).")
    p.add_argument("--bin", required=True, help="directory of cryod, cryo, cryo-monitor, cryo-runtime")
    p.add_argument("--image", required=True, help="quake.tar (scripts/make-quake-image.sh)")
    p.add_argument("--before", type=float, default=6.0, help="seconds of polling on A before the migration")
    p.add_argument("--after", type=float, default=5.0, help="seconds of polling on B after it")
    p.add_argument("--json", help="write the numbers here as JSON")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("quake-demo: run as root (namespaces, cryod, CRIU)")

    # SIGTERM/SIGHUP clean up like Ctrl-C.
    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)

    started = time.monotonic()
    # Short: <base>/A/run/mon/<64 hex>.sock.console must fit in a unix socket path.
    work = Path(tempfile.mkdtemp(prefix="cq-", dir="/tmp"))
    logs = Path(tempfile.mkdtemp(prefix="cryo-quake-demo-logs-", dir="/tmp"))
    lan = Lan(["hostA", "hostB"])
    hosts = []
    ok = False
    try:
        lan.__enter__()
        hosts = [Host(lan, "hostA", args.bin, work, logs), Host(lan, "hostB", args.bin, work, logs)]
        ok, numbers = demo(args, lan, hosts, work)
        numbers["demo_s"] = time.monotonic() - started
        if args.json:
            Path(args.json).write_text(json.dumps(numbers, indent=1) + "\n")
    except Failed as e:
        say(f"quake-demo: FAILED: {e}")
    except KeyboardInterrupt:
        say("quake-demo: interrupted, cleaning up")
    finally:
        say("quake-demo: cleaning up (containers, daemons, mounts, cgroups, namespaces)")
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for h in hosts:
            try:
                h.stop()
            except Exception as e:
                say(f"quake-demo: stopping cryod {h.role}: {e}")
        kill_monitors(work)
        for h in hosts:
            remove_cgroup(h.cgroup)
        unmount_under(work)
        lan.close()
        subprocess.run(["rm", "-rf", "--one-file-system", str(work)], capture_output=True)
    if ok:
        subprocess.run(["rm", "-rf", str(logs)], capture_output=True)
        say(f"quake-demo: OK — the same game went on on B ({time.monotonic() - started:.0f} s in all)")
        return 0
    say(f"quake-demo: FAILED — cryod logs kept in {logs}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
