"""Real workloads across checkpoint/restore (issue 4): Redis with a client that keeps writing
over one connection, and a Python HTTP server behind -p, driven through the docker CLI (and
once through the raw API's ?tcp-established=1).

Images: redis:latest and python-http:latest from scripts/make-app-images.sh (Debian's
binaries on the busybox rootfs). Addresses: 198.19.x.0/24 networks and 127.0.0.1 published
ports, picked at random; traffic never leaves this machine.
"""

import json
import os
import random
import socket
import subprocess
import threading
import time

import pytest

from conftest import IMAGES, REPO, inspect, unavailable, wait_for
from test_networking import free_port, ip_of, net  # noqa: F401  (net is a fixture)

TCP_LABEL = "io.cryo.checkpoint.tcp-established"
CRIU_TIMEOUT = 120


@pytest.fixture(scope="module")
def app_images(daemon):
    """redis:latest and python-http:latest loaded into the session's cryod."""
    if not all((IMAGES / f).is_file() for f in ("redis.tar", "python-http.tar")):
        r = subprocess.run(["bash", str(REPO / "scripts" / "make-app-images.sh"), str(IMAGES)],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            unavailable(f"scripts/make-app-images.sh failed: {r.stderr[-2000:]}")
    for f in ("redis.tar", "python-http.tar"):
        daemon.ok("load", "-i", IMAGES / f, timeout=300)
    return daemon


def run_published(d, name, container_port, *args):
    """docker run -d -p <random free host port>:container_port ...; retries with another port
    if a concurrent run took it. Returns the host port."""
    for _ in range(10):
        port = free_port()
        r = d.docker("run", "-d", "--name", name, "-p", f"{port}:{container_port}", *args)
        if r.returncode == 0:
            return port
        d.docker("rm", "-f", name)
        if "already in use" not in r.stderr and "not available" not in r.stderr:
            pytest.fail(f"docker run failed: {r.stderr}")
    pytest.fail("no free host port after 10 tries")


def running(d, name):
    return inspect(d, name)["State"]["Running"]


# --------------------------------------------------------------------------------------------
# Redis


class Resp:
    """A minimal RESP2 client on one TCP connection (no reconnects, ever)."""

    def __init__(self, port, timeout=60):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""

    def command(self, *args):
        out = [f"*{len(args)}\r\n".encode()]
        for a in args:
            b = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(out))
        return self._reply()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exactly(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:].decode()
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RuntimeError(f"redis error: {rest}")
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exactly(n).decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError(f"unexpected RESP line {line!r}")

    def close(self):
        self.sock.close()


def ping(port):
    """A new connection through the published port answers PING."""
    try:
        c = Resp(port, timeout=5)
        try:
            return c.command("PING") == "PONG"
        finally:
            c.close()
    except OSError:
        return False


def dbsize(port):
    """DBSIZE over a new connection."""
    c = Resp(port, timeout=10)
    try:
        return c.command("DBSIZE")
    finally:
        c.close()


class Writer(threading.Thread):
    """Keeps doing SET key:N N on one connection; N counts as acknowledged only once +OK was
    read, and N+1 is sent only after that, so keys 0..acked-1 are exactly the acknowledged
    ones. pause() returns once the writer sits between two commands (nothing in flight)."""

    def __init__(self, conn):
        super().__init__(daemon=True)
        self.conn = conn
        self.acked = 0
        self.longest_wait = 0.0   # longest wait for one +OK (reported, never asserted)
        self.error = None
        self._pause = threading.Event()
        self._paused = threading.Event()
        self._resume = threading.Event()
        self._stopping = threading.Event()

    def run(self):
        try:
            n = 0
            while not self._stopping.is_set():
                if self._pause.is_set():
                    self._paused.set()
                    self._resume.wait()
                    self._resume.clear()
                    self._paused.clear()
                    continue
                sent = time.monotonic()
                reply = self.conn.command("SET", f"key:{n}", n)
                self.longest_wait = max(self.longest_wait, time.monotonic() - sent)
                if reply != "OK":
                    raise RuntimeError(f"SET key:{n} answered {reply!r}")
                n += 1
                self.acked = n
                time.sleep(0.002)   # leave the two cores to cryod and CRIU
        except Exception as e:   # reported by check()
            self.error = e

    def check(self):
        assert self.error is None, f"the client's connection failed after {self.acked} keys: {self.error!r}"
        assert self.is_alive(), "the client thread ended"

    def pause(self):
        self._pause.set()
        deadline = time.monotonic() + 60
        while not self._paused.wait(0.2):
            self.check()
            assert time.monotonic() < deadline, f"the client did not pause within 60 s (acked {self.acked})"
        return self.acked

    def resume(self):
        self._pause.clear()
        self._resume.set()

    def wait_progress(self, more, timeout=60):
        target = self.acked + more
        deadline = time.monotonic() + timeout
        while self.acked < target:
            self.check()
            assert time.monotonic() < deadline, f"no progress: {self.acked} of {target} keys acknowledged after {timeout}s"
            time.sleep(0.05)

    def finish(self):
        self._stopping.set()
        self.resume()
        self.join(timeout=60)
        assert not self.is_alive(), "the client thread did not stop"
        assert self.error is None, f"the client's connection failed after {self.acked} keys: {self.error!r}"


