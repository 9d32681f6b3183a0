import CryoLinux
import CryoRuntime
import FoundationEssentials

/// What cryod asks of a container's monitor (`<dir>/monitor.json`, written before the
/// monitor starts). The monitor owns the container's stdio, log and exit status.
public struct MonitorConfig: Codable, Sendable {
    public var id: String
    /// cryo-runtime state root (under cryod's exec-root).
    public var runtimeRoot: String
    public var bundle: String
    /// json-file log (Docker's format), appended to.
    public var logPath: String
    /// Where the exit record is written when the container's init ends.
    public var exitPath: String
    /// The monitor's control socket (attach, resize, wait).
    public var socketPath: String
    /// Where a tty container's init sends its pty master (runc's console socket).
    public var consoleSocketPath: String?
    public var tty: Bool
    public var openStdin: Bool
    public var stdinOnce: Bool
    /// Restore from a checkpoint instead of creating the container: the engine's plan,
    /// handed to the runtime unchanged (its `networkGateFD` is one of the monitor's fds).
    public var restore: RestorePlan?
    /// Where the monitor records itself (`MonitorState`) — for a cryod that restarted while
    /// this monitor was creating or restoring the container and never read its ready line.
    public var statePath: String?

    public init(id: String, runtimeRoot: String, bundle: String, logPath: String, exitPath: String,
                socketPath: String, consoleSocketPath: String? = nil, tty: Bool, openStdin: Bool, stdinOnce: Bool,
                restore: RestorePlan? = nil, statePath: String? = nil) {
        self.id = id
        self.statePath = statePath
        self.runtimeRoot = runtimeRoot
        self.bundle = bundle
        self.logPath = logPath
        self.exitPath = exitPath
        self.socketPath = socketPath
        self.consoleSocketPath = consoleSocketPath
        self.tty = tty
        self.openStdin = openStdin
        self.stdinOnce = stdinOnce
        self.restore = restore
    }
}

/// The one line a monitor writes on its ready pipe: the container is created (its
/// init waits to be started) or restored (running), or why not.
public struct MonitorReady: Codable, Sendable {
    public var monitorPid: Int32?
    public var initPid: Int32?
    public var error: String?
    /// With `error`: its code and errno, which cryod acts on (126/127 for a command that
    /// cannot be run), never the text.
    public var failure: FailureReport?
    public init(monitorPid: Int32? = nil, initPid: Int32? = nil, error: String? = nil, failure: FailureReport? = nil) {
        self.monitorPid = monitorPid
        self.initPid = initPid
        self.error = error
        self.failure = failure
    }

    /// The report of a monitor that failed to create or restore its container.
    public static func failed(_ error: any Error) -> MonitorReady {
        MonitorReady(error: "\(error)", failure: FailureReport(error))
    }

    /// The failure this report stands for, as the cause of `step`; nil when it is not one.
    public func failure(step: String) -> CryoFailure? {
        guard let error else { return nil }
        return CryoFailure(step, cause: failure ?? FailureReport(code: .internal, message: error))
    }
}

/// What a monitor records about itself (`MonitorConfig.statePath`, replaced atomically):
/// its process as soon as it runs, then the outcome of creating or restoring the container.
public struct MonitorState: Codable, Sendable {
    public var monitorPid: Int32
    public var monitorStartTime: UInt64?
    /// nil while the container is still being created or restored.
    public var ready: MonitorReady?
    public init(monitorPid: Int32, monitorStartTime: UInt64?, ready: MonitorReady? = nil) {
        self.monitorPid = monitorPid
        self.monitorStartTime = monitorStartTime
        self.ready = ready
    }
}

/// How the container's init ended (`exit.json`, written atomically by the monitor; also
/// sent to `wait` clients as the last line before the monitor closes their connection).
public struct ExitRecord: Codable, Sendable, Equatable {
    public var exitCode: Int32
    public var finishedAt: String
    /// Set (in the copy sent to waiters) when writing exit.json failed, and why.
    public var recordError: String?
    public init(exitCode: Int32, finishedAt: String, recordError: String? = nil) {
        self.exitCode = exitCode
        self.finishedAt = finishedAt
        self.recordError = recordError
    }
}

/// A request on the monitor's control socket: one JSON line, then (for attach) a stream.
public struct MonitorRequest: Codable, Sendable {
    public enum Op: String, Codable, Sendable { case attach, resize, wait }
    public var op: Op
    public var stdin: Bool?
    public var stdout: Bool?
    public var stderr: Bool?
    public var height: UInt16?
    public var width: UInt16?
    public init(op: Op, stdin: Bool? = nil, stdout: Bool? = nil, stderr: Bool? = nil, height: UInt16? = nil, width: UInt16? = nil) {
        self.op = op
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.height = height
        self.width = width
    }
}
