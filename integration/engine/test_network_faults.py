"""A CNI plugin that fails during `run` and during a restore leaves nothing behind: no veth on
the bridge, no portmap rule, no host-local allocation, no attachment record, no namespace.

The failure is injected the way it happens for real: the test's cryod finds its plugins in a
directory (`--cni-bin-dir`) of symlinks to the real ones, except `portmap`, a wrapper that runs
the real plugin but answers ADD with a CNI error while a marker file exists. So bridge and
host-local really made a veth and an allocation before portmap failed, and cryo must undo them.

The refusals that happen before any plugin runs are in test_networking.py: overlapping subnets
(test_network_create_ls_inspect), a taken --ip (test_fixed_ip_taken_and_released), a published
port already bound on the host (test_published_port_and_checkpoint_restore).
Addresses: a 198.19.x.0/24 subnet; published ports on 127.0.0.1.
"""

import json
import os
import random
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from conftest import IMAGES, _check_requirements, cleanup, inspect, wait_for
from test_networking import fetch_or_none, free_port
from test_reboot_and_faults import OwnDaemon

REAL_PLUGINS = "/usr/lib/cni"


@pytest.fixture
def faulty(criu):
    """(daemon, marker): cryod on plugins where portmap ADD fails while `marker` exists."""
    _check_requirements()
    plugins = tempfile.mkdtemp(prefix="cryo-cni-")
    marker = Path(plugins) / "fail-portmap-add"
    for name in os.listdir(REAL_PLUGINS):
        if name != "portmap":
            os.symlink(os.path.join(REAL_PLUGINS, name), os.path.join(plugins, name))
    wrapper = Path(plugins) / "portmap"
    wrapper.write_text(f"""#!/bin/sh
# Test double around the real portmap: ADD fails with a CNI error while {marker} exists.
if [ "$CNI_COMMAND" = ADD ] && [ -e {marker} ]; then
    cat >/dev/null
    echo '{{"cniVersion":"1.0.0","code":999,"msg":"injected portmap failure","details":"test"}}'
    exit 1
fi
exec {REAL_PLUGINS}/portmap "$@"
""")
    wrapper.chmod(0o755)
    d = OwnDaemon(tempfile.mkdtemp(prefix="cryo-nf-", dir="/tmp"), ["--cni-bin-dir", plugins])
    try:
        d.start()
        d.ok("load", "-i", IMAGES / "busybox.tar", timeout=120)
        yield d, marker
    finally:
        cleanup(d)
        shutil.rmtree(plugins, ignore_errors=True)


def make_network(d):
    for _ in range(20):
        name = "nf" + uuid.uuid4().hex[:8]
        r = d.docker("network", "create", "--subnet", f"198.19.{random.randint(1, 254)}.0/24", name)
        if r.returncode == 0:
            return name
        assert "overlaps" in r.stderr, r.stderr
    pytest.fail("no free 198.19.x.0/24 subnet")


def leftovers(d, net, port):
    """Everything a half-made attachment could leave, as a dict of non-empty findings."""
    # The bridge cryod made (inspect's Options show only the options given at create).
    nets = json.loads((d.root / "networks" / "networks.json").read_text())["networks"]
    bridge = next(n["bridge"] for n in nets if n["name"] == net)
    found = {}
    brif = Path("/sys/class/net", bridge, "brif")
    if brif.exists() and list(brif.iterdir()):
        found["veths on the bridge"] = [p.name for p in brif.iterdir()]
    ipam = d.root / "networks" / "ipam" / net
    allocated = [p.name for p in ipam.iterdir() if p.name.count(".") == 3] if ipam.exists() else []
    if allocated:
        found["host-local allocations"] = allocated
    records = list((d.root / "networks" / "attachments").glob("*.json"))
    if records:
        found["attachment records"] = [p.name for p in records]
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    hits = [l for l in rules.splitlines() if f"dport {port}" in l or f"--dport {port} " in l or f":{port}" in l]
    if hits:
        found["iptables rules"] = hits
    nft = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    nft_hits = [l.strip() for l in nft.splitlines() if f"dport {port} " in l or l.rstrip().endswith(f"dport {port}")]
    if nft_hits:
        found["nft rules"] = nft_hits
    netns = list((d.run / "netns").iterdir()) if (d.run / "netns").exists() else []
    if netns:
        found["namespace files"] = [p.name for p in netns]
    return found


