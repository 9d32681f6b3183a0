import CShim
import CryoLinux
import CryoOCI
import FoundationEssentials
import Glibc

public struct ExecOptions: Sendable {
    public var detach = false
    public var pidFile: String?
    public var consoleSocket: String?
    public var preserveFDs: Int32 = 0
    public init() {}
}

extension Runtime {
    /// Starts `process` inside a running container. Returns the child's pid;
    /// the caller waits for it unless detached.
    public func exec(id: String, process: Spec.Process, _ o: ExecOptions) throws -> pid_t {
        let r = try store.load(id)
        let status = store.status(r)
        guard status == .running else { throw RuntimeError.wrongState(id, status, "cannot exec in a container that is not running") }
        let pidfd = try sys(cryo_pidfd_open(r.initPid, 0), "pidfd_open", "pid \(r.initPid)")
        defer { close(pidfd) }
        // pid and time namespaces take effect for children: switch ours first.
        // (After a CRIU restore the container has its own time namespace.)
        try sys(cryo_setns(pidfd, NamespaceKind.pid.cloneFlag), "setns(pid)", "pid \(r.initPid)")
        if r.restored { try sys(cryo_setns(pidfd, NamespaceKind.time.cloneFlag), "setns(time)", "pid \(r.initPid)") }

        let (parentSock, childSock) = try PacketSocket.pair()
        defer { parentSock.close() }
        var console: Int32 = -1
        if process.terminal == true {
            guard let cs = o.consoleSocket else { childSock.close(); throw CryoFailure(.invalidArgument, "--tty needs --console-socket") }
            console = try connectUnixStream(path: cs)
        }
        defer { if console >= 0 { close(console) } }
        let n = o.preserveFDs
        var fds: [Int32] = [0, 1, 2]
        for i in 0..<n { fds.append(3 + i) }
        fds.append(childSock.fd)
        fds.append(pidfd)
        if console >= 0 { fds.append(console) }
        let exe = try Spawn.openSelfExe()
        defer { close(exe) }
        let p = try Spawn.spawn(path: "/proc/self/exe", exeFD: exe, args: ["cryo-runtime", "init", "\(3 + n)"], env: [], fds: fds)
        childSock.close()
        if p.pidfd >= 0 { close(p.pidfd) }
        do {
            try Cgroup(path: r.cgroupPath).addProcess(p.pid)
            var spec = r.spec
            spec.process = process
            var config = InitConfig(mode: .exec, id: id, bundle: r.bundle, rootfs: r.rootfs, spec: spec)
            config.pidFD = 4 + n
            config.consoleFD = console >= 0 ? 5 + n : -1
            config.preserveFDs = n
            config.seccompProgram = try spec.linux?.seccomp.flatMap { try SeccompCache.program(for: $0, root: store.root) }
                .map { Data($0).base64EncodedString() }
            try parentSock.sendJSON(config)
            try parentSock.sendJSON(InitMessage(.placed))
            guard let m = try parentSock.receiveJSON(InitMessage.self) else {
                throw CryoFailure(.internal, "exec process (pid \(p.pid)) exited during setup")
            }
            if m.kind == .error { throw m.failure(step: "exec") }
            // A failed execve after "ready" is reported by the socket carrying an error.
            if let m2 = try parentSock.receiveJSON(InitMessage.self), m2.kind == .error {
                throw m2.failure(step: "exec")
            }
        } catch {
            Glibc.kill(p.pid, SIGKILL)
            _ = try? Spawn.wait(pid: p.pid)
            throw error
        }
        if let pf = o.pidFile { try FS.atomicWrite(FS.absolute(pf), Array("\(p.pid)".utf8), mode: 0o644, durable: false) }
        return p.pid
    }
}
