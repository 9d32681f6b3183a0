#!/usr/bin/env python3
"""Fork and clones (issue 12): how long `cryo fork` freezes a small busybox container and how
long until the copy runs, and how long 10 clones of one checkpoint take until all run.

Usage (root): python3 bench/fork-bench.py [--bin DIR] [--rounds N]
DIR holds cryod (default: the worktree's .build/debug; use the release build for figures).
The image is /var/cache/cryo/test-images/busybox.tar (scripts/make-test-images.sh).
Prints medians; writes nothing else.
"""
import argparse, os, random, subprocess, sys, tempfile, time, uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ROOT, med, remove_work, sh, start_cryod, stop  # noqa: E402

COUNTER = "i=0; while true; do echo $i; i=$((i+1)); sleep 0.1; done"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, ".build", "debug"))
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="cfb", dir="/tmp")   # short: monitor socket paths live under it
    cryod = None
    bridge = "cryofb" + uuid.uuid4().hex[:6]
    try:
        # Its own bridge and subnet: other cryods may run on this machine.
        cryod, api = start_cryod(args.bin, work, ["-b", bridge, "--default-subnet", f"198.19.{random.randint(100, 250)}.0/24"],
                                 log=os.environ.get("CRYOD_LOG", os.path.join(work, "cryod.log")))
        api.upload("/v1.50/images/load?quiet=1", "/var/cache/cryo/test-images/busybox.tar")
        src = "fb" + uuid.uuid4().hex[:8]
        api.call("POST", f"/containers/create?name={src}", {"Image": "busybox", "Cmd": ["sh", "-c", COUNTER]})
        api.call("POST", f"/containers/{src}/start")
        time.sleep(1)
        pauses, running, calls = [], [], []
        for i in range(args.rounds):
            t0 = time.perf_counter()
            r = api.call("POST", f"/containers/{src}/fork?name={src}-f{i}")
            calls.append(time.perf_counter() - t0)
            pauses.append((r.get("PauseMs") or 0) / 1000)
            running.append(r["TimeToRunningMs"] / 1000)
            api.call("DELETE", f"/containers/{src}-f{i}?force=1")
        print(f"fork ({args.rounds} rounds, medians): source frozen {med(pauses):.1f} ms, "
              f"copy running after {med(running):.1f} ms, API call {med(calls):.1f} ms")
        api.call("POST", f"/containers/{src}/checkpoints", {"CheckpointID": "cp", "Exit": False})
        t0 = time.perf_counter()
        for i in range(10):
            api.call("POST", f"/containers/{src}/checkpoints/cp/clone?name={src}-c{i}")
        total = time.perf_counter() - t0
        print(f"10 clones of one checkpoint, one after another: all running after {total * 1000:.0f} ms "
              f"({total * 100:.1f} ms each)")
    finally:
        if cryod:
            for c in api.call("GET", "/containers/json?all=1"):
                api.call("DELETE", f"/containers/{c['Id']}?force=1", ok=(200, 204, 404))
            stop([cryod])
        sh("ip", "link", "del", bridge, check=False, stderr=subprocess.DEVNULL)
        remove_work(work)


if __name__ == "__main__":
    main()
