#!/usr/bin/env bash
# scripts/test.sh — install what the tests need, build, and run every test (unit and
# integration: real containers, real CRIU, real runc and podman). Needs root.
# Under CI=true a missing requirement (root, CRIU, a kernel feature) fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
    echo "test: the integration tests run real containers and CRIU: run as root" >&2
    exit 1
fi
bash scripts/setup.sh
started=$SECONDS
phase() { echo "test: $1 (at $((SECONDS - started)) s)"; }
phase "lint (swift-format)…"
bash scripts/lint.sh
phase "building (warnings are errors in cryo's own targets)…"
CRYO_WARNINGS_AS_ERRORS=1 swift build --build-tests
# Integration tests share cgroups, CRIU and the runtime state root: run them one at a time.
phase "unit and runtime integration tests (swift test)…"
swift test --skip-build --no-parallel "$@"

# Engine integration tests: the real docker CLI and docker-py against a real cryod
# (integration/engine; each docker call has its own subprocess timeout, so a hang fails).
phase "engine tests (docker CLI, docker-py)…"
bash scripts/make-test-images.sh
bash scripts/make-app-images.sh
python3 -m pytest -x -q -p no:cacheprovider integration/engine

# A short, bounded fuzzing run of every target (scripts/fuzz.sh: a crash fails the run and
# keeps the input in Tests/CryoFuzzTests/Corpus for the replay test). CRYO_FUZZ_SECONDS=0 skips.
if [[ ${CRYO_FUZZ_SECONDS:-20} -gt 0 ]]; then
    phase "fuzzing, ${CRYO_FUZZ_SECONDS:-20} s per target…"
    bash scripts/fuzz.sh "${CRYO_FUZZ_SECONDS:-20}"
fi
phase "done"
