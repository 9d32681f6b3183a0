import CryoImages
import CryoLinux
import FoundationEssentials
import Glibc
import NIOPosix

/// `docker pull`: manifest (or index, then this platform's manifest), config, the layers the
/// store lacks (three at a time, each verified by digest while it downloads, then unpacked
/// and checked against the config's diff_ids), and one commit into the store at the end.
/// Until that commit nothing is stored, so a pull that fails at any point leaves no image and
/// no layer behind, and the next pull starts clean.
public struct ImagePuller: Sendable {
    public let client: RegistryClient
    public let store: ImageStore
    /// Concurrent layer downloads (dockerd's default is 3).
    public var parallelDownloads = 3

    public init(client: RegistryClient, store: ImageStore) {
        self.client = client
        self.store = store
    }

    /// Pulls `ref` (with a tag or a digest). `emit` receives the progress stream; it is first
    /// called once the manifest is known, so a failure before (auth, unknown tag, registry
    /// down) reaches the caller before any line was sent.
    @discardableResult
    public func pull(_ ref: RegistryReference, platform: PlatformSpec = .host, credentials: RegistryCredentials,
                     emit: @escaping @Sendable (ProgressLine) async throws -> Void) async throws -> StoredImage {
        let (session, top) = try await openManifest(ref, credentials: credentials)
        if let wanted = ref.digest, wanted != top.digest {
            throw CryoFailure(.invalidArgument, "the registry sent manifest \(top.digest) for \(ref.familiarName)@\(wanted): digests differ; nothing was stored")
        }
        var manifestBytes = top.bytes
        var manifestDigest = top.digest
        let manifest: ImageManifest
        switch try ManifestDocument.decode(top.bytes, contentType: top.contentType) {
        case .image(let m):
            manifest = m
        case .index(let index):
            (manifest, manifestBytes, manifestDigest) = try await session.platformManifest(
                from: index, platform: platform, inWhat: "the index", outcome: "nothing was stored")
        }
        guard MediaType.isAcceptableBlob(manifest.config.mediaType) else {
            throw CryoFailure(.unsupported, "\(ref.familiarName) is not a container image: its config has media type \(manifest.config.mediaType)")
        }
        for layer in manifest.layers {
            if MediaType.isForeignLayer(layer.mediaType) {
                throw CryoFailure(.unsupported, "layer \(layer.digest) is a foreign layer (\(layer.mediaType)) whose content is not in the registry: cryo cannot pull it")
            }
            guard MediaType.isAcceptableBlob(layer.mediaType) else {
                throw CryoFailure(.unsupported, "layer \(layer.digest) has media type \(layer.mediaType), which is not an image layer")
            }
        }
        let configDigest = try Digest(manifest.config.digest)
        let layerDigests = try manifest.layers.map { try Digest($0.digest) }

        // The stream starts here: from now on a failure is an error line.
        try await emit(.message("Pulling from \(ref.path)", id: ref.tag ?? ref.familiarDigested))
        let configBytes = try await session.fetchSmallBlob(configDigest)
        let config: ImageConfiguration
        do { config = try JSONDecoder().decode(ImageConfiguration.self, from: Data(configBytes)) } catch {
            throw CryoFailure(.invalidArgument, "the image config \(configDigest) is not a valid image config: \(error)")
        }
        let diffIDs = try config.rootfs.diff_ids.map { try Digest($0) }
        guard diffIDs.count == layerDigests.count else {
            throw CryoFailure(.invalidArgument, "layers from manifest don't match image configuration: \(layerDigests.count) layers in the manifest, \(diffIDs.count) diff_ids in the config")
        }

        let staging = try store.makePullStaging()
        defer { try? FS.removeAll(staging) }
        var layerDirs: [Digest: String] = [:]
        let complete = store.hasConfig(configDigest) && diffIDs.allSatisfy(store.hasLayer)
        if !complete {
            layerDirs = try await fetchLayers(session, manifest.layers, layerDigests, diffIDs, staging: staging, emit: emit)
        }
        let store = self.store
        let tag = ref.familiarTagged
        let repoDigest = ref.familiarName + "@" + top.digest.description
        let stored = (manifestDigest, manifestBytes)
        let dirs = layerDirs
        let commit = try await NIOThreadPool.singleton.runIfActive {
            try store.commitPull(config: configBytes, layers: diffIDs, layerDirs: dirs, manifest: stored,
                                 tag: tag, repoDigest: repoDigest)
        }
        try await emit(.message("Digest: \(top.digest)"))
        let shown = ref.familiarTagged ?? ref.familiarDigested ?? ref.familiarName
        try await emit(.message(commit.upToDate ? "Status: Image is up to date for \(shown)" : "Status: Downloaded newer image for \(shown)"))
        return commit.image
    }

