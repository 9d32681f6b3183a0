"""Fixtures for the engine integration tests: a real cryod on a fresh temp root, driven by
the real docker CLI and docker-py.

Environment:
  CRYO_BIN_DIR      where cryod, cryo-monitor and cryo-runtime are (default: .build/debug)
  CRYO_TEST_IMAGES  the test images (default: /var/cache/cryo/test-images; built by
                    scripts/make-test-images.sh if missing)
  CI=true           a missing requirement (root, CRIU, docker CLI, docker-py) fails instead
                    of skipping

Teardown always cleans up, even after failures: every container removed, cryod stopped,
leftover cryo-monitor processes of this root killed, mounts under the temp root unmounted
(deepest first, lazily as a fallback), the test's cgroups removed, the temp dir deleted.
"""

import contextlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("CRYO_BIN_DIR") or REPO / ".build" / "debug")
IMAGES = Path(os.environ.get("CRYO_TEST_IMAGES") or "/var/cache/cryo/test-images")
CI = os.environ.get("CI", "").lower() == "true"
CGROUP_ROOT = Path("/sys/fs/cgroup")
# Default timeout for one docker CLI call: a hang fails the test instead of blocking CI.
DOCKER_TIMEOUT = 60


def unavailable(msg):
    """Skip locally, fail under CI=true."""
    if CI:
        pytest.fail(f"required for the engine tests under CI=true: {msg}")
    pytest.skip(msg)


