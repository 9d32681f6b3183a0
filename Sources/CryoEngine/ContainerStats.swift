import CryoLinux
import FoundationEssentials

/// `docker stats`: Docker's stats JSON, made from the text of a container's cgroup files
/// (v1 or v2), /proc/stat and its network namespace's /proc/PID/net/dev. Pure: the engine
/// reads the files (`Engine+Stats`), this turns their text into numbers.
///
/// The docker CLI computes its columns from these fields (and only these): CPU % from
/// cpu_stats/precpu_stats (`total_usage`, `system_cpu_usage`, `online_cpus`), MEM USAGE from
/// memory_stats `usage` minus `stats.total_inactive_file` (v1) or `stats.inactive_file` (v2)
/// over `limit`, NET I/O from `networks.*.rx_bytes/tx_bytes`, BLOCK I/O from
/// `blkio_stats.io_service_bytes_recursive` (op read/write), PIDS from `pids_stats.current`.
public struct ContainerStats: Codable, Sendable, Equatable {
    public struct CPUUsage: Codable, Sendable, Equatable {
        public var total_usage: UInt64 = 0
        public var usage_in_kernelmode: UInt64 = 0
        public var usage_in_usermode: UInt64 = 0
        public init() {}
    }
    public struct Throttling: Codable, Sendable, Equatable {
        public var periods: UInt64 = 0
        public var throttled_periods: UInt64 = 0
        public var throttled_time: UInt64 = 0
        public init() {}
    }
    public struct CPU: Codable, Sendable, Equatable {
        public var cpu_usage = CPUUsage()
        public var system_cpu_usage: UInt64 = 0
        public var online_cpus: UInt32 = 0
        public var throttling_data = Throttling()
        public init() {}
    }
    public struct Memory: Codable, Sendable, Equatable {
        public var usage: UInt64 = 0
        public var max_usage: UInt64?
        public var stats: [String: UInt64] = [:]
        public var limit: UInt64 = 0
        public init() {}
    }
    public struct Pids: Codable, Sendable, Equatable {
        public var current: UInt64 = 0
        public var limit: UInt64?
        public init() {}
    }
    public struct BlkioEntry: Codable, Sendable, Equatable {
        public var major: UInt64
        public var minor: UInt64
        public var op: String
        public var value: UInt64
    }
    public struct Blkio: Codable, Sendable, Equatable {
        public var io_service_bytes_recursive: [BlkioEntry] = []
        public var io_serviced_recursive: [BlkioEntry] = []
        public init() {}
    }
    public struct Network: Codable, Sendable, Equatable {
        public var rx_bytes: UInt64 = 0
        public var rx_packets: UInt64 = 0
        public var rx_errors: UInt64 = 0
        public var rx_dropped: UInt64 = 0
        public var tx_bytes: UInt64 = 0
        public var tx_packets: UInt64 = 0
        public var tx_errors: UInt64 = 0
        public var tx_dropped: UInt64 = 0
        public init() {}
    }

    public var name: String = ""
    public var id: String = ""
    public var read: String = "0001-01-01T00:00:00Z"
    public var preread: String = "0001-01-01T00:00:00Z"
    public var pids_stats = Pids()
    public var blkio_stats = Blkio()
    public var num_procs: UInt32 = 0
    public var cpu_stats = CPU()
    public var precpu_stats = CPU()
    public var memory_stats = Memory()
    public var networks: [String: Network]?
    public init() {}

    // MARK: parsing the kernel's text

