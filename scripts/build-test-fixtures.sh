#!/usr/bin/env bash
# scripts/build-test-fixtures.sh OUTDIR — compile the C fixtures of the integration tests
# (integration/fixtures/*.c) into static binaries in OUTDIR: OUTDIR/aio-counter.
#
# Static (gcc -static -O2) so they run in the busybox rootfs, which has no libc.
# The integration tests call this once per run; it can also be run by hand or in CI.
set -euo pipefail

die() {
    printf 'build-test-fixtures: ERROR: %s\n' "$*" >&2
    exit 1
}

if [[ $# -ne 1 || -z "$1" || "$1" == -* ]]; then
    printf 'usage: %s OUTDIR\n  compiles integration/fixtures/*.c into static binaries in OUTDIR\n' "$0" >&2
    exit 2
fi
out=$1
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
fixtures="$here/../integration/fixtures"
cc=${CC:-gcc}
command -v "$cc" >/dev/null 2>&1 || die "$cc not found (apt-get install gcc libc6-dev)"

mkdir -p -- "$out"
for src in "$fixtures"/*.c; do
    name=$(basename -- "$src" .c)
    "$cc" -static -O2 -Wall -Wextra -o "$out/$name.tmp.$$" "$src" ||
        die "compiling $src failed (a static build needs libc6-dev's libc.a)"
    mv -f -- "$out/$name.tmp.$$" "$out/$name"
    printf 'build-test-fixtures: %s\n' "$out/$name"
done
