"""cryod's log: `--log-format json` makes every line on its stderr a JSON object (also
while a container runs, stops and is removed), `--log-level`/`-l` filters, and the
monitors it starts get the same level and format in their environment."""

import json
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import BIN_DIR, IMAGES, Daemon, _check_requirements, cleanup, inspect


def own_daemon(*extra):
    _check_requirements()
    return Daemon(tempfile.mkdtemp(prefix="cl-", dir="/tmp"), extra_args=list(extra))


def log_lines(d):
    """cryod's lines, without the marker lines conftest writes before each start."""
    text = Path(d.log_path).read_text(errors="replace")
    return [l for l in text.splitlines() if l.strip() and not l.startswith("==== cryod start")]


def test_json_lines_on_stderr(name):
    d = own_daemon("--log-format", "json", "--log-level", "debug")
    try:
        d.start()
        d.ok("load", "-i", IMAGES / "busybox.tar", timeout=120)
        d.ok("run", "-d", "--name", name, "busybox", "sleep", "600")
        pid = inspect(d, name)["State"]["Pid"]
        # The container's init is its monitor's child: the monitor logs as cryod does.
        monitor = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        env = Path(f"/proc/{monitor}/environ").read_bytes().split(b"\0")
        assert b"CRYO_LOG_LEVEL=debug" in env and b"CRYO_LOG_FORMAT=json" in env, env
        d.ok("rm", "-f", name)
        d.stop()
        lines = log_lines(d)
        assert lines, "cryod wrote nothing"
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                pytest.fail(f"not a JSON line: {line!r}\nlog:\n{d.log_tail()}")
        for r in records:
            assert {"time", "level", "label", "msg"} <= r.keys(), r
            assert r["label"] == "cryod" and r["time"].endswith("Z"), r
        msgs = [r["msg"] for r in records]
        assert any(m.startswith("cryod ") and " listening on " in m for m in msgs), msgs
        assert records[-1]["msg"] == "stopped" and records[-1]["level"] == "info", records[-1]
    finally:
        cleanup(d)


def test_monitor_logs_json_lines_to_its_own_file(name):
    """The monitor outlives cryod, so its lines go to a file of its own under the exec-root
    (not to /dev/null, not to a pipe to cryod), in cryod's format; a debug cryod names it."""
    d = own_daemon("--log-format", "json", "--log-level", "debug")
    try:
        d.start()
        d.ok("load", "-i", IMAGES / "busybox.tar", timeout=120)
        cid = d.ok("run", "-d", "--name", name, "busybox", "sleep", "600").strip()
        path = d.run / "mon" / f"{cid}.log"
        assert path.exists(), f"no monitor log at {path}"
        records = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
        assert records, "the monitor wrote nothing"
        assert all(r["label"] in ("cryo-monitor", "cryo-runtime") and {"time", "level", "msg"} <= r.keys() for r in records), records
        assert any(r["msg"] == "creating container" and r.get("id") == cid for r in records), records
        assert any(str(path) in l for l in log_lines(d)), "cryod's debug log names the monitor's log"
        d.ok("rm", "-f", name)
        assert not path.exists(), "removed with its container"
    finally:
        cleanup(d)


def test_log_level_filters():
    d = own_daemon("-l", "error")
    try:
        d.start()
        d.stop()
        # Start and stop are info lines: below the level, so nothing at all.
        assert log_lines(d) == [], d.log_tail()
    finally:
        cleanup(d)
    d = own_daemon("--log-level", "info")
    try:
        d.start()
        d.stop()
        lines = log_lines(d)
        assert any(" info cryod: cryod " in l and " listening on " in l for l in lines), lines
        assert lines[-1].endswith(" info cryod: stopped"), lines
    finally:
        cleanup(d)


@pytest.mark.parametrize("flags, message", [
    (["--log-level", "loud"], 'log level "loud": use one of debug, info, warning, error'),
    (["--log-format", "xml"], 'log format "xml": use text or json'),
])
def test_bad_log_options_are_refused(flags, message):
    _check_requirements()
    base = tempfile.mkdtemp(prefix="cl-", dir="/tmp")
    r = subprocess.run([str(BIN_DIR / "cryod"), "--root", base + "/root", "--exec-root", base + "/run",
                        "-H", "unix://" + base + "/d.sock", *flags], capture_output=True, text=True, timeout=30)
    subprocess.run(["rm", "-rf", base])
    assert r.returncode != 0 and message in r.stderr, r
