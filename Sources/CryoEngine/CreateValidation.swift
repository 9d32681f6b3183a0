import CryoLinux
import CryoOCI
import Glibc

/// What a create request may hold, checked before anything is written: every number is
/// range-checked before it is converted or multiplied (a request must never trap cryod),
/// and whatever would only fail at start (a hostname the kernel refuses, an environment
/// execve refuses) is refused here with a 400. Messages are Docker's where it has one.
public enum CreateValidation {
    /// The kernel's limit for one argv/envp string (MAX_ARG_STRLEN, with its NUL).
    public static let maxArgumentBytes = 128 * 1024
    /// Cmd + Entrypoint + Env (the image's included) together: well inside execve's limit
    /// (a quarter of the 8 MiB default stack) with room for the runtime's own additions.
    public static let maxCommandAndEnvironmentBytes = 1 << 20
    /// Labels, keys and values together.
    public static let maxLabelBytes = 256 * 1024
    /// The kernel's limit for a hostname or domain name (__NEW_UTS_LEN).
    public static let maxHostnameBytes = 64
    /// cfs quota: the kernel refuses more than 2^44-1 µs (max_cfs_runtime).
    public static let maxCPUQuota: Int64 = (1 << 44) - 1
    /// cgroup v1 shares range; larger or smaller values are clamped by the kernel (and by
    /// the v2 weight conversion), as with Docker.
    public static let cpuSharesRange: ClosedRange<Int64> = 2...262_144

    public static func onlineCPUs() -> Int {
        max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }

    /// The request's config and host config, checked; returns the host config as Docker
    /// stores it (PidsLimit ≤ 0 means unlimited and is dropped, as dockerd does).
    public static func validate(config: ContainerConfig, hostConfig: HostConfig) throws -> HostConfig {
        var host = hostConfig
        if let h = config.Hostname, !h.isEmpty { try hostname(h) }
        if let d = config.Domainname, !d.isEmpty {
            guard d.utf8.count <= maxHostnameBytes, isRFC1123(d) else {
                throw EngineError.bad("invalid domainname format: \(d) (want an RFC 1123 name of at most \(maxHostnameBytes) bytes)")
            }
        }
        try sizes(config)
        try noNULs(config, hostConfig)
        if let s = config.StopSignal, !s.isEmpty, Signals.parse(s) == nil { throw EngineError.bad("invalid signal: \(s)") }
        if let cs = hostConfig.ConsoleSize { try consoleSize(cs, field: "HostConfig.ConsoleSize") }
        if let s = hostConfig.ShmSize, s < 0 { throw EngineError.bad("SHM size can not be less than 0") }
        if let t = config.StopTimeout, t < -1 {
            throw EngineError.bad("invalid StopTimeout \(t): want -1 (wait forever), 0 or a number of seconds")
        }
        if let p = host.PidsLimit, p <= 0 { host.PidsLimit = nil }
        _ = try ExtraHosts.parse(hostConfig.ExtraHosts)
        if hostConfig.ExtraHosts?.isEmpty == false, hostConfig.NetworkMode == "host" {
            throw EngineError.bad("--add-host is not supported with network mode host: the container shares the host's /etc/hosts")
        }
        return host
    }

    /// An exec's checks: the same sizes as a container's command and environment, a
    /// terminal size that fits a winsize.
    public static func execRequest(_ req: ExecCreateRequest) throws {
        var c = ContainerConfig()
        c.Cmd = req.Cmd
        c.Env = req.Env
        try sizes(c)
        if let cs = req.ConsoleSize { try consoleSize(cs, field: "ConsoleSize") }
    }

    /// A NUL byte cannot reach the kernel: a C string stops there, so "/a\u{0}b" would
    /// silently become "/a". Refused in everything that becomes a path, argument or variable.
    static func noNULs(_ c: ContainerConfig, _ h: HostConfig) throws {
        let fields: [(String, [String])] = [
            ("Cmd", c.Cmd ?? []), ("Entrypoint", c.Entrypoint ?? []), ("Env", c.Env ?? []),
            ("WorkingDir", c.WorkingDir.map { [$0] } ?? []), ("User", c.User.map { [$0] } ?? []),
            ("HostConfig.Binds", h.Binds ?? []),
        ]
        for (field, values) in fields where values.contains(where: { $0.utf8.contains(0) }) {
            throw EngineError.bad("invalid \(field): a value contains a NUL byte")
        }
    }

    /// Docker's hostname rule (RFC 1123 labels), and the kernel's 64-byte limit.
    public static func hostname(_ h: String) throws {
        guard isRFC1123(h) else { throw EngineError.bad("invalid hostname format: \(h)") }
        guard h.utf8.count <= maxHostnameBytes else {
            throw EngineError.bad("invalid hostname \(h.prefix(80))…: \(h.utf8.count) bytes, the kernel allows at most \(maxHostnameBytes)")
        }
    }

