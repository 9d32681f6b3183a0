import CryoEngine
import CryoHTTP
import CryoLinux
import CryoMonitor
import FoundationEssentials
import Glibc
import NIOCore

extension APIServer {
    static let multiplexed = "application/vnd.docker.multiplexed-stream"
    static let raw = "application/vnd.docker.raw-stream"

    // MARK: wait

    /// Headers go out at once (docker run waits for them before it starts the
    /// container); the body follows when the condition is met.
    func waitContainer(_ ex: HTTPExchange, _ ref: String) async throws {
        let c = try await engine.container(ref)
        let raw = ex.request.query["condition"] ?? ""
        let condition: Engine.WaitCondition
        if raw.isEmpty { condition = .notRunning } else {
            guard let v = Engine.WaitCondition(rawValue: raw) else {
                throw EngineError.bad("invalid condition: \"\(raw)\" (want not-running, next-exit or removed)")
            }
            condition = v
        }
        try await ex.startStream(status: 200, headers: [("Content-Type", "application/json")])
        let engine = self.engine
        let code: Int32? = await withTaskGroup(of: Int32?.self) { g in
            g.addTask { await engine.wait(c.id, condition: condition) }
            g.addTask { await ex.clientClosed(); return nil }
            let first = await g.next() ?? nil
            g.cancelAll()
            return first
        }
        guard let code else { return }
        let err = (try? await engine.container(c.id)).flatMap { $0.error.isEmpty ? nil : WaitResponse.WaitError(Message: $0.error) }
        let body = try JSONEncoder().encode(WaitResponse(StatusCode: code, Error: err))
        try? await ex.write(Array(body) + [0x0a])
        try? await ex.finish()
    }

    // MARK: logs

    func logs(_ ex: HTTPExchange, _ ref: String) async throws {
        let c = try await engine.container(ref)
        let q = ex.request.query
        var query = LogQuery()
        query.stdout = flag(q, "stdout")
        query.stderr = flag(q, "stderr")
        if !query.stdout && !query.stderr {
            throw EngineError.bad("you must choose at least one stream (stdout=1 and/or stderr=1)")
        }
        query.follow = flag(q, "follow")
        query.timestamps = flag(q, "timestamps")
        if let t = q["tail"], t != "all", !t.isEmpty {
            guard let n = Int(t) else { throw EngineError.bad("invalid value for tail: \"\(t)\"") }
            query.tail = n < 0 ? nil : n
        }
        if let s = q["since"], let v = Double(s), v > 0 { query.since = v }
        if let u = q["until"], let v = Double(u), v > 0 { query.until = v }
        let tty = c.config.Tty ?? false
        let reader = LogReader(path: engine.paths.log(c.id))
        try await ex.startStream(status: 200, headers: [("Content-Type", tty ? Self.raw : Self.multiplexed)])
        var (entries, offset) = reader.read(from: 0, query)
        if let n = query.tail { entries = Array(entries.suffix(n)) }
        try await sendLogs(ex, entries, tty: tty, timestamps: query.timestamps)
        if query.follow {
            while !ex.isClientClosed {
                let running = (try? await engine.container(c.id))?.isRunning ?? false
                let (more, next) = reader.read(from: offset, query)
                offset = next
                if !more.isEmpty {
                    try await sendLogs(ex, more, tty: tty, timestamps: query.timestamps)
                    continue
                }
                if !running { break }
                try? await Task.sleep(nanoseconds: 100_000_000)
            }
        }
        try? await ex.finish()
    }

    func sendLogs(_ ex: HTTPExchange, _ entries: [LogEntry], tty: Bool, timestamps: Bool) async throws {
        guard !entries.isEmpty else { return }
        var out: [UInt8] = []
        for e in entries {
            let text = timestamps ? Array((e.time + " ").utf8) + e.text : e.text
            out += tty ? text : StreamFrame.encode(e.stream, text)
        }
        try await ex.write(out)
    }

    // MARK: attach

