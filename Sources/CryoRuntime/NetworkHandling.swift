import CRIURPC
import CryoLinux

/// CRIU's own ways of locking a network (runc's `--network-lock`).
public enum NetworkLockMethod: String, Codable, Sendable {
    case iptables, nftables, skip
    var criu: criu_network_lock_method {
        switch self {
        case .iptables: return .iptables
        case .nftables: return .nftables
        case .skip: return .skip
        }
    }
    public static func parse(_ s: String?) throws -> NetworkLockMethod? {
        guard let s, !s.isEmpty else { return nil }
        guard let m = NetworkLockMethod(rawValue: s) else {
            throw CryoFailure(.invalidArgument, "invalid --network-lock \"\(s)\": use iptables, nftables or skip")
        }
        return m
    }
}

/// Who keeps packets away from the container's network while CRIU works on it.
public enum NetworkLocker: Codable, Sendable, Equatable {
    /// CRIU itself, at its `network-lock` notification, with this method (nil: CRIU's
    /// default, iptables); it unlocks when the dump fails or leaves the tasks running, and
    /// after a restore. runc's way.
    case criu(NetworkLockMethod?)
    /// cryo, with its one nft table (`NetworkLock`); CRIU's own lock is skipped. Dump: locked
    /// right after the freeze when CRIU runs inside the namespace (no notification comes
    /// then), else at CRIU's `network-lock`; unlocked when the container goes on running.
    /// Restore: the engine locked the fresh namespace before it got an address; the runtime
    /// unlocks right before the restored tasks run (unless the plan keeps it locked).
    case cryo
    /// Nobody: nothing outside can send the namespace a packet (loopback only, the engine's
    /// network mode none), or the container has none of its own (the host's). CRIU's lock is
    /// skipped and no nft table is made (each nft run costs ~5 ms, and removing the table
    /// waits out an RCU grace period, ~15 ms of every restore).
    case nobody
}

/// How a checkpoint or a restore treats the container's network: whether CRIU dumps and
/// restores the namespace, from inside or outside it, and who locks it. One value, decided
/// by whoever builds the plan (the engine, or cryo-runtime's CLI from runc's flags).
public struct NetworkHandling: Codable, Sendable, Equatable {
    /// For a namespace the container joins by path (the engine's, CNI's, podman's): CRIU is
    /// started inside it, takes it for its own and leaves it out of the images; a restore's
    /// CRIU is started inside the fresh one. Dumping a namespace, even an external one, walks
    /// the whole conntrack table (~12 ms with the kernel's 262144 buckets) and mounts and drops
    /// a sysfs: ~25 ms of a ~55 ms dump. Such images restore only into a namespace CRIU is
    /// started in; runc would restore them into its own, so only the engine dumps this way.
    ///
    /// false: such a namespace is external to CRIU (`extRootNetNS`): its links, addresses,
    /// routes and firewall rules are whoever made it's to set up again, so CRIU leaves them
    /// out (empty_ns), as runc does, and dumps the sockets. A namespace of the container's
    /// own (not joined by path) is dumped whole either way.
    public var criuInside: Bool
    public var locker: NetworkLocker
    /// runc's `--empty-ns network`: CRIU leaves out the contents of any network namespace,
    /// even one of the container's own.
    public var emptyNamespace: Bool

    public init(criuInside: Bool, locker: NetworkLocker, emptyNamespace: Bool = false) {
        self.criuInside = criuInside
        self.locker = locker
        self.emptyNamespace = emptyNamespace
    }

    /// runc's: CRIU outside the namespace, locking it itself.
    public static func runc(lock: NetworkLockMethod?, emptyNamespace: Bool) -> NetworkHandling {
        NetworkHandling(criuInside: false, locker: .criu(lock), emptyNamespace: emptyNamespace)
    }

    /// The lock method CRIU is told to use (nil: CRIU's default).
    var criuLockMethod: NetworkLockMethod? {
        switch locker {
        case .criu(let m): return m
        case .cryo, .nobody: return .skip
        }
    }

    /// Checks the handling against the container: a handling that needs a namespace joined
    /// by path is refused without one, rather than quietly doing something else.
    func check(joinsNetworkNamespace: Bool, what: String) throws {
        guard !joinsNetworkNamespace else { return }
        if criuInside {
            throw CryoFailure(.invalidArgument, "\(what): the plan has CRIU work inside the container's network namespace, but the container joins none by path")
        }
        if locker == .cryo {
            throw CryoFailure(.invalidArgument, "\(what): the plan has cryo lock the container's network namespace, but the container joins none by path")
        }
    }
}