    /// "key value" lines (memory.stat, cpu.stat) → numbers.
    public static func keyValues(_ text: String) -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            if f.count == 2, let v = UInt64(f[1]) { out[String(f[0])] = v }
        }
        return out
    }

    /// A file holding one number, or "max" (nil).
    public static func number(_ text: String?) -> UInt64? {
        text.flatMap { UInt64($0.trimmed) }
    }

    /// The whole machine's CPU time in nanoseconds, as dockerd counts it: the first seven
    /// fields of /proc/stat's "cpu" line (user … softirq), in clock ticks of 1/100 s.
    public static func systemCPUNanos(procStat: String) -> UInt64 {
        guard let line = procStat.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) else { return 0 }
        let ticks = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().prefix(7).compactMap { UInt64($0) }
        return ticks.reduce(0, +) * (1_000_000_000 / 100)
    }

    /// cgroup v2 cpu.stat (microseconds) → the CPU usage in nanoseconds.
    public static func cpuFromV2(cpuStat: String) -> (CPUUsage, Throttling) {
        let kv = keyValues(cpuStat)
        var u = CPUUsage()
        u.total_usage = (kv["usage_usec"] ?? 0) * 1000
        u.usage_in_usermode = (kv["user_usec"] ?? 0) * 1000
        u.usage_in_kernelmode = (kv["system_usec"] ?? 0) * 1000
        var t = Throttling()
        t.periods = kv["nr_periods"] ?? 0
        t.throttled_periods = kv["nr_throttled"] ?? 0
        t.throttled_time = (kv["throttled_usec"] ?? 0) * 1000
        return (u, t)
    }

    /// cgroup v2 io.stat ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 …") or v1
    /// blkio.*io_service_bytes_recursive ("8:0 Read 123", "Total 123") → Docker's entries.
    public static func blkio(_ text: String) -> (bytes: [BlkioEntry], ios: [BlkioEntry]) {
        var bytes: [BlkioEntry] = [], ios: [BlkioEntry] = []
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let dev = f.first else { continue }
            let mm = dev.split(separator: ":")
            guard mm.count == 2, let major = UInt64(mm[0]), let minor = UInt64(mm[1]) else { continue }
            if f.count == 3, let v = UInt64(f[2]) {
                // v1: one operation per line, Docker keeps its capitalised name.
                bytes.append(BlkioEntry(major: major, minor: minor, op: String(f[1]), value: v))
                continue
            }
            var kv: [String: UInt64] = [:]
            for pair in f.dropFirst() {
                let p = pair.split(separator: "=", maxSplits: 1)
                if p.count == 2, let v = UInt64(p[1]) { kv[String(p[0])] = v }
            }
            guard !kv.isEmpty else { continue }
            bytes.append(BlkioEntry(major: major, minor: minor, op: "read", value: kv["rbytes"] ?? 0))
            bytes.append(BlkioEntry(major: major, minor: minor, op: "write", value: kv["wbytes"] ?? 0))
            ios.append(BlkioEntry(major: major, minor: minor, op: "read", value: kv["rios"] ?? 0))
            ios.append(BlkioEntry(major: major, minor: minor, op: "write", value: kv["wios"] ?? 0))
        }
        return (bytes, ios)
    }

    /// /proc/PID/net/dev of the container's namespace → per-interface counters (lo left out,
    /// as Docker reports only the container's endpoints).
    public static func networks(netDev: String) -> [String: Network] {
        var out: [String: Network] = [:]
        for line in netDev.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimmed
            let v = line[line.index(after: colon)...].split(separator: " ", omittingEmptySubsequences: true).compactMap { UInt64($0) }
            guard !name.isEmpty, name != "lo", v.count >= 12 else { continue }
            var n = Network()
            n.rx_bytes = v[0]; n.rx_packets = v[1]; n.rx_errors = v[2]; n.rx_dropped = v[3]
            n.tx_bytes = v[8]; n.tx_packets = v[9]; n.tx_errors = v[10]; n.tx_dropped = v[11]
            out[name] = n
        }
        return out
    }

    /// The memory limit Docker reports: the cgroup's, bounded by the machine's memory (an
    /// unlimited v1 cgroup says 9223372036854771712, v2 says "max").
    public static func memoryLimit(_ cgroupLimit: UInt64?, memTotal: UInt64) -> UInt64 {
        guard let l = cgroupLimit, l > 0, memTotal == 0 || l < memTotal else { return memTotal }
        return l
    }

    /// MemTotal of /proc/meminfo, in bytes.
    public static func memTotal(meminfo: String) -> UInt64 {
        for line in meminfo.split(separator: "\n") where line.hasPrefix("MemTotal:") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            if f.count >= 2, let kb = UInt64(f[1]) { return kb * 1024 }
        }
        return 0
    }

    /// The CPU percentage the docker CLI shows for this sample (for cryo's own CLI and tests).
    public var cpuPercent: Double {
        let cpuDelta = Double(cpu_stats.cpu_usage.total_usage) - Double(precpu_stats.cpu_usage.total_usage)
        let sysDelta = Double(cpu_stats.system_cpu_usage) - Double(precpu_stats.system_cpu_usage)
        guard cpuDelta > 0, sysDelta > 0 else { return 0 }
        return cpuDelta / sysDelta * Double(max(cpu_stats.online_cpus, 1)) * 100
    }

    /// Memory in use without the inactive page cache, as the docker CLI counts it.
    public var memoryUsedWithoutCache: UInt64 {
        let m = memory_stats
        if let v = m.stats["total_inactive_file"], v < m.usage { return m.usage - v }
        if let v = m.stats["inactive_file"], v < m.usage { return m.usage - v }
        return m.usage
    }
}
