#!/usr/bin/env bash
# scripts/quake-demo.sh — DockerCon's "Quake demo", with cryo: an OpenArena (ioquake3) game
# server with bots runs in a container on host A, a client polls its status over UDP, `cryo
# migrate` moves it to host B while the client keeps asking, and the same game goes on on B:
# the same level start time, the bots' scores carried over and still moving, the client's
# silence next to cryo's own downtime. Exit status 0 when the game carried on.
#
# The two hosts are network namespaces of this machine on one simulated LAN (hostA, hostB,
# client; integration/engine/lan.py), each with its own cryod; the container is on a macvlan network,
# so its address and MAC are on the LAN and move with it. The image is built from Debian's
# openarena-server packages by scripts/make-quake-image.sh (cached in /var/cache/cryo/quake;
# the first run downloads ~220 MB of packages). The stage itself is scripts/quake-demo.py.
#
#   sudo scripts/quake-demo.sh [--before SECONDS] [--after SECONDS] [--json FILE]
#
# CRYO_BIN_DIR=DIR uses cryod/cryo/cryo-monitor/cryo-runtime from DIR instead of building.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'quake-demo: %s\n' "$*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "run as root (namespaces, cryod, CRIU): sudo $0"
for tool in criu nsenter ip python3 apt-get dpkg-deb; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (scripts/setup.sh installs what cryo needs)"
done
for plugin in macvlan host-local bridge; do
    [[ -x /usr/lib/cni/$plugin ]] || die "the CNI plugin $plugin is not in /usr/lib/cni (install containernetworking-plugins)"
done

start=$(date +%s)
if [[ -n "${CRYO_BIN_DIR:-}" ]]; then
    bin=$CRYO_BIN_DIR
else
    echo "quake-demo: building cryo…"
    for p in cryod cryo-monitor cryo-runtime cryo; do
        swift build --product "$p" 2>&1 | tail -n 1
    done
    bin="$PWD/.build/debug"
fi
for b in cryod cryo cryo-monitor cryo-runtime; do
    [[ -x "$bin/$b" ]] || die "$bin/$b not found"
done
bash scripts/make-quake-image.sh
image=${CRYO_QUAKE_CACHE:-/var/cache/cryo/quake}/quake.tar
echo "quake-demo: ready after $(( $(date +%s) - start )) s (build and image)"
exec python3 scripts/quake-demo.py --bin "$bin" --image "$image" "$@"
