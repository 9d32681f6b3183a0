/// Where cryod keeps things. `root` (/var/lib/cryo) survives reboots: images, container
/// records, logs, overlay upper dirs, checkpoints. `execRoot` (/run/cryo) does not:
/// the runtime's state and the monitors' sockets.
public struct EnginePaths: Sendable {
    public let root: String
    public let execRoot: String
    public init(root: String, execRoot: String) {
        self.root = root
        self.execRoot = execRoot
    }

    /// The directories directly under `root` that hold cryod's own state: no client-chosen
    /// path (a checkpoint directory) may lie in one of them.
    public static let stateDirectoryNames: Set<String> = ["images", "containers", "networks", "tmp", "volumes", "migrations"]

    public var images: String { root + "/images" }
    public var containers: String { root + "/containers" }
    /// One directory per migration in progress (either side): CRIU's images on their way.
    public var migrations: String { root + "/migrations" }
    public func migration(_ session: String) -> String { migrations + "/" + session }
    public var runtimeRoot: String { execRoot + "/runtime" }
    public var monitorSockets: String { execRoot + "/mon" }

    public func containerDir(_ id: String) -> String { containers + "/" + id }
    public func record(_ id: String) -> String { containerDir(id) + "/container.json" }
    public func log(_ id: String) -> String { containerDir(id) + "/\(id)-json.log" }
    public func exitRecord(_ id: String) -> String { containerDir(id) + "/exit.json" }
    public func monitorConfig(_ id: String) -> String { containerDir(id) + "/monitor.json" }
    public func bundle(_ id: String) -> String { containerDir(id) + "/bundle" }
    public func rootfs(_ id: String) -> String { bundle(id) + "/rootfs" }
    public func upper(_ id: String) -> String { containerDir(id) + "/upper" }
    public func work(_ id: String) -> String { containerDir(id) + "/work" }
    public func checkpoints(_ id: String) -> String { containerDir(id) + "/checkpoints" }
    /// The host tmpfs bind-mounted at the container's /dev/shm (see ShmMount).
    public func shm(_ id: String) -> String { containerDir(id) + "/shm" }
    /// The host tmpfs holding the container's /dev, /sys/fs/cgroup holder and masked
    /// directory (see ContainerTmpfs).
    public func tmpfs(_ id: String) -> String { containerDir(id) + "/tmpfs" }
    public func monitorSocket(_ id: String) -> String { monitorSockets + "/\(id).sock" }
    /// What the monitor records about itself (MonitorState): its pid, then its set-up's outcome.
    public func monitorState(_ id: String) -> String { monitorSockets + "/\(id).state" }
    /// The monitor's own log lines (its stderr; MonitorLogFile), which outlive it and cryod.
    public func monitorLog(_ id: String) -> String { monitorSockets + "/\(id).log" }
    /// Where a tty container's init hands its pty master to the monitor (short: sun_path
    /// holds 107 bytes).
    public func consoleSocket(_ id: String) -> String { monitorSockets + "/\(id.prefix(24)).con" }
    /// The longest socket path under this exec-root; it must fit in sun_path.
    public var longestSocketPath: Int { monitorSocket(String(repeating: "0", count: 64)).utf8.count }
    /// The container's network namespace, bound to a file (recreated after a reboot).
    public func netns(_ id: String) -> String { execRoot + "/netns/" + id }
}
