#!/usr/bin/env python3
"""A/B of CRIU's dump/restore of a small busybox container (`sleep`) through one cryod.

Usage (root): bench/criu-mounts-ab.py BIN_DIR [ROUNDS]   (BIN_DIR holds cryod, cryo-monitor,
cryo-runtime; needs the docker CLI and /var/cache/cryo/test-images/busybox.tar)

Two containers, checkpointed (Exit) and restored through the API in alternating order,
2 warm-up rounds, medians of ROUNDS: 'new' = the spec cryod writes (ContainerTmpfs binds),
'old' = the same container's config.json patched back to a tmpfs /dev, tmpfs masked
directories and no cgroup holder annotation. Reports the API times, CRIU's own duration
(the last timestamp of dump.log / restore.log, log level 4) and how many tmpfs images the
checkpoint holds. With binaries from before ContainerTmpfs both containers are 'old'."""
import http.client, json, os, re, socket, statistics, subprocess, sys, tempfile, time, signal
BIN = sys.argv[1]; RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 7
base = tempfile.mkdtemp(prefix="tmpfsx-ab-", dir="/tmp")
sock = base + "/d.sock"
class UConn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(sock)
def req(method, path, body=None):
    c = UConn("localhost", timeout=120)
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers={"Content-Type": "application/json"})
    r = c.getresponse(); data = r.read(); c.close()
    if r.status >= 300: raise RuntimeError(f"{method} {path}: {r.status} {data[:300]}")
    return json.loads(data) if data else None
d = subprocess.Popen([BIN + "/cryod", "--root", base + "/root", "--exec-root", base + "/run", "-H", "unix://" + sock,
                      "--bridge", "tmpfsxab0", "--default-subnet", "198.18.251.0/24"], stdout=open(base + "/cryod.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
for _ in range(300):
    try: req("GET", "/_ping"); break
    except Exception: time.sleep(0.1)
def last_ts(path):
    ts = re.findall(r"^\((\d+\.\d+)\)", open(path).read(), re.M)
    return float(ts[-1]) * 1000
def patch_old(cid):
    p = f"{base}/root/containers/{cid}/bundle/config.json"
    s = json.load(open(p))
    masked_binds = [m["destination"] for m in s["mounts"] if m.get("source", "").endswith("/tmpfs/masked")]
    s["mounts"] = [m for m in s["mounts"] if m["destination"] not in masked_binds]
    s["mounts"] = [({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}
                    if m["destination"] == "/dev" else m) for m in s["mounts"]]
    s["linux"]["maskedPaths"] = s["linux"]["maskedPaths"] + masked_binds
    s["annotations"].pop("org.cryo.runtime.cgroup-holder", None)
    json.dump(s, open(p, "w"))
res = {"old": {"ck": [], "rs": [], "dump": [], "rst": [], "tars": []}, "new": {"ck": [], "rs": [], "dump": [], "rst": [], "tars": []}}
try:
    subprocess.run(["docker", "-H", "unix://" + sock, "load", "-i", "/var/cache/cryo/test-images/busybox.tar"], check=True, capture_output=True)
    cids = {}
    for v in ("old", "new"):
        cid = req("POST", "/containers/create", {"Image": "busybox", "Cmd": ["sleep", "100000"]})["Id"]
        if v == "old": patch_old(cid)
        req("POST", f"/containers/{cid}/start"); cids[v] = cid
    for i in range(RUNS + 2):
        for v in (("old", "new") if i % 2 == 0 else ("new", "old")):
            cid = cids[v]; cp = f"c{i}"
            t0 = time.monotonic(); req("POST", f"/containers/{cid}/checkpoints", {"CheckpointID": cp, "Exit": True}); t1 = time.monotonic()
            req("POST", f"/containers/{cid}/start?checkpoint={cp}"); t2 = time.monotonic()
            cpdir = f"{base}/root/containers/{cid}/checkpoints/{cp}"
            if i >= 2:
                r = res[v]; r["ck"].append((t1 - t0) * 1000); r["rs"].append((t2 - t1) * 1000)
                r["dump"].append(last_ts(cpdir + "/dump.log")); r["rst"].append(last_ts(f"{base}/root/containers/{cid}/restore-work/restore.log"))
                r["tars"].append(len([f for f in os.listdir(cpdir) if f.startswith("tmpfs-")]))
    for v in ("old", "new"):
        r = res[v]
        print(f"{v}: checkpoint {statistics.median(r['ck']):.1f} ms, restore {statistics.median(r['rs']):.1f} ms, "
              f"CRIU dump {statistics.median(r['dump']):.1f} ms, CRIU restore {statistics.median(r['rst']):.1f} ms, tmpfs images {r['tars'][0]}")
    print("raw", json.dumps(res))
finally:
    for cid in list(cids.values()) if 'cids' in dir() else []:
        try: req("DELETE", f"/containers/{cid}?force=1")
        except Exception as e: print("rm", e)
    d.send_signal(signal.SIGTERM); d.wait(timeout=60)
    subprocess.run(["ip", "link", "del", "tmpfsxab0"], capture_output=True)
    print("base", base)
