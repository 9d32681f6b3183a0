#!/usr/bin/env bash
# scripts/make-busybox-rootfs.sh DIR — create (or refresh) a minimal container root filesystem
# in DIR from Debian's busybox-static: DIR/bin/busybox plus one relative symlink per applet at
# the path busybox itself lists (`busybox --list-full`: bin/sh, bin/ls, usr/bin/seq, sbin/init…),
# the usual empty directories and an /etc/passwd and /etc/group with root and nobody.
#
# The symlinks are relative (bin/sh -> busybox, usr/bin/seq -> ../../bin/busybox), so they
# resolve inside the container and never point at the host's files.
#
# Idempotent: running it again on the same DIR changes nothing (it only fixes what is missing
# or different). Files that are not part of this layout are left alone. No root needed unless
# DIR is somewhere only root can write.
set -euo pipefail

die() {
    printf 'make-busybox-rootfs: ERROR: %s\n' "$*" >&2
    exit 1
}

if [[ $# -ne 1 || -z "$1" || "$1" == -* ]]; then
    printf 'usage: %s DIR\n  creates a minimal busybox root filesystem in DIR\n' "$0" >&2
    exit 2
fi
dir=$1
busybox=/bin/busybox

if [[ "$(dpkg-query -W -f='${db:Status-Status}' busybox-static 2>/dev/null || true)" != installed ]] ||
    [[ ! -x "$busybox" ]]; then
    die "busybox-static is not installed (need a statically linked $busybox); run scripts/setup.sh as root first"
fi

mkdir -p -- "$dir"
dir=$(cd -- "$dir" && pwd -P)
[[ "$dir" != / ]] || die "refusing to use / as the rootfs directory"

# Directories (mode as on a normal system).
for d in bin sbin usr/bin usr/sbin proc sys dev tmp etc root var var/tmp run; do
    mkdir -p -- "$dir/$d"
done
chmod 0555 "$dir/proc" "$dir/sys"
chmod 1777 "$dir/tmp" "$dir/var/tmp"
chmod 0700 "$dir/root"
chmod 0755 "$dir/bin" "$dir/sbin" "$dir/usr" "$dir/usr/bin" "$dir/usr/sbin" "$dir/dev" \
    "$dir/etc" "$dir/var" "$dir/run"

# The binary itself (copied only when missing or different).
if ! cmp -s "$busybox" "$dir/bin/busybox"; then
    install -m 0755 "$busybox" "$dir/bin/busybox.tmp.$$"
    mv -f "$dir/bin/busybox.tmp.$$" "$dir/bin/busybox"
fi

# One relative symlink per applet, at the path busybox lists for it.
count=0
while IFS= read -r path; do
    [[ "$path" == */* ]] || continue # skips "linuxrc", the only entry at the top level
    [[ "$path" != bin/busybox ]] || continue
    parent=${path%/*}
    # bin/sh -> busybox, sbin/init -> ../bin/busybox, usr/bin/seq -> ../../bin/busybox
    up=""
    rest=$parent
    while [[ -n "$rest" ]]; do
        up+="../"
        [[ "$rest" == */* ]] && rest=${rest#*/} || rest=""
    done
    if [[ "$parent" == bin ]]; then target=busybox; else target="${up}bin/busybox"; fi
    [[ -d "$dir/$parent" ]] || mkdir -p -- "$dir/$parent"
    if [[ "$(readlink -- "$dir/$path" 2>/dev/null || true)" != "$target" ]]; then
        ln -sfn -- "$target" "$dir/$path"
    fi
    count=$((count + 1))
done < <("$busybox" --list-full)

# /etc files (rewritten only when their content differs).
write_file() { # PATH MODE CONTENT
    if [[ ! -f "$1" || -L "$1" ]] || [[ "$(cat -- "$1")" != "$3" ]]; then
        rm -f -- "$1"
        printf '%s\n' "$3" >"$1"
    fi
    chmod "$2" "$1"
}
write_file "$dir/etc/passwd" 0644 'root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false'
write_file "$dir/etc/group" 0644 'root:x:0:
nobody:x:65534:'

for applet in sh ls cat sleep echo seq ps mount; do
    [[ -L "$(find "$dir/bin" "$dir/usr/bin" "$dir/sbin" -maxdepth 1 -name "$applet" -print -quit)" ]] ||
        die "busybox has no '$applet' applet"
done

printf 'make-busybox-rootfs: %s ready (busybox %s, %d applets)\n' "$dir" \
    "$("$dir/bin/busybox" 2>/dev/null | head -1 | awk '{print $2}')" "$count"
