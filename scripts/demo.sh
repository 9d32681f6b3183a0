#!/usr/bin/env bash
# scripts/demo.sh — cryo's main job in one minute: run a counter container, checkpoint it
# to disk with CRIU (the container is gone), restore it, and watch it count on from where
# it stopped. Installs what it needs (scripts/setup.sh) and builds cryo-runtime first.
set -euo pipefail
cd "$(dirname "$0")/.."

[[ $(id -u) -eq 0 ]] || { echo "demo: run as root (containers and CRIU need it): sudo $0" >&2; exit 1; }
bash scripts/setup.sh
echo "demo: building cryo-runtime…"
swift build --product cryo-runtime 2>&1 | tail -n 1
bin="$PWD/.build/debug/cryo-runtime"

work=$(mktemp -d /tmp/cryo-demo.XXXXXX)
root="$work/state"
rt() { "$bin" --root "$root" "$@"; }
cleanup() {
    for id in demo demo-restored; do rt delete --force "$id" >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT

bash scripts/make-busybox-rootfs.sh "$work/bundle/rootfs" >/dev/null
(cd "$work/bundle" && "$bin" spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "i=0; while true; do echo \"counter: $i\"; i=$((i+1)); sleep 0.5; done"]
json.dump(c, open(path, "w"), indent=2)
PY

# The container's stdout is a pipe (CRIU can dump pipes, not host files); `cat` writes it to a log.
echo "demo: starting a busybox container that counts every 0.5 s"
setsid "$bin" --root "$root" run --detach --bundle "$work/bundle" demo </dev/null 2>&1 | cat >"$work/before.log" &
sleep 3
echo "--- container output so far:"
cat "$work/before.log"

echo "demo: checkpointing (CRIU dumps the processes to $work/checkpoint; the container stops)"
start=$(date +%s%N)
rt checkpoint --image-path "$work/checkpoint" demo
echo "demo: checkpoint took $(( ($(date +%s%N) - start) / 1000000 )) ms, images: $(du -sh "$work/checkpoint" | cut -f1)"
rt list
sleep 1

echo "demo: restoring as a new container 'demo-restored'"
start=$(date +%s%N)
setsid "$bin" --root "$root" restore --detach --image-path "$work/checkpoint" --bundle "$work/bundle" demo-restored \
    </dev/null 2>&1 | cat >"$work/after.log" &
for _ in $(seq 100); do rt state demo-restored >/dev/null 2>&1 && break; sleep 0.05; done
echo "demo: restore took $(( ($(date +%s%N) - start) / 1000000 )) ms"
sleep 2
echo "--- output after restore (it continues, it does not start again from 0):"
cat "$work/after.log"
last_before=$(tail -n 1 "$work/before.log" | awk '{print $2}')
first_after=$(head -n 1 "$work/after.log" | awk '{print $2}')
if [[ -n "$first_after" && "$first_after" -gt "$last_before" ]]; then
    echo "demo: OK — the counter went on from $last_before to $first_after after checkpoint/restore"
else
    echo "demo: FAILED — last before: '$last_before', first after: '$first_after'" >&2
    exit 1
fi
