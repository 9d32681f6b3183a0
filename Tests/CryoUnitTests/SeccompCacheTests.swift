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
        // libseccomp's program behind the stub.
        let path = root + "/direct"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        try SeccompFilter.export(profile, to: fd)
        close(fd)
        let stub = try SeccompStub.prefix(profile)
        #expect(!stub.isEmpty)
        #expect(try stub + FS.readBytes(path) == program)
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

    /// (code, jt, jf, k) of each instruction.
    func decode(_ bytes: [UInt8]) -> [(UInt16, UInt8, UInt8, UInt32)] {
        var out: [(UInt16, UInt8, UInt8, UInt32)] = []
        var i = 0
        while i + 8 <= bytes.count {
            let code = UInt16(bytes[i]) | (UInt16(bytes[i + 1]) << 8)
            var k: UInt32 = 0
            for j in 0..<4 { k |= UInt32(bytes[i + 4 + j]) << UInt32(8 * j) }
            out.append((code, bytes[i + 2], bytes[i + 3], k))
            i += 8
        }
        return out
    }

    @Test("the stub: newer syscalls by number, ENOSYS above the newest named, nothing for a permissive profile")
    func stub() throws {
        var p = profile
        p.syscalls?.append(Spec.Syscall(names: ["mseal"], action: "SCMP_ACT_ALLOW"))
        let ins = decode(try SeccompStub.prefix(p))
        // ld arch, jeq x86_64, ld nr, jset x32, jeq 462, jgt 462, ja, ret allow, ret ENOSYS
        #expect(ins.count == 9)
        #expect(ins[1].3 == 0xC000_003E && ins[3].3 == 0x4000_0000)
        #expect(ins[4].0 == 0x15 && ins[4].3 == 462 && Int(ins[4].1) == 7 - 5)
        #expect(ins[5].0 == 0x25 && ins[5].3 == 462 && Int(ins[5].1) == 8 - 6)
        #expect(ins[6].0 == 0x05 && Int(ins[6].3) == 9 - 7)
        #expect(ins[7].3 == 0x7fff_0000 && ins[8].3 == 0x0005_0026)
        #expect(Int(ins[1].2) == 9 - 2 && Int(ins[3].1) == 9 - 4)
        var allow = Spec.Seccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: [Spec.Syscall(names: ["mkdir"], action: "SCMP_ACT_ERRNO")])
        #expect(try SeccompStub.prefix(allow).isEmpty)
        allow.syscalls?.append(Spec.Syscall(names: ["statmount"], action: "SCMP_ACT_ERRNO", errnoRet: 13))
        let blocking = decode(try SeccompStub.prefix(allow))
        #expect(blocking.contains { $0.0 == 0x15 && $0.3 == 457 } && blocking.contains { $0.0 == 0x06 && $0.3 == 0x0005_000d })
        #expect(!blocking.contains { $0.0 == 0x25 })   // a permissive default: no ENOSYS range
    }
}
