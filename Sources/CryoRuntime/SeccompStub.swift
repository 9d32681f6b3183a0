import CSeccomp
import CryoLinux
import CryoOCI
import Glibc

/// A few BPF instructions put in front of libseccomp's program (x86_64 only), for what
/// libseccomp 2.5 cannot express:
/// - syscalls newer than its table (mseal, statmount, the *xattrat calls...): a profile's
///   unconditional rule for one of them is applied by number (`newerSyscalls`);
/// - a syscall newer than every one the profile names answers ENOSYS, not the profile's
///   default (EPERM): programs then fall back as on an older kernel. runc does the same.
enum SeccompStub {
    /// x86_64 numbers of syscalls this libseccomp may not know (the same numbers on i386
    /// from 457 up; x32 adds 0x40000000 and is left to libseccomp).
    static let newerSyscalls: [String: UInt32] = [
        "uretprobe": 335, "statmount": 457, "listmount": 458, "lsm_get_self_attr": 459, "lsm_set_self_attr": 460,
        "lsm_list_modules": 461, "mseal": 462, "setxattrat": 463, "getxattrat": 464, "listxattrat": 465,
        "removexattrat": 466,
    ]
    static let auditArchX86_64: UInt32 = 0xC000_003E
    static let x32Bit: UInt32 = 0x4000_0000

    struct Instruction { var code: UInt16; var jt: UInt8 = 0; var jf: UInt8 = 0; var k: UInt32 = 0 }

    /// The instructions to put first, as bytes (empty when nothing applies).
    static func prefix(_ profile: Spec.Seccomp) throws -> [UInt8] {
        guard SeccompProfileArch.isX86_64 else { return [] }
        let defaultAction = try SeccompFilter.action(profile.defaultAction, errno: profile.defaultErrnoRet)
        let permissive = defaultAction == 0x7fff_0000 || defaultAction == 0x7ffc_0000   // ALLOW, LOG
        var byNumber: [(nr: UInt32, ret: UInt32)] = []
        var highest: UInt32 = 0
        for rule in profile.syscalls ?? [] {
            for name in rule.names {
                let nr = seccomp_syscall_resolve_name_arch(auditArchX86_64, name)   // SCMP_ARCH_X86_64 is AUDIT_ARCH_X86_64
                if nr >= 0 { highest = max(highest, UInt32(nr)); continue }
                guard let n = newerSyscalls[name] else { continue }
                highest = max(highest, n)
                let act = try SeccompFilter.action(rule.action, errno: rule.errnoRet)
                if (rule.args ?? []).isEmpty && act != defaultAction && !byNumber.contains(where: { $0.nr == n }) {
                    byNumber.append((n, act))
                }
            }
        }
        let enosysAbove = permissive || highest == 0 ? nil : highest
        if byNumber.isEmpty && enosysAbove == nil { return [] }

        // ld arch; jne x86_64 → original; ld nr; jset x32 → original; jeq N → ret…; jgt highest → ENOSYS; ja original; rets
        let ldAbs: UInt16 = 0x20, jeq: UInt16 = 0x15, jgt: UInt16 = 0x25, jset: UInt16 = 0x45, ja: UInt16 = 0x05, ret: UInt16 = 0x06
        let rets = byNumber.map(\.ret) + (enosysAbove != nil ? [0x0005_0000 | UInt32(ENOSYS)] : [])
        let head = 4 + byNumber.count + (enosysAbove != nil ? 1 : 0) + 1   // instructions before the rets
        let total = head + rets.count
        var p: [Instruction] = []
        func toOriginal(from i: Int) -> Int { total - (i + 1) }
        p.append(Instruction(code: ldAbs, k: 4))
        p.append(Instruction(code: jeq, jt: 0, jf: UInt8(toOriginal(from: 1)), k: auditArchX86_64))
        p.append(Instruction(code: ldAbs, k: 0))
        p.append(Instruction(code: jset, jt: UInt8(toOriginal(from: 3)), jf: 0, k: x32Bit))
        for (i, entry) in byNumber.enumerated() {
            let at = p.count
            p.append(Instruction(code: jeq, jt: UInt8(head + i - (at + 1)), jf: 0, k: entry.nr))
        }
        if let h = enosysAbove {
            let at = p.count
            p.append(Instruction(code: jgt, jt: UInt8(head + byNumber.count - (at + 1)), jf: 0, k: h))
        }
        p.append(Instruction(code: ja, k: UInt32(toOriginal(from: p.count))))
        for r in rets { p.append(Instruction(code: ret, k: r)) }
        guard p.count == total, total < 200 else { throw CryoFailure(.internal, "seccomp stub: \(p.count) instructions, expected \(total)") }
        var bytes: [UInt8] = []
        for ins in p {
            bytes += [UInt8(ins.code & 0xff), UInt8(ins.code >> 8), ins.jt, ins.jf]
            bytes += (0..<4).map { UInt8((ins.k >> (8 * UInt32($0))) & 0xff) }
        }
        return bytes
    }
}

enum SeccompProfileArch {
    static let isX86_64: Bool = {
        var u = utsname()
        uname(&u)
        return withUnsafeBytes(of: u.machine) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) } == "x86_64"
    }()
}
