import CArchive
import CryoLinux
import CryoTestSupport
import Foundation
import Glibc
@testable import CryoImages

/// Builds tar archives with libarchive's writer.
enum Tar {
    enum Kind {
        case file([UInt8])
        case dir
        case symlink(String)
        case hardlink(String)
    }
    struct Entry {
        var path: String
        var kind: Kind
        var mode: UInt32 = 0o644
        static func file(_ path: String, _ text: String, mode: UInt32 = 0o644) -> Entry {
            Entry(path: path, kind: .file(Array(text.utf8)), mode: mode)
        }
        static func bytes(_ path: String, _ bytes: [UInt8], mode: UInt32 = 0o644) -> Entry {
            Entry(path: path, kind: .file(bytes), mode: mode)
        }
        static func dir(_ path: String) -> Entry { Entry(path: path, kind: .dir, mode: 0o755) }
        static func symlink(_ path: String, _ target: String) -> Entry { Entry(path: path, kind: .symlink(target), mode: 0o777) }
        static func hardlink(_ path: String, _ target: String) -> Entry { Entry(path: path, kind: .hardlink(target)) }
    }
    enum Compression { case none, gzip, zstd }

    static func write(_ path: String, _ entries: [Entry], compression: Compression = .none) throws {
        guard let a = archive_write_new() else { throw CryoFailure(.internal, "archive_write_new") }
        defer { archive_write_free(a) }
        archive_write_set_format_pax_restricted(a)
        switch compression {
        case .none: break
        case .gzip: archive_write_add_filter_gzip(a)
        case .zstd: archive_write_add_filter_zstd(a)
        }
        guard archive_write_open_filename(a, path) == ARCHIVE_OK else {
            throw CryoFailure(.internal, "open \(path): \(String(cString: archive_error_string(a)))")
        }
        for e in entries {
            let entry = archive_entry_new()!
            defer { archive_entry_free(entry) }
            archive_entry_copy_pathname(entry, e.path)
            archive_entry_set_perm(entry, e.mode)
            archive_entry_set_mtime(entry, 1_700_000_000, 0)
            var data: [UInt8] = []
            switch e.kind {
            case .file(let b): archive_entry_set_filetype(entry, S_IFREG); data = b
            case .dir: archive_entry_set_filetype(entry, S_IFDIR)
            case .symlink(let t): archive_entry_set_filetype(entry, S_IFLNK); archive_entry_copy_symlink(entry, t)
            case .hardlink(let t): archive_entry_set_filetype(entry, S_IFREG); archive_entry_copy_hardlink(entry, t)
            }
            archive_entry_set_size(entry, la_int64_t(data.count))
            guard archive_write_header(a, entry) >= ARCHIVE_WARN else {
                throw CryoFailure(.internal, "write header \(e.path): \(String(cString: archive_error_string(a)))")
            }
            if !data.isEmpty { _ = data.withUnsafeBytes { archive_write_data(a, $0.baseAddress, $0.count) } }
        }
        guard archive_write_close(a) == ARCHIVE_OK else { throw CryoFailure(.internal, "close \(path)") }
    }

    /// Packs every file under `dir` (regular files, dirs, symlinks) into `path`.
    static func pack(_ dir: String, into path: String) throws {
        try write(path, entries(of: dir))
    }

    /// The entries of a directory tree, modes kept.
    static func entries(of dir: String) throws -> [Entry] {
        var entries: [Entry] = []
        func walk(_ rel: String) throws {
            let full = rel.isEmpty ? dir : dir + "/" + rel
            for name in try FS.listDirectory(full).sorted() {
                let r = rel.isEmpty ? name : rel + "/" + name
                var st = stat()
                try sys(lstat(dir + "/" + r, &st), "lstat", r)
                let mode = UInt32(st.st_mode & 0o7777)
                switch st.st_mode & S_IFMT {
                case S_IFDIR: entries.append(Entry(path: r, kind: .dir, mode: mode)); try walk(r)
                case S_IFLNK: entries.append(.symlink(r, FS.readlink(dir + "/" + r)!))
                default: entries.append(.bytes(r, try FS.readBytes(dir + "/" + r), mode: mode))
                }
            }
        }
        try walk("")
        return entries
    }
}

