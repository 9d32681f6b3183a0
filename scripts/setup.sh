#!/usr/bin/env bash
# scripts/setup.sh — bring a Debian 12 (bookworm) machine to a state where cryo can be built
# and tested: CRIU >= 4.2, runc, podman, busybox-static, build libraries and network tools.
#
# Idempotent: every step checks first and is skipped when already done, so a second run on a
# prepared machine takes about a second and runs no apt command at all.
#
# Must run as root. Needs Debian's package mirror (nothing else from the network).
#
# Why CRIU comes from trixie/sid (see /work/shared/DESIGN.md, "The machines here"):
#   - Debian 12's CRIU 3.17 fails `criu check` on kernel 6.18 (it does not understand the
#     kernel's vDSO layout);
#   - CRIU 4.1.1 (trixie) cannot dump TCP/UDP sockets on kernels >= 6.16;
#   - CRIU 4.2.1 (sid) works. It is installed in two steps: trixie's criu first (this pulls
#     trixie's libc6 2.41 and ~20 libraries; the Swift toolchain keeps working with them),
#     then criu/sid + libcompel1/sid on top.
#   The trixie/sid source is pinned low (100 / 50), so nothing else is upgraded from there
#   unless asked for explicitly.
#
# What the trixie step changes (measured on this machine): trixie's libc6 2.41 Breaks
# base-files (<< 13.3), so base-files 13.x is installed too and /etc/os-release then says
# "Debian GNU/Linux 13 (trixie)" although everything else stays bookworm. It also upgrades
# libstdc++6/libgcc-s1 (gcc 14 runtime), dpkg, libzstd1 and moves gnutls/nettle to their
# "t64" names (libgnutls30 -> libgnutls30t64, libgnutlsxx30 is removed).
#
# Package compatibility on top of trixie's libc: bookworm's podman 4.3.1, conmon 2.1.6,
# runc 1.1.5, iptables, busybox-static, libseccomp-dev, libarchive-dev, gcc 12 install and
# work (glibc is backwards compatible; bookworm packages only ask for libc6 >= an older
# version). The one conflict is nftables: trixie's criu pulls trixie's libnftables1 1.1.3,
# and bookworm's nftables needs libnftables1 (= 1.0.6-2+deb12u2), so nftables is installed
# in the version that matches the installed libnftables1 (trixie's 1.1.3; it needs nothing
# else from trixie). See matching_version below.
# runc is installed in the same apt transaction as podman, so podman's "crun | runc"
# dependency is satisfied by runc and crun is not pulled in (crun 1.8.1 from Debian has no
# CRIU support and refuses this hybrid cgroup layout).
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
export LC_ALL=C

CRIU_MIN_VERSION=4.2
SOURCES_FILE=/etc/apt/sources.list.d/cryo-trixie-sid.sources
PREFS_FILE=/etc/apt/preferences.d/cryo-trixie-sid
SYSCTL_FILE=/etc/sysctl.d/60-cryo.conf
PIPE_MAX_SIZE_MIN=4194304

# Packages from bookworm (the default release). runc before podman: see the note above.
# containernetworking-plugins: bridge/host-local/portmap CNI plugins, which cryo's networking
# uses (DESIGN.md) and which podman 4.3 needs for its default bridge network.
# redis-tools: the redis-server binary (no service) for the Redis test/benchmark image.
# procps: the host's ps, which `docker top` runs.
# docker-compose: Compose 1.29.2 (on Debian's docker-py 5.0), which integration/engine/test_compose.py
# drives against cryod.
BOOKWORM_PACKAGES=(
    runc podman conmon containernetworking-plugins checkpointctl
    busybox-static redis-tools docker-compose
    libseccomp-dev libarchive-dev pkg-config
    iptables nftables iproute2 procps
    gcc libc6-dev python3
)

say() { printf 'setup: %s\n' "$*"; }
die() {
    printf 'setup: ERROR: %s\n' "$*" >&2
    exit 1
}

if [[ "$(id -u)" -ne 0 ]]; then
    die "this script must run as root (it installs packages with apt-get and writes /etc/apt, /proc/sys); try: sudo $0"
fi
if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
    die "apt-get/dpkg not found: this script supports Debian 12 (bookworm) only"
fi

start_time=$(date +%s.%N)

# ---------------------------------------------------------------------------------------------
# helpers

# Prints the installed CRIU version ("4.2.1"), or nothing if criu is missing/unusable.
criu_version() {
    command -v criu >/dev/null 2>&1 || return 0
    criu --version 2>/dev/null | awk '/^Version:/ { print $2; exit }' || true
}

criu_version_ok() {
    local v
    v=$(criu_version)
    [[ -n "$v" ]] && dpkg --compare-versions "$v" ge "$CRIU_MIN_VERSION"
}

