import CryoArchive
import CryoImages
import CryoLinux
import FoundationEssentials
import Glibc

/// Checkpoints as OCI images (CRI-O's form, `CheckpointImage`): packed here for a push, and
/// restored from a pulled layer through the archive import, so every check of an import
/// (member names and types, limits, cryo's digest list) applies to an image as well.
extension Engine {
    /// Packs checkpoint `name` of container `ref` as a checkpoint image: the layer is the
    /// checkpoint's export archive, uncompressed (a tar whose root holds `checkpoint/`,
    /// `config.dump`, `spec.dump`, …, so its digest is also its diff_id), with CRI-O's and
    /// checkpointctl's annotations. Returns the image and its scratch directory
    /// (`discardPacked` removes it).
    public func packCheckpointImage(_ ref: String, name: String, dir: String?, engineVersion: String) async throws -> (PackedImage, String) {
        let c = try resolve(ref)
        let file = try await exportCheckpoint(ref, name: name, dir: dir, compression: .none)
        let scratch = FS.parent(file)
        do {
            let packed = try await blocking { () throws -> PackedImage in
                let facts = Self.checkpointImageFacts(c, engineVersion: engineVersion)
                let digest = try Digest.of(file: file)
                var st = stat()
                guard stat(file, &st) == 0 else { throw SyscallError("stat", file) }
                let layer = Descriptor(mediaType: MediaType.ociLayer, digest: digest.description, size: Int64(st.st_size))
                let config = try CheckpointImage.config(layerDiffID: digest, architecture: facts.hostArch,
                                                        created: Self.utcTime(Int(time(nil))))
                let manifest = try CheckpointImage.manifest(config: config, layer: layer, annotations: CheckpointImage.annotations(facts))
                return PackedImage(config: config, layers: [.init(digest: digest, size: layer.size, path: file)], manifest: manifest)
            }
            return (packed, scratch)
        } catch {
            discardExport(file)
            throw CryoFailure("packing checkpoint \(name) of container \(c.name) as an image", cause: error)
        }
    }

    /// Restores a checkpoint image as a new container: `fetch` puts its verified layer into
    /// the scratch directory it is given and returns the file's path; the layer is then
    /// imported as a checkpoint archive. The scratch directory is removed either way.
    public func restoreCheckpointImage(_ opts: CheckpointImportOptions,
                                       fetch: @Sendable (_ scratch: String) async throws -> String) async throws -> CheckpointImportReport {
        let scratch = try await archiveScratch("imports")
        return try await removingAfter(scratch) {
            let layer = try await fetch(scratch)
            return try await importCheckpoint(archive: layer, opts)
        }
    }

    /// What cryo knows of container `c` and this host, for the image's annotations. Reads
    /// files and runs `criu --version`: pool only.
    nonisolated static func checkpointImageFacts(_ c: StoredContainer, engineVersion: String) -> CheckpointImage.Facts {
        var u = utsname()
        uname(&u)
        let kernel = withUnsafePointer(to: u.release) { $0.withMemoryRebound(to: CChar.self, capacity: 65) { String(cString: $0) } }
        let osRelease = Self.osRelease()
        return CheckpointImage.Facts(
            containerName: c.name, rawImageName: c.imageRef, rootfsImageName: c.imageRef, rootfsImageID: c.imageID,
            criuVersion: try? MigrationChecks.criuVersion(criu: try MigrationChecks.criuPath()),
            engineVersion: engineVersion, runtimeName: "cryo-runtime", hostArch: "amd64", hostKernel: kernel,
            cgroupVersion: FS.exists("/sys/fs/cgroup/cgroup.controllers") ? "v2" : "v1",
            distributionName: osRelease["ID"], distributionVersion: osRelease["VERSION_ID"])
    }

    /// /etc/os-release's KEY=value lines (quotes removed); empty if it cannot be read.
    nonisolated static func osRelease() -> [String: String] {
        guard let text = try? FS.readString("/etc/os-release") else { return [:] }
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            var v = line[line.index(after: eq)...]
            if v.count >= 2, let f = v.first, f == "\"" || f == "'", v.last == f { v = v.dropFirst().dropLast() }
            out[String(line[..<eq])] = String(v)
        }
        return out
    }
}
