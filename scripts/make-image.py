#!/usr/bin/env python3
"""make-image.py — build a container image archive from root filesystem directories.

    make-image.py --rootfs DIR --tag busybox:latest [--format docker|docker-legacy|oci]
                  [--layer DIR ...] [--cmd '["sh"]'] [--entrypoint '["/bin/sh","-c"]']
                  [--env K=V ...] [--workdir /] [--user U] [--label K=V ...]
                  [--gzip] [--created RFC3339] [--mtime EPOCH] -o out.tar

Each --rootfs/--layer DIR becomes one layer, bottom layer first (--rootfs is the same as
a first --layer). A layer is packed exactly as the directory is: files named `.wh.<name>`
and `.wh..wh..opq` are written as-is, so they become whiteouts / opaque markers when the
image is unpacked — that is how a test image deletes a file of a lower layer.

Formats (the outer archive is always an uncompressed tar):
  docker         what `docker save` writes since Docker 25: an OCI image layout (oci-layout,
                 index.json, blobs/sha256/...) plus manifest.json [{Config, RepoTags,
                 Layers}] naming the blobs. `docker load`, `cryo load` and `podman load`
                 read it.
  docker-legacy  what `docker save` wrote before 25: <config hex>.json, <id>/layer.tar,
                 <id>/json, <id>/VERSION, manifest.json and repositories.
  oci            an OCI image layout only (oci-layout, index.json, blobs); the manifest's
                 descriptor in index.json carries org.opencontainers.image.ref.name = the
                 full reference (as `skopeo copy ... oci-archive:out.tar:busybox:latest`).

Determinism: entries are sorted, every mtime is --mtime (default $SOURCE_DATE_EPOCH or 0),
owners are 0/0 (names "root"), gzip headers carry no name or time, and the config's
`created` is --created (default: $SOURCE_DATE_EPOCH, else now). Same inputs → same bytes.

Hard links inside one layer are kept as hard links; character/block devices and FIFOs are
kept; sockets are skipped. Extended attributes are not packed.

Python 3 standard library only.
"""

import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import sys
import tarfile
import tempfile

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def die(msg):
    print("make-image: ERROR: " + msg, file=sys.stderr)
    sys.exit(1)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def walk_sorted(root):
    """Yields relative paths under root, parents before children, names sorted bytewise."""
    def rec(rel):
        full = os.path.join(root, rel) if rel else root
        for name in sorted(os.listdir(full), key=os.fsencode):
            r = os.path.join(rel, name) if rel else name
            yield r
            st = os.lstat(os.path.join(root, r))
            if stat.S_ISDIR(st.st_mode):
                yield from rec(r)
    yield from rec("")


def normalize_tarinfo(ti, mtime):
    ti.mtime = mtime
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    ti.pax_headers = {}
    return ti


def write_layer_tar(rootfs, out_path, mtime):
    """Packs rootfs into an uncompressed, deterministic tar at out_path."""
    seen_inodes = {}
    with tarfile.open(out_path, "w", format=tarfile.PAX_FORMAT) as tar:
        for rel in walk_sorted(rootfs):
            full = os.path.join(rootfs, rel)
            st = os.lstat(full)
            if stat.S_ISSOCK(st.st_mode):
                continue
            ti = tar.gettarinfo(full, arcname=rel)
            normalize_tarinfo(ti, mtime)
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                if key in seen_inodes:
                    ti.type = tarfile.LNKTYPE
                    ti.linkname = seen_inodes[key]
                    ti.size = 0
                    tar.addfile(ti)
                    continue
                seen_inodes[key] = rel
            if ti.isreg():
                with open(full, "rb") as f:
                    tar.addfile(ti, f)
            else:
                tar.addfile(ti)


def gzip_file(src, dst):
    with open(src, "rb") as fin, open(dst, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
            shutil.copyfileobj(fin, gz, 1 << 20)


def parse_json_list(value, what):
    if value is None:
        return None
    try:
        v = json.loads(value)
    except json.JSONDecodeError:
        # a plain string is run the way Docker runs a shell-form CMD
        return ["/bin/sh", "-c", value]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        die(f"{what} must be a JSON array of strings, got {value!r}")
    return v


def rfc3339(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Blobs:
    """A directory of content-addressed blobs (blobs/sha256/<hex>)."""

    def __init__(self, root):
        self.dir = os.path.join(root, "blobs", "sha256")
        os.makedirs(self.dir, exist_ok=True)

    def add_bytes(self, data, media_type):
        hexd = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.dir, hexd), "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": "sha256:" + hexd, "size": len(data)}

    def add_file(self, path, media_type):
        hexd = sha256_file(path)
        dst = os.path.join(self.dir, hexd)
        shutil.move(path, dst)
        return {"mediaType": media_type, "digest": "sha256:" + hexd, "size": os.path.getsize(dst)}


