import CShim
import CryoLinux
import CryoOCI
import FoundationEssentials
import Glibc

/// A `docker exec` instance: created, then started once.
public struct ExecSession: Sendable {
    public var id: String
    public var containerID: String
    public var request: ExecCreateRequest
    public var running = false
    public var started = false
    public var exitCode: Int32?
    public var pid: Int32 = 0
    /// The pty master of a tty exec, for resize.
    public var ptyMaster: Int32 = -1
}

/// A started exec process whose stdio cryod relays. For a tty, `stdout` is the pty
/// master (read and write) and `stdin`/`stderr` are -1.
public struct ExecProcess: Sendable {
    public var runtimePid: pid_t
    /// The pidfd of `cryo-runtime exec` (owned by `finishExec`, which waits on it).
    public var runtimePidfd: Int32 = -1
    public var stdin: Int32
    public var stdout: Int32
    public var stderr: Int32
    public var tty: Bool
}

extension Engine {
    public func createExec(_ ref: String, _ req: ExecCreateRequest) throws -> String {
        let c = try resolve(ref)
        if let e = StateMachine.check(.exec, status: c.status, id: c.name) { throw e }
        guard let cmd = req.Cmd, !cmd.isEmpty, !cmd[0].isEmpty else { throw EngineError.bad("Cmd: no exec command specified") }
        try CreateValidation.execRequest(req)
        let id = Names.randomID()
        execs[id] = ExecSession(id: id, containerID: c.id, request: req)
        emitContainer("exec_create: " + cmd.joined(separator: " "), c, ["execID": id])
        return id
    }

    public func exec(_ id: String) throws -> ExecSession {
        guard let e = execs[id] else { throw EngineError.noSuchExec(id) }
        return e
    }

    /// Starts the exec through `cryo-runtime exec`, whose exit code is the process's.
    /// Detached: returns nil and nobody waits on stdio.
    ///
    /// The spawn runs under the container's lock (an exec's process appearing in the middle of
    /// a checkpoint made it fail, one during a pause ran frozen); the session itself does not
    /// hold it: a long `docker exec` never blocks a checkpoint, stop or pause.
    public func startExec(_ id: String, detach: Bool, tty ttyOverride: Bool?) async throws -> ExecProcess? {
        guard let session = execs[id] else { throw EngineError.noSuchExec(id) }
        guard !session.started else { throw EngineError.conflict("exec instance \(id) has already been started") }
        let containerID = try resolve(session.containerID).id
        // Taken now, so a second start of the same exec is refused while this one waits.
        execs[id]?.started = true
        do {
            let p = try await withLock(containerID) { try await startExecLocked(id, detach: detach, tty: ttyOverride) }
            if let c = record(containerID) {
                emitContainer("exec_start: " + (session.request.Cmd ?? []).joined(separator: " "), c, ["execID": id])
            }
            return p
        } catch {
            if execs[id]?.running == false && execs[id]?.exitCode == nil { execs[id]?.started = false }
            throw error
        }
    }

