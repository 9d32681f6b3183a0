#!/usr/bin/env bash
# scripts/make-test-images.sh [DIR] — build the test images into DIR (default: $CRYO_TEST_IMAGES,
# else /var/cache/cryo/test-images), from Debian's busybox-static, with no registry:
#
#   busybox.tar            docker save format (Docker 25+: OCI layout + manifest.json),
#                          busybox:latest, one layer, Cmd ["sh"]
#   busybox-oci.tar        OCI image layout, busybox-oci:latest (same layer)
#   busybox-rootfs.tar.gz  the same root filesystem as a plain tarball, for `import`
#   layered.tar            docker save format, layered:latest, three layers:
#                            1. the busybox rootfs (the same layer as busybox:latest)
#                            2. /x, /y, /d/a, /d/b
#                            3. /.wh.x (deletes /x), /d/.wh..wh..opq (hides d/a, d/b),
#                               /d/c, a new /y, /top
#                          so that a mounted rootfs shows: no /x, /d holding only c,
#                          /y = "y from layer 3", /top = "layer 3".
#
# The rootfs is scripts/make-busybox-rootfs.sh's (busybox plus applet symlinks, /etc/passwd
# and /etc/group with root and nobody, /tmp 1777); images are made by scripts/make-image.py.
# Everything is deterministic (SOURCE_DATE_EPOCH fixed), so a rebuild gives the same bytes.
#
# Idempotent: DIR/.stamp records the inputs (busybox-static version, the hashes of this
# script, make-image.py and make-busybox-rootfs.sh); when it matches and every output is
# there, nothing is rebuilt. Outputs are written to a temp dir and renamed into place.
set -euo pipefail

die() {
    printf 'make-test-images: ERROR: %s\n' "$*" >&2
    exit 1
}

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
out=${1:-${CRYO_TEST_IMAGES:-/var/cache/cryo/test-images}}
[[ -n "$out" && "$out" != -* ]] || { printf 'usage: %s [DIR]\n' "$0" >&2; exit 2; }
command -v python3 >/dev/null 2>&1 || die "python3 not found"

version=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || true)
[[ -n "$version" ]] || die "busybox-static is not installed; run scripts/setup.sh as root first"
stamp="busybox-static=$version
$(sha256sum "$here/make-test-images.sh" "$here/make-image.py" "$here/make-busybox-rootfs.sh" | awk '{print $1}' | tr '\n' ' ')"

outputs=(busybox.tar busybox-oci.tar busybox-rootfs.tar.gz layered.tar)
mkdir -p -- "$out"
out=$(cd -- "$out" && pwd -P)
up_to_date=1
[[ -f "$out/.stamp" && "$(cat -- "$out/.stamp")" == "$stamp" ]] || up_to_date=0
for f in "${outputs[@]}"; do [[ -f "$out/$f" ]] || up_to_date=0; done
if [[ $up_to_date == 1 ]]; then
    printf 'make-test-images: %s is up to date (busybox-static %s)\n' "$out" "$version"
    exit 0
fi

work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
export SOURCE_DATE_EPOCH=1700000000
mkimage() { python3 "$here/make-image.py" "$@"; }

"$here/make-busybox-rootfs.sh" "$work/rootfs" >/dev/null
mkimage --rootfs "$work/rootfs" --tag busybox:latest --format docker --cmd '["sh"]' -o "$work/busybox.tar"
mkimage --rootfs "$work/rootfs" --tag busybox-oci:latest --format oci --cmd '["sh"]' -o "$work/busybox-oci.tar"
tar --sort=name --mtime=@"$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
    -C "$work/rootfs" -cf - . | gzip -n -9 >"$work/busybox-rootfs.tar.gz"

# layered:latest
mkdir -p "$work/l2/d" "$work/l3/d"
printf 'x from layer 2\n' >"$work/l2/x"
printf 'y from layer 2\n' >"$work/l2/y"
printf 'a\n' >"$work/l2/d/a"
printf 'b\n' >"$work/l2/d/b"
: >"$work/l3/.wh.x"
: >"$work/l3/d/.wh..wh..opq"
printf 'c\n' >"$work/l3/d/c"
printf 'y from layer 3\n' >"$work/l3/y"
printf 'layer 3\n' >"$work/l3/top"
chmod 0755 "$work/l2" "$work/l3" "$work/l2/d" "$work/l3/d"
mkimage --layer "$work/rootfs" --layer "$work/l2" --layer "$work/l3" --tag layered:latest \
    --format docker --cmd '["sh"]' -o "$work/layered.tar"

for f in "${outputs[@]}"; do mv -f -- "$work/$f" "$out/$f"; done
printf '%s\n' "$stamp" >"$out/.stamp"
printf 'make-test-images: built %s in %s (busybox-static %s)\n' "${outputs[*]}" "$out" "$version"
