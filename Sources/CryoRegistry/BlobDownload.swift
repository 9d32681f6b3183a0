import AsyncHTTPClient
import Crypto
import CryoImages
import CryoLinux
import Glibc
import NIOCore

/// Streams one blob from the registry to a file, hashing as it goes: the file is only
/// handed on when its size and sha256 are the descriptor's. Nothing is held in memory.
enum BlobDownload {
    /// Progress is reported at most every 512 KiB or 1 % (whichever is larger), and not
    /// more often than every 100 ms.
    static let progressStep: Int64 = 512 << 10

    static func fetch(_ session: RegistrySession, digest: CryoImages.Digest, size: Int64, to path: String, shortID: String,
                      emit: @Sendable (ProgressLine) async throws -> Void) async throws {
        let resp = try await session.openBlob(digest)
        let total = resp.headers.first(name: "Content-Length").flatMap { Int64($0) } ?? size
        let fd = try sys(open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600), "open", path)
        defer { close(fd) }
        var hash = SHA256()
        var received: Int64 = 0
        var lastReported: Int64 = 0
        var lastTime = ContinuousClock.now
        let step = max(progressStep, total / 100)
        try await emit(.bytes("Downloading", id: shortID, current: 0, total: total))
        do {
            for try await buffer in resp.body {
                received += Int64(buffer.readableBytes)
                if size > 0 && received > size {
                    throw CryoFailure(.invalidArgument, "the registry sent more than the \(size) bytes the manifest gives for blob \(digest)")
                }
                try buffer.withUnsafeReadableBytes { bytes in
                    hash.update(bufferPointer: bytes)
                    var off = 0
                    while off < bytes.count {
                        let n = retryingEINTR { write(fd, bytes.baseAddress! + off, bytes.count - off) }
                        if n < 0 { throw SyscallError("write", path) }
                        off += n
                    }
                }
                let now = ContinuousClock.now
                if received - lastReported >= step && now - lastTime >= .milliseconds(100) {
                    lastReported = received
                    lastTime = now
                    try await emit(.bytes("Downloading", id: shortID, current: received, total: total))
                }
            }
        } catch let e as CryoFailure {
            throw e
        } catch let e as SyscallError {
            throw CryoFailure("storing blob \(digest) at \(path) failed", cause: e)
        } catch {
            throw CryoFailure(.registryUnreachable, "downloading blob \(digest) broke off after \(received) of \(total) bytes", cause: DescribedError(error))
        }
        if received != lastReported { try await emit(.bytes("Downloading", id: shortID, current: received, total: total)) }
        try await emit(.update("Verifying Checksum", id: shortID))
        if size > 0 && received != size {
            throw CryoFailure(.invalidArgument, "blob \(digest): the registry sent \(received) bytes, the manifest says \(size)")
        }
        let got = CryoImages.Digest(finalizing: hash)
        guard got == digest else {
            throw CryoFailure(.invalidArgument, "filesystem layer verification failed for digest \(digest): the registry sent content whose digest is \(got); nothing was stored")
        }
        try await emit(.update("Download complete", id: shortID))
    }
}
