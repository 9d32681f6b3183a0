import CryoArchive
import CryoImages
import CryoLinux
import FoundationEssentials
import Glibc

extension Engine {
    public struct CommitOptions: Sendable {
        /// "name:tag" for the new image (nil: untagged).
        public var reference: String?
        public var comment = ""
        public var author = ""
        /// Freeze the container while its changes are read (docker's default).
        public var pause = true
        /// Dockerfile instructions to apply (`--change`): refused, cryo does not apply them yet.
        public var changes: [String] = []
        public init(reference: String?) { self.reference = reference }
    }

    /// `docker commit`: a new image made of the container's image and one more layer holding
    /// its changes (the overlay upper directory in the OCI layer form, see `LayerTar`), with
    /// the container's configuration (command, environment, user, working directory, labels,
    /// ports) and a history entry. A running container is frozen while its changes are read,
    /// unless `pause` is off. Returns the new image's id.
    public func commit(_ ref: String, _ o: CommitOptions) async throws -> String {
        if let change = o.changes.first(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            throw EngineError.bad("commit --change \"\(change)\": cryo does not apply Dockerfile instructions at commit yet; commit without --change")
        }
        let id = try resolve(ref).id
        return try await withLock(id) {
            let c = try resolve(id)
            let store = images, rt = runtime, p = paths
            let freeze = o.pause && c.status == .running
            let skip = Self.mountedOver(c)
            let made = try await blocking { () throws -> (config: [UInt8], layers: [Digest], dir: String, staging: String) in
                let parent: StoredImage
                do { parent = try store.inspect(c.imageID) } catch { throw EngineError.noSuchImage(c.imageRef) }
                let base = try store.config(of: parent)
                let staging = try store.makePullStaging()
                do {
                    let tar = staging + "/layer.tar"
                    if freeze { try rt.pause(id: id) }
                    let written = Result { try LayerTar.write(upper: p.upper(id), to: tar, skip: skip) }
                    if freeze { try rt.resume(id: id) }
                    let diffID = try written.get()
                    let dir = staging + "/layer"
                    try store.unpackPulledLayer(tar, into: dir, diffID: diffID)
                    unlink(tar)
                    let config = Self.committedConfig(base: base, container: c, diffID: diffID, comment: o.comment, author: o.author)
                    let e = JSONEncoder()
                    e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                    return (Array(try e.encode(config)), parent.layers + [diffID], dir, staging)
                } catch {
                    try? FS.removeAll(staging)
                    throw error
                }
            }
            let imageID = try await removingAfter(made.staging) {
                try await blocking {
                    try store.commitPull(config: made.config, layers: made.layers, layerDirs: [made.layers.last!: made.dir],
                                         manifest: nil, tag: o.reference, repoDigest: nil).image.id.description
                }
            }
            emitContainer("commit", c, ["imageID": imageID])
            return imageID
        }
    }

    /// The new image's configuration: the base image's, with the container's settings over
    /// it, one more layer and one more history step.
    nonisolated static func committedConfig(base: ImageConfiguration, container c: StoredContainer, diffID: Digest,
                                            comment: String, author: String) -> ImageConfiguration {
        var cfg = base
        let now = rfc3339Now()
        cfg.created = now
        if !author.isEmpty { cfg.author = author }
        var inner = base.config ?? ImageConfiguration.Config()
        let k = c.config
        inner.User = k.User ?? inner.User
        inner.Env = k.Env ?? inner.Env
        inner.Entrypoint = k.Entrypoint ?? inner.Entrypoint
        inner.Cmd = k.Cmd ?? inner.Cmd
        inner.WorkingDir = k.WorkingDir ?? inner.WorkingDir
        inner.Labels = k.Labels ?? inner.Labels
        inner.ExposedPorts = k.ExposedPorts ?? inner.ExposedPorts
        inner.StopSignal = k.StopSignal ?? inner.StopSignal
        inner.Healthcheck = k.Healthcheck ?? inner.Healthcheck
        cfg.config = inner
        cfg.rootfs.diff_ids.append(diffID.description)
        let step = ([c.path] + c.args).joined(separator: " ")
        cfg.history = (base.history ?? []) + [.init(created: now, created_by: step, author: author.isEmpty ? nil : author,
                                                     comment: comment.isEmpty ? nil : comment)]
        return cfg
    }
}