is_installed() {
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" == "installed" ]]
}

APT_UPDATED=0
apt_update() {
    [[ "$APT_UPDATED" -eq 1 ]] && return 0
    say "apt-get update…"
    # The mirror's sid index is a dated snapshot whose Valid-Until has passed.
    apt-get -o Acquire::Check-Valid-Until=false -qq update
    APT_UPDATED=1
}

apt_install() {
    apt-get install -y -q --no-install-recommends "$@"
}

# Prints the URIs: and Signed-By: fields (with any continuation lines, so an inline key block
# survives) of the deb822 stanza whose Suites: field contains exactly "bookworm" — the main
# Debian source, not bookworm-security / bookworm-updates.
debian_source_fields() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" && "$f" != "$SOURCES_FILE" ]] || continue
        awk '
            function flush() {
                if (bookworm && uris != "") { printf "%s%s", uris, signedby; found = 1; exit }
                uris = ""; signedby = ""; bookworm = 0; cur = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^[ \t]/ {                           # continuation line of the previous field
                if (cur == "uris") uris = uris $0 "\n"
                else if (cur == "signed-by") signedby = signedby $0 "\n"
                else if (cur == "suites") { for (i = 1; i <= NF; i++) if ($i == "bookworm") bookworm = 1 }
                next
            }
            {
                name = tolower($1); sub(/:.*/, "", name); cur = name
                if (name == "uris") uris = $0 "\n"
                else if (name == "signed-by") signedby = $0 "\n"
                else if (name == "suites") {
                    line = $0; sub(/^[^:]*:/, "", line); n = split(line, s, /[ \t]+/)
                    for (i = 1; i <= n; i++) if (s[i] == "bookworm") bookworm = 1
                }
            }
            END { if (!found) flush(); exit !found }
        ' "$f" && return 0
    done
    return 1
}

# Fallback for machines that still use one-line /etc/apt/sources.list (debootstrap does):
# "deb [signed-by=…] URI bookworm main".
debian_source_fields_oneline() {
    local f line uri signedby
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f "$f" ]] || continue
        while read -r line; do
            signedby=$(sed -n 's/.*signed-by=\([^] ]*\).*/\1/p' <<<"$line")
            line=$(sed 's/\[[^]]*\]//' <<<"$line")
            # shellcheck disable=SC2086
            set -- $line
            [[ "${1:-}" == "deb" && "${3:-}" == "bookworm" ]] || continue
            uri=$2
            printf 'URIs: %s\n' "$uri"
            printf 'Signed-By: %s\n' "${signedby:-/usr/share/keyrings/debian-archive-keyring.gpg}"
            return 0
        done < <(grep -E '^[[:space:]]*deb[[:space:]]' "$f" || true)
    done
    return 1
}

# ---------------------------------------------------------------------------------------------
# a. CRIU >= 4.2 from trixie + sid

install_criu() {
    local fields content prefs v
    fields=$(debian_source_fields || debian_source_fields_oneline) ||
        die "could not find the Debian bookworm source (a deb822 stanza with 'Suites: bookworm' in /etc/apt/sources.list.d/*.sources, or a 'deb URI bookworm' line) to copy URIs:/Signed-By: from"
    grep -qi '^URIs:' <<<"$fields" || die "the Debian bookworm source has no URIs: field"
    grep -qi '^Signed-By:' <<<"$fields" ||
        fields+=$'\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg'

    content="# Written by cryo's scripts/setup.sh: Debian trixie and sid, only for CRIU >= 4.2.
# Pinned low in $PREFS_FILE; URIs/Signed-By copied from the bookworm source.
Types: deb
$fields
Suites: trixie sid
Components: main"
    prefs="# Written by cryo's scripts/setup.sh: never upgrade from trixie/sid unless asked for.
Package: *
Pin: release n=trixie
Pin-Priority: 100

Package: *
Pin: release n=sid
Pin-Priority: 50"

    if [[ ! -f "$SOURCES_FILE" ]] || [[ "$(cat "$SOURCES_FILE")" != "$content" ]]; then
        say "writing $SOURCES_FILE"
        printf '%s\n' "$content" >"$SOURCES_FILE"
        APT_UPDATED=0
    fi
    if [[ ! -f "$PREFS_FILE" ]] || [[ "$(cat "$PREFS_FILE")" != "$prefs" ]]; then
        say "writing $PREFS_FILE"
        printf '%s\n' "$prefs" >"$PREFS_FILE"
    fi

    apt_update
    say "installing CRIU from trixie (brings trixie's libc6 and ~20 libraries)…"
    apt_install -t trixie criu
    say "installing CRIU 4.2 from sid (criu/sid libcompel1/sid)…"
    apt_install criu/sid libcompel1/sid
    v=$(criu_version)
    say "CRIU ${v:-?} installed"
}

