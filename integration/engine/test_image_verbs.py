"""Image and disk verbs of issue 13 with the real docker CLI (and docker-py): `docker history`,
`image prune` (dangling and -a, filters), `network prune`, `system df` (and `ps -s`),
`system prune`. One cryod of its own for the module: the prunes remove what other tests'
daemons would still need."""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import BIN_DIR, REPO, fixture_daemon, unavailable

MAKE_IMAGE = REPO / "scripts" / "make-image.py"


@pytest.fixture(scope="module")
def d():
    with fixture_daemon("cryo-iv-") as daemon:
        yield daemon


@pytest.fixture
def dd(d):
    yield d
    d.remove_all_containers()


def image(d, tag, sizes, label=None):
    """An image `tag` with one layer per size (a file of that many bytes each), loaded into d;
    its id. Each call makes different content, so a second load of the same tag moves it."""
    work = Path(tempfile.mkdtemp(prefix="cryo-iv-img-"))
    args = []
    for i, n in enumerate(sizes):
        layer = work / f"l{i}"
        layer.mkdir()
        (layer / f"f{i}").write_bytes(os.urandom(n))
        args += ["--rootfs" if i == 0 else "--layer", str(layer)]
    if label:
        args += ["--label", label]
    out = work / "img.tar"
    subprocess.run(["python3", str(MAKE_IMAGE), *args, "--tag", tag, "--cmd", '["sh"]', "-o", str(out)],
                   check=True, capture_output=True)
    d.ok("load", "-i", str(out))
    subprocess.run(["rm", "-rf", str(work)])
    return d.ok("image", "inspect", "-f", "{{.Id}}", tag)


def images(d):
    return {json.loads(l)["ID"]: json.loads(l) for l in d.ok("images", "--no-trunc", "--format", "{{json .}}").splitlines()}


