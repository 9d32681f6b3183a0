import CryoLinux
import FoundationEssentials
import Glibc

/// What an ADD was made with, kept until its DEL succeeded: the exact conflist and runtime
/// arguments (portmap finds its rules by them), the result (DEL's prevResult) and the namespace.
struct AttachmentRecord: Codable {
    var containerID: String
    var networkID: String
    var networkName: String
    var netnsPath: String
    var interface: String
    var conflist: JSONValue
    var runtimeArgs: [String: JSONValue]
    var ports: [PortMapping]
    var result: JSONValue?
    var attachment: Attachment?
}

/// Runs the CNI plugins of a cryo network for one container, per the CNI 1.0 spec: each plugin
/// is exec'd (clone3 + exec, nothing of Swift in the child) with CNI_COMMAND, CNI_CONTAINERID,
/// CNI_NETNS, CNI_IFNAME and CNI_PATH in its environment and its own config on stdin.
///
/// Synchronous and blocking (plugins take tens of milliseconds): call it off the engine's
/// executor. Attach, detach and network removal are serialized by the flock on
/// `<root>/networks/lock`, also across processes.
public struct CNIRunner: Sendable {
    public let paths: NetworkPaths
    /// Directories searched for plugin binaries, passed to plugins as CNI_PATH.
    public let pluginDirs: [String]
    public let timeoutMs: Int32

    public init(root: String, pluginDirs: [String] = ["/usr/lib/cni", "/opt/cni/bin"], timeoutMs: Int32 = 60_000) throws {
        paths = NetworkPaths(root: FS.absolute(root))
        self.pluginDirs = pluginDirs
        self.timeoutMs = timeoutMs
        try FS.mkdirAll(paths.base, mode: 0o700)
        try FS.mkdirAll(paths.ipamDir, mode: 0o700)
        try FS.mkdirAll(paths.attachmentsDir, mode: 0o700)
    }

    // MARK: - attach / detach

    /// Connects the network namespace at `netnsPath` to `network` as `interface`: a veth pair
    /// into the bridge, an address from host-local (`ip` if given), the published `ports`.
    ///
    /// Refused before any plugin runs (nothing allocated): an `ip` outside the subnet, the
    /// network/broadcast/gateway address, or held by another container; a port published by
    /// another cryo container or bound on the host. Ports with host port 0 get a free one. A stale attachment of the same container
    /// (after a reboot, or an ADD that was never undone) is deleted first, so the container can
    /// get its old address back. A failing ADD is undone with DEL before the error is thrown.
    public func attach(containerID: String, netnsPath: String, network: NetworkConfig, ip: String? = nil,
                       mac: MACAddress? = nil, ports: [PortMapping] = [], interface: String = "eth0") throws -> Attachment {
        try Self.validateID(containerID)
        if network.isMacvlan && !ports.isEmpty {
            throw NetworkError.invalidOption("network \(network.name) is a macvlan network: ports cannot be published (the container has its own address on the segment; connect to it directly)")
        }
        try Self.validateInterface(interface)
        for p in ports { try p.validate() }
        for (i, p) in ports.enumerated() {
            if let q = ports[..<i].first(where: { $0.clashes(with: p) }) {
                throw NetworkError.invalidPort("\(p) and \(q) publish the same host port")
            }
        }
        let subnet = try network.parsedSubnet
        let lock = try FileLock.exclusive(paths.lockFile)
        defer { lock.close() }
        guard try NetworkStore(root: FS.parent(paths.base)).read().networks.contains(where: { $0.id == network.id }) else {
            throw NetworkError.notFound(network.name)
        }

        // A leftover of this container on this network: undo it first.
        let recordPath = paths.attachmentFile(containerID: containerID, networkID: network.id)
        let ipamDir = paths.ipamDir(network: network.name)
        if let old = try readRecord(recordPath) {
            try runDEL(old)
            unlink(recordPath)
        } else if Self.allocationOwners(in: ipamDir).values.contains(containerID) {
            try runDEL(freshRecord(containerID: containerID, netnsPath: netnsPath, network: network,
                                   interface: interface, ip: nil, ports: []))
        }

        var fixed: IPv4Address?
        if let ip {
            guard let a = IPv4Address(ip) else { throw NetworkError.invalidIP(ip, "not an IPv4 address") }
            guard subnet.contains(a) else {
                throw NetworkError.ipOutsideSubnet(ip: ip, network: network.name, subnet: network.subnet)
            }
            if a == subnet.network { throw NetworkError.ipNotAssignable(ip: ip, network: network.name, reason: "it is the network address") }
            if a == subnet.broadcast { throw NetworkError.ipNotAssignable(ip: ip, network: network.name, reason: "it is the broadcast address") }
            if a.description == network.gateway {
                throw NetworkError.ipNotAssignable(ip: ip, network: network.name, reason: "it is the gateway (the bridge's address)")
            }
            if let owner = Self.allocationOwners(in: ipamDir)[a], owner != containerID {
                throw NetworkError.ipInUse(ip: ip, network: network.name, container: owner)
            }
            fixed = a
        }

        let others = try records().filter { $0.containerID != containerID || $0.networkID != network.id }
        for p in ports where p.hostPort != 0 {
            for other in others {
                if let q = other.ports.first(where: { $0.clashes(with: p) }) {
                    throw NetworkError.portInUse(port: p.hostPort, proto: p.protocol, hostIP: p.hostIP,
                                                 reason: "published as \(q) by container \(other.containerID)")
                }
            }
            try PortCheck.ensureFree(p)
        }
        // Host port 0 (`-p 80`, `-P`): pick free ones now, under the lock, so two attaches
        // never choose the same; the record and the attachment hold the chosen ports.
        var chosen = ports
        for i in chosen.indices where chosen[i].hostPort == 0 {
            let proto = chosen[i].protocol
            let taken = Set((others.flatMap(\.ports) + chosen).filter { $0.protocol == proto }.map(\.hostPort))
            chosen[i].hostPort = try PortCheck.pickFree(chosen[i], taken: taken)
        }

        // The record goes first: a crash during ADD leaves what DEL needs to clean up.
        var record = freshRecord(containerID: containerID, netnsPath: netnsPath, network: network,
                                 interface: interface, ip: fixed, ports: chosen, mac: mac)
        try writeRecord(record, recordPath)
        let result: JSONValue
        do {
            result = try runADD(record)
        } catch {
            do {
                try runDEL(record)
                unlink(recordPath)
            } catch let cleanup {
                throw NetworkError.pluginOutput(plugin: "cleanup", command: "DEL",
                    "\(error); undoing it failed too: \(cleanup) (record kept at \(recordPath); detach retries)")
            }
            throw error
        }
        let parsed: CNIResult
        do {
            parsed = try JSONDecoder().decode(CNIResult.self, from: Data(result.encoded()))
        } catch {
            try? runDEL(record)
            unlink(recordPath)
            throw NetworkError.pluginOutput(plugin: "portmap", command: "ADD", "unreadable result: \(error)")
        }
        let att = try Attachment.from(result: parsed, containerID: containerID, network: network,
                                      interface: interface, ports: chosen)
        record.result = result
        record.attachment = att
        try writeRecord(record, recordPath)
        return att
    }