if criu_version_ok; then
    say "CRIU $(criu_version) already installed (>= $CRIU_MIN_VERSION), skipping"
else
    v=$(criu_version)
    say "installing CRIU 4.2 from trixie/sid… (found: ${v:-none})"
    install_criu
fi

# ---------------------------------------------------------------------------------------------
# b. bookworm packages

# nftables must have exactly the version of libnftables1 (same source package). trixie's criu
# pulls trixie's libnftables1 (1.1.3), and bookworm's nftables (1.0.6) then fails with
# "nftables : Depends: libnftables1 (= 1.0.6-2+deb12u2) but 1.1.3-1 is to be installed".
# So ask for the nftables version equal to the installed libnftables1 (trixie's 1.1.3 here;
# it needs nothing else from trixie).
matching_version() { # PACKAGE LIBRARY -> "PACKAGE=VERSION" or "PACKAGE"
    local v
    v=$(dpkg-query -W -f='${Version}' "$2" 2>/dev/null || true)
    if is_installed "$2" && [[ -n "$v" ]] &&
        apt-cache madison "$1" | awk -F'|' '{ gsub(/ /, "", $2); print $2 }' | grep -qxF "$v"; then
        printf '%s=%s\n' "$1" "$v"
    else
        printf '%s\n' "$1"
    fi
}

missing=()
for p in "${BOOKWORM_PACKAGES[@]}"; do
    is_installed "$p" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    say "runc, podman, busybox-static, build libraries and network tools already installed"
else
    say "installing from bookworm: ${missing[*]}…"
    apt_update
    for i in "${!missing[@]}"; do
        [[ "${missing[$i]}" == nftables ]] && missing[i]=$(matching_version nftables libnftables1)
    done
    apt_install "${missing[@]}"
fi

# ---------------------------------------------------------------------------------------------
# c. verify CRIU

v=$(criu_version)
[[ -n "$v" ]] || die "criu is not installed or 'criu --version' fails"
if ! dpkg --compare-versions "$v" ge "$CRIU_MIN_VERSION"; then
    die "CRIU $v is too old: cryo needs CRIU >= $CRIU_MIN_VERSION on this kernel ($(uname -r)).
  Debian 12's CRIU 3.17 fails on this kernel's vDSO layout, and CRIU 4.1.1 (trixie) cannot dump
  TCP/UDP sockets on kernels >= 6.16. Install 4.2.1 from sid: remove the criu package and
  re-run this script, or run: apt-get install -y --no-install-recommends criu/sid libcompel1/sid"
fi

check_out=$(criu check 2>&1) && check_rc=0 || check_rc=$?
if [[ "$check_rc" -ne 0 ]] || ! grep -q 'Looks good' <<<"$check_out"; then
    printf '%s\n' "$check_out" >&2
    die "'criu check' (CRIU $v) did not say \"Looks good\" (exit code $check_rc): this kernel or
  sandbox lacks something CRIU needs (see its output above), so checkpoint/restore will not work"
fi
say "criu check: CRIU $v looks good"

# crit (python3-pycriu) in the installed CRIU's version: `cryo checkpoint inspect`'s tests
# cross-check every field against `crit decode` of the same images, so crit must know this
# CRIU's image format (bookworm's 3.17 is older than the images 4.2 writes).
criu_pkg=$(dpkg-query -W -f='${Version}' criu 2>/dev/null || true)
pycriu_pkg=$(dpkg-query -W -f='${Version}' python3-pycriu 2>/dev/null || true)
if is_installed python3-pycriu && [[ "$pycriu_pkg" == "$criu_pkg" ]]; then
    say "crit (python3-pycriu $pycriu_pkg) already installed"
else
    say "installing crit (python3-pycriu, the version of criu $criu_pkg)…"
    apt_update
    apt_install "$(matching_version python3-pycriu criu)"
    [[ -x /usr/bin/crit ]] || die "python3-pycriu is installed but /usr/bin/crit is missing"
fi

# ---------------------------------------------------------------------------------------------
# d. pipe-max-size for CRIU lazy pages: its page server asks for a ~3.35 MB pipe, and without
# CAP_SYS_RESOURCE the kernel refuses anything above fs.pipe-max-size (1 MiB by default).

cur=$(cat /proc/sys/fs/pipe-max-size)
if [[ "$cur" -lt "$PIPE_MAX_SIZE_MIN" ]]; then
    say "raising fs.pipe-max-size from $cur to $PIPE_MAX_SIZE_MIN (CRIU lazy pages)"
    echo "$PIPE_MAX_SIZE_MIN" >/proc/sys/fs/pipe-max-size ||
        die "could not write /proc/sys/fs/pipe-max-size"