def split_reference(tag):
    """busybox → (busybox, latest); reg:5000/x/y:1 → (reg:5000/x/y, 1)."""
    slash = tag.rfind("/")
    colon = tag.rfind(":")
    if colon > slash:
        return tag[:colon], tag[colon + 1:]
    return tag, "latest"


def containerd_name(tag):
    """The full name Docker puts in io.containerd.image.name (docker.io/library/busybox:latest)."""
    repo, t = split_reference(tag)
    first = repo.split("/", 1)[0]
    if "/" not in repo:
        repo = "docker.io/library/" + repo
    elif not ("." in first or ":" in first or first == "localhost"):
        repo = "docker.io/" + repo
    return repo + ":" + t


def write_outer_tar(src_dir, out_path, mtime):
    tmp = out_path + ".tmp.%d" % os.getpid()
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for rel in walk_sorted(src_dir):
            full = os.path.join(src_dir, rel)
            ti = tar.gettarinfo(full, arcname=rel)
            normalize_tarinfo(ti, mtime)
            ti.mode = 0o755 if ti.isdir() else 0o644
            if ti.isreg():
                with open(full, "rb") as f:
                    tar.addfile(ti, f)
            else:
                tar.addfile(ti)
    os.replace(tmp, out_path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rootfs", help="root filesystem directory (the bottom layer)")
    p.add_argument("--layer", action="append", default=[], help="one more layer directory (repeatable, bottom first)")
    p.add_argument("--tag", action="append", default=[], help="reference, e.g. busybox:latest (repeatable)")
    p.add_argument("--format", choices=["docker", "docker-legacy", "oci"], default="docker")
    p.add_argument("--cmd", help='JSON array, e.g. \'["sh"]\' (a plain string means ["/bin/sh","-c",STRING])')
    p.add_argument("--entrypoint", help="JSON array")
    p.add_argument("--env", action="append", default=[], help="K=V (repeatable; PATH defaults to the usual one)")
    p.add_argument("--workdir", help="working directory, e.g. /")
    p.add_argument("--user", help="user, e.g. 65534:65534")
    p.add_argument("--label", action="append", default=[], help="K=V (repeatable)")
    p.add_argument("--arch", default="amd64")
    p.add_argument("--gzip", action="store_true", help="gzip the layers (docker save itself never does)")
    p.add_argument("--created", help="RFC 3339 creation time (default: $SOURCE_DATE_EPOCH, else now)")
    p.add_argument("--mtime", type=int, help="mtime of every tar entry (default: $SOURCE_DATE_EPOCH or 0)")
    p.add_argument("-o", "--output", required=True, help="the image archive to write")
    a = p.parse_args()

    layers = ([a.rootfs] if a.rootfs else []) + a.layer
    if not layers:
        die("give at least one --rootfs or --layer directory")
    for d in layers:
        if not os.path.isdir(d):
            die(f"layer directory {d!r} does not exist")
    if not a.tag and a.format != "docker":
        die("--tag is required for this format")
    for e in a.env + a.label:
        if "=" not in e:
            die(f"expected K=V, got {e!r}")

    sde = os.environ.get("SOURCE_DATE_EPOCH")
    mtime = a.mtime if a.mtime is not None else int(sde) if sde else 0
    if a.created:
        created = a.created
    else:
        created = rfc3339(int(sde)) if sde else rfc3339(int(datetime.datetime.now().timestamp()))

    out = os.path.abspath(a.output)
    work = tempfile.mkdtemp(prefix="make-image.", dir=os.path.dirname(out) or ".")
    try:
        stage = os.path.join(work, "image")
        os.makedirs(stage)
        blobs = Blobs(stage)

        # layers: uncompressed tar (diff_id) and the blob that is shipped
        diff_ids, layer_descs, layer_files = [], [], []
        for i, d in enumerate(layers):
            tar_path = os.path.join(work, "layer%d.tar" % i)
            write_layer_tar(d, tar_path, mtime)
            diff_ids.append("sha256:" + sha256_file(tar_path))
            if a.gzip:
                gz_path = tar_path + ".gz"
                gzip_file(tar_path, gz_path)
                os.unlink(tar_path)
                tar_path, media = gz_path, OCI_LAYER_GZIP
            else:
                media = OCI_LAYER
            layer_files.append(tar_path)

        cfg = {}
        env = list(a.env)
        if not any(e.startswith("PATH=") for e in env):
            env.insert(0, DEFAULT_PATH)
        cfg["Env"] = env
        if a.entrypoint is not None:
            cfg["Entrypoint"] = parse_json_list(a.entrypoint, "--entrypoint")
        if a.cmd is not None:
            cfg["Cmd"] = parse_json_list(a.cmd, "--cmd")
        if a.workdir:
            cfg["WorkingDir"] = a.workdir
        if a.user:
            cfg["User"] = a.user
        if a.label:
            cfg["Labels"] = dict(label.split("=", 1) for label in a.label)
        config = {
            "architecture": a.arch,
            "os": "linux",
            "created": created,
            "config": cfg,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": created, "created_by": "make-image.py layer %d" % i}
                        for i in range(len(layers))],
        }
        config_bytes = canonical_json(config)

        if a.format == "docker-legacy":
            config_hex = hashlib.sha256(config_bytes).hexdigest()
            with open(os.path.join(stage, config_hex + ".json"), "wb") as f:
                f.write(config_bytes)
            os.rmdir(blobs.dir)
            os.rmdir(os.path.dirname(blobs.dir))
            names, parent = [], ""
            for i, f in enumerate(layer_files):
                v1id = hashlib.sha256((parent + " " + diff_ids[i]).encode()).hexdigest()
                os.makedirs(os.path.join(stage, v1id))
                shutil.move(f, os.path.join(stage, v1id, "layer.tar"))
                with open(os.path.join(stage, v1id, "VERSION"), "w") as vf:
                    vf.write("1.0")
                v1 = {"id": v1id, "created": created, "os": "linux"}
                if parent:
                    v1["parent"] = parent
                with open(os.path.join(stage, v1id, "json"), "wb") as jf:
                    jf.write(canonical_json(v1))
                names.append(v1id + "/layer.tar")
                parent = v1id
            manifest = [{"Config": config_hex + ".json", "RepoTags": a.tag, "Layers": names}]
            with open(os.path.join(stage, "manifest.json"), "wb") as f:
                f.write(canonical_json(manifest))
            repos = {}
            for t in a.tag:
                r, tg = split_reference(t)
                repos.setdefault(r, {})[tg] = parent
            with open(os.path.join(stage, "repositories"), "wb") as f:
                f.write(canonical_json(repos))
        else:
            for f in layer_files:
                layer_descs.append(blobs.add_file(f, OCI_LAYER_GZIP if a.gzip else OCI_LAYER))
            config_desc = blobs.add_bytes(config_bytes, OCI_CONFIG)
            manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc, "layers": layer_descs}
            manifest_desc = blobs.add_bytes(canonical_json(manifest), OCI_MANIFEST)
            manifests = []
            tags = a.tag or [None]
            for t in tags:
                d = dict(manifest_desc)
                if t is not None:
                    if a.format == "docker":
                        # as Docker 25+ writes it
                        d["annotations"] = {"io.containerd.image.name": containerd_name(t),
                                            "org.opencontainers.image.ref.name": split_reference(t)[1]}
                    else:
                        d["annotations"] = {"org.opencontainers.image.ref.name": t}
                manifests.append(d)
            index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
            with open(os.path.join(stage, "index.json"), "wb") as f:
                f.write(canonical_json(index))
            with open(os.path.join(stage, "oci-layout"), "wb") as f:
                f.write(canonical_json({"imageLayoutVersion": "1.0.0"}))
            if a.format == "docker":
                entry = {"Config": "blobs/sha256/" + config_desc["digest"][7:],
                         "RepoTags": a.tag,
                         "Layers": ["blobs/sha256/" + d["digest"][7:] for d in layer_descs]}
                with open(os.path.join(stage, "manifest.json"), "wb") as f:
                    f.write(canonical_json([entry]))

        write_outer_tar(stage, out, mtime)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("make-image: wrote %s (%s, %d layer%s, %s)" % (
        out, a.format, len(layers), "" if len(layers) == 1 else "s", ", ".join(a.tag) or "untagged"))


if __name__ == "__main__":
    main()
