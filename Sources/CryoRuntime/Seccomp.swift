import CSeccomp
import CShim
import CryoLinux
import CryoOCI
import Glibc

/// Loads an OCI seccomp profile with libseccomp.
enum SeccompFilter {
    static func action(_ name: String, errno: UInt32?) throws -> UInt32 {
        switch name {
        case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD": return 0x0000_0000
        case "SCMP_ACT_KILL_PROCESS": return 0x8000_0000
        case "SCMP_ACT_TRAP": return 0x0003_0000
        case "SCMP_ACT_ERRNO": return 0x0005_0000 | ((errno ?? UInt32(EPERM)) & 0xffff)
        case "SCMP_ACT_TRACE": return 0x7ff0_0000 | ((errno ?? UInt32(EPERM)) & 0xffff)
        case "SCMP_ACT_ALLOW": return 0x7fff_0000
        case "SCMP_ACT_LOG": return 0x7ffc_0000
        case "SCMP_ACT_NOTIFY": throw CryoFailure(.unsupported, "seccomp action SCMP_ACT_NOTIFY is not supported")
        default: throw CryoFailure(.invalidArgument, "unknown seccomp action \"\(name)\"")
        }
    }

    static func op(_ name: String) throws -> scmp_compare {
        switch name {
        case "SCMP_CMP_NE": return SCMP_CMP_NE
        case "SCMP_CMP_LT": return SCMP_CMP_LT
        case "SCMP_CMP_LE": return SCMP_CMP_LE
        case "SCMP_CMP_EQ": return SCMP_CMP_EQ
        case "SCMP_CMP_GE": return SCMP_CMP_GE
        case "SCMP_CMP_GT": return SCMP_CMP_GT
        case "SCMP_CMP_MASKED_EQ": return SCMP_CMP_MASKED_EQ
        default: throw CryoFailure(.invalidArgument, "unknown seccomp operator \"\(name)\"")
        }
    }

    static func load(_ profile: Spec.Seccomp) throws {
        let ctx = try context(profile)
        defer { seccomp_release(ctx) }
        let r = seccomp_load(ctx)
        if r != 0 { throw SyscallError("seccomp_load", "", errno: -r) }
    }

    /// The BPF program libseccomp would load for the profile (struct sock_filter array),
    /// written to `fd`. Generating it is most of the cost of loading (~10-15 ms for
    /// Docker's default profile here), hence `SeccompCache`.
    static func export(_ profile: Spec.Seccomp, to fd: Int32) throws {
        let ctx = try context(profile)
        defer { seccomp_release(ctx) }
        let r = seccomp_export_bpf(ctx, fd)
        if r != 0 { throw SyscallError("seccomp_export_bpf", "", errno: -r) }
    }

    /// The seccomp(2) flags of the profile's `flags` (libseccomp passes them at load; a
    /// compiled program needs them given again).
    static func kernelFlags(_ profile: Spec.Seccomp) throws -> UInt32 {
        try (profile.flags ?? []).reduce(UInt32(0)) { acc, flag in
            switch flag {
            case "SECCOMP_FILTER_FLAG_TSYNC": return acc | 1
            case "SECCOMP_FILTER_FLAG_LOG": return acc | 2
            case "SECCOMP_FILTER_FLAG_SPEC_ALLOW": return acc | 4
            default: throw CryoFailure(.unsupported, "seccomp flag \"\(flag)\" is not supported")
            }
        }
    }

    /// Loads a compiled program (as exported above).
    static func load(program: [UInt8], flags: UInt32) throws {
        guard !program.isEmpty, program.count % 8 == 0, program.count / 8 <= 4096 else {
            throw CryoFailure(.internal, "compiled seccomp program of \(program.count) bytes is not a BPF program")
        }
        let r = program.withUnsafeBytes { cryo_seccomp_set_filter($0.baseAddress, UInt32($0.count), flags) }
        if r != 0 { throw SyscallError("seccomp(SECCOMP_SET_MODE_FILTER)", "compiled program") }
    }

    static func context(_ profile: Spec.Seccomp) throws -> scmp_filter_ctx {
        let defaultAction = try action(profile.defaultAction, errno: profile.defaultErrnoRet)
        guard let ctx = seccomp_init(defaultAction) else { throw CryoFailure(.internal, "seccomp_init failed") }
        do {
            try addRules(profile, defaultAction: defaultAction, to: ctx)
        } catch {
            seccomp_release(ctx)
            throw error
        }
        return ctx
    }

    static func addRules(_ profile: Spec.Seccomp, defaultAction: UInt32, to ctx: scmp_filter_ctx) throws {
        // libseccomp sets no_new_privs on load by default; the spec decides that
        // (process.noNewPrivileges), and we load while still holding CAP_SYS_ADMIN.
        let nnp = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)
        if nnp != 0 { throw SyscallError("seccomp_attr_set(CTL_NNP)", "", errno: -nnp) }
        for flag in profile.flags ?? [] {
            let attr: scmp_filter_attr
            switch flag {
            case "SECCOMP_FILTER_FLAG_TSYNC": attr = SCMP_FLTATR_CTL_TSYNC
            case "SECCOMP_FILTER_FLAG_LOG": attr = SCMP_FLTATR_CTL_LOG
            case "SECCOMP_FILTER_FLAG_SPEC_ALLOW": attr = SCMP_FLTATR_CTL_SSB
            default: throw CryoFailure(.unsupported, "seccomp flag \"\(flag)\" is not supported")
            }
            let r = seccomp_attr_set(ctx, attr, 1)
            if r != 0 { throw SyscallError("seccomp_attr_set", flag, errno: -r) }
        }
        for arch in profile.architectures ?? [] {
            let name = arch.hasPrefix("SCMP_ARCH_") ? String(arch.dropFirst(10)).lowercased() : arch.lowercased()
            let token = seccomp_arch_resolve_name(name)
            if token == 0 { continue }   // an architecture libseccomp does not know: skip, like runc
            let r = seccomp_arch_add(ctx, token)
            if r != 0 && r != -EEXIST { throw SyscallError("seccomp_arch_add", arch, errno: -r) }
        }
        for rule in profile.syscalls ?? [] {
            let act = try action(rule.action, errno: rule.errnoRet)
            if act == defaultAction { continue }
            var cmps: [scmp_arg_cmp] = []
            for a in rule.args ?? [] {
                cmps.append(scmp_arg_cmp(arg: a.index, op: try op(a.op), datum_a: a.value, datum_b: a.valueTwo ?? 0))
            }
            for name in rule.names {
                let nr = seccomp_syscall_resolve_name(name)
                if nr == __NR_SCMP_ERROR { continue }   // unknown on this kernel/arch: nothing to filter
                let r = cmps.withUnsafeBufferPointer { p in
                    seccomp_rule_add_array(ctx, act, nr, UInt32(p.count), p.baseAddress)
                }
                if r != 0 { throw SyscallError("seccomp_rule_add", name, errno: -r) }
            }
        }
    }
}
