"""macvlan networks, stable MACs and gratuitous ARP, on a LAN of network namespaces (lan.py):
each cryod runs inside a "host" namespace (Daemon(netns=…)) whose eth0 hangs on the LAN's
bridge; containers on a macvlan network of that eth0 are on the LAN with their own MAC and
address, and a client namespace on the LAN talks to them directly.

- network create -d macvlan: inspect/ls/rm, and the refusals (no parent, a parent cryod's
  namespace lacks, ipvlan, no subnet, an unknown option, an ip-range outside the subnet, a
  parent already used, -p on a macvlan network, a multicast --mac-address).
- --ip-range bounds automatic allocation; --ip may be outside it; --mac-address is the MAC
  the client sees.
- checkpoint (--tcp-established) + start --checkpoint keeps IP and MAC: the client's
  connection carries on, its neighbour entry is unchanged, and it receives the restored
  container's gratuitous ARP (captured on a packet socket in the client namespace).
- Two cryods in two host namespaces, containers with the same names: nothing collides.

Addresses: a random 198.19.x.0/24 inside the test's own namespaces only.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time

import select

import pytest

from conftest import Daemon, cleanup, inspect, started, unavailable, wait_for
from lan import Lan

SERVER = "while true; do nc -l -p 7000 -e cat; done"

# A client holding one TCP connection: reads lines on stdin, sends each, prints the echo.
CLIENT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], 7000), timeout=60)
print("connected", flush=True)
for line in sys.stdin:
    s.sendall(line.encode())
    data = b""
    while not data.endswith(b"\n"):
        c = s.recv(100)
        if not c:
            print("closed", flush=True)
            sys.exit(1)
        data += c
    print("echo " + data.decode().strip(), flush=True)
"""

# Prints the sender MAC of every gratuitous ARP (sender IP = target IP = argv[1]) seen on eth0.
SNIFFER = r"""
import socket, sys
ip = socket.inet_aton(sys.argv[1])
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0806))
s.bind(("eth0", 0))
print("ready", flush=True)
while True:
    data, addr = s.recvfrom(100)
    if len(data) >= 28 and data[6:8] == b"\x00\x01" and data[14:18] == ip and data[24:28] == ip:
        print(data[8:14].hex(":"), flush=True)
"""


def read_line(proc, what, timeout=60):
    """The next line of proc's stdout; fails (does not hang) when none comes within timeout."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        pytest.fail(f"no {what} within {timeout}s")
    return proc.stdout.readline().strip()


def _requirements():
    if os.geteuid() != 0:
        unavailable("must run as root (network namespaces, cryod)")
    for tool in ("ip", "unshare", "docker", "criu"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is not installed")
    for plugin in ("macvlan", "host-local", "bridge", "portmap"):
        if not os.access(f"/usr/lib/cni/{plugin}", os.X_OK):
            unavailable(f"the CNI plugin {plugin} is not in /usr/lib/cni (install containernetworking-plugins)")


def start_daemon(lan, role, bridge=None, subnet_prefix=None):
    base = tempfile.mkdtemp(prefix="cm-", dir="/tmp")
    d = Daemon(base, netns=lan.ns(role))
    # Hosts of a real LAN run cryod with the same defaults: the same default bridge name and
    # subnet, each in its own namespace.
    d.bridge = bridge or "cryo0"
    if subnet_prefix:
        d.subnet_prefix = subnet_prefix
    started(d)
    try:
        # Never a macvlan on the machine's own eth0: cryod must be inside the host namespace.
        assert os.stat(f"/proc/{d.proc.pid}/ns/net").st_ino == os.stat(f"/run/netns/{lan.ns(role)}").st_ino, \
            "cryod is not in its host's network namespace"
        assert os.readlink(f"/proc/{d.proc.pid}/exe").endswith("cryod")
    except BaseException:
        cleanup(d)
        raise
    return d


@pytest.fixture
def lan():
    _requirements()
    with Lan(["hostA", "hostB"]) as l:
        yield l


@pytest.fixture
def hosts(lan):
    """cryods in hostA and hostB (started on demand: hosts("hostA"))."""
    started = {}

    def get(role):
        if role not in started:
            started[role] = start_daemon(lan, role, subnet_prefix=f"198.18.{lan.third}")
        return started[role]
    yield get
    for d in started.values():
        cleanup(d)
        print(f"\ncryod log: {d.log_path}")


def macvlan(d, lan, name="lan", host_index=0, extra=()):
    """A macvlan network on the host's eth0, its automatic addresses in the host's /27."""
    d.ok("network", "create", "-d", "macvlan", "-o", "parent=eth0", "--subnet", lan.subnet,
         "--gateway", lan.addr(1), "--ip-range", lan.ip_range(host_index), *extra, name)
    return name


def in_range(ip, cidr):
    net, bits = cidr.split("/")
    a = [int(x) for x in ip.split(".")]
    b = [int(x) for x in net.split(".")]
    va = (a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]
    vb = (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]
    mask = (0xffffffff << (32 - int(bits))) & 0xffffffff
    return va & mask == vb & mask


def endpoint(d, name, network):
    ep = inspect(d, name)["NetworkSettings"]["Networks"][network]
    return ep["IPAddress"], ep["MacAddress"]


# One short exchange with the echo server: prints what came back (nothing on failure).
PING = r"""
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], 7000), timeout=2)
    s.sendall(sys.argv[2].encode() + b"\n")
    print(s.recv(100).decode().strip())
