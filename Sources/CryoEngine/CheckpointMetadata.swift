import CryoLinux
import CryoNetwork
import CryoRuntime
import FoundationEssentials

/// What a checkpoint remembers of the container's network address: a restore asks for the
/// same address again.
struct CheckpointNetwork: Codable, Equatable {
    var network: String
    var networkID: String
    var ip: String
    /// The published ports as attached (random host ports resolved), so a restore
    /// publishes the same host ports again.
    var ports: [PortMapping]?
    /// The interface's MAC (absent in checkpoints made before cryo recorded it): a restore
    /// recreates the endpoint with it, so neighbours' ARP entries stay right.
    var mac: String?
}

/// What cryod records in a checkpoint besides CRIU's images (`<checkpoint>/cryo-checkpoint.json`),
/// written before the dump so that a dump marked complete is a whole checkpoint: how the
/// dump was made, as far as its restore must know, and the container's address.
///
/// Checkpoints made before this file existed have two sidecars instead, still read:
/// `cryo-options.json` (`{"tcpEstablished":true}`, only when set) and `cryo-network.json`
/// (the address); for those, where CRIU dumped from is told by the images.
struct CheckpointMetadata: Codable, Equatable {
    static let file = "cryo-checkpoint.json"
    static let legacyOptionsFile = "cryo-options.json"
    static let legacyNetworkFile = "cryo-network.json"

    /// Established TCP connections are in the images: the restore must restore them too.
    var tcpEstablished: Bool
    /// How the dump handled the network (`criuInside`: the images hold no network
    /// namespace). nil: a checkpoint with the old sidecars.
    var network: NetworkHandling?
    var address: CheckpointNetwork?
    /// The volumes the container mounts, name → destination (bind mounts for CRIU): a restore
    /// is refused while one is missing. nil: none, or a checkpoint from before volumes.
    var volumes: [String: String]?

    init(tcpEstablished: Bool, network: NetworkHandling? = nil, address: CheckpointNetwork? = nil, volumes: [String: String]? = nil) {
        self.tcpEstablished = tcpEstablished
        self.network = network
        self.address = address
        self.volumes = volumes
    }

    /// Refuses the restore when a volume the checkpoint used is gone (its contents are part
    /// of the container's state). On the pool.
    func checkVolumes(_ store: VolumeStore, checkpoint: String) throws {
        for (name, destination) in (volumes ?? [:]).sorted(by: { $0.key < $1.key }) where try store.get(name) == nil {
            throw EngineError(.notFound, "restore refused: checkpoint \(checkpoint) uses volume \(name) (mounted at \(destination)), which does not exist; create it (docker volume create \(name)) with the data the checkpoint expects")
        }
    }

    /// The metadata of the checkpoint in `dir`; a checkpoint with neither the file nor the old
    /// sidecars (say, made by cryo-runtime and copied in) has no TCP connections and no address.
    static func load(_ dir: String) throws -> CheckpointMetadata {
        let path = dir + "/" + file
        if FS.exists(path) {
            do {
                return try JSONDecoder().decode(CheckpointMetadata.self, from: Data(try FS.readBytes(path)))
            } catch {
                throw EngineError.internalError("checkpoint \(dir): \(file) cannot be read: \(error)")
            }
        }
        struct LegacyOptions: Codable { var tcpEstablished: Bool? }
        let options = (try? FS.readBytes(dir + "/" + legacyOptionsFile)).flatMap { try? JSONDecoder().decode(LegacyOptions.self, from: Data($0)) }
        let address = (try? FS.readBytes(dir + "/" + legacyNetworkFile)).flatMap { try? JSONDecoder().decode(CheckpointNetwork.self, from: Data($0)) }
        return CheckpointMetadata(tcpEstablished: options?.tcpEstablished == true, network: nil, address: address)
    }

    func write(into dir: String) throws {
        try FS.atomicWrite(dir + "/" + Self.file, Array(try JSONEncoder().encode(self)), mode: 0o600, durable: false)
    }
}