    func startExecLocked(_ id: String, detach: Bool, tty ttyOverride: Bool?) async throws -> ExecProcess? {
        guard var session = execs[id] else { throw EngineError.noSuchExec(id) }
        let c = try resolve(session.containerID)
        if let e = StateMachine.check(.exec, status: c.status, id: c.name) { throw e }
        let req = session.request
        let tty = ttyOverride ?? req.Tty ?? false
        let configPath = paths.bundle(c.id) + "/config.json"
        let specBytes = try await blocking { try FS.readBytes(configPath) }
        let spec = try JSONDecoder().decode(Spec.self, from: Data(specBytes))
        var process = spec.process ?? Spec.Process()
        process.args = req.Cmd
        process.terminal = tty
        process.consoleSize = nil
        if let cs = req.ConsoleSize, cs.count == 2, cs[0] > 0, cs[1] > 0 {
            process.consoleSize = Spec.Box(height: UInt(cs[0]), width: UInt(cs[1]))
        }
        if let w = req.WorkingDir, !w.isEmpty { process.cwd = w }
        // `docker exec --privileged`: every capability the host can give (the container's
        // seccomp filter stays, as in Docker).
        if req.Privileged == true {
            let all = try Confinement.capabilities(add: [], drop: [], privileged: true, hostBounding: Confinement.hostBoundingSet())
            process.capabilities = Spec.Capabilities(bounding: all, effective: all, permitted: all)
        }
        process.env = SpecBuilder.environment(request: req.Env, image: process.env, hostname: spec.hostname ?? "", tty: tty)
        if let u = req.User, !u.isEmpty {
            let store = images, rootfs = paths.rootfs(c.id), imageID = c.imageID
            let (passwd, group) = try await blocking { () -> (String, String) in
                let lowers = [rootfs] + ((try? store.inspect(imageID)).map { store.lowerDirs(for: $0) } ?? [])
                return (Self.readFromLayers(lowers, "etc/passwd"), Self.readFromLayers(lowers, "etc/group"))
            }
            process.user = try SpecBuilder.user(u, passwd: passwd, group: group)
        }
        let processFile = paths.containerDir(c.id) + "/exec-\(id).json"
        let processBytes = Array(try JSONEncoder().encode(process))
        try await blocking { try FS.atomicWrite(processFile, processBytes, mode: 0o600, durable: false) }
        session.started = true
        session.running = true
        execs[id] = session
        let binary = runtimeBinary
        let root = paths.runtimeRoot
        let consolePath = paths.monitorSockets + "/exec-\(id.prefix(16)).sock"
        let containerID = c.id
        let detachNow = detach || (req.Detach ?? false)
        do {
            let p = try await blocking { () throws -> ExecProcess in
                // cryo-runtime reads the process file after it starts: removed once it exits.
                var args = ["cryo-runtime", "--root", root, "exec", "--process", processFile]
                if detachNow { args.append("--detach") }
                let null = try sys(open("/dev/null", O_RDWR | O_CLOEXEC), "open", "/dev/null")
                defer { close(null) }
                if tty {
                    let listener = try UnixListener(path: consolePath)
                    defer { listener.close() }
                    args += ["--tty", "--console-socket", consolePath, containerID]
                    let child = try Spawn.spawn(path: binary, args: args, env: MonitorLink.environment, fds: [null, null, null])
                    if detachNow {
                        if child.pidfd >= 0 { close(child.pidfd) }
                        _ = try Spawn.wait(pid: child.pid)
                        unlink(processFile)
                    }
                    let master = try listener.receiveFD(timeoutMs: 10_000)
                    return ExecProcess(runtimePid: child.pid, runtimePidfd: detachNow ? -1 : child.pidfd,
                                       stdin: -1, stdout: master, stderr: -1, tty: true)
                }
                args.append(containerID)
                if detachNow {
                    let child = try Spawn.spawn(path: binary, args: args, env: MonitorLink.environment, fds: [null, null, null])
                    if child.pidfd >= 0 { close(child.pidfd) }
                    let code = try Spawn.wait(pid: child.pid)
                    unlink(processFile)
                    if code != 0 { throw CryoFailure(.internal, "cryo-runtime exec failed with exit code \(code)") }
                    return ExecProcess(runtimePid: 0, stdin: -1, stdout: -1, stderr: -1, tty: false)
                }
                var pin: [Int32] = [0, 0], pout: [Int32] = [0, 0], perr: [Int32] = [0, 0]
                try sys(cryo_pipe2(&pin, O_CLOEXEC), "pipe2")
                try sys(cryo_pipe2(&pout, O_CLOEXEC), "pipe2")
                try sys(cryo_pipe2(&perr, O_CLOEXEC), "pipe2")
                let wantIn = req.AttachStdin ?? false
                let child = try Spawn.spawn(path: binary, args: args, env: MonitorLink.environment,
                                            fds: [wantIn ? pin[0] : null, pout[1], perr[1]])
                close(pin[0]); close(pout[1]); close(perr[1])
                if !wantIn { close(pin[1]) }
                return ExecProcess(runtimePid: child.pid, runtimePidfd: child.pidfd,
                                   stdin: wantIn ? pin[1] : -1, stdout: pout[0], stderr: perr[0], tty: false)
            }
            if detachNow {
                execs[id]?.running = false
                return nil
            }
            execs[id]?.pid = p.runtimePid
            // The relay owns the master (and closes it); resize uses a copy of its own, so it
            // never touches a descriptor number the relay has already given back.
            if p.tty { execs[id]?.ptyMaster = dup(p.stdout) }
            return p
        } catch {
            _ = try? await blocking { unlink(processFile) }
            execs[id]?.running = false
            execs[id]?.exitCode = 126
            throw EngineError.internalError("exec in container \(c.name): \(error)")
        }
    }

    /// Waits for the exec's `cryo-runtime exec` (through the reaper's pidfd poll: no thread
    /// parked) and records its exit code.
    public func finishExec(_ id: String, process p: ExecProcess) async -> Int32 {
        let code = await reaper.wait(pid: p.runtimePid, pidfd: p.runtimePidfd)
        if let c = execs[id]?.containerID {
            let file = paths.containerDir(c) + "/exec-\(id).json"
            _ = try? await blocking { unlink(file) }
        }
        execs[id]?.running = false
        execs[id]?.exitCode = code
        if let cid = execs[id]?.containerID, let c = record(cid) {
            emitContainer("exec_die", c, ["execID": id, "exitCode": String(code)])
        }
        if let m = execs[id]?.ptyMaster, m >= 0 { close(m) }
        execs[id]?.ptyMaster = -1
        return code
    }

    public func resizeExec(_ id: String, height: UInt16, width: UInt16) throws {
        guard let e = execs[id] else { throw EngineError.noSuchExec(id) }
        if e.ptyMaster >= 0 { _ = cryo_set_winsize(e.ptyMaster, height, width) }
    }
}
