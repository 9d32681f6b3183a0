import CryoArchive
import CryoEngine
import CryoHTTP
import CryoLinux
import Glibc

/// `docker cp`'s three requests on `/containers/{id}/archive?path=…`: HEAD (the stat of the
/// path in `X-Docker-Container-Path-Stat`), GET (its tar, with the stat), PUT (a tar
/// unpacked into the directory `path`). The CLI does the source/destination logic; cryod
/// only stats, archives and extracts, every path inside the container (see `Engine+Copy`).
extension APIServer {
    func archivePath(_ ex: HTTPExchange) throws -> String {
        guard let path = ex.request.query["path"], !path.isEmpty else { throw EngineError.bad("path cannot be empty") }
        return path
    }

    func statArchivePath(_ ex: HTTPExchange, _ ref: String) async throws {
        let st = try await engine.statContainerPath(ref, path: try archivePath(ex))
        try await ex.respond(status: 200, headers: [(ContainerPathStat.headerName, try st.headerValue()), ("Content-Type", "application/json")])
    }

    func getArchive(_ ex: HTTPExchange, _ ref: String) async throws {
        let archive = try await engine.archiveContainerPath(ref, path: try archivePath(ex))
        try await ex.startStream(status: 200, headers: [("Content-Type", "application/x-tar"),
                                                       (ContainerPathStat.headerName, try archive.stat.headerValue())])
        do {
            try await archive.stream { try await ex.write($0) }
            try await ex.finish()
        } catch {
            // The head is gone: the only way left to say it failed is to cut the response.
            try? await ex.abort()
        }
    }

    /// The body is stored first (bounded like every upload), then unpacked under the
    /// container's lock: a slow client never holds the lock.
    func putArchive(_ ex: HTTPExchange, _ ref: String) async throws {
        let q = ex.request.query
        let path = try archivePath(ex)
        let noOverwrite = flag(q, "noOverwriteDirNonDir")
        let copyUIDGID = flag(q, "copyUIDGID")
        _ = try await engine.resolve(ref)
        let file = try await receiveUpload(ex, what: "tar archive")
        defer { unlink(file) }
        try await engine.extractToContainer(ref, path: path, archive: file, noOverwriteDirNonDir: noOverwrite, copyUIDGID: copyUIDGID)
        try await ex.respond(status: 200)
    }
}
