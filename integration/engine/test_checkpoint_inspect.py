"""`cryo checkpoint inspect` (issue 12, forensics): a real container's checkpoint read by cryo,
every field shown cross-checked against CRIU's own `crit decode` of the same images (Debian's
python3-pycriu), for a checkpoint in cryod's store and for an exported archive; environment
variables only with --env."""

import json
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import BIN_DIR, inspect, unavailable, wait_for

CRIT = "/usr/bin/crit"
SECRET = "s3cr3t-do-not-show"
# A shell (pid 1) holding a file open for appending with a known position, a pipe between
# two processes, a listening TCP socket (httpd) and an established connection (nc ↔ nc).
WORKLOAD = ("exec 3>>/tmp/held.txt; echo hello-forensics >&3; "
            "busybox httpd -f -p 7001 & "
            "sleep 100000 | busybox nc -l -p 7002 >/dev/null & "
            "sleep 100000 | cat & "
            "sleep 0.2; sleep 100000 | busybox nc 127.0.0.1 7002 & "
            "exec sleep 100000")


@pytest.fixture
def cryo(docker_cli, criu):
    d = docker_cli

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
def crit():
    if not os.path.exists(CRIT):
        unavailable("crit is not installed (Debian's python3-pycriu)")

    def decode(path):
        # crit's own interpreter: /usr/bin/crit runs under /usr/bin/python3.
        r = subprocess.run([CRIT, "decode", "-i", str(path)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"crit decode {path}: {r.stderr}"
        return json.loads(r.stdout)["entries"]
    return decode


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="cryo-inspect-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def num(v):
    """crit prints some numbers as hex strings (CRIU's custom field options)."""
    return int(v, 0) if isinstance(v, str) else v


def ip(words, v6):
    """CRIU's address words → text, independent of cryo's code; crit may already give text."""
    if isinstance(words, str):
        return words
    if words and isinstance(words[0], str):
        return words[0]
    raw = b"".join(int(w).to_bytes(4, "little") for w in words)
    import ipaddress
    a = ipaddress.ip_address(raw)
    if v6 and a.ipv4_mapped:
        return f"::ffff:{a.ipv4_mapped}"
    return str(a)


def dumped_bytes(crit, images, pid, start, end):
    """Reads [start, end) of a process's memory through crit's pagemap and the pages file."""
    pm = crit(images / f"pagemap-{pid}.img")
    pages = (images / f"pages-{pm[0]['pages_id']}.img").read_bytes()
    out, offset = {}, 0
    for e in pm[1:]:
        n = e.get("nr_pages", e.get("compat_nr_pages"))
        flags = num(e.get("flags", 0))
        if isinstance(e.get("flags"), str) and not e["flags"].startswith("0"):
            flags = 4 if "PE_PRESENT" in e["flags"] else 0
        vaddr = num(e["vaddr"])
        if flags & 4:
            for i in range(n):
                out[vaddr + i * 4096] = pages[offset + i * 4096: offset + (i + 1) * 4096]
            offset += n * 4096
    data = b""
    a = start
    while a < end:
        page = a - a % 4096
        chunk = out[page][a - page: min(end, page + 4096) - page]
        data += chunk
        a += len(chunk)
    return data


def start_workload(cryo, name):
    cryo.ok("run", "-d", "--name", name, "-e", f"SECRET_TOKEN={SECRET}", "busybox", "sh", "-c", WORKLOAD)

    def ready():
        r = cryo("exec", name, "busybox", "netstat", "-tan")
        return r.returncode == 0 and ":7001" in r.stdout and r.stdout.count("ESTABLISHED") >= 2
    wait_for(ready, what=f"{name}: listener and connection up")
    wait_for(lambda: cryo("exec", name, "busybox", "pidof", "cat").returncode == 0, what="the pipe's reader")


def cross_check(model, images, crit, env_shown):
    tree = crit(images / "pstree.img")
    assert sorted(p["pid"] for p in model["processes"]) == sorted(e["pid"] for e in tree)
    files = {f["id"]: f for f in crit(images / "files.img")}
    by_pid = {p["pid"]: p for p in model["processes"]}
    for e in tree:
        p = by_pid[e["pid"]]
        assert (p["ppid"], p["pgid"], p["sid"]) == (e["ppid"], e["pgid"], e["sid"])
        assert p["threads"] == e["threads"]
        core = crit(images / f"core-{e['pid']}.img")[0]
        assert p["comm"] == core["tc"]["comm"]
        assert p["uid"] == core["thread_core"]["creds"]["uid"]
        assert p["gid"] == core["thread_core"]["creds"]["gid"]
        ids = core["ids"]
        for kind in ("pid", "net", "ipc", "uts", "mnt"):
            assert p["namespaces"][kind] == ids[f"{kind}_ns_id"], kind
        # Command line and environment, read independently through crit's pagemap.
        mm = crit(images / f"mm-{e['pid']}.img")[0]
        argv = dumped_bytes(crit, images, e["pid"], num(mm["mm_arg_start"]), num(mm["mm_arg_end"]))
        assert p["arguments"] == argv.rstrip(b"\0").decode().split("\0")
        if env_shown:
            envb = dumped_bytes(crit, images, e["pid"], num(mm["mm_env_start"]), num(mm["mm_env_end"]))
            assert p["environment"] == envb.rstrip(b"\0").decode().split("\0")
        else:
            assert "environment" not in p
        # Memory mappings: every vma, in order, with its file.
        vmas = mm["vmas"]
        assert [(m["start"], m["end"]) for m in p["mappings"]] == [(num(v["start"]), num(v["end"])) for v in vmas]
        for m, v in zip(p["mappings"], vmas):
            assert m["size"] == num(v["end"]) - num(v["start"])
            if m["kind"] == "file":
                assert m["path"] == files[num(v["shmid"])]["reg"]["name"]
        # cwd through fs-<pid>.img.
        fs = crit(images / f"fs-{e['pid']}.img")[0]
        assert p["cwd"] == files[fs["cwd_id"]]["reg"]["name"]
        # Open files: every fd with its type, path, position, flags, pipe and socket.
        fdinfo = crit(images / f"fdinfo-{ids['files_id']}.img")
        assert [f["fd"] for f in p["files"]] == [f["fd"] for f in fdinfo]
        for shown, fd in zip(p["files"], fdinfo):
            obj = files[fd["id"]]
            if fd["type"] == "REG":
                assert shown["type"] == "file"
                assert shown["path"] == obj["reg"]["name"]
                assert shown["position"] == num(obj["reg"]["pos"])
                assert shown["flags"] == num(obj["reg"]["flags"])
            elif fd["type"] == "PIPE":
                assert shown["type"] == "pipe"
                assert shown["pipe"] == obj["pipe"]["pipe_id"]
            elif fd["type"] == "INETSK":
                sk, s = obj["isk"], shown["socket"]
                v6 = sk["family"] in (10, "INET6")
                assert s["inode"] == sk["ino"]
                assert s["local"] == (f"[{ip(sk['src_addr'], v6)}]" if v6 else ip(sk["src_addr"], v6)) + f":{sk['src_port']}"
                if "peer" in s:
                    assert s["peer"] == (f"[{ip(sk['dst_addr'], v6)}]" if v6 else ip(sk["dst_addr"], v6)) + f":{sk['dst_port']}"
            elif fd["type"] == "UNIXSK":
                assert shown["socket"]["inode"] == obj["usk"]["ino"]
    # Mounts of the root task's mount namespace, and the hostname.
    root_ids = crit(images / f"core-{tree[0]['pid']}.img")[0]["ids"]
    mounts = crit(images / f"mountpoints-{root_ids['mnt_ns_id']}.img")
    assert [(m["id"], m["mountpoint"], m["source"]) for m in model["mounts"]] == \
        [(x["mnt_id"], x["mountpoint"], x["source"]) for x in mounts]
    uts = [n for n in model["namespaces"] if n["kind"] == "uts"]
    assert uts and uts[0]["hostname"] == crit(images / f"utsns-{root_ids['uts_ns_id']}.img")[0]["nodename"]


# Known failing (issue 12, open): the cross-check was written without ever running against real
# images; it now gets as far as the namespace ids (crit shows no `ids` in core-PID.img here, and
# cryo's model lists no mounts or namespaces), so either side may be wrong. strict: a pass
# must remove this mark.
@pytest.mark.xfail(strict=True, reason="crit cross-check of checkpoint inspect not finished (issue 12)")
def test_inspect_matches_crit(cryo, crit, name):
    start_workload(cryo, name)
    cryo.ok("checkpoint", "create", "--leave-running", "--tcp-established", name, "cp1")
    cid = inspect(cryo.daemon, name)["Id"]
    images = cryo.daemon.root / "containers" / cid / "checkpoints" / "cp1"
    assert (images / "inventory.img").is_file(), list(images.parent.iterdir())

    model = json.loads(cryo.ok("checkpoint", "inspect", "--format", "json", name, "cp1").stdout)
    cross_check(model, images, crit, env_shown=False)
    assert SECRET not in json.dumps(model)
    assert model["environmentShown"] is False

    # What the workload made is there, as the kernel had it.
    procs = model["processes"]
    init = next(p for p in procs if p["pid"] == 1)
    assert init["arguments"] == ["sleep", "100000"]
    held = [f for f in init["files"] if f["fd"] == 3]
    assert held and held[0]["path"] == "/tmp/held.txt" and held[0]["position"] == len("hello-forensics\n")
    assert held[0]["flags"] & 0o2000, "O_APPEND"
    sockets = [f["socket"] for p in procs for f in p["files"] if f.get("socket")]
    assert any(s["state"] == "listen" and s["local"].endswith(":7001") for s in sockets), sockets
    established = [s for s in sockets if s["state"] == "established"]
    assert any(s["local"].endswith(":7002") for s in established) and any(s.get("peer", "").endswith(":7002") for s in established), sockets
    pipes = [f["pipe"] for p in procs for f in p["files"] if f["type"] == "pipe"]
    assert any(pipes.count(x) >= 2 for x in pipes), "both ends of a pipe"
    assert model["mounts"] and any(m["mountpoint"] == "/" for m in model["mounts"])
    stats = crit(images / "stats-dump")[0]["dump"]
    assert model["statistics"]["pagesWritten"] == stats["pages_written"]
    assert model["statistics"]["frozenTime"] == stats["frozen_time"]

    # --env shows the environment, and it matches crit's view too.
    with_env = json.loads(cryo.ok("checkpoint", "inspect", "--format", "json", "--env", name, "cp1").stdout)
    cross_check(with_env, images, crit, env_shown=True)
    assert f"SECRET_TOKEN={SECRET}" in next(p for p in with_env["processes"] if p["pid"] == 1)["environment"]

    # Memory search: the secret is in every process's environment block (as crit's mm says).
    found = json.loads(cryo.ok("checkpoint", "inspect", "--format", "json", "--search", SECRET, "--context", "16", name, "cp1").stdout)
    matches = found["matches"]
    assert found["matchesTruncated"] is False
    assert {m["pid"] for m in matches} == {p["pid"] for p in procs}, matches
    for p in procs:
        mm = crit(images / f"mm-{p['pid']}.img")[0]
        mine = [m for m in matches if m["pid"] == p["pid"]]
        in_env = [m for m in mine if num(mm["mm_env_start"]) <= m["address"] < num(mm["mm_env_end"])]
        assert in_env, (p["pid"], mine)
        assert all(m["match"] == SECRET and m["before"].endswith("SECRET_TOKEN=") and m["mappingKind"] == "stack" for m in in_env)
        vmas = [(num(v["start"]), num(v["end"])) for v in mm["vmas"]]
        assert all(any(a <= m["address"] < b and m["mappingStart"] == a for a, b in vmas) for m in mine)
    regex = json.loads(cryo.ok("checkpoint", "inspect", "--format", "json", "--search-regex", "SECRET_TOKEN=s3cr3t-[a-z-]+", name, "cp1").stdout)
    assert sorted(m["address"] for m in regex["matches"]) == sorted(m["address"] for m in matches)
    text = cryo.ok("checkpoint", "inspect", "--search", SECRET, name, "cp1").stdout
    assert f"[{SECRET}]" in text and f"{len(matches)} matches" in text
    assert cryo("checkpoint", "inspect", "--search-regex", "(unclosed", name, "cp1").returncode != 0

    # The human form: the same facts, no environment without --env.
    text = cryo.ok("checkpoint", "inspect", name, "cp1").stdout
    assert "sleep 100000" in text and "/tmp/held.txt" in text and ":7001" in text and "listen" in text
    assert SECRET not in text
    assert SECRET in cryo.ok("checkpoint", "inspect", "--env", name, "cp1").stdout


# Known failing (issue 12, open): the cross-check was written without ever running against real
# images; it now gets as far as the namespace ids (crit shows no `ids` in core-PID.img here, and
# cryo's model lists no mounts or namespaces), so either side may be wrong. strict: a pass
# must remove this mark.
@pytest.mark.xfail(strict=True, reason="crit cross-check of checkpoint inspect not finished (issue 12)")
def test_inspect_archive_matches_crit(cryo, crit, name, tmp):
    start_workload(cryo, name)
    archive = os.path.join(tmp, "cp.tar.zst")
    cryo.ok("checkpoint", "create", "--leave-running", "--tcp-established", name, "cpa")
    cryo.ok("checkpoint", "export", "-o", archive, name, "cpa")
    model = json.loads(cryo.ok("checkpoint", "inspect", "--archive", archive, "--format", "json").stdout)
    unpacked = os.path.join(tmp, "unpacked")
    os.mkdir(unpacked)
    subprocess.run(["tar", "--zstd", "-xf", archive, "-C", unpacked], check=True)
    from pathlib import Path
    cross_check(model, Path(unpacked) / "checkpoint", crit, env_shown=False)
    assert SECRET not in json.dumps(model)
    # --env, unpacking into a TMPDIR of the test's own: nothing is left behind there.
    scratch = os.path.join(tmp, "scratch")
    os.mkdir(scratch)
    r = subprocess.run([str(BIN_DIR / "cryo"), "checkpoint", "inspect", "--archive", archive, "--env", "--format", "json"],
                       capture_output=True, text=True, timeout=120, env=dict(os.environ, TMPDIR=scratch))
    assert r.returncode == 0, r.stderr
    env = json.loads(r.stdout)
    assert any(f"SECRET_TOKEN={SECRET}" in (p.get("environment") or []) for p in env["processes"])
    assert os.listdir(scratch) == []


def test_inspect_refuses_bad_names_and_missing_checkpoints(cryo, name, tmp):
    cryo.ok("run", "-d", "--name", name, "busybox", "sleep", "1000")
    for bad in ("../../x", "..", "a/b"):
        r = cryo("checkpoint", "inspect", name, bad)
        assert r.returncode != 0, (bad, r.stdout)
    r = cryo("checkpoint", "inspect", name, "nope")
    assert r.returncode != 0 and "does not exist" in r.stderr
    r = cryo.daemon.http("GET", f"/containers/{name}/checkpoints/%2e%2e/inspect")
    assert r[0] == 400, r
    r = cryo.daemon.http("GET", f"/containers/{name}/checkpoints/cp/inspect?env=maybe")
    assert r[0] == 400, r
    bogus = os.path.join(tmp, "bogus.tar")
    with open(bogus, "wb") as f:
        f.write(b"not an archive")
    r = cryo("checkpoint", "inspect", "--archive", bogus)
    assert r.returncode != 0 and "bogus.tar" in r.stderr
    r = cryo("checkpoint", "inspect", "--archive", bogus, name, "cp1")
    assert r.returncode != 0
