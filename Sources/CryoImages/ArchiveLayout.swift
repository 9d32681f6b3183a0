import CryoLinux
import FoundationEssentials
import Glibc

/// An image found in an unpacked image archive, every blob already verified.
struct PendingImage {
    struct Layer {
        var file: String
        var diffID: Digest
    }
    var id: Digest
    var configFile: String
    var manifestDigest: Digest?
    var manifestFile: String?
    var repoTags: [String]
    var layers: [Layer]
}

/// Reads the two archive layouts an image can come in, from a directory the archive
/// was extracted into, and verifies every digest on the way:
/// - `docker save`: `manifest.json` = [{Config, RepoTags, Layers}]; layers are checked
///   against the config's `rootfs.diff_ids` (and against their file name when it is
///   `blobs/sha256/<hex>`);
/// - OCI image layout: `index.json` → manifests → config and layer descriptors, each
///   blob checked against its descriptor (digest and size), layers also against diff_ids.
enum ArchiveLayout {
    /// `decompressLimit`: the most bytes a layer may decompress to while its diff_id is computed.
    static func read(_ dir: String, decompressLimit: Int64? = nil) throws -> [PendingImage] {
        // lstat, not stat: a symlink named manifest.json is refused by `member`, never followed.
        if FS.lstatMode(dir + "/manifest.json") != nil { return try readDocker(dir, decompressLimit: decompressLimit) }
        if FS.lstatMode(dir + "/index.json") != nil { return try readOCI(dir, decompressLimit: decompressLimit) }
        throw CryoFailure(.invalidArchive, "not an image archive: it has neither manifest.json (docker save) nor index.json (OCI image layout)")
    }

    // MARK: docker save

    static func readDocker(_ dir: String, decompressLimit: Int64?) throws -> [PendingImage] {
        let entries = try decode([DockerArchiveManifestEntry].self, try member(dir, "manifest.json"), what: "manifest.json")
        if entries.isEmpty { throw CryoFailure(.invalidArchive, "manifest.json lists no images") }
        return try entries.map { entry in
            let configFile = try member(dir, entry.Config)
            let id = try Digest.of(file: configFile)
            if let named = digestInName(entry.Config) { try named.verify(id, what: "config \(entry.Config)") }
            let config = try decode(ImageConfiguration.self, configFile, what: "config \(entry.Config)")
            let layers = try verifiedLayers(dir, names: entry.Layers, blobDigests: entry.Layers.map(digestInName),
                                            sizes: nil, config: config, decompressLimit: decompressLimit)
            return PendingImage(id: id, configFile: configFile, manifestDigest: nil, manifestFile: nil,
                                repoTags: entry.RepoTags ?? [], layers: layers)
        }
    }

    // MARK: OCI layout

    static func readOCI(_ dir: String, decompressLimit: Int64?) throws -> [PendingImage] {
        let index = try decode(ImageIndex.self, try member(dir, "index.json"), what: "index.json")
        var out: [PendingImage] = []
        try collect(index.manifests, dir: dir, into: &out, depth: 0, decompressLimit: decompressLimit)
        if out.isEmpty { throw CryoFailure(.invalidArchive, "index.json lists no image manifests") }
        return out
    }

