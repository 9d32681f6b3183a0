import CryoLinux
import CryoRuntime
import FoundationEssentials
import Glibc

/// What `checkpoint create` reports: where, how long, and CRIU's own measurements.
public struct CheckpointReport: Codable, Sendable {
    public var name: String
    public var container: String
    public var directory: String
    public var leftRunning: Bool
    /// Whether established TCP connections were dumped (asked for, or by the container's label).
    public var tcpEstablished: Bool
    public var durationMs: Double
    public var bytesWritten: UInt64
    public var criu: CRIUDumpStats?
}

extension Engine {
    /// Where checkpoint `name` of container `id` lives: in the container's own
    /// `checkpoints/`, or in a client-chosen directory checked by `CheckpointDirectory`
    /// (made when `create`). The checkpoint itself must not be a symlink either.
    nonisolated func checkpointPath(_ id: String, name: String, dir: String?, create: Bool = false) throws -> String {
        guard let d = dir, !d.isEmpty else { return paths.checkpoints(id) + "/" + name }
        let target = try CheckpointDirectory.resolve(d, paths: paths, create: create) + "/" + name
        if FS.lstatMode(target) == S_IFLNK {
            throw EngineError.bad("checkpoint \(target) is a symbolic link: refused")
        }
        return target
    }

    /// Docker's `checkpoint create`. The images are written under a temporary name and
    /// renamed into place only when CRIU succeeded, so a failed checkpoint is never
    /// listed; CRIU's failure leaves the container running (the runtime thaws it).
    /// Established TCP connections are included when asked (`?tcp-established=1`) or when
    /// the container has the `io.cryo.checkpoint.tcp-established` label.
    /// `fixedTarget` is the engine's own place for it (fork's temporary checkpoint in the
    /// exec-root), not checked as a client's directory is.
    public func checkpoint(_ ref: String, name: String, dir: String?, exit: Bool, tcpEstablished: Bool = false) async throws -> CheckpointReport {
        let report = try await checkpoint(ref, name: name, dir: dir, exit: exit, tcpEstablished: tcpEstablished, fixedTarget: nil)
        // dockerd's container event for a checkpoint.
        if let c = try? resolve(ref) { emitContainer("checkpoint", c, ["checkpoint": name]) }
        return report
    }

