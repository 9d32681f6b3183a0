import CryoLinux
import FoundationEssentials
import Glibc

/// cryo's networks on disk: `<root>/networks/networks.json`, replaced atomically; writers hold
/// an exclusive flock on `<root>/networks/lock` (shared with `CNIRunner`, so a network is never
/// removed while a container is being attached to it).
public struct NetworkStore: Sendable {
    public let paths: NetworkPaths

    struct File: Codable {
        var networks: [NetworkConfig]
    }

    public init(root: String) throws {
        paths = NetworkPaths(root: FS.absolute(root))
        try FS.mkdirAll(paths.base, mode: 0o700)
    }

    // MARK: - reading

    public func list() throws -> [NetworkConfig] { try read().networks }

    /// By exact name, full id, or an unambiguous id prefix.
    public func inspect(_ nameOrID: String) throws -> NetworkConfig {
        try Self.resolve(nameOrID, in: read().networks)
    }

    static func resolve(_ ref: String, in networks: [NetworkConfig]) throws -> NetworkConfig {
        if let n = networks.first(where: { $0.name == ref }) { return n }
        if let n = networks.first(where: { $0.id == ref }) { return n }
        let matches = ref.isEmpty ? [] : networks.filter { $0.id.hasPrefix(ref) }
        if matches.count == 1 { return matches[0] }
        if matches.count > 1 { throw NetworkError.ambiguous(ref) }
        throw NetworkError.notFound(ref)
    }

    // MARK: - writing

    /// Creates a network. Bridge: without `subnet`, the first /24 of 198.18.0.0/15 that overlaps
    /// no existing network; without `gateway`, the subnet's first address; without `bridge`,
    /// `cryo-<first 10 of the id>`. Macvlan: `subnet` and `parent` (an interface of this
    /// network namespace, used by no other cryo macvlan network) are required. Refuses (writing
    /// nothing) a taken name, bad CIDR, gateway or ip-range, a subnet overlapping another cryo
    /// network, or a bridge name already used.
    @discardableResult
    public func create(name: String, driver: String = NetworkDriver.bridge, subnet: String? = nil, gateway: String? = nil,
                       ipRange: String? = nil, bridge: String? = nil, parent: String? = nil, macvlanMode: String? = nil,
                       internal: Bool = false, labels: [String: String] = [:],
                       options: [String: String]? = nil) throws -> NetworkConfig {
        try Self.validateName(name)
        let lock = try FileLock.exclusive(paths.lockFile)
        defer { lock.close() }
        var file = try read()
        if file.networks.contains(where: { $0.name == name }) { throw NetworkError.nameInUse(name) }
        var net: NetworkConfig
        if driver == NetworkDriver.macvlan {
            net = try Self.planMacvlan(name: name, subnet: subnet, gateway: gateway, parent: parent, mode: macvlanMode,
                                       internal: `internal`, labels: labels, existing: file.networks)
        } else {
            guard driver == NetworkDriver.bridge else { throw NetworkError.invalidOption("network driver \(driver) is not supported") }
            net = try Self.plan(name: name, subnet: subnet, gateway: gateway, bridge: bridge, internal: `internal`,
                                labels: labels, existing: file.networks, checkHostInterface: true)
        }
        if let ipRange {
            let sub = try net.parsedSubnet
            let r = try IPv4Subnet.parseRange(ipRange, in: sub)
            let (first, last) = sub.allocationBounds(r)
            let gw = IPv4Address(net.gateway)
            let hosts = first.value <= last.value ? Int(last.value - first.value) + 1 - (gw.map { $0 >= first && $0 <= last } == true ? 1 : 0) : 0
            guard hosts > 0 else { throw NetworkError.invalidIPRange(ipRange, "it leaves no address to allocate") }
            net.ipRange = r.description
        }
        net.options = options
        file.networks.append(net)
        try write(file)
        return net
    }

