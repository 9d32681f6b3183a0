import Glibc

/// cryo's one error type: what failed (`message`, with its context: step, path, pid),
/// what kind of failure it is (`code`, which callers act on: the API's HTTP status, an
/// exit status) and why (`cause`, usually a `SyscallError` carrying errno, or another
/// `CryoFailure`). Callers never look at the text to decide anything.
public struct CryoFailure: CodedError, CustomStringConvertible, Sendable {
    /// An open set of failure kinds: each module adds its own in an extension
    /// (`static let invalidArchive` in CryoImages, ...). Codes cross process boundaries
    /// by their raw value (see `FailureReport`).
    public struct Code: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The request or input is wrong (a bad flag, field, spec or archive).
        public static let invalidArgument = Code("invalid-argument")
        /// The named thing does not exist.
        public static let notFound = Code("not-found")
        /// The thing is in a state that does not allow the action, or the name is taken.
        public static let conflict = Code("conflict")
        /// The action was already done (Docker's 304 for start/stop).
        public static let notModified = Code("not-modified")
        /// Valid, but cryo does not do it (refused, never ignored).
        public static let unsupported = Code("unsupported")
        /// Something needed is not there right now (a peer, a tool, a kernel feature).
        public static let unavailable = Code("unavailable")
        /// cryo's own failure: a syscall on its own files, a broken invariant, a host
        /// resource (ENOSPC, EIO).
        public static let `internal` = Code("internal")
    }

    public let code: Code
    public let message: String
    public let cause: (any Error)?

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    /// A step that failed because of `cause`: the code is the cause's (`Code.of`), so
    /// wrapping for context never changes how the failure is answered.
    public init(_ message: String, cause: any Error) {
        self.init(Code.of(cause), message, cause: cause)
    }

    public var description: String {
        guard let cause else { return message }
        return message.isEmpty ? "\(cause)" : "\(message): \(cause)"
    }

    /// This failure and the causes below it, outermost first.
    public var chain: [any Error] {
        var out: [any Error] = [self]
        var next = cause
        while let e = next {
            out.append(e)
            next = (e as? CryoFailure)?.cause
        }
        return out
    }

    /// The errno at the bottom of the chain, if a system call is where it began.
    public var rootErrno: Int32? { Self.errno(of: self) }

    /// Whether any failure in the chain (reports from other processes included) has `code`.
    public func has(_ code: Code) -> Bool {
        chain.contains { ($0 as? any CodedError)?.code == code }
    }

    /// The errno an error began with: the first `CarriesErrno` in its chain.
    public static func errno(of error: any Error) -> Int32? {
        var next: (any Error)? = error
        while let e = next {
            if let s = e as? any CarriesErrno, let n = s.errnoValue { return n }
            next = (e as? CryoFailure)?.cause
        }
        return nil
    }
}

/// An error that knows the errno it began with (a failed syscall, a report of one).
public protocol CarriesErrno: Error {
    var errnoValue: Int32? { get }
}

extension SyscallError: CarriesErrno {
    public var errnoValue: Int32? { errno }
}

extension FailureReport: CarriesErrno {
    public var errnoValue: Int32? { errno }
}

extension CryoFailure.Code {
    /// The code of any error: a failure's own, a report's, `internal` for the rest
    /// (a failed syscall without more context is cryo's own failure).
    public static func of(_ error: any Error) -> CryoFailure.Code {
        (error as? any CodedError)?.code ?? .internal
    }
}

/// An error that says which kind of failure it is. `CryoFailure` is the one cryo throws;
/// a module's own structured errors (CryoNetwork's `NetworkError`) conform too, so the
/// one place that maps codes (to HTTP statuses, to exit statuses) sees them.
public protocol CodedError: Error {
    var code: CryoFailure.Code { get }
}

/// A failure as it crosses a process boundary (container init → runtime → monitor →
/// cryod, as JSON): its code, its full text, and the errno it began with.
public struct FailureReport: CodedError, Codable, CustomStringConvertible, Sendable, Equatable {
    public var code: CryoFailure.Code
    public var message: String
    public var errno: Int32?

    public init(code: CryoFailure.Code, message: String, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
    }

    public init(_ error: any Error) {
        if let r = error as? FailureReport { self = r; return }
        self.init(code: CryoFailure.Code.of(error), message: "\(error)", errno: CryoFailure.errno(of: error))
    }

    public var description: String { message }
}

extension SyscallError {
    /// A failure of the host's resources or of cryo's own files rather than of what a
    /// client sent: no space, no memory, I/O error, read-only or unwritable storage.
    public var isHostResourceFailure: Bool {
        [ENOSPC, EDQUOT, EIO, EROFS, ENOMEM, EMFILE, ENFILE, EACCES].contains(errno)
    }
}
