"""Named volumes (local driver) through the docker CLI and docker-py against cryod (issue 13)."""

import json
import subprocess
import uuid

import pytest

from conftest import BIN_DIR, inspect, unavailable, wait_for


def vname():
    return "v" + uuid.uuid4().hex[:12]


@pytest.fixture
def volumes(docker_cli):
    """Volume names made by a test; removed afterwards (after its containers)."""
    made = []
    yield made
    docker_cli.remove_all_containers()
    for v in made:
        docker_cli.docker("volume", "rm", "-f", v)


def test_create_ls_inspect_rm(docker_cli, volumes):
    d = docker_cli
    v = vname()
    volumes.append(v)
    assert d.ok("volume", "create", "--label", "team=a", v) == v
    info = json.loads(d.ok("volume", "inspect", v))[0]
    assert info["Name"] == v and info["Driver"] == "local" and info["Scope"] == "local"
    assert info["Labels"] == {"team": "a"}
    assert info["Mountpoint"].endswith(f"/volumes/{v}/_data")
    assert info["CreatedAt"]
    assert v in d.ok("volume", "ls", "-q").split()
    assert d.ok("volume", "ls", "-q", "--filter", "label=team=a").split() == [v]
    assert v not in d.ok("volume", "ls", "-q", "--filter", "label=team=b").split()
    assert v in d.ok("volume", "ls", "-q", "--filter", "dangling=true").split()
    assert d.ok("volume", "ls", "--format", "{{.Name}} {{.Driver}}", "--filter", f"name={v}") == f"{v} local"
    assert d.ok("volume", "rm", v) == v
    r = d.docker("volume", "inspect", v)
    assert r.returncode != 0 and "no such volume" in r.stderr.lower()


def test_generated_name(docker_cli, volumes):
    d = docker_cli
    v = d.ok("volume", "create")
    volumes.append(v)
    assert len(v) == 64 and all(c in "0123456789abcdef" for c in v)


def test_bad_name_and_driver_refused(docker_cli):
    d = docker_cli
    for bad in ("-x", "a/b", "a b", "x"):
        st, _, body = d.http("POST", "/volumes/create", body=json.dumps({"Name": bad}).encode())
        assert st == 400, (bad, body)
        assert b"invalid characters for a local volume name" in body
    r = d.docker("volume", "create", "--driver", "nfs", vname())
    assert r.returncode != 0 and "only the local driver" in r.stderr
    r = d.docker("volume", "create", "-o", "type=nfs", vname())
    assert r.returncode != 0 and "not supported" in r.stderr
    st, _, _ = d.http("POST", "/volumes/create", body=json.dumps({"Name": vname(), "Driver": "nfs"}).encode())
    assert st == 400


def test_data_persists_across_containers_and_rm(docker_cli, volumes):
    d = docker_cli
    v = vname()
    volumes.append(v)
    d.ok("run", "--rm", "-v", f"{v}:/data", "busybox", "sh", "-c", "echo hello > /data/f")
    assert d.ok("run", "--rm", "--mount", f"type=volume,source={v},target=/x", "busybox", "cat", "/x/f") == "hello"
    assert v in d.ok("volume", "ls", "-q").split()   # created implicitly, survives rm


def test_a_volume_at_etc_keeps_the_containers_own_etc_files(docker_cli, volumes, name):
    """Mounts go shallowest first (as dockerd orders them): a volume at /etc is under the
    container's /etc/hosts, /etc/hostname and /etc/resolv.conf, not over them."""
    d = docker_cli
    v = vname()
    volumes.append(v)
    d.ok("run", "--rm", "--name", name + "-fill", "-v", f"{v}:/etc", "busybox", "true")
    out = d.ok("run", "--rm", "--hostname", "voletc", "-v", f"{v}:/etc", "busybox", "sh", "-c",
               "cat /etc/hostname; grep -c voletc /etc/hosts; test -s /etc/resolv.conf && echo resolv; ls /etc/passwd")
    assert out.split() == ["voletc", "1", "resolv", "/etc/passwd"], out


