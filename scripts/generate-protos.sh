#!/usr/bin/env bash
# scripts/generate-protos.sh [--check] — regenerate Sources/CRIURPC/rpc.pb.swift, the Swift
# types of CRIU's RPC protocol (the "swrk" socket protocol cryo speaks to `criu swrk`), and
# Sources/CRIUImages/*.pb.swift, the Swift types of CRIU's image files (read by
# `cryo checkpoint inspect`; see "CRIU image protos" below).
#
# Where the proto comes from: CRIU's images/rpc.proto as shipped by Debian in the
# libcriu-dev package of sid (version 4.2.1-1), file usr/include/criu/rpc.proto. The package is
# downloaded with `apt-get download libcriu-dev/sid` and unpacked with `dpkg -x` into a temp
# dir; it is NOT installed. The copy used is kept at scripts/proto/rpc.proto for reference
# (byte-identical to Debian's; not under Sources/, where SwiftPM would complain about an
# unhandled file). It is byte-identical to trixie's 4.1.1 copy: the RPC did not change in 4.2.
# It is a proto2 file WITHOUT a `package` line or swift_prefix option, and protoc-gen-swift
# keeps proto names verbatim (it only prefixes the CamelCased package), so the generated Swift
# types keep CRIU's snake_case names: criu_req, criu_resp, criu_opts, criu_req_type,
# criu_notify, ext_mount_map, inherit_fd, … (enum cases and fields are lowerCamelCase:
# .preDump, .featureCheck, .cgNone, opts.imagesDirFd). proto2 enums are closed Swift enums, and
# `required` fields (criu_req.type, criu_resp.type/.success, …) make serializedData() throw
# when unset.
# The sid source (Suites: sid) is the one scripts/setup.sh adds; run setup.sh first.
#
# Code generator: protoc from Debian (protobuf-compiler, installed if missing) with the
# protoc-gen-swift plugin built from swift-protobuf 1.39.0 — the same version cryo links —
# cloned from the local bare repo /opt/swift-packages/apple/swift-protobuf.git into
# .build-protoc/ (git-ignored scratch space) and built with
# `swift build -c release --product protoc-gen-swift` (a few minutes the first time; reused
# afterwards). Options: --swift_opt=Visibility=Public (the types are used from other modules).
#
# --check: afterwards compile the generated file against swift-protobuf 1.39.0 in Swift 6
# language mode, in a throw-away package under .build-protoc/check.
#
# CRIU image protos: Debian ships no image .proto files, but python3-pycriu (sid, 4.2.1-1) ships
# CRIU's generated pycriu/images/*_pb2.py, and each embeds its .proto file's descriptor. The
# package is downloaded with `apt-get download python3-pycriu/sid` and unpacked (not installed);
# scripts/criu-image-descriptors.py collects the descriptors of CRIU_IMAGE_ROOTS and everything
# they import into a FileDescriptorSet, and protoc (--descriptor_set_in) generates Swift for
# those files only — not for opts.proto (CRIU's custom field options, which crit uses for
# printing) nor google/protobuf/descriptor.proto, which generated code never references. The
# descriptor set is kept at scripts/proto/criu-images.pb (binary FileDescriptorSet) for
# reference. Needs python3-protobuf (a dependency of python3-pycriu) for /usr/bin/python3.
#
# Overridable: SWIFT_PROTOBUF_GIT, SWIFT_PROTOBUF_VERSION, CRIU_DEB (e.g. libcriu-dev=4.2.1-1),
# PYCRIU_DEB (e.g. python3-pycriu=4.2.1-1).
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

SWIFT_PROTOBUF_GIT=${SWIFT_PROTOBUF_GIT:-/opt/swift-packages/apple/swift-protobuf.git}
SWIFT_PROTOBUF_VERSION=${SWIFT_PROTOBUF_VERSION:-1.39.0}
CRIU_DEB=${CRIU_DEB:-libcriu-dev/sid}
PYCRIU_DEB=${PYCRIU_DEB:-python3-pycriu/sid}
# The images cryo reads; their imports come along.
CRIU_IMAGE_ROOTS=(inventory.proto pstree.proto core.proto mm.proto pagemap.proto fdinfo.proto fs.proto mnt.proto utsns.proto stats.proto)

say() { printf 'generate-protos: %s\n' "$*"; }
die() {
    printf 'generate-protos: ERROR: %s\n' "$*" >&2
    exit 1
}

check=0
case "${1:-}" in
"") ;;
--check) check=1 ;;
*)
    printf 'usage: %s [--check]\n' "$0" >&2
    exit 2
    ;;
