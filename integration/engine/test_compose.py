"""Debian 12's docker-compose 1.29 (on docker-py 5.0) against cryod (issue 13): a two-service
application — a busybox httpd web server and Redis, on a user network, with a named volume and
a published port — brought up, listed, logged, scaled, stopped and torn down; and Redis
checkpointed and restored while the web service keeps talking to it over one connection.

Compose 1.29 finds its project's containers, networks and volumes by label filters, and it
disconnects and reconnects each new container to set its service aliases: the fixes these tests
cover (list filters, network connect/disconnect, aliases in /etc/hosts).

Images: busybox:latest (test images) and redis:latest (scripts/make-app-images.sh). Networks:
198.19.x.0/24 picked at random; published ports chosen by cryod; traffic stays on this machine.
"""

import json
import random
import shutil
import subprocess
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import IMAGES, REPO, cryo_runner, inspect, unavailable, wait_for

CRIU_TIMEOUT = 120
COMPOSE_TIMEOUT = 180
TCP_LABEL = "io.cryo.checkpoint.tcp-established"

# web: httpd serving the named volume, with two CGI scripts: /cgi-bin/hit asks Redis (by its
# service name) on a new connection each time; /cgi-bin/ticks shows how many times the
# background client connected and the last reply it got. That client sends INCR every 0.2 s
# over one connection for its whole life (reconnecting, and counting it, only if it breaks).
# `$$` is compose's escape for a literal `$`.
COMPOSE_FILE = """\
version: "2.4"
services:
  web:
    image: busybox:latest
    depends_on: [redis]
    ports: ["80"]
    volumes: ["www:/www"]
    networks: [back]
    extra_hosts: ["db.example.test:198.51.100.7", "gateway.test:host-gateway"]
    links: ["redis:cache"]
    command:
      - sh
      - -c
      - |
        mkdir -p /www/cgi-bin
        printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\n(printf "INCR hits\\\\r\\\\n"; sleep 1) | nc redis 6379\\n' > /www/cgi-bin/hit
        printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho $$(grep -c . /tmp/connects) $$(tail -n 1 /tmp/ticks)\\n' > /www/cgi-bin/ticks
        chmod +x /www/cgi-bin/hit /www/cgi-bin/ticks
        echo hello from compose > /www/index.html
        while true; do
          echo connect >> /tmp/connects
          (while true; do printf 'INCR ticks\\r\\n'; sleep 0.2; done) | nc redis 6379 >> /tmp/ticks
          sleep 0.5
        done &
        httpd -f -p 80 -h /www &
        trap 'exit 0' TERM
        echo web up
        wait
  redis:
    image: redis:latest
    networks:
      back:
        ipv4_address: %(redis_ip)s
    labels:
      %(tcp_label)s: "true"
networks:
  back:
    ipam:
      config:
        - subnet: %(subnet)s
volumes:
  www: {}
"""


class Project:
    """One compose project (`-p NAME -f FILE`) against the daemon `d`."""

    def __init__(self, d, workdir):
        self.d = d
        self.name = "cp" + uuid.uuid4().hex[:8]
        self.file = Path(workdir) / "docker-compose.yml"

    def run(self, *args, check=True, timeout=COMPOSE_TIMEOUT):
        r = subprocess.run(["docker-compose", "--ansi", "never", "-p", self.name, "-f", str(self.file), *args],
                           env=self.d.env, capture_output=True, text=True, timeout=timeout)
        if check:
            assert r.returncode == 0, f"docker-compose {' '.join(args)} → rc {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    def up(self, *args):
        """`up -d` on a free random 198.19.x.0/24 subnet (another one if it overlaps one in use)."""
        for _ in range(20):
            octet = random.randint(1, 254)
            subnet = f"198.19.{octet}.0/24"
            self.redis_ip = f"198.19.{octet}.10"
            self.file.write_text(COMPOSE_FILE % {"subnet": subnet, "tcp_label": TCP_LABEL, "redis_ip": self.redis_ip})
            r = self.run("up", "-d", *args, check=False)
            if r.returncode == 0:
                return subnet
            assert "overlaps" in r.stderr, f"docker-compose up → rc {r.returncode}\n{r.stdout}\n{r.stderr}"
            self.run("down", "-v", check=False)
        pytest.fail("no free 198.19.x.0/24 subnet")

    def container(self, service, n=1):
        return f"{self.name}_{service}_{n}"

    def port(self, service, n=1):
        out = self.run("port", "--index", str(n), service, "80").stdout.strip()
        return int(out.rsplit(":", 1)[1])

    def labelled(self, kind):
        """Names of the daemon's containers/networks/volumes with this project's label."""
        label = f"label=com.docker.compose.project={self.name}"
        if kind == "container":
            out = self.d.ok("ps", "-a", "--filter", label, "--format", "{{.Names}}")
        else:
            out = self.d.ok(kind, "ls", "--filter", label, "--format", "{{.Name}}")
        return sorted(out.split())