    /// Disconnects a container from a network: DEL through every plugin in reverse order
    /// (portmap removes its rules, bridge the veth, host-local the address). Idempotent: a
    /// second detach, or one after the namespace is gone (a reboot), succeeds. The record of
    /// the attachment is removed only when every plugin succeeded, so a failed detach can be
    /// retried.
    public func detach(containerID: String, netnsPath: String, network: NetworkConfig, interface: String = "eth0") throws {
        try Self.validateID(containerID)
        let lock = try FileLock.exclusive(paths.lockFile)
        defer { lock.close() }
        let recordPath = paths.attachmentFile(containerID: containerID, networkID: network.id)
        var record = try readRecord(recordPath)
            ?? freshRecord(containerID: containerID, netnsPath: netnsPath, network: network, interface: interface, ip: nil, ports: [])
        record.netnsPath = netnsPath
        try runDEL(record)
        unlink(recordPath)
    }

    /// CNI CHECK of an attachment (the plugins verify the interface, address and routes).
    public func check(containerID: String, netnsPath: String, network: NetworkConfig) throws {
        let recordPath = paths.attachmentFile(containerID: containerID, networkID: network.id)
        guard let record = try readRecord(recordPath), let result = record.result else {
            throw NetworkError.pluginOutput(plugin: "bridge", command: "CHECK", "container \(containerID) is not attached to \(network.name)")
        }
        let types = CNIConfig.pluginTypes(record.conflist)
        for i in types.indices {
            let cfg = CNIConfig.pluginConfig(record.conflist, index: i, runtimeArgs: record.runtimeArgs, prevResult: result)
            _ = try invoke(type: types[i], command: "CHECK", containerID: containerID, netns: netnsPath,
                           interface: record.interface, config: cfg)
        }
    }

    /// The recorded attachment of a container to a network (nil when not attached).
    public func attachment(containerID: String, network: NetworkConfig) throws -> Attachment? {
        try readRecord(paths.attachmentFile(containerID: containerID, networkID: network.id))?.attachment
    }

    /// Every recorded attachment (for the engine: peers for /etc/hosts, `network inspect`).
    public func attachments() throws -> [Attachment] { try records().compactMap(\.attachment) }