def redis_cycles(d, name, port, ip, network, cycles, checkpoint, restore, remove):
    """`cycles` checkpoint/restore cycles of a Redis container while a client keeps writing
    over one connection; every odd cycle uses --leave-running.

    A restore brings back the state of its image. After a --leave-running dump the container
    goes on serving, so whatever is acknowledged to the client after that dump is not in the
    image: restoring it would lose those keys and rewind the connection's TCP sequence
    numbers behind what the client already received. So the leave-running cycles go:
      pause the client between two commands (nothing in flight)
      → checkpoint --leave-running (the container keeps running; a new connection answers)
      → checkpoint without it (stops the container; with the TCP option CRIU kills it with
        the socket in repair mode, so no FIN or RST reaches the client)
      → restore the *leave-running* image → resume the client.
    No byte moved on the connection between the two dumps, so the leave-running image holds
    every acknowledged key and the connection exactly as the client last saw it. The other
    cycles checkpoint and restore while the client keeps writing: its request in flight is
    retransmitted by its kernel until the restored Redis answers it.
    """
    client = Resp(port)
    client_id = client.command("CLIENT", "ID")
    w = Writer(client)
    w.start()
    w.wait_progress(20)
    for i in range(cycles):
        if i % 2 == 1:
            paused_at = w.pause()
            checkpoint(f"lr{i}", leave_running=True)
            assert running(d, name), f"cycle {i}: --leave-running stopped the container"
            assert ping(port), f"cycle {i}: a new connection got no PONG after the --leave-running dump"
            checkpoint(f"stop{i}", leave_running=False)
            assert not running(d, name)
            restore(f"lr{i}")
            assert dbsize(port) == paused_at, f"cycle {i}: the restored image does not hold the {paused_at} keys"
            remove(f"stop{i}")
            remove(f"lr{i}")
            w.resume()
        else:
            checkpoint(f"cp{i}", leave_running=False)
            assert not running(d, name), f"cycle {i}: the checkpoint did not stop the container"
            restore(f"cp{i}")
            remove(f"cp{i}")
        assert ip_of(d, name, network) == ip, f"cycle {i}: the address changed"
        w.wait_progress(10)
        assert ping(port), f"cycle {i}: the published port does not answer after the restore"
    w.wait_progress(10)
    w.finish()
    acked = w.acked

    # The same connection, never reconnected: Redis still knows it by the same id.
    assert client.command("CLIENT", "ID") == client_id
    assert client.command("DBSIZE") == acked
    for start in range(0, acked, 1000):
        keys = [f"key:{n}" for n in range(start, min(acked, start + 1000))]
        values = client.command("MGET", *keys)
        missing = [k for k, v in zip(keys, values) if v != k.split(":")[1]]
        assert not missing, f"{len(missing)} acknowledged keys lost, first {missing[:5]}"
    client.close()
    assert ping(port)
    print(f"\n{cycles} cycles: {acked} keys acknowledged over one connection; "
          f"longest wait for one reply {w.longest_wait:.2f} s")
    return acked