# --------------------------------------------------------------------------------------------
# raw HTTP over the unix socket


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def http_request(sock_path, method, path, body=None, headers=None, timeout=30):
    """One request on a fresh connection: (status, headers dict, body bytes)."""
    conn = UnixHTTPConnection(sock_path, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = body.encode()
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# the daemon


# Runs a command in a network namespace with nsenter: only the network namespace changes. (`ip
# netns exec` also gives it a mount namespace of its own, whose mounts — every container's
# rootfs and namespace binds — a restarted cryod would no longer see, as no cryod on a real host
# loses its mounts by restarting.) nsenter execs, so the process the test started is cryod.
def netns_command(ns, cmd):
    """cmd run inside network namespace `ns` (an `ip netns` name)."""
    return ["nsenter", f"--net=/run/netns/{ns}", *cmd]


class Daemon:
    def __init__(self, base, extra_args=(), netns=None):
        self.base = Path(base)
        # More cryod flags (e.g. --idle-timeout for a test's own daemon).
        self.extra_args = list(extra_args)
        # A network namespace (`ip netns` name) to run cryod in: a "host" of a Lan. Its
        # mounts live in a mount namespace of its own; its socket is reachable from here.
        self.netns = netns
        self.root = self.base / "root"
        self.run = self.base / "run"
        self.sock = str(self.base / "d.sock")
        self.host = "unix://" + self.sock
        fd, self.log_path = tempfile.mkstemp(prefix="cryo-e2e-cryod-", suffix=".log")
        os.close(fd)
        self.proc = None
        self.env = dict(os.environ, DOCKER_HOST=self.host)
        self.env.pop("DOCKER_CONTEXT", None)
        self.env.pop("DOCKER_API_VERSION", None)
        # Keep the CLI from touching the real user's config (contexts, credentials).
        self.env["DOCKER_CONFIG"] = str(self.base / "dockercfg")
        self.seen_ids = set()
        # Its own default bridge and subnet, so that test runs beside another cryod (or another
        # test session) never share a bridge while keeping separate address allocations.
        self.bridge = "cryoe2e" + uuid.uuid4().hex[:6]
        self.subnet_prefix = f"198.18.{random.randint(100, 250)}"

    # --- lifecycle

    # Fault points armed for cryod's next start (CRYO_FAULT, see FaultPoint.swift), e.g.
    # "checkpoint-frozen:kill,monitor-spawned:hold". A `hold` waits at its point until the file
    # base/release/POINT exists: `held(POINT)` and `release(POINT)`.
    fault = None

    def cryod_env(self):
        """cryod's environment: this process's, with CRYO_FAULT only when `fault` is set."""
        env = dict(os.environ)
        env.pop("CRYO_FAULT", None)
        env.pop("CRYO_FAULT_RELEASE", None)
        if self.fault:
            env["CRYO_FAULT"] = self.fault
            env["CRYO_FAULT_RELEASE"] = str(self.release_dir)
        return env

    @property
    def release_dir(self):
        d = self.base / "release"
        d.mkdir(exist_ok=True)
        return d

    def release(self, point):
        """Let every `hold` at `point` go on (now and from now on)."""
        (self.release_dir / point).touch()

    @contextlib.contextmanager
    def held(self, point):
        """A `hold` at `point` stops there inside the block; released when it ends (even failing)."""
        (self.release_dir / point).unlink(missing_ok=True)
        try:
            yield
        finally:
            self.release(point)

    def holds(self, point):
        """How many times cryod has stopped at the `hold` of `point` so far."""
        return Path(self.log_path).read_text(errors="replace").count(f"fault point {point}: hold")

    def with_fault(self, fault):
        """cryod again, with `fault` armed."""
        self.stop()
        self.fault = fault
        self.start()

    def without_fault(self):
        """After a faulted cryod died (or not): a clean cryod on the same root."""
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
        self.fault = None
        self.start(timeout=120)

    def wait_killed(self, point, timeout=120):
        """cryod has died by SIGKILL at its fault point `point`."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"cryod did not die at fault point {point}; log: {self.log_tail()}")
        assert self.proc.returncode == -signal.SIGKILL, (self.proc.returncode, self.log_tail())
        assert f"fault point {point}: kill" in Path(self.log_path).read_text(), self.log_tail()

    def _checked_env(self):
        # A debug cryod with CRYO_ASSERT_OFF_ACTOR=1 crashes on any disk I/O done on the engine
        # actor (OffActorCheck), so every engine test also checks that the actor never blocks.
        env = self.cryod_env()
        env.setdefault("CRYO_ASSERT_OFF_ACTOR", "1")
        return env

    def start(self, timeout=30):
        assert self.proc is None or self.proc.poll() is not None, "cryod already running"
        cryod = BIN_DIR / "cryod"
        with open(self.log_path, "ab") as log:
            log.write(f"==== cryod start {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            cmd = [str(cryod), "--root", str(self.root), "--exec-root", str(self.run), "-H", self.host,
                   "--bridge", self.bridge, "--default-subnet", self.subnet_prefix + ".0/24",
                   # Nothing may leave the machine: the docker CLI pulls a missing image by itself.
                   "--only-local-registries", *self.extra_args]
            if self.netns:
                cmd = netns_command(self.netns, cmd)
            self.proc = subprocess.Popen(
                cmd,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self._checked_env(), start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cryod exited with {self.proc.returncode} at start; log: {self.log_tail()}")
            try:
                st, _, body = http_request(self.sock, "GET", "/_ping", timeout=2)
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"cryod did not answer /_ping within {timeout}s; log: {self.log_tail()}")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        p = self.proc
        if p is None or p.poll() is not None:
            return
        p.send_signal(sig)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
            raise RuntimeError(f"cryod did not stop within {timeout}s after signal {sig}")

    def restart(self, sig=signal.SIGTERM):
        self.stop(sig)
        self.start()

    def log_tail(self, n=60):
        try:
            lines = Path(self.log_path).read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])

    # --- clients

    def docker(self, *args, input=None, timeout=DOCKER_TIMEOUT, check=False):
        """Runs the docker CLI; returns CompletedProcess with text stdout/stderr."""
        try:
            r = subprocess.run(["docker", *map(str, args)], env=self.env, input=input,
                               capture_output=True, text=isinstance(input, str) or input is None,
                               timeout=timeout)
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"docker {' '.join(map(str, args))} did not finish within {timeout}s "
                        f"(stdout={e.stdout!r} stderr={e.stderr!r})")
        if check and r.returncode != 0:
            pytest.fail(f"docker {' '.join(map(str, args))} failed rc={r.returncode}\n"
                        f"stdout: {r.stdout}\nstderr: {r.stderr}")
        return r

    def ok(self, *args, **kw):
        """docker CLI call that must succeed; returns stripped stdout."""
        return self.docker(*args, check=True, **kw).stdout.strip()

    def http(self, method, path, body=None, headers=None, timeout=30):
        return http_request(self.sock, method, path, body=body, headers=headers, timeout=timeout)

    def all_ids(self):
        ids = set(self.seen_ids)
        cdir = self.root / "containers"
        if cdir.is_dir():
            ids.update(p.name for p in cdir.iterdir())
        return ids

    def remove_all_containers(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            r = subprocess.run(["docker", "ps", "-aq", "--no-trunc"], env=self.env,
                               capture_output=True, text=True, timeout=30)
            ids = r.stdout.split()
            self.seen_ids.update(ids)
            if ids:
                subprocess.run(["docker", "rm", "-f", *ids], env=self.env,
                               capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            pass


def _proc_cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def kill_monitors(base):
    """SIGKILL every cryo-monitor whose config path is under base."""
    prefix = str(base).encode() + b"/"
    killed = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        argv = _proc_cmdline(d.name)
        if not argv or not argv[0].endswith(b"cryo-monitor"):
            continue
        if any(a.startswith(prefix) for a in argv[1:]):
            try:
                os.kill(int(d.name), signal.SIGKILL)
                killed.append(int(d.name))
            except ProcessLookupError:
                pass
    return killed


def _unescape_mountinfo(s):
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 3 < len(s) and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def mounts_under(base):
    prefix = str(base).rstrip("/") + "/"
    res = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mp = _unescape_mountinfo(line.split()[4])
        if mp.startswith(prefix) or mp == str(base):
            res.append(mp)
    return res


def unmount_all(base):
    for _ in range(5):
        mps = mounts_under(base)
        if not mps:
            return
        for mp in sorted(mps, key=lambda m: m.count("/"), reverse=True):
            if subprocess.run(["umount", mp], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", mp], capture_output=True)


def cgroup_dirs(ids):
    """/sys/fs/cgroup/<hierarchy>/cryo/<id> for every id that exists."""
    res = []
    if not CGROUP_ROOT.is_dir():
        return res
    for h in CGROUP_ROOT.iterdir():
        for cid in ids:
            d = h / "cryo" / cid
            if d.is_dir():
                res.append(d)
    return res


def kill_cgroup_procs(ids):
    for d in cgroup_dirs(ids):
        freezer = d / "freezer.state"
        if freezer.exists():
            try:
                freezer.write_text("THAWED")
            except OSError:
                pass
        for sub, _, _ in os.walk(d):
            try:
                pids = Path(sub, "cgroup.procs").read_text().split()
            except OSError:
                continue
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass


def remove_cgroups(ids):
    for d in cgroup_dirs(ids):
        for _ in range(20):
            subs = sorted((Path(s) for s, _, _ in os.walk(d)), key=lambda p: len(p.parts), reverse=True)
            try:
                for s in subs:
                    s.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def network_bridges(root):
    """Bridges of the networks cryod created under root (the default network's too: each test
    daemon has its own)."""
    try:
        nets = json.loads((Path(root) / "networks" / "networks.json").read_text())["networks"]
    except (OSError, ValueError, KeyError):
        return []
    return [n["bridge"] for n in nets if n.get("bridge") and n["bridge"] != "cryo0"]


def cleanup(daemon):
    daemon.remove_all_containers()
    ids = daemon.all_ids()
    bridges = network_bridges(daemon.root)
    try:
        daemon.stop(signal.SIGTERM, timeout=20)
    except Exception:
        pass
    if daemon.proc is not None and daemon.proc.poll() is None:
        daemon.proc.kill()
        daemon.proc.wait(timeout=10)
    kill_monitors(daemon.base)
    kill_cgroup_procs(ids)
    time.sleep(0.2)
    unmount_all(daemon.base)
    remove_cgroups(ids)
    for br in bridges:
        if Path("/sys/class/net", br).exists():
            subprocess.run(["ip", "link", "del", br], capture_output=True)
    shutil.rmtree(daemon.base, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# fixtures


def _check_requirements():
    if os.geteuid() != 0:
        unavailable("must run as root (cryod creates namespaces, cgroups and mounts)")
    if shutil.which("docker") is None:
        unavailable("the docker CLI is not installed")
    for b in ("cryod", "cryo-monitor", "cryo-runtime"):
        if not (BIN_DIR / b).is_file():
            unavailable(f"{BIN_DIR / b} not found: run `swift build` first (or set CRYO_BIN_DIR)")
    if not (IMAGES / "busybox.tar").is_file():
        r = subprocess.run(["bash", str(REPO / "scripts" / "make-test-images.sh"), str(IMAGES)],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            unavailable(f"scripts/make-test-images.sh failed: {r.stderr[-2000:]}")


def started(d):
    """d started, with the busybox test image loaded; cleaned up if that fails."""
    try:
        d.start()
        d.ok("load", "-i", IMAGES / "busybox.tar", timeout=120)
    except BaseException:
        cleanup(d)
        raise
    return d


@contextlib.contextmanager
def fixture_daemon(prefix, cls=None, **kwargs):
    """A started cryod (`cls`, default Daemon) on a fresh /tmp/PREFIX… base for a fixture's
    life; cleaned up after, even when a test failed."""
    _check_requirements()
    base = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    # <run>/mon/<64 hex>.sock.console (tty containers) must fit in sun_path (107 + NUL).
    assert len(base) + len("/run/mon/") + 64 + len(".sock.console") <= 107, base
    d = started((cls or Daemon)(base, **kwargs))
    try:
        yield d
    finally:
        cleanup(d)
        print(f"\ncryod log: {d.log_path}")


@pytest.fixture(scope="session")
def daemon():
    with fixture_daemon("ce-") as d:
        yield d


def cryo_runner(d):
    """cryo(*args) → CompletedProcess (text) against d; cryo.ok(...) asserts rc 0; cryo.daemon is d."""
    def run(*args, check=False, timeout=120):
        r = subprocess.run([str(BIN_DIR / "cryo"), "-H", d.host, *map(str, args)],
                           capture_output=True, text=True, timeout=timeout)
        if check:
            assert r.returncode == 0, f"cryo {' '.join(map(str, args))} → rc {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r
    run.ok = lambda *a, **k: run(*a, check=True, **k)
    run.daemon = d
    return run


@pytest.fixture
def cryo(docker_cli, criu):
    """The cryo CLI against the session daemon (see cryo_runner)."""
    return cryo_runner(docker_cli)


@pytest.fixture
def docker_cli(daemon):
    """The daemon, after each test every container is removed."""
    yield daemon
    daemon.remove_all_containers()


@pytest.fixture
def restart_daemon(daemon):
    """restart_daemon(sig=signal.SIGTERM): stop cryod with sig (SIGTERM or SIGKILL) and start
    it again with the same root, exec-root and socket."""
    def restart(sig=signal.SIGTERM):
        daemon.restart(sig)
    yield restart
    if daemon.proc is None or daemon.proc.poll() is not None:
        daemon.start()


@pytest.fixture
def name():
    """A unique container name for this test."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def criu():
    if shutil.which("criu") is None:
        unavailable("criu is not installed (run scripts/setup.sh)")
    r = subprocess.run(["criu", "check"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or "Looks good" not in (r.stdout + r.stderr):
        unavailable(f"criu check failed: {r.stdout}{r.stderr}")


@pytest.fixture
def dpy(daemon):
    """A docker-py client on the daemon; every container removed afterwards."""
    try:
        import docker
    except ImportError:
        unavailable("docker-py is not installed (pip install docker==7.1.0)")
    c = docker.DockerClient(base_url=daemon.host, timeout=60)
    yield c
    c.close()
    daemon.remove_all_containers()


# --------------------------------------------------------------------------------------------
# helpers shared by the suites


def wait_for(pred, timeout=15, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def inspect(daemon, ref):
    return json.loads(daemon.ok("inspect", ref))[0]


def counter_values(text):
    return [int(x) for x in text.split() if x.isdigit()]


COUNTER = "i=0; while true; do echo $i; i=$((i+1)); sleep 0.1; done"