def test_read_only_mount_refuses_writes(docker_cli, volumes):
    d = docker_cli
    v = vname()
    volumes.append(v)
    r = d.docker("run", "--rm", "-v", f"{v}:/data:ro", "busybox", "sh", "-c", "echo x > /data/f")
    assert r.returncode != 0 and "Read-only file system" in r.stderr
    r = d.docker("run", "--rm", "--mount", f"type=volume,src={v},dst=/data,readonly", "busybox", "touch", "/data/g")
    assert r.returncode != 0 and "Read-only file system" in r.stderr


def test_copy_up_from_image_and_nocopy(docker_cli, volumes, name):
    d = docker_cli
    v, w = vname(), vname()
    volumes += [v, w]
    d.ok("run", "--rm", "-v", f"{v}:/sbin", "busybox", "true")
    out = d.ok("run", "--rm", "-v", f"{v}:/data", "busybox", "ls", "/data")
    assert "ifconfig" in out.split()
    d.ok("run", "--rm", "--mount", f"type=volume,src={w},dst=/sbin,volume-nocopy", "busybox", "/bin/true")
    assert d.ok("run", "--rm", "-v", f"{w}:/data", "busybox", "ls", "/data") == ""


def test_in_use_delete_409_and_inspect_mounts(docker_cli, volumes, name):
    d = docker_cli
    v = vname()
    volumes.append(v)
    d.ok("create", "--name", name, "-v", f"{v}:/data:ro", "busybox", "true")
    mounts = inspect(d, name)["Mounts"]
    assert len(mounts) == 1
    m = mounts[0]
    assert (m["Type"], m["Name"], m["Destination"], m["Driver"], m["RW"]) == ("volume", v, "/data", "local", False)
    assert m["Source"].endswith(f"/volumes/{v}/_data")
    st, _, body = d.http("DELETE", f"/volumes/{v}")
    assert st == 409 and b"volume is in use" in body
    r = d.docker("volume", "rm", "-f", v)
    assert r.returncode != 0 and "volume is in use" in r.stderr
    assert v not in d.ok("volume", "ls", "-q", "--filter", "dangling=true").split()
    d.ok("rm", name)
    d.ok("volume", "rm", v)


def test_anonymous_volume_and_rm_v(docker_cli, name):
    d = docker_cli
    d.ok("create", "--name", name, "-v", "/anon", "busybox", "true")
    anon = [m["Name"] for m in inspect(d, name)["Mounts"] if m["Destination"] == "/anon"]
    assert len(anon) == 1 and len(anon[0]) == 64
    assert anon[0] in d.ok("volume", "ls", "-q").split()
    d.ok("rm", "-v", name)
    assert anon[0] not in d.ok("volume", "ls", "-q").split()


def test_run_rm_removes_anonymous_volumes(docker_cli, volumes):
    d = docker_cli
    v = vname()
    volumes.append(v)
    before = set(d.ok("volume", "ls", "-q").split())
    d.ok("run", "--rm", "-v", "/anon", "-v", f"{v}:/named", "busybox", "true")
    after = set(d.ok("volume", "ls", "-q").split())
    assert after - before == {v}, after - before   # the named one stays, the anonymous one is gone


def test_prune_anonymous_by_default_all_with_filter(docker_cli, volumes, name):
    d = docker_cli
    named = vname()
    volumes.append(named)
    d.ok("volume", "create", "--label", f"p={named}", named)
    d.ok("create", "--name", name, "-v", "/anon", "busybox", "true")
    anon = inspect(d, name)["Mounts"][0]["Name"]
    volumes.append(anon)
    d.ok("rm", name)   # without -v: the anonymous volume stays
    assert anon in d.ok("volume", "ls", "-q").split()
    d.ok("volume", "prune", "-f")
    left = d.ok("volume", "ls", "-q").split()
    assert anon not in left and named in left
    d.ok("volume", "prune", "-f", "--all", "--filter", f"label=p={named}")
    assert named not in d.ok("volume", "ls", "-q").split()


