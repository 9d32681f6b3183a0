#!/usr/bin/env bash
# scripts/make-app-images.sh [DIR] — build the workload images into DIR (default:
# $CRYO_TEST_IMAGES, else /var/cache/cryo/test-images), from Debian's own binaries, with no
# registry. Each is the busybox root filesystem (scripts/make-busybox-rootfs.sh) plus one
# program and the shared libraries `ldd` says it loads, at the same paths as on the host:
#
#   redis.tar        docker save format, redis:latest — Debian's redis-server (shipped in
#                    redis-tools as redis-check-rdb; the server picks its role from argv[0]),
#                    Cmd: redis-server --protected-mode no --save "" --appendonly no
#                    (listens on 0.0.0.0:6379, keeps everything in memory, never forks).
#   python-http.tar  docker save format, python-http:latest — Debian's python3.11 with its
#                    standard library (without test suites, tkinter, idlelib, ensurepip),
#                    Cmd: python3 -m http.server 8000 --directory /srv (/srv/index.html says
#                    "hello from cryo").
#
# Idempotent in the same way as make-test-images.sh: DIR/.stamp-apps records the package
# versions and this script's hash; nothing is rebuilt when it matches. Run as root after
# scripts/setup.sh (which installs redis-tools and python3).
set -euo pipefail

die() {
    printf 'make-app-images: ERROR: %s\n' "$*" >&2
    exit 1
}

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
out=${1:-${CRYO_TEST_IMAGES:-/var/cache/cryo/test-images}}
[[ -n "$out" && "$out" != -* ]] || { printf 'usage: %s [DIR]\n' "$0" >&2; exit 2; }

redis_bin=/usr/bin/redis-check-rdb
python_bin=/usr/bin/python3.11
python_lib=/usr/lib/python3.11
[[ -x $redis_bin ]] || die "$redis_bin not found: install redis-tools (scripts/setup.sh does)"
[[ -x $python_bin && -d $python_lib ]] || die "$python_bin or $python_lib not found: install python3 (scripts/setup.sh does)"

pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo none; }
stamp="redis-tools=$(pkgver redis-tools) libpython3.11-stdlib=$(pkgver libpython3.11-stdlib) busybox-static=$(pkgver busybox-static)
$(sha256sum "$here/make-app-images.sh" "$here/make-image.py" "$here/make-busybox-rootfs.sh" | awk '{print $1}' | tr '\n' ' ')"

outputs=(redis.tar python-http.tar)
mkdir -p -- "$out"
out=$(cd -- "$out" && pwd -P)
up_to_date=1
[[ -f "$out/.stamp-apps" && "$(cat -- "$out/.stamp-apps")" == "$stamp" ]] || up_to_date=0
for f in "${outputs[@]}"; do [[ -f "$out/$f" ]] || up_to_date=0; done
if [[ $up_to_date == 1 ]]; then
    printf 'make-app-images: %s is up to date\n' "$out"
    exit 0
fi

work=$(mktemp -d "$out/.build-apps.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
export SOURCE_DATE_EPOCH=1700000000

# add_program ROOTFS SRC DEST: copy the binary SRC to ROOTFS/DEST, and every library it
# loads (ldd's resolved paths, and the dynamic loader) to the same path inside ROOTFS.
# Libraries are copied with their real content (symlinks resolved), under the name ldd gave.
add_program() {
    local root=$1 src=$2 dest=$3 lib
    install -D -m 0755 "$src" "$root/$dest"
    while IFS= read -r lib; do
        [[ -n "$lib" ]] || continue
        install -D -m "$(stat -L -c %a -- "$lib")" "$(readlink -f -- "$lib")" "$root/$lib"
    done < <(ldd "$src" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
}

# redis:latest
"$here/make-busybox-rootfs.sh" "$work/redis" >/dev/null
add_program "$work/redis" "$redis_bin" usr/bin/redis-server
mkdir -p "$work/redis/data"
python3 "$here/make-image.py" --rootfs "$work/redis" --tag redis:latest --format docker \
    --workdir /data \
    --cmd '["redis-server","--protected-mode","no","--save","","--appendonly","no"]' \
    -o "$work/redis.tar"

# python-http:latest
"$here/make-busybox-rootfs.sh" "$work/py" >/dev/null
add_program "$work/py" "$python_bin" usr/bin/python3.11
ln -s python3.11 "$work/py/usr/bin/python3"
mkdir -p "$work/py/usr/lib"
tar -C /usr/lib --exclude='python3.11/test' --exclude='python3.11/*/test' --exclude='python3.11/*/tests' \
    --exclude='python3.11/tkinter' --exclude='python3.11/idlelib' --exclude='python3.11/ensurepip' \
    --exclude='python3.11/lib2to3' --exclude='python3.11/dist-packages' --exclude='python3.11/site-packages' \
    --exclude='__pycache__' --exclude='python3.11/config-*' -cf - python3.11 | tar -C "$work/py/usr/lib" -xf -
# Extension modules python loads at run time (lib-dynload) need their own libraries too.
for so in "$work"/py/usr/lib/python3.11/lib-dynload/*.so; do
    while IFS= read -r lib; do
        [[ -e "$work/py/$lib" ]] || install -D -m 0644 "$(readlink -f -- "$lib")" "$work/py/$lib"
    done < <(ldd "$so" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 }')
done
mkdir -p "$work/py/srv"
printf 'hello from cryo\n' >"$work/py/srv/index.html"
python3 "$here/make-image.py" --rootfs "$work/py" --tag python-http:latest --format docker \
    --env PYTHONDONTWRITEBYTECODE=1 --env PYTHONUNBUFFERED=1 \
    --cmd '["python3","-m","http.server","8000","--directory","/srv"]' \
    -o "$work/python-http.tar"

for f in "${outputs[@]}"; do mv -f -- "$work/$f" "$out/$f"; done
printf '%s\n' "$stamp" >"$out/.stamp-apps"
printf 'make-app-images: built %s in %s\n' "${outputs[*]}" "$out"
