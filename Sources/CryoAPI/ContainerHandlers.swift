import CryoCheckpointInspect
import CryoEngine
import CryoHTTP
import CryoLinux
import FoundationEssentials

extension APIServer {
    func listContainers(_ ex: HTTPExchange) async throws {
        let q = ex.request.query
        let filter = try ContainerListFilter.parse(q["filters"])
        // A status filter asks for stopped containers too, as in dockerd.
        var list = await engine.list(all: flag(q, "all") || !filter.statuses.isEmpty)
        if !filter.isEmpty { list = list.filter(filter.matches) }
        if let l = q["limit"], let n = Int(l), n > 0 { list = Array(list.prefix(n)) }
        guard flag(q, "size") else { return try await json(ex, 200, list.map(Present.summary)) }
        let sizes = Dictionary(try await engine.imageSummaries().map { ($0.Id, $0.Size) }) { a, _ in a }
        try await json(ex, 200, try await engine.containerUsage(list, imageSize: sizes).map(Present.summary))
    }

    func createContainer(_ ex: HTTPExchange) async throws {
        guard let req = try await body(ex, CreateContainerRequest.self) else { return }
        let name = ex.request.query["name"].flatMap { $0.isEmpty ? nil : $0 }
        let id = try await engine.create(name: name, req)
        try await json(ex, 201, CreateContainerResponse(Id: id, Warnings: []))
    }

    func inspectContainer(_ ex: HTTPExchange, _ ref: String) async throws {
        let c = try await engine.container(ref)
        try await json(ex, 200, Present.inspect(c, logPath: engine.paths.log(c.id), sandbox: engine.paths.netns(c.id), volumeRoot: engine.volumes.root))
    }

    func startContainer(_ ex: HTTPExchange, _ ref: String) async throws {
        let q = ex.request.query
        let checkpoint = q["checkpoint"].flatMap { $0.isEmpty ? nil : $0 }
        let dir = try checkpointDir(q["checkpoint-dir"])
        try await engine.start(ref, checkpoint: checkpoint, checkpointDir: dir)
        try await noContent(ex)
    }

    /// Stop and restart's `t`: an integer (seconds; -1 waits for ever). Absent or empty: the
    /// container's StopTimeout.
    func stopTimeout(_ q: [String: String]) throws -> Int? {
        guard let v = q["t"], !v.isEmpty else { return nil }
        guard let n = Int(v) else { throw EngineError.bad("invalid value for t: \"\(v)\" is not an integer") }
        return n
    }

    func stopContainer(_ ex: HTTPExchange, _ ref: String) async throws {
        let q = ex.request.query
        let t = try stopTimeout(q)
        let sig = try q["signal"].map { v -> Int32 in
            guard let s = Signals.parse(v) else { throw EngineError.bad("invalid signal: \(v)") }
            return s
        }
        try await engine.stop(ref, timeout: t, signal: sig)
        try await noContent(ex)
    }

    func restartContainer(_ ex: HTTPExchange, _ ref: String) async throws {
        let t = try stopTimeout(ex.request.query)
        try await engine.restart(ref, timeout: t)
        try await noContent(ex)
    }

    func killContainer(_ ex: HTTPExchange, _ ref: String) async throws {
        let v = ex.request.query["signal"] ?? "KILL"
        guard let sig = Signals.parse(v.isEmpty ? "KILL" : v) else { throw EngineError.bad("invalid signal: \(v)") }
        try await engine.kill(ref, signal: sig)
        try await noContent(ex)
    }

    func removeContainer(_ ex: HTTPExchange, _ ref: String) async throws {
        try await engine.remove(ref, force: flag(ex.request.query, "force"), removeVolumes: flag(ex.request.query, "v"))
        try await noContent(ex)
    }

    func resizeContainer(_ ex: HTTPExchange, _ ref: String) async throws {
        let c = try await engine.container(ref)
        let (h, w) = try size(ex.request.query)
        if c.isRunning {
            try? await MonitorLink.resize(path: engine.paths.monitorSocket(c.id), height: h, width: w, group: engine.group)
        }
        try await ex.respond(status: 200)
    }

