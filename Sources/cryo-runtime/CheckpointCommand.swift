import CryoLinux
import CryoRuntime
import Glibc

enum CheckpointCommand {
    static func criuOptions(_ opts: ParsedOptions, criuPath: String) throws -> CRIUOptions {
        var c = CRIUOptions(imagePath: opts.value("image-path") ?? "checkpoint")
        c.criuPath = criuPath
        c.workPath = opts.value("work-path")
        c.tcpEstablished = opts.has("tcp-established")
        c.extUnixSk = opts.has("ext-unix-sk")
        c.shellJob = opts.has("shell-job")
        c.fileLocks = opts.has("file-locks")
        c.autoDedup = opts.has("auto-dedup")
        c.lazyPages = opts.has("lazy-pages")
        c.cgroupsMode = try CgroupsMode.parse(opts.value("manage-cgroups-mode"))
        c.networkLock = try NetworkLockMethod.parse(opts.value("network-lock"))
        for ns in opts.all("empty-ns") {
            guard ns == "network" else { throw CryoError("--empty-ns: only \"network\" can be left empty, got \"\(ns)\"") }
            c.emptyNetworkNS = true
        }
        return c
    }

    static func checkpoint(runtime: Runtime, id: String, opts: ParsedOptions, criuPath: String) throws {
        var o = CheckpointOptions(criu: try criuOptions(opts, criuPath: criuPath))
        o.leaveRunning = opts.has("leave-running")
        o.preDump = opts.has("pre-dump")
        o.parentPath = opts.value("parent-path")
        o.pageServer = opts.value("page-server")
        if let s = opts.value("status-fd") {
            guard let fd = Int32(s) else { throw CryoError("--status-fd must be a file descriptor number") }
            o.statusFD = fd
        }
        if o.criu.lazyPages && o.pageServer == nil {
            throw CryoError("--lazy-pages needs --page-server ADDRESS:PORT (the pages are served from there)")
        }
        try runtime.checkpoint(id: id, o)
    }

    static func restore(runtime: Runtime, id: String, opts: ParsedOptions, criuPath: String) throws -> Int32 {
        var o = RestoreOptions(criu: try criuOptions(opts, criuPath: criuPath), bundle: opts.value("bundle") ?? ".")
        o.pidFile = opts.value("pid-file")
        o.consoleSocket = opts.value("console-socket")
        let detach = opts.has("detach")
        if !detach && !opts.has("no-subreaper") { try Processes.setChildSubreaper() }
        let (_, pid) = try runtime.restore(id: id, o)
        if detach { return 0 }
        let code = try Foreground.wait(pid: pid)
        try? runtime.delete(id: id, force: true)
        return code
    }
}
