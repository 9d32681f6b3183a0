#!/usr/bin/env python3
"""Side-by-side benchmark of cryo-runtime against runc and bare CRIU (issue: runtime speed).

Measures, alternating the tools round by round (A B C A B C ...) after warm-up:
  - start: `create` + `start` until the container's first output arrives (cryo-runtime vs runc)
  - checkpoint and restore of the same kind of container, for a small busybox container and a
    container holding N MiB (default 1024) of touched, incompressible anonymous memory:
    cryo-runtime vs runc vs bare `criu dump` / `criu restore` of the same tree.
Prints medians and ratios. Run as root:  sudo bench/runtime-bench.py [--runs 7] [--big-mib 1024]
Needs: scripts/setup.sh done, a release build (the script builds one with the static stdlib).
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import write_json  # noqa: E402


def sh(*args, check=True, **kw):
    return subprocess.run(list(args), check=check, **kw)


def build():
    """The release binaries as scripts/build-release.sh makes them (cryo-runtime: a static executable)."""
    sh("bash", os.path.join(ROOT, "scripts", "build-release.sh"), cwd=ROOT, stdout=subprocess.DEVNULL)
    return os.path.join(ROOT, ".build-release", "dist", "cryo-runtime")


def make_bundle(work, name, args, rootfs_src):
    b = os.path.join(work, name)
    shutil.copytree(rootfs_src, os.path.join(b, "rootfs"), symlinks=True)
    subprocess.run([CRYO, "spec", "--bundle", b], check=True)
    with open(os.path.join(b, "config.json")) as f:
        c = json.load(f)
    c["process"]["terminal"] = False
    c["process"]["args"] = args
    c["root"]["readonly"] = False
    # The same minimal container for every tool: no bind or cgroup mounts, nothing masked,
    # so bare CRIU can dump and restore it with nothing but --root.
    c["mounts"] = [m for m in c["mounts"] if m["destination"] in ("/proc", "/dev")]
    c["linux"]["maskedPaths"] = []
    c["linux"]["readonlyPaths"] = []
    c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "cgroup"]
    with open(os.path.join(b, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
    return b


class Tool:
    def __init__(self, name, binary, root):
        self.name, self.binary, self.root = name, binary, root

    def rt(self, *args, **kw):
        return sh(self.binary, "--root", self.root, *args, **kw)


def wait_file(path, timeout=120):
    end = time.time() + timeout
    while not os.path.exists(path):
        if time.time() > end:
            raise RuntimeError(f"timed out waiting for {path}")
        time.sleep(0.005)


def measure_start(tool, bundle, cid):
    r, w = os.pipe()
    t0 = time.perf_counter()
    tool.rt("create", "--bundle", bundle, cid, stdin=subprocess.DEVNULL, stdout=w, stderr=subprocess.DEVNULL)
    tool.rt("start", cid)
    os.close(w)
    data = b""
    while b"ready" not in data:
        chunk = os.read(r, 64)
        if not chunk:
            raise RuntimeError(f"{tool.name}: container exited before its first output")
        data += chunk
    t1 = time.perf_counter()
    os.close(r)
    tool.rt("delete", "--force", cid, stderr=subprocess.DEVNULL, check=False)
    return t1 - t0


class Subject:
    """One container per tool that is checkpointed and restored again and again."""

    def __init__(self, tool, bundle, cid, images, ready):
        self.tool, self.bundle, self.cid, self.images, self.ready = tool, bundle, cid, images, ready
        self.pid = None

    def start(self):
        rt = CRYO_TOOL if self.tool.name == "criu" else self.tool
        if os.path.exists(self.ready):
            os.unlink(self.ready)
        rt.rt("run", "--detach", "--bundle", self.bundle, self.cid,
              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_file(self.ready)
        st = json.loads(rt.rt("state", self.cid, capture_output=True).stdout)
        self.pid = st["pid"]

    def img(self):
        return os.path.join(self.images, self.tool.name + "-" + self.cid)

    def checkpoint(self):
        d = self.img()
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        t0 = time.perf_counter()
        if self.tool.name == "criu":
            sh("criu", "dump", "-t", str(self.pid), "-D", d, "-o", "dump.log", "-v4", "--root",
               os.path.join(self.bundle, "rootfs"), "--manage-cgroups")
        else:
            self.tool.rt("checkpoint", "--image-path", d, self.cid)
        return time.perf_counter() - t0

    def restore(self):
        d = self.img()
        t0 = time.perf_counter()
        if self.tool.name == "criu":
            pidfile = os.path.join(d, "pidfile")
            sh("criu", "restore", "-D", d, "-o", "restore.log", "-v4", "--root", CRIU_ROOT, "-d",
               "--manage-cgroups", "--pidfile", pidfile, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL)
            el = time.perf_counter() - t0
            self.pid = int(open(pidfile).read())
        else:
            self.tool.rt("restore", "--detach", "--image-path", d, "--bundle", self.bundle, self.cid,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            el = time.perf_counter() - t0
        shutil.rmtree(d, ignore_errors=True)
        return el

    def stop(self):
        if self.tool.name == "criu":
            if self.pid:
                sh("kill", "-9", str(self.pid), check=False)
            CRYO_TOOL.rt("delete", "--force", self.cid, check=False, stderr=subprocess.DEVNULL)
        else:
            self.tool.rt("delete", "--force", self.cid, check=False, stderr=subprocess.DEVNULL)


def med(xs):
    return statistics.median(xs) * 1000


def main():
    global CRYO, CRYO_TOOL, CRIU_ROOT
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7, help="measured rounds per metric (median of these)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--big-mib", type=int, default=1024, help="memory of the big container in MiB")
    ap.add_argument("--binary", help="cryo-runtime binary (default: build a release one)")
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--json", help="also write the medians, ratios and targets to this file (bench/all)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("runtime-bench: run as root")
    CRYO = a.binary or build()
    work = tempfile.mkdtemp(prefix="cryo-bench.")
    images = os.path.join(work, "images")
    os.makedirs(images)
    # Images on tmpfs: page-cache write speed here swings 1.5-4.4 GB/s; tmpfs keeps it out.
    sh("mount", "-t", "tmpfs", "-o", f"size={3 * a.big_mib + 1024}m", "tmpfs", images)
    rootfs = os.path.join(work, "rootfs-src")
    sh("bash", os.path.join(ROOT, "scripts", "make-busybox-rootfs.sh"), rootfs, stdout=subprocess.DEVNULL)
    sh("gcc", "-static", "-O2", "-o", os.path.join(rootfs, "memhog"), os.path.join(ROOT, "bench", "fixtures", "memhog.c"))
    cryo = Tool("cryo-runtime", CRYO, os.path.join(work, "state-cryo"))
    runc = Tool("runc", "runc", os.path.join(work, "state-runc"))
    criu = Tool("criu", "criu", "")
    CRYO_TOOL = cryo
    subjects = []
    results = {}
    try:
        print(f"machine: {os.uname().release}, {os.cpu_count()} cpus; cryo-runtime {CRYO}")
        cg2 = [l.split() for l in open("/proc/mounts") if l.split()[2] == "cgroup2"]
        print("cgroup2 favordynmods:", "on" if cg2 and "favordynmods" in cg2[0][3] else "off (as shown in /proc/mounts)")
        print(sh("criu", "--version", capture_output=True, text=True).stdout.strip().replace("\n", " "),
              "|", sh("runc", "--version", capture_output=True, text=True).stdout.splitlines()[0])
        # --- start latency
        sb = {t.name: make_bundle(work, "start-" + t.name, ["/memhog", "0"], rootfs) for t in (cryo, runc)}
        times = {"cryo-runtime": [], "runc": []}
        for i in range(a.warmup + a.runs):
            for t in ((cryo, runc) if i % 2 == 0 else (runc, cryo)):
                el = measure_start(t, sb[t.name], f"start{i}")
                if i >= a.warmup:
                    times[t.name].append(el)
        results["start"] = times
        # --- checkpoint / restore
        sizes = [("small", ["/bin/sleep", "1000000"], None)]
        if not a.skip_big:
            sizes.append((f"{a.big_mib}MiB", ["/memhog", str(a.big_mib)], "/ready"))
        for label, args, ready in sizes:
            subjects = []
            for t in (cryo, runc, criu):
                b = make_bundle(work, f"{label}-{t.name}", args, rootfs)
                readyfile = os.path.join(b, "rootfs", (ready or "/ready").lstrip("/"))
                if ready is None:
                    args2 = ["/bin/sh", "-c", "touch /ready; exec /bin/sleep 1000000"]
                    with open(os.path.join(b, "config.json")) as f:
                        c = json.load(f)
                    c["process"]["args"] = args2
                    with open(os.path.join(b, "config.json"), "w") as f:
                        json.dump(c, f)
                subjects.append(Subject(t, b, f"{label}-{t.name}".replace("MiB", "m"), images, readyfile))
            CRIU_ROOT = os.path.join(work, f"criu-root-{label}")
            os.makedirs(CRIU_ROOT)
            sh("mount", "--bind", os.path.join(subjects[2].bundle, "rootfs"), CRIU_ROOT)
            for s in subjects:
                s.start()
            ck = {s.tool.name: [] for s in subjects}
            rs = {s.tool.name: [] for s in subjects}
            for i in range(a.warmup + a.runs):
                order = subjects[i % 3:] + subjects[:i % 3]
                for s in order:
                    c = s.checkpoint()
                    r = s.restore()
                    if i >= a.warmup:
                        ck[s.tool.name].append(c)
                        rs[s.tool.name].append(r)
            results[f"checkpoint {label}"] = ck
            results[f"restore {label}"] = rs
            for s in subjects:
                s.stop()
            sh("umount", "-l", CRIU_ROOT, check=False)
            subjects = []
    finally:
        for s in subjects:
            s.stop()
        sh("umount", "-l", images, check=False)
        for d in os.listdir(work):
            if d.startswith("criu-root"):
                sh("umount", "-l", os.path.join(work, d), check=False, stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nmedians of {a.runs} rounds (after {a.warmup} warm-up), alternating tools each round")
    print(f"{'metric':<22}{'cryo-runtime':>14}{'runc':>10}{'bare criu':>11}{'cryo/runc':>11}{'cryo/criu':>11}")
    for metric, t in results.items():
        c = med(t["cryo-runtime"])
        r = med(t["runc"])
        b = med(t["criu"]) if "criu" in t else None
        print(f"{metric:<22}{c:>12.1f}ms{r:>8.1f}ms" + (f"{b:>9.1f}ms" if b else f"{'-':>11}")
              + f"{c / r:>10.2f}x" + (f"{c / b:>10.2f}x" if b else f"{'-':>11}"))
    rows = []
    for metric, t in results.items():
        vals = {k: med(v) for k, v in t.items()}
        if metric == "start":
            ratio, name, target, met = vals["cryo-runtime"] / vals["runc"], "cryo/runc", "<= 0.5x runc", None
            met = ratio <= 0.5
        else:
            ratio, name, target = vals["cryo-runtime"] / vals["criu"], "cryo/criu", "<= 1.1x bare CRIU"
            met = ratio <= 1.1
        rows.append({"metric": metric, "values": vals, "ratio_name": name, "ratio": ratio, "target": target, "met": met})
    write_json(a.json, "runtime", f"bench/runtime-bench.py --runs {a.runs} --warmup {a.warmup}" + (" --skip-big" if a.skip_big else ""), rows,
               [f"medians of {a.runs} rounds after {a.warmup} warm-up, tools alternating"])


if __name__ == "__main__":
    main()