/// Makes image archives (docker save and OCI layout) from layer tar files.
struct ImageBuilder {
    struct Image {
        var tags: [String]
        var layers: [String]          // layer archive files (any compression)
        var cmd: [String] = ["/bin/sh"]
    }

    static func uncompressedDigest(_ file: String) throws -> Digest { try ArchiveReader.uncompressedDigest(file) }

    static func config(for image: Image) throws -> [UInt8] {
        let cfg = ImageConfiguration(
            created: "2026-01-01T00:00:00Z",
            config: .init(ExposedPorts: ["80/tcp": EmptyObject()], Env: ["PATH=/bin"], Cmd: image.cmd,
                          WorkingDir: "/", Labels: ["test": "yes"]),
            rootfs: .init(diff_ids: try image.layers.map { try uncompressedDigest($0).description }))
        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        return Array(try enc.encode(cfg))
    }

    /// A `docker save`-style archive: <n>/layer.tar, <config hex>.json, manifest.json.
    static func dockerSave(_ images: [Image], to path: String, scratch: TempDir) throws {
        let dir = scratch.at("docker-\(UUID().uuidString)")
        try FS.mkdirAll(dir)
        var manifest: [DockerArchiveManifestEntry] = []
        for image in images {
            let cfg = try config(for: image)
            let cfgName = Digest.of(cfg).hex + ".json"
            try FS.atomicWrite(dir + "/" + cfgName, cfg, durable: false)
            var names: [String] = []
            for layer in image.layers {
                let name = try Digest.of(file: layer).hex + "/layer.tar"
                try FS.mkdirAll(FS.parent(dir + "/" + name))
                try FS.atomicWrite(dir + "/" + name, FS.readBytes(layer), durable: false)
                names.append(name)
            }
            manifest.append(.init(Config: cfgName, RepoTags: image.tags, Layers: names))
        }
        try FS.atomicWrite(dir + "/manifest.json", Array(JSONEncoder().encode(manifest)), durable: false)
        try Tar.pack(dir, into: path)
    }

    /// An OCI image layout archive: oci-layout, index.json, blobs/sha256/*.
    static func ociLayout(_ image: Image, to path: String, scratch: TempDir, mediaType: String = MediaType.ociLayerGzip) throws {
        let dir = scratch.at("oci-\(UUID().uuidString)")
        try FS.mkdirAll(dir + "/blobs/sha256")
        func blob(_ bytes: [UInt8], _ type: String) throws -> Descriptor {
            let d = Digest.of(bytes)
            try FS.atomicWrite(dir + "/blobs/sha256/" + d.hex, bytes, durable: false)
            return Descriptor(mediaType: type, digest: d.description, size: Int64(bytes.count))
        }
        let cfg = try blob(try config(for: image), MediaType.ociConfig)
        let layers = try image.layers.map { try blob(try FS.readBytes($0), mediaType) }
        let manifest = try blob(Array(JSONEncoder().encode(ImageManifest(config: cfg, layers: layers))), MediaType.ociManifest)
        var desc = manifest
        desc.annotations = ["io.containerd.image.name": image.tags.first ?? "", "org.opencontainers.image.ref.name": "latest"]
        try FS.atomicWrite(dir + "/index.json", Array(JSONEncoder().encode(ImageIndex(manifests: [desc]))), durable: false)
        try FS.atomicWrite(dir + "/oci-layout", Array("{\"imageLayoutVersion\":\"1.0.0\"}".utf8), durable: false)
        try Tar.pack(dir, into: path)
    }
}

/// The busybox rootfs of scripts/make-busybox-rootfs.sh (CryoTestSupport builds it once per
/// test process) as tar entries.
enum BusyboxRootfs {
    static let entries: Result<[Tar.Entry], any Error> = Result {
        try Tar.entries(of: Fixtures.busyboxRootfs.get())
    }
}