    func checkpoint(_ ref: String, name: String, dir: String?, exit: Bool, tcpEstablished: Bool, fixedTarget: String?) async throws -> CheckpointReport {
        try Names.validateCheckpoint(name)
        if let d = dir, !d.isEmpty, fixedTarget == nil { _ = try CheckpointDirectory.lexicalCheck(d, paths: paths) }
        let id = try resolve(ref).id
        // The health monitor is set aside first: a probe's process must not be in the dump.
        return try await withLock(id) { try await withHealthMonitorPaused(id) {
            let c = try resolve(id)
            if let e = StateMachine.check(.checkpoint, status: c.status, id: c.name) { throw e }
            if c.hostConfig.PidMode == "host" {
                throw EngineError.bad("cannot checkpoint container \(c.name): it shares the host's PID namespace (--pid host), and CRIU can checkpoint only a process tree with a PID namespace of its own")
            }
            let target = try await blocking { () throws -> String in
                let target = try fixedTarget ?? self.checkpointPath(id, name: name, dir: dir, create: true)
                if FS.lstatMode(target) != nil {
                    throw EngineError.conflict("checkpoint \(name) already exists for container \(c.name)")
                }
                return target
            }
            let parent = FS.parent(target)
            let op = PendingOperation(kind: .checkpoint, checkpoint: name, directory: target, leaveRunning: !exit, began: rfc3339Now())
            let temp = op.incompleteDirectory
            let rt = runtime
            let tcpEstablished = CheckpointLabels.includesTCP(requested: tcpEstablished, labels: c.config.Labels)
            let plan = Self.checkpointPlan(c, imagePath: temp, tcpEstablished: tcpEstablished, leaveRunning: !exit)
            let metadata = CheckpointMetadata(
                tcpEstablished: tcpEstablished, network: plan.network,
                address: c.endpoint.map { CheckpointNetwork(network: $0.network, networkID: $0.networkID, ip: $0.ip, ports: $0.ports,
                                                             mac: $0.mac.isEmpty ? nil : $0.mac) },
                volumes: c.volumes.map { Dictionary($0.map { ($0.name, $0.destination) }, uniquingKeysWith: { a, _ in a }) })
            let began = Monotonic.now()
            try await beginOperation(id, op)
            Trace.mark("checkpoint: operation recorded")
            if exit { slots[id]?.expectedExit = .checkpoint }
            do {
                try await blocking {
                    try FS.mkdirAll(parent, mode: 0o700)
                    try? FS.removeAll(temp)
                    try FS.mkdirAll(temp, mode: 0o700)
                    // cryo's own file goes in first: a dump marked complete is a whole checkpoint.
                    try metadata.write(into: temp)
                    FaultPoint.hit("checkpoint-started")   // recorded, nothing frozen yet
                    try rt.checkpoint(id: id, plan: plan)
                    FaultPoint.hit("checkpoint-before-rename")
                    try sys(rename(temp, target), "rename", target)
                    FaultPoint.hit("checkpoint-renamed")
                }
            } catch {
                slots[id]?.expectedExit = nil
                // Keep CRIU's log where the message points; the half images go.
                let kept = paths.containerDir(id) + "/checkpoint-\(name)-failed.log"
                _ = try? await blocking {
                    rename(temp + "/dump.log", kept)
                    try? FS.removeAll(temp)
                }
                endOperation(id)
                let message = "\(error)".replacingOccurrences(of: temp + "/dump.log", with: kept)
                throw EngineError.internalError("checkpoint of container \(c.name) failed, the container keeps running: \(message)")
            }
            endOperation(id)
            let elapsed = began.elapsedMilliseconds
            if exit {
                _ = await waitExit(id, timeout: 30)
                slots[id]?.expectedExit = nil
            }
            let (written, stats) = (try? await blocking { Self.dumpFigures(target) }) ?? (0, nil)
            return CheckpointReport(name: name, container: c.name, directory: target, leftRunning: !exit,
                                    tcpEstablished: tcpEstablished, durationMs: elapsed, bytesWritten: written, criu: stats)
        } }
    }

    /// Bytes of page images and CRIU's stats of the checkpoint in `dir` (read on a pool thread).
    nonisolated static func dumpFigures(_ dir: String) -> (UInt64, CRIUDumpStats?) {
        var written: UInt64 = 0
        for f in (try? FS.listDirectory(dir)) ?? [] where f.hasPrefix("pages-") {
            var st = stat()
            if stat(dir + "/" + f, &st) == 0 { written += UInt64(st.st_size) }
        }
        return (written, (try? FS.readBytes(dir + "/stats-dump")).flatMap(CRIUDumpStats.parse))
    }

    public func checkpoints(_ ref: String, dir: String?) async throws -> [String] {
        let c = try resolve(ref)
        let p = paths
        return try await blocking {
            let base = try dir.flatMap { $0.isEmpty ? nil : try CheckpointDirectory.resolve($0, paths: p, create: false) } ?? p.checkpoints(c.id)
            return ((try? FS.listDirectory(base)) ?? [])
                .filter { !$0.hasPrefix(".") && FS.exists(base + "/" + $0 + "/inventory.img") }
                .sorted()
        }
    }

    public func removeCheckpoint(_ ref: String, name: String, dir: String?) async throws {
        try Names.validateCheckpoint(name)
        let c = try resolve(ref)
        try await blocking {
            let target = try self.checkpointPath(c.id, name: name, dir: dir)
            // Only a checkpoint is removed: a directory with CRIU's inventory in it.
            guard FS.lstatMode(target) == S_IFDIR, FS.lstatMode(target + "/inventory.img") == S_IFREG else {
                throw EngineError(.notFound, "checkpoint \(name) does not exist for container \(c.name)")
            }
            try FS.removeAll(target)
        }
    }
}
