import CShim
import CryoLinux
import CryoOCI
import Glibc

/// Host device nodes handed to a container: `--device HOST[:CONTAINER][:PERMISSIONS]`
/// (a node, or a directory of them) and, for `--privileged`, every node of the host's /dev.
/// Each becomes a node the runtime makes in the container's /dev and, for `--device`, a
/// rule of the devices cgroup.
enum DeviceNodes {
    /// Directories of /dev that hold no devices of their own to copy (mounts of the container's).
    static let skippedDirectories: Set<String> = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"]

    /// The node at `path` (symlinks followed, as `--device /dev/disk/by-id/x` expects).
    static func node(_ path: String, as containerPath: String) throws -> Spec.Device? {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw EngineError.bad("error gathering device information while adding custom device \"\(path)\": \(String(cString: strerror(errno)).lowercased())")
        }
        let kind = st.st_mode & S_IFMT
        guard kind == S_IFCHR || kind == S_IFBLK else { return nil }
        return Spec.Device(path: containerPath, type: kind == S_IFCHR ? "c" : "b",
                           major: Int64(cryo_major(UInt64(st.st_rdev))), minor: Int64(cryo_minor(UInt64(st.st_rdev))),
                           fileMode: UInt32(st.st_mode & 0o7777), uid: st.st_uid, gid: st.st_gid)
    }

    /// Every device node under `dir` (not following symlinks), with its path under `prefix`.
    static func walk(_ dir: String, as prefix: String, depth: Int = 0) -> [Spec.Device] {
        guard depth < 8, let names = try? FS.listDirectory(dir) else { return [] }
        var out: [Spec.Device] = []
        for name in names.sorted() {
            let path = dir + "/" + name
            guard let mode = FS.lstatMode(path) else { continue }
            if mode & S_IFMT == S_IFDIR {
                if depth == 0 && skippedDirectories.contains(name) { continue }
                out += walk(path, as: prefix + "/" + name, depth: depth + 1)
            } else if mode & S_IFMT == S_IFCHR || mode & S_IFMT == S_IFBLK {
                if let d = try? node(path, as: prefix + "/" + name) { out.append(d) }
            }
        }
        return out
    }

    /// What `--privileged` gets: the host's /dev nodes (not /dev/console: the container's
    /// own console, if any, is its pty; not /dev/ptmx: the container's is a link to its own
    /// devpts instance).
    static func hostDevices() -> [Spec.Device] {
        walk("/dev", as: "/dev").filter { $0.path != "/dev/console" && $0.path != "/dev/ptmx" }
    }

    /// One `HostConfig.Devices` entry: the nodes and their cgroup rules.
    static func mapping(_ m: DeviceMapping) throws -> ([Spec.Device], [Spec.DeviceRule]) {
        let host = m.PathOnHost ?? ""
        guard host.hasPrefix("/") else { throw EngineError.bad("invalid device \"\(host)\": the host path must be absolute") }
        let inContainer = (m.PathInContainer ?? "").isEmpty ? host : m.PathInContainer!
        guard inContainer.hasPrefix("/"), !inContainer.split(separator: "/").contains("..") else {
            throw EngineError.bad("invalid device \"\(host):\(inContainer)\": the container path must be absolute, without ..")
        }
        let access = (m.CgroupPermissions ?? "").isEmpty ? "rwm" : m.CgroupPermissions!
        guard access.allSatisfy({ "rwm".contains($0) }) else {
            throw EngineError.bad("invalid device \"\(host)\": permissions \"\(access)\" must be a combination of r, w and m")
        }
        var nodes: [Spec.Device]
        if let n = try node(host, as: inContainer) {
            nodes = [n]
        } else if FS.isDirectory(host) {
            nodes = walk(host, as: inContainer, depth: 1)
            if nodes.isEmpty { throw EngineError.bad("error gathering device information while adding custom device \"\(host)\": no device nodes in the directory") }
        } else {
            throw EngineError.bad("error gathering device information while adding custom device \"\(host)\": not a device node")
        }
        let rules = nodes.map { Spec.DeviceRule(allow: true, type: $0.type, major: $0.major, minor: $0.minor, access: access) }
        return (nodes, rules)
    }

    /// `--device-cgroup-rule "TYPE MAJOR:MINOR ACCESS"` (a, b or c; numbers or *; r, w, m).
    static func cgroupRule(_ text: String) throws -> Spec.DeviceRule {
        let bad = EngineError.bad("invalid device cgroup rule \"\(text)\": want \"TYPE MAJOR:MINOR ACCESS\" (e.g. \"c 1:3 rwm\")")
        let parts = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard parts.count == 3, ["a", "b", "c"].contains(parts[0]) else { throw bad }
        let numbers = parts[1].split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard numbers.count == 2, !parts[2].isEmpty, parts[2].allSatisfy({ "rwm".contains($0) }) else { throw bad }
        func number(_ s: String) throws -> Int64? {
            if s == "*" { return nil }
            guard let n = Int64(s), n >= 0 else { throw bad }
            return n
        }
        return Spec.DeviceRule(allow: true, type: parts[0], major: try number(numbers[0]), minor: try number(numbers[1]), access: parts[2])
    }
}
