#!/usr/bin/env python3
"""`docker pull` speed (issue 13): cryod vs podman 4.3 pulling the same images from the same
local registry, side by side in one run.

A docker-registry (Debian's distribution 2.8) on 127.0.0.1, plain HTTP, no auth, its data in
the work directory, is seeded with skopeo (layers gzip-compressed, as `docker push` stores
them) with three images of incompressible content:
  small   busybox (one ~1 MB layer)
  layers  busybox + 4 layers of 16 MiB
  big     busybox + 1 layer of 256 MiB
Each round pulls every image with both engines over their APIs (cryod: POST /images/create,
the whole progress stream read; podman: POST /libpod/images/pull with tlsVerify=false), then
removes it from both, so every pull fetches every layer. The order of the engines alternates
round by round. Prints medians and podman/cryod ratios; target ≥ 1.5×.

    sudo bench/pull-bench.py [--runs 5] [--bin-dir DIR] [--json FILE]
"""
import argparse, json, os, socket, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (PODMAN_API, ROOT, PodmanService, UnixHTTP, build, med, remove_work, sh, start_cryod, stop,  # noqa: E402
                      versions_line, write_json)

V = "/v1.50"
TARGET = 1.5
IMAGES = {"small": [], "layers": [16] * 4, "big": [256]}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_registry(work):
    port = free_port()
    conf = os.path.join(work, "registry.yml")
    with open(conf, "w") as f:
        f.write(f"version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {work}/registry}}}}\n"
                f"http: {{addr: 127.0.0.1:{port}}}\n")
    p = subprocess.Popen(["/usr/bin/docker-registry", "serve", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return p, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("docker-registry did not start")


def seed(work, host):
    """Builds and pushes the images; returns {name: reference}."""
    base = os.path.join(work, "busybox-rootfs")
    sh("bash", os.path.join(ROOT, "scripts", "make-busybox-rootfs.sh"), base, stdout=subprocess.DEVNULL)
    refs = {}
    for name, sizes in IMAGES.items():
        args = ["--rootfs", base]
        for i, mib in enumerate(sizes):
            d = os.path.join(work, f"{name}-l{i}")
            os.makedirs(d)
            with open(os.path.join(d, f"blob{i}"), "wb") as f:
                for _ in range(mib):
                    f.write(os.urandom(1 << 20))
            args += ["--layer", d]
        archive = os.path.join(work, f"{name}.tar")
        sh(sys.executable, os.path.join(ROOT, "scripts", "make-image.py"), *args, "--tag", f"bench/{name}:latest",
           "--format", "docker-legacy", "-o", archive, stdout=subprocess.DEVNULL)
        ref = f"{host}/bench/{name}:latest"
        sh("skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false", f"docker-archive:{archive}", f"docker://{ref}",
           stdout=subprocess.DEVNULL)
        refs[name] = ref
    return refs


def stream(sock, method, path):
    """A request whose answer is a progress stream, read to the end; seconds taken."""
    t0 = time.perf_counter()
    c = UnixHTTP(sock)
    c.request(method, path, headers={"Content-Length": "0"})
    r = c.getresponse()
    body = r.read()
    c.close()
    took = time.perf_counter() - t0
    if r.status != 200 or b'"error' in body:
        raise RuntimeError(f"{path} -> {r.status}: {body[-400:]!r}")
    return took


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--bin-dir", help="directory with cryod, cryo-monitor, cryo-runtime (default: build release)")
    ap.add_argument("--json", help="also write the medians and ratios to this file (bench/all)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("pull-bench: run as root")
    bin_dir = a.bin_dir or build()
    work = tempfile.mkdtemp(prefix="pb.", dir="/var/tmp")
    procs = []
    try:
        reg, host = start_registry(work)
        procs.append(reg)
        refs = seed(work, host)
        cryod, capi = start_cryod(bin_dir, work)
        procs.append(cryod)
        pod = PodmanService(work)
        pserv, papi = pod.start()
        procs.append(pserv)
        csock, psock = capi.sock, papi.sock
        print(f"machine: {os.uname().release}, {os.cpu_count()} cpus; cryod {bin_dir}; registry {host}")
        print(versions_line())
        times = {(n, e): [] for n in refs for e in ("cryod", "podman")}
        for i in range(1 + a.runs):   # round 0 warms up and is not counted
            for name, ref in refs.items():
                repo, tag = ref.rsplit(":", 1)
                order = ("cryod", "podman") if i % 2 == 0 else ("podman", "cryod")
                for e in order:
                    if e == "cryod":
                        took = stream(csock, "POST", f"{V}/images/create?fromImage={repo}&tag={tag}")
                        capi.call("DELETE", f"{V}/images/{ref}?force=1")
                    else:
                        took = stream(psock, "POST", f"{PODMAN_API}/images/pull?reference={ref}&tlsVerify=false&quiet=true")
                        papi.call("DELETE", f"{PODMAN_API}/images/{ref}?force=true")
                    if i > 0:
                        times[(name, e)].append(took)
            print(f"  round {i} done", flush=True)
        rows = []
        print(f"\n{'image':<8}{'cryod':>12}{'podman':>12}{'podman/cryod':>15}")
        for name in refs:
            c, p = med(times[(name, "cryod")]), med(times[(name, "podman")])
            print(f"{name:<8}{c:>9.0f} ms{p:>9.0f} ms{p / c:>14.2f}×")
            rows.append({"metric": f"pull {name} ({'+'.join(str(s) + ' MiB' for s in IMAGES[name]) or 'busybox'})",
                         "values": {"cryod": round(c, 1), "podman": round(p, 1)}, "ratio_name": "podman / cryod",
                         "ratio": round(p / c, 2), "target": f"≥ {TARGET}×", "met": p / c >= TARGET})
        print(f"\nmedians of {a.runs} rounds after 1 warm-up; target: podman/cryod ≥ {TARGET}×")
        write_json(a.json, "pull-bench", f"sudo bench/pull-bench.py --runs {a.runs}", rows)
    finally:
        stop(procs)
        remove_work(work)


if __name__ == "__main__":
    main()