    func size(_ q: [String: String]) throws -> (UInt16, UInt16) {
        guard let h = q["h"].flatMap({ UInt16($0) }), let w = q["w"].flatMap({ UInt16($0) }) else {
            throw EngineError.bad("resize needs h and w as numbers")
        }
        return (h, w)
    }

    // MARK: checkpoints

    /// CheckpointDir is a client-chosen path: the engine checks it (`CheckpointDirectory`).
    func checkpointDir(_ raw: String?) throws -> String? {
        guard let d = raw, !d.isEmpty else { return nil }
        return d
    }

    func createCheckpoint(_ ex: HTTPExchange, _ ref: String) async throws {
        guard let req = try await body(ex, CheckpointCreateRequest.self) else { return }
        guard let name = req.CheckpointID, !name.isEmpty else { throw EngineError.bad("CheckpointID: a checkpoint name is required") }
        let dir = try checkpointDir(req.CheckpointDir)
        let tcp = flag(ex.request.query, "tcp-established")
        let report = try await engine.checkpoint(ref, name: name, dir: dir, exit: req.Exit ?? true, tcpEstablished: tcp)
        try await json(ex, 201, report)
    }

    func listCheckpoints(_ ex: HTTPExchange, _ ref: String) async throws {
        let names = try await engine.checkpoints(ref, dir: try checkpointDir(ex.request.query["dir"]))
        try await json(ex, 200, names.map { CheckpointSummary(Name: $0) })
    }

    /// cryo extension: `GET /containers/{id}/checkpoints/{name}/inspect[?env=1][&dir=…]`, with a
    /// memory search: `search=STRING` or `search-regex=RE`, `context=N` bytes (0…256, default 32).
    func inspectCheckpoint(_ ex: HTTPExchange, _ ref: String, _ name: String) async throws {
        let q = ex.request.query
        let env: Bool
        switch q["env"] ?? "" {
        case "", "0", "false": env = false
        case "1", "true": env = true
        case let v: throw EngineError.bad("env: expected 1 or 0, got \(v)")
        }
        let search: MemorySearch.Pattern?
        switch (q["search"], q["search-regex"]) {
        case (nil, nil): search = nil
        case (let s?, nil): search = .literal(s)
        case (nil, let r?): search = .regex(r)
        case (_?, _?): throw EngineError.bad("search and search-regex: give one of them")
        }
        var context = 32
        if let c = q["context"] {
            guard let n = Int(c), (0...MemorySearch.maxContext).contains(n) else {
                throw EngineError.bad("context: expected a number of bytes from 0 to \(MemorySearch.maxContext), got \(c)")
            }
            context = n
        }
        try await json(ex, 200, try await engine.inspectCheckpoint(ref, name: name, dir: try checkpointDir(q["dir"]), environment: env,
                                                                   search: search, context: context))
    }

    func removeCheckpoint(_ ex: HTTPExchange, _ ref: String, _ name: String) async throws {
        try await engine.removeCheckpoint(ref, name: name, dir: try checkpointDir(ex.request.query["dir"]))
        try await noContent(ex)
    }

    // MARK: exec

    func createExec(_ ex: HTTPExchange, _ ref: String) async throws {
        guard let req = try await body(ex, ExecCreateRequest.self) else { return }
        let id = try await engine.createExec(ref, req)
        struct R: Encodable { var Id: String }
        try await json(ex, 201, R(Id: id))
    }

    func inspectExec(_ ex: HTTPExchange, _ id: String) async throws {
        let e = try await engine.exec(id)
        let cmd = e.request.Cmd ?? []
        try await json(ex, 200, ExecInspect(
            ID: e.id, Running: e.running, ExitCode: .init(e.exitCode), ContainerID: e.containerID, Pid: e.pid,
            OpenStdin: e.request.AttachStdin ?? false, OpenStdout: e.request.AttachStdout ?? false,
            OpenStderr: e.request.AttachStderr ?? false,
            ProcessConfig: .init(tty: e.request.Tty ?? false, entrypoint: cmd.first ?? "", arguments: Array(cmd.dropFirst()),
                                 user: e.request.User ?? "")))
    }

    func resizeExec(_ ex: HTTPExchange, _ id: String) async throws {
        let (h, w) = try size(ex.request.query)
        try await engine.resizeExec(id, height: h, width: w)
        try await ex.respond(status: 200)
    }
}
