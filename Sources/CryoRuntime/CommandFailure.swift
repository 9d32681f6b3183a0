import CryoLinux
import Glibc

extension CryoFailure.Code {
    /// The container's own command could not be executed (missing, not executable, a
    /// directory): its cause carries the errno, from which `CommandExit` picks 127 or 126.
    public static let commandNotRunnable = CryoFailure.Code("command-not-runnable")
}

/// Why the user's command cannot be run, worded as runc (Go) words it ("no such file or
/// directory", "permission denied"): the docker CLI still reads those words in a failed
/// start's message; cryo itself only reads `errno`.
public struct CommandErrno: Error, CarriesErrno, CustomStringConvertible, Sendable {
    public let errno: Int32
    public let text: String
    public init(_ errno: Int32, text: String? = nil) {
        self.errno = errno
        self.text = text ?? String(cString: strerror(errno)).lowercased()
    }
    public var errnoValue: Int32? { errno }
    public var description: String { text }
}

/// The shell's (and Docker's) exit statuses for a command that cannot be run, decided
/// from the failure's code and errno in this one place: 127 when it does not exist,
/// 126 when it exists but cannot be executed; nil for any other failure.
public enum CommandExit {
    public static func status(of error: any Error) -> Int32? {
        let failure = (error as? CryoFailure) ?? CryoFailure("", cause: error)
        guard failure.has(.commandNotRunnable) else { return nil }
        switch failure.rootErrno {
        case ENOENT?: return 127
        default: return 126
        }
    }
}
