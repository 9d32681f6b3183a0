"""Networking through the docker CLI against cryod: user-defined networks, names between
containers, --ip, published ports (also across checkpoint/restore), network rm, address
release and persistence across a cryod restart.

Addresses: only 198.19.x.0/24 subnets (random per test, so leftovers of an earlier run never
collide) and 127.0.0.1 for published ports. Traffic never leaves this machine.
"""

import json
import random
import socket
import time
import uuid

import pytest

from conftest import inspect, wait_for


@pytest.fixture
def net(docker_cli):
    """net(prefix="n") -> (name, "198.19.X") : a fresh network; removed after the test."""
    d = docker_cli
    made = []

    def make(prefix="n"):
        for _ in range(20):
            octet = random.randint(1, 254)
            name = f"{prefix}{uuid.uuid4().hex[:8]}"
            r = d.docker("network", "create", "--subnet", f"198.19.{octet}.0/24", name)
            if r.returncode == 0:
                made.append(name)
                return name, f"198.19.{octet}"
            assert "overlaps" in r.stderr, r.stderr
        pytest.fail("no free 198.19.x.0/24 subnet")

    yield make
    d.remove_all_containers()
    for n in made:
        d.docker("network", "rm", n)


def ip_of(d, ref, network=None):
    ns = inspect(d, ref)["NetworkSettings"]
    if network:
        return ns["Networks"][network]["IPAddress"]
    return ns["IPAddress"]


