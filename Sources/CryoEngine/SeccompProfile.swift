import CryoOCI
import FoundationEssentials
import Glibc

/// A seccomp profile in Docker's format: what `--security-opt seccomp=FILE` carries (the
/// docker CLI sends the file's JSON) and what cryo's default profile is built as. Its rules
/// may depend on the container's capabilities, the architecture and the kernel version
/// (`includes`/`excludes`); `resolve` turns it into the OCI `linux.seccomp` of one container.
public struct SeccompProfile: Codable, Sendable, Equatable {
    public struct ArchMap: Codable, Sendable, Equatable {
        public var architecture: String
        public var subArchitectures: [String]?
    }

    /// When a rule applies: every listed capability held (includes) / any held (excludes);
    /// the architecture (Go's names: amd64, x86, arm64...) listed; the kernel at least minKernel.
    public struct Condition: Codable, Sendable, Equatable {
        public var caps: [String]?
        public var arches: [String]?
        public var minKernel: String?
        public init(caps: [String]? = nil, arches: [String]? = nil, minKernel: String? = nil) {
            self.caps = caps
            self.arches = arches
            self.minKernel = minKernel
        }
    }

    public struct Rule: Codable, Sendable, Equatable {
        public var names: [String]?
        public var name: String?
        public var action: String
        public var errnoRet: UInt32?
        public var args: [Spec.SyscallArg]?
        public var includes: Condition?
        public var excludes: Condition?
        public var comment: String?
        public init(names: [String], action: String, errnoRet: UInt32? = nil, args: [Spec.SyscallArg]? = nil,
                    includes: Condition? = nil, excludes: Condition? = nil) {
            self.names = names
            self.action = action
            self.errnoRet = errnoRet
            self.args = args
            self.includes = includes
            self.excludes = excludes
        }
    }

    public var defaultAction: String
    public var defaultErrnoRet: UInt32?
    public var architectures: [String]?
    public var archMap: [ArchMap]?
    public var syscalls: [Rule]?
    public var flags: [String]?
    public var listenerPath: String?

    public init(defaultAction: String, defaultErrnoRet: UInt32?, archMap: [ArchMap], syscalls: [Rule]) {
        self.defaultAction = defaultAction
        self.defaultErrnoRet = defaultErrnoRet
        self.archMap = archMap
        self.syscalls = syscalls
    }

    /// A profile from `--security-opt seccomp=<JSON>`; errors name what is wrong.
    public static func decode(_ json: String) throws -> SeccompProfile {
        let p: SeccompProfile
        do {
            p = try JSONDecoder().decode(SeccompProfile.self, from: Data(json.utf8))
        } catch {
            throw EngineError.bad("decoding seccomp profile failed: \(error)")
        }
        try p.validate()
        return p
    }

    static let actions: Set<String> = [
        "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",
    ]
    static let operators: Set<String> = [
        "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ",
    ]
    static let knownFlags: Set<String> = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]

    /// What the runtime could not load is refused at create, not at start.
    func validate() throws {
        func check(action: String) throws {
            if action == "SCMP_ACT_NOTIFY" {
                throw EngineError.bad("seccomp profile: SCMP_ACT_NOTIFY needs a seccomp agent, which cryo does not support")
            }
            guard Self.actions.contains(action) else { throw EngineError.bad("seccomp profile: unknown action \"\(action)\"") }
        }
        try check(action: defaultAction)
        if listenerPath.map({ !$0.isEmpty }) == true {
            throw EngineError.bad("seccomp profile: listenerPath (a seccomp agent) is not supported by cryo")
        }
        if architectures.map({ !$0.isEmpty }) == true && archMap.map({ !$0.isEmpty }) == true {
            throw EngineError.bad("seccomp profile: both 'architectures' and 'archMap' are given; use one of them")
        }
        for f in flags ?? [] where !Self.knownFlags.contains(f) {
            throw EngineError.bad("seccomp profile: flag \"\(f)\" is not supported")
        }
        for r in syscalls ?? [] {
            if r.name != nil && r.names != nil {
                throw EngineError.bad("seccomp profile: a rule gives both 'name' and 'names'; use one of them")
            }
            try check(action: r.action)
            for a in r.args ?? [] where !Self.operators.contains(a.op) {
                throw EngineError.bad("seccomp profile: unknown operator \"\(a.op)\"")
            }
        }
    }

    /// This machine's architecture in libseccomp's and in Go's naming (the names the
    /// profile format uses in `archMap` and in `includes.arches`).
    public static let nativeArch: (scmp: String, go: String) = {
        var u = utsname()
        uname(&u)
        let machine = withUnsafeBytes(of: u.machine) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        switch machine {
        case "x86_64": return ("SCMP_ARCH_X86_64", "amd64")
        case "aarch64": return ("SCMP_ARCH_AARCH64", "arm64")
        case "i386", "i686": return ("SCMP_ARCH_X86", "386")
        case "s390x": return ("SCMP_ARCH_S390X", "s390x")
        case "ppc64le": return ("SCMP_ARCH_PPC64LE", "ppc64le")
        case "riscv64": return ("SCMP_ARCH_RISCV64", "riscv64")
        default: return ("SCMP_ARCH_" + machine.uppercased(), machine)
        }
    }()

    /// The running kernel's (major, minor).
    public static let kernelVersion: (Int, Int) = {
        var u = utsname()
        uname(&u)
        let release = withUnsafeBytes(of: u.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        return parseVersion(release) ?? (0, 0)
    }()

    static func parseVersion(_ s: String) -> (Int, Int)? {
        let parts = s.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard parts.count == 2 else { return nil }
        return (parts[0], parts[1])
    }

    /// The OCI profile for a container holding `capabilities` (OCI names, CAP_ prefixed).
    public func resolve(capabilities: [String], arch: (scmp: String, go: String) = nativeArch,
                        kernel: (Int, Int) = kernelVersion) throws -> Spec.Seccomp {
        let caps = Set(capabilities.map { $0.uppercased() })
        var arches = architectures ?? []
        for m in archMap ?? [] where m.architecture == arch.scmp {
            arches.append(m.architecture)
            arches += m.subArchitectures ?? []
        }
        var rules: [Spec.Syscall] = []
        for r in syscalls ?? [] {
            if let inc = r.includes {
                if let need = inc.caps, !need.allSatisfy({ caps.contains($0.uppercased()) }) { continue }
                if let a = inc.arches, !a.isEmpty, !a.contains(arch.go) { continue }
                if let k = inc.minKernel {
                    guard let min = Self.parseVersion(k) else { throw EngineError.bad("seccomp profile: invalid minKernel \"\(k)\"") }
                    if kernel < min { continue }
                }
            }
            if let exc = r.excludes {
                if let held = exc.caps, held.contains(where: { caps.contains($0.uppercased()) }) { continue }
                if let a = exc.arches, a.contains(arch.go) { continue }
                if let k = exc.minKernel, let min = Self.parseVersion(k), kernel >= min { continue }
            }
            let names = r.names ?? r.name.map { [$0] } ?? []
            if names.isEmpty { continue }
            rules.append(Spec.Syscall(names: names, action: r.action, errnoRet: r.errnoRet, args: r.args))
        }
        return Spec.Seccomp(defaultAction: defaultAction, defaultErrnoRet: defaultErrnoRet,
                            architectures: arches.isEmpty ? nil : arches, flags: flags, syscalls: rules)
    }
}