def test_history_lists_the_build_steps_newest_first_with_layer_sizes(dd):
    iid = image(dd, "hist:1", [1000, 5000])
    rows = [json.loads(l) for l in dd.ok("history", "--no-trunc", "-H=false", "--format", "{{json .}}", "hist:1").splitlines()]
    assert [r["CreatedBy"] for r in rows] == ["make-image.py layer 1", "make-image.py layer 0"], rows
    assert [r["Size"] for r in rows] == ["5000", "1000"], rows
    assert rows[0]["ID"] == iid and rows[1]["ID"] == "<missing>", rows
    table = dd.ok("history", "hist:1").splitlines()
    assert table[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"], table
    assert "5kB" in table[1] and "1kB" in table[2], table
    assert dd.ok("history", "-q", "hist:1").splitlines() == [iid[len("sha256:"):][:12], "<missing>"]
    missing = dd.docker("history", "nosuch:image")
    assert missing.returncode == 1 and "No such image: nosuch:image" in missing.stderr, missing.stderr


def test_history_through_docker_py(dd):
    import docker
    image(dd, "hist:py", [300])
    client = docker.DockerClient(base_url=dd.host, version="1.43")
    steps = client.images.get("hist:py").history()
    assert [(s["CreatedBy"], s["Size"]) for s in steps] == [("make-image.py layer 0", 300)], steps
    assert steps[0]["Tags"] == ["hist:py"]


def test_image_prune_removes_dangling_images_and_with_all_every_unused_one(dd):
    old = image(dd, "pr:1", [2000])
    new = image(dd, "pr:1", [3000])          # the tag moves: the old image is dangling
    used = image(dd, "pr:used", [100])
    unused = image(dd, "pr:unused", [100])
    dd.ok("create", "--name", "pr-user", "pr:used", "sh")
    dd.ok("create", "--name", "pr-busybox", "busybox", "sh")   # the module's other tests need it
    out = dd.ok("image", "prune", "-f")
    assert f"deleted: {old}" in out and "Total reclaimed space: 2kB" in out, out
    have = images(dd)
    assert old not in have and new in have and unused in have
    out = dd.ok("image", "prune", "-a", "-f", "--filter", "label!=keep")
    assert f"deleted: {unused}" in out and "untagged: pr:unused" in out, out
    have = images(dd)
    assert unused not in have and new not in have, "-a takes every image no container uses"
    assert used in have, "an image a container uses stays"
    bad = dd.docker("image", "prune", "-f", "--filter", "colour=red")
    assert bad.returncode != 0 and "invalid filter 'colour'" in bad.stderr, bad.stderr


def test_network_prune_keeps_the_default_and_networks_containers_use(dd):
    image(dd, "np:1", [100])
    dd.ok("network", "create", "np-unused")
    dd.ok("network", "create", "np-used")
    dd.ok("create", "--name", "np-user", "--network", "np-used", "np:1", "sh")
    out = dd.ok("network", "prune", "-f")
    assert "np-unused" in out and "np-used" not in out, out
    names = dd.ok("network", "ls", "--format", "{{.Name}}").split()
    assert "np-unused" not in names and "np-used" in names, names
    assert "bridge" in names or "cryo0" in names, names
    dd.ok("rm", "np-user")
    dd.ok("network", "rm", "np-used")


def test_system_df_and_ps_size_count_images_and_writable_layers(dd):
    dd.ok("run", "--name", "df-writer", "busybox", "sh", "-c", "head -c 1000000 /dev/zero > /big")
    rows = {json.loads(l)["Type"]: json.loads(l) for l in dd.ok("system", "df", "--format", "{{json .}}").splitlines()}
    assert set(rows) == {"Images", "Containers", "Local Volumes", "Build Cache"}, rows
    assert int(rows["Images"]["TotalCount"]) >= 1 and int(rows["Images"]["Active"]) >= 1, rows
    assert rows["Containers"]["TotalCount"] == "1" and rows["Containers"]["Active"] == "0", rows
    assert rows["Containers"]["Size"] == "1MB" and rows["Containers"]["Reclaimable"].startswith("1MB"), rows
    verbose = dd.ok("system", "df", "-v")
    assert "Images space usage:" in verbose and "df-writer" in verbose, verbose
    ps = json.loads(dd.ok("ps", "-a", "-s", "--filter", "name=df-writer", "--format", "{{json .}}"))
    assert ps["Size"].startswith("1MB"), ps


def test_system_prune_removes_stopped_containers_unused_networks_and_dangling_images(dd):
    dd.ok("run", "--name", "sp-stopped", "busybox", "true")
    dd.ok("network", "create", "sp-net")
    dangling = image(dd, "sp:1", [500])
    image(dd, "sp:1", [600])
    out = dd.ok("system", "prune", "-f")
    assert "Deleted Containers:" in out and "Deleted Networks:" in out and "sp-net" in out, out
    assert f"deleted: {dangling}" in out and "Total reclaimed space:" in out, out
    assert dd.ok("ps", "-aq") == ""
    assert dangling not in images(dd)


def cryo(d, *args):
    return subprocess.run([str(BIN_DIR / "cryo"), "-H", d.host, *args], capture_output=True, text=True, timeout=120)


def test_the_cryo_cli_speaks_the_same_verbs(dd):
    iid = image(dd, "cli:1", [1500, 20])
    r = cryo(dd, "history", "--format", "{{.ID}} {{.Size}} {{.CreatedBy}}", "--no-trunc", "cli:1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"{iid} 20B make-image.py layer 1", "<missing> 1.5kB make-image.py layer 0"], r.stdout
    r = cryo(dd, "system", "df")
    assert r.returncode == 0 and r.stdout.split("\n")[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], r
    image(dd, "cli:1", [10])
    r = cryo(dd, "image", "prune", "-f")
    assert r.returncode == 0 and f"deleted: {iid}" in r.stdout, r
    dd.ok("network", "create", "cli-net")
    r = cryo(dd, "network", "prune", "-f")
    assert r.returncode == 0 and "cli-net" in r.stdout, r
    r = cryo(dd, "image", "prune", "--filter", "shape=round")
    assert r.returncode == 1 and "invalid filter 'shape'" in r.stderr, r
    dd.ok("run", "--name", "cli-c", "busybox", "sh", "-c", "echo hi > /hi")
    r = cryo(dd, "commit", "-m", "via cryo", "cli-c", "cli:commit")
    assert r.returncode == 0 and r.stdout.strip() == dd.ok("image", "inspect", "-f", "{{.Id}}", "cli:commit"), r
    assert dd.ok("run", "--rm", "cli:commit", "cat", "/hi") == "hi"


def test_commit_makes_an_image_of_the_containers_changes(dd):
    """Files added and changed, a file deleted (an overlay whiteout → `.wh.` in the layer), a
    directory deleted and made again (opaque) — the committed image shows exactly that, takes
    the container's command, carries a history step, and the running container goes on."""
    script = ("echo made > /made; echo v2 > /etc/motd; rm /etc/group; "
              "rm -rf /usr/sbin; mkdir /usr/sbin; echo only > /usr/sbin/only; "
              "while true; do sleep 1; done")
    dd.ok("run", "-d", "--name", "cm-src", "busybox", "sh", "-c", script)
    dd.ok("exec", "cm-src", "sh", "-c", "while [ ! -f /usr/sbin/only ]; do sleep 0.1; done")
    iid = dd.ok("commit", "-m", "first commit", "-a", "Tester <t@example.test>", "cm-src", "cm:1")
    assert iid.startswith("sha256:") and dd.ok("image", "inspect", "-f", "{{.Id}}", "cm:1") == iid
    assert json.loads(dd.ok("inspect", "-f", "{{json .State.Running}}", "cm-src")) is True, "commit pauses, then resumes"
    out = dd.ok("run", "--rm", "--entrypoint", "sh", "cm:1", "-c",
                "cat /made /etc/motd; ls /etc/group 2>&1; ls /usr/sbin; ls /bin/busybox")
    lines = out.splitlines()
    assert lines[:2] == ["made", "v2"], out
    assert "No such file" in lines[2], out
    assert lines[3:] == ["only", "/bin/busybox"], out
    assert json.loads(dd.ok("image", "inspect", "-f", "{{json .Config.Cmd}}", "cm:1")) == ["sh", "-c", script]
    top = json.loads(dd.ok("history", "--no-trunc", "--format", "{{json .}}", "cm:1").splitlines()[0])
    assert top["Comment"] == "first commit" and script in top["CreatedBy"], top
    layers = json.loads(dd.ok("image", "inspect", "-f", "{{json .RootFS.Layers}}", "cm:1"))
    base = json.loads(dd.ok("image", "inspect", "-f", "{{json .RootFS.Layers}}", "busybox"))
    assert layers[:-1] == base and len(layers) == len(base) + 1
    # cryo's own mounts (/etc/hosts, /etc/resolv.conf, /etc/hostname) are not the container's
    # changes; the deletion is a whiteout in the unpacked layer.
    layer = dd.root / "images" / "layers" / "sha256" / layers[-1].split(":")[1]
    assert (layer / "made").read_text() == "made\n"
    assert not any((layer / "etc" / n).exists() for n in ("hosts", "resolv.conf", "hostname")), sorted(os.listdir(layer / "etc"))
    assert (layer / "etc" / "group").is_char_device(), "the deletion of /etc/group"
    r = dd.docker("commit", "--change", "ENV A=1", "cm-src", "cm:2")
    assert r.returncode != 0 and "cryo does not apply Dockerfile instructions" in r.stderr, r.stderr
    assert dd.docker("image", "inspect", "cm:2").returncode != 0, "a refused commit makes no image"


def saved_members(path):
    import tarfile
    with tarfile.open(path) as t:
        return {m.name: (t.extractfile(m).read() if m.isfile() else None) for m in t.getmembers()}


def test_save_writes_dockers_layout_that_load_reads_back(dd, tmp_path):
    image(dd, "sv:1", [700, 300])
    out = tmp_path / "sv.tar"
    dd.ok("save", "-o", str(out), "sv:1")
    m = saved_members(out)
    assert json.loads(m["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    [entry] = json.loads(m["manifest.json"])
    assert entry["RepoTags"] == ["sv:1"] and len(entry["Layers"]) == 2, entry
    # Consistent: blob names are their digests, the config's diff_ids are the layers.
    import hashlib
    for name, data in m.items():
        if name.startswith("blobs/sha256/") and data is not None:
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1], name
    config = json.loads(m[entry["Config"]])
    assert config["rootfs"]["diff_ids"] == ["sha256:" + l.rsplit("/", 1)[1] for l in entry["Layers"]]
    index = json.loads(m["index.json"])
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "1"
    import io, tarfile
    with tarfile.open(fileobj=io.BytesIO(m[entry["Layers"][1]])) as layer:
        assert [(x.name, x.size) for x in layer.getmembers()] == [("f1", 300)]
    saved_id = "sha256:" + hashlib.sha256(m[entry["Config"]]).hexdigest()
    dd.ok("rmi", "sv:1")
    assert "Loaded image: sv:1" in dd.ok("load", "-i", str(out))
    assert dd.ok("image", "inspect", "-f", "{{.Id}}", "sv:1") == saved_id
    # Saved again, the same bytes make the same image.
    again = tmp_path / "again.tar"
    dd.ok("save", "sv:1", "-o", str(again))
    assert json.loads(saved_members(again)["manifest.json"])[0]["Config"] == entry["Config"]
    missing = dd.docker("save", "-o", str(tmp_path / "x.tar"), "nosuch:image")
    assert missing.returncode != 0 and "No such image" in missing.stderr, missing.stderr
    assert not (tmp_path / "x.tar").exists() or (tmp_path / "x.tar").stat().st_size == 0


def test_podman_loads_what_cryo_saved(dd, tmp_path):
    from test_checkpoint_archive import Podman
    if shutil.which("podman") is None:
        unavailable("podman is needed for the interop test (scripts/setup.sh)")
    dd.ok("run", "--name", "sv-src", "busybox", "sh", "-c", "echo from-cryo > /marker")
    dd.ok("commit", "sv-src", "sv:podman")
    out = tmp_path / "p.tar"
    r = cryo(dd, "save", "-o", str(out), "sv:podman")
    assert r.returncode == 0, r.stderr
    p = Podman(tempfile.mkdtemp(prefix="cryo-podman-", dir="/tmp"))
    try:
        p.ok("load", "-i", str(out))
        assert "sv:podman" in p.ok("images", "--format", "{{.Repository}}:{{.Tag}}").stdout
        r = p.ok("run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096",
                 "sv:podman", "cat", "/marker")
        assert r.stdout.strip() == "from-cryo"
    finally:
        p.close()


def test_export_writes_the_containers_filesystem_running_or_never_started(dd, tmp_path):
    dd.ok("run", "-d", "--name", "ex-run", "busybox", "sh", "-c", "echo changed > /etc/motd; rm /etc/group; sleep 100000")
    dd.ok("exec", "ex-run", "sh", "-c", "while [ ! -f /etc/motd ]; do sleep 0.1; done")
    out = tmp_path / "run.tar"
    dd.ok("export", "-o", str(out), "ex-run")
    m = saved_members(out)
    assert m["etc/motd"] == b"changed\n" and "etc/group" not in m and "bin/busybox" in m, sorted(m)[:20]
    assert not any(n.startswith(".wh.") or "/.wh." in n for n in m), "a filesystem, not a layer: no whiteouts"
    dd.ok("create", "--name", "ex-new", "busybox", "true")
    r = subprocess.run(["docker", "export", "ex-new"], env=dd.env, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "new.tar", "wb") as f:
        f.write(r.stdout)
    assert "bin/busybox" in saved_members(tmp_path / "new.tar")
    missing = dd.docker("export", "-o", str(tmp_path / "x.tar"), "nosuch")
    assert missing.returncode != 0 and "No such container" in missing.stderr, missing.stderr


def test_system_df_counts_volumes_and_system_prune_volumes_takes_anonymous_ones(dd):
    dd.ok("volume", "create", "df-vol")
    dd.ok("run", "--rm", "-v", "df-vol:/data", "busybox", "sh", "-c", "head -c 300000 /dev/zero > /data/f")
    dd.ok("run", "--name", "df-anon", "-v", "/scratch", "busybox", "true")
    dd.ok("rm", "df-anon")   # without -v: its anonymous volume stays, unused
    rows = {json.loads(l)["Type"]: json.loads(l) for l in dd.ok("system", "df", "--format", "{{json .}}").splitlines()}
    size = rows["Local Volumes"]["Size"]   # the file, and the volume's directory entries
    assert int(rows["Local Volumes"]["TotalCount"]) >= 2 and size.endswith("kB") and 300 <= float(size[:-2]) < 320, rows
    assert "df-vol" in dd.ok("system", "df", "-v")
    anonymous = [v for v in dd.ok("volume", "ls", "-q").split() if len(v) == 64]
    assert anonymous, dd.ok("volume", "ls")
    out = dd.ok("system", "prune", "-f", "--volumes")
    assert "Deleted Volumes:" in out and all(v in out for v in anonymous), out
    left = dd.ok("volume", "ls", "-q").split()
    assert "df-vol" in left and not any(v in left for v in anonymous), left
    dd.ok("volume", "rm", "df-vol")
