import CShim
import CryoCRIU
import CryoLinux
import FoundationEssentials
import Glibc

/// The facts a migration's two sides compare before anything is frozen, and the small host
/// operations it needs (CRIU's CPU check, a link down or up in a container's namespace).
enum MigrationChecks {
    static let env = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"]

    static func criuPath() throws -> String { try CRIUWorker.resolve("criu") }

    /// `criu cpuinfo dump`: CRIU's record of this CPU's features (cpuinfo.img in `dir`).
    static func dumpCPUInfo(criu: String, into dir: String) throws {
        let r = try Spawn.run(path: criu, args: [criu, "cpuinfo", "dump", "-D", dir, "-o", "cpuinfo-dump.log"], env: env,
                              timeoutMs: 30_000)
        guard r.status == 0 else {
            throw CryoFailure(.internal, "criu cpuinfo dump failed (status \(r.status)): \(logTail(dir + "/cpuinfo-dump.log"))")
        }
    }

    /// `criu cpuinfo check` of the source's cpuinfo.img (in `dir`) against this CPU. nil: compatible.
    static func checkCPUInfo(criu: String, dir: String) -> String? {
        guard let r = try? Spawn.run(path: criu, args: [criu, "cpuinfo", "check", "-D", dir, "-o", "cpuinfo-check.log"],
                                     env: env, timeoutMs: 30_000) else { return "criu could not be run" }
        return r.status == 0 ? nil : logTail(dir + "/cpuinfo-check.log")
    }

    /// "4.2.1" from `criu --version`.
    static func criuVersion(criu: String) throws -> String {
        let r = try Spawn.run(path: criu, args: [criu, "--version"], env: env, timeoutMs: 10_000)
        let text = String(decoding: r.stdout, as: UTF8.self)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Version:") }) else {
            throw CryoFailure(.internal, "cannot read criu's version from: \(text.prefix(200))")
        }
        return line.dropFirst("Version:".count).trimmingCharacters(in: .whitespaces)
    }

    /// Whether CRIU `version` ("4.2.1") is 4.2 or newer.
    static func supported(_ version: String) -> Bool {
        let n = version.split(separator: ".").map { Int($0.prefix { $0.isNumber }) ?? 0 }
        guard let major = n.first else { return false }
        return major > 4 || (major == 4 && n.count > 1 && n[1] >= 2)
    }

    static func logTail(_ path: String) -> String {
        CRIULog.errorLines((try? FS.readString(path)) ?? "", limit: 4).joined(separator: "; ")
    }

    /// Bytes under `path` (regular files' sizes; whatever cannot be read counts nothing).
    static func treeBytes(_ path: String) -> UInt64 {
        var total: UInt64 = 0
        var stack = [path]
        while let dir = stack.popLast() {
            for name in (try? FS.listDirectory(dir)) ?? [] {
                let full = dir + "/" + name
                var st = stat()
                guard lstat(full, &st) == 0 else { continue }
                if st.st_mode & S_IFMT == S_IFDIR { stack.append(full) } else if st.st_mode & S_IFMT == S_IFREG { total += UInt64(st.st_size) }
            }
        }
        return total
    }

    /// The resident memory of `pids` (VmRSS), an estimate of the pages a dump sends.
    static func residentBytes(_ pids: [pid_t]) -> UInt64 {
        pids.reduce(0) { sum, pid in
            guard let text = try? FS.readString("/proc/\(pid)/status"),
                  let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
                  let kb = UInt64(line.split(separator: " ").dropFirst().first ?? "") else { return sum }
            return sum + kb * 1024
        }
    }

    /// Host paths bind-mounted into the container (`-v /host:/ctr`).
    static func bindSources(_ h: HostConfig) -> [String] {
        (h.Binds ?? []).compactMap { b in
            let src = b.split(separator: ":", omittingEmptySubsequences: false).first.map(String.init) ?? ""
            return src.hasPrefix("/") ? src : nil
        }
    }

    /// Bytes free for cryod's root.
    static func freeBytes(_ path: String) -> UInt64 {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return 0 }
        return UInt64(s.f_bavail) * UInt64(s.f_frsize)
    }

    /// Whether files in `dir` can have holes punched (`fallocate(PUNCH_HOLE)`): CRIU's
    /// auto-dedup restore needs it, and fails the restore where it is refused.
    static func canPunchHoles(_ dir: String) -> Bool {
        let probe = dir + "/.punch-probe"
        let fd = open(probe, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return false }
        defer {
            close(fd)
            unlink(probe)
        }
        var page = [UInt8](repeating: 1, count: 8192)
        guard write(fd, &page, page.count) == page.count else { return false }
        return cryo_punch_hole(fd, 0, 4096) == 0
    }

    /// `ip link set IFACE up|down` inside the namespace bound at `netnsPath`.
    static func setLink(up: Bool, netnsPath: String, interface: String) throws {
        let nsenters: [String] = ["/usr/bin/nsenter", "/bin/nsenter"]
        let ips: [String] = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        guard let nsenter = nsenters.first(where: { (p: String) in access(p, X_OK) == 0 }),
              let ip = ips.first(where: { (p: String) in access(p, X_OK) == 0 }) else {
            throw CryoFailure(.unavailable, "nsenter and ip (util-linux, iproute2) are needed to withdraw a migrated container's address")
        }
        let r = try Spawn.run(path: nsenter, args: [nsenter, "--net=\(netnsPath)", ip, "link", "set", interface, up ? "up" : "down"],
                              env: env, timeoutMs: 10_000)
        guard r.status == 0 else {
            throw CryoFailure(.internal, "ip link set \(interface) \(up ? "up" : "down") in \(netnsPath) failed: \(String(decoding: r.stderr, as: UTF8.self))")
        }
    }
}
