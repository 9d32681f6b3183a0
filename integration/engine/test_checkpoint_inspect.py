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
# two processes, a listening TCP socket (httpd), an established connection (nc ↔ nc) and a
# bound unix datagram socket (syslogd's /dev/log).
WORKLOAD = ("exec 3>>/tmp/held.txt; echo hello-forensics >&3; "
            "busybox httpd -f -p 7001 & "
            "busybox syslogd -n -O /tmp/syslog & "
            "sleep 100000 | busybox nc -l -p 7002 >/dev/null & "
            "sleep 100000 | cat & "
            "sleep 0.2; sleep 100000 | busybox nc 127.0.0.1 7002 & "
            "exec sleep 100000")


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


# crit's names of CRIU's fd types (images/fdinfo.proto) → the type cryo shows.
FD_TYPES = {"REG": "file", "PIPE": "pipe", "FIFO": "fifo", "INETSK": "socket", "UNIXSK": "socket",
            "NETLINKSK": "socket", "PACKETSK": "socket", "EVENTFD": "eventfd", "EVENTPOLL": "eventpoll",
            "INOTIFY": "inotify", "SIGNALFD": "signalfd", "TTY": "tty", "CTL_TTY": "tty", "FANOTIFY": "fanotify",
            "NS": "namespace", "TUNF": "tun", "EXT": "external", "TIMERFD": "timerfd", "MEMFD": "memfd",
            "BPFMAP": "bpf-map", "PIDFD": "pidfd"}
# The kernel's socket states (include/net/tcp_states.h) and types, written out here on their own.
SK_STATES = {1: "established", 2: "syn-sent", 3: "syn-recv", 4: "fin-wait1", 5: "fin-wait2", 6: "time-wait",
             7: "close", 8: "close-wait", 9: "last-ack", 10: "listen", 11: "closing"}
SK_TYPES = {1: "stream", 2: "dgram", 3: "raw", 5: "seqpacket"}
NS_KINDS = ("pid", "net", "ipc", "uts", "mnt", "user", "cgroup", "time")