    static func collect(_ descriptors: [Descriptor], dir: String, into out: inout [PendingImage], depth: Int,
                        decompressLimit: Int64? = nil) throws {
        for d in descriptors {
            let file = try verifiedBlob(dir, d, what: "manifest \(d.digest)")
            if d.mediaType == MediaType.ociIndex || d.mediaType == MediaType.dockerManifestList {
                guard depth < 4 else { throw CryoFailure(.invalidArchive, "image indexes nested too deeply") }
                let nested = try decode(ImageIndex.self, file, what: "index \(d.digest)")
                try collect(nested.manifests, dir: dir, into: &out, depth: depth + 1, decompressLimit: decompressLimit)
                continue
            }
            if let p = d.platform, p.os != "linux" { continue }
            let manifest = try decode(ImageManifest.self, file, what: "manifest \(d.digest)")
            let configFile = try verifiedBlob(dir, manifest.config, what: "config \(manifest.config.digest)")
            let config = try decode(ImageConfiguration.self, configFile, what: "config \(manifest.config.digest)")
            let names = manifest.layers.map { "blobs/sha256/" + ((try? Digest($0.digest).hex) ?? $0.digest) }
            let layers = try verifiedLayers(dir, names: names, blobDigests: try manifest.layers.map { try Digest($0.digest) },
                                            sizes: manifest.layers.map(\.size), config: config,
                                            labels: manifest.layers.map(\.digest), decompressLimit: decompressLimit)
            var tags: [String] = []
            if let name = d.annotations?["io.containerd.image.name"] ?? d.annotations?["org.opencontainers.image.ref.name"] {
                tags.append(name)
            }
            out.append(PendingImage(id: try Digest(manifest.config.digest), configFile: configFile,
                                    manifestDigest: try Digest(d.digest), manifestFile: file,
                                    repoTags: tags, layers: layers))
        }
    }

    // MARK: verification

    static func verifiedBlob(_ dir: String, _ d: Descriptor, what: String) throws -> String {
        let digest = try Digest(d.digest)
        let file = try member(dir, "blobs/sha256/" + digest.hex)
        try checkSize(file, d.size, what: what)
        try digest.verify(try Digest.of(file: file), what: what)
        return file
    }

    static func verifiedLayers(_ dir: String, names: [String], blobDigests: [Digest?], sizes: [Int64]?,
                               config: ImageConfiguration, labels: [String]? = nil,
                               decompressLimit: Int64? = nil) throws -> [PendingImage.Layer] {
        let diffIDs = try config.rootfs.diff_ids.map { try Digest($0) }
        guard diffIDs.count == names.count else {
            throw CryoFailure(.invalidArchive, "image has \(names.count) layers but its config lists \(diffIDs.count) diff_ids")
        }
        return try names.indices.map { i in
            let label = labels?[i] ?? names[i]
            let file = try member(dir, names[i])
            if let size = sizes?[i] { try checkSize(file, size, what: "layer \(label)") }
            if let blob = blobDigests[i] { try blob.verify(try Digest.of(file: file), what: "layer \(label)") }
            let diffID = try ArchiveReader.uncompressedDigest(file, limit: decompressLimit)
            try diffIDs[i].verify(diffID, what: "layer \(label)")
            return PendingImage.Layer(file: file, diffID: diffID)
        }
    }

    static func checkSize(_ file: String, _ expected: Int64, what: String) throws {
        var st = stat()
        try sys(stat(file, &st), "stat", file)
        if Int64(st.st_size) != expected {
            throw CryoFailure(.invalidArchive, "size mismatch for \(what): expected \(expected) bytes, got \(st.st_size)")
        }
    }

    /// A path named inside the archive, kept inside it ("../x" cannot escape).
    static func member(_ dir: String, _ name: String) throws -> String {
        let path = try FS.secureJoin(root: dir, name)
        guard FS.lstatMode(path) == S_IFREG else {
            throw CryoFailure(.invalidArchive, "image archive: \"\(name)\" is missing or not a regular file")
        }
        return path
    }

    /// "blobs/sha256/<hex>" or "<hex>.json" → the digest the name promises.
    static func digestInName(_ name: String) -> Digest? {
        if name.hasPrefix("blobs/sha256/") { return try? Digest("sha256:" + name.dropFirst("blobs/sha256/".count)) }
        if name.hasSuffix(".json"), !name.contains("/") { return try? Digest("sha256:" + name.dropLast(5)) }
        return nil
    }

    static func decode<T: Decodable>(_ type: T.Type, _ file: String, what: String) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(FS.readBytes(file)))
        } catch let e as SyscallError {
            throw e
        } catch {
            throw CryoFailure(.invalidArchive, "cannot parse \(what): \(error)")
        }
    }
}
