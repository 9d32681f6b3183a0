import CRIURPC
import CryoLinux

/// CRIU's requests, assembled from a plan and what the runtime found or prepared — pure
/// functions, so every field is checked by unit tests without root or CRIU.
public enum CRIURequestBuilder {
    /// What the runtime found of the container to dump (its record) and opened for CRIU.
    public struct DumpTarget: Sendable {
        public var initPid: Int32
        public var rootfs: String
        public var imagesDirFD: Int32
        public var workDirFD: Int32
        /// Inode of the network namespace the container joins by path, if any.
        public var networkNamespaceInode: UInt64?
        /// Inode of the pid namespace the container joins by path, if any.
        public var pidNamespaceInode: UInt64?
        /// The v1 freezer CRIU freezes with (none on v2: CRIU finds cgroup.freeze).
        public var freezerDir: String?
        /// `CRIUCgroupYard`'s mounts (nil with cgroups mode ignore).
        public var cgroupYard: String?
        /// `CRIUMounts.forDump` (not used by a pre-dump).
        public var externalMounts: [CRIUMounts.Mapping]
        public init(initPid: Int32, rootfs: String, imagesDirFD: Int32, workDirFD: Int32, networkNamespaceInode: UInt64? = nil,
                    pidNamespaceInode: UInt64? = nil, freezerDir: String? = nil, cgroupYard: String? = nil,
                    externalMounts: [CRIUMounts.Mapping] = []) {
            self.initPid = initPid
            self.rootfs = rootfs
            self.imagesDirFD = imagesDirFD
            self.workDirFD = workDirFD
            self.networkNamespaceInode = networkNamespaceInode
            self.pidNamespaceInode = pidNamespaceInode
            self.freezerDir = freezerDir
            self.cgroupYard = cgroupYard
            self.externalMounts = externalMounts
        }
    }

    /// Where the CRIU worker finds a page-server socket (`PageServer.socket`): after stdio
    /// and the RPC socket.
    public static let pageServerWorkerFD: Int32 = 4

    /// The descriptors of the checkpointing process the CRIU worker must inherit, in order
    /// from its fd 4.
    public static func dumpWorkerFDs(_ plan: CheckpointPlan) -> [Int32] {
        if case .socket(let fd)? = plan.pageServer { return [fd] }
        return []
    }

    public static func dumpLogFile(_ plan: CheckpointPlan) -> String { plan.preDump ? "predump.log" : "dump.log" }

    /// The DUMP (or PRE_DUMP) request for `plan` on `target`.
    public static func dump(_ plan: CheckpointPlan, _ target: DumpTarget) throws -> criu_req {
        try plan.network.check(joinsNetworkNamespace: target.networkNamespaceInode != nil, what: "checkpoint")
        var opts = criu_opts()
        opts.imagesDirFd = target.imagesDirFD
        opts.workDirFd = target.workDirFD
        opts.logLevel = 4
        opts.logFile = dumpLogFile(plan)
        opts.pid = target.initPid
        opts.root = target.rootfs
        applyShared(&opts, network: plan.network, cgroupsMode: plan.cgroupsMode, tcpEstablished: plan.tcpEstablished,
                    extUnixSk: plan.extUnixSk, shellJob: plan.shellJob, fileLocks: plan.fileLocks,
                    autoDedup: plan.autoDedup, lazyPages: plan.lazyPages)
        opts.leaveRunning = plan.tasksKeepRunning
        if let parent = plan.parentPath {
            opts.parentImg = parent
            opts.trackMem = true
        }
        switch plan.pageServer {
        case .address(let host, let port)?:
            var info = criu_page_server_info()
            info.address = host
            info.port = port
            opts.ps = info
        case .socket?:
            var info = criu_page_server_info()
            info.fd = pageServerWorkerFD
            opts.ps = info
        case .lazy(let port)?:
            // A lazy dump reads only the port (it listens on 0.0.0.0 of its namespace).
            var info = criu_page_server_info()
            info.port = port
            opts.ps = info
            opts.lazyPages = true
        case nil:
            break
        }
        if let freezer = target.freezerDir { opts.freezeCgroup = freezer }
        if let yard = target.cgroupYard, plan.cgroupsMode != .ignore { opts.cgroupYard = yard }
        if !plan.preDump {
            opts.extMnt = target.externalMounts.map { m in
                var e = ext_mount_map()
                e.key = m.key
                e.val = m.value
                return e
            }
        }
        // Namespaces joined by path are external: their owner keeps them.
        if let ino = target.networkNamespaceInode, !plan.network.criuInside {
            opts.external.append("\(NamespaceKind.network.procName)[\(ino)]:extRootNetNS")
            opts.emptyNs |= UInt32(NamespaceKind.network.cloneFlag)
        }
        if let ino = target.pidNamespaceInode {
            opts.external.append("\(NamespaceKind.pid.procName)[\(ino)]:extRootPidNS")
        }
        var req = criu_req()
        req.type = plan.preDump ? .preDump : .dump
        req.opts = opts
        return req
    }

