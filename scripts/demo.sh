#!/usr/bin/env bash
# scripts/demo.sh — cryo's main job in a minute: start cryod, run a counter container,
# checkpoint it to disk with CRIU (the container stops), restore it, and watch it count on
# from where it stopped; then the same across a restart of the daemon itself.
# Installs what it needs (scripts/setup.sh), builds cryod, cryo-monitor, cryo-runtime and cryo.
set -euo pipefail
cd "$(dirname "$0")/.."

[[ $(id -u) -eq 0 ]] || { echo "demo: run as root (containers and CRIU need it): sudo $0" >&2; exit 1; }
bash scripts/setup.sh
echo "demo: building cryo…"
swift build --product cryod 2>&1 | tail -n 1
swift build --product cryo-monitor 2>&1 | tail -n 1
swift build --product cryo-runtime 2>&1 | tail -n 1
swift build --product cryo 2>&1 | tail -n 1
bin="$PWD/.build/debug"
bash scripts/make-test-images.sh >/dev/null

work=$(mktemp -d /tmp/cryo-demo.XXXXXX)
export CRYO_HOST="unix://$work/cryo.sock"
cryo() { "$bin/cryo" "$@"; }
daemon_pid=
start_daemon() {
    "$bin/cryod" --root "$work/root" --exec-root "$work/run" -H "$CRYO_HOST" >>"$work/cryod.log" 2>&1 &
    daemon_pid=$!
    for _ in $(seq 100); do cryo version >/dev/null 2>&1 && return; sleep 0.05; done
    echo "demo: cryod did not start; its log:" >&2; cat "$work/cryod.log" >&2; exit 1
}
cleanup() {
    cryo rm -f counter >/dev/null 2>&1 || true
    [[ -n "$daemon_pid" ]] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null || true
    grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

last() { cryo logs --tail 1 counter | awk '{print $2}'; }

echo "demo: starting cryod (state in $work)"
start_daemon
cryo load -i /var/cache/cryo/test-images/busybox.tar
echo "demo: a busybox container that counts every 0.5 s"
cryo run -d --name counter busybox sh -c 'i=0; while true; do echo "counter: $i"; i=$((i+1)); sleep 0.5; done' >/dev/null
sleep 3
cryo logs counter | tail -n 3

echo
echo "demo: checkpoint (CRIU freezes the processes and writes them to disk; the container stops)"
cryo checkpoint create counter cp1
before=$(last)
cryo ps -a
sleep 1
echo
echo "demo: restore from the checkpoint"
cryo start --checkpoint cp1 counter
sleep 2
cryo logs counter | tail -n 4
after=$(last)
if [[ -z "$after" || "$after" -le "$before" ]]; then
    echo "demo: FAILED — last before the checkpoint: '$before', now: '$after'" >&2
    exit 1
fi
if cryo logs counter | awk '{print $2}' | awk 'NR > 1 && $1 != prev + 1 { bad = 1 } { prev = $1 } END { exit bad }'; then
    echo "demo: OK — the counter went on from $before without restarting or skipping"
else
    echo "demo: FAILED — the counter restarted or skipped" >&2
    exit 1
fi

echo
echo "demo: now stop cryod itself (SIGKILL) — the container keeps running under its monitor"
kill -9 "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true
sleep 1
start_daemon
cryo ps
echo "demo: OK — after the daemon restart the counter is at $(last) and still counting"
