import CryoLinux
import Glibc
import Logging

/// How a cryo process logs: the lowest level written and the line format. cryod takes them
/// from `--log-level`/`--log-format`; the monitor and cryo-runtime, which cryod starts, from
/// `CRYO_LOG_LEVEL`/`CRYO_LOG_FORMAT` (`childEnvironment`), so every process of one daemon
/// writes the same kind of lines.
public struct LogOptions: Sendable, Equatable {
    public enum Format: String, Sendable, CaseIterable {
        /// `TIME LEVEL LABEL: message key=value …`
        case text
        /// One JSON object per line: time, level, label, msg and the metadata.
        case json
    }

    public var level: Logger.Level
    public var format: Format

    public init(level: Logger.Level = .info, format: Format = .text) {
        self.level = level
        self.format = format
    }

    public static let levelNames = "debug, info, warning, error"
    public static let levelVariable = "CRYO_LOG_LEVEL"
    public static let formatVariable = "CRYO_LOG_FORMAT"

    /// Docker's spellings (`warn`, `fatal`) and swift-log's (`warning`, `critical`, `trace`, `notice`).
    public static func parseLevel(_ text: String) throws -> Logger.Level {
        switch text.lowercased() {
        case "trace": .trace
        case "debug": .debug
        case "info": .info
        case "notice": .notice
        case "warn", "warning": .warning
        case "error": .error
        case "fatal", "critical": .critical
        default: throw LogOptionError("log level \"\(text)\": use one of \(levelNames)")
        }
    }

    public static func parseFormat(_ text: String) throws -> Format {
        guard let f = Format(rawValue: text.lowercased()) else {
            throw LogOptionError("log format \"\(text)\": use text or json")
        }
        return f
    }

    /// The options a parent passed in the environment; `defaults` for what it did not pass.
    /// A value that does not parse is ignored (a child has no one to refuse it to).
    public static func fromEnvironment(defaults: LogOptions = LogOptions()) -> LogOptions {
        var o = defaults
        if let v = getenv(levelVariable), let l = try? parseLevel(String(cString: v)) { o.level = l }
        if let v = getenv(formatVariable), let f = try? parseFormat(String(cString: v)) { o.format = f }
        return o
    }

    /// The environment of a child that logs like this process (a monitor, cryo-runtime exec).
    public var childEnvironment: [String] {
        ["\(Self.levelVariable)=\(level.rawValue)", "\(Self.formatVariable)=\(format.rawValue)"]
    }
}

/// A bad `--log-level`/`--log-format` (or `CRYO_LOG_LEVEL`/`CRYO_LOG_FORMAT`) value.
public struct LogOptionError: CodedError, CustomStringConvertible, Sendable {
    public var code: CryoFailure.Code { .invalidArgument }
    public let description: String
    public init(_ description: String) { self.description = description }
}
