"""`docker events` against cryod (issue 13): the real docker CLI, docker-py and the cryo CLI read
cryod's event stream — a container's life in order, filters, checkpoint/restore, image,
network and volume events — and a client that goes away mid-stream leaves cryod healthy."""

import json
import subprocess
import time

from conftest import BIN_DIR, wait_for


def window(d, *filters, since):
    """The events since `since` up to now, through `docker events --format '{{json .}}'`."""
    until = f"{time.time() + 0.5:.3f}"
    args = ["events", "--since", f"{since:.3f}", "--until", until, "--format", "{{json .}}"]
    for f in filters:
        args += ["--filter", f]
    out = d.ok(*args, timeout=60)
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def test_a_containers_life_in_order(docker_cli, name, criu):
    d = docker_cli
    since = time.time() - 0.5
    cid = d.ok("run", "-d", "--name", name, "busybox", "sh", "-c", "sleep 100000")
    d.ok("pause", name)
    d.ok("unpause", name)
    d.ok("checkpoint", "create", name, "c1", timeout=120)
    d.ok("start", "--checkpoint", "c1", name, timeout=120)
    d.ok("rename", name, name + "-b")
    d.ok("kill", name + "-b")
    wait_for(lambda: not json.loads(d.ok("inspect", name + "-b"))[0]["State"]["Running"], what="the kill")
    d.ok("rm", name + "-b")
    evs = window(d, f"container={cid}", since=since)
    actions = [e["Action"] for e in evs]
    want = ["create", "start", "pause", "unpause", "die", "checkpoint", "restore", "start", "rename", "kill", "die",
            "destroy"]
    assert actions == want, actions
    e = evs[0]
    assert e["Type"] == "container" and e["Actor"]["ID"] == cid and e["scope"] == "local", e
    assert e["Actor"]["Attributes"]["name"] == name and e["Actor"]["Attributes"]["image"] == "busybox", e
    assert e["status"] == "create" and e["id"] == cid and e["from"] == "busybox", "dockerd's legacy fields"
    assert isinstance(e["time"], int) and e["timeNano"] // 1_000_000_000 == e["time"]
    rename = next(x for x in evs if x["Action"] == "rename")
    assert rename["Actor"]["Attributes"]["oldName"] == "/" + name, rename
    kill = next(x for x in evs if x["Action"] == "kill")
    assert kill["Actor"]["Attributes"]["signal"] == "9", kill
    assert evs[-2]["Actor"]["Attributes"]["exitCode"] == "137", evs[-2]


def test_filters_and_other_types(docker_cli, name):
    d = docker_cli
    since = time.time() - 0.5
    d.ok("network", "create", name + "-net")
    d.ok("network", "rm", name + "-net")
    d.ok("volume", "create", name + "-vol")
    d.ok("volume", "rm", name + "-vol")
    d.ok("tag", "busybox", name + ":ev")
    d.ok("rmi", name + ":ev")
    d.ok("run", "--rm", "--label", "ev=yes", "busybox", "true")
    nets = window(d, "type=network", since=since)
    assert [(e["Action"], e["Actor"]["Attributes"]["name"]) for e in nets] == [("create", name + "-net"), ("destroy", name + "-net")]
    vols = window(d, "type=volume", f"volume={name}-vol", since=since)
    assert [(e["Action"], e["Actor"]["ID"]) for e in vols] == [("create", name + "-vol"), ("destroy", name + "-vol")]
    imgs = window(d, "type=image", since=since)
    assert [e["Action"] for e in imgs] == ["tag", "untag"], imgs
    labelled = window(d, "label=ev=yes", "event=die", since=since)
    assert [e["Action"] for e in labelled] == ["die"], labelled
    bad = d.docker("events", "--since", "0", "--until", "1", "--filter", "colour=red")
    assert bad.returncode != 0 and "invalid filter 'colour'" in bad.stderr, bad.stderr


def test_docker_py_and_cryo_read_the_stream(docker_cli, name):
    import docker
    d = docker_cli
    since = time.time() - 0.5
    d.ok("create", "--name", name, "busybox", "true")
    until = time.time() + 0.5
    client = docker.DockerClient(base_url=d.host, version="1.43")
    got = [e for e in client.events(since=since, until=until, decode=True, filters={"container": name})]
    assert [e["Action"] for e in got] == ["create"], got
    r = subprocess.run([str(BIN_DIR / "cryo"), "-H", d.host, "events", "--since", f"{since:.3f}", "--until",
                        f"{until:.3f}", "--filter", f"container={name}"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    [line] = r.stdout.splitlines()
    assert f" container create {got[0]['Actor']['ID']} (image=busybox, name={name})" in line, line


def test_a_client_that_goes_away_leaves_cryod_healthy(docker_cli, name):
    d = docker_cli
    for _ in range(5):
        p = subprocess.Popen(["docker", "events"], env=d.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        d.ok("create", "--name", name, "busybox", "true")
        d.ok("rm", name)
        p.kill()
        p.wait()
    st, _, body = d.http("GET", "/_ping")
    assert (st, body) == (200, b"OK")
    since = time.time()
    d.ok("create", "--name", name, "busybox", "true")
    assert [e["Action"] for e in window(d, f"container={name}", since=since)] == ["create"]


def test_exec_events(docker_cli, name):
    d = docker_cli
    d.ok("run", "-d", "--name", name, "busybox", "sleep", "100000")
    since = time.time()
    assert d.docker("exec", name, "sh", "-c", "exit 3").returncode == 3
    evs = window(d, f"container={name}", since=since)
    assert [e["Action"] for e in evs] == ["exec_create: sh -c exit 3", "exec_start: sh -c exit 3", "exec_die"], evs
    assert evs[2]["Actor"]["Attributes"]["exitCode"] == "3" and evs[2]["Actor"]["Attributes"]["execID"], evs[2]
    assert [e["Action"] for e in window(d, f"container={name}", "event=exec_start", since=since)] == ["exec_start: sh -c exit 3"]
