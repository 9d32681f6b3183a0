#!/usr/bin/env python3
"""Fork and clones (issue 12), cryo side by side with podman 4.3 in one run.

  fork    cryo: `cryo fork SRC NEW` (CLI) — its report gives the source's pause (CRIU's frozen
          time) and the time until the copy runs. podman has no fork; its nearest is
          `podman container checkpoint --leave-running --export F SRC` then
          `podman container restore --import F --name NEW` (CLI, runc).
  clones  10 clones of one checkpoint, one after another, until all run: cryo
          `cryo container restore --checkpoint CP --name NEW SRC` (CLI); podman
          `podman container restore --import F --name NEW` of one export (CLI). The ratio
          podman/cryo per clone is the issue's target (>= 10x).
  PSS     with the 10 clones running, each clone's proportional set size (the sum of
          /proc/PID/smaps_rollup Pss over its processes), against the source's.

Usage (root): python3 bench/fork-bench.py [--bin DIR] [--rounds N] [--only cryo|podman]
DIR holds cryod and cryo (default: the worktree's .build/debug; use scripts/build-release.sh's
.build-release/dist for figures). The image is /var/cache/cryo/test-images/busybox.tar
(scripts/make-test-images.sh). Prints medians and ratios; `--json F` writes them for bench/all.
"""
import argparse, json, os, random, statistics, subprocess, sys, tempfile, time, uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ROOT, PodmanService, remove_work, sh, start_cryod, stop, versions_line, write_json  # noqa: E402

COUNTER = "i=0; while true; do echo $i; i=$((i+1)); sleep 0.1; done"
IMAGE_TAR = "/var/cache/cryo/test-images/busybox.tar"
CLONES = 10


def med(xs):
    """The median, in the samples' own unit."""
    return statistics.median(xs)


def pss_kib(pid):
    """The Pss of PID and every process below it (KiB)."""
    children = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            ppid = int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(p))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


