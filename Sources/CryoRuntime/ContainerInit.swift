import CShim
import CryoLinux
import CryoOCI
import FoundationEssentials
import Glibc

/// The container side: runs as `cryo-runtime init <sync-fd>` in a freshly
/// exec'd, single-threaded process (see InitProtocol.swift for the sequence).
public enum ContainerInit {
    public static func main(syncFD: Int32) -> Never {
        // Until execve, /proc/<pid>/exe of this process is the runtime binary on
        // the host: non-dumpable keeps container processes (without
        // CAP_SYS_PTRACE) from opening it (the CVE-2019-5736 route). execve of
        // the container's program makes the process dumpable again.
        _ = cryo_prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        let sock = PacketSocket(fd: syncFD)
        do {
            Trace.mark("init: started")
            guard let config = try sock.receiveJSON(InitConfig.self) else { exit(1) }
            Trace.mark("init: config decoded")
            switch config.mode {
            case .create: try create(config, sock)
            case .exec: try exec(config, sock)
            }
        } catch {
            // Before `ready` the runtime reads this; after it (create: the runtime
            // has exited) stderr is the only place left.
            if (try? sock.sendJSON(InitMessage.failed(error))) == nil {
                FS.writeStderr("cryo-runtime init: \(error)")
            }
            exit(1)
        }
    }

    /// The profile compiled by the runtime (SeccompCache), if it sent one.
    static func compiledSeccomp(_ c: InitConfig) throws -> [UInt8]? {
        guard let b64 = c.seccompProgram else { return nil }
        guard let d = Data(base64Encoded: b64) else { throw CryoFailure(.internal, "init: the compiled seccomp program is not base64") }
        return Array(d)
    }

    static func waitFor(_ kind: InitMessage.Kind, _ sock: PacketSocket) throws {
        guard let m = try sock.receiveJSON(InitMessage.self) else { throw CryoFailure(.internal, "runtime went away") }
        guard m.kind == kind else { throw CryoFailure(.internal, "init: expected \(kind), got \(m.kind)") }
    }

    static func create(_ c: InitConfig, _ sock: PacketSocket) throws -> Never {
        let spec = c.spec
        guard let process = spec.process else { throw CryoFailure(.invalidArgument, "config.json has no process") }
        let program = try compiledSeccomp(c)
        // Into the v1 cgroups first, while the host's cgroupfs is still in view.
        try Cgroup.placeCallingThread(tasksFiles: c.selfPlaceTasksFiles)
        // Join namespaces given by path first (the others were created by clone3).
        for ns in c.joinNamespaces {
            guard let kind = NamespaceKind(rawValue: ns.type), let path = ns.path, kind != .pid else { continue }
            let fd = try sys(open(path, O_RDONLY | O_CLOEXEC), "open", path)
            try sys(cryo_setns(fd, kind.cloneFlag), "setns(\(kind.rawValue))", path)
            close(fd)
        }
        // Our own session, so the container is not tied to the caller's terminal.
        _ = setsid()
        // And our own session keyring, not the host's (keys are not namespaced).
        try SessionKeyring.join(SessionKeyring.name(container: c.id))
        if let h = spec.hostname, !h.isEmpty {
            try sys(sethostname(h, h.utf8.count), "sethostname", h)
        }
        let hasMountNS = (spec.linux?.namespaces ?? []).contains { $0.type == "mount" }
        let rootfs = RootfsBuilder(rootfs: c.rootfs, spec: spec, cgroup: Cgroup(path: c.cgroupPath))
        if hasMountNS { try rootfs.prepare() }
        // Once the runtime has put us in the container cgroup, the new cgroup
        // namespace is rooted there, and cgroupfs mounts show that root.
        if c.awaitPlaced { try waitFor(.placed, sock) }
        if c.newCgroupNamespace { try sys(cryo_unshare(NamespaceKind.cgroup.cloneFlag), "unshare(CLONE_NEWCGROUP)") }
        if hasMountNS { try rootfs.mountCgroupsDeferred() }
        Trace.mark("init: mounts done")

        try sock.sendJSON(InitMessage(.hooks))
        try waitFor(.go, sock)
        for h in spec.hooks?.createContainer ?? [] {
            try Hooks.run(h, kind: "createContainer", state: HookState(ociVersion: spec.ociVersion, id: c.id, status: "created", pid: getpid(), bundle: c.bundle, annotations: spec.annotations))
        }
        if hasMountNS {
            try rootfs.pivot(noPivot: c.noPivot)
            try rootfs.finishAfterPivot()
        } else {
            try sys(chroot(c.rootfs), "chroot", c.rootfs)
        }
        try reopenDevNull()
        for (key, value) in spec.linux?.sysctl ?? [:] {
            try FS.write("/proc/sys/" + key.replacingOccurrences(of: ".", with: "/"), value)
        }
        if process.terminal == true {
            guard c.consoleFD >= 0 else { throw CryoFailure(.invalidArgument, "process.terminal is true but no --console-socket was given") }
            try Console.setUp(consoleSocket: c.consoleFD, bindConsole: true, size: process.consoleSize)
        }
        try ProcessSetup.applyOOMScoreAdj(process.oomScoreAdj)
        try ProcessSetup.applyRlimits(process.rlimits ?? [])
        // What can fail at exec time is checked now, while `create` can still report it.
        try ProcessSetup.checkExecutable(process)
        Trace.mark("init: pivoted, ready")
        try sock.sendJSON(InitMessage(.ready))

        // Blocks until `start` opens the other end (runc's exec fifo).
        let fifo = open("/proc/self/fd/\(c.fifoFD)", O_WRONLY | O_CLOEXEC)
        if fifo < 0 { throw SyscallError("open", "exec fifo") }
        _ = write(fifo, "0", 1)
        close(fifo)
        close(c.fifoFD)
        sock.close()
        for h in spec.hooks?.startContainer ?? [] {
            try Hooks.run(h, kind: "startContainer", state: HookState(ociVersion: spec.ociVersion, id: c.id, status: "running", pid: getpid(), bundle: c.bundle, annotations: spec.annotations))
        }
        try ProcessSetup.finalizeAndExec(process, seccomp: spec.linux?.seccomp, program: program, preserveFDs: c.preserveFDs)
    }

