#!/usr/bin/env python3
"""Side-by-side benchmark of cryod against podman 4.3 (with runc), through their APIs (issue: engine speed).

Both engines run on this machine at the same time, each with its own private state, and are
driven over their unix-socket HTTP APIs with the same client code:
  cryod:  Docker API  — POST /containers/create + /start, POST /containers/{id}/checkpoints,
          POST /containers/{id}/start?checkpoint=NAME
  podman: libpod API  — POST /libpod/containers/create + /start, /checkpoint, /restore
          (`podman system service`, runc, cgroupfs, overlay storage, --network none)
Metrics, rotating the order round by round (A B, B A, ...) after warm-up rounds:
  run         create+start of a small busybox container until start returns (it is running)
  checkpoint  checkpoint with exit (the container stops), small container and N MiB one
  restore     restore of that checkpoint until the call returns (running again)
and, for the N MiB container, bare `criu dump` / `criu restore` of the same kind of process
tree (memhog under cryo-runtime, images on the same filesystem as the engines'), in the same
rounds as the engines' big-container ones (A B C, B C A, C A B, ...), for the "within 1.2x of
bare CRIU end to end" target. It also reports cryod's RSS idle and with 10
running containers. Prints medians and ratios.

Run as root after scripts/setup.sh:   sudo bench/engine-bench.py [--runs 7] [--big-mib 1024]
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (PODMAN_API, ROOT, PodmanService, build, med, remove_work, sh, start_cryod, stop,  # noqa: E402
                      versions_line, write_json)


class Cryo:
    name = "cryod"

    def __init__(self, api, logs_of):
        self.api, self.logs_of = api, logs_of

    def run(self, name, image, cmd):
        t0 = time.perf_counter()
        r = self.api.call("POST", f"/v1.50/containers/create?name={name}", {"Image": image, "Cmd": cmd, "HostConfig": {"NetworkMode": "none"}})
        self.api.call("POST", f"/v1.50/containers/{r['Id']}/start")
        return time.perf_counter() - t0

    def checkpoint(self, name, cp):
        return self.api.timed("POST", f"/v1.50/containers/{name}/checkpoints", {"CheckpointID": cp, "Exit": True})

    def restore(self, name, cp):
        el = self.api.timed("POST", f"/v1.50/containers/{name}/start?checkpoint={cp}")
        self.api.call("DELETE", f"/v1.50/containers/{name}/checkpoints/{cp}")
        return el

    def remove(self, name):
        self.api.call("DELETE", f"/v1.50/containers/{name}?force=1", ok=(204, 404))

    def logs(self, name):
        return self.api.call("GET", f"/v1.50/containers/{name}/logs?stdout=1&stderr=1")


class Podman:
    name = "podman"

    def __init__(self, api):
        self.api = api

    def run(self, name, image, cmd):
        spec = {"name": name, "image": image, "command": cmd, "netns": {"nsmode": "none"},
                "r_limits": [{"type": "nofile", "hard": 1024, "soft": 1024}, {"type": "nproc", "hard": 4096, "soft": 4096}]}
        t0 = time.perf_counter()
        r = self.api.call("POST", f"{PODMAN_API}/containers/create", spec)
        self.api.call("POST", f"{PODMAN_API}/containers/{r['Id']}/start")
        return time.perf_counter() - t0

    def checkpoint(self, name, cp):
        return self.api.timed("POST", f"{PODMAN_API}/containers/{name}/checkpoint")

    def restore(self, name, cp):
        return self.api.timed("POST", f"{PODMAN_API}/containers/{name}/restore")

    def remove(self, name):
        self.api.call("DELETE", f"{PODMAN_API}/containers/{name}?force=true", ok=(200, 204, 404))

    def logs(self, name):
        return self.api.call("GET", f"{PODMAN_API}/containers/{name}/logs?stdout=true&stderr=true")


def wait_ready(engine, name, timeout=300):
    end = time.time() + timeout
    while time.time() < end:
        if b"ready" in engine.logs(name):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{engine.name}: {name} never printed ready")


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class BareCRIU:
    """criu dump / restore of memhog under cryo-runtime (minimal bundle), images on disk: the
    "bare CRIU" anchor for the big container. Its rounds run interleaved with the engines'
    (same machine conditions: this VM's memory and disk speed drift over minutes)."""

    name = "bare CRIU"

    def __init__(self, work, big_mib, images_dir, rootfs):
        self.work, self.images_dir = work, images_dir
        self.rt = os.path.join(BIN, "cryo-runtime")
        self.state = os.path.join(work, "rt-state")
        b = self.bundle = os.path.join(work, "bare-bundle")
        shutil.copytree(rootfs, os.path.join(b, "rootfs"), symlinks=True)
        sh(self.rt, "spec", "--bundle", b)
        c = json.load(open(os.path.join(b, "config.json")))
        c["process"]["terminal"] = False
        c["process"]["args"] = ["/memhog", str(big_mib)]
        c["root"]["readonly"] = False
        c["mounts"] = [m for m in c["mounts"] if m["destination"] in ("/proc", "/dev")]
        c["linux"]["maskedPaths"] = []
        c["linux"]["readonlyPaths"] = []
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "cgroup"]
        json.dump(c, open(os.path.join(b, "config.json"), "w"))
        self.criu_root = os.path.join(work, "criu-root")
        self.pid = None

    def start(self):
        ready = os.path.join(self.bundle, "rootfs", "ready")
        sh(self.rt, "--root", self.state, "run", "--detach", "--bundle", self.bundle, "bare", stdin=subprocess.DEVNULL,
           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not os.path.exists(ready):
            time.sleep(0.05)
        self.pid = json.loads(sh(self.rt, "--root", self.state, "state", "bare", capture_output=True).stdout)["pid"]
        os.makedirs(self.criu_root)
        sh("mount", "--bind", os.path.join(self.bundle, "rootfs"), self.criu_root)

    def cycle(self, i):
        """One dump and restore; returns (dump seconds, restore seconds)."""
        d = os.path.join(self.images_dir, f"bare-{i}")
        os.makedirs(d)
        t0 = time.perf_counter()
        sh("criu", "dump", "-t", str(self.pid), "-D", d, "-o", "dump.log", "--root", os.path.join(self.bundle, "rootfs"),
           "--manage-cgroups")
        t1 = time.perf_counter()
        pf = os.path.join(d, "pidfile")
        sh("criu", "restore", "-D", d, "-o", "restore.log", "--root", self.criu_root, "-d", "--manage-cgroups", "--pidfile", pf,
           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t2 = time.perf_counter()
        self.pid = int(open(pf).read())
        shutil.rmtree(d)
        return t1 - t0, t2 - t1

    def stop(self):
        if self.pid:
            sh("kill", "-9", str(self.pid), check=False)
        sh(self.rt, "--root", self.state, "delete", "--force", "bare", check=False, stderr=subprocess.DEVNULL)
        sh("umount", "-l", self.criu_root, check=False)


def main():
    global BIN
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--bin-dir", help="directory with cryod, cryo-monitor, cryo-runtime (default: build release)")
    ap.add_argument("--json", help="also write the medians, ratios and targets to this file (bench/all)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("engine-bench: run as root")
    BIN = a.bin_dir or build()
    work = tempfile.mkdtemp(prefix="eb.", dir="/var/tmp")
    procs = []
    bare_procs = []
    cryo = podman = None
    names = []
    try:
        # One image for both: busybox + a static memhog.
        rootfs = os.path.join(work, "rootfs")
        sh("bash", os.path.join(ROOT, "scripts", "make-busybox-rootfs.sh"), rootfs, stdout=subprocess.DEVNULL)
        sh("gcc", "-static", "-O2", "-o", os.path.join(rootfs, "memhog"), os.path.join(ROOT, "bench", "fixtures", "memhog.c"))
        image_tar = os.path.join(work, "image.tar")
        sh(sys.executable, os.path.join(ROOT, "scripts", "make-image.py"), "--rootfs", rootfs, "--tag", "benchbox:latest",
           "-o", image_tar, stdout=subprocess.DEVNULL)
        cryod, capi = start_cryod(BIN, work)
        procs.append(cryod)
        cryo = Cryo(capi, None)
        cryo.api.upload("/v1.50/images/load?quiet=1", image_tar)
        pod = PodmanService(work)
        pod.run("load", "-i", image_tar, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pserv, papi = pod.start()
        procs.append(pserv)
        podman = Podman(papi)
        engines = [cryo, podman]

        print(f"machine: {os.uname().release}, {os.cpu_count()} cpus; cryod {BIN}")
        print(versions_line())
        rss_idle = rss_kib(cryod.pid)
        results = {}
        # run
        times = {e.name: [] for e in engines}
        for i in range(a.warmup + a.runs):
            for e in (engines if i % 2 == 0 else engines[::-1]):
                n = f"run{i}"
                el = e.run(n, "benchbox:latest", ["/bin/sleep", "1000000"])
                e.remove(n)
                if i >= a.warmup:
                    times[e.name].append(el)
        results["run -d (create+start)"] = times
        # RSS with 10 running containers
        for i in range(10):
            cryo.run(f"rss{i}", "benchbox:latest", ["/bin/sleep", "1000000"])
            names.append(f"rss{i}")
        time.sleep(0.5)
        rss_10 = rss_kib(cryod.pid)
        for n in names:
            cryo.remove(n)
        names = []
        # checkpoint / restore
        sizes = [("small", ["/bin/sh", "-c", "echo ready; exec /bin/sleep 1000000"])]
        if not a.skip_big:
            sizes.append((f"{a.big_mib} MiB", ["/memhog", str(a.big_mib)]))
        bare = None
        for label, cmd in sizes:
            n = "cr-" + label.split()[0]
            for e in engines:
                e.run(n, "benchbox:latest", cmd)
                wait_ready(e, n)
            # The big container's rounds include bare CRIU, in the same rotation.
            anchor = None
            if label != "small":
                imgs = os.path.join(work, "bare-images")
                os.makedirs(imgs)
                anchor = BareCRIU(work, a.big_mib, imgs, rootfs)
                bare_procs.append(anchor)
                anchor.start()
                bare = ([], [])
            ck = {e.name: [] for e in engines}
            rs = {e.name: [] for e in engines}
            for i in range(a.warmup + a.runs):
                order = engines + ([anchor] if anchor else [])
                k = i % len(order)
                for e in order[k:] + order[:k]:
                    if e is anchor:
                        c, r = anchor.cycle(i)
                        if i >= a.warmup:
                            bare[0].append(c)
                            bare[1].append(r)
                        continue
                    c = e.checkpoint(n, f"cp{i}")
                    r = e.restore(n, f"cp{i}")
                    if i >= a.warmup:
                        ck[e.name].append(c)
                        rs[e.name].append(r)
            for e in engines:
                e.remove(n)
            if anchor:
                anchor.stop()
                bare_procs.remove(anchor)
            results[f"checkpoint {label}"] = ck
            results[f"restore {label}"] = rs
    finally:
        for e, n in ((cryo, x) for x in names):
            e.remove(n)
        for b in bare_procs:
            b.stop()
        stop(procs)
        remove_work(work)

    print(f"\nmedians of {a.runs} rounds (after {a.warmup} warm-up), engines alternating each round")
    print(f"{'metric':<24}{'cryod':>11}{'podman':>11}{'podman/cryod':>14}")
    for metric, t in results.items():
        c, p = med(t["cryod"]), med(t["podman"])
        print(f"{metric:<24}{c:>9.1f}ms{p:>9.1f}ms{p / c:>13.2f}x")
    if bare:
        d, r = med(bare[0]), med(bare[1])
        c_ck = med(results[f"checkpoint {a.big_mib} MiB"]["cryod"])
        c_rs = med(results[f"restore {a.big_mib} MiB"]["cryod"])
        print(f"\nbare CRIU, {a.big_mib} MiB: dump {d:.1f} ms, restore {r:.1f} ms; "
              f"cryod/bare: checkpoint {c_ck / d:.2f}x, restore {c_rs / r:.2f}x")
    print(f"\ncryod RSS: idle {rss_idle / 1024:.1f} MiB, with 10 running containers {rss_10 / 1024:.1f} MiB")
    rows = []
    for metric, t in results.items():
        vals = {k: med(v) for k, v in t.items()}
        if bare and metric.startswith(("checkpoint", "restore")) and "MiB" in metric:
            b = med(bare[0] if metric.startswith("checkpoint") else bare[1])
            vals["bare criu"] = b
            ratio = vals["cryod"] / b
            rows.append({"metric": metric, "values": vals, "ratio_name": "cryod/criu", "ratio": ratio,
                         "target": "<= 1.2x bare CRIU", "met": ratio <= 1.2})
        else:
            ratio = vals["podman"] / vals["cryod"]
            rows.append({"metric": metric, "values": vals, "ratio_name": "podman/cryod", "ratio": ratio,
                         "target": ">= 3x faster than podman", "met": ratio >= 3})
    write_json(a.json, "engine", f"bench/engine-bench.py --runs {a.runs} --warmup {a.warmup}" + (" --skip-big" if a.skip_big else ""), rows,
               [f"medians of {a.runs} rounds after {a.warmup} warm-up, engines alternating",
                f"cryod RSS: idle {rss_idle / 1024:.1f} MiB, with 10 running containers {rss_10 / 1024:.1f} MiB"])
    # Every sample, in round order: on this VM a big dump or restore is either fast or, when
    # the memory it writes to must first be faulted in by the host, two to four times slower.
    print("\nsamples (ms, round order):")
    for metric, t in results.items():
        for who, xs in t.items():
            print(f"  {metric:<22}{who:<8}" + " ".join(f"{x * 1000:.0f}" for x in xs))
    if bare:
        for what, xs in (("dump", bare[0]), ("restore", bare[1])):
            print(f"  {'bare CRIU ' + what:<30}" + " ".join(f"{x * 1000:.0f}" for x in xs))


if __name__ == "__main__":
    main()
