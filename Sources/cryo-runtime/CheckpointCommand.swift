import CryoLinux
import CryoRuntime
import FoundationEssentials
import Glibc

/// checkpoint and restore: runc's flags made into a plan, once, here.
enum CheckpointCommand {
    /// runc's `--network-lock` and `--empty-ns`: CRIU outside the namespace, locking it itself.
    static func networkHandling(_ opts: ParsedOptions) throws -> NetworkHandling {
        var empty = false
        for ns in opts.all("empty-ns") {
            guard ns == "network" else { throw CryoFailure(.invalidArgument, "--empty-ns: only \"network\" can be left empty, got \"\(ns)\"") }
            empty = true
        }
        return .runc(lock: try NetworkLockMethod.parse(opts.value("network-lock")), emptyNamespace: empty)
    }

    static func checkpointPlan(_ opts: ParsedOptions, criuPath: String) throws -> CheckpointPlan {
        var p = CheckpointPlan(imagePath: opts.value("image-path") ?? "checkpoint", network: try networkHandling(opts))
        p.criuPath = criuPath
        p.workPath = opts.value("work-path")
        p.tcpEstablished = opts.has("tcp-established")
        p.extUnixSk = opts.has("ext-unix-sk")
        p.shellJob = opts.has("shell-job")
        p.fileLocks = opts.has("file-locks")
        p.autoDedup = opts.has("auto-dedup")
        p.lazyPages = opts.has("lazy-pages")
        p.cgroupsMode = try CgroupsMode.parse(opts.value("manage-cgroups-mode"))
        p.leaveRunning = opts.has("leave-running")
        p.preDump = opts.has("pre-dump")
        p.parentPath = opts.value("parent-path")
        p.pageServer = try opts.value("page-server").map(PageServer.parse)
        if let s = opts.value("status-fd") {
            guard let fd = Int32(s) else { throw CryoFailure(.invalidArgument, "--status-fd must be a file descriptor number") }
            p.statusFD = fd
        }
        if p.lazyPages && p.pageServer == nil {
            throw CryoFailure(.invalidArgument, "--lazy-pages needs --page-server ADDRESS:PORT (the pages are served from there)")
        }
        return p
    }

    /// Images dumped from inside a namespace joined by path (cryod's) hold none, and restore
    /// only with CRIU started inside the bundle's namespace; runc's hold it.
    static func restorePlan(_ opts: ParsedOptions, criuPath: String, bundle: String) throws -> RestorePlan {
        var network = try networkHandling(opts)
        let imagePath = opts.value("image-path") ?? "checkpoint"
        let joinsNetns = (try? Runtime.loadSpec(bundle: FS.absolute(bundle))).flatMap(Runtime.networkNamespacePath) != nil
        network.criuInside = joinsNetns && !Runtime.imagesHoldNetworkNamespace(FS.absolute(imagePath))
        var p = RestorePlan(imagePath: imagePath, network: network)
        p.criuPath = criuPath
        p.workPath = opts.value("work-path")
        p.tcpEstablished = opts.has("tcp-established")
        p.extUnixSk = opts.has("ext-unix-sk")
        p.shellJob = opts.has("shell-job")
        p.fileLocks = opts.has("file-locks")
        p.autoDedup = opts.has("auto-dedup")
        p.lazyPages = opts.has("lazy-pages")
        p.cgroupsMode = try CgroupsMode.parse(opts.value("manage-cgroups-mode"))
        return p
    }

    static func checkpoint(runtime: Runtime, id: String, opts: ParsedOptions, criuPath: String) throws {
        try runtime.checkpoint(id: id, plan: try checkpointPlan(opts, criuPath: criuPath))
    }

    static func restore(runtime: Runtime, id: String, opts: ParsedOptions, criuPath: String) throws -> Int32 {
        let bundle = opts.value("bundle") ?? "."
        let plan = try restorePlan(opts, criuPath: criuPath, bundle: bundle)
        let io = RestoreIO(pidFile: opts.value("pid-file"), consoleSocket: opts.value("console-socket"))
        let detach = opts.has("detach")
        if !detach && !opts.has("no-subreaper") { try Processes.setChildSubreaper() }
        let (_, pid) = try runtime.restore(id: id, bundle: bundle, plan: plan, io: io)
        if detach { return 0 }
        let code = try Foreground.wait(pid: pid)
        try? runtime.delete(id: id, force: true)
        return code
    }
}
