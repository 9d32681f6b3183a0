import CryoLinux
import CryoOCI
import FoundationEssentials
import Glibc

/// Lifecycle states as runc reports them.
public enum RuntimeStatus: String, Codable, Sendable {
    case creating, created, running, paused, stopped
}

/// What the runtime remembers about a container (<root>/<id>/state.json).
public struct ContainerRecord: Codable, Sendable {
    public var id: String
    public var bundle: String
    public var rootfs: String
    public var initPid: Int32
    public var initStartTime: UInt64?
    public var created: String
    public var cgroupPath: String
    /// Namespaces the container joined by path (type → path), e.g. a CNI netns.
    public var namespacePaths: [String: String]
    /// readlink of the init's fds 0-2 (e.g. "pipe:[1234]"); written into
    /// descriptors.json at checkpoint so restore can re-plumb stdio.
    public var externalDescriptors: [String]
    public var owner: String
    public var spec: Spec
    /// True after a CRIU restore: the container now has its own time namespace.
    public var restored: Bool = false

    public var annotations: [String: String]? { spec.annotations }
}

/// Where containers live: <root>/<id>/{state.json, exec.fifo, criu-root}.
public struct ContainerStore: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    public func dir(_ id: String) -> String { root + "/" + id }
    func statePath(_ id: String) -> String { dir(id) + "/state.json" }
    func startHintPath(_ id: String) -> String { dir(id) + "/start-hint" }
    func fifoPath(_ id: String) -> String { dir(id) + "/exec.fifo" }

    public static func validate(id: String) throws {
        let ok = !id.isEmpty && id != "." && id != ".." && id.utf8.count <= 1024 && id.allSatisfy {
            $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." || $0 == "+"
        } && id.allSatisfy { $0.isASCII }
        if !ok { throw RuntimeError.invalidID(id) }
    }

    /// Creates <root>/<id>; an existing one means the id is taken.
    func makeDir(_ id: String) throws -> String {
        try FS.mkdirAll(root, mode: 0o700)
        let d = dir(id)
        if mkdir(d, 0o711) != 0 {
            if errno == EEXIST { throw RuntimeError.exists(id) }
            throw SyscallError("mkdir", d)
        }
        return d
    }

    public func load(_ id: String) throws -> ContainerRecord {
        try Self.validate(id: id)
        let path = statePath(id)
        guard FS.exists(path) else { throw RuntimeError.notFound(id) }
        do {
            return try JSONDecoder().decode(ContainerRecord.self, from: Data(try FS.readBytes(path)))
        } catch {
            throw CryoFailure(.internal, "reading \(path)", cause: error)
        }
    }

    /// What `start` needs of a created container without poststart hooks, as one text line
    /// ("<init pid> <init start time>"): decoding state.json with its whole spec costs `start`
    /// ~2 ms, a noticeable part of a container's start. Written at create, removed at start.
    func saveStartHint(_ r: ContainerRecord) throws {
        guard (r.spec.hooks?.poststart ?? []).isEmpty else { return }
        try FS.atomicWrite(startHintPath(r.id), Array("\(r.initPid) \(r.initStartTime ?? 0)\n".utf8), mode: 0o600, durable: false)
    }

    /// (pid, start time) from the start hint; nil when there is none (hooks, or an older state).
    func loadStartHint(_ id: String) -> (pid: Int32, startTime: UInt64?)? {
        guard let text = try? FS.readString(startHintPath(id)) else { return nil }
        let f = text.split(separator: " ").map { $0.trimmed }
        guard f.count == 2, let pid = Int32(f[0]), let st = UInt64(f[1]) else { return nil }
        return (pid, st == 0 ? nil : st)
    }

    public func save(_ r: ContainerRecord) throws {
        // Runtime state lives on /run (tmpfs) like runc's: atomic, but no fsync.
        try FS.atomicWrite(statePath(r.id), Array(try JSONEncoder().encode(r)), durable: false)
    }

    public func list() -> [String] {
        ((try? FS.listDirectory(root)) ?? []).filter { FS.exists(statePath($0)) }.sorted()
    }

    /// The live status, from the kernel rather than from the file.
    public func status(_ r: ContainerRecord) -> RuntimeStatus {
        if !Processes.isAlive(pid: r.initPid, startTime: r.initStartTime) { return .stopped }
        if FS.exists(fifoPath(r.id)) { return .created }
        if Cgroup(path: r.cgroupPath).isFrozen() { return .paused }
        return .running
    }
}

/// The runtime's refusals, as failures with the codes callers act on.
public enum RuntimeError {
    public static func notFound(_ id: String) -> CryoFailure { CryoFailure(.notFound, "container \"\(id)\" does not exist") }
    public static func exists(_ id: String) -> CryoFailure { CryoFailure(.conflict, "container with id \"\(id)\" already exists") }
    public static func invalidID(_ id: String) -> CryoFailure {
        CryoFailure(.invalidArgument, "invalid container id \"\(id)\": use letters, digits, '_', '-', '.' and '+'")
    }
    public static func wrongState(_ id: String, _ s: RuntimeStatus, _ want: String) -> CryoFailure {
        CryoFailure(.conflict, "container \"\(id)\" is \(s.rawValue): \(want)")
    }
}
