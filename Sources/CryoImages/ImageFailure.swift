import CryoLinux

extension CryoFailure.Code {
    /// An image archive or rootfs tarball that cannot be loaded as sent: malformed,
    /// unsafe, over the extraction limit, or with digests that do not match.
    public static let invalidArchive = CryoFailure.Code("invalid-archive")
}

/// What a failed load or import is: the archive's fault (400) or cryod's (500).
enum ImageFailure {
    /// A failure while unpacking or reading a client's archive. A failed syscall is
    /// the archive's doing (a symlink loop, a file where a directory must be) unless
    /// it is a failure of the host's resources or cryod's own files (ENOSPC, EIO,
    /// EACCES...), which stays `internal`.
    static func classify(_ error: any Error) -> any Error {
        if let s = error as? SyscallError, !s.isHostResourceFailure {
            return CryoFailure(.invalidArchive, "", cause: s)
        }
        return error
    }

    /// Runs a step that reads the client's archive, classifying what it throws.
    static func reading<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch { throw classify(error) }
    }
}
