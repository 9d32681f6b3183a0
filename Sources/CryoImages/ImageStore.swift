import CryoLinux
import FoundationEssentials
import Glibc

/// Images on disk, rooted at a directory (for cryod: /var/lib/cryo/images):
///
///     images.json                 references → image (atomically replaced)
///     configs/sha256/<hex>        image config JSON; <hex> is the image id
///     manifests/sha256/<hex>      OCI manifests (images loaded from an OCI layout)
///     layers/sha256/<diff_id>/    each layer unpacked once, whiteouts in overlayfs form
///     tmp/                        staging for loads in progress
///
/// Writers take an exclusive `flock` on `lock`, so two processes do not race.
public struct ImageStore: Sendable {
    public let root: String
    /// Bytes one load or import may extract to disk (archive and layers together); nil:
    /// the free space of the store's filesystem less a reserve (see `ExtractionBudget`).
    public var maxExtractedBytes: Int64?

    public init(root: String, maxExtractedBytes: Int64? = nil) throws {
        self.root = FS.absolute(root)
        self.maxExtractedBytes = maxExtractedBytes
        for dir in ["configs/sha256", "manifests/sha256", "layers/sha256", "tmp"] {
            try FS.mkdirAll(self.root + "/" + dir, mode: 0o700)
        }
    }

    public func layerPath(_ diffID: Digest) -> String { root + "/layers/sha256/" + diffID.hex }
    public func configPath(_ id: Digest) -> String { root + "/configs/sha256/" + id.hex }

    // MARK: - reading

    public func list() throws -> [StoredImage] { try readIndex().images }

    /// Finds an image by reference ("busybox", "busybox:1.36"), by full id
    /// ("sha256:<hex>") or by an unambiguous id prefix (with or without "sha256:").
    public func inspect(_ ref: String) throws -> StoredImage {
        try resolve(ref, in: readIndex()).image
    }

    public func config(of image: StoredImage) throws -> ImageConfiguration {
        try JSONDecoder().decode(ImageConfiguration.self, from: Data(FS.readBytes(configPath(image.id))))
    }

    // MARK: - load

    /// Loads a `docker save` archive or an OCI image-layout archive (any compression).
    /// Every blob is verified before anything is stored; on any failure nothing new is kept.
    /// Returns the images loaded, each with the tags the archive gave it.
    @discardableResult
    public func load(archive: String) throws -> [StoredImage] {
        let lock = try takeLock()
        defer { close(lock) }
        let staging = try makeStaging()
        defer { try? FS.removeAll(staging) }
        let unpacked = staging + "/archive"
        try FS.mkdirAll(unpacked)
        let budget = extractionBudget()
        try ImageFailure.reading { try ArchiveReader.extract(archive, into: unpacked, budget: budget) }

        let pending = try ImageFailure.reading { try ArchiveLayout.read(unpacked, decompressLimit: budget.limit) }   // verifies every digest
        var created: [String] = []
        do {
            for image in pending {
                for layer in image.layers {
                    if try storeLayer(layer.file, diffID: layer.diffID, budget: budget) { created.append(layerPath(layer.diffID)) }
                }
                let cfg = configPath(image.id)
                if !FS.exists(cfg) {
                    try FS.atomicWrite(cfg, FS.readBytes(image.configFile), mode: 0o600)
                    created.append(cfg)
                }
                if let m = image.manifestDigest, let file = image.manifestFile {
                    let path = root + "/manifests/sha256/" + m.hex
                    if !FS.exists(path) {
                        try FS.atomicWrite(path, FS.readBytes(file), mode: 0o600)
                        created.append(path)
                    }
                }
            }
            var index = try readIndex()
            var result: [StoredImage] = []
            for image in pending {
                let tags = image.repoTags.map(ImageReference.normalize)
                for i in index.images.indices { index.images[i].repoTags.removeAll { tags.contains($0) } }
                if let i = index.images.firstIndex(where: { $0.id == image.id }) {
                    for t in tags where !index.images[i].repoTags.contains(t) { index.images[i].repoTags.append(t) }
                    if index.images[i].manifestDigest == nil { index.images[i].manifestDigest = image.manifestDigest }
                    // Report what this archive loaded (its tags), not every tag the image has.
                    var loaded = index.images[i]
                    loaded.repoTags = tags
                    result.append(loaded)
                } else {
                    let s = StoredImage(id: image.id, manifestDigest: image.manifestDigest, repoTags: tags,
                                        layers: image.layers.map(\.diffID))
                    index.images.append(s)
                    result.append(s)
                }
            }
            try writeIndex(index)
            return result
        } catch {
            for path in created.reversed() { try? FS.removeAll(path) }
            throw error
        }
    }

