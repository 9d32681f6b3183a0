"""Load (issue 10, "suites that find the next ones"): many containers checkpointed and restored at
once for many rounds, hundreds of API clients while checkpoints run, many idle connections — and
afterwards nothing has leaked: cryod's descriptors and threads, mounts, monitors, network
namespaces and cgroups are back where they started. No timing is asserted: the test asserts
that everything completes and comes back; `bench/` measures speed.
"""

import json
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import COUNTER, counter_values, http_request, mounts_under, wait_for

CONTAINERS = 10
ROUNDS = 20


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def monitors(d):
    n = 0
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd and cmd[0].endswith(b"cryo-monitor") and str(d.root).encode() in b" ".join(cmd):
                n += 1
    return n


def snapshot(d):
    pid = d.proc.pid
    return {
        "fds": fds(pid),
        "threads": threads(pid),
        "mounts": len(mounts_under(d.base)),
        "monitors": monitors(d),
        "netns": len(os.listdir(d.run / "netns")) if (d.run / "netns").is_dir() else 0,
        "cgroups": len([p for p in Path("/sys/fs/cgroup/memory/cryo").iterdir() if p.is_dir()])
        if Path("/sys/fs/cgroup/memory/cryo").is_dir() else 0,
    }


def back_to(before, now):
    """Nothing leaked: mounts, monitors, namespaces and cgroups exactly as before; descriptors
    and threads no more than a few above (a connection or a pool thread may come and go)."""
    exact = ("mounts", "monitors", "netns", "cgroups")
    return (all(now[k] == before[k] for k in exact)
            and now["fds"] <= before["fds"] + 2 and now["threads"] <= before["threads"] + 4)


def api(d, method, path, body=None, timeout=120):
    data = json.dumps(body) if body is not None else None
    hdrs = {"Content-Type": "application/json"} if body is not None else {}
    return http_request(d.sock, method, path, body=data, headers=hdrs, timeout=timeout)


def logs(d, cid):
    st, _, body = api(d, "GET", f"/containers/{cid}/logs?stdout=1")
    assert st == 200
    # strip the 8-byte frame headers of the multiplexed stream
    out, i = b"", 0
    while i + 8 <= len(body):
        n = int.from_bytes(body[i + 4:i + 8], "big")
        out += body[i + 8:i + 8 + n]
        i += 8 + n
    return out.decode(errors="replace")


def test_concurrent_checkpoint_restore_rounds_leak_nothing(docker_cli, name, criu):
    d = docker_cli
    # settle: a first container started and removed warms every lazy cache of the daemon
    d.ok("run", "--rm", "busybox", "true")
    before = snapshot(d)
    ids = []
    for i in range(CONTAINERS):
        net = [] if i % 2 == 0 else ["--network", "none"]
        ids.append(d.ok("run", "-d", "--name", f"{name}-{i}", *net, "busybox", "sh", "-c", COUNTER))
    for cid in ids:
        wait_for(lambda: len(counter_values(logs(d, cid))) >= 2, what="counter output")

    def checkpoint(cid, cp):
        st, _, body = api(d, "POST", f"/containers/{cid}/checkpoints", {"CheckpointID": cp})
        return st, body

    def restore(cid, cp):
        st, _, body = api(d, "POST", f"/containers/{cid}/start?checkpoint={cp}")
        return st, body

    with ThreadPoolExecutor(max_workers=CONTAINERS) as pool:
        for r in range(ROUNDS):
            cp = f"r{r}"
            seen = {cid: len(counter_values(logs(d, cid))) for cid in ids}
            for cid, (st, body) in zip(ids, pool.map(lambda c: checkpoint(c, cp), ids)):
                assert st == 201, f"round {r}: checkpoint of {cid[:12]}: {st} {body[:500]!r}"
            for cid, (st, body) in zip(ids, pool.map(lambda c: restore(c, cp), ids)):
                assert st == 204, f"round {r}: restore of {cid[:12]}: {st} {body[:500]!r}"
            for cid in ids:
                wait_for(lambda: len(counter_values(logs(d, cid))) > seen[cid], what=f"round {r}: {cid[:12]} counts on")
                st, _, _ = api(d, "DELETE", f"/containers/{cid}/checkpoints/{cp}")
                assert st == 204
    for cid in ids:
        vals = counter_values(logs(d, cid))
        assert vals == list(range(len(vals))), f"{cid[:12]}: the counter went backwards or skipped: {vals[-20:]}"
    during = snapshot(d)
    assert during["monitors"] == before["monitors"] + CONTAINERS, during
    d.ok("rm", "-f", *ids, timeout=120)
    wait_for(lambda: back_to(before, snapshot(d)), timeout=30, what=f"back to {before} (now {snapshot(d)})")


def test_200_clients_while_checkpoints_run(docker_cli, name, criu):
    d = docker_cli
    ids = [d.ok("run", "-d", "--name", f"{name}-{i}", "busybox", "sh", "-c", COUNTER) for i in range(3)]
    for cid in ids:
        wait_for(lambda: len(counter_values(logs(d, cid))) >= 1, what="counter output")
    before = fds(d.proc.pid)
    stop = threading.Event()
    errors = []

    def checkpoints():
        n = 0
        while not stop.is_set() and n < 30:
            for cid in ids:
                st, _, body = api(d, "POST", f"/containers/{cid}/checkpoints", {"CheckpointID": f"k{n}", "Exit": False})
                if st != 201:
                    errors.append(f"checkpoint: {st} {body[:300]!r}")
                api(d, "DELETE", f"/containers/{cid}/checkpoints/k{n}")
            n += 1

    def client(i):
        for path in ("/_ping", "/containers/json?all=1", f"/containers/{ids[i % 3]}/json", "/version", "/images/json"):
            st, _, body = api(d, "GET", path, timeout=120)
            if st != 200:
                errors.append(f"client {i} {path}: {st} {body[:200]!r}")

    cp = threading.Thread(target=checkpoints)
    cp.start()
    try:
        with ThreadPoolExecutor(max_workers=200) as pool:
            list(pool.map(client, range(200)))
    finally:
        stop.set()
        cp.join(timeout=300)
    assert not errors, errors[:10]
    assert http_request(d.sock, "GET", "/_ping")[0] == 200
    wait_for(lambda: fds(d.proc.pid) <= before + 2, timeout=30, what=f"cryod's descriptors back to {before}")


def test_many_idle_connections_do_not_stop_work_or_leak(docker_cli, name):
    d = docker_cli
    before = fds(d.proc.pid)
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1500
    if soft < want + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, want + 200), hard))
    idle = []
    try:
        for _ in range(want):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(d.sock)
            idle.append(s)
        # a half-sent request head on some of them
        for s in idle[:100]:
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n")
        assert http_request(d.sock, "GET", "/_ping", timeout=30)[0] == 200
        out = d.ok("run", "--rm", "--name", name, "busybox", "echo", "still-working", timeout=60)
        assert out == "still-working"
    finally:
        for s in idle:
            s.close()
    wait_for(lambda: fds(d.proc.pid) <= before + 2, timeout=30, what=f"cryod's descriptors back to {before}")
