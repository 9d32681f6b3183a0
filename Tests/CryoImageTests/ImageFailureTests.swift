import CryoLinux
import Glibc
import Testing
@testable import CryoImages

/// A failed load is the archive's fault (invalidArchive, a 400) or the host's (internal, a 500).
@Suite struct ImageFailureTests {
    @Test func syscallsOnTheArchivesContentsAreTheArchives() {
        let loop = ImageFailure.classify(SyscallError("securejoin", "/s /a", errno: ELOOP))
        #expect(CryoFailure.Code.of(loop) == .invalidArchive)
        #expect("\(loop)" == "securejoin /s /a: Too many levels of symbolic links")
        let notDir = ImageFailure.classify(SyscallError("mkdirat", "x", errno: ENOTDIR))
        #expect(CryoFailure.Code.of(notDir) == .invalidArchive)
    }

    @Test func hostResourceFailuresStayCryods() {
        for e in [ENOSPC, EDQUOT, EIO, EROFS, EACCES, ENOMEM] {
            #expect(CryoFailure.Code.of(ImageFailure.classify(SyscallError("write", "f", errno: e))) == .internal)
        }
        let refused = CryoFailure(.invalidArchive, "refused")
        #expect(CryoFailure.Code.of(ImageFailure.classify(refused)) == .invalidArchive)
    }

    @Test func aMalformedArchiveIsInvalid() throws {
        let dir = "/tmp/cryo-imgfail-\(getpid())"
        try FS.mkdirAll(dir)
        defer { try? FS.removeAll(dir) }
        try FS.atomicWrite(dir + "/bad.tar", Array("this is not a tar archive at all, just text".utf8), mode: 0o644, durable: false)
        let store = try ImageStore(root: dir + "/store")
        let e = #expect(throws: (any Error).self) { try store.load(archive: dir + "/bad.tar") }
        #expect(e.map { CryoFailure.Code.of($0) } == .invalidArchive)
    }
}
