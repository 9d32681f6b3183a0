import CryoArchive
import CryoEngine
import CryoHTTP
import CryoLinux
import FoundationEssentials
import Glibc

/// cryo extensions: checkpoints as archives in podman's export layout.
///
/// - `GET /containers/{id}/checkpoints/{name}/export?compress=zstd|gzip|none&dir=` → the archive.
/// - `POST /containers/restore?name=&network=&ip=&ports=` with the archive as the body → 201
///   `{"Id","Name","Verified","Source"}`; `ports` is HostConfig.PortBindings as JSON. With
///   `image=REF` instead of a body, a checkpoint image (CheckpointImageHandlers).
extension APIServer {
    func exportCheckpoint(_ ex: HTTPExchange, _ ref: String, _ name: String) async throws {
        let q = ex.request.query
        let compression: ArchiveCompression
        do { compression = try ArchiveCompression(parsing: q["compress"]) } catch {
            throw CryoFailure("compress", cause: error)
        }
        let file = try await engine.exportCheckpoint(ref, name: name, dir: try checkpointDir(q["dir"]), compression: compression)
        defer { engine.discardExport(file) }
        let type = compression == .none ? "application/x-tar" : (compression == .gzip ? "application/gzip" : "application/zstd")
        try await streamFile(ex, file, contentType: type)
    }

    /// The file's contents as a 200 stream.
    func streamFile(_ ex: HTTPExchange, _ file: String, contentType: String) async throws {
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SyscallError("open", file) }
        defer { close(fd) }
        try await ex.startStream(status: 200, headers: [("Content-Type", contentType)])
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            try await ex.write(Array(buf[0..<n]))
        }
        try await ex.finish()
    }

    func importCheckpoint(_ ex: HTTPExchange) async throws {
        let q = ex.request.query
        if let image = q["image"], !image.isEmpty { return try await restoreCheckpointImage(ex, image: image) }
        let opts = try newContainerOptions(q)
        let file = try await receiveUpload(ex, what: "checkpoint archive")
        defer { unlink(file) }
        let report = try await engine.importCheckpoint(archive: file, opts)
        try await json(ex, 201, report)
    }

    /// `name`, `network`, `ip` and `ports` (HostConfig.PortBindings as JSON) of a new
    /// container made from a checkpoint (import, clone, fork).
    func newContainerOptions(_ q: [String: String]) throws -> CheckpointImportOptions {
        var opts = CheckpointImportOptions()
        opts.name = q["name"].flatMap { $0.isEmpty ? nil : $0 }
        opts.network = q["network"].flatMap { $0.isEmpty ? nil : $0 }
        opts.ip = q["ip"].flatMap { $0.isEmpty ? nil : $0 }
        if let p = q["ports"], !p.isEmpty {
            do { opts.portBindings = try JSONDecoder().decode([String: [PortBinding]?].self, from: Data(p.utf8)) } catch {
                throw EngineError.bad("ports: HostConfig.PortBindings as JSON was expected: \(error)")
            }
        }
        return opts
    }
}