def test_plugin_failure_during_run_leaves_nothing(faulty):
    d, marker = faulty
    net = make_network(d)
    port = free_port()
    marker.touch()
    r = d.docker("run", "-d", "--name", "nf1", "--network", net, "-p", f"127.0.0.1:{port}:80", "busybox", "sleep", "1000")
    assert r.returncode != 0, r.stdout
    assert "injected portmap failure" in r.stderr and "portmap" in r.stderr, r.stderr
    assert leftovers(d, net, port) == {}
    assert not inspect(d, "nf1")["State"]["Running"]
    # The same container starts once the plugin works again: nothing stale blocks it.
    marker.unlink()
    d.ok("start", "nf1")
    assert inspect(d, "nf1")["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"] == str(port)
    d.ok("rm", "-f", "nf1")
    assert leftovers(d, net, port) == {}
    d.ok("network", "rm", net)


def test_plugin_failure_during_restore_leaves_nothing(faulty):
    d, marker = faulty
    net = make_network(d)
    port = free_port()
    d.ok("run", "-d", "--name", "nf2", "--network", net, "-p", f"127.0.0.1:{port}:80", "busybox",
         "sh", "-c", "while true; do echo hi | nc -l -p 80; done")
    wait_for(lambda: fetch_or_none(port) == b"hi\n", what="the published port")
    d.ok("checkpoint", "create", "nf2", "cp1", timeout=120)
    wait_for(lambda: leftovers(d, net, port) == {}, what="the network torn down after the checkpoint")
    marker.touch()
    r = d.docker("start", "--checkpoint", "cp1", "nf2", timeout=120)
    assert r.returncode != 0, r.stdout
    assert "injected portmap failure" in r.stderr, r.stderr
    assert leftovers(d, net, port) == {}
    # The checkpoint is intact: with the plugin fixed, the restore works and serves again.
    marker.unlink()
    d.ok("start", "--checkpoint", "cp1", "nf2", timeout=120)
    wait_for(lambda: fetch_or_none(port) == b"hi\n", what="the restored container's port")
    d.ok("rm", "-f", "nf2")
    assert leftovers(d, net, port) == {}
    d.ok("network", "rm", net)


def test_connect_failing_after_the_plugins_attached_leaves_nothing(faulty):
    """`network connect` of a running container whose CNI attach worked but whose next step
    failed (its /etc/hosts cannot be written: made immutable here) is undone whole: no veth,
    no allocation, no attachment record, the container off the network, its address free."""
    d, _ = faulty
    net = make_network(d)
    d.ok("run", "-d", "--name", "nf3", "busybox", "sleep", "1000")
    d.ok("network", "disconnect", "cryo0", "nf3")
    cid = inspect(d, "nf3")["Id"]
    hosts = d.root / "containers" / cid / "hosts"
    subprocess.run(["chattr", "+i", str(hosts)], check=True)
    try:
        r = d.docker("network", "connect", net, "nf3")
        assert r.returncode != 0, r.stdout
    finally:
        subprocess.run(["chattr", "-i", str(hosts)], check=True)
    found = leftovers(d, net, free_port())
    found.pop("namespace files", None)   # the running container's own namespace
    assert found == {}, found
    assert (inspect(d, "nf3")["NetworkSettings"]["Networks"] or {}) == {}
    # With its files writable again the same connect works.
    d.ok("network", "connect", net, "nf3")
    assert net in inspect(d, "nf3")["NetworkSettings"]["Networks"]
    d.ok("rm", "-f", "nf3")
    d.ok("network", "rm", net)