def test_docker_py_volumes(dpy, volumes):
    try:
        import docker
    except ImportError:
        unavailable("docker-py is not installed")
    v = vname()
    volumes.append(v)
    vol = dpy.volumes.create(name=v, labels={"k": "v"})
    assert vol.name == v and vol.attrs["Driver"] == "local"
    assert dpy.volumes.get(v).attrs["Labels"] == {"k": "v"}
    assert v in [x.name for x in dpy.volumes.list()]
    out = dpy.containers.run("busybox", ["sh", "-c", "echo py > /d/f; cat /d/f"], volumes={v: {"bind": "/d", "mode": "rw"}},
                             remove=True)
    assert out.strip() == b"py"
    with pytest.raises(docker.errors.APIError):
        dpy.volumes.create(name="bad/name")
    vol.remove()
    with pytest.raises(docker.errors.NotFound):
        dpy.volumes.get(v)


def test_checkpoint_restore_with_volume(docker_cli, volumes, name, criu):
    d = docker_cli
    v = vname()
    volumes.append(v)
    d.ok("run", "-d", "--name", name, "-v", f"{v}:/data", "busybox", "sh", "-c",
         "i=0; while true; do echo $i >> /data/log; i=$((i+1)); sleep 0.1; done")
    wait_for(lambda: len(d.ok("exec", name, "cat", "/data/log").split()) >= 5, what="writes into the volume")
    d.ok("checkpoint", "create", name, "c1", timeout=120)
    n = len(d.ok("run", "--rm", "-v", f"{v}:/data", "busybox", "cat", "/data/log").split())
    d.ok("start", "--checkpoint", "c1", name, timeout=120)
    wait_for(lambda: len(d.ok("exec", name, "cat", "/data/log").split()) >= n + 5, what="writes after restore")
    vals = [int(x) for x in d.ok("exec", name, "cat", "/data/log").split()]
    assert vals == list(range(len(vals))), vals
    cid = inspect(d, name)["Id"]
    meta = json.loads((d.root / "containers" / cid / "checkpoints" / "c1" / "cryo-checkpoint.json").read_text())
    assert meta["volumes"] == {v: "/data"}


def test_restore_refused_when_volume_missing(docker_cli, volumes, name, criu):
    d = docker_cli
    v = vname()
    volumes.append(v)
    d.ok("run", "-d", "--name", name, "-v", f"{v}:/data", "busybox", "sh", "-c", "while true; do sleep 1; done")
    d.ok("checkpoint", "create", name, "c1", timeout=120)
    # In use by the (stopped) container: it cannot be removed through the API; take it away on disk.
    import shutil
    shutil.rmtree(d.root / "volumes" / v)
    r = d.docker("start", "--checkpoint", "c1", name, timeout=120)
    assert r.returncode != 0 and f"volume {v} (mounted at /data)" in r.stderr and "does not exist" in r.stderr
    assert "restore refused" in r.stderr


def cryo(d, *args, check=True, input=None):
    r = subprocess.run([str(BIN_DIR / "cryo"), "-H", d.host, *args], capture_output=True, text=True, input=input, timeout=60)
    if check:
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def test_cryo_volume_cli(docker_cli, volumes, name):
    d = docker_cli
    v = vname()
    volumes.append(v)
    assert cryo(d, "volume", "create", "--label", "a=b", v).stdout.strip() == v
    assert v in cryo(d, "volume", "ls", "-q").stdout.split()
    table = cryo(d, "volume", "ls", "--filter", f"name={v}").stdout.splitlines()
    assert table[0].split() == ["DRIVER", "VOLUME", "NAME"] and table[1].split() == ["local", v]
    assert cryo(d, "volume", "ls", "--format", "{{.Name}}:{{.Label \"a\"}}", "--filter", "label=a=b").stdout.split() == [f"{v}:b"]
    info = json.loads(cryo(d, "volume", "inspect", v).stdout)[0]
    assert info["Name"] == v and info["Labels"] == {"a": "b"}
    assert cryo(d, "volume", "inspect", "-f", "{{.Driver}}", v).stdout.strip() == "local"
    r = cryo(d, "volume", "create", "-d", "nfs", vname(), check=False)
    assert r.returncode == 1 and "only the local driver" in r.stderr
    # run --mount and -v /path through the cryo CLI
    assert cryo(d, "run", "--rm", "--mount", f"type=volume,src={v},dst=/m", "busybox", "sh", "-c",
                "echo cli > /m/f; cat /m/f").stdout.strip() == "cli"
    cryo(d, "create", "--name", name, "-v", "/anon", "busybox", "true")
    assert [m["Type"] for m in inspect(d, name)["Mounts"]] == ["volume"]
    cryo(d, "rm", "-f", name)
    r = cryo(d, "volume", "rm", v)
    assert r.stdout.strip() == v
    assert cryo(d, "volume", "rm", "-f", v).returncode == 0
    assert "Total reclaimed space" in cryo(d, "volume", "prune", "-f").stdout
    for sub in ("create", "ls", "inspect", "rm", "prune"):
        assert cryo(d, "volume", sub, "--help").returncode == 0