def criu_fstypes():
    """CRIU's fstype enum (images/mnt.proto) by number, from pycriu itself (crit prints numbers)."""
    r = subprocess.run(["/usr/bin/python3", "-c",
                        "import json; from pycriu.images import mnt_pb2; "
                        "print(json.dumps({v.number: v.name for v in mnt_pb2.fstype.DESCRIPTOR.values}))"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return {int(k): v for k, v in json.loads(r.stdout).items()}


def protection(prot, flags):
    return "".join(c if prot & b else "-" for c, b in (("r", 1), ("w", 2), ("x", 4))) + ("s" if flags & 1 else "p")


def unix_name(name):
    """crit prints a unix socket's name quoted-printable (pycriu's unix_name encoding)."""
    import quopri
    raw = quopri.decodestring(name.encode())
    if not raw:
        return ""
    return "@" + raw[1:].decode() if raw[0] == 0 else raw.split(b"\0")[0].decode()


def present_pages(crit, images, pid):
    """[start, end) of the pages saved in this checkpoint (pagemap entries flagged PE_PRESENT)."""
    out = []
    for e in crit(images / f"pagemap-{pid}.img")[1:]:
        n = e.get("nr_pages", e.get("compat_nr_pages"))
        if num(e.get("flags", 4)) & 4:
            out.append((num(e["vaddr"]), num(e["vaddr"]) + n * 4096))
    return out


def cross_check(model, images, crit, env_shown, stats_dump=None):
    """Every field cryo shows, compared with crit's decoding of the same images (stats_dump: an
    archive keeps CRIU's stats-dump at its root, not next to the images)."""
    inventory = crit(images / "inventory.img")[0]
    assert model["imageVersion"] == inventory["img_version"]
    tree = crit(images / "pstree.img")
    assert [p["pid"] for p in model["processes"]] == [e["pid"] for e in tree]
    files = {f["id"]: f for f in crit(images / "files.img")}
    by_pid = {p["pid"]: p for p in model["processes"]}
    ns_members = {}
    for e in tree:
        p = by_pid[e["pid"]]
        assert (p["ppid"], p["pgid"], p["sid"]) == (e["ppid"], e["pgid"], e["sid"])
        assert p["threads"] == e["threads"]
        core = crit(images / f"core-{e['pid']}.img")[0]
        assert p["comm"] == core["tc"]["comm"]
        assert p["state"] == {1: "alive", 3: "stopped", 6: "zombie"}[core["tc"]["task_state"]]
        creds = core["thread_core"]["creds"]
        assert (p["uid"], p["gid"], p["euid"], p["egid"]) == (creds["uid"], creds["gid"], creds["euid"], creds["egid"])
        # CRIU 4.2 writes a task's ids to ids-<pid>.img (core's `ids` stays empty).
        ids = crit(images / f"ids-{e['pid']}.img")[0]
        assert "ids" not in core
        assert p["namespaces"] == {k: ids[f"{k}_ns_id"] for k in NS_KINDS if f"{k}_ns_id" in ids}
        for k in NS_KINDS:
            ns_members.setdefault((k, ids[f"{k}_ns_id"]), []).append(e["pid"])
        # Command line and environment, read independently through crit's pagemap.
        mm = crit(images / f"mm-{e['pid']}.img")[0]
        argv = dumped_bytes(crit, images, e["pid"], num(mm["mm_arg_start"]), num(mm["mm_arg_end"]))
        assert p["arguments"] == argv.rstrip(b"\0").decode().split("\0")
        if env_shown:
            envb = dumped_bytes(crit, images, e["pid"], num(mm["mm_env_start"]), num(mm["mm_env_end"]))
            assert p["environment"] == envb.rstrip(b"\0").decode().split("\0")
        else:
            assert "environment" not in p
        # Memory mappings: every vma, in order, with its protection, file, offset and saved bytes.
        vmas = mm["vmas"]
        assert [(m["start"], m["end"]) for m in p["mappings"]] == [(num(v["start"]), num(v["end"])) for v in vmas]
        saved = present_pages(crit, images, e["pid"])
        for m, v in zip(p["mappings"], vmas):
            start, end, status = num(v["start"]), num(v["end"]), num(v["status"])
            assert m["size"] == end - start
            assert m["protection"] == protection(num(v["prot"]), num(v["flags"]))
            assert m["dumped"] == sum(max(0, min(b, end) - max(a, start)) for a, b in saved), (m, saved)
            if status & (1 << 6 | 1 << 7):
                assert m["kind"] == "file"
                assert m["path"] == files[num(v["shmid"])]["reg"]["name"]
                assert m["offset"] == num(v["pgoff"])
            else:
                assert "path" not in m and "offset" not in m
            if status & 1 << 5:
                assert m["kind"] == "heap"
            if start <= num(mm["mm_start_stack"]) < end:
                assert m["kind"] == "stack"
        # cwd and root through fs-<pid>.img.
        fs = crit(images / f"fs-{e['pid']}.img")[0]
        assert p["cwd"] == files[fs["cwd_id"]]["reg"]["name"]
        assert p["root"] == files[fs["root_id"]]["reg"]["name"]
        # Open files: every fd with its type, path, position, flags, pipe and socket.
        fdinfo = crit(images / f"fdinfo-{ids['files_id']}.img")
        assert [f["fd"] for f in p["files"]] == [f["fd"] for f in fdinfo]
        for shown, fd in zip(p["files"], fdinfo):
            obj = files[fd["id"]]
            assert shown["type"] == FD_TYPES[fd["type"]], (shown, fd)
            assert shown["closeOnExec"] == bool(num(fd["flags"]) & 1)
            if fd["type"] == "REG":
                assert shown["path"] == obj["reg"]["name"]
                assert shown["position"] == num(obj["reg"]["pos"])
                assert shown["flags"] == num(obj["reg"]["flags"])
            elif fd["type"] == "PIPE":
                assert shown["pipe"] == obj["pipe"]["pipe_id"]
                assert shown["flags"] == num(obj["pipe"]["flags"])
            elif fd["type"] == "INETSK":
                sk, s = obj["isk"], shown["socket"]
                v6 = sk["family"] in (10, "INET6")
                assert s["family"] == ("inet6" if v6 else "inet")
                assert s["type"] == SK_TYPES[sk["type"]] and s["proto"] == {6: "tcp", 17: "udp"}[sk["proto"]]
                assert s["state"] == SK_STATES[sk["state"]]
                assert shown["flags"] == num(sk["flags"])
                assert s["inode"] == sk["ino"]
                assert s["local"] == (f"[{ip(sk['src_addr'], v6)}]" if v6 else ip(sk["src_addr"], v6)) + f":{sk['src_port']}"
                if sk["state"] in (10, 7) and not sk["dst_port"]:
                    assert "peer" not in s
                else:
                    assert s["peer"] == (f"[{ip(sk['dst_addr'], v6)}]" if v6 else ip(sk["dst_addr"], v6)) + f":{sk['dst_port']}"
            elif fd["type"] == "UNIXSK":
                sk, s = obj["usk"], shown["socket"]
                assert (s["family"], s["type"], s["state"]) == ("unix", SK_TYPES[sk["type"]], SK_STATES[sk["state"]])
                assert s["inode"] == sk["ino"] and s["peerInode"] == sk["peer"]
                assert s["local"] == unix_name(sk.get("name", ""))
                assert shown["flags"] == num(sk["flags"])
    # Namespaces: one entry per (kind, id) with its processes; the images that hold their state.
    assert [(n["kind"], n["id"], sorted(n["pids"])) for n in model["namespaces"]] == \
        [(k, i, sorted(ns_members[(k, i)])) for k in NS_KINDS for i in sorted(i for kk, i in ns_members if kk == k)]
    names = {"net": "netns", "ipc": "ipcns-var", "uts": "utsns", "mnt": "mountpoints"}
    for n in model["namespaces"]:
        expected = f"{names[n['kind']]}-{n['id']}.img" if n["kind"] in names else None
        assert n.get("image") == (expected if expected and (images / expected).exists() else None), n
    root_ids = crit(images / f"ids-{tree[0]['pid']}.img")[0]
    uts = [n for n in model["namespaces"] if n["kind"] == "uts"]
    assert uts and uts[0]["hostname"] == crit(images / f"utsns-{root_ids['uts_ns_id']}.img")[0]["nodename"]
    # Mounts of the root task's mount namespace: every field.
    fstypes = criu_fstypes()
    mounts = crit(images / f"mountpoints-{root_ids['mnt_ns_id']}.img")
    assert len(model["mounts"]) == len(mounts) > 0
    for shown, m in zip(model["mounts"], mounts):
        assert (shown["id"], shown["parent"], shown["mountpoint"], shown["source"], shown["root"], shown["options"]) == \
            (m["mnt_id"], m["parent_mnt_id"], m["mountpoint"], m["source"], m["root"], m["options"])
        assert shown.get("external") == m.get("ext_key")
        want = m.get("fsname") or fstypes[num(m["fstype"])].lower()
        assert shown["fstype"] == ("overlay" if want == "overlayfs" else want), (shown, m)
    # CRIU's dump statistics, every field shown.
    stats = crit(stats_dump or images / "stats-dump")[0]["dump"]
    want = {"freezingTime": "freezing_time", "frozenTime": "frozen_time", "memdumpTime": "memdump_time",
            "memwriteTime": "memwrite_time", "pagesScanned": "pages_scanned", "pagesSkippedParent": "pages_skipped_parent",
            "pagesWritten": "pages_written", "pagesLazy": "pages_lazy"}
    assert model["statistics"] == {k: stats.get(v, 0) for k, v in want.items()}



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
    unix = [s for s in sockets if s["family"] == "unix"]
    assert any(s["local"] == "/dev/log" and s["type"] == "dgram" for s in unix), sockets
    assert model["mounts"] and any(m["mountpoint"] == "/" for m in model["mounts"])
    assert {n["kind"] for n in model["namespaces"]} >= {"pid", "net", "ipc", "uts", "mnt"}
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
    # The regex's hits start at the variable's name, 13 bytes before the secret itself.
    assert sorted(m["address"] + len("SECRET_TOKEN=") for m in regex["matches"]) == sorted(m["address"] for m in matches)
    assert all(m["match"] == f"SECRET_TOKEN={SECRET}" for m in regex["matches"])
    text = cryo.ok("checkpoint", "inspect", "--search", SECRET, name, "cp1").stdout
    assert f"[{SECRET}]" in text and f"{len(matches)} matches" in text
    assert cryo("checkpoint", "inspect", "--search-regex", "(unclosed", name, "cp1").returncode != 0

    # The human form: the same facts, no environment without --env.
    text = cryo.ok("checkpoint", "inspect", name, "cp1").stdout
    assert "sleep 100000" in text and "/tmp/held.txt" in text and ":7001" in text and "listen" in text
    assert SECRET not in text
    assert SECRET in cryo.ok("checkpoint", "inspect", "--env", name, "cp1").stdout


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
    cross_check(model, Path(unpacked) / "checkpoint", crit, env_shown=False, stats_dump=Path(unpacked) / "stats-dump")
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


def search_children(daemon_pid):
    """Live `cryo-monitor memory-search` children of this cryod."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if ppid == daemon_pid and argv[:2] == [b"cryo-monitor", b"memory-search"]:
            out.append(int(d))
    return out


def test_search_regex_budget(cryo, name):
    """A regex that backtracks without end (nested repetition over a long run of "a" that ends
    in a NUL) is stopped at the search's time budget with a clear error, its worker process is
    gone, and cryod goes on answering; an over-long pattern is refused before anything is read."""
    cryo.ok("run", "-d", "--name", name, "-e", "PAD=" + "a" * 64, "busybox", "sleep", "100000")
    cryo.ok("checkpoint", "create", "--leave-running", name, "cpr")
    r = cryo("checkpoint", "inspect", "--format", "json", "--search-regex", "(a+)+$", name, "cpr", timeout=300)
    assert r.returncode != 0, r.stdout[:500]
    assert "search stopped after 10 s" in r.stderr and "(a+)+$" in r.stderr, r.stderr
    assert search_children(cryo.daemon.proc.pid) == []
    # cryod still answers, and a harmless regex over the same memory works.
    assert name in cryo.ok("ps").stdout
    found = json.loads(cryo.ok("checkpoint", "inspect", "--format", "json", "--search-regex", "PAD=a{64}", name, "cpr").stdout)
    assert found["matches"] and all(m["match"] == "PAD=" + "a" * 64 for m in found["matches"])
    # Too long a pattern: refused up front, by the API too.
    r = cryo("checkpoint", "inspect", "--search-regex", "x" * 1025, name, "cpr")
    assert r.returncode != 0 and "at most 1024" in r.stderr, r.stderr
    status, _, body = cryo.daemon.http("GET", f"/containers/{name}/checkpoints/cpr/inspect?search-regex={'x' * 1025}")
    assert status == 400 and b"at most 1024" in body, (status, body)