esac

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
scratch=$repo/.build-protoc
out_dir=$repo/Sources/CRIURPC
proto_dir=$repo/scripts/proto
mkdir -p "$scratch" "$proto_dir" "$out_dir"

tmp=$(mktemp -d)
trap 'rm -rf -- "$tmp"' EXIT
chmod 0755 "$tmp" # apt-get download runs as user _apt when started as root

# --- 1. protoc ---------------------------------------------------------------------------------
if ! command -v protoc >/dev/null 2>&1; then
    [[ "$(id -u)" -eq 0 ]] || die "protoc is missing; install it with: sudo apt-get install protobuf-compiler (or run this script as root)"
    say "installing protobuf-compiler…"
    apt_install_protoc() { apt-get install -y -q --no-install-recommends protobuf-compiler >"$tmp/apt.log" 2>&1; }
    apt_install_protoc ||
        { apt-get -o Acquire::Check-Valid-Until=false -qq update && apt_install_protoc; } || {
        cat "$tmp/apt.log" >&2
        die "could not install protobuf-compiler"
    }
fi
say "using $(protoc --version)"

# --- 2. rpc.proto from Debian's libcriu-dev (sid), without installing it -----------------------
say "downloading $CRIU_DEB…"
(cd "$tmp" && apt-get download -q "$CRIU_DEB" >/dev/null 2>"$tmp/download.err") || {
    cat "$tmp/download.err" >&2
    die "could not download $CRIU_DEB — is the trixie/sid source configured? Run scripts/setup.sh (as root) first"
}
deb=$(find "$tmp" -maxdepth 1 -name 'libcriu-dev_*.deb' -print -quit)
[[ -n "$deb" ]] || die "apt-get download produced no libcriu-dev_*.deb"
deb_version=$(dpkg-deb -f "$deb" Version)
dpkg -x "$deb" "$tmp/root"
proto=$(find "$tmp/root" -path '*/usr/include/criu/rpc.proto' -print -quit)
[[ -n "$proto" ]] || die "usr/include/criu/rpc.proto not found in $(basename "$deb")"
case "$deb_version" in
4.2.*) ;;
*) say "warning: libcriu-dev is $deb_version, not 4.2.x (cryo is written against CRIU 4.2.1)" ;;
esac
if ! cmp -s "$proto" "$proto_dir/rpc.proto"; then
    cp "$proto" "$proto_dir/rpc.proto"
fi
say "rpc.proto from libcriu-dev $deb_version (sha256 $(sha256sum "$proto_dir/rpc.proto" | cut -c1-16)…) -> scripts/proto/rpc.proto"

# --- 3. protoc-gen-swift from swift-protobuf $SWIFT_PROTOBUF_VERSION ---------------------------
src=$scratch/swift-protobuf
if [[ ! -d "$src/.git" ]]; then
    say "cloning swift-protobuf $SWIFT_PROTOBUF_VERSION from $SWIFT_PROTOBUF_GIT…"
    git -c advice.detachedHead=false clone -q --branch "$SWIFT_PROTOBUF_VERSION" "$SWIFT_PROTOBUF_GIT" "$src"
fi
want=$(git -C "$src" rev-parse --verify -q "refs/tags/$SWIFT_PROTOBUF_VERSION^{commit}" ||
    { git -C "$src" fetch -q --tags "$SWIFT_PROTOBUF_GIT" && git -C "$src" rev-parse "refs/tags/$SWIFT_PROTOBUF_VERSION^{commit}"; }) ||
    die "swift-protobuf tag $SWIFT_PROTOBUF_VERSION not found in $SWIFT_PROTOBUF_GIT"
if [[ "$(git -C "$src" rev-parse HEAD)" != "$want" ]]; then
    git -C "$src" -c advice.detachedHead=false checkout -q "$want"
fi
plugin=$src/.build/release/protoc-gen-swift
if [[ ! -x "$plugin" ]] || [[ "$("$plugin" --version 2>/dev/null)" != "protoc-gen-swift $SWIFT_PROTOBUF_VERSION" ]]; then
    say "building protoc-gen-swift $SWIFT_PROTOBUF_VERSION (swift build -c release; takes a few minutes)…"
    (cd "$src" && swift build -c release --product protoc-gen-swift) >"$scratch/protoc-gen-swift-build.log" 2>&1 || {
        tail -30 "$scratch/protoc-gen-swift-build.log" >&2
        die "building protoc-gen-swift failed (full log: $scratch/protoc-gen-swift-build.log)"
    }
fi
say "using $("$plugin" --version)"

