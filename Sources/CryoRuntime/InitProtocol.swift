import CryoLinux
import CryoOCI
import FoundationEssentials
import Glibc

// The conversation between the runtime (parent) and the container's init, a
// fresh single-threaded `cryo-runtime init` process, over a SEQPACKET socket:
//
//   parent                                   init (in new namespaces)
//   ── spawn (clone3 + CLONE_NEW*,
//      CLONE_INTO_CGROUP: born in its v2 cgroup)
//   ── InitConfig ────────────────────────▶  write "0" to the `tasks` file of each v1
//                                            hierarchy (moves itself, see below), join ns
//                                            by path, setsid, hostname, mounts except
//                                            cgroupfs, devices
//   (only when clone3 could not place it:
//   add init to the v2 cgroup, slow: RCU)
//   ── placed ────────────────────────────▶  unshare cgroupns, cgroupfs mounts
//   ◀──────────────────────────── hooks ──  (create only)
//   run prestart + createRuntime hooks
//   ── go ────────────────────────────────▶  createContainer hooks, pivot_root,
//                                            masked/readonly paths, sysctls, console
//   ◀──────────────────────────── ready ──  (or "error" with the failed step)
//   write state.json, exit                   block on exec.fifo until `start`,
//                                            startContainer hooks, drop privileges, execve
//
// Why the init moves itself: writing a pid to cgroup.procs takes the global
// cgroup_threadgroup_rwsem for writing, which first waits for an RCU grace period
// (8–28 ms measured here; most of a container's start time). A thread moving *itself*
// through a v1 `tasks` file ("0") needs no such lock, and a process born in its v2
// cgroup (CLONE_INTO_CGROUP) is never migrated. The init is single-threaded until it
// execs, so moving its one thread moves the process.
//
// For `exec` the same process joins the namespaces of the running container
// instead (setns on a pidfd) and skips the rootfs steps.

public struct InitConfig: Codable, Sendable {
    public enum Mode: String, Codable, Sendable { case create, exec }
    public var mode: Mode
    public var id: String
    public var bundle: String
    public var rootfs: String                 // absolute host path (create)
    public var spec: Spec                     // exec: only `process` matters
    public var joinNamespaces: [Spec.Namespace] = []   // create: setns by path
    public var newCgroupNamespace = false
    public var cgroupPath: String = ""
    /// create: v1 `tasks` files the init writes "0" to, placing itself in its cgroups.
    public var selfPlaceTasksFiles: [String] = []
    /// create: whether the runtime still has to place the init (v2, when clone3 could not)
    /// and will send `placed`.
    public var awaitPlaced = true
    public var fifoFD: Int32 = -1
    public var consoleFD: Int32 = -1
    public var pidFD: Int32 = -1              // exec: the container init's pidfd
    public var noPivot = false
    /// Number of extra fds (3..3+n-1) the process inherits (--preserve-fds).
    public var preserveFDs: Int32 = 0
    /// spec.linux.seccomp already compiled (base64 BPF, from `SeccompCache`): loaded
    /// as it is instead of being compiled again by libseccomp.
    public var seccompProgram: String?
}

public struct InitMessage: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case placed, hooks, go, ready, error }
    public var kind: Kind
    public var error: String?
    /// With `error`: the failure's code and errno (which a runtime acts on, never on the text).
    public var failure: FailureReport?
    public init(_ kind: Kind, error: String? = nil, failure: FailureReport? = nil) {
        self.kind = kind
        self.error = error
        self.failure = failure
    }

    /// An `error` message for a failure.
    public static func failed(_ error: any Error) -> InitMessage {
        InitMessage(.error, error: "\(error)", failure: FailureReport(error))
    }

    /// What an `error` message stands for: `step` failed, with the init's failure (its code
    /// and errno) as the cause.
    public func failure(step: String) -> CryoFailure {
        let report = failure ?? FailureReport(code: .internal, message: error ?? "unknown error")
        return CryoFailure(step, cause: report)
    }
}

extension PacketSocket {
    func sendJSON<T: Encodable>(_ value: T) throws {
        try send(Array(try JSONEncoder().encode(value)))
    }

    /// Next message decoded; nil when the peer closed the socket.
    func receiveJSON<T: Decodable>(_ type: T.Type) throws -> T? {
        guard let (bytes, fd) = try receive() else { return nil }
        if fd >= 0 { Glibc.close(fd) }
        return try JSONDecoder().decode(type, from: Data(bytes))
    }
}
