import Glibc

/// The process's own resource limits.
public enum ResourceLimits {
    /// Raises the soft RLIMIT_NOFILE to the hard one (a daemon holding one descriptor per
    /// client connection should not stop at the 1024 a login shell gives it). Returns the
    /// (soft, hard) limits now in force. Children get their own limits: a container's
    /// come from its spec.
    @discardableResult
    public static func raiseOpenFiles() throws -> (soft: UInt64, hard: UInt64) {
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        var r = rlimit()
        guard getrlimit(resource, &r) == 0 else { throw SyscallError("getrlimit", "RLIMIT_NOFILE") }
        if r.rlim_cur < r.rlim_max {
            var raised = r
            raised.rlim_cur = r.rlim_max
            guard setrlimit(resource, &raised) == 0 else {
                throw SyscallError("setrlimit", "RLIMIT_NOFILE soft \(r.rlim_cur) → \(r.rlim_max)")
            }
            r = raised
        }
        return (UInt64(r.rlim_cur), UInt64(r.rlim_max))
    }
}
