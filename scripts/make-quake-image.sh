#!/usr/bin/env bash
# scripts/make-quake-image.sh [DIR] — build the Quake demo's image into DIR (default:
# $CRYO_QUAKE_CACHE, else /var/cache/cryo/quake), from Debian's packages, with no registry:
#
#   quake.tar   docker save format, cryo-quake:latest, two layers:
#                 1. the busybox rootfs (scripts/make-busybox-rootfs.sh: the same layer as the
#                    test images' busybox:latest), for a shell;
#                 2. OpenArena's dedicated server: ioquake3-server's ioq3ded, openarena-server's
#                    game module and wrapper (/usr/games/openarena-server), the game data the
#                    server reads (the pk3 files listed in PAKS below), and the shared
#                    libraries ioq3ded and the game module load (ldd: libc, libm, libz, the
#                    dynamic loader), copied from this host.
#               Entrypoint: the Debian wrapper (sets com_basegame baseoa, fs_basepath, the
#               protocol 71 OpenArena clients speak); Cmd: a free-for-all on oa_dm1 with four bots
#               (no frag or time limit: the game never ends), home in /tmp/oa.
#   debs/       the downloaded .deb files (`apt-get download`, the versions apt picks here).
#
# openarena-server depends on ~420 MB of data packages, most of it for clients: a running
# server's sv_referencedPaks names pak6-patch088, pak6-patch085, pak6-misc and pak1-maps
# (maps with their bot navigation files), and pak0 holds the base game's scripts. PACKAGES are
# the packages holding those (~220 MB); player models and textures (openarena-081-players*,
# openarena-081-textures: pak2-*, pak4) are neither downloaded nor packed.
#
# Idempotent: DIR/.stamp records the inputs (the .deb files, busybox-static's version, the
# hashes of this script, make-image.py and make-busybox-rootfs.sh); when it matches and
# quake.tar is there, nothing is rebuilt. The output is written to a temp dir and renamed.
set -euo pipefail

die() {
    printf 'make-quake-image: ERROR: %s\n' "$*" >&2
    exit 1
}

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
out=${1:-${CRYO_QUAKE_CACHE:-/var/cache/cryo/quake}}
[[ -n "$out" && "$out" != -* ]] || { printf 'usage: %s [DIR]\n' "$0" >&2; exit 2; }
for tool in python3 dpkg-deb apt-get ldd; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done
bbversion=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || true)
[[ -n "$bbversion" ]] || die "busybox-static is not installed; run scripts/setup.sh as root first"

PACKAGES=(openarena-server ioquake3-server openarena-data openarena-081-maps openarena-081-misc
          openarena-085-data openarena-088-data)
PAKS=(pak0.pk3 pak1-maps.pk3 pak6-misc.pk3 pak6-patch085.pk3 pak6-patch088.pk3)

mkdir -p -- "$out/debs"
out=$(cd -- "$out" && pwd -P)

# The packages, once (apt-get download writes into the current directory).
missing=()
for p in "${PACKAGES[@]}"; do
    compgen -G "$out/debs/${p}_*.deb" >/dev/null || missing+=("$p")
done
if ((${#missing[@]})); then
    printf 'make-quake-image: downloading %s (~220 MB)\n' "${missing[*]}"
    # _apt cannot write into a root-only cache: download as root, quietly.
    (cd "$out/debs" && apt-get -q -o APT::Sandbox::User=root download "${missing[@]}" >/dev/null) ||
        die "apt-get download ${missing[*]} failed (run apt-get update?)"
fi

stamp="busybox-static=$bbversion
$(cd "$out/debs" && ls -1 -- *.deb | sort | tr '\n' ' ')
$(sha256sum "$here/make-quake-image.sh" "$here/make-image.py" "$here/make-busybox-rootfs.sh" | awk '{print $1}' | tr '\n' ' ')"
if [[ -f "$out/.stamp" && "$(cat -- "$out/.stamp")" == "$stamp" && -f "$out/quake.tar" ]]; then
    printf 'make-quake-image: %s/quake.tar is up to date\n' "$out"
    exit 0
fi

work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
export SOURCE_DATE_EPOCH=1700000000

"$here/make-busybox-rootfs.sh" "$work/rootfs" >/dev/null

# Layer 2: the packages unpacked as dpkg would (no maintainer scripts: the server needs none).
game=$work/game
mkdir -p "$game"
for p in "${PACKAGES[@]}"; do
    dpkg-deb -x "$(compgen -G "$out/debs/${p}_*.deb" | sort | tail -1)" "$game"
done
rm -rf "$game/usr/share/doc" "$game/usr/share/man" "$game/usr/share/lintian" "$game/usr/share/bug" \
    "$game/etc/init.d" "$game/etc/apparmor.d" "$game/lib/systemd" "$game/etc/default"
# Game data: only PAKS; the wrapper's baseoa holds relative symlinks to them, dangling ones go.
data=$game/usr/share/games/openarena/baseoa
for f in "$data"/*.pk3; do
    keep=0
    for k in "${PAKS[@]}"; do [[ "${f##*/}" == "$k" ]] && keep=1; done
    ((keep)) || rm -f -- "$f"
done
find "$game/usr/lib/openarena-server" -xtype l -delete
for k in "${PAKS[@]}"; do
    [[ -f "$data/$k" && -e "$game/usr/lib/openarena-server/baseoa/$k" ]] || die "pk3 $k is missing after unpacking"
done

# The shared libraries the server loads, at the paths the loader looks for them.
bins=("$game/usr/lib/ioquake3/ioq3ded" "$game/usr/lib/openarena-server/baseoa/qagamex86_64.so")
for b in "${bins[@]}"; do
    [[ -f "$b" ]] || die "$b not found in the packages"
    ldd "$b" | grep -q 'not found' && die "ldd $b: a library is missing on this host: $(ldd "$b" | grep 'not found')"
done
ldd "${bins[@]}" | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}' | sort -u | while read -r lib; do
    mkdir -p "$game/$(dirname "$lib")"
    cp -L -- "$lib" "$game$lib"
done
chmod -R u+w,go-w "$game"

python3 "$here/make-image.py" --rootfs "$work/rootfs" --layer "$game" --tag cryo-quake:latest --format docker \
    --env HOME=/root --workdir /root \
    --entrypoint '["/usr/games/openarena-server"]' \
    --cmd '["+set","fs_homepath","/tmp/oa","+set","dedicated","1","+set","sv_hostname","cryo","+set","bot_enable","1","+set","sv_maxclients","8","+set","fraglimit","0","+set","timelimit","0","+map","oa_dm1","+addbot","Sarge","5","+addbot","Major","5","+addbot","Grism","5","+addbot","Angelyss","5"]' \
    -o "$work/quake.tar"
mv -f -- "$work/quake.tar" "$out/quake.tar"
printf '%s\n' "$stamp" >"$out/.stamp"
printf 'make-quake-image: built %s/quake.tar (%s)\n' "$out" "$(du -h "$out/quake.tar" | cut -f1)"