    /// A macvlan network's record: checks the subnet (required), gateway, parent and mode.
    static func planMacvlan(name: String, subnet: String?, gateway: String?, parent: String?, mode: String?,
                            internal: Bool, labels: [String: String], existing: [NetworkConfig]) throws -> NetworkConfig {
        guard let subnet else {
            throw NetworkError.invalidOption("a macvlan network needs --subnet (the segment's subnet, which cryo cannot guess)")
        }
        guard let parent, !parent.isEmpty else {
            throw NetworkError.invalidOption("a macvlan network needs -o parent=INTERFACE (cryo makes no dummy parent)")
        }
        if `internal` { throw NetworkError.invalidOption("--internal is not supported for macvlan networks") }
        guard parent.utf8.count <= 15, !parent.contains("/"), parent != ".", parent != ".." else {
            throw NetworkError.invalidParent(parent, "is not a valid interface name")
        }
        // if_nametoindex asks the kernel in this thread's network namespace (cryod's), unlike
        // /sys/class/net, which shows the namespace sysfs was mounted in.
        guard if_nametoindex(parent) != 0 else { throw NetworkError.invalidParent(parent, "was not found on the host (in cryod's network namespace)") }
        let m = mode ?? "bridge"
        guard NetworkDriver.macvlanModes.contains(m) else {
            throw NetworkError.invalidOption("macvlan_mode \(m) is not valid: one of \(NetworkDriver.macvlanModes.joined(separator: ", "))")
        }
        if let other = existing.first(where: { $0.isMacvlan && $0.parent == parent }) {
            throw NetworkError.parentInUse(parent: parent, network: other.name)
        }
        let sub = try IPv4Subnet.parse(subnet)
        let taken = existing.compactMap { n in (try? n.parsedSubnet).map { (n, $0) } }
        if let clash = taken.first(where: { $0.1.overlaps(sub) }) {
            throw NetworkError.subnetOverlap(subnet: sub.description, network: clash.0.name, existing: clash.1.description)
        }
        var gw = sub.firstHost
        if let gateway {
            guard let g = IPv4Address(gateway) else { throw NetworkError.invalidGateway(gateway, "not an IPv4 address") }
            guard sub.isHost(g) else { throw NetworkError.invalidGateway(gateway, "not a host address of subnet \(sub)") }
            gw = g
        }
        var net = NetworkConfig(name: name, id: randomHexID(), driver: NetworkDriver.macvlan, subnet: sub.description,
                                gateway: gw.description, bridge: "", labels: labels, created: rfc3339Now())
        net.parent = parent
        net.macvlanMode = m
        return net
    }

    /// The default network `cryo0` (subnet 198.18.0.0/24 and bridge interface cryo0 unless
    /// given). Returns the existing one if it matches; a different `subnet` or `bridge` for an
    /// existing cryo0 is refused while containers are attached, otherwise the record is replaced.
    @discardableResult
    public func ensureDefault(subnet: String? = nil, gateway: String? = nil, bridge: String? = nil) throws -> NetworkConfig {
        let lock = try FileLock.exclusive(paths.lockFile)
        defer { lock.close() }
        var file = try read()
        let name = NetworkDefaults.defaultName
        let wanted = subnet ?? NetworkDefaults.defaultSubnet
        let wantedBridge = bridge ?? NetworkDefaults.defaultBridge
        if let i = file.networks.firstIndex(where: { $0.name == name }) {
            let current = file.networks[i]
            let sameSubnet = (try? IPv4Subnet.parse(wanted)) == (try? current.parsedSubnet)
            if sameSubnet && (gateway == nil || gateway == current.gateway) && current.bridge == wantedBridge { return current }
            let users = Self.allocations(in: paths.ipamDir(network: name))
            if !users.isEmpty { throw NetworkError.activeEndpoints(network: name, containers: users) }
            let others = file.networks.filter { $0.name != name }
            var replaced = try Self.plan(name: name, subnet: wanted, gateway: gateway, bridge: wantedBridge,
                                         internal: false, labels: [:], existing: others, checkHostInterface: false)
            replaced.id = current.id
            file.networks[i] = replaced
            try FS.removeAll(paths.ipamDir(network: name))
            try write(file)
            return replaced
        }
        let net = try Self.plan(name: name, subnet: wanted, gateway: gateway, bridge: wantedBridge,
                                internal: false, labels: [:], existing: file.networks, checkHostInterface: false)
        file.networks.append(net)
        try write(file)
        return net
    }

    /// Removes a network's record and its (empty) address allocations. Refuses `cryo0` and a
    /// network that still has addresses allocated. The bridge interface stays on the host:
    /// `CNIRunner.deleteBridge(of:)` removes it.
    @discardableResult
    public func remove(_ nameOrID: String) throws -> NetworkConfig {
        let lock = try FileLock.exclusive(paths.lockFile)
        defer { lock.close() }
        var file = try read()
        let net = try Self.resolve(nameOrID, in: file.networks)
        if net.name == NetworkDefaults.defaultName { throw NetworkError.predefined(net.name) }
        let users = Self.allocations(in: paths.ipamDir(network: net.name))
        if !users.isEmpty { throw NetworkError.activeEndpoints(network: net.name, containers: users) }
        file.networks.removeAll { $0.id == net.id }
        try write(file)
        try? FS.removeAll(paths.ipamDir(network: net.name))
        return net
    }