    /// What the runtime prepared for CRIU to restore into.
    public struct RestoreTarget: Sendable {
        public var imagesDirFD: Int32
        public var workDirFD: Int32
        /// The bind mount of the rootfs CRIU restores into.
        public var criuRoot: String
        public var joinsNetworkNamespace: Bool
        /// Descriptors of the CRIU worker standing for external objects: the namespaces
        /// (`restoreNamespaceKeys`, from fd 4 on) and the stdio pipes (fds 0-2).
        public var inherited: [(key: String, fd: Int32)]
        /// `CRIUMounts.forRestore`.
        public var externalMounts: [CRIUMounts.Mapping]
        /// The container's cgroups, for CRIU's cg_root (controllers "" on v2).
        public var cgroupRoots: [(controllers: String, path: String)]
        /// `CRIUCgroupYard`'s mounts (nil with cgroups mode ignore).
        public var cgroupYard: String?
        public init(imagesDirFD: Int32, workDirFD: Int32, criuRoot: String, joinsNetworkNamespace: Bool,
                    inherited: [(key: String, fd: Int32)] = [], externalMounts: [CRIUMounts.Mapping] = [],
                    cgroupRoots: [(controllers: String, path: String)] = [], cgroupYard: String? = nil) {
            self.imagesDirFD = imagesDirFD
            self.workDirFD = workDirFD
            self.criuRoot = criuRoot
            self.joinsNetworkNamespace = joinsNetworkNamespace
            self.inherited = inherited
            self.externalMounts = externalMounts
            self.cgroupRoots = cgroupRoots
            self.cgroupYard = cgroupYard
        }
    }

    /// The namespaces joined by path that a restore hands to CRIU as inherited descriptors,
    /// in order (they become the worker's fds 4, 5, ...), with their inherit_fd keys: the pid
    /// namespace, and the network one unless CRIU runs inside it.
    public static func restoreNamespaceKeys(_ plan: RestorePlan, joined: [(type: String, path: String)]) -> [(key: String, path: String)] {
        joined.compactMap { ns in
            switch ns.type {
            case "network": return plan.network.criuInside ? nil : ("extRootNetNS", ns.path)
            case "pid": return ("extRootPidNS", ns.path)
            default: return nil
            }
        }
    }

    /// The inherit_fd keys of stdio: runc's scheme, the dumped pipe ends (descriptors.json)
    /// are replaced by the restoring process's fds 0-2.
    public static func stdioInherits(descriptors: [String]) -> [(key: String, fd: Int32)] {
        descriptors.enumerated().compactMap { i, d in d.hasPrefix("pipe:") ? (d, Int32(i)) : nil }
    }

    /// The RESTORE request for `plan` into `target`.
    public static func restore(_ plan: RestorePlan, _ target: RestoreTarget) throws -> criu_req {
        try plan.network.check(joinsNetworkNamespace: target.joinsNetworkNamespace, what: "restore")
        if plan.keepNetworkLocked, case .criu = plan.network.locker {
            throw CryoFailure(.invalidArgument, "restore: the plan keeps the network locked after the restore, but CRIU locks it, and CRIU unlocks it when the tasks resume")
        }
        var opts = criu_opts()
        opts.imagesDirFd = target.imagesDirFD
        opts.workDirFd = target.workDirFD
        opts.logLevel = 4
        opts.logFile = "restore.log"
        opts.root = target.criuRoot
        opts.rstSibling = true
        opts.evasiveDevices = true
        applyShared(&opts, network: plan.network, cgroupsMode: plan.cgroupsMode, tcpEstablished: plan.tcpEstablished,
                    extUnixSk: plan.extUnixSk, shellJob: plan.shellJob, fileLocks: plan.fileLocks,
                    autoDedup: plan.autoDedup, lazyPages: plan.lazyPages)
        if target.joinsNetworkNamespace && !plan.network.criuInside {
            opts.emptyNs |= UInt32(NamespaceKind.network.cloneFlag)
        }
        if let yard = target.cgroupYard, plan.cgroupsMode != .ignore { opts.cgroupYard = yard }
        opts.extMnt = target.externalMounts.map { m in
            var e = ext_mount_map()
            e.key = m.key
            e.val = m.value
            return e
        }
        opts.inheritFd = target.inherited.map { key, fd in
            var i = inherit_fd()
            i.key = key
            i.fd = fd
            return i
        }
        opts.cgRoot = target.cgroupRoots.map { controllers, path in
            var root = cgroup_root()
            if !controllers.isEmpty { root.ctrl = controllers }
            root.path = path
            return root
        }
        var req = criu_req()
        req.type = .restore
        req.opts = opts
        return req
    }

    /// The fields checkpoint and restore set alike.
    static func applyShared(_ opts: inout criu_opts, network: NetworkHandling, cgroupsMode: CgroupsMode, tcpEstablished: Bool,
                            extUnixSk: Bool, shellJob: Bool, fileLocks: Bool, autoDedup: Bool, lazyPages: Bool) {
        opts.notifyScripts = true
        opts.orphanPtsMaster = true
        opts.manageCgroups = true
        opts.manageCgroupsMode = cgroupsMode.criu
        opts.tcpEstablished = tcpEstablished
        opts.extUnixSk = extUnixSk
        opts.shellJob = shellJob
        opts.fileLocks = fileLocks
        opts.autoDedup = autoDedup
        opts.lazyPages = lazyPages
        if let m = network.criuLockMethod { opts.networkLock = m.criu }
        if network.emptyNamespace { opts.emptyNs = UInt32(NamespaceKind.network.cloneFlag) }
    }
}