    /// Removes the bridge interface of a removed network (the bridge plugin never deletes it).
    /// No error when it does not exist; nothing for macvlan (the parent is not cryo's).
    public func deleteBridge(of network: NetworkConfig) throws {
        guard !network.isMacvlan, !network.bridge.isEmpty, FS.exists("/sys/class/net/" + network.bridge) else { return }
        let ipPath = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first(where: FS.exists) ?? "/sbin/ip"
        let r = try Spawn.run(path: ipPath, args: ["ip", "link", "del", network.bridge], env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
        if r.status != 0 && FS.exists("/sys/class/net/" + network.bridge) {
            throw NetworkError.bridgeInUse(network.bridge, "could not be deleted: \(r.stderrString.trimmingWhitespace())")
        }
    }

    // MARK: - plugins

    func freshRecord(containerID: String, netnsPath: String, network: NetworkConfig, interface: String,
                     ip: IPv4Address?, ports: [PortMapping], mac: MACAddress? = nil) -> AttachmentRecord {
        AttachmentRecord(containerID: containerID, networkID: network.id, networkName: network.name, netnsPath: netnsPath,
                         interface: interface,
                         conflist: CNIConfig.conflist(for: network, ipamDataDir: paths.ipamDir, explicitIP: ip != nil),
                         runtimeArgs: CNIConfig.runtimeArgs(ip: ip, ports: ports, mac: mac), ports: ports, result: nil, attachment: nil)
    }

    // MARK: - reservations

    /// Marks `ip` as used on `network` in host-local's data directory for `owner` (the id of
    /// the container that will be attached with it, e.g. one migrating here): automatic
    /// allocation skips it, and only `owner`'s attach may take it (its stale-allocation
    /// cleanup releases the reservation right before its ADD). Idempotent for the same owner;
    /// refuses an address outside the subnet, the network/broadcast/gateway address, or one
    /// held by another container or reservation.
    public func reserve(network: NetworkConfig, ip: String, owner: String, interface: String = "eth0") throws {
        try Self.validateID(owner)
        let subnet = try network.parsedSubnet
        guard let a = IPv4Address(ip) else { throw NetworkError.invalidIP(ip, "not an IPv4 address") }
        guard subnet.contains(a) else { throw NetworkError.ipOutsideSubnet(ip: ip, network: network.name, subnet: network.subnet) }
        guard subnet.isHost(a) else { throw NetworkError.ipNotAssignable(ip: ip, network: network.name, reason: "it is the network or broadcast address") }
        if a.description == network.gateway { throw NetworkError.ipNotAssignable(ip: ip, network: network.name, reason: "it is the gateway") }
        let lock = try FileLock.exclusive(paths.lockFile)
        defer { lock.close() }
        let dir = paths.ipamDir(network: network.name)
        if let holder = Self.allocationOwners(in: dir)[a] {
            if holder == owner { return }
            throw NetworkError.ipInUse(ip: ip, network: network.name, container: holder)
        }
        try FS.mkdirAll(dir, mode: 0o700)
        // host-local's own file format, created exclusively as host-local does.
        let path = dir + "/" + a.description
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 {
            if errno == EEXIST { throw NetworkError.ipInUse(ip: ip, network: network.name, container: Self.allocationOwners(in: dir)[a] ?? "?") }
            throw NetworkError.corruptState(path, "reserving the address: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let text = Array("\(owner)\r\n\(interface)".utf8)
        guard text.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == text.count else {
            let e = String(cString: strerror(errno))
            unlink(path)
            throw NetworkError.corruptState(path, "writing the reservation: \(e)")
        }
    }

    /// Drops a reservation made by `reserve` (no error if the address is free). Refused while
    /// a container is attached with the address: detach it instead.
    public func release(network: NetworkConfig, ip: String) throws {
        guard let a = IPv4Address(ip) else { throw NetworkError.invalidIP(ip, "not an IPv4 address") }
        let lock = try FileLock.exclusive(paths.lockFile)
        defer { lock.close() }
        if let att = try records().first(where: { $0.networkID == network.id && $0.attachment?.ip == a.description }) {
            throw NetworkError.ipInUse(ip: ip, network: network.name, container: att.containerID)
        }
        let path = paths.ipamDir(network: network.name) + "/" + a.description
        if unlink(path) != 0 && errno != ENOENT {
            throw NetworkError.corruptState(path, "releasing the address: \(String(cString: strerror(errno)))")
        }
    }

    /// ADD through every plugin in order, each getting the previous one's result.
    func runADD(_ r: AttachmentRecord) throws -> JSONValue {
        var prev: JSONValue?
        let types = CNIConfig.pluginTypes(r.conflist)
        for i in types.indices {
            let cfg = CNIConfig.pluginConfig(r.conflist, index: i, runtimeArgs: r.runtimeArgs, prevResult: prev)
            let out = try invoke(type: types[i], command: "ADD", containerID: r.containerID, netns: r.netnsPath,
                                 interface: r.interface, config: cfg)
            do {
                prev = try JSONValue.decode(out)
            } catch {
                throw NetworkError.pluginOutput(plugin: types[i], command: "ADD", "result is not JSON: \(String(decoding: out.prefix(200), as: UTF8.self))")
            }
        }
        guard let prev else { throw NetworkError.pluginOutput(plugin: "-", command: "ADD", "the network has no plugins") }
        return prev
    }

    /// DEL through every plugin in reverse order; every plugin runs even if one fails, the
    /// first failure is thrown. A namespace that is gone is passed as an empty CNI_NETNS
    /// (the bridge plugin then only releases the address; the veth died with the namespace).
    func runDEL(_ r: AttachmentRecord) throws {
        let netns = NetworkNamespace.exists(at: r.netnsPath) ? r.netnsPath : ""
        let types = CNIConfig.pluginTypes(r.conflist)
        var firstError: Error?
        for i in types.indices.reversed() {
            let cfg = CNIConfig.pluginConfig(r.conflist, index: i, runtimeArgs: r.runtimeArgs, prevResult: r.result)
            do {
                _ = try invoke(type: types[i], command: "DEL", containerID: r.containerID, netns: netns,
                               interface: r.interface, config: cfg)
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        if let firstError { throw firstError }
    }

    /// Runs one plugin; returns its stdout on success, throws its CNI error otherwise.
    public func invoke(type: String, command: String, containerID: String, netns: String, interface: String,
                       config: JSONValue) throws -> [UInt8] {
        guard type.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }),
              let path = pluginDirs.map({ $0 + "/" + type }).first(where: { access($0, X_OK) == 0 }) else {
            throw NetworkError.pluginMissing(type)
        }
        let env = [
            "CNI_COMMAND=\(command)", "CNI_CONTAINERID=\(containerID)", "CNI_NETNS=\(netns)",
            "CNI_IFNAME=\(interface)", "CNI_PATH=\(pluginDirs.joined(separator: ":"))",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ]
        let run = try Spawn.run(path: path, args: [type], env: env, input: try config.encoded(), timeoutMs: timeoutMs)
        if run.timedOut {
            throw NetworkError.pluginOutput(plugin: type, command: command, "no answer within \(timeoutMs / 1000) s (killed)")
        }
        guard run.status == 0 else {
            if let e = CNIErrorResult.parse(run.stdout) ?? CNIErrorResult.parse(run.stderr) {
                throw NetworkError.plugin(plugin: type, command: command, code: e.code, message: e.msg, details: e.details ?? "")
            }
            let text = (run.stderrString + run.stdoutString).trimmingWhitespace()
            throw NetworkError.pluginOutput(plugin: type, command: command,
                                            "exit status \(run.status)\(text.isEmpty ? "" : ": " + String(text.prefix(500)))")
        }
        return run.stdout
    }

    // MARK: - records

    func readRecord(_ path: String) throws -> AttachmentRecord? {
        guard FS.exists(path) else { return nil }
        do {
            return try JSONDecoder().decode(AttachmentRecord.self, from: Data(FS.readBytes(path)))
        } catch let e as DecodingError {
            throw NetworkError.corruptState(path, "\(e)")
        }
    }

    func writeRecord(_ r: AttachmentRecord, _ path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        try FS.atomicWrite(path, Array(try enc.encode(r)), mode: 0o600)
    }

    func records() throws -> [AttachmentRecord] {
        let names = (try? FS.listDirectory(paths.attachmentsDir)) ?? []
        return try names.filter { $0.hasSuffix(".json") }.sorted().compactMap { try readRecord(paths.attachmentsDir + "/" + $0) }
    }

    /// Address → container id, from a host-local data directory.
    static func allocationOwners(in dir: String) -> [IPv4Address: String] {
        guard let names = try? FS.listDirectory(dir) else { return [:] }
        var owners: [IPv4Address: String] = [:]
        for n in names {
            guard let a = IPv4Address(n) else { continue }
            let text = (try? FS.readString(dir + "/" + n)) ?? ""
            owners[a] = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? "?"
        }
        return owners
    }

    static func validateID(_ id: String) throws {
        guard !id.isEmpty, id.count <= 128, id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }),
              id != ".", id != ".." else {
            throw NetworkError.invalidName(id, "a container id must be 1 to 128 of [a-zA-Z0-9_.-]")
        }
    }

    static func validateInterface(_ name: String) throws {
        guard !name.isEmpty, name.utf8.count <= 15, !name.contains("/"), !name.contains(" "), name != ".", name != ".." else {
            throw NetworkError.invalidName(name, "an interface name must be 1 to 15 characters without / or spaces")
        }
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
