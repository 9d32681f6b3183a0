import CryoLinux
import CryoLog
import CryoMonitor
import CryoRuntime
import FoundationEssentials
import Glibc

// cryo-monitor: one per container. It creates (or restores) the container through the
// runtime library, so the container's init is its child; it owns the container's stdio,
// writes the json-file log, serves attach/resize/wait on a unix socket and records the
// exit status. It outlives cryod: cryod can stop and start without touching a container.
//
//   cryo-monitor CONFIG                 fd 3: ready pipe (one JSON line: MonitorReady);
//                                       fd 4 (restore): cryod's network gate, see
//                                       RestorePlan.networkGateFD;
//                                       cryod starts it in a session of its own
//   cryo-monitor init FD                the container's init (the runtime re-execs us)
//   cryo-monitor lazy-pages-watchdog …  a post-copy target's criu lazy-pages, and the
//                                       container's death if it fails (LazyPagesWatchdog)
//   cryo-monitor memory-search          a checkpoint memory search (MemorySearchRequest JSON
//                                       on stdin, matches JSON on stdout), killable by cryod

let args = CommandLine.arguments
if args.count >= 3 && args[1] == "init" {
    ContainerInit.main(syncFD: Int32(args[2]) ?? 3)
}
if args.count >= 2 && args[1] == "lazy-pages-watchdog" {
    LazyPagesWatchdog.main(args)
}
if args.count >= 2 && args[1] == "memory-search" {
    MemorySearchChild.main()
}

Trace.keepOutput()
// cryod passes its log level and format (CRYO_LOG_LEVEL, CRYO_LOG_FORMAT); stderr is the
// monitor's log file (MonitorLogFile), capped, or cryod's stderr when it traces. Our fds
// 0-2 become the container's stdio while it is set up (and /dev/null after): the log keeps
// a descriptor of its own.
let logFD = fcntl(2, F_DUPFD_CLOEXEC, 10)
CryoLogging.bootstrap(LogOptions.fromEnvironment(), output: LineOutput(fd: logFD >= 0 ? logFD : 2, sizeLimit: MonitorLogFile.sizeLimit))
let monitorLog = Logger(label: "cryo-monitor")

/// The monitor's own record (MonitorConfig.statePath): written before anything happens to
/// the container, and again with the ready line before that line is sent.
func record(_ path: String?, _ ready: MonitorReady?) {
    guard let path else { return }
    let me = getpid()
    let state = MonitorState(monitorPid: me, monitorStartTime: Processes.startTime(pid: me), ready: ready)
    if let data = try? JSONEncoder().encode(state) {
        try? FS.atomicWrite(path, Array(data), mode: 0o600, durable: false)
    }
}

func report(_ ready: MonitorReady) {
    if let data = try? JSONEncoder().encode(ready) {
        try? FS.writeAll(fd: 3, Array(data) + [0x0a], what: "ready pipe")
    }
    close(3)
}

guard args.count >= 2, args[1] != "--help", args[1] != "-h" else {
    print("usage: cryo-monitor CONFIG   (started by cryod; fd 3 is its ready pipe)")
    exit(args.count >= 2 ? 0 : 2)
}

let config: MonitorConfig
do {
    config = try JSONDecoder().decode(MonitorConfig.self, from: Data(try FS.readBytes(args[1])))
} catch {
    report(MonitorReady(error: "reading monitor config \(args[1]): \(error)"))
    exit(1)
}
// The network gate's read end (if any) is ours alone: never inherited by CRIU or init.
if let fd = config.restore?.networkGateFD { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
record(config.statePath, nil)
monitorLog.info("\(config.restore == nil ? "creating" : "restoring") container", metadata: ["id": "\(config.id)", "pid": "\(getpid())"])
let monitor = Monitor(config: config)
do {
    let initPid = try monitor.setUp()
    let ready = MonitorReady(monitorPid: getpid(), initPid: initPid)
    record(config.statePath, ready)
    FaultPoint.hit(config.restore == nil ? "monitor-ready" : "restore-monitor-ready")
    report(ready)
} catch {
    monitorLog.error("\(config.restore == nil ? "creating" : "restoring") the container failed: \(error)", metadata: ["id": "\(config.id)"])
    monitor.abandon()
    let failed = MonitorReady.failed(error)
    record(config.statePath, failed)
    report(failed)
    exit(1)
}
monitor.run()
exit(0)