    /// Dot-separated labels of letters, digits and inner '-', each 1–63 bytes.
    static func isRFC1123(_ s: String) -> Bool {
        let labels = s.split(separator: ".", omittingEmptySubsequences: false)
        return !labels.isEmpty && labels.allSatisfy { l in
            let u = Array(l.utf8)
            func alnum(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) }
            guard (1...63).contains(u.count), alnum(u.first!), alnum(u.last!) else { return false }
            return u.allSatisfy { alnum($0) || $0 == 0x2d }
        }
    }

    /// A terminal size: [height, width], each 0–65535 (a winsize holds 16 bits).
    public static func consoleSize(_ cs: [Int], field: String) throws {
        guard cs.count == 2, cs.allSatisfy({ (0...Int(UInt16.max)).contains($0) }) else {
            throw EngineError.bad("invalid \(field) \(cs): want [height, width], each from 0 to \(UInt16.max)")
        }
    }

    static func sizes(_ config: ContainerConfig) throws {
        var total = 0
        for (field, list) in [("Cmd", config.Cmd), ("Entrypoint", config.Entrypoint), ("Env", config.Env)] {
            for s in list ?? [] {
                let n = s.utf8.count + 1
                guard n <= maxArgumentBytes else {
                    throw EngineError.bad("\(field): an entry of \(n - 1) bytes is over the kernel's limit of \(maxArgumentBytes - 1) bytes for one argument or variable")
                }
                total += n
            }
        }
        try commandSize(total)
        let labels = (config.Labels ?? [:]).reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
        guard labels <= maxLabelBytes else {
            throw EngineError.bad("Labels are \(labels) bytes: at most \(maxLabelBytes) are allowed")
        }
    }

    /// The process's final argv and environment (the image's included): what execve gets.
    public static func commandSize(argv: [String], env: [String]) throws {
        for (field, list) in [("the command", argv), ("the environment", env)] {
            if let big = list.first(where: { $0.utf8.count >= maxArgumentBytes }) {
                throw EngineError.bad("\(field) has an entry of \(big.utf8.count) bytes (with the image's): over the kernel's limit of \(maxArgumentBytes - 1)")
            }
        }
        try commandSize((argv + env).reduce(0) { $0 + $1.utf8.count + 1 })
    }

    static func commandSize(_ total: Int) throws {
        guard total <= maxCommandAndEnvironmentBytes else {
            throw EngineError.bad("Cmd, Entrypoint and Env together (with the image's) are \(total) bytes: at most \(maxCommandAndEnvironmentBytes) are allowed")
        }
    }

    /// The cgroup limits of a host config, with Docker's checks. No arithmetic before its
    /// operands are known to be in range.
    public static func resources(_ h: HostConfig, cpus: Int) throws -> Spec.Resources {
        var r = Spec.Resources()
        if let m = h.Memory, m != 0 {
            guard m >= 6 * 1024 * 1024 else { throw EngineError.bad("Minimum memory limit allowed is 6MB") }
            r.memory = Spec.Memory(limit: m)
        }
        let nano = h.NanoCpus ?? 0
        let quota = h.CpuQuota ?? 0
        let period = h.CpuPeriod ?? 0
        if nano > 0 && period > 0 { throw EngineError.bad("Conflicting options: Nano CPUs and CPU Period cannot both be set") }
        if nano > 0 && quota > 0 { throw EngineError.bad("Conflicting options: Nano CPUs and CPU Quota cannot both be set") }
        if nano != 0 {
            let (limit, overflow) = Int64(cpus).multipliedReportingOverflow(by: 1_000_000_000)
            // Below 0.01 CPU the quota would be under the kernel's 1 ms minimum.
            guard nano >= 10_000_000, overflow || nano <= limit else {
                throw EngineError.bad("Range of CPUs is from 0.01 to \(cpus).00, as there are only \(cpus) CPUs available")
            }
            // nano ≤ cpus·1e9, so nano / 10_000 (= nano · 100_000 / 1e9) cannot overflow.
            r.cpu = Spec.CPU(quota: nano / 10_000, period: 100_000)
        }
        if period != 0 && (period < 1000 || period > 1_000_000) {
            throw EngineError.bad("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1 second (i.e. 1000000)")
        }
        if quota > 0 && quota < 1000 { throw EngineError.bad("CPU cfs quota can not be less than 1ms (i.e. 1000)") }
        if quota < -1 { throw EngineError.bad("invalid CPU cfs quota \(quota): want -1 (no limit) or at least 1000") }
        if quota > maxCPUQuota { throw EngineError.bad("CPU cfs quota can not be larger than \(maxCPUQuota) (the kernel's limit)") }
        if nano == 0 && (quota != 0 || period != 0) {
            r.cpu = Spec.CPU(quota: quota > 0 ? quota : nil, period: period > 0 ? UInt64(period) : nil)
        }
        if let s = h.CpuShares, s != 0 {
            guard s > 0 else { throw EngineError.bad("invalid CpuShares \(s): shares: invalid argument (must not be negative)") }
            var cpu = r.cpu ?? Spec.CPU()
            cpu.shares = UInt64(min(max(s, cpuSharesRange.lowerBound), cpuSharesRange.upperBound))
            r.cpu = cpu
        }
        if let p = h.PidsLimit, p > 0 { r.pids = Spec.Pids(limit: p) }
        return r
    }
}
