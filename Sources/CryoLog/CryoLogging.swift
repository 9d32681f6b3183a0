import Logging
import Synchronization

/// The one logging setup of cryod, cryo-monitor and cryo-runtime: swift-log with
/// `LineLogHandler` on stderr (a monitor's stderr is its log file, see CryoMonitor's
/// `MonitorLogFile`). Each executable calls `bootstrap` once, first thing; code below then
/// logs through `Logger(label:)`. (The `cryo` CLI does not: it prints its errors to the
/// user plainly.)
public enum CryoLogging {
    static let current = Mutex<LogOptions?>(nil)

    /// Sets up swift-log for this process; `output` is where the lines go (stderr; a
    /// monitor's is its log file, size-capped); `extra` makes a second handler per label
    /// (the runtime's `--log` file). A second call changes nothing (swift-log allows one
    /// bootstrap per process).
    public static func bootstrap(_ options: LogOptions, output: LineOutput = .stderr,
                                 adding extra: (@Sendable (String) -> any LogHandler)? = nil) {
        let first = current.withLock { c -> Bool in
            guard c == nil else { return false }
            c = options
            return true
        }
        guard first else { return }
        LoggingSystem.bootstrap { label in
            let stderr = LineLogHandler(label: label, options: options, output: output)
            guard let extra else { return stderr }
            return MultiplexLogHandler([stderr, extra(label)])
        }
    }

    /// What this process was bootstrapped with (the defaults before that).
    public static var options: LogOptions { current.withLock { $0 } ?? LogOptions() }

    /// The environment of a child that should log like this process.
    public static var childEnvironment: [String] { options.childEnvironment }
}

// Code that logs imports CryoLog and gets swift-log's `Logger` with it.
@_exported import Logging
