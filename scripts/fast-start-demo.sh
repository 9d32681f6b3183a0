#!/usr/bin/env bash
# scripts/fast-start-demo.sh — fast start from a warm checkpoint (issue 12): a Python service
# that needs seconds to warm up (it computes a table before it serves) is started once,
# checkpointed while it runs, and then started again and again — cold (create + start) and
# as clones of that warm checkpoint — timing each until its first correct HTTP answer.
# Installs what it needs (scripts/setup.sh), builds cryo, makes the python-http image.
# Runs bench/fast-start-bench.py; more rounds or a release build: see its --help.
set -euo pipefail
cd "$(dirname "$0")/.."

[[ $(id -u) -eq 0 ]] || { echo "fast-start-demo: run as root (containers and CRIU need it): sudo $0" >&2; exit 1; }
bash scripts/setup.sh
echo "fast-start-demo: building cryo…"
for p in cryod cryo-monitor cryo-runtime cryo-init; do swift build --product "$p" 2>&1 | tail -n 1; done
bash scripts/make-app-images.sh >/dev/null
exec python3 bench/fast-start-bench.py --bin-dir "$PWD/.build/debug" --runs "${RUNS:-3}" "$@"