    // MARK: - import

    /// Imports a root filesystem tarball (plain, gzip, zstd, xz, bzip2 — anything libarchive
    /// reads) as a one-layer image, like `docker import`. The layer is stored by its diff_id
    /// (sha256 of the uncompressed tar stream) and shared with any image that has the same
    /// layer; the generated config has os linux, architecture amd64, `rootfs.diff_ids`,
    /// `created` = now and `changes` as its `config` (no Cmd unless given). With a nil
    /// `reference` the image is untagged (`<none>`, found by id). The archive is copied into
    /// staging first, so the stored layer is exactly what was hashed. The same extraction
    /// checks as `load` apply (no `..`, no absolute paths, nothing written through a
    /// symlink); on any failure nothing new is kept.
    @discardableResult
    public func importRootfs(archive: String, reference: String? = nil,
                             changes: ImageConfiguration.Config? = nil) throws -> StoredImage {
        let lock = try takeLock()
        defer { close(lock) }
        let staging = try makeStaging()
        defer { try? FS.removeAll(staging) }
        let copy = staging + "/rootfs.tar"
        try copyFile(archive, to: copy)
        let budget = extractionBudget()
        let diffID = try ArchiveReader.uncompressedDigest(copy, limit: budget.limit)

        var created: [String] = []
        do {
            if try storeLayer(copy, diffID: diffID, budget: budget) { created.append(layerPath(diffID)) }
            let config = ImageConfiguration(created: Self.rfc3339(time(nil)), config: changes,
                                            rootfs: .init(diff_ids: [diffID.description]))
            let enc = JSONEncoder()
            enc.outputFormatting = .sortedKeys
            let bytes = Array(try enc.encode(config))
            let id = Digest.of(bytes)
            let cfg = configPath(id)
            if !FS.exists(cfg) {
                try FS.atomicWrite(cfg, bytes, mode: 0o600)
                created.append(cfg)
            }
            var index = try readIndex()
            let tags = reference.map { [ImageReference.normalize($0)] } ?? []
            for i in index.images.indices { index.images[i].repoTags.removeAll { tags.contains($0) } }
            let result: StoredImage
            if let i = index.images.firstIndex(where: { $0.id == id }) {
                for t in tags where !index.images[i].repoTags.contains(t) { index.images[i].repoTags.append(t) }
                result = index.images[i]
            } else {
                result = StoredImage(id: id, manifestDigest: nil, repoTags: tags, layers: [diffID])
                index.images.append(result)
            }
            try writeIndex(index)
            return result
        } catch {
            for path in created.reversed() { try? FS.removeAll(path) }
            throw error
        }
    }

    // MARK: - overlay

    /// The image's layer directories for an overlay mount, top-most layer first (the order
    /// overlayfs wants in `lowerdir=`; see `OverlayRootfs.mount`).
    public func lowerDirs(for image: StoredImage) -> [String] {
        image.layers.reversed().map(layerPath)
    }

    // MARK: - remove

    public struct Removal: Sendable, Equatable {
        public var untagged: [String] = []
        public var deletedImage: Digest?
        public var deletedLayers: [Digest] = []
    }

    /// Removes a reference. If it was the image's last reference, or `ref` names the
    /// image by id, the image is deleted, and then every layer no image uses any more.
    @discardableResult
    public func remove(_ ref: String) throws -> Removal {
        let lock = try takeLock()
        defer { close(lock) }
        var index = try readIndex()
        let (image, tag) = try resolve(ref, in: index)
        var removal = Removal()
        guard let i = index.images.firstIndex(where: { $0.id == image.id }) else { return removal }
        if let tag, index.images[i].repoTags.count > 1 {
            index.images[i].repoTags.removeAll { $0 == tag }
            removal.untagged = [tag]
            try writeIndex(index)
            return removal
        }
        removal.untagged = index.images[i].repoTags
        removal.deletedImage = image.id
        index.images.remove(at: i)
        try writeIndex(index)   // the record goes first: a crash later only leaves garbage
        if !index.images.contains(where: { $0.id == image.id }) {
            try? FS.removeAll(configPath(image.id))
        }
        if let m = image.manifestDigest { try? FS.removeAll(root + "/manifests/sha256/" + m.hex) }
        let used = Set(index.images.flatMap(\.layers))
        for layer in Set(image.layers) where !used.contains(layer) {
            try FS.removeAll(layerPath(layer))
            removal.deletedLayers.append(layer)
        }
        removal.deletedLayers.sort { $0.hex < $1.hex }
        return removal
    }

