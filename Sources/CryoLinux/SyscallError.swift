import Glibc

/// A failed system call: which call, on what (path, pid, fd), and errno.
public struct SyscallError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let target: String
    public let errno: Int32

    public init(_ call: String, _ target: String = "", errno: Int32 = Glibc.errno) {
        self.call = call
        self.target = target
        self.errno = errno
    }

    public var description: String {
        let what = target.isEmpty ? call : "\(call) \(target)"
        return "\(what): \(String(cString: strerror(errno)))"
    }
}

/// Throws a SyscallError when `result` is -1 (errno captured immediately).
@discardableResult
@inline(__always)
public func sys<T: BinaryInteger>(_ result: T, _ call: @autoclosure () -> String, _ target: @autoclosure () -> String = "") throws -> T {
    if result == -1 {
        let e = Glibc.errno
        throw SyscallError(call(), target(), errno: e)
    }
    return result
}

/// Retries a call interrupted by a signal.
@inline(__always)
public func retryingEINTR<T: BinaryInteger>(_ body: () -> T) -> T {
    while true {
        let r = body()
        if r == -1 && errno == EINTR { continue }
        return r
    }
}