    static func exec(_ c: InitConfig, _ sock: PacketSocket) throws -> Never {
        guard let process = c.spec.process else { throw CryoFailure(.invalidArgument, "no process to exec") }
        // The runtime already moved pid_for_children (and the time namespace) for us;
        // join the rest in one call through the init's pidfd.
        let flags = [NamespaceKind.mount, .ipc, .uts, .network, .cgroup].reduce(Int32(0)) { $0 | $1.cloneFlag }
        if cryo_setns(c.pidFD, flags) != 0 {
            // Some namespaces may be the host's; join one by one, ignoring the shared ones.
            for k in [NamespaceKind.ipc, .uts, .network, .cgroup, .mount] {
                _ = cryo_setns(c.pidFD, k.cloneFlag)
            }
        }
        close(c.pidFD)
        try waitFor(.placed, sock)
        // A session of its own: needed to take a controlling terminal, and keeps
        // the process away from the caller's job control.
        _ = setsid()
        // The container's session keyring, found by name (the init made it).
        try SessionKeyring.join(SessionKeyring.name(container: c.id))
        if process.terminal == true {
            guard c.consoleFD >= 0 else { throw CryoFailure(.invalidArgument, "process.terminal is true but no --console-socket was given") }
            try Console.setUp(consoleSocket: c.consoleFD, bindConsole: false, size: process.consoleSize)
        }
        try ProcessSetup.applyOOMScoreAdj(process.oomScoreAdj)
        try ProcessSetup.applyRlimits(process.rlimits ?? [])
        try ProcessSetup.checkExecutable(process)
        try sock.sendJSON(InitMessage(.ready))
        // The socket is close-on-exec: the runtime sees EOF when execve succeeds,
        // or the error sent by main() when it fails.
        try ProcessSetup.finalizeAndExec(process, seccomp: c.spec.linux?.seccomp, program: try compiledSeccomp(c), preserveFDs: c.preserveFDs)
    }
}

/// Stdio that is the host's /dev/null is swapped for the container's own
/// /dev/null: CRIU cannot dump an fd on a mount outside the container.
func reopenDevNull() throws {
    for fd: Int32 in 0...2 {
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFCHR,
              cryo_major(UInt64(st.st_rdev)) == 1, cryo_minor(UInt64(st.st_rdev)) == 3 else { continue }
        let null = try sys(open("/dev/null", O_RDWR | O_CLOEXEC), "open", "/dev/null")
        try sys(dup2(null, fd), "dup2", "/dev/null")
        close(null)
    }
}

extension String {
    func replacingOccurrences(of a: Character, with b: Character) -> String {
        String(map { $0 == a ? b : $0 })
    }
}