    // MARK: - internals

    /// The budget of one load or import.
    public func extractionBudget() -> ExtractionBudget {
        if let n = maxExtractedBytes { return ExtractionBudget(limit: n, source: "the image extraction limit (--image-extract-limit)") }
        return ExtractionBudget.freeSpace(at: root)
    }

    /// Unpacks a layer archive into `layers/sha256/<diffID>` unless it is there already
    /// (via a temp dir renamed into place). Returns true if it created the directory.
    func storeLayer(_ file: String, diffID: Digest, budget: ExtractionBudget? = nil) throws -> Bool {
        let final = layerPath(diffID)
        if FS.isDirectory(final) { return false }
        let tmp = root + "/layers/sha256/.tmp-" + diffID.hex + "-\(getpid())"
        try? FS.removeAll(tmp)
        try FS.mkdirAll(tmp)
        do {
            try ImageFailure.reading { try ArchiveReader.extract(file, into: tmp, options: [.overlayWhiteouts, .owners], budget: budget) }
            try sys(rename(tmp, final), "rename", "\(tmp) -> \(final)")
        } catch {
            try? FS.removeAll(tmp)
            throw error
        }
        return true
    }

    func copyFile(_ from: String, to: String) throws {
        let src = try sys(open(from, O_RDONLY | O_CLOEXEC), "open", from)
        defer { close(src) }
        var st = stat()
        try sys(fstat(src, &st), "fstat", from)
        guard st.st_mode & S_IFMT == S_IFREG else { throw CryoFailure(.invalidArchive, "\(from) is not a regular file") }
        let dst = try sys(open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600), "open", to)
        defer { close(dst) }
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buf.withUnsafeMutableBytes { b in retryingEINTR { read(src, b.baseAddress, b.count) } }
            if n < 0 { throw SyscallError("read", from) }
            if n == 0 { return }
            try FS.writeAll(fd: dst, Array(buf[0..<n]), what: to)
        }
    }

    /// "2026-01-02T03:04:05Z"
    static func rfc3339(_ t: time_t) -> String {
        var t = t
        var tm = Glibc.tm()
        gmtime_r(&t, &tm)
        var buf = [CChar](repeating: 0, count: 32)
        let n = strftime(&buf, buf.count, "%Y-%m-%dT%H:%M:%SZ", &tm)
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func resolve(_ ref: String, in index: StoreIndexFile) throws -> (image: StoredImage, tag: String?) {
        let tag = ImageReference.normalize(ref)
        if let image = index.images.first(where: { $0.repoTags.contains(tag) }) { return (image, tag) }
        // "name@sha256:…": a pulled image by its registry digest.
        if ref.contains("@"), let image = index.images.first(where: { $0.repoDigests?.contains(ref) ?? false }) { return (image, nil) }
        var prefix = ref
        if prefix.hasPrefix("sha256:") { prefix.removeFirst(7) }
        let isHex = !prefix.isEmpty && prefix.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
        if isHex {
            let matches = index.images.filter { $0.id.hex.hasPrefix(prefix) }
            if matches.count == 1 { return (matches[0], nil) }
            if matches.count > 1 {
                throw CryoFailure(.invalidArchive, "image id prefix \"\(ref)\" is ambiguous: it matches \(matches.count) images")
            }
        }
        throw CryoFailure(.invalidArchive, "no such image: \(ref)")
    }

    func readIndex() throws -> StoreIndexFile {
        let path = root + "/images.json"
        guard FS.exists(path) else { return StoreIndexFile() }
        return try JSONDecoder().decode(StoreIndexFile.self, from: Data(FS.readBytes(path)))
    }

    func writeIndex(_ index: StoreIndexFile) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FS.atomicWrite(root + "/images.json", Array(try enc.encode(index)), mode: 0o600)
    }

    func takeLock() throws -> Int32 {
        let path = root + "/lock"
        let fd = try sys(open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600), "open", path)
        if retryingEINTR({ flock(fd, LOCK_EX) }) != 0 {
            let err = SyscallError("flock", path)
            close(fd)
            throw err
        }
        return fd
    }

    func makeStaging() throws -> String {
        var template = Array((root + "/tmp/load.XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buf -> String? in
            guard let p = mkdtemp(buf.baseAddress!) else { return nil }
            return String(cString: p)
        }
        guard let made else { throw SyscallError("mkdtemp", root + "/tmp") }
        return made
    }
}
