import CryoLinux
import CryoOCI
import Glibc

/// How cgroups are mounted on this host: v1 hierarchies, a v2 hierarchy, or both (hybrid).
public struct CgroupLayout: Sendable, Equatable {
    /// One v1 hierarchy: its mount point and the controllers bound to it.
    public struct Hierarchy: Sendable, Equatable {
        public var mountPoint: String
        public var controllers: [String]     // e.g. ["cpu", "cpuacct"] or ["name=systemd"]
        /// The directory name under /sys/fs/cgroup ("cpu,cpuacct").
        public var name: String { String(mountPoint.split(separator: "/").last ?? "") }
    }
    public var v1: [Hierarchy]
    public var unified: String?              // the cgroup2 mount point, if any

    public var isPureV2: Bool { v1.isEmpty && unified != nil }

    /// Parses /proc/self/mountinfo text. A hierarchy can be mounted more than once (CRIU
    /// mounts each one again in a temporary "cgyard" while it restores, and those mounts
    /// come and go under our feet): one entry per hierarchy, the mount under /sys/fs/cgroup
    /// when there is one, else the first; only mounts of the hierarchy's root count.
    public static func parse(mountinfo: String) -> CgroupLayout {
        var v1: [Hierarchy] = []
        var unified: String?
        func preferred(_ new: String, over old: String) -> Bool {
            new.hasPrefix("/sys/fs/cgroup") && !old.hasPrefix("/sys/fs/cgroup")
        }
        for line in mountinfo.split(separator: "\n") {
            let halves = String(line).components(separatedBy: " - ")
            guard halves.count == 2 else { continue }
            let left = halves[0].split(separator: " ")
            let right = halves[1].split(separator: " ")
            guard left.count > 4, right.count > 2, left[3] == "/" else { continue }
            let mountPoint = String(left[4])
            if right[0] == "cgroup2" {
                if unified == nil || preferred(mountPoint, over: unified!) { unified = mountPoint }
            } else if right[0] == "cgroup" {
                let opts = right[2].split(separator: ",").map(String.init)
                let known: Set<String> = ["rw", "ro", "nosuid", "nodev", "noexec", "relatime", "xattr", "clone_children", "noprefix"]
                let ctrls = opts.filter { !known.contains($0) && !$0.hasPrefix("release_agent=") }
                if let i = v1.firstIndex(where: { Set($0.controllers) == Set(ctrls) }) {
                    if preferred(mountPoint, over: v1[i].mountPoint) { v1[i].mountPoint = mountPoint }
                } else {
                    v1.append(Hierarchy(mountPoint: mountPoint, controllers: ctrls))
                }
            }
        }
        return CgroupLayout(v1: v1, unified: unified)
    }

    public static func current() -> CgroupLayout {
        parse(mountinfo: (try? FS.readString("/proc/self/mountinfo")) ?? "")
    }

    func hierarchy(with controller: String) -> Hierarchy? {
        v1.first { $0.controllers.contains(controller) }
    }
}

