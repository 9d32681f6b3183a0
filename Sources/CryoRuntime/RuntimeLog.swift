import CryoLinux
import CryoLog
import Glibc
import Synchronization

/// The runtime's log. Messages go through swift-log (`RuntimeLog.logger`): to stderr as
/// CryoLogging's lines, and to the `--log` file in runc's format (`RuncLogFileHandler`),
/// which containerd and podman read back for error messages. A command's failure is the
/// exception: the CLI prints it plainly on stderr (`reportFailure`), like runc's users and an
/// exec session's client expect, and the file gets it as an error line.
public enum RuntimeLog {
    public static let label = "cryo-runtime"

    public static var logger: Logger { Logger(label: label) }

    static let file = Mutex<RuncLogFileHandler?>(nil)

    /// Sets up logging for a cryo-runtime process: level and format from cryod
    /// (CRYO_LOG_LEVEL, CRYO_LOG_FORMAT; warnings and errors otherwise, everything with
    /// `--debug`), plus the `--log` file if one is given.
    public static func bootstrap(logPath: String?, fileFormat: String, debug: Bool) {
        var options = LogOptions.fromEnvironment(defaults: LogOptions(level: .warning))
        if debug { options.level = .debug }
        var handler: RuncLogFileHandler?
        if let logPath, !logPath.isEmpty {
            let fd = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            if fd >= 0 { handler = RuncLogFileHandler(output: LineOutput(fd: fd), json: fileFormat == "json") }
        }
        file.withLock { $0 = handler }
        var extra: (@Sendable (String) -> any LogHandler)?
        if let handler { extra = { _ in handler } }
        CryoLogging.bootstrap(options, adding: extra)
    }

    /// A command failed: the message on stderr as it is, and in the `--log` file.
    public static func reportFailure(_ message: String) {
        FS.writeStderr(message)
        if let h = file.withLock({ $0 }) { Logger(label: label, factory: { _ in h }).error("\(message)") }
    }
}

/// runc's `--log` lines: `time="…" level=error msg="…"`, or with `--log-format json`
/// `{"level":"error","msg":"…","time":"…"}` (logrus' level names).
public struct RuncLogFileHandler: LogHandler {
    public var logLevel: Logger.Level = .debug
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    let output: LineOutput
    let json: Bool

    public init(output: LineOutput, json: Bool) {
        self.output = output
        self.json = json
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        output.write(Self.line(level: event.level, message: event.message.description, time: rfc3339Now(), json: json))
    }

    static func levelName(_ level: Logger.Level) -> String {
        switch level {
        case .trace, .debug: "debug"
        case .info, .notice: "info"
        case .warning: "warning"
        case .error: "error"
        case .critical: "fatal"
        }
    }

    static func line(level: Logger.Level, message: String, time: String, json: Bool) -> String {
        json ? "{\"level\":\"\(levelName(level))\",\"msg\":\(jsonQuote(message)),\"time\":\"\(time)\"}\n"
            : "time=\"\(time)\" level=\(levelName(level)) msg=\(jsonQuote(message))\n"
    }
}

func jsonQuote(_ s: String) -> String { LogLine.quote(s) }

extension String {
    init(format4 v: UInt32) {
        let h = String(v, radix: 16)
        self = "\\u" + String(repeating: "0", count: 4 - h.count) + h
    }
}

extension FS {
    /// A plain line on stderr: for what a user reads as it is (a CLI's failure, the
    /// container init's last words on the container's own stderr), never for logging.
    public static func writeStderr(_ s: String) {
        try? writeAll(fd: 2, Array((s.hasSuffix("\n") ? s : s + "\n").utf8), what: "stderr")
    }
}
