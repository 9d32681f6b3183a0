"""cryod on TCP with mutual TLS, Docker's way: `cryo tls init/issue` make the files, cryod
listens on `-H unix://… -H tcp://127.0.0.1:PORT --tlsverify …`, and the docker CLI,
docker-py and the cryo CLI talk to it over TLS (flags, and DOCKER_HOST/DOCKER_TLS_VERIFY/
DOCKER_CERT_PATH). Refused: a client certificate of another CA, no client certificate, an
expired one, TLS 1.1, tcp:// without --tlsverify (cryod does not start), a server
certificate whose names do not match what the client dialled.

Only 127.0.0.1 and ports the kernel hands out as free are used.
"""

import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

import pytest

from conftest import BIN_DIR, IMAGES, Daemon, _check_requirements, cleanup, unavailable

CRYO = str(BIN_DIR / "cryo")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cryo(*args, env=None, input=None, timeout=60):
    e = dict(os.environ)
    for k in ("CRYO_HOST", "DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        e.pop(k, None)
    if env:
        e.update(env)
    return subprocess.run([CRYO, *map(str, args)], env=e, input=input, capture_output=True, text=True,
                          timeout=timeout)


def cryo_ok(*args, **kw):
    r = cryo(*args, **kw)
    assert r.returncode == 0, f"cryo {' '.join(map(str, args))} → rc {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


class PKI:
    """A CA and identities made with `cryo tls`, under dir."""

    def __init__(self, dir, name=None):
        self.dir = Path(dir)
        self.ca = self.dir / "ca"
        out = json.loads(cryo_ok("tls", "init", "--dir", self.ca, "--format", "json", *(["--name", name] if name else [])))
        assert out["certificate"]["isCA"] is True

    def issue(self, sub, *args):
        out = self.dir / sub
        return json.loads(cryo_ok("tls", "issue", "--ca", self.ca, "--out", out, "--format", "json", *args))


class TLSDaemon:
    def __init__(self, d, pki, port):
        self.d = d
        self.pki = pki
        self.port = port
        self.tcp = f"tcp://127.0.0.1:{port}"
        self.client = pki.dir / "client"

    def docker_flags(self, certdir=None):
        c = Path(certdir or self.client)
        return ["--tlsverify", "--tlscacert", c / "ca.pem", "--tlscert", c / "cert.pem", "--tlskey", c / "key.pem",
                "-H", self.tcp]

    def docker(self, *args, certdir=None, env=None, input=None, timeout=60):
        e = dict(self.d.env)
        e.pop("DOCKER_HOST", None)
        if env is not None:
            e.update(env)
            flags = []
        else:
            flags = self.docker_flags(certdir)
        return subprocess.run(["docker", *map(str, flags), *map(str, args)], env=e, input=input,
                              capture_output=True, text=True, timeout=timeout)

    def docker_ok(self, *args, **kw):
        r = self.docker(*args, **kw)
        assert r.returncode == 0, f"docker {args} → rc {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r.stdout


@pytest.fixture(scope="module")
def tls_daemon():
    _check_requirements()
    base = tempfile.mkdtemp(prefix="ct-", dir="/tmp")
    pki = PKI(Path(base) / "pki")
    pki.issue("server", "--name", "localhost", "--ip", "127.0.0.1")
    pki.issue("client", "--name", "client")
    port = free_port()
    s = pki.dir / "server"
    d = Daemon(base, extra_args=["-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", s / "ca.pem",
                                 "--tlscert", s / "cert.pem", "--tlskey", s / "key.pem", "--idle-timeout", "5"])
    try:
        d.start()
        d.ok("load", "-i", IMAGES / "busybox.tar", timeout=120)
        yield TLSDaemon(d, pki, port)
    finally:
        cleanup(d)
        print(f"\ncryod log: {d.log_path}")


def test_tls_files_modes_and_refusals(tmp_path):
    pki = PKI(tmp_path / "pki")
    assert stat.S_IMODE(os.stat(pki.ca).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(pki.ca / "ca-key.pem").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(pki.ca / "ca.pem").st_mode) == 0o644
    out = pki.issue("n1", "--name", "node1", "--ip", "127.0.0.1", "--ip", "::1", "--days", "10")
    c = out["certificate"]
    assert c["dnsNames"] == ["node1"] and c["ipAddresses"] == ["127.0.0.1", "::1"] and not c["isCA"]
    assert set(out["files"]) == {"ca", "cert", "key"}
    assert stat.S_IMODE(os.stat(out["files"]["key"]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(out["files"]["cert"]).st_mode) == 0o644
    # The certificate says what openssl sees: both usages, the names.
    text = subprocess.run(["openssl", "x509", "-in", out["files"]["cert"], "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    assert "TLS Web Server Authentication, TLS Web Client Authentication" in text
    assert "DNS:node1" in text and "IP Address:127.0.0.1" in text
    subprocess.run(["openssl", "verify", "-CAfile", pki.ca / "ca.pem", out["files"]["cert"]], check=True,
                   capture_output=True)
    # An existing CA key is not replaced without --force.
    key = (pki.ca / "ca-key.pem").read_bytes()
    r = cryo("tls", "init", "--dir", pki.ca)
    assert r.returncode != 0 and "--force" in r.stderr
    assert (pki.ca / "ca-key.pem").read_bytes() == key
    r = cryo("tls", "issue", "--ca", pki.ca, "--out", tmp_path / "x")
    assert r.returncode != 0 and "--name or --ip" in r.stderr
    assert "serverAuth" in cryo_ok("tls", "issue", "--help")


def test_docker_cli_over_tls(tls_daemon):
    t = tls_daemon
    v = t.docker_ok("version", "--format", "{{.Server.Version}}")
    assert v.strip()
    assert t.docker_ok("run", "--rm", "busybox", "echo", "over tls").strip() == "over tls"
    name = "tls" + uuid.uuid4().hex[:8]
    t.docker_ok("run", "-d", "--name", name, "busybox", "sh", "-c", "echo started; sleep 300")
    try:
        assert name in t.docker_ok("ps", "--format", "{{.Names}}")
        # exec -i: stdin through the hijacked TLS stream, EOF through its half-close.
        assert t.docker_ok("exec", "-i", name, "cat", input="through exec\n") == "through exec\n"
        assert "started" in t.docker_ok("logs", name)
    finally:
        t.docker("rm", "-f", name)
    # run -i (attach): stdin in, output out, exit code back.
    r = t.docker("run", "--rm", "-i", "busybox", "sh", "-c", "cat; exit 3", input="attached\n")
    assert r.returncode == 3 and r.stdout == "attached\n", r


def test_docker_env_vars(tls_daemon):
    t = tls_daemon
    env = {"DOCKER_HOST": t.tcp, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(t.client)}
    assert t.docker_ok("run", "--rm", "busybox", "echo", "env", env=env).strip() == "env"
    t.docker_ok("ps", env=env)
    name = "tls" + uuid.uuid4().hex[:8]
    t.docker_ok("run", "-d", "--name", name, "busybox", "sh", "-c", "for i in 1 2 3; do echo line$i; done; sleep 1",
                env=env)
    # logs -f: a streamed response that ends when the container does.
    out = t.docker_ok("logs", "-f", name, env=env)
    assert out.split() == ["line1", "line2", "line3"]
    t.docker_ok("rm", "-f", name, env=env)


def test_docker_py_over_tls(tls_daemon, monkeypatch):
    # requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override the session's CA (its known
    # merge order): without this, the system store would be used instead of our CA.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    try:
        import docker
        from docker.tls import TLSConfig
    except ImportError:
        unavailable("docker-py is not installed")
    t = tls_daemon
    c = t.client
    tls = TLSConfig(client_cert=(str(c / "cert.pem"), str(c / "key.pem")), ca_cert=str(c / "ca.pem"), verify=True)
    client = docker.DockerClient(base_url=f"https://127.0.0.1:{t.port}", tls=tls, timeout=60)
    try:
        assert client.version()["ApiVersion"]
        assert client.containers.run("busybox", ["echo", "docker-py"], remove=True) == b"docker-py\n"
        c = client.containers.run("busybox", ["sleep", "300"], detach=True)
        try:
            r = c.exec_run(["sh", "-c", "echo exec over tls"])
            assert r.exit_code == 0 and r.output == b"exec over tls\n", r
        finally:
            c.remove(force=True)
    finally:
        client.close()


def test_cryo_cli_over_tls(tls_daemon):
    t = tls_daemon
    c = t.client
    flags = ["-H", t.tcp, "--tlsverify", "--tlscacert", c / "ca.pem", "--tlscert", c / "cert.pem", "--tlskey",
             c / "key.pem"]
    assert cryo_ok(*flags, "run", "--rm", "busybox", "echo", "cryo over tls").strip() == "cryo over tls"
    env = {"DOCKER_HOST": t.tcp, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(c)}
    name = "tls" + uuid.uuid4().hex[:8]
    cryo_ok("run", "-d", "--name", name, "busybox", "sleep", "300", env=env)
    try:
        assert name in cryo_ok("ps", env=env)
        assert cryo_ok("exec", "-i", name, "cat", env=env, input="cryo exec\n") == "cryo exec\n"
        short = name + "l"
        cryo_ok("run", "-d", "--name", short, "busybox", "sh", "-c", "echo one; echo two", env=env)
        assert cryo_ok("logs", "-f", short, env=env).split() == ["one", "two"]
        cryo("rm", "-f", short, env=env)
    finally:
        cryo("rm", "-f", name, env=env)
    # tcp:// without TLS material: refused before dialling, saying why.
    r = cryo("-H", t.tcp, "ps")
    assert r.returncode != 0 and "without TLS" in r.stderr, r


def test_client_of_another_ca_is_refused(tls_daemon, tmp_path):
    t = tls_daemon
    other = PKI(tmp_path / "other", name="other CA")
    other.issue("client", "--name", "client")
    # Trusts the daemon's CA, but presents a certificate of another CA.
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(t.client / "ca.pem", mixed / "ca.pem")
    shutil.copy(other.dir / "client" / "cert.pem", mixed / "cert.pem")
    shutil.copy(other.dir / "client" / "key.pem", mixed / "key.pem")
    r = t.docker("version", certdir=mixed)
    assert r.returncode != 0 and "Server:" not in r.stdout, r
    # cryod names its CA in the handshake, so Go's client may keep a certificate of another
    # CA to itself; either way the handshake is refused and logged with the reason.
    log = t.d.log_tail(200)
    assert ("certificate verify failed (unknown CA: the certificate of CN=client is not signed by a trusted CA "
            "(its issuer: CN=other CA))" in log or "failed: peer did not return a certificate" in log), log
    # cryod is unharmed.
    t.docker_ok("ps")


def test_plain_http_client_is_told_to_use_tls(tls_daemon):
    t = tls_daemon
    r = t.docker("version", env={"DOCKER_HOST": t.tcp})
    assert r.returncode != 0 and "Server:" not in r.stdout, r
    assert "Client sent an HTTP request to a TLS-only port" in r.stderr, r.stderr


def test_no_client_certificate_is_refused(tls_daemon):
    t = tls_daemon
    ctx = ssl.create_default_context(cafile=str(t.client / "ca.pem"))
    with socket.create_connection(("127.0.0.1", t.port), timeout=30) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
                data = s.recv(100)
                assert not data.startswith(b"HTTP/1.1"), data
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
            assert "certificate" in str(e).lower() or isinstance(e, (ConnectionResetError, BrokenPipeError)), e


def test_expired_client_certificate_is_refused(tls_daemon):
    t = tls_daemon
    t.pki.issue("expired", "--name", "client", "--days", "1", "--backdate", "3")
    r = t.docker("version", certdir=t.pki.dir / "expired")
    assert r.returncode != 0 and "Server:" not in r.stdout, r
    assert "certificate verify failed (the certificate of CN=client expired on" in t.d.log_tail(200)


def test_tls_1_1_and_cbc_suites_are_refused_and_1_2_accepted(tls_daemon):
    t = tls_daemon
    if shutil.which("openssl") is None:
        unavailable("openssl is not installed")
    c = t.client
    base = ["openssl", "s_client", "-connect", f"127.0.0.1:{t.port}", "-CAfile", c / "ca.pem",
            "-cert", c / "cert.pem", "-key", c / "key.pem", "-verify_return_error"]
    ok = subprocess.run([*map(str, base), "-tls1_2"], input="", capture_output=True, text=True, timeout=30)
    assert "Protocol  : TLSv1.2" in ok.stdout or "TLSv1.2" in ok.stdout, ok.stdout + ok.stderr
    # SECLEVEL=0 lets this client offer TLS 1.1 at all; the server must still refuse it.
    old = subprocess.run([*map(str, base), "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"], input="",
                         capture_output=True, text=True, timeout=30)
    assert old.returncode != 0, old.stdout
    out = old.stdout + old.stderr
    assert "alert protocol version" in out and "Cipher is (NONE)" in out, out
    assert "failed: unsupported protocol" in t.d.log_tail(200)
    # TLS 1.2 with a CBC suite (ECDHE, but not AEAD): no shared cipher.
    cbc = subprocess.run([*map(str, base), "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"], input="",
                         capture_output=True, text=True, timeout=30)
    assert cbc.returncode != 0 and "Cipher is (NONE)" in cbc.stdout, cbc.stdout + cbc.stderr
    assert "failed: no shared cipher" in t.d.log_tail(200)


def test_idle_tcp_client_is_dropped(tls_daemon):
    """A client that connects and sends nothing (no handshake) is closed by the idle timeout."""
    t = tls_daemon
    with socket.create_connection(("127.0.0.1", t.port), timeout=60) as s:
        assert s.recv(1) == b""


def test_tcp_without_tlsverify_refuses_to_start(tmp_path):
    if os.geteuid() != 0:
        unavailable("cryod must run as root")
    port = free_port()
    r = subprocess.run([str(BIN_DIR / "cryod"), "--root", tmp_path / "root", "--exec-root", tmp_path / "run",
                        "-H", f"unix://{tmp_path}/d.sock", "-H", f"tcp://127.0.0.1:{port}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "refusing to listen on TCP without TLS" in r.stderr, r.stderr
    assert not (tmp_path / "root").exists()


def test_server_certificate_for_another_name_is_refused_by_clients(tmp_path):
    """A TLS server (same CA, client certificates required) whose certificate names neither
    127.0.0.1 nor localhost: docker, docker-py and cryo dialling 127.0.0.1 refuse it."""
    pki = PKI(tmp_path / "pki")
    pki.issue("server", "--name", "elsewhere", "--ip", "127.0.0.2")
    pki.issue("client", "--name", "client")
    s = pki.dir / "server"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(s / "cert.pem", s / "key.pem")
    ctx.load_verify_locations(s / "ca.pem")
    ctx.verify_mode = ssl.CERT_REQUIRED
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve():
        listener.settimeout(0.5)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                pass

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        c = pki.dir / "client"
        env = dict(os.environ, DOCKER_CONFIG=str(tmp_path / "dockercfg"))
        env.pop("DOCKER_HOST", None)
        r = subprocess.run(["docker", "--tlsverify", "--tlscacert", c / "ca.pem", "--tlscert", c / "cert.pem",
                            "--tlskey", c / "key.pem", "-H", f"tcp://127.0.0.1:{port}", "version"],
                           capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode != 0 and "127.0.0.1" in r.stderr and "valid for" in r.stderr, r.stderr
        r = cryo("-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", c / "ca.pem", "--tlscert",
                 c / "cert.pem", "--tlskey", c / "key.pem", "ps")
        assert r.returncode != 0 and "TLS handshake with 127.0.0.1:" in r.stderr, r.stderr
    finally:
        stop.set()
        listener.close()
        th.join(timeout=10)


def test_shutdown_closes_hijacked_tls_streams(tls_daemon):
    """cryod stops with an exec stream open over TLS; the client sees its connection end.
    (Last in this file: it restarts the module's daemon.)"""
    t = tls_daemon
    name = "tls" + uuid.uuid4().hex[:8]
    t.docker_ok("run", "-d", "--name", name, "busybox", "sleep", "300")
    env = dict(t.d.env)
    env.pop("DOCKER_HOST", None)
    p = subprocess.Popen(["docker", *map(str, t.docker_flags()), "exec", "-i", name, "cat"], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        p.stdin.write(b"ping\n")
        p.stdin.flush()
        assert p.stdout.readline() == b"ping\n"
        t.d.stop()  # fails the test if cryod does not stop
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if t.d.proc.poll() is not None:
            t.d.start()
    t.docker_ok("rm", "-f", name)
