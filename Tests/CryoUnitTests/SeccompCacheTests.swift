import CryoOCI
import FoundationEssentials
import Glibc
import Testing
@testable import CryoLinux
@testable import CryoRuntime

/// Compiled seccomp programs are stored once per profile and found again only for the very
/// same profile.
@Suite("seccomp program cache")
struct SeccompCacheTests {
    let profile = Spec.Seccomp(defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: 1, architectures: ["SCMP_ARCH_X86_64"],
                               syscalls: [Spec.Syscall(names: ["read", "write", "exit_group"], action: "SCMP_ACT_ALLOW")])

    @Test("store then lookup gives libseccomp's program; another profile or a damaged file gives none")
    func storeAndLookup() throws {
        let root = "/tmp/cryo-seccomp-cache-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FS.removeAll(root) }
        #expect(SeccompCache.lookup(profile, root: root) == nil)
        try SeccompCache.store(profile, root: root)
        let program = try #require(SeccompCache.lookup(profile, root: root))
        #expect(program.count % 8 == 0 && !program.isEmpty)
        // The same bytes libseccomp exports for it.
        let path = root + "/direct"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        try SeccompFilter.export(profile, to: fd)
        close(fd)
        #expect(try FS.readBytes(path) == program)
        var other = profile
        other.defaultErrnoRet = 38
        #expect(SeccompCache.lookup(other, root: root) == nil)
        // A file whose profile part differs (a hash collision, or damage) is not used.
        let json = try SeccompCache.canonical(profile)
        let file = SeccompCache.directory(root: root) + "/" + SeccompCache.name(json)
        var bytes = try FS.readBytes(file)
        bytes[10] ^= 0xff
        try FS.atomicWrite(file, bytes, mode: 0o600, durable: false)
        #expect(SeccompCache.lookup(profile, root: root) == nil)
    }
}