extension String {
    func components(separatedBy sep: String) -> [String] {
        var out: [String] = []
        var rest = Substring(self)
        while let r = rest.range(of: sep) {
            out.append(String(rest[..<r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        out.append(String(rest))
        return out
    }
}

extension Substring {
    func range(of needle: String) -> Range<Substring.Index>? {
        let n = Array(needle.utf8)
        guard !n.isEmpty else { return nil }
        var i = startIndex
        while i < endIndex {
            var j = i
            var k = 0
            while k < n.count, j < endIndex, self.utf8[j] == n[k] {
                j = self.utf8.index(after: j)
                k += 1
            }
            if k == n.count { return i..<j }
            i = index(after: i)
        }
        return nil
    }
}

/// One container's cgroup, in every hierarchy of the host (v1, v2 or both).
public struct Cgroup: Sendable, Equatable {
    public let path: String          // e.g. "/cryo/web"
    public let layout: CgroupLayout

    public init(path: String, layout: CgroupLayout = .current()) {
        self.path = FS.clean("/" + path)
        self.layout = layout
    }

    /// (hierarchy name, directory) for every hierarchy; "" names the unified one.
    public var directories: [(name: String, dir: String)] {
        var out = layout.v1.map { ($0.name, $0.mountPoint + path) }
        if let u = layout.unified { out.append(("", u + path)) }
        return out
    }

    /// The directory of the hierarchy holding `controller` (v1), else the unified one.
    public func dir(for controller: String) -> String? {
        if let h = layout.hierarchy(with: controller) { return h.mountPoint + path }
        if let u = layout.unified { return u + path }
        return nil
    }

    /// The unified dir when a controller is not in v1 (pure v2, or hybrid fallback).
    var unifiedDir: String? { layout.unified.map { $0 + path } }

    public func create() throws {
        try createUnified()
        try createV1()
    }

    /// The v2 directory alone: what a process born into its cgroup (CLONE_INTO_CGROUP) needs first.
    public func createUnified() throws {
        if let u = layout.unified {
            if layout.isPureV2 { try enableV2Controllers(mount: u) }
            try FS.mkdirAll(u + path)
        }
    }

    /// The v1 directories (all of them on a hybrid host: ~1.5 ms, done while the init boots).
    public func createV1() throws {
        for h in layout.v1 {
            try FS.mkdirAll(h.mountPoint + path)
            if h.controllers.contains("cpuset") { try initCpuset(mount: h.mountPoint) }
        }
    }

    /// A new v1 cpuset cgroup starts with empty cpus/mems; copy them down from the parent.
    private func initCpuset(mount: String) throws {
        var current = mount
        for part in path.split(separator: "/") {
            let parent = current
            current += "/" + part
            for knob in ["cpuset.cpus", "cpuset.mems"] {
                let mine = (try? FS.readString(current + "/" + knob))?.trimmed ?? ""
                if mine.isEmpty, let p = try? FS.readString(parent + "/" + knob) {
                    try FS.write(current + "/" + knob, p.trimmed)
                }
            }
        }
    }

    /// On pure v2, controllers must be enabled in every ancestor's subtree_control.
    private func enableV2Controllers(mount: String) throws {
        var current = mount
        let wanted = ["cpu", "memory", "pids", "io", "cpuset"]
        for part in path.split(separator: "/") {
            let available = ((try? FS.readString(current + "/cgroup.controllers")) ?? "").split(separator: " ").map { $0.trimmed }
            let enable = wanted.filter { available.contains($0) }.map { "+" + $0 }.joined(separator: " ")
            if !enable.isEmpty { try? FS.write(current + "/cgroup.subtree_control", enable) }
            current += "/" + part
            try FS.mkdirAll(current)
        }
    }

    /// The v1 `tasks` files a process writes "0" to, to move its calling thread here.
    public var v1TasksFiles: [String] {
        layout.v1.map { $0.mountPoint + path + "/tasks" }
    }

    /// Moves the calling thread into this cgroup in every v1 hierarchy (no global lock:
    /// see InitProtocol.swift).
    public static func placeCallingThread(tasksFiles: [String]) throws {
        for f in tasksFiles { try FS.write(f, "0") }
    }

    /// Adds a process to the unified (v2) hierarchy only.
    public func addProcessToUnified(_ pid: pid_t) throws {
        if let d = unifiedDir { try FS.write(d + "/cgroup.procs", "\(pid)") }
    }

    public func addProcess(_ pid: pid_t) throws {
        for (_, dir) in directories {
            try FS.write(dir + "/cgroup.procs", "\(pid)")
        }
    }

    /// Applies memory, cpu and pids limits.
    public func apply(_ r: Spec.Resources?) throws {
        guard let r else { return }
        let v2 = layout.isPureV2
        if let m = r.memory {
            if v2, let d = unifiedDir {
                if let l = m.limit { try FS.write(d + "/memory.max", l < 0 ? "max" : "\(l)") }
                if let s = m.swap, let l = m.limit, s >= l { try? FS.write(d + "/memory.swap.max", s < 0 ? "max" : "\(s - l)") }
                if let res = m.reservation { try FS.write(d + "/memory.low", "\(res)") }
            } else if let d = layout.hierarchy(with: "memory").map({ $0.mountPoint + path }) {
                if let l = m.limit { try FS.write(d + "/memory.limit_in_bytes", "\(l)") }
                if let s = m.swap, FS.exists(d + "/memory.memsw.limit_in_bytes") { try FS.write(d + "/memory.memsw.limit_in_bytes", "\(s)") }
                if let res = m.reservation { try FS.write(d + "/memory.soft_limit_in_bytes", "\(res)") }
                if let sw = m.swappiness, sw <= 100 { try? FS.write(d + "/memory.swappiness", "\(sw)") }
                if m.disableOOMKiller == true { try FS.write(d + "/memory.oom_control", "1") }
            }
        }
        if let c = r.cpu {
            if v2, let d = unifiedDir {
                if c.quota != nil || c.period != nil {
                    let q = c.quota.map { $0 < 0 ? "max" : "\($0)" } ?? "max"
                    try FS.write(d + "/cpu.max", "\(q) \(c.period ?? 100_000)")
                }
                if let s = c.shares, s > 0 {
                    // The OCI conversion from v1 shares [2..262144] to v2 weight [1..10000].
                    let w = 1 + ((max(s, 2) - 2) * 9999) / 262142
                    try FS.write(d + "/cpu.weight", "\(w)")
                }
            } else if let d = layout.hierarchy(with: "cpu").map({ $0.mountPoint + path }) {
                if let p = c.period, p > 0 { try FS.write(d + "/cpu.cfs_period_us", "\(p)") }
                if let q = c.quota, q != 0 { try FS.write(d + "/cpu.cfs_quota_us", "\(q)") }
                if let s = c.shares, s > 0 { try FS.write(d + "/cpu.shares", "\(s)") }
            }
            if let cpus = c.cpus, !cpus.isEmpty, let d = dir(for: "cpuset") { try FS.write(d + "/cpuset.cpus", cpus) }
            if let mems = c.mems, !mems.isEmpty, let d = dir(for: "cpuset") { try FS.write(d + "/cpuset.mems", mems) }
        }
        if let p = r.pids, let d = dir(for: "pids") {
            try FS.write(d + "/pids.max", p.limit <= 0 ? "max" : "\(p.limit)")
        }
        if let rules = r.devices, let d = layout.hierarchy(with: "devices").map({ $0.mountPoint + path }) {
            try applyDeviceRules(rules, dir: d)
        }
    }

    /// Devices every container needs, allowed after the spec's own rules (the
    /// same list runc appends), so a "deny all" spec still has /dev/null & co.
    static let defaultAllowedDevices: [Spec.DeviceRule] = [
        .init(allow: true, type: "c", major: nil, minor: nil, access: "m"),
        .init(allow: true, type: "b", major: nil, minor: nil, access: "m"),
        .init(allow: true, type: "c", major: 1, minor: 3, access: "rwm"),    // null
        .init(allow: true, type: "c", major: 1, minor: 8, access: "rwm"),    // random
        .init(allow: true, type: "c", major: 1, minor: 7, access: "rwm"),    // full
        .init(allow: true, type: "c", major: 5, minor: 0, access: "rwm"),    // tty
        .init(allow: true, type: "c", major: 1, minor: 5, access: "rwm"),    // zero
        .init(allow: true, type: "c", major: 1, minor: 9, access: "rwm"),    // urandom
        .init(allow: true, type: "c", major: 5, minor: 1, access: "rwm"),    // console
        .init(allow: true, type: "c", major: 136, minor: nil, access: "rwm"), // pts
        .init(allow: true, type: "c", major: 5, minor: 2, access: "rwm"),    // ptmx
        .init(allow: true, type: "c", major: 10, minor: 200, access: "rwm"), // tun
    ]

    /// The v1 devices-cgroup line for a rule: "c 1:3 rwm", "a *:* rwm".
    static func deviceRuleLine(_ r: Spec.DeviceRule) -> String {
        let type = r.type ?? "a"
        if type == "a" { return "a" }
        let major = r.major.map { $0 < 0 ? "*" : String($0) } ?? "*"
        let minor = r.minor.map { $0 < 0 ? "*" : String($0) } ?? "*"
        return "\(type) \(major):\(minor) \(r.access ?? "rwm")"
    }

    /// cgroup v1 devices controller: the spec's rules in order, then the defaults.
    /// (cgroup v2 needs an eBPF program for this; not done yet.)
    private func applyDeviceRules(_ rules: [Spec.DeviceRule], dir d: String) throws {
        for rule in rules + Self.defaultAllowedDevices {
            try FS.write(d + (rule.allow ? "/devices.allow" : "/devices.deny"), Self.deviceRuleLine(rule))
        }
    }

    /// (controllers, path) per hierarchy as /proc/PID/cgroup names them
    /// ("cpu,cpuacct", "name=systemd", "" for the unified one): CRIU's cg_root.
    public var roots: [(controllers: String, path: String)] {
        layout.v1.map { ($0.controllers.joined(separator: ","), path) } + (layout.unified != nil ? [("", path)] : [])
    }

    /// The directory CRIU and pause/resume freeze: the v1 freezer, else the v2 cgroup.
    public var freezerDir: String? {
        if let h = layout.hierarchy(with: "freezer") { return h.mountPoint + path }
        return unifiedDir
    }

    private var usesV1Freezer: Bool { layout.hierarchy(with: "freezer") != nil }

    public func isFrozen() -> Bool {
        guard let d = freezerDir else { return false }
        if usesV1Freezer {
            return ((try? FS.readString(d + "/freezer.state")) ?? "").trimmed == "FROZEN"
        }
        return ((try? FS.readString(d + "/cgroup.freeze")) ?? "").trimmed == "1"
    }

    /// Freezes and waits (polling every ~1 ms) until the kernel reports it frozen.
    public func freeze(timeoutMillis: Int = 10_000) throws {
        guard let d = freezerDir else { throw CryoFailure(.internal, "no freezer cgroup for \(path)") }
        if usesV1Freezer {
            try FS.write(d + "/freezer.state", "FROZEN")
            for i in 0..<(timeoutMillis * 2) {
                let s = ((try? FS.readString(d + "/freezer.state")) ?? "").trimmed
                if s == "FROZEN" { return }
                if i % 100 == 99 { try FS.write(d + "/freezer.state", "FROZEN") }
                usleep(500)
            }
        } else {
            try FS.write(d + "/cgroup.freeze", "1")
            for _ in 0..<(timeoutMillis * 2) {
                if ((try? FS.readString(d + "/cgroup.events")) ?? "").contains("frozen 1") { return }
                usleep(500)
            }
        }
        try? thaw()
        throw CryoFailure(.internal, "freezing cgroup \(d) timed out after \(timeoutMillis) ms")
    }

    public func thaw() throws {
        guard let d = freezerDir else { return }
        if usesV1Freezer { try FS.write(d + "/freezer.state", "THAWED") }
        else { try FS.write(d + "/cgroup.freeze", "0") }
    }

    /// Every pid in the container's cgroup.
    public func pids() -> [pid_t] {
        let d = dir(for: "pids") ?? freezerDir ?? directories.first?.dir ?? ""
        let text = (try? FS.readString(d + "/cgroup.procs")) ?? ""
        return text.split(separator: "\n").compactMap { pid_t($0.trimmed) }
    }

    /// Removes the cgroup directories (after every process is gone).
    public func destroy() {
        for (_, dir) in directories.reversed() {
            for _ in 0..<50 {
                if rmdir(dir) == 0 || errno == ENOENT { break }
                usleep(2000)
            }
        }
    }
}
