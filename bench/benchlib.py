"""What the engine benchmarks share: a JSON client for unix-socket HTTP APIs, starting cryod
and a private podman API service side by side, the release build, medians, and cleanup.

Imported by engine-bench.py and net-bench.py (both run as root from any directory).
"""
import http.client, json, os, shutil, signal, socket, statistics, subprocess, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PODMAN_API = "/v4.3.1/libpod"


def sh(*args, check=True, **kw):
    return subprocess.run(list(args), check=check, **kw)


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=600)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.path)
        self.sock = s


class API:
    """One connection per call, as the docker and podman clients do."""

    def __init__(self, sock):
        self.sock = sock

    def call(self, method, path, body=None, ok=(200, 201, 204)):
        c = UnixHTTP(self.sock)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if data is None and method == "POST":
            headers["Content-Length"] = "0"
        c.request(method, path, body=data, headers=headers)
        r = c.getresponse()
        out = r.read()
        c.close()
        if r.status not in ok:
            raise RuntimeError(f"{method} {path} -> {r.status}: {out[:400]!r}")
        return json.loads(out) if out.strip().startswith((b"{", b"[")) else out

    def timed(self, method, path, body=None):
        """The call's duration in seconds, from request sent to response read."""
        t0 = time.perf_counter()
        self.call(method, path, body)
        return time.perf_counter() - t0

    def upload(self, path, file):
        c = UnixHTTP(self.sock)
        with open(file, "rb") as f:
            data = f.read()
        c.request("POST", path, body=data, headers={"Content-Type": "application/x-tar"})
        r = c.getresponse()
        out = r.read()
        c.close()
        if r.status != 200:
            raise RuntimeError(f"load -> {r.status}: {out[:400]!r}")


def wait_socket(path, proc, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        if os.path.exists(path):
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(path)
                s.close()
                return
            except OSError:
                pass
        time.sleep(0.05)
    raise RuntimeError(f"no socket at {path}")


def med(xs):
    return statistics.median(xs) * 1000


def build():
    """The release binaries as scripts/build-release.sh makes them, in .build-release/dist."""
    sh("bash", os.path.join(ROOT, "scripts", "build-release.sh"), cwd=ROOT, stdout=subprocess.DEVNULL)
    return os.path.join(ROOT, ".build-release", "dist")


def start_cryod(bin_dir, work, extra_args=(), env=None, log=None):
    """cryod with its root, exec root and socket under WORK; returns (process, API).
    Its stderr goes to the file LOG, or nowhere."""
    sock = os.path.join(work, "c.sock")
    err = open(log, "ab") if log else subprocess.DEVNULL
    p = subprocess.Popen([os.path.join(bin_dir, "cryod"), "--root", os.path.join(work, "croot"), "--exec-root",
                          os.path.join(work, "crun"), "-H", "unix://" + sock, *extra_args], stderr=err, env=env)
    if log:
        err.close()
    wait_socket(sock, p)
    return p, API(sock)


class PodmanService:
    """`podman system service` with every bit of state under WORK/podman: runc, cgroupfs, file
    events, overlay storage, ulimits podman may set here (no CAP_SYS_RESOURCE above nofile 20000),
    and a private CNI config dir whose default subnet is in 198.18.0.0/15."""

    def __init__(self, work, netns="none", default_subnet="198.18.0.0/24"):
        base = os.path.join(work, "podman")
        for d in ("root", "runroot", "tmp", "net"):
            os.makedirs(os.path.join(base, d))
        conf = os.path.join(base, "containers.conf")
        with open(conf, "w") as f:
            f.write('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n'
                    f'netns = "{netns}"\n'
                    f'[network]\nnetwork_config_dir = "{base}/net"\ndefault_subnet = "{default_subnet}"\n'
                    '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nruntime = "runc"\n')
        self.env = dict(os.environ, CONTAINERS_CONF=conf)
        self.cli = ["podman", "--root", os.path.join(base, "root"), "--runroot", os.path.join(base, "runroot"),
                    "--tmpdir", os.path.join(base, "tmp"), "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs",
                    "--events-backend", "file", "--runtime", "runc"]
        self.sock = os.path.join(work, "p.sock")
        self.proc = None

    def run(self, *args, **kw):
        """The podman CLI on the same state (image load, networks)."""
        return sh(*self.cli, *args, env=self.env, **kw)

    def start(self):
        self.proc = subprocess.Popen(self.cli + ["system", "service", "--time", "0", "unix://" + self.sock], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_socket(self.sock, self.proc)
        return self.proc, API(self.sock)


def stop(procs):
    for p in procs:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()


def remove_work(work):
    """Unmounts whatever is still mounted under WORK (deepest first) and removes it."""
    sh("bash", "-c", f"grep -o ' {work}[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l", check=False)
    shutil.rmtree(work, ignore_errors=True)


def versions_line():
    return " | ".join([
        sh("criu", "--version", capture_output=True, text=True).stdout.strip().replace("\n", " "),
        sh("podman", "--version", capture_output=True, text=True).stdout.strip(),
        sh("runc", "--version", capture_output=True, text=True).stdout.splitlines()[0]])


def write_json(path, bench, command, rows, notes=()):
    """Results for bench/all: one row per metric with each tool's median (ms), the ratio the
    target is about and whether it is met. `rows`: dicts with metric, values {tool: ms},
    ratio_name, ratio, target, met."""
    if not path:
        return
    import datetime
    doc = {"bench": bench, "command": command, "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
           "kernel": os.uname().release, "cpus": os.cpu_count(), "versions": versions_line(),
           "rows": rows, "notes": list(notes)}
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