def test_redis_writer_across_20_checkpoints_docker_cli(app_images, net, name, criu):
    """Through the docker CLI; the container's label turns on --tcp-established."""
    d = app_images
    n, pre = net()
    port = run_published(d, name, 6379, "--network", n, "--label", f"{TCP_LABEL}=true", "redis")
    assert inspect(d, name)["Config"]["Labels"][TCP_LABEL] == "true"
    wait_for(lambda: ping(port), timeout=30, what=f"redis on 127.0.0.1:{port}")
    ip = ip_of(d, name, n)
    assert ip.startswith(pre + ".")

    def checkpoint(cp, leave_running):
        args = ["--leave-running"] if leave_running else []
        assert d.ok("checkpoint", "create", *args, name, cp, timeout=CRIU_TIMEOUT) == cp

    def restore(cp):
        d.ok("start", "--checkpoint", cp, name, timeout=CRIU_TIMEOUT)

    def remove(cp):
        d.ok("checkpoint", "rm", name, cp)

    acked = redis_cycles(d, name, port, ip, n, 20, checkpoint, restore, remove)
    assert acked > 200
    assert d.ok("checkpoint", "ls", name).splitlines()[1:] == []


def test_redis_writer_across_checkpoints_raw_api(app_images, net, name, criu):
    """Through the API with ?tcp-established=1 (no label); fewer cycles."""
    d = app_images
    n, pre = net()
    port = run_published(d, name, 6379, "--network", n, "redis")
    wait_for(lambda: ping(port), timeout=30, what=f"redis on 127.0.0.1:{port}")
    ip = ip_of(d, name, n)

    def checkpoint(cp, leave_running):
        st, _, body = d.http("POST", f"/containers/{name}/checkpoints?tcp-established=1",
                             body=json.dumps({"CheckpointID": cp, "Exit": not leave_running}),
                             headers={"Content-Type": "application/json"}, timeout=CRIU_TIMEOUT)
        assert st == 201, body
        report = json.loads(body)
        assert report["tcpEstablished"] is True and report["leftRunning"] == leave_running, report

    def restore(cp):
        st, _, body = d.http("POST", f"/containers/{name}/start?checkpoint={cp}", timeout=CRIU_TIMEOUT)
        assert st == 204, body

    def remove(cp):
        st, _, body = d.http("DELETE", f"/containers/{name}/checkpoints/{cp}")
        assert st == 204, body

    redis_cycles(d, name, port, ip, n, 4, checkpoint, restore, remove)


def test_label_value_must_be_boolean(app_images, name):
    r = app_images.docker("run", "-d", "--name", name, "--label", f"{TCP_LABEL}=sometimes", "busybox", "true")
    assert r.returncode != 0 and TCP_LABEL in r.stderr, r.stderr


# --------------------------------------------------------------------------------------------
# Python HTTP server

# python-http's default command serves HTTP/1.0 (one request per connection); this one speaks
# HTTP/1.1 keep-alive, on threads so a held connection does not block new ones.
KEEPALIVE_SERVER = ("import functools, http.server as h; "
                    "h.SimpleHTTPRequestHandler.protocol_version = 'HTTP/1.1'; "
                    "h.ThreadingHTTPServer(('', 8000), functools.partial(h.SimpleHTTPRequestHandler, "
                    "directory='/srv')).serve_forever()")
HELLO = b"hello from cryo\n"