class Cryo:
    name = "cryo"

    def __init__(self, bin_dir, work):
        self.bridge = "cryofb" + uuid.uuid4().hex[:6]
        self.bin = bin_dir
        self.proc, self.api = start_cryod(bin_dir, work, ["-b", self.bridge, "--default-subnet",
                                                          f"198.19.{random.randint(100, 250)}.0/24"],
                                          log=os.environ.get("CRYOD_LOG", os.path.join(work, "cryod.log")))
        self.host = "unix://" + self.api.sock
        self.api.upload("/v1.50/images/load?quiet=1", IMAGE_TAR)
        self.src = "fb" + uuid.uuid4().hex[:8]

    def cli(self, *args):
        r = subprocess.run([os.path.join(self.bin, "cryo"), "-H", self.host, *args], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"cryo {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def start_source(self):
        self.cli("run", "-d", "--name", self.src, "busybox", "sh", "-c", COUNTER)
        time.sleep(1)

    def pid(self, name):
        return self.api.call("GET", f"/containers/{name}/json")["State"]["Pid"]

    def fork(self, i):
        t0 = time.perf_counter()
        r = json.loads(self.cli("fork", "--format", "json", self.src, f"{self.src}-f{i}"))
        total = (time.perf_counter() - t0) * 1000
        self.cli("rm", "-f", f"{self.src}-f{i}")
        return {"total": total, "pause": r.get("PauseMs") or 0, "running": r["TimeToRunningMs"]}

    def prepare_clones(self):
        self.cli("checkpoint", "create", "--leave-running", self.src, "cp")

    def clone(self, i):
        t0 = time.perf_counter()
        self.cli("container", "restore", "--checkpoint", "cp", "--name", f"{self.src}-c{i}", self.src)
        return (time.perf_counter() - t0) * 1000

    def clone_names(self):
        return [f"{self.src}-c{i}" for i in range(CLONES)]

    def close(self):
        for c in self.api.call("GET", "/containers/json?all=1"):
            self.api.call("DELETE", f"/containers/{c['Id']}?force=1", ok=(200, 204, 404))
        stop([self.proc])
        sh("ip", "link", "del", self.bridge, check=False, stderr=subprocess.DEVNULL)


class Podman:
    name = "podman"

    def __init__(self, work):
        self.work = work
        self.pod = PodmanService(work)
        self.pod.run("load", "-i", IMAGE_TAR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.src = "pb" + uuid.uuid4().hex[:8]
        self.export = os.path.join(work, "podman-cp.tar.gz")

    def cli(self, *args):
        return self.pod.run(*args, capture_output=True, text=True).stdout

    def start_source(self):
        self.cli("run", "-d", "--name", self.src, "--network", "none", "busybox", "sh", "-c", COUNTER)
        time.sleep(1)

    def pid(self, name):
        return int(self.cli("inspect", "--format", "{{.State.Pid}}", name).strip())

    def fork(self, i):
        f = os.path.join(self.work, f"podman-fork{i}.tar.gz")
        t0 = time.perf_counter()
        self.cli("container", "checkpoint", "--leave-running", "--export", f, self.src)
        t1 = time.perf_counter()
        self.cli("container", "restore", "--import", f, "--name", f"{self.src}-f{i}")
        t2 = time.perf_counter()
        self.cli("rm", "-f", f"{self.src}-f{i}")
        os.unlink(f)
        return {"total": (t2 - t0) * 1000, "pause": (t1 - t0) * 1000, "running": (t2 - t0) * 1000}

    def prepare_clones(self):
        self.cli("container", "checkpoint", "--leave-running", "--export", self.export, self.src)

    def clone(self, i):
        t0 = time.perf_counter()
        self.cli("container", "restore", "--import", self.export, "--name", f"{self.src}-c{i}")
        return (time.perf_counter() - t0) * 1000

    def clone_names(self):
        return [f"{self.src}-c{i}" for i in range(CLONES)]

    def close(self):
        names = self.cli("ps", "-a", "--format", "{{.Names}}").split()
        if names:
            self.pod.run("rm", "-f", *names, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, ".build", "debug"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", choices=("cryo", "podman"), action="append")
    ap.add_argument("--json", help="also write the medians, ratios and targets to this file (bench/all)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("fork-bench: run as root")
    tools = a.only or ["cryo", "podman"]
    work = tempfile.mkdtemp(prefix="cfb", dir="/tmp")   # short: monitor socket paths live under it
    engines = []
    results = {}
    try:
        if "cryo" in tools:
            engines.append(Cryo(a.bin, work))
        if "podman" in tools:
            engines.append(Podman(work))
        print(f"machine: {os.uname().release}, {os.cpu_count()} cpus; cryo {a.bin}")
        print(versions_line())
        for e in engines:
            e.start_source()
            forks = [e.fork(i) for i in range(a.rounds)]
            e.prepare_clones()
            clones = [e.clone(i) for i in range(CLONES)]
            time.sleep(1)
            src_pss = pss_kib(e.pid(e.src))
            pss = [pss_kib(e.pid(n)) for n in e.clone_names()]
            results[e.name] = {"fork": forks, "clones": clones, "src_pss": src_pss, "pss": pss}
            print(f"{e.name}: fork total {med([f['total'] for f in forks]):.1f} ms (pause {med([f['pause'] for f in forks]):.1f} ms, "
                  f"copy running {med([f['running'] for f in forks]):.1f} ms); clones {' '.join(f'{c:.0f}' for c in clones)} ms; "
                  f"PSS source {src_pss} KiB, clones {' '.join(map(str, pss))} KiB", flush=True)
    finally:
        for e in engines:
            try:
                e.close()
            except Exception as x:   # keep cleaning up the others
                print(f"cleanup of {e.name}: {x}", file=sys.stderr)
        remove_work(work)

    rows = []
    c, p = results.get("cryo"), results.get("podman")
    print(f"\nmedians ({a.rounds} forks, {CLONES} clones of one checkpoint)")
    print(f"{'':<40}{'cryo':>12}{'podman':>12}{'podman/cryo':>14}")

    def line(label, cv, pv, target=None, met=None):
        ratio = pv / cv if cv and pv else None
        print(f"{label:<40}{(f'{cv:.1f} ms' if cv is not None else '–'):>12}{(f'{pv:.1f} ms' if pv is not None else '–'):>12}"
              f"{(f'{ratio:.1f}x' if ratio else '–'):>14}" + (f"   target {target}: {'met' if met else 'NOT met'}" if target else ""))
        vals = {k: round(v, 1) for k, v in (("cryo", cv), ("podman", pv)) if v is not None}
        rows.append({"metric": label, "values": vals, "ratio_name": "podman/cryo", "ratio": ratio, "target": target, "met": met})

    fc = c and med([f["pause"] for f in c["fork"]])
    line("fork: source paused", fc, p and med([f["pause"] for f in p["fork"]]), "<= 30 ms (cryo)", fc is not None and fc <= 30)
    rc = c and med([f["running"] for f in c["fork"]])
    line("fork: copy running after", rc, p and med([f["running"] for f in p["fork"]]), "<= 70 ms (cryo)", rc is not None and rc <= 70)
    line("fork: whole CLI call", c and med([f["total"] for f in c["fork"]]), p and med([f["total"] for f in p["fork"]]))
    cc, pc = c and med(c["clones"]), p and med(p["clones"])
    line("clone of a checkpoint (CLI, each)", cc, pc, ">= 10x faster than podman restore --import --name",
         (pc / cc >= 10) if cc and pc else None)
    for name, r in results.items():
        print(f"{name}: PSS of the source {r['src_pss']} KiB; per clone median {med(r['pss']):.0f} KiB "
              f"({' '.join(map(str, r['pss']))})")
    write_json(a.json, "fork", "sudo bench/fork-bench.py --bin " + a.bin, rows,
               notes=[f"{n}: PSS source {r['src_pss']} KiB, per clone median {med(r['pss']):.0f} KiB" for n, r in results.items()])


if __name__ == "__main__":
    main()