def fetch(port, timeout=5):
    """Connects to 127.0.0.1:port and returns what the server sends."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        data = b""
        while True:
            chunk = s.recv(100)
            if not chunk:
                return data
            data += chunk


def fetch_or_none(port, timeout=2):
    """fetch, or None while nothing answers (refused, reset, timed out): for polling."""
    try:
        return fetch(port, timeout=timeout)
    except OSError:
        return None


def free_port():
    for _ in range(50):
        p = random.randint(20000, 40000)
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", p))
                return p
            except OSError:
                continue
    pytest.fail("no free port")


def serve_hi(port):
    def ok():
        try:
            return fetch(port, timeout=2) == b"hi\n"
        except OSError:
            return False
    return ok


def test_network_create_ls_inspect(docker_cli, net):
    d = docker_cli
    n, pre = net()
    assert n in d.ok("network", "ls", "--format", "{{.Name}}").split()
    assert "cryo0" in d.ok("network", "ls", "--format", "{{.Name}}").split()
    info = json.loads(d.ok("network", "inspect", n))[0]
    assert info["Name"] == n and info["Driver"] == "bridge"
    assert info["IPAM"]["Config"][0]["Subnet"] == f"{pre}.0/24"
    # overlapping subnets and taken names are refused, nothing created
    r = d.docker("network", "create", "--subnet", f"{pre}.128/25", n + "x")
    assert r.returncode != 0 and "overlaps" in r.stderr
    assert n + "x" not in d.ok("network", "ls", "--format", "{{.Name}}").split()
    r = d.docker("network", "create", "--subnet", "198.19.255.0/24", n)
    assert r.returncode != 0 and "already exists" in r.stderr
    # cryo0 cannot be removed; unknown networks are 404
    r = d.docker("network", "rm", "cryo0")
    assert r.returncode != 0 and "pre-defined" in r.stderr
    r = d.docker("run", "-d", "--network", "nosuchnet" + uuid.uuid4().hex[:6], "busybox", "true")
    assert r.returncode != 0 and "not found" in r.stderr


def test_default_network_and_none(docker_cli, name):
    d = docker_cli
    d.ok("run", "-d", "--name", name, "busybox", "sleep", "1000")
    ip = ip_of(d, name)
    assert ip.startswith(d.subnet_prefix + "."), ip
    hosts = d.ok("exec", name, "cat", "/etc/hosts")
    assert ip in hosts
    assert d.ok("exec", name, "cat", "/etc/hostname") == inspect(d, name)["Config"]["Hostname"]
    gw = inspect(d, name)["NetworkSettings"]["Gateway"]
    d.ok("exec", name, "ping", "-c1", "-W3", gw)
    d.ok("run", "-d", "--name", name + "n", "--network", "none", "busybox", "sleep", "1000")
    assert ip_of(d, name + "n") == ""
    links = d.ok("exec", name + "n", "ip", "-o", "link")
    assert "eth0" not in links and "lo" in links


def test_names_resolve_between_containers_on_a_network(docker_cli, net, name):
    d = docker_cli
    n, pre = net()
    a, b = name + "a", name + "b"
    d.ok("run", "-d", "--name", a, "--network", n, "busybox", "sleep", "1000")
    d.ok("run", "-d", "--name", b, "--network", n, "busybox", "sleep", "1000")
    assert ip_of(d, a, n).startswith(pre + ".")
    d.ok("exec", a, "ping", "-c1", "-W3", b)
    d.ok("exec", b, "ping", "-c1", "-W3", a)
    # b goes away: a's /etc/hosts forgets it
    assert b in d.ok("exec", a, "cat", "/etc/hosts")
    d.ok("rm", "-f", b)
    wait_for(lambda: b not in d.ok("exec", a, "cat", "/etc/hosts"), what="peer removed from /etc/hosts")
    info = json.loads(d.ok("network", "inspect", n))[0]
    assert [c["Name"] for c in info["Containers"].values()] == [a]


def test_fixed_ip_taken_and_released(docker_cli, net, name):
    d = docker_cli
    n, pre = net()
    ip = f"{pre}.50"
    d.ok("run", "-d", "--name", name, "--network", n, "--ip", ip, "busybox", "sleep", "1000")
    assert ip_of(d, name, n) == ip
    assert ip in d.ok("exec", name, "ip", "-o", "addr")
    r = d.docker("run", "-d", "--name", name + "2", "--network", n, "--ip", ip, "busybox", "sleep", "1000")
    assert r.returncode != 0 and "already in use" in r.stderr, r.stderr
    d.docker("rm", "-f", name + "2")
    # network rm is refused while the container is attached
    r = d.docker("network", "rm", n)
    assert r.returncode != 0 and "active endpoints" in r.stderr, r.stderr
    # removal releases the address
    d.ok("rm", "-f", name)
    d.ok("run", "-d", "--name", name + "3", "--network", n, "--ip", ip, "busybox", "sleep", "1000")
    assert ip_of(d, name + "3", n) == ip
    d.ok("rm", "-f", name + "3")
    d.ok("network", "rm", n)
    assert n not in d.ok("network", "ls", "--format", "{{.Name}}").split()


def test_published_port_and_checkpoint_restore(docker_cli, net, name, criu):
    d = docker_cli
    n, pre = net()
    port = free_port()
    d.ok("run", "-d", "--name", name, "--network", n, "-p", f"{port}:8080", "busybox",
         "nc", "-ll", "-p", "8080", "-e", "echo", "hi")
    wait_for(serve_hi(port), what=f"server on 127.0.0.1:{port}")
    info = inspect(d, name)
    ip = info["NetworkSettings"]["Networks"][n]["IPAddress"]
    assert info["NetworkSettings"]["Ports"] == {"8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}
    assert f"0.0.0.0:{port}->8080/tcp" in d.ok("ps", "--format", "{{.Names}} {{.Ports}}")
    # a port some host process listens on is refused, and nothing is left allocated
    busy = socket.socket()
    busy.bind(("0.0.0.0", 0))
    busy.listen(1)
    taken = busy.getsockname()[1]
    try:
        r = d.docker("run", "-d", "--name", name + "h", "--network", n, "--ip", f"{pre}.77", "-p", f"{taken}:80",
                     "busybox", "sleep", "100")
        assert r.returncode != 0 and "already in use on the host" in r.stderr, r.stderr
    finally:
        busy.close()
    d.ok("rm", "-f", name + "h")
    d.ok("run", "-d", "--name", name + "h2", "--network", n, "--ip", f"{pre}.77", "busybox", "sleep", "100")
    d.ok("rm", "-f", name + "h2")
    # the same host port cannot be published twice
    r = d.docker("run", "-d", "--name", name + "2", "--network", n, "-p", f"{port}:8080", "busybox", "sleep", "100")
    assert r.returncode != 0 and f"{port}" in r.stderr and "not available" in r.stderr, r.stderr
    d.docker("rm", "-f", name + "2")

    d.ok("checkpoint", "create", name, "cp1", timeout=120)
    assert not inspect(d, name)["State"]["Running"]
    with pytest.raises(OSError):
        fetch(port, timeout=1)
    d.ok("start", "--checkpoint", "cp1", name, timeout=120)
    assert ip_of(d, name, n) == ip
    wait_for(serve_hi(port), what="server after restore")


def test_restore_refused_when_address_taken(docker_cli, net, name, criu):
    d = docker_cli
    n, pre = net()
    d.ok("run", "-d", "--name", name, "--network", n, "busybox", "sleep", "1000")
    ip = ip_of(d, name, n)
    d.ok("checkpoint", "create", name, "cp1", timeout=120)
    d.ok("run", "-d", "--name", name + "x", "--network", n, "--ip", ip, "busybox", "sleep", "1000")
    r = d.docker("start", "--checkpoint", "cp1", name, timeout=120)
    assert r.returncode != 0 and "taken" in r.stderr and ip in r.stderr, r.stderr
    d.ok("rm", "-f", name + "x")
    d.ok("start", "--checkpoint", "cp1", name, timeout=120)
    assert ip_of(d, name, n) == ip


def test_daemon_restart_keeps_allocations(docker_cli, net, name, restart_daemon):
    d = docker_cli
    n, pre = net()
    d.ok("run", "-d", "--name", name, "--network", n, "busybox", "sleep", "1000")
    ip = ip_of(d, name, n)
    restart_daemon()
    assert ip_of(d, name, n) == ip
    d.ok("run", "-d", "--name", name + "2", "--network", n, "busybox", "sleep", "1000")
    assert ip_of(d, name + "2", n) not in ("", ip)
    r = d.docker("run", "-d", "--name", name + "3", "--network", n, "--ip", ip, "busybox", "sleep", "100")
    assert r.returncode != 0 and "already in use" in r.stderr
    d.ok("exec", name + "2", "ping", "-c1", "-W3", name)


def test_tcp_connection_survives_checkpoint_restore(docker_cli, net, name, criu):
    """--tcp-established (the API's ?tcp-established=1): a client's connection through the
    published port carries on after checkpoint and restore; the socket never closes."""
    d = docker_cli
    n, pre = net()
    port = free_port()
    d.ok("run", "-d", "--name", name, "--network", n, "-p", f"{port}:8080", "busybox",
         "nc", "-l", "-p", "8080", "-e", "cat")

    def connect():
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=2)
        except OSError:
            return None
    s = wait_for(connect, what="echo server")
    s.settimeout(10)
    s.sendall(b"one\n")
    assert s.recv(100) == b"one\n"
    ip = ip_of(d, name, n)
    # without --tcp-established CRIU refuses the established socket; the container keeps running
    r = d.docker("checkpoint", "create", name, "plain", timeout=120)
    assert r.returncode != 0 and "keeps running" in r.stderr, r.stderr
    assert inspect(d, name)["State"]["Running"]
    s.sendall(b"still\n")
    assert s.recv(100) == b"still\n"
    st, _, body = d.http("POST", f"/containers/{name}/checkpoints?tcp-established=1",
                         body=json.dumps({"CheckpointID": "tcp1", "Exit": True}),
                         headers={"Content-Type": "application/json"}, timeout=120)
    assert st == 201, body
    d.ok("start", "--checkpoint", "tcp1", name, timeout=120)
    assert ip_of(d, name, n) == ip
    s.sendall(b"two\n")
    assert s.recv(100) == b"two\n"
    s.close()


def test_checkpoint_with_the_old_sidecars_restores(docker_cli, net, name, criu):
    """A checkpoint made before cryo-checkpoint.json (cryo-options.json + cryo-network.json
    beside the images) restores as it did: the TCP connection and the address come back."""
    d = docker_cli
    n, pre = net()
    port = free_port()
    cid = d.ok("run", "-d", "--name", name, "--network", n, "-p", f"{port}:8080", "busybox",
               "nc", "-l", "-p", "8080", "-e", "cat")

    def connect():
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=2)
        except OSError:
            return None
    s = wait_for(connect, what="echo server")
    s.settimeout(10)
    s.sendall(b"one\n")
    assert s.recv(100) == b"one\n"
    ip = ip_of(d, name, n)
    st, _, body = d.http("POST", f"/containers/{name}/checkpoints?tcp-established=1",
                         body=json.dumps({"CheckpointID": "old", "Exit": True}),
                         headers={"Content-Type": "application/json"}, timeout=120)
    assert st == 201, body
    cp = d.root / "containers" / cid / "checkpoints" / "old"
    meta = json.loads((cp / "cryo-checkpoint.json").read_text())
    assert meta["tcpEstablished"] is True and meta["address"]["ip"] == ip, meta
    # the old layout: two sidecars, and nothing saying where CRIU dumped from
    (cp / "cryo-options.json").write_text(json.dumps({"tcpEstablished": True}))
    (cp / "cryo-network.json").write_text(json.dumps(meta["address"]))
    (cp / "cryo-checkpoint.json").unlink()
    d.ok("start", "--checkpoint", "old", name, timeout=120)
    assert ip_of(d, name, n) == ip
    s.sendall(b"two\n")
    assert s.recv(100) == b"two\n"
    s.close()


def test_docker_py_networks_and_ports(dpy, daemon, name):
    import docker
    octet = random.randint(1, 254)
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=f"198.19.{octet}.0/24")])
    n = dpy.networks.create("py" + uuid.uuid4().hex[:8], driver="bridge", ipam=ipam)
    try:
        assert n.name in [x.name for x in dpy.networks.list()]
        port = free_port()
        c = dpy.containers.run("busybox", ["nc", "-ll", "-p", "8080", "-e", "echo", "hi"], name=name, detach=True,
                               network=n.name, ports={"8080/tcp": port})
        wait_for(serve_hi(port), what="server via docker-py")
        c.reload()
        assert c.attrs["NetworkSettings"]["Networks"][n.name]["IPAddress"].startswith(f"198.19.{octet}.")
        assert c.ports == {"8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}
        n.reload()
        assert [x.name for x in n.containers] == [name]
        c.remove(force=True)
    finally:
        n.remove()
    assert n.name not in [x.name for x in dpy.networks.list()]
