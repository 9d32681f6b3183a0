#!/usr/bin/env bash
# scripts/fuzz.sh — coverage-guided fuzzing of cryo's parsers with libFuzzer.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]     (default: 30 s for every target)
#
# Builds `cryo-fuzz` with `-sanitize=fuzzer` into .build-fuzz, then runs each target on a copy of
# its seed corpus (Tests/CryoFuzzTests/Corpus/<target>) for SECONDS. A crash, trap or leak-free
# hang past libFuzzer's timeout fails the run; the input is copied into the corpus as crash-<sha>
# so that CryoFuzzTests replays it from then on (commit it with the fix). Prints, per target,
# the executions, the corpus size and the coverage libFuzzer reached.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${1:-30}
shift || true
TARGETS=("$@")
if [[ ${#TARGETS[@]} -eq 0 ]]; then TARGETS=(http-framing image-archive create-request criu-stats migration-frames); fi

echo "fuzz: building cryo-fuzz with -sanitize=fuzzer (.build-fuzz)…"
swift build --scratch-path .build-fuzz --product cryo-fuzz \
    -Xswiftc -sanitize=fuzzer -Xswiftc -DCRYO_FUZZ -Xswiftc -use-ld=lld 2>&1 | tail -3
BIN=.build-fuzz/debug/cryo-fuzz

WORK=$(mktemp -d /tmp/cryo-fuzz.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
status=0
printf '%-16s %10s %8s %8s %s\n' target execs corpus cov result
for t in "${TARGETS[@]}"; do
    seeds=Tests/CryoFuzzTests/Corpus/$t
    [[ -d $seeds ]] || { echo "fuzz: no corpus for $t in $seeds" >&2; exit 2; }
    mkdir -p "$WORK/$t/corpus" "$WORK/$t/artifacts"
    cp "$seeds"/* "$WORK/$t/corpus/"
    log=$WORK/$t/log
    rc=0
    CRYO_FUZZ_TARGET=$t "$BIN" "$WORK/$t/corpus" -max_total_time="$SECONDS_PER_TARGET" -max_len=65536 \
        -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$WORK/$t/artifacts/" \
        >"$log" 2>&1 || rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
    size=$(ls "$WORK/$t/corpus" | wc -l)
    if [[ $rc -ne 0 ]]; then
        status=1
        printf '%-16s %10s %8s %8s %s\n' "$t" "$execs" "$size" "$cov" "FAILED (rc $rc)"
        tail -40 "$log" >&2
        for a in "$WORK/$t/artifacts"/*; do
            [[ -f $a ]] || continue
            keep=$seeds/crash-$(sha256sum "$a" | cut -c1-16)
            cp "$a" "$keep"
            echo "fuzz: the input is kept as $keep (CryoFuzzTests replays it)" >&2
        done
    else
        printf '%-16s %10s %8s %8s %s\n' "$t" "$execs" "$size" "$cov" ok
    fi
done
exit $status
