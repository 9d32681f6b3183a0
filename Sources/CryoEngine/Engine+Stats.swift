import CryoLinux
import CryoRuntime
import FoundationEssentials
import Glibc

extension Engine {
    /// One sample of a container's resource use (`docker stats`), read from its cgroup
    /// (v1 or v2 files, whichever hierarchy holds each controller), /proc/stat and its
    /// network namespace. A container that is not running gives zeros, as with Docker.
    public func statsSample(_ ref: String) async throws -> ContainerStats {
        let c = try resolve(ref)
        let cgroupPath = options.cgroupParent + "/" + c.id
        let pid = c.isRunning ? c.pid : 0
        let ownNetwork = c.hostConfig.NetworkMode != "host"
        let id = c.id, name = "/" + c.name
        return try await blocking {
            var s = ContainerStats()
            s.id = id
            s.name = name
            s.read = rfc3339Now()
            guard pid > 0 else { return s }
            Self.readStats(into: &s, cgroup: Cgroup(path: cgroupPath), pid: pid, ownNetwork: ownNetwork)
            return s
        }
    }

    nonisolated static func readStats(into s: inout ContainerStats, cgroup: Cgroup, pid: Int32, ownNetwork: Bool) {
        func read(_ path: String) -> String? { try? FS.readString(path) }
        // CPU: v1 cpuacct.usage (ns) where a v1 cpuacct hierarchy exists, else v2 cpu.stat.
        if let d = cgroup.dir(for: "cpuacct"), let total = ContainerStats.number(read(d + "/cpuacct.usage")) {
            s.cpu_stats.cpu_usage.total_usage = total
            let ticks = ContainerStats.keyValues(read(d + "/cpuacct.stat") ?? "")
            s.cpu_stats.cpu_usage.usage_in_usermode = (ticks["user"] ?? 0) * 10_000_000
            s.cpu_stats.cpu_usage.usage_in_kernelmode = (ticks["system"] ?? 0) * 10_000_000
        } else if let d = cgroup.dir(for: "cpu"), let text = read(d + "/cpu.stat") {
            (s.cpu_stats.cpu_usage, s.cpu_stats.throttling_data) = ContainerStats.cpuFromV2(cpuStat: text)
        }
        s.cpu_stats.system_cpu_usage = ContainerStats.systemCPUNanos(procStat: read("/proc/stat") ?? "")
        s.cpu_stats.online_cpus = UInt32(max(sysconf(Int32(_SC_NPROCESSORS_ONLN)), 1))

        // Memory: v1 memory.usage_in_bytes/limit_in_bytes, or v2 memory.current/max.
        let memTotal = ContainerStats.memTotal(meminfo: read("/proc/meminfo") ?? "")
        if let d = cgroup.dir(for: "memory") {
            var m = ContainerStats.Memory()
            if let usage = ContainerStats.number(read(d + "/memory.usage_in_bytes")) {
                m.usage = usage
                m.max_usage = ContainerStats.number(read(d + "/memory.max_usage_in_bytes"))
                m.limit = ContainerStats.memoryLimit(ContainerStats.number(read(d + "/memory.limit_in_bytes")), memTotal: memTotal)
            } else {
                m.usage = ContainerStats.number(read(d + "/memory.current")) ?? 0
                m.limit = ContainerStats.memoryLimit(ContainerStats.number(read(d + "/memory.max")), memTotal: memTotal)
            }
            m.stats = ContainerStats.keyValues(read(d + "/memory.stat") ?? "")
            s.memory_stats = m
        }

        if let d = cgroup.dir(for: "pids") {
            s.pids_stats.current = ContainerStats.number(read(d + "/pids.current")) ?? UInt64(cgroup.pids().count)
            s.pids_stats.limit = ContainerStats.number(read(d + "/pids.max"))
        }

        // Block I/O: v1 blkio (throttle files count every device), or v2 io.stat.
        if let d = cgroup.dir(for: "blkio"), let text = read(d + "/blkio.throttle.io_service_bytes_recursive") {
            s.blkio_stats.io_service_bytes_recursive = ContainerStats.blkio(text).bytes
            s.blkio_stats.io_serviced_recursive = ContainerStats.blkio(read(d + "/blkio.throttle.io_serviced_recursive") ?? "").bytes
        } else if let d = cgroup.dir(for: "io"), let text = read(d + "/io.stat") {
            let b = ContainerStats.blkio(text)
            s.blkio_stats.io_service_bytes_recursive = b.bytes
            s.blkio_stats.io_serviced_recursive = b.ios
        }

        // Network: the counters of the container's own namespace, seen through its init.
        if ownNetwork, let text = read("/proc/\(pid)/net/dev") {
            s.networks = ContainerStats.networks(netDev: text)
        }
    }
}