# --- 4. generate -------------------------------------------------------------------------------
mkdir -p "$tmp/out"
protoc --plugin=protoc-gen-swift="$plugin" \
    --proto_path="$proto_dir" \
    --swift_out="$tmp/out" \
    --swift_opt=Visibility=Public \
    "$proto_dir/rpc.proto"
[[ -s "$tmp/out/rpc.pb.swift" ]] || die "protoc produced no rpc.pb.swift"
if cmp -s "$tmp/out/rpc.pb.swift" "$out_dir/rpc.pb.swift"; then
    say "Sources/CRIURPC/rpc.pb.swift is up to date"
else
    mv -f "$tmp/out/rpc.pb.swift" "$out_dir/rpc.pb.swift"
    say "wrote Sources/CRIURPC/rpc.pb.swift ($(wc -l <"$out_dir/rpc.pb.swift") lines)"
fi

# --- 4b. CRIU image protos from Debian's python3-pycriu (sid), without installing it ----------
images_out=$repo/Sources/CRIUImages
mkdir -p "$images_out" "$tmp/pycriu"
say "downloading $PYCRIU_DEB…"
(cd "$tmp/pycriu" && apt-get download -q "$PYCRIU_DEB" >/dev/null 2>"$tmp/download-pycriu.err") || {
    cat "$tmp/download-pycriu.err" >&2
    die "could not download $PYCRIU_DEB — is the sid source configured? Run scripts/setup.sh (as root) first"
}
pydeb=$(find "$tmp/pycriu" -maxdepth 1 -name 'python3-pycriu_*.deb' -print -quit)
[[ -n "$pydeb" ]] || die "apt-get download produced no python3-pycriu_*.deb"
pydeb_version=$(dpkg-deb -f "$pydeb" Version)
dpkg -x "$pydeb" "$tmp/pycriu/root"
pycriu_dir=$(dirname "$(find "$tmp/pycriu/root" -type d -path '*/pycriu/images' -print -quit)")
[[ "$pycriu_dir" == */pycriu ]] || die "pycriu/images not found in $(basename "$pydeb")"
/usr/bin/python3 -c 'import google.protobuf' 2>/dev/null ||
    die "/usr/bin/python3 has no google.protobuf; install python3-protobuf"
mapfile -t image_protos < <(/usr/bin/python3 "$repo/scripts/criu-image-descriptors.py" "$(dirname "$pycriu_dir")" \
    "$tmp/criu-images.pb" "${CRIU_IMAGE_ROOTS[@]}")
generate=()
for f in "${image_protos[@]}"; do
    case "$f" in google/* | opts.proto) ;; *) generate+=("$f") ;; esac
done
mkdir -p "$tmp/images-out"
protoc --plugin=protoc-gen-swift="$plugin" \
    --descriptor_set_in="$tmp/criu-images.pb" \
    --swift_out="$tmp/images-out" \
    --swift_opt=Visibility=Public \
    "${generate[@]}"
cp "$tmp/criu-images.pb" "$proto_dir/criu-images.pb"
find "$images_out" -maxdepth 1 -name '*.pb.swift' -delete
cp "$tmp/images-out/"*.pb.swift "$images_out/"
say "CRIU image protos from python3-pycriu $pydeb_version: ${#generate[@]} files -> Sources/CRIUImages/"

# --- 5. optional: compile it in Swift 6 mode against swift-protobuf $SWIFT_PROTOBUF_VERSION ---
if [[ "$check" -eq 1 ]]; then
    chk=$scratch/check
    mkdir -p "$chk/Sources/CRIURPC"
    cat >"$chk/Package.swift" <<EOF
// swift-tools-version:6.0
// Throw-away package written by scripts/generate-protos.sh --check.
import PackageDescription
let package = Package(
    name: "CRIURPCCheck",
    dependencies: [.package(path: "$src")],
    targets: [
        .target(name: "CRIURPC", dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]),
    ],
    swiftLanguageModes: [.v6]
)
EOF
    cp "$out_dir/rpc.pb.swift" "$chk/Sources/CRIURPC/rpc.pb.swift"
    say "compiling rpc.pb.swift in Swift 6 mode (in $chk)…"
    (cd "$chk" && swift build) >"$scratch/check-build.log" 2>&1 || {
        tail -40 "$scratch/check-build.log" >&2
        die "the generated file does not compile (full log: $scratch/check-build.log)"
    }
    if grep -q 'warning:' "$scratch/check-build.log"; then
        say "compiles, with warnings:"
        grep 'warning:' "$scratch/check-build.log" | sort -u >&2
    else
        say "compiles cleanly in Swift 6 mode"
    fi
fi