    // MARK: - rules

    static func validateName(_ name: String) throws {
        guard !name.isEmpty, name.count <= 64 else { throw NetworkError.invalidName(name, "must be 1 to 64 characters") }
        let ok = name.unicodeScalars.enumerated().allSatisfy { i, c in
            let alnum = (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9")
            return alnum || (i > 0 && (c == "_" || c == "." || c == "-"))
        }
        guard ok else { throw NetworkError.invalidName(name, "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed") }
    }

    static func validateBridge(_ name: String) throws {
        guard !name.isEmpty, name.utf8.count <= 15 else { throw NetworkError.invalidBridge(name, "must be 1 to 15 characters") }
        let ok = name.unicodeScalars.allSatisfy { c in
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "_" || c == "." || c == "-"
        }
        guard ok, name != ".", name != ".." else { throw NetworkError.invalidBridge(name, "only [a-zA-Z0-9_.-] are allowed") }
    }

    /// The first /24 in `pool` overlapping none of `taken`.
    static func nextFreeSubnet(pool: IPv4Subnet, taken: [IPv4Subnet]) -> IPv4Subnet? {
        var v = pool.network.value
        while pool.contains(IPv4Address(v)) {
            let candidate = IPv4Subnet(network: IPv4Address(v), prefix: 24)
            if !taken.contains(where: { $0.overlaps(candidate) }) { return candidate }
            if v > UInt32.max - 256 { break }
            v += 256
        }
        return nil
    }

    /// Checks every input against the existing networks and builds the record (pure; no I/O
    /// except the optional look at the host's interfaces).
    static func plan(name: String, subnet: String?, gateway: String?, bridge: String?, internal: Bool,
                     labels: [String: String], existing: [NetworkConfig], checkHostInterface: Bool) throws -> NetworkConfig {
        let taken = existing.compactMap { n in (try? n.parsedSubnet).map { (n, $0) } }
        let sub: IPv4Subnet
        if let subnet {
            sub = try IPv4Subnet.parse(subnet)
            if let clash = taken.first(where: { $0.1.overlaps(sub) }) {
                throw NetworkError.subnetOverlap(subnet: sub.description, network: clash.0.name, existing: clash.1.description)
            }
        } else {
            let pool = try IPv4Subnet.parse(NetworkDefaults.pool)
            guard let free = nextFreeSubnet(pool: pool, taken: taken.map(\.1)) else { throw NetworkError.noFreeSubnet(NetworkDefaults.pool) }
            sub = free
        }
        let gw: IPv4Address
        if let gateway {
            guard let g = IPv4Address(gateway) else { throw NetworkError.invalidGateway(gateway, "not an IPv4 address") }
            guard sub.isHost(g) else { throw NetworkError.invalidGateway(gateway, "not a host address of subnet \(sub)") }
            gw = g
        } else {
            gw = sub.firstHost
        }
        let id = randomHexID()
        let br = bridge ?? "cryo-" + id.prefix(10)
        try validateBridge(br)
        if let other = existing.first(where: { $0.bridge == br }) {
            throw NetworkError.bridgeInUse(br, "is already the bridge of network \(other.name)")
        }
        if checkHostInterface && FS.exists("/sys/class/net/" + br) {
            throw NetworkError.bridgeInUse(br, "already exists on the host")
        }
        return NetworkConfig(name: name, id: id, subnet: sub.description, gateway: gw.description, bridge: br,
                             internal: `internal`, labels: labels, created: rfc3339Now())
    }

    /// Container ids holding addresses in a host-local data directory (files named by address,
    /// containing "<container id>\r\n<ifname>").
    static func allocations(in dir: String) -> [String] {
        Set(CNIRunner.allocationOwners(in: dir).values).sorted()
    }

    // MARK: - file

    func read() throws -> File {
        guard FS.exists(paths.networksFile) else { return File(networks: []) }
        do {
            return try JSONDecoder().decode(File.self, from: Data(FS.readBytes(paths.networksFile)))
        } catch let e as DecodingError {
            throw NetworkError.corruptState(paths.networksFile, "\(e)")
        }
    }

    func write(_ file: File) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FS.atomicWrite(paths.networksFile, Array(try enc.encode(file)), mode: 0o600)
    }
}