    /// The session and top manifest of `ref`, from the first of its pull hosts that serves it:
    /// a mirror that cannot be reached, refuses or lacks the manifest is passed over (as in
    /// dockerd); only the image's own registry's failure is the pull's, naming what the mirrors said.
    func openManifest(_ ref: RegistryReference, credentials: RegistryCredentials) async throws
        -> (RegistrySession, (bytes: [UInt8], contentType: String?, digest: Digest)) {
        let hosts = client.settings.pullHosts(for: ref)
        var passed: [String] = []
        for host in hosts.dropLast() {
            do {
                let s = try await client.session(for: ref, credentials: credentials, host: host)
                return (s, try await s.fetchManifest(ref.manifestReference))
            } catch {
                passed.append("mirror \(host): \(error)")
            }
        }
        do {
            let s = try await client.session(for: ref, credentials: credentials)
            return (s, try await s.fetchManifest(ref.manifestReference))
        } catch let e as CryoFailure where !passed.isEmpty {
            throw CryoFailure(e.code, e.message + " (tried first: " + passed.joined(separator: "; ") + ")", cause: e.cause)
        }
    }

    /// Downloads and unpacks the layers the store lacks, `parallelDownloads` at a time.
    /// Returns the unpacked directories (in `staging`) by diff_id.
    func fetchLayers(_ session: RegistrySession, _ descriptors: [Descriptor], _ digests: [Digest], _ diffIDs: [Digest],
                     staging: String, emit: @escaping @Sendable (ProgressLine) async throws -> Void) async throws -> [Digest: String] {
        struct Job: Sendable { var digest: Digest; var diffID: Digest; var size: Int64; var shortID: String }
        var jobs: [Job] = []
        var seen = Set<Digest>()
        for (i, d) in digests.enumerated() where seen.insert(d).inserted {
            let shortID = String(d.hex.prefix(12))
            if store.hasLayer(diffIDs[i]) || jobs.contains(where: { $0.diffID == diffIDs[i] }) {
                try await emit(.update("Already exists", id: shortID))
            } else {
                try await emit(.update("Pulling fs layer", id: shortID))
                jobs.append(Job(digest: d, diffID: diffIDs[i], size: descriptors[i].size, shortID: shortID))
            }
        }
        for job in jobs.dropFirst(parallelDownloads) { try await emit(.update("Waiting", id: job.shortID)) }
        let store = self.store
        return try await withThrowingTaskGroup(of: (Digest, String).self) { group in
            var next = 0
            func start() {
                guard next < jobs.count else { return }
                let job = jobs[next]
                next += 1
                group.addTask {
                    let blob = staging + "/" + job.digest.hex + ".blob"
                    let dir = staging + "/layer-" + job.diffID.hex
                    try await BlobDownload.fetch(session, digest: job.digest, size: job.size, to: blob, shortID: job.shortID, emit: emit)
                    try await emit(.bytes("Extracting", id: job.shortID, current: job.size, total: job.size))
                    try await NIOThreadPool.singleton.runIfActive {
                        defer { unlink(blob) }
                        do {
                            try store.unpackPulledLayer(blob, into: dir, diffID: job.diffID)
                        } catch {
                            throw CryoFailure("unpacking layer \(job.digest) failed", cause: error)
                        }
                    }
                    try await emit(.update("Pull complete", id: job.shortID))
                    return (job.diffID, dir)
                }
            }
            for _ in 0..<parallelDownloads { start() }
            var dirs: [Digest: String] = [:]
            while let (diffID, dir) = try await group.next() {
                dirs[diffID] = dir
                start()
            }
            return dirs
        }
    }
}