def test_migrate_of_a_shared_volume_is_refused(docker_cli, volumes, name):
    """A container's volumes move with it (test_migrate.py): one that another container here
    mounts too cannot, and the migration is refused before anything is asked of the target."""
    d = docker_cli
    v = vname()
    volumes.append(v)
    d.ok("run", "-d", "--name", name, "-v", f"{v}:/data", "busybox", "sleep", "1000")
    d.ok("run", "-d", "--name", name + "-2", "-v", f"{v}:/other", "busybox", "sleep", "1000")
    r = cryo(d, "migrate", name, "unix:///nonexistent/cryod.sock", check=False)
    assert r.returncode != 0, r.stdout
    assert f"these are in use here by something that stays: {v} (also mounted by {name}-2)" in r.stderr, r.stderr
    assert inspect(d, name)["State"]["Running"]


def test_checkpoint_export_carries_volume_and_import_recreates_it(docker_cli, volumes, name, criu, tmp_path):
    import tarfile
    d = docker_cli
    v = vname()
    volumes.append(v)
    d.ok("run", "-d", "--name", name, "-v", f"{v}:/data", "busybox", "sh", "-c",
         "echo kept > /data/f; i=0; while true; do i=$((i+1)); echo $i > /data/n; sleep 0.1; done")
    wait_for(lambda: d.docker("exec", name, "cat", "/data/n").stdout.strip() not in ("", "1"), what="the counter in the volume")
    archive = tmp_path / "cp.tar"
    cryo(d, "checkpoint", "create", name, "c1")
    cryo(d, "checkpoint", "export", "--compress", "none", "-o", str(archive), name, "c1")
    with tarfile.open(archive) as t:
        names = t.getnames()
        assert f"volumes/{v}.tar" in names, names
        inner = tarfile.open(fileobj=t.extractfile(f"volumes/{v}.tar"))
        assert any(n.endswith("f") for n in inner.getnames())
    d.ok("rm", "-f", name)
    d.ok("volume", "rm", v)
    clone = name + "-imp"
    cryo(d, "container", "restore", "--import", str(archive), "--name", clone)
    assert inspect(d, clone)["State"]["Running"]
    assert d.ok("exec", clone, "cat", "/data/f") == "kept"
    a = int(d.ok("exec", clone, "cat", "/data/n"))
    wait_for(lambda: int(d.docker("exec", clone, "cat", "/data/n").stdout.strip() or 0) > a, what="the counter after import")
    assert v in d.ok("volume", "ls", "-q").split()


def test_fork_with_anonymous_volume_refused(docker_cli, name, criu):
    d = docker_cli
    d.ok("run", "-d", "--name", name, "-v", "/anon", "busybox", "sleep", "1000")
    r = cryo(d, "fork", name, name + "-copy", check=False)
    assert r.returncode != 0 and "anonymous volumes (at /anon)" in r.stderr, r.stderr
    assert inspect(d, name)["State"]["Running"]
    d.ok("rm", "-f", "-v", name)
