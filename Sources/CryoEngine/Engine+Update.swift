import CryoLinux
import CryoOCI
import CryoRuntime
import FoundationEssentials

/// `POST /containers/{id}/update`: the resources the docker CLI's `docker update` sends.
/// Zero (or absent) means "leave as it is", as in Docker.
public struct ContainerUpdate: Codable, Sendable, Equatable {
    public var Memory: Int64?
    public var MemorySwap: Int64?
    public var MemoryReservation: Int64?
    public var NanoCpus: Int64?
    public var CpuQuota: Int64?
    public var CpuPeriod: Int64?
    public var CpuShares: Int64?
    public var CpusetCpus: String?
    public var CpusetMems: String?
    public var BlkioWeight: Int64?
    public var KernelMemory: Int64?
    public var PidsLimit: Int64?
    public var RestartPolicy: RestartPolicy?
    public init() {}

    /// What cryo cannot change on a container: refused by name, never ignored.
    func refusals() -> [String] {
        var out: [String] = []
        if let v = MemorySwap, v != 0 { out.append("--memory-swap") }
        if let v = MemoryReservation, v != 0 { out.append("--memory-reservation") }
        if let v = CpusetCpus, !v.isEmpty { out.append("--cpuset-cpus") }
        if let v = CpusetMems, !v.isEmpty { out.append("--cpuset-mems") }
        if let v = BlkioWeight, v != 0 { out.append("--blkio-weight") }
        if let v = KernelMemory, v != 0 { out.append("--kernel-memory") }
        return out
    }

    /// The container's HostConfig with this update applied.
    func applied(to h: HostConfig) -> HostConfig {
        var h = h
        if let m = Memory, m != 0 { h.Memory = m }
        if let n = NanoCpus, n != 0 { h.NanoCpus = n; h.CpuQuota = nil; h.CpuPeriod = nil }
        if let q = CpuQuota, q != 0 { h.CpuQuota = q; h.NanoCpus = nil }
        if let p = CpuPeriod, p != 0 { h.CpuPeriod = p; h.NanoCpus = nil }
        if let s = CpuShares, s != 0 { h.CpuShares = s }
        if let p = PidsLimit, p != 0 { h.PidsLimit = p }
        if let r = RestartPolicy, let n = r.Name, !n.isEmpty { h.RestartPolicy = r }
        return h
    }
}

extension Engine {
    /// `docker update`: new memory, CPU and pids limits, written to a running container's
    /// cgroup files at once, and to its record and OCI spec (so a restart and a restore keep
    /// them). Returns Docker's warnings (none).
    public func update(_ ref: String, _ u: ContainerUpdate) async throws -> [String] {
        let refused = u.refusals()
        if !refused.isEmpty {
            throw EngineError(.unsupported, "cryo cannot update \(refused.joined(separator: ", ")) on a container; it can update --memory, --cpus, --cpu-quota, --cpu-period, --cpu-shares, --pids-limit and --restart")
        }
        // An empty name leaves the policy as it is (the docker CLI sends one without --restart).
        let newPolicy = try u.RestartPolicy.flatMap { $0.Name?.isEmpty == false ? $0 : nil }.map { try RestartPolicyDecision.policy($0) }
        let id = try resolve(ref).id
        return try await withLock(id) {
            let c = try resolve(id)
            if let newPolicy, newPolicy != .no, c.hostConfig.AutoRemove == true {
                throw EngineError.bad("Restart policy cannot be updated because AutoRemove is enabled for the container")
            }
            // `--restart no` during a back-off: the pending restart is dropped.
            if newPolicy == .no { cancelPendingRestart(id) }
            let host = u.applied(to: c.hostConfig)
            var resources = try CreateValidation.resources(host, cpus: CreateValidation.onlineCPUs())
            // Unlimited pids (-1) is written as "max" (the create path leaves it unset).
            if let p = host.PidsLimit, p < 0 { resources.pids = Spec.Pids(limit: 0) }
            if u.NanoCpus == nil || u.NanoCpus == 0, u.CpuQuota == nil || u.CpuQuota == 0,
               u.CpuPeriod == nil || u.CpuPeriod == 0, u.CpuShares == nil || u.CpuShares == 0 { resources.cpu = nil }
            if u.Memory == nil || u.Memory == 0 { resources.memory = nil }
            if u.PidsLimit == nil || u.PidsLimit == 0 { resources.pids = nil }
            let cgroup = Cgroup(path: options.cgroupParent + "/" + id)
            let running = c.isRunning
            let specPath = paths.bundle(id) + "/config.json"
            let change = resources
            try await blocking {
                if running {
                    do { try cgroup.apply(change) } catch {
                        throw CryoFailure(.invalidArgument, "updating the cgroup of container \(id)", cause: error)
                    }
                }
                var spec = try JSONDecoder().decode(Spec.self, from: Data(try FS.readBytes(specPath)))
                var r = spec.linux?.resources ?? Spec.Resources()
                if let m = change.memory { r.memory = m }
                if let cpu = change.cpu { r.cpu = cpu }
                if let p = change.pids { r.pids = p.limit <= 0 ? nil : p }
                spec.linux?.resources = r
                try FS.atomicWrite(specPath, Array(try JSONEncoder().encode(spec)), mode: 0o600, durable: false)
            }
            // Read again: the record may have changed during the awaits (a cancelled back-off).
            var changed = try resolve(id)
            changed.hostConfig = host
            try await save(changed)
            return []
        }
    }
}
