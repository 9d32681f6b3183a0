import CryoEngine
import CryoHTTP
import CryoImages
import CryoLinux
import FoundationEssentials
import Glibc

extension APIServer {
    func listImages(_ ex: HTTPExchange) async throws {
        let list = try await engine.imageSummaries()
        try await json(ex, 200, list)
    }

    func inspectImage(_ ex: HTTPExchange, _ ref: String) async throws {
        var image = try await engine.inspectImage(ref)
        // dockerd dropped ContainerConfig in API 1.45, and docker-compose 1.29 (whose docker-py
        // speaks the server's version) then fails every recreate on reading it: cryo keeps it
        // at every version, an extra field that newer clients ignore.
        image.ContainerConfig = image.Config
        try await json(ex, 200, image)
    }

    func removeImage(_ ex: HTTPExchange, _ ref: String) async throws {
        let items = try await engine.removeImage(ref, force: flag(ex.request.query, "force"))
        try await json(ex, 200, items)
    }

    /// `GET /images/{name}/history` → the build steps, newest first.
    func imageHistory(_ ex: HTTPExchange, _ ref: String) async throws {
        try await json(ex, 200, try await engine.imageHistory(ref))
    }

    /// `POST /images/prune?filters=…` → {"ImagesDeleted": [...], "SpaceReclaimed": N}.
    func pruneImages(_ ex: HTTPExchange) async throws {
        let filter = try PruneFilter.parse(ex.request.query["filters"], now: Double(time(nil)), kind: .image)
        try await json(ex, 200, try await engine.pruneImages(filter))
    }

    /// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=` → 201 {"Id"}.
    /// A configuration in the body (docker-py's `conf`) is refused: cryo takes the
    /// container's own.
    func commitContainer(_ ex: HTTPExchange) async throws {
        let q = ex.request.query
        guard let container = q["container"], !container.isEmpty else { throw EngineError.bad("container: the container to commit is required") }
        let raw = try await ex.collectBody(limit: 1 << 20)
        let text = String(decoding: raw, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if !["", "null", "{}"].contains(text) {
            throw EngineError.bad("commit with a configuration in the request body is not supported by cryo: the image takes the container's configuration")
        }
        var o = Engine.CommitOptions(reference: nil)
        if let repo = q["repo"], !repo.isEmpty { o.reference = try Self.tagName(repo: repo, tag: q["tag"]) }
        o.comment = q["comment"] ?? ""
        o.author = q["author"] ?? ""
        o.pause = flag(q, "pause", default: true)
        o.changes = q["changes"].map { [$0] } ?? []
        struct R: Encodable { var Id: String }
        try await json(ex, 201, R(Id: try await engine.commit(container, o)))
    }

    /// `GET /images/{name}/get` and `GET /images/get?names=a&names=b` → the `docker save` tar.
    func saveImages(_ ex: HTTPExchange, _ refs: [String]) async throws {
        let file = try await engine.saveImages(refs)
        defer { engine.discardExport(file) }
        try await streamFile(ex, file, contentType: "application/x-tar")
    }

    /// `GET /containers/{id}/export` → the container's filesystem as a tar.
    func exportContainer(_ ex: HTTPExchange, _ ref: String) async throws {
        let file = try await engine.exportContainer(ref)
        defer { engine.discardExport(file) }
        try await streamFile(ex, file, contentType: "application/x-tar")
    }

    /// `docker load`: the body (chunked from the CLI) is a docker-save or OCI-layout tar.
    func loadImages(_ ex: HTTPExchange) async throws {
        let file = try await receiveUpload(ex, what: "image archive")
        defer { unlink(file) }
        let loaded = try await engine.loadImages(archive: file)
        var out: [UInt8] = []
        for image in loaded {
            let lines = image.repoTags.isEmpty ? ["Loaded image ID: \(image.id)"] : image.repoTags.map { "Loaded image: \($0)" }
            for l in lines {
                out += Array(try JSONEncoder().encode(["stream": l + "\n"])) + [0x0a]
            }
        }
        // A stream, as Docker sends it: docker-py reads a non-chunked body as one JSON value.
        try await ex.startStream(status: 200, headers: [("Content-Type", "application/json")])
        try await ex.write(out)
        try await ex.finish()
    }

    /// `docker pull` (`fromImage`, see RegistryHandlers) or `docker import` (`fromSrc=-`,
    /// the tarball in the body).
    func createImage(_ ex: HTTPExchange) async throws {
        let q = ex.request.query
        if let from = q["fromImage"], !from.isEmpty {
            try await pullImage(ex, from: from)
            return
        }
        guard q["fromSrc"] == "-" else {
            throw EngineError.bad("fromSrc: only \"-\" (the tarball in the request body) is supported")
        }
        var reference: String?
        if let repo = q["repo"], !repo.isEmpty {
            let tag = q["tag"].flatMap { $0.isEmpty ? nil : $0 }
            reference = tag.map { "\(repo):\($0)" } ?? repo
        }
        let file = try await receiveUpload(ex, what: "rootfs tarball")
        defer { unlink(file) }
        let image = try await engine.importImage(archive: file, reference: reference)
        let line = Array(try JSONEncoder().encode(["status": image.id.description])) + [0x0a]
        try await ex.respond(status: 200, headers: [("Content-Type", "application/json")], body: line)
    }

    /// Streams the request body to a private temp file under the image store.
    func receiveUpload(_ ex: HTTPExchange, what: String) async throws -> String {
        let dir = engine.images.root + "/tmp"
        try FS.mkdirAll(dir, mode: 0o700)
        var template = Array((dir + "/upload.XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw SyscallError("mkstemp", dir) }
        let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var size = 0
        // The upload is on disk too: it gets the same limit as what a load may unpack.
        let limit = engine.images.extractionBudget().limit
        do {
            defer { close(fd) }
            for try await chunk in ex.bodyChunks() {
                size += chunk.count
                if size > limit { throw HTTPError.bodyTooLarge(Int(clamping: limit)) }
                try FS.writeAll(fd: fd, chunk, what: "upload \(path)")
            }
        } catch let e as HTTPError {
            unlink(path)
            if case .bodyTooLarge = e { throw e }
            throw CryoFailure("reading the \(what) from the request failed", cause: e)
        } catch {
            // Writing the upload to cryod's own disk failed (ENOSPC, EIO): cryod's failure.
            unlink(path)
            throw CryoFailure(.internal, "storing the \(what) from the request failed", cause: error)
        }
        if size == 0 {
            unlink(path)
            throw EngineError.bad("the request body is empty: send the \(what) as the body")
        }
        return path
    }
}
