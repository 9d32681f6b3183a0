/// The conversation between the source cryod (A) and the target (B), in order:
///
///     A → B  offer            what moves, checked by B before anything is frozen
///     B → A  accept | refuse  (accept lists the image layers B lacks)
///     A → B  layer × n        each followed by its data (a tar of the layer)
///     A → B  pages            B starts CRIU's page server on the second connection; A freezes and dumps
///     A → B  files × 4        CRIU's other images, the rootfs changes, the log, /dev/shm (tars)
///     A → B  restore          B restores, its network locked
///     B → A  restored | failed
///     A → B  commit           A's copy is frozen and its address withdrawn
///     B → A  committed        B unlocks and announces; A lets CRIU kill its copy
///
/// While A is frozen, B sends `working` every second when it has nothing else to send; A
/// gives up (and resumes) when nothing at all has moved for the migration's silence limit.
///
/// Any failure (or a closed connection) before `committed` aborts: B kills what it
/// restored, A's CRIU resumes the container. After `commit`, B's durable record decides.
///
/// Post-copy (`offer.postCopy`) differs from `pages` on: A's CRIU keeps the memory in the
/// frozen tasks and serves it lazily on the second connection, which B hands to its
/// `criu lazy-pages` at `restore`. After `commit`, B unlocks and answers `running` (the
/// container runs there, pages still arriving); then `committed` once its lazy-pages daemon
/// has exited 0 (every page is there: A kills its frozen copy), or `lost` (B killed its copy,
/// which would have met zeros: A keeps its frozen one, stopped in time at the freeze).
public enum MigrationMessage: Codable, Sendable {
    case offer(MigrationOffer)
    /// `pageSocket`: a target on the same machine asked for by `offer.localPages` (see
    /// `LocalPageSocket`); nil: the page stream comes as a second connection, relayed.
    case accept(missingLayers: [String], pageSocket: LocalPageSocket.Offer?)
    case refuse(reason: String)
    case layer(diffID: String)
    case pages
    case files(FileSet)
    case restore
    case restored(initPid: Int32, restoreMs: Double)
    case failed(reason: String)
    case commit
    case committed
    case abort(reason: String)
    /// Post-copy: B runs the container (unlocked); its memory is still arriving.
    case running
    /// Post-copy: B's copy ran and was killed because pages are missing; what was lost.
    case lost(reason: String)
    /// B → A, every second while B works without sending (its page server finishing, its
    /// restore): it is alive. `FrameChannel.receive` takes these; A's `SilenceWatch` counts them.
    case working

    public var name: String {
        switch self {
        case .offer: return "offer"
        case .accept: return "accept"
        case .refuse: return "refuse"
        case .layer: return "layer"
        case .pages: return "pages"
        case .files(let f): return "files(\(f.rawValue))"
        case .restore: return "restore"
        case .restored: return "restored"
        case .failed: return "failed"
        case .commit: return "commit"
        case .committed: return "committed"
        case .abort: return "abort"
        case .running: return "running"
        case .lost: return "lost"
        case .working: return "working"
        }
    }
}

/// The file sets sent after the dump, each as one tar stream.
public enum FileSet: String, Codable, Sendable, CaseIterable {
    /// CRIU's images but the pages (which went through the page server) and cryo's files.
    case images
    /// The overlay upper directory: files created, changed and deleted (whiteouts).
    case rootfs
    /// The json-file log, so `logs` on B shows A's history.
    case log
    /// The container's /dev/shm (a host tmpfs bind-mounted in, which CRIU leaves out as an
    /// external mount): POSIX shared memory and whatever else lives there.
    case shm
    /// The contents of the container's volumes, as `NAME/_data/…` under the source's volume
    /// store (the volumes move with the container: taken while it is frozen).
    case volumes
}

/// What A proposes; B checks all of it before A freezes anything.
public struct MigrationOffer: Codable, Sendable {
    public var session: String
    /// The container record as A keeps it (Engine's StoredContainer, as JSON: this module
    /// sits below the engine).
    public var container: [UInt8]
    /// The image: its stored record and config blob (JSON), and its layers' diff IDs.
    public var image: [UInt8]
    public var imageConfig: [UInt8]
    public var layers: [String]
    /// The network the container is on: name, driver and subnet must match B's; the address
    /// and MAC it keeps.
    public var network: String?
    public var driver: String?
    public var subnet: String?
    public var ip: String?
    public var mac: String?
    /// Host paths bind-mounted into the container: they must exist on B (shared storage).
    public var bindSources: [String]
    /// CRIU's view of A's CPU (`criu cpuinfo dump`'s cpuinfo.img), checked by B's CRIU.
    public var cpuinfo: [UInt8]
    public var criuVersion: String
    /// Bytes B needs on disk: layers it lacks, the rootfs changes, the memory, the images.
    public var bytesNeeded: UInt64
    public var tcpEstablished: Bool
    public var postCopy: Bool
    /// A reached B over B's unix socket (the same machine): B may offer a page socket of its
    /// own (`LocalPageSocket`) so that CRIU's pages go with no relay.
    public var localPages: Bool?

    public init(session: String, container: [UInt8], image: [UInt8], imageConfig: [UInt8], layers: [String],
                network: String?, driver: String?, subnet: String?, ip: String?, mac: String?, bindSources: [String],
                cpuinfo: [UInt8], criuVersion: String, bytesNeeded: UInt64, tcpEstablished: Bool, postCopy: Bool,
                localPages: Bool? = nil) {
        self.session = session
        self.container = container
        self.image = image
        self.imageConfig = imageConfig
        self.layers = layers
        self.network = network
        self.driver = driver
        self.subnet = subnet
        self.ip = ip
        self.mac = mac
        self.bindSources = bindSources
        self.cpuinfo = cpuinfo
        self.criuVersion = criuVersion
        self.bytesNeeded = bytesNeeded
        self.tcpEstablished = tcpEstablished
        self.postCopy = postCopy
        self.localPages = localPages
    }
}
