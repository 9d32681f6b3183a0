import CryoLinux
import Glibc

/// One cryo network (like `docker network inspect`): a Linux bridge, or macvlan interfaces on
/// a host interface (`parent`), with an IPv4 subnet.
public struct NetworkConfig: Codable, Equatable, Sendable {
    public var name: String
    /// 64 hex digits.
    public var id: String
    /// "bridge" or "macvlan" (`NetworkDriver`).
    public var driver: String
    /// CIDR, host bits zero ("198.18.0.0/24").
    public var subnet: String
    /// Address of the bridge on the host and the containers' default route.
    public var gateway: String
    /// Host interface name of the bridge (≤ 15 characters); empty for macvlan.
    public var bridge: String
    /// macvlan: the host interface the containers' macvlan links hang on (`-o parent=`).
    public var parent: String?
    /// macvlan: bridge (default), private, vepa or passthru (`-o macvlan_mode=`).
    public var macvlanMode: String?
    /// `--ip-range`: automatic allocation only from this CIDR inside the subnet; an explicit
    /// `--ip` may be anywhere in the subnet. Hosts sharing a segment use disjoint ranges.
    public var ipRange: String?
    /// No default route in containers: they reach the subnet and the host's bridge address only.
    public var `internal`: Bool
    public var labels: [String: String]
    /// The driver options as given at create (`-o`), which inspect shows as dockerd does:
    /// docker-compose recreates a network whose options differ from its file's. Nil for
    /// cryo0 and for records from before cryo kept them.
    public var options: [String: String]?
    /// RFC 3339.
    public var created: String

    public init(name: String, id: String, driver: String = "bridge", subnet: String, gateway: String,
                bridge: String, internal: Bool = false, labels: [String: String] = [:], created: String) {
        self.name = name
        self.id = id
        self.driver = driver
        self.subnet = subnet
        self.gateway = gateway
        self.bridge = bridge
        self.internal = `internal`
        self.labels = labels
        self.created = created
    }

    public var isMacvlan: Bool { driver == NetworkDriver.macvlan }

    public var parsedSubnet: IPv4Subnet { get throws { try IPv4Subnet.parse(subnet) } }
    public var prefixLength: Int { (try? parsedSubnet.prefix) ?? 24 }
}

/// The network drivers cryo has.
public enum NetworkDriver {
    public static let bridge = "bridge"
    public static let macvlan = "macvlan"
    /// The kernel's macvlan modes (ip-link(8)); Docker's `macvlan_mode` takes the same words.
    public static let macvlanModes = ["bridge", "private", "vepa", "passthru"]
}

/// Where CryoNetwork keeps its state under cryo's root (for cryod: /var/lib/cryo, which
/// survives reboots, so address allocations do too).
public struct NetworkPaths: Sendable {
    public let base: String

    public init(root: String) { base = root + "/networks" }

    public var networksFile: String { base + "/networks.json" }
    public var lockFile: String { base + "/lock" }
    /// host-local's `dataDir`: one directory per network name, one file per allocated address.
    public var ipamDir: String { base + "/ipam" }
    public func ipamDir(network name: String) -> String { ipamDir + "/" + name }
    /// One record per (container, network): the config and runtime arguments of the ADD, so a
    /// DEL can be repeated exactly (portmap needs the same port mappings to find its rules).
    public var attachmentsDir: String { base + "/attachments" }
    public func attachmentFile(containerID: String, networkID: String) -> String {
        attachmentsDir + "/" + containerID + "-" + String(networkID.prefix(12)) + ".json"
    }
}

/// The defaults of cryo's networks: all inside 198.18.0.0/15 (RFC 2544 benchmarking space),
/// which no real network uses.
public enum NetworkDefaults {
    public static let defaultName = "cryo0"
    public static let defaultBridge = "cryo0"
    public static let defaultSubnet = "198.18.0.0/24"
    /// User-defined networks get the first free /24 of this range.
    public static let pool = "198.18.0.0/15"
}

/// flock(2) on a file, released by `close`.
struct FileLock {
    let fd: Int32

    static func exclusive(_ path: String) throws -> FileLock {
        let fd = try sys(open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600), "open", path)
        if retryingEINTR({ flock(fd, LOCK_EX) }) != 0 {
            let e = SyscallError("flock", path)
            Glibc.close(fd)
            throw e
        }
        return FileLock(fd: fd)
    }

    func close() { Glibc.close(fd) }
}