except OSError:
    pass
"""


def exchange(lan, ip, text):
    return lan.run("client", "python3", "-c", PING, ip, text, check=False).stdout.strip()


def serve(d, lan, name, network, *extra):
    d.ok("run", "-d", "--name", name, "--network", network, *extra, "busybox", "sh", "-c", SERVER)
    ip, mac = endpoint(d, name, network)
    wait_for(lambda: exchange(lan, ip, "hi") == "hi",
             timeout=30, what=f"the echo server at {ip}:7000 from the client namespace")
    return ip, mac


# --------------------------------------------------------------------------------------------
# network create / inspect / ls / rm


def test_macvlan_network_create_inspect_ls_rm(lan, hosts):
    d = hosts("hostA")
    macvlan(d, lan, "mv1", extra=("-o", "macvlan_mode=bridge"))
    n = json.loads(d.ok("network", "inspect", "mv1"))[0]
    assert n["Driver"] == "macvlan"
    assert n["Options"] == {"parent": "eth0", "macvlan_mode": "bridge"}
    assert n["IPAM"]["Config"] == [{"Subnet": lan.subnet, "Gateway": lan.addr(1), "IPRange": lan.ip_range(0)}]
    ls = d.ok("network", "ls", "--format", "{{.Name}} {{.Driver}}")
    assert "mv1 macvlan" in ls.splitlines()
    d.ok("network", "rm", "mv1")
    assert "mv1" not in d.ok("network", "ls", "--format", "{{.Name}}").split()


def test_macvlan_refusals(lan, hosts):
    d = hosts("hostA")

    def refused(*args, want):
        r = d.docker(*args)
        assert r.returncode != 0, f"{args} was accepted"
        assert want in r.stderr, r.stderr
    refused("network", "create", "-d", "macvlan", "--subnet", lan.subnet, "x1", want="parent")
    refused("network", "create", "-d", "macvlan", "-o", "parent=nosuch0", "--subnet", lan.subnet, "x2",
            want="nosuch0 was not found")
    refused("network", "create", "-d", "ipvlan", "-o", "parent=eth0", "--subnet", lan.subnet, "x3", want="ipvlan")
    refused("network", "create", "-d", "macvlan", "-o", "parent=eth0", "x4", want="--subnet")
    refused("network", "create", "-d", "macvlan", "-o", "parent=eth0", "-o", "mtu=1400", "--subnet", lan.subnet, "x5",
            want="does not support option mtu")
    refused("network", "create", "-d", "macvlan", "-o", "parent=eth0", "-o", "macvlan_mode=weird", "--subnet", lan.subnet,
            "x6", want="macvlan_mode weird")
    refused("network", "create", "-d", "macvlan", "-o", "parent=eth0", "--subnet", lan.subnet,
            "--ip-range", "198.18.250.0/28", "x7", want="subnet")   # the docker CLI checks this one itself
    body = json.dumps({"Name": "x7", "Driver": "macvlan", "Options": {"parent": "eth0"},
                       "IPAM": {"Config": [{"Subnet": lan.subnet, "IPRange": "198.18.250.0/28"}]}})
    st, _, text = d.http("POST", "/networks/create", body=body, headers={"Content-Type": "application/json"})
    assert st == 400 and b"not inside subnet" in text, (st, text)
    refused("network", "create", "-d", "bridge", "-o", "parent=eth0", "x8", want="does not support option parent")
    macvlan(d, lan, "mv")
    other = lan.subnet.replace(f".{lan.third}.0/24", f".{(lan.third % 250) + 1}.0/24")
    refused("network", "create", "-d", "macvlan", "-o", "parent=eth0", "--subnet", other, "x9",
            want="already using parent interface eth0")
    refused("run", "-d", "--network", "mv", "-p", "8080:80", "busybox", "true", want="ports cannot be published")
    refused("run", "-d", "--network", "mv", "--mac-address", "01:00:5e:00:00:01", "busybox", "true", want="multicast")
    assert [n for n in d.ok("network", "ls", "--format", "{{.Name}}").split() if n.startswith("x")] == []
    assert d.ok("ps", "-aq") == ""


# --------------------------------------------------------------------------------------------
# containers on the LAN


def test_container_on_macvlan_answers_the_client_with_its_own_mac(lan, hosts, name):
    d = hosts("hostA")
    macvlan(d, lan, "mv")
    mac = "02:42:c6:13:00:2a"
    ip, shown = serve(d, lan, name, "mv", "--mac-address", mac)
    assert in_range(ip, lan.ip_range(0)), (ip, lan.ip_range(0))
    assert shown == mac
    assert inspect(d, name)["NetworkSettings"]["MacAddress"] == mac
    assert lan.neighbor("client", ip) == mac
    # An explicit --ip may lie outside the network's ip-range (not the gateway).
    fixed = lan.addr(250)
    ip2, mac2 = serve(d, lan, name + "b", "mv", "--ip", fixed)
    assert ip2 == fixed
    assert mac2 and mac2 != mac and int(mac2.split(":")[0], 16) & 2, mac2   # locally administered
    r = d.docker("run", "-d", "--network", "mv", "--ip", lan.addr(1), "busybox", "true")
    assert r.returncode != 0 and "gateway" in r.stderr


def connected_client(lan, ip):
    """CLIENT in the client namespace, connected to ip's echo server; (its process, echo) where
    echo(text) sends one line over that one connection and returns the answer."""
    client = lan.spawn("client", "python3", "-c", CLIENT, ip, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert read_line(client, "connection to the server") == "connected"

    def echo(text):
        client.stdin.write(text + "\n")
        client.stdin.flush()
        return read_line(client, f"echo of {text!r}")
    return client, echo


def checkpoint(d, name, cp):
    body = json.dumps({"CheckpointID": cp, "Exit": True})
    st, _, text = d.http("POST", f"/containers/{name}/checkpoints?tcp-established=1", body=body,
                         headers={"Content-Type": "application/json"}, timeout=300)
    assert st == 201, text


def test_restore_keeps_ip_mac_and_tcp_and_announces(lan, hosts, name, criu):
    d = hosts("hostA")
    macvlan(d, lan, "mv")
    ip, mac = serve(d, lan, name, "mv")
    client, echo = connected_client(lan, ip)
    assert echo("one") == "echo one"
    assert lan.neighbor("client", ip) == mac

    checkpoint(d, name, "c1")
    # As after a move to another host: the client's entry for the address points elsewhere
    # (stale, as the kernel would have it). The announcements must set it right before the
    # client sends anything.
    lan.run("client", "ip", "neigh", "replace", ip, "lladdr", "02:00:00:00:00:01", "dev", "eth0", "nud", "stale")
    assert lan.neighbor("client", ip) == "02:00:00:00:00:01"
    sniffer = lan.spawn("client", "python3", "-c", SNIFFER, ip, stdout=subprocess.PIPE, text=True)
    assert read_line(sniffer, "sniffer start") == "ready"
    d.ok("start", "--checkpoint", "c1", name)

    assert endpoint(d, name, "mv") == (ip, mac)
    # The restored container announces itself from its (same) MAC. The kernel sends one
    # gratuitous ARP on its own when the CNI plugin brings the link up at the restore's attach
    # (arp_notify; the tasks are not running yet, and after a migration that is too early);
    # cryo's announcer sends three more once the restored container runs: so at least two.
    assert read_line(sniffer, f"gratuitous ARP for {ip}") == mac
    assert read_line(sniffer, f"a second gratuitous ARP for {ip} (cryo's announcement)") == mac
    sniffer.kill()
    wait_for(lambda: lan.neighbor("client", ip) == mac, what=f"the client's neighbour entry for {ip} to be {mac} again")
    assert echo("two") == "echo two", "the client's connection did not survive the restore"
    assert lan.neighbor("client", ip) == mac
    client.stdin.close()


def ip_of_side(d):
    return inspect(d, "side")["NetworkSettings"]["IPAddress"]


def test_two_daemons_same_container_names(lan, hosts, criu):
    a, b = hosts("hostA"), hosts("hostB")
    macvlan(a, lan, "mv", host_index=0)
    macvlan(b, lan, "mv", host_index=1)
    ips = {}
    for i, d in enumerate((a, b)):
        ip, _ = serve(d, lan, "web", "mv")
        assert in_range(ip, lan.ip_range(i))
        ips[i] = ip
        # And one on each daemon's default bridge (same bridge name and subnet on both hosts),
        # same name and same published host port on both.
        d.ok("run", "-d", "--name", "side", "-p", "8080:7000", "busybox", "sh", "-c", SERVER)
    assert ips[0] != ips[1]
    for d in (a, b):
        assert inspect(d, "web")["State"]["Running"]
        assert d.ok("exec", "side", "echo", "ok") == "ok"
    ida, idb = inspect(a, "web")["Id"], inspect(b, "web")["Id"]
    assert ida != idb
    assert ip_of_side(a) == ip_of_side(b)
    # A checkpoint and restore on each host, same container and checkpoint names.
    for d in (a, b):
        checkpoint(d, "web", "c1")
    for d in (a, b):
        d.ok("start", "--checkpoint", "c1", "web")
    for i, d in enumerate((a, b)):
        assert exchange(lan, ips[i], str(i)) == str(i)
    for d in (a, b):
        d.ok("rm", "-f", "web", "side")
        d.ok("network", "rm", "mv")


def test_bridge_endpoint_keeps_its_mac_across_restart_and_restore(lan, hosts, name, criu):
    """The default bridge network too: --mac-address is honoured, and a container without one
    gets a MAC chosen once and kept by a restart and by a restore."""
    d = hosts("hostA")
    d.ok("run", "-d", "--name", name, "--mac-address", "02:42:c6:12:00:99", "busybox", "sleep", "1000")
    assert inspect(d, name)["NetworkSettings"]["MacAddress"] == "02:42:c6:12:00:99"
    assert "02:42:c6:12:00:99" in d.ok("exec", name, "ip", "link", "show", "eth0")
    other = name + "b"
    d.ok("run", "-d", "--name", other, "busybox", "sleep", "1000")
    ip, mac = inspect(d, other)["NetworkSettings"]["IPAddress"], inspect(d, other)["NetworkSettings"]["MacAddress"]
    assert mac and int(mac.split(":")[0], 16) & 3 == 2, mac   # locally administered unicast
    d.ok("restart", "-t", "0", other)
    assert inspect(d, other)["NetworkSettings"]["MacAddress"] == mac
    ip = inspect(d, other)["NetworkSettings"]["IPAddress"]   # a restart may get another address
    d.ok("checkpoint", "create", other, "c1")
    d.ok("start", "--checkpoint", "c1", other)
    ns = inspect(d, other)["NetworkSettings"]
    assert (ns["IPAddress"], ns["MacAddress"]) == (ip, mac)
    assert mac in d.ok("exec", other, "ip", "link", "show", "eth0")


def test_cryo_cli_macvlan_and_mac_address(lan, hosts, name):
    """The cryo CLI: network create -d macvlan -o … --ip-range, run --mac-address, inspect."""
    from test_cryo_cli import Cryo
    d = hosts("hostA")
    cryo = Cryo(d.host)
    cryo.ok("network", "create", "-d", "macvlan", "-o", "parent=eth0", "-o", "macvlan_mode=bridge",
            "--subnet", lan.subnet, "--gateway", lan.addr(1), "--ip-range", lan.ip_range(0), "cm")
    n = json.loads(cryo.ok("network", "inspect", "cm").stdout)[0]
    assert (n["Driver"], n["Options"]["parent"], n["IPAM"]["Config"][0]["IPRange"]) == ("macvlan", "eth0", lan.ip_range(0))
    assert any(l.split()[1:3] == ["cm", "macvlan"] for l in cryo.ok("network", "ls").stdout.splitlines()[1:])
    r = cryo("network", "create", "-d", "macvlan", "-o", "parent=eth0", "-o", "bogus=1", "--subnet", "198.19.1.0/24", "cm2")
    assert r.returncode != 0 and "does not support option bogus" in r.stderr, r.stderr
    cryo.ok("run", "-d", "--name", name, "--network", "cm", "--mac-address", "02:42:c6:13:00:77", "busybox", "sh", "-c", SERVER)
    ep = json.loads(cryo.ok("inspect", name).stdout)[0]["NetworkSettings"]
    assert ep["MacAddress"] == "02:42:c6:13:00:77" == ep["Networks"]["cm"]["MacAddress"]
    ip = ep["Networks"]["cm"]["IPAddress"]
    wait_for(lambda: exchange(lan, ip, "cli") == "cli", timeout=30, what="the echo server")
    assert lan.neighbor("client", ip) == "02:42:c6:13:00:77"
    cryo.ok("rm", "-f", name)
    cryo.ok("network", "rm", "cm")


def test_docker_py_macvlan_network(lan, hosts, name):
    try:
        import docker
    except ImportError:
        unavailable("docker-py is not installed (pip install docker==7.1.0)")
    d = hosts("hostA")
    c = docker.DockerClient(base_url=d.host, timeout=60)
    try:
        pool = docker.types.IPAMPool(subnet=lan.subnet, gateway=lan.addr(1), iprange=lan.ip_range(0))
        net = c.networks.create("pymv", driver="macvlan", options={"parent": "eth0"},
                                ipam=docker.types.IPAMConfig(pool_configs=[pool]))
        net.reload()
        assert net.attrs["Driver"] == "macvlan" and net.attrs["Options"]["parent"] == "eth0"
        ct = c.containers.run("busybox", ["sh", "-c", SERVER], name=name, detach=True, network="pymv",
                              mac_address="02:42:c6:13:00:78")
        ct.reload()
        ep = ct.attrs["NetworkSettings"]["Networks"]["pymv"]
        assert ep["MacAddress"] == "02:42:c6:13:00:78"
        assert in_range(ep["IPAddress"], lan.ip_range(0))
        with pytest.raises(docker.errors.APIError, match="ports cannot be published"):
            c.containers.run("busybox", "true", detach=True, network="pymv", ports={"80/tcp": 8080})
        ct.remove(force=True)
        net.remove()
    finally:
        c.close()


def test_restore_on_another_host_keeps_ip_mac_and_tcp(lan, hosts, criu):
    """A checkpoint carried from hostA to hostB (the images copied; a container of the same
    image and command created on hostB on its own macvlan network of the same name, with the
    address and MAC it had) restores there: the client's TCP connection carries on, and the
    LAN learns the new place of the MAC from the announcements."""
    a, b = hosts("hostA"), hosts("hostB")
    macvlan(a, lan, "mv", host_index=0)
    macvlan(b, lan, "mv", host_index=1)
    ip, mac = serve(a, lan, "web", "mv")
    client, echo = connected_client(lan, ip)
    assert echo("on A") == "echo on A"

    src = a.root / "migrate"
    body = json.dumps({"CheckpointID": "m1", "Exit": True, "CheckpointDir": str(src)})
    st, _, text = a.http("POST", "/containers/web/checkpoints?tcp-established=1", body=body,
                         headers={"Content-Type": "application/json"}, timeout=300)
    assert st == 201, text
    dst = b.root / "migrate"
    subprocess.run(["cp", "-a", str(src), str(dst)], check=True)
    b.ok("create", "--name", "web", "--network", "mv", "--ip", ip, "--mac-address", mac, "busybox", "sh", "-c", SERVER)
    sniffer = lan.spawn("client", "python3", "-c", SNIFFER, ip, stdout=subprocess.PIPE, text=True)
    assert read_line(sniffer, "sniffer start") == "ready"
    b.ok("start", "--checkpoint", "m1", "--checkpoint-dir", str(dst), "web")
    assert endpoint(b, "web", "mv") == (ip, mac)
    assert read_line(sniffer, f"gratuitous ARP for {ip}") == mac
    assert read_line(sniffer, f"a second gratuitous ARP for {ip} (cryo's announcement)") == mac
    sniffer.kill()
    assert echo("on B") == "echo on B", "the client's connection did not follow the container to hostB"
    assert lan.neighbor("client", ip) == mac
    client.stdin.close()