def http_get(port, timeout=5):
    """GET / on a new connection: the body, or None if nothing answers."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            status, body = request(s)
            return body if status == 200 else None
    except OSError:
        return None


def request(s):
    """One HTTP/1.1 GET / on socket s; reads exactly one response (Content-Length framed)."""
    s.sendall(b"GET / HTTP/1.1\r\nHost: cryo\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError(f"server closed the connection (got {data!r})")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(v) for k, _, v in (ln.partition(":") for ln in lines[1:]) if k.lower() == "content-length")
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("server closed the connection mid-body")
        body += chunk
    return status, body


def test_python_http_server_plain_checkpoints(app_images, name, criu):
    """python-http as built (HTTP/1.0): no connection is open during a checkpoint, so no TCP
    option is needed. Reachable on the host port before, not while checkpointed, and after."""
    d = app_images
    port = run_published(d, name, 8000, "python-http")
    wait_for(lambda: http_get(port) == HELLO, timeout=30, what=f"python-http on 127.0.0.1:{port}")
    ip = ip_of(d, name)
    d.ok("checkpoint", "create", name, "cp1", timeout=CRIU_TIMEOUT)
    assert not running(d, name)
    assert http_get(port, timeout=1) is None
    d.ok("start", "--checkpoint", "cp1", name, timeout=CRIU_TIMEOUT)
    assert ip_of(d, name) == ip
    assert http_get(port) == HELLO
    # --leave-running: serves on; stopped and restored from that image, serves again.
    d.ok("checkpoint", "create", "--leave-running", name, "cp2", timeout=CRIU_TIMEOUT)
    assert running(d, name)
    assert http_get(port) == HELLO
    d.ok("stop", "-t", "2", name)
    d.ok("start", "--checkpoint", "cp2", name, timeout=CRIU_TIMEOUT)
    assert http_get(port) == HELLO


def test_python_http_keepalive_connection_across_restore(app_images, net, name, criu):
    """An HTTP/1.1 keep-alive connection opened before the checkpoint serves its next request
    after the restore, on the same socket (tcp-established through the container's label)."""
    d = app_images
    n, _ = net()
    port = run_published(d, name, 8000, "--network", n, "--label", f"{TCP_LABEL}=true",
                         "python-http", "python3", "-c", KEEPALIVE_SERVER)
    wait_for(lambda: http_get(port) == HELLO, timeout=30, what=f"keep-alive server on 127.0.0.1:{port}")
    ip = ip_of(d, name, n)
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    local = s.getsockname()
    assert request(s) == (200, HELLO)

    d.ok("checkpoint", "create", name, "k1", timeout=CRIU_TIMEOUT)
    assert not running(d, name)
    assert http_get(port, timeout=1) is None
    d.ok("start", "--checkpoint", "k1", name, timeout=CRIU_TIMEOUT)
    assert ip_of(d, name, n) == ip
    assert request(s) == (200, HELLO)          # the held connection carries on
    assert http_get(port) == HELLO             # and the listening socket accepts new ones

    d.ok("checkpoint", "create", "--leave-running", name, "k2", timeout=CRIU_TIMEOUT)
    assert running(d, name)
    assert request(s) == (200, HELLO)
    assert http_get(port) == HELLO
    assert s.getsockname() == local
    s.close()


UDP_ECHO = ("import socket\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "s.bind(('0.0.0.0', 5000))\n"
            "while True:\n"
            "    data, peer = s.recvfrom(512)\n"
            "    s.sendto(b'echo:' + data, peer)\n")


def udp_ask(port, text, timeout=0.5):
    """One datagram to 127.0.0.1:port; the reply, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(text, ("127.0.0.1", port))
            return s.recvfrom(512)[0]
        except OSError:
            return None


def test_udp_published_port_before_and_after_restore(app_images, name, criu):
    """-p HOST:CONTAINER/udp: a UDP echo server answers on the host port (portmap DNAT for
    UDP), and again after a checkpoint and restore."""
    d = app_images
    for _ in range(10):
        port = free_port()
        r = d.docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:5000/udp",
                     "python-http", "python3", "-c", UDP_ECHO)
        if r.returncode == 0:
            break
        assert "is not available" in r.stderr or "already" in r.stderr, r.stderr
        d.docker("rm", "-f", name)
    else:
        pytest.fail("no free UDP host port")
    assert f"5000/udp -> 127.0.0.1:{port}" in d.ok("port", name)
    wait_for(lambda: udp_ask(port, b"one") == b"echo:one", what="the UDP echo through the published port")
    d.ok("checkpoint", "create", name, "u1", timeout=CRIU_TIMEOUT)
    assert udp_ask(port, b"down", timeout=0.3) is None
    d.ok("start", "--checkpoint", "u1", name, timeout=CRIU_TIMEOUT)
    wait_for(lambda: udp_ask(port, b"two") == b"echo:two", what="the UDP echo after the restore")


def test_network_host_shares_the_host_namespace_and_name(app_images, name):
    """--network host: the container is in the host's network namespace and, as with Docker,
    carries the host's hostname."""
    d = app_images
    out = d.ok("run", "--rm", "--name", name, "--network", "host", "busybox",
               "sh", "-c", "readlink /proc/self/ns/net; hostname").split()
    assert out[0] == os.readlink("/proc/self/ns/net"), out
    assert out[1] == socket.gethostname(), out
