import CryoLinux
import CryoMonitor
import CryoRuntime
import FoundationEssentials
import Glibc

// cryo-monitor: one per container. It creates (or restores) the container through the
// runtime library, so the container's init is its child; it owns the container's stdio,
// writes the json-file log, serves attach/resize/wait on a unix socket and records the
// exit status. It outlives cryod: cryod can stop and start without touching a container.
//
//   cryo-monitor [--detach] CONFIG      fd 3: ready pipe (one JSON line: MonitorReady)
//   cryo-monitor init FD                the container's init (the runtime re-execs us)

let args = CommandLine.arguments
if args.count >= 3 && args[1] == "init" {
    ContainerInit.main(syncFD: Int32(args[2]) ?? 3)
}

func report(_ ready: MonitorReady) {
    if let data = try? JSONEncoder().encode(ready) {
        try? FS.writeAll(fd: 3, Array(data) + [0x0a], what: "ready pipe")
    }
    close(3)
}

guard args.count >= 2, args[1] != "--help", args[1] != "-h" else {
    print("usage: cryo-monitor [--detach] CONFIG   (started by cryod; fd 3 is its ready pipe)")
    exit(args.count >= 2 ? 0 : 2)
}

if args[1] == "--detach" {
    // Start the real monitor in its own session and return at once, so it is
    // re-parented away from cryod and cryod's exit never touches it.
    guard args.count == 3 else { report(MonitorReady(error: "cryo-monitor --detach: missing CONFIG")); exit(2) }
    do {
        let null = try sys(open("/dev/null", O_RDWR | O_CLOEXEC), "open", "/dev/null")
        _ = try Spawn.spawn(path: "/proc/self/exe", args: ["cryo-monitor", args[2]], env: [],
                            fds: [null, null, null, 3], setsid: true)
        exit(0)
    } catch {
        report(MonitorReady(error: "starting the monitor: \(error)"))
        exit(1)
    }
}

let config: MonitorConfig
do {
    config = try JSONDecoder().decode(MonitorConfig.self, from: Data(try FS.readBytes(args[1])))
} catch {
    report(MonitorReady(error: "reading monitor config \(args[1]): \(error)"))
    exit(1)
}
let monitor = Monitor(config: config)
do {
    let initPid = try monitor.setUp()
    report(MonitorReady(monitorPid: getpid(), initPid: initPid))
} catch {
    monitor.abandon()
    report(MonitorReady(error: "\(error)"))
    exit(1)
}
monitor.run()
exit(0)