    func attachContainer(_ ex: HTTPExchange, _ ref: String) async throws {
        let c = try await engine.container(ref)
        if let e = StateMachine.check(.attach, status: c.status, id: c.name) { throw e }
        let q = ex.request.query
        let tty = c.config.Tty ?? false
        let wantIn = flag(q, "stdin"), wantOut = flag(q, "stdout"), wantErr = flag(q, "stderr")
        let stream = flag(q, "stream")
        let raw = try await ex.hijack(contentType: tty ? Self.raw : Self.multiplexed)
        defer { Task { await raw.close() } }
        if flag(q, "logs") {
            // docker-py loses bytes that share a read with the 101 response (§5).
            try? await Task.sleep(nanoseconds: 50_000_000)
            var query = LogQuery()
            query.stdout = wantOut
            query.stderr = wantErr
            let (entries, _) = LogReader(path: engine.paths.log(c.id)).read(from: 0, query)
            var out: [UInt8] = []
            for e in entries { out += tty ? e.text : StreamFrame.encode(e.stream, e.text) }
            if !out.isEmpty { try? await raw.write(out) }
        }
        guard stream else {
            await raw.closeWrite()
            return
        }
        let current = try await engine.container(c.id)
        let early = !current.isRunning
        if early { await engine.awaitMonitor(c.id) }
        let socket = engine.paths.monitorSocket(c.id)
        let monitor: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            monitor = try await MonitorLink.connect(path: socket, group: engine.group, halfClosure: true)
        } catch {
            if early { await engine.attachedEarly(c.id) }
            await raw.closeWrite()
            return
        }
        var earlyPending = early
        try? await monitor.executeThenClose { inbound, outbound in
            try await outbound.write(MonitorLink.requestLine(MonitorRequest(op: .attach, stdin: wantIn, stdout: wantOut, stderr: wantErr)))
            try await withThrowingTaskGroup(of: Void.self) { g in
                // Client stdin → monitor (raw bytes); EOF half-closes toward the monitor.
                g.addTask {
                    while let bytes = try await raw.read() {
                        if wantIn { try await outbound.write(ByteBuffer(bytes: bytes)) }
                    }
                    if wantIn { outbound.finish() }
                }
                // Monitor frames → client (framed, or raw for a tty).
                var decoder = StreamFrame.Decoder()
                var sawOK = false
                for try await buf in inbound {
                    var bytes = Array(buf.readableBytesView)
                    if !sawOK {
                        guard let nl = bytes.firstIndex(of: 0x0a) else { continue }
                        bytes = Array(bytes[(nl + 1)...])
                        sawOK = true
                        if earlyPending { await self.engine.attachedEarly(c.id); earlyPending = false }
                    }
                    decoder.feed(bytes)
                    var out: [UInt8] = []
                    while let (kind, payload) = decoder.next() { out += tty ? payload : StreamFrame.encode(kind, payload) }
                    if !out.isEmpty { try await raw.write(out) }
                }
                // The container exited: end our output, then drain the client's stdin
                // (closing with unread bytes would reset the connection, §5).
                await raw.closeWrite()
                g.addTask { try await Task.sleep(nanoseconds: 2_000_000_000) }
                _ = try? await g.next()
                await raw.close()
                g.cancelAll()
            }
        }
        if earlyPending { await engine.attachedEarly(c.id) }
    }

    // MARK: exec start

    func startExec(_ ex: HTTPExchange, _ id: String) async throws {
        let req = try await body(ex, ExecStartRequest.self, emptyOK: true) ?? ExecStartRequest()
        let session = try await engine.exec(id)
        let detach = req.Detach ?? false
        guard let p = try await engine.startExec(id, detach: detach, tty: req.Tty) else {
            try await ex.respond(status: 200)
            return
        }
        let tty = p.tty
        let stream: RawStream
        do {
            stream = try await ex.hijack(contentType: tty ? Self.raw : Self.multiplexed)
        } catch {
            for fd in [p.stdin, p.stdout, p.stderr] where fd >= 0 { close(fd) }
            _ = await engine.finishExec(id, process: p)
            throw error
        }
        let engine = self.engine
        let group = engine.group
        let wantOut = session.request.AttachStdout ?? true
        let wantErr = session.request.AttachStderr ?? true
        let wantIn = session.request.AttachStdin ?? false
        // Every copy runs on NIO's event loops (PipeRelay): an attached exec session parks no
        // thread, however long its process lives.
        await withTaskGroup(of: Void.self) { g in
            // Client → process stdin (for a tty, a copy of the pty master).
            let inFD: Int32 = tty ? (wantIn ? dup(p.stdout) : -1) : p.stdin
            if inFD >= 0 {
                if wantIn {
                    g.addTask {
                        await PipeRelay.feed(fd: inFD, group: group) { try? await stream.read() }
                    }
                } else {
                    close(inFD)
                }
            }
            let outputs: [(Int32, StreamKind, Bool)] = [(p.stdout, .stdout, wantOut), (p.stderr, .stderr, wantErr)]
            await withTaskGroup(of: Void.self) { readers in
                for (fd, kind, want) in outputs where fd >= 0 {
                    readers.addTask {
                        await PipeRelay.drain(fd: fd, group: group) { chunk in
                            if want { try? await stream.write(tty ? chunk : StreamFrame.encode(kind, chunk)) }
                        }
                    }
                }
            }
            _ = await engine.finishExec(id, process: p)
            await stream.closeWrite()
            g.addTask { try? await Task.sleep(nanoseconds: 2_000_000_000) }
            _ = await g.next()
            await stream.close()
            g.cancelAll()
        }
    }
}