def compose_available():
    if shutil.which("docker-compose") is None:
        unavailable("docker-compose is not installed (scripts/setup.sh installs Debian's 1.29.2)")
    r = subprocess.run(["docker-compose", "version"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        unavailable(f"docker-compose does not run: {r.stdout}{r.stderr}")


@pytest.fixture
def project(docker_cli):
    """A compose project on the session daemon with busybox and redis loaded; `down -v` after
    the test, even when it failed."""
    compose_available()
    d = docker_cli
    if not (IMAGES / "redis.tar").is_file():
        r = subprocess.run(["bash", str(REPO / "scripts" / "make-app-images.sh"), str(IMAGES)],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            unavailable(f"scripts/make-app-images.sh failed: {r.stderr[-2000:]}")
    d.ok("load", "-i", IMAGES / "redis.tar", timeout=300)
    workdir = tempfile.mkdtemp(prefix="cryo-compose-")
    p = Project(d, workdir)
    try:
        yield p
    finally:
        try:
            p.run("down", "-v", "--timeout", "1", check=False)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def http_get(port, path="/"):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
        return r.read().decode()


def served(port):
    """Waits until the web container's httpd answers on the host port (compose returns once
    the container started, before its script has started httpd)."""
    def page():
        try:
            return http_get(port)
        except OSError:
            return None
    return wait_for(page, timeout=60, what=f"httpd on 127.0.0.1:{port}")


def hit(port):
    """Redis's INCR reply to the web's CGI (a new connection to the service name "redis")."""
    out = http_get(port, "/cgi-bin/hit").strip()
    assert out.startswith(":"), f"no reply from redis through the web service: {out!r}"
    return int(out[1:])


def first_hit(port):
    """The first hit that Redis answers (it may still be starting)."""
    def attempt():
        try:
            return hit(port)
        except (OSError, AssertionError):
            return None
    return wait_for(attempt, timeout=60, what="redis answering the web's CGI")


def ticks(port):
    """(connections the web's client made, Redis's last INCR reply to it) or None."""
    try:
        fields = http_get(port, "/cgi-bin/ticks").split()
    except OSError:
        return None
    if len(fields) != 2 or not fields[1].startswith(":"):
        return None
    return int(fields[0]), int(fields[1][1:])


def test_compose_up_ps_logs_scale_stop_down(project):
    p, d = project, project.d
    # A container of no project: compose must not take it for one of its own.
    stranger = "t" + uuid.uuid4().hex[:10]
    d.ok("run", "-d", "--name", stranger, "busybox", "sleep", "1000")

    p.up()
    web, redis = p.container("web"), p.container("redis")
    assert p.labelled("container") == sorted([web, redis])
    ps = p.run("ps").stdout
    assert web in ps and redis in ps and stranger not in ps, ps
    assert all("Up" in line for line in ps.splitlines() if line.startswith(p.name)), ps

    # The published port answers from the host; the web container reaches Redis by its
    # service name (an alias set by network connect), as does every container of the network.
    port = p.port("web")
    assert served(port) == "hello from compose\n"
    h = first_hit(port)
    assert hit(port) == h + 1
    ep = inspect(d, redis)["NetworkSettings"]["Networks"][f"{p.name}_back"]
    assert "redis" in ep["Aliases"] and ep["IPAddress"] == p.redis_ip, ep
    d.ok("exec", redis, "ping", "-c1", "-W3", "web")
    hosts = p.run("exec", "-T", "web", "cat", "/etc/hosts").stdout
    assert "redis" in hosts, hosts
    # extra_hosts (--add-host), host-gateway being the network's gateway.
    gateway = inspect(d, web)["NetworkSettings"]["Networks"][f"{p.name}_back"]["Gateway"]
    assert "198.51.100.7\tdb.example.test\n" in hosts and f"{gateway}\tgateway.test\n" in hosts, hosts
    # links: web alone resolves redis as "cache".
    assert f"{p.redis_ip}\t" in hosts and " cache" in hosts.split(f"{p.redis_ip}\t")[1].splitlines()[0], hosts
    assert "cache" not in d.ok("exec", redis, "cat", "/etc/hosts")

    logs = wait_for(lambda: (out := p.run("logs", "--no-color").stdout) and "web up" in out
                    and "Ready to accept connections" in out and out, what="both services' logs")
    assert "web_1" in logs and "redis_1" in logs, logs

    # The named volume is the project's, mounted by the web service.
    assert p.labelled("volume") == [f"{p.name}_www"]
    assert p.labelled("network") == [f"{p.name}_back"]
    mounts = inspect(d, web)["Mounts"]
    assert [(m["Type"], m["Name"], m["Destination"]) for m in mounts] == [("volume", f"{p.name}_www", "/www")]

    # Recreate: compose renames the old containers, reads the image's ContainerConfig (API <
    # 1.45) for volumes to carry over, and makes new ones; the named volume stays.
    old_ids = {c: inspect(d, c)["Id"] for c in (web, redis)}
    p.run("up", "-d", "--force-recreate")
    assert p.labelled("container") == sorted([web, redis])
    assert all(inspect(d, c)["Id"] != old_ids[c] for c in (web, redis))
    port = p.port("web")
    assert served(port) == "hello from compose\n"
    h = first_hit(port)
    assert h <= 2, h   # a new Redis counts from 1 again (a retry at most while it started)

    # Scale: a second web container with a port of its own, on the same network and volume.
    p.run("up", "-d", "--scale", "web=2")
    web2 = p.container("web", 2)
    assert p.labelled("container") == sorted([web, web2, redis])
    port2 = p.port("web", 2)
    assert port2 != port
    assert served(port2) == "hello from compose\n"
    assert hit(port2) == h + 1
    hosts = d.ok("exec", redis, "cat", "/etc/hosts")
    assert sum(" web" in line for line in hosts.splitlines()) == 2, hosts

    p.run("stop", "--timeout", "5")
    states = d.ok("ps", "-a", "--filter", f"label=com.docker.compose.project={p.name}", "--format", "{{.State}}")
    assert states.split() == ["exited"] * 3, states
    assert inspect(d, stranger)["State"]["Running"]

    p.run("down", "-v")
    assert p.labelled("container") == [] and p.labelled("network") == [] and p.labelled("volume") == []
    assert f"{p.name}_back" not in d.ok("network", "ls", "--format", "{{.Name}}").split()
    assert f"{p.name}_www" not in d.ok("volume", "ls", "--format", "{{.Name}}").split()
    assert inspect(d, stranger)["State"]["Running"]


def test_compose_checkpoint_restore_backend_while_web_talks(project, criu):
    """Redis is checkpointed (stopped) and restored while the web service's client keeps
    sending over the same connection: after the restore Redis answers it where it left off,
    and the client never had to reconnect."""
    p, d = project, project.d
    p.up()
    web, redis = p.container("web"), p.container("redis")
    assert inspect(d, redis)["Config"]["Labels"][TCP_LABEL] == "true"
    port = p.port("web")
    first = wait_for(lambda: (t := ticks(port)) and t[1] >= 5 and t, timeout=60, what="the web's client talking to redis")
    connections = first[0]

    assert d.ok("checkpoint", "create", redis, "cp1", timeout=CRIU_TIMEOUT) == "cp1"
    assert not inspect(d, redis)["State"]["Running"]
    # The web service goes on serving while its backend is away.
    assert http_get(port) == "hello from compose\n"
    before = ticks(port)
    assert before is not None and before[0] == connections, before

    d.ok("start", "--checkpoint", "cp1", redis, timeout=CRIU_TIMEOUT)
    assert inspect(d, redis)["State"]["Running"]
    after = wait_for(lambda: (t := ticks(port)) and t[1] > before[1] + 5 and t, timeout=60,
                     what="the web's client answered by the restored redis")
    assert after[0] == connections, f"the client reconnected: {before} → {after}"
    # New connections by service name work as well, and the counter is Redis's own.
    assert first_hit(port) > 0
    assert "Up" in p.run("ps", "redis").stdout


def test_network_connect_disconnect_running_container(docker_cli, name):
    """docker network connect/disconnect of a running container: its address, its name and
    aliases in the peers' /etc/hosts come and go; a second network is refused (one endpoint per
    container)."""
    d = docker_cli
    nets = []
    try:
        for _ in range(2):
            for _ in range(20):
                n = "n" + uuid.uuid4().hex[:8]
                r = d.docker("network", "create", "--subnet", f"198.19.{random.randint(1, 254)}.0/24", n)
                if r.returncode == 0:
                    nets.append(n)
                    break
                assert "overlaps" in r.stderr, r.stderr
        n, other = nets
        a, b = name + "a", name + "b"
        since = time.time() - 0.5
        d.ok("run", "-d", "--name", a, "--network", n, "busybox", "sleep", "1000")
        d.ok("run", "-d", "--name", b, "--network", n, "--network-alias", "bee", "busybox", "sleep", "1000")
        d.ok("exec", a, "ping", "-c1", "-W3", "bee")
        # --link on a user network: a name only the linking container resolves; none on cryo0.
        d.ok("run", "-d", "--name", name + "c", "--network", n, "--link", f"{a}:ay", "busybox", "sleep", "1000")
        d.ok("exec", name + "c", "ping", "-c1", "-W3", "ay")
        assert "ay" not in d.ok("exec", b, "cat", "/etc/hosts").split()
        r = d.docker("run", "-d", "--link", f"{a}:ay", "busybox", "sleep", "1000")
        assert r.returncode != 0 and "user-defined networks" in r.stderr, r.stderr

        d.ok("network", "disconnect", n, b)
        ns = inspect(d, b)["NetworkSettings"]
        assert ns["Networks"] == {} and ns["IPAddress"] == "", ns
        assert "eth0" not in d.ok("exec", b, "ip", "-o", "link")
        wait_for(lambda: "bee" not in d.ok("exec", a, "cat", "/etc/hosts"), what="alias gone from the peer's hosts")
        r = d.docker("network", "disconnect", n, b)
        assert r.returncode != 0 and "not connected" in r.stderr, r.stderr

        d.ok("network", "connect", "--alias", "buzz", n, b)
        ep = inspect(d, b)["NetworkSettings"]["Networks"][n]
        assert ep["IPAddress"] and ep["Aliases"] == ["buzz"], ep
        d.ok("exec", a, "ping", "-c1", "-W3", "buzz")
        d.ok("exec", b, "ping", "-c1", "-W3", a)
        info = json.loads(d.ok("network", "inspect", n))[0]
        assert sorted(c["Name"] for c in info["Containers"].values()) == sorted([a, b, name + "c"])

        r = d.docker("network", "connect", other, b)
        assert r.returncode != 0 and "one network" in r.stderr, r.stderr
        r = d.docker("network", "connect", n, b)
        assert r.returncode != 0 and "already exists" in r.stderr, r.stderr

        # The same through the cryo CLI.
        cryo = cryo_runner(d)
        cryo.ok("network", "disconnect", n, b)
        assert inspect(d, b)["NetworkSettings"]["Networks"] == {}
        cryo.ok("network", "connect", "--alias", "zz", n, b)
        d.ok("exec", a, "ping", "-c1", "-W3", "zz")
        r = cryo("network", "connect", other, b)
        assert r.returncode != 0 and "one network" in r.stderr, r.stderr

        # Each connect and disconnect is a network event naming the container, as dockerd's
        # (cryo emits none for the attach at start and the detach at stop).
        bid = inspect(d, b)["Id"]
        out = d.ok("events", "--since", f"{since:.3f}", "--until", f"{time.time() + 0.5:.3f}", "--format", "{{json .}}",
                   "--filter", "type=network", "--filter", f"container={bid}")
        actions = [e["Action"] for e in map(json.loads, out.splitlines())]
        assert actions == ["disconnect", "connect", "disconnect", "connect"], actions
    finally:
        d.remove_all_containers()
        for n in nets:
            d.docker("network", "rm", n)


def test_image_inspect_has_container_config_at_every_api_version(docker_cli):
    """dockerd dropped ContainerConfig from image inspect in API 1.45, and docker-compose 1.29
    (whose docker-py speaks the server's version) reads it at every recreate: cryo keeps it."""
    d = docker_cli
    for v in ("1.38", "1.50"):
        status, _, body = d.http("GET", f"/v{v}/images/busybox:latest/json")
        assert status == 200, body
        image = json.loads(body)
        assert image["ContainerConfig"]["Cmd"] == image["Config"]["Cmd"], image


def test_list_filters_compose_relies_on(docker_cli, name):
    """Container and network lists honour their filters (they were ignored: every container
    and network came back), and refuse one they do not know."""
    d = docker_cli
    a, b = name + "a", name + "b"
    d.ok("run", "-d", "--name", a, "--label", f"{name}=one", "busybox", "sleep", "1000")
    d.ok("run", "--name", b, "--label", f"{name}=two", "busybox", "true")

    def names(*args):
        return sorted(d.ok("ps", "--format", "{{.Names}}", *args).split())

    assert names("-a", "--filter", f"label={name}=one") == [a]
    assert names("-a", "--filter", f"label={name}") == sorted([a, b])
    assert names("--filter", "status=exited", "--filter", f"label={name}") == [b]   # status implies -a
    assert names("-a", "--filter", "exited=0", "--filter", f"label={name}") == [b]
    assert names("--filter", "exited=0", "--filter", f"label={name}") == []        # exited does not
    assert names("-a", "--filter", f"name=^/{a}$") == [a]
    assert names("-a", "--filter", f"id={inspect(d, b)['Id'][:12]}") == [b]
    r = d.docker("ps", "--filter", "is-task=true")    # not one cryo knows: refused, never ignored
    assert r.returncode != 0 and "invalid filter" in r.stderr, r.stderr

    n = "n" + uuid.uuid4().hex[:8]
    for _ in range(20):
        r = d.docker("network", "create", "--label", f"{name}=net", "--subnet", f"198.19.{random.randint(1, 254)}.0/24", n)
        if r.returncode == 0:
            break
        assert "overlaps" in r.stderr, r.stderr
    try:
        assert d.ok("network", "ls", "--format", "{{.Name}}", "--filter", f"label={name}=net").split() == [n]
        assert d.ok("network", "ls", "--format", "{{.Name}}", "--filter", f"label={name}=other").split() == []
        assert n not in d.ok("network", "ls", "--format", "{{.Name}}", "--filter", "type=builtin").split()
        r = d.docker("network", "ls", "--filter", "colour=red")
        assert r.returncode != 0 and "invalid filter" in r.stderr, r.stderr
    finally:
        d.docker("network", "rm", n)