fi
sysctl_line="fs.pipe-max-size = $PIPE_MAX_SIZE_MIN"
if [[ -d /etc/sysctl.d ]] && ! grep -qxF "$sysctl_line" "$SYSCTL_FILE" 2>/dev/null; then
    printf '# cryo (scripts/setup.sh): CRIU lazy pages need pipes of ~3.35 MB\n%s\n' \
        "$sysctl_line" >"$SYSCTL_FILE"
fi

# ---------------------------------------------------------------------------------------------
# e. The docker CLI, the client the engine tests drive (this machine image ships one in
# /usr/local/bin; elsewhere Debian trixie's docker-cli, client only, no engine).

if command -v docker >/dev/null 2>&1; then
    say "docker CLI already installed ($(docker --version 2>/dev/null | head -1))"
else
    say "installing the docker CLI (docker-cli from trixie)…"
    apt_update
    apt_install -t trixie docker-cli
fi

# ---------------------------------------------------------------------------------------------
# f. Python test tools for integration/engine: pytest (Debian's python3-pytest) and docker-py 7.1.0
# (from PyPI: Debian 12's python3-docker is 5.0, too old).

if python3 -c 'import pytest' >/dev/null 2>&1; then
    say "pytest already installed"
else
    say "installing pytest…"
    apt_update
    apt_install python3-pytest
fi
if [[ "$(python3 -c 'import docker; print(docker.__version__)' 2>/dev/null || true)" == 7.1.0 ]]; then
    say "docker-py 7.1.0 already installed"
else
    say "installing docker-py 7.1.0 from PyPI…"
    python3 -m pip --version >/dev/null 2>&1 || { apt_update; apt_install python3-pip; }
    # Debian marks its python as externally managed (PEP 668).
    python3 -m pip install -q docker==7.1.0 ||
        python3 -m pip install -q --break-system-packages docker==7.1.0
fi

# ---------------------------------------------------------------------------------------------
# g. openssl, whose s_client the TLS tests use (integration/engine/test_tls.py: TLS 1.1 and CBC
# suites refused, TLS 1.2 accepted).

if command -v openssl >/dev/null 2>&1; then
    say "openssl already installed"
else
    say "installing openssl…"
    apt_update
    apt_install openssl
fi

# ---------------------------------------------------------------------------------------------
# h. A real registry for the pull/push tests (integration/engine/test_registry.py): Debian's
# docker-registry (distribution 2.8) and skopeo to seed it. The package's postinst starts its own
# service on :5000; the tests start their own registry on a free port, so that service is stopped
# and disabled (it would only hold a port).

registry_missing=()
for p in docker-registry skopeo; do
    is_installed "$p" || registry_missing+=("$p")
done
if [[ ${#registry_missing[@]} -eq 0 ]]; then
    say "docker-registry and skopeo already installed"
else
    say "installing ${registry_missing[*]}…"
    apt_update
    # policy-rc.d 101: the postinst may not start the service (no systemd here either way).
    policy=/usr/sbin/policy-rc.d
    had_policy=0
    [[ -e "$policy" ]] && had_policy=1
    [[ "$had_policy" -eq 1 ]] || printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    apt_install "${registry_missing[@]}" || { [[ "$had_policy" -eq 1 ]] || rm -f "$policy"; exit 1; }
    [[ "$had_policy" -eq 1 ]] || rm -f "$policy"
fi
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
    say "stopping Debian's docker-registry service (tests run their own registry)"
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi

# ---------------------------------------------------------------------------------------------
# i. docker-compose (installed with the bookworm packages above) runs on /usr/bin/python3 and needs
# Debian's docker-py 5.0: a docker-py 7 that pip put into that same python would shadow it, and
# Compose 1.29 fails on it. Say so now rather than in the compose test.

if ! compose_out=$(docker-compose version 2>&1); then
    printf '%s\n' "$compose_out" >&2
    die "docker-compose is installed but does not run (see above): if pip installed docker-py 7 into /usr/bin/python3, Compose 1.29 picks it up instead of Debian's python3-docker 5.0"
fi
say "$(head -1 <<<"$compose_out")"

# ---------------------------------------------------------------------------------------------

command -v swift >/dev/null 2>&1 ||
    say "warning: no 'swift' in PATH; a Swift 6 toolchain is needed to build cryo (not installed by this script)"

end_time=$(date +%s.%N)
say "done in $(awk -v a="$start_time" -v b="$end_time" 'BEGIN { printf "%.1f", b - a }') s: CRIU $v, $(runc --version | head -1), $(podman --version)"
