#!/usr/bin/env python3
"""Fast start (issue 12): an application that takes seconds to warm up, started cold vs
started from a warm checkpoint as a new container (a clone), side by side on one cryod.

The application (python3 in the python-http image) warms up the way real services do — it
computes a table before it serves (the primes below ten million: ~3 s here) — then answers
`GET /` on port 8000 with `ready <checksum>`. "Time to first correct response" is measured
from the API call that makes the container (create+start for cold, `clone` of the warm
checkpoint for warm) to the first HTTP answer carrying the right checksum, polled every
5 ms from the host over the container's bridge address. Rounds alternate cold and warm.
Target: warm ≥ 10× faster than cold.

    sudo bench/fast-start-bench.py [--runs 5] [--bin-dir DIR] [--json FILE]

Needs the python-http image (scripts/make-app-images.sh).
"""
import argparse, http.client, os, random, subprocess, sys, tempfile, time, uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ROOT, build, med, remove_work, sh, start_cryod, stop, versions_line, write_json  # noqa: E402

V = "/v1.50"
IMAGE = "/var/cache/cryo/test-images/python-http.tar"
TARGET = 10.0
APP = r"""
import http.server, sys
limit = int(sys.argv[1])
sieve = bytearray([1]) * limit
sieve[0:2] = b"\0\0"
for i in range(2, int(limit ** 0.5) + 1):
    if sieve[i]:
        for j in range(i * i, limit, i):
            sieve[j] = 0
answer = ("ready %d\n" % sum(i for i in range(limit) if sieve[i])).encode()

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
    def log_message(self, *a):
        pass

http.server.HTTPServer(("0.0.0.0", 8000), H).serve_forever()
"""


def expected(limit):
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\0\0"
    for i in range(2, int(limit ** 0.5) + 1):
        if sieve[i]:
            sieve[i * i::i] = bytearray(len(range(i * i, limit, i)))
    return b"ready %d\n" % sum(i for i in range(limit) if sieve[i])


def ip_of(api, name):
    nets = api.call("GET", f"{V}/containers/{name}/json")["NetworkSettings"]["Networks"]
    return next(iter(nets.values()))["IPAddress"]


def first_answer(ip, want, t0, timeout=120):
    """Seconds from t0 until http://ip:8000/ answers `want`."""
    while time.perf_counter() - t0 < timeout:
        try:
            c = http.client.HTTPConnection(ip, 8000, timeout=1)
            c.request("GET", "/")
            body = c.getresponse().read()
            c.close()
            if body == want:
                return time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(0.005)
    raise RuntimeError(f"{ip} did not answer correctly within {timeout} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--limit", type=int, default=10_000_000, help="primes below this: the warm-up's size")
    ap.add_argument("--bin-dir", help="directory with cryod, cryo-monitor, cryo-runtime (default: build release)")
    ap.add_argument("--json", help="also write the medians and the ratio to this file (bench/all)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("fast-start-bench: run as root")
    if not os.path.exists(IMAGE):
        sys.exit(f"fast-start-bench: {IMAGE} is missing: run scripts/make-app-images.sh")
    bin_dir = a.bin_dir or build()
    work = tempfile.mkdtemp(prefix="fsb", dir="/tmp")   # short: monitor socket paths live under it
    bridge = "cryofs" + uuid.uuid4().hex[:6]
    cryod = api = None
    try:
        cryod, api = start_cryod(bin_dir, work, ["-b", bridge, "--default-subnet", f"198.19.{random.randint(100, 250)}.0/24"])
        api.upload(f"{V}/images/load?quiet=1", IMAGE)
        want = expected(a.limit)
        print(f"machine: {os.uname().release}, {os.cpu_count()} cpus; cryod {bin_dir}")
        print(versions_line())
        body = {"Image": "python-http:latest", "Cmd": ["python3", "-c", APP, str(a.limit)]}
        # The warm checkpoint: one container started once, warmed up, checkpointed running.
        api.call("POST", f"{V}/containers/create?name=warm", body)
        api.call("POST", f"{V}/containers/warm/start")
        first_answer(ip_of(api, "warm"), want, time.perf_counter())
        api.call("POST", f"{V}/containers/warm/checkpoints", {"CheckpointID": "ready", "Exit": False})
        cold, warm = [], []
        for i in range(1 + a.runs):   # round 0 warms caches up and is not counted
            for kind in (("cold", "warm") if i % 2 == 0 else ("warm", "cold")):
                name = f"{kind}{i}"
                t0 = time.perf_counter()
                if kind == "cold":
                    api.call("POST", f"{V}/containers/create?name={name}", body)
                    api.call("POST", f"{V}/containers/{name}/start")
                else:
                    api.call("POST", f"{V}/containers/warm/checkpoints/ready/clone?name={name}")
                took = first_answer(ip_of(api, name), want, t0)
                api.call("DELETE", f"{V}/containers/{name}?force=1")
                if i > 0:
                    (cold if kind == "cold" else warm).append(took)
            if i > 0:
                print(f"  round {i}: cold {cold[-1] * 1000:.0f} ms, warm {warm[-1] * 1000:.0f} ms", flush=True)
        ratio = med(cold) / med(warm)
        print(f"\ntime to the first correct answer, medians of {a.runs}: cold start {med(cold):.0f} ms, "
              f"from the warm checkpoint {med(warm):.0f} ms: {ratio:.1f}× faster (target ≥ {TARGET:.0f}×)")
        write_json(a.json, "fast-start-bench", f"sudo bench/fast-start-bench.py --runs {a.runs}", [{
            "metric": f"first correct answer, python app warming up (primes below {a.limit})",
            "values": {"cold": round(med(cold), 1), "warm clone": round(med(warm), 1)},
            "ratio_name": "cold / warm", "ratio": round(ratio, 1), "target": f"≥ {TARGET:.0f}×", "met": ratio >= TARGET}])
    finally:
        if api is not None:
            for c in api.call("GET", f"{V}/containers/json?all=1"):
                api.call("DELETE", f"{V}/containers/{c['Id']}?force=1", ok=(200, 204, 404))
        if cryod:
            stop([cryod])
        sh("ip", "link", "del", bridge, check=False, stderr=subprocess.DEVNULL)
        remove_work(work)


if __name__ == "__main__":
    main()
