import CryoNetwork
import FoundationEssentials

/// A container's lifecycle as cryod tracks it (Docker's status words).
public enum ContainerStatus: String, Codable, Sendable {
    case created, running, paused, restarting, removing, exited, dead
}

/// What a user asks of a container; the state machine says whether it may happen now.
public enum ContainerAction: String, Sendable {
    case start, stop, kill, pause, unpause, restart, remove, forceRemove, checkpoint, restore, exec, attach
}

public enum StateMachine {
    /// nil: allowed. Otherwise the 409 message (Docker's wording where it has one),
    /// or `.notModified` for start-when-running and stop-when-stopped (Docker answers 304).
    public static func check(_ action: ContainerAction, status: ContainerStatus, id: String) -> EngineError? {
        switch (action, status) {
        case (.start, .created), (.start, .exited): return nil
        // Waiting out its restart policy's back-off: started now instead.
        case (.start, .restarting): return nil
        case (.start, .running): return EngineError(.notModified, "container \(id) is already running")
        case (.start, .paused): return .conflict("cannot start a paused container, try unpause instead")
        case (.start, _): return .conflict("cannot start container \(id): it is \(status.rawValue)")
        case (.restore, .created), (.restore, .exited): return nil
        case (.restore, _): return .conflict("cannot restore container \(id): it is \(status.rawValue); stop it first")
        case (.stop, .running), (.stop, .paused): return nil
        case (.stop, _): return EngineError(.notModified, "container \(id) is not running")
        case (.kill, .running), (.kill, .paused): return nil
        case (.kill, _): return .conflict("cannot kill container: \(id): container \(id) is not running")
        case (.pause, .running): return nil
        case (.pause, .paused): return .conflict("cannot pause container \(id): container \(id) is already paused")
        case (.pause, _): return .conflict("cannot pause container \(id): container \(id) is not running")
        case (.unpause, .paused): return nil
        case (.unpause, _): return .conflict("cannot unpause container \(id): container \(id) is not paused")
        case (.restart, .removing), (.restart, .dead): return .conflict("cannot restart container \(id): it is \(status.rawValue)")
        case (.restart, _): return nil
        case (.remove, .running), (.remove, .paused), (.remove, .restarting):
            return .conflict("cannot remove container \"\(id)\": container is \(status.rawValue): stop the container before removing or force remove")
        case (.remove, .removing), (.forceRemove, .removing): return .conflict("removal of container \(id) is already in progress")
        case (.remove, _), (.forceRemove, _): return nil
        case (.checkpoint, .running): return nil
        case (.checkpoint, _): return .conflict("cannot checkpoint container \(id): container is \(status.rawValue), not running")
        case (.exec, .running): return nil
        case (.exec, .paused): return .conflict("container \(id) is paused, unpause the container before exec")
        case (.exec, _): return .conflict("container \(id) is not running")
        case (.attach, .removing), (.attach, .dead): return .conflict("cannot attach to container \(id): it is \(status.rawValue)")
        case (.attach, _): return nil
        }
    }
}

/// The persistent record of one container (`<root>/containers/<id>/container.json`,
/// replaced atomically on every change).
public struct StoredContainer: Codable, Sendable {
    public var id: String
    public var name: String
    public var created: String
    public var imageRef: String
    public var imageID: String
    public var config: ContainerConfig
    public var hostConfig: HostConfig
    public var path: String
    public var args: [String]

    public var status: ContainerStatus = .created
    public var pid: Int32 = 0
    public var exitCode: Int32 = 0
    public var error: String = ""
    public var startedAt: String = "0001-01-01T00:00:00Z"
    public var finishedAt: String = "0001-01-01T00:00:00Z"
    public var restartCount = 0
    /// The monitor of the current run (pid and /proc start time, so a reused pid never
    /// passes for it).
    public var monitorPid: Int32 = 0
    public var monitorStartTime: UInt64?
    /// Why it was stopped on purpose (a manual stop, a checkpoint), so that neither its
    /// restart policy nor a restarted cryod starts it again; cleared at every start.
    public var stopCause: RestartPolicyDecision.StopCause?
    /// Set by a shutdown with checkpointing: restore from this checkpoint at start.
    public var restoreOnStart: String?
    /// A checkpoint or restore in progress: written durably before its first step (freeze,
    /// dump, restore) and cleared when it is over. A cryod that finds one at start was
    /// killed during it, and resolves it to the truth (`Engine.resolveInterrupted`).
    public var operation: PendingOperation?
    /// The volumes it mounts (named and anonymous), resolved at create.
    public var volumes: [VolumeUse]?

    /// The cryo network the container joins at start (resolved at create; nil for
    /// `--network none` and `host`).
    public var networkName: String?
    public var networkID: String?
    /// More names on that network (`--network-alias`, docker-compose's service name), set at
    /// create or `network connect`.
    public var networkAliases: [String]?
    /// Links on that network, "TARGET:ALIAS" (`NetworkLinks`): names only this container resolves.
    public var networkLinks: [String]?
    /// `--ip`, and the published ports (`-p`), parsed at create.
    public var requestedIP: String?
    public var portMappings: [PortMapping]?
    /// The endpoint's MAC: `--mac-address`, else chosen (random, locally administered) at the
    /// first attach; every later start and restore reuses it (records without it get one then).
    public var macAddress: String?
    /// The current attachment: address, gateway, MAC (nil while not attached).
    public var endpoint: Attachment?
    /// The address of the last attachment, kept after the container stopped.
    public var lastIP: String?
    /// The migration that brought the container here (its session), so that a source
    /// whose answer to the commit was lost can ask how it ended.
    public var migrationSession: String?
    /// While a migration here is not committed: the volumes it made (they go if it is
    /// discarded; volumes that existed, empty, are emptied again).
    public var migrationVolumes: [String]?
    /// Set while a migration from here could not let its copy go: see `MigrationHold`.
    public var heldByMigration: MigrationHold?
    /// `State.Health`: set when a run with a health check begins (see `Engine+Health`).
    public var health: ContainerHealth?

    public init(id: String, name: String, created: String, imageRef: String, imageID: String,
                config: ContainerConfig, hostConfig: HostConfig, path: String, args: [String]) {
        self.id = id
        self.name = name
        self.created = created
        self.imageRef = imageRef
        self.imageID = imageID
        self.config = config
        self.hostConfig = hostConfig
        self.path = path
        self.args = args
    }

    public var isRunning: Bool { status == .running || status == .paused }

    /// Network mode none: a namespace of its own with a loopback only, which nothing outside
    /// can reach (no lock needed while CRIU works on it).
    public var networkIsIsolated: Bool { hostConfig.NetworkMode != "host" && networkID == nil }
}

/// An operation on a container that must never be left half done: a checkpoint (which
/// freezes, locks the network and dumps) or a restore (a monitor and CRIU bring the
/// container back). "Never zero copies, never two": after any crash either the container
/// runs or a complete checkpoint of it exists, and never both where the checkpoint was
/// meant to stop it.
public struct PendingOperation: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case checkpoint, restore
        /// The source's side of `cryo migrate` (`checkpoint` holds the session): frozen and
        /// dumped towards the target, resumed or removed by the target's answer.
        case migrateOut = "migrate-out"
        /// The target's side: restored from the source's images, kept only once committed.
        case migrateIn = "migrate-in"
        /// A new container restored from a checkpoint (import, clone, fork, checkpoint image):
        /// born with it, it is kept after a crash only if its restore had finished.
        case restoreNew = "restore-new"
        /// A running container joining a network (`checkpoint` holds the network's id): kept
        /// after a crash only if its endpoint was recorded, else undone (CNI DEL).
        case networkConnect = "network-connect"
        /// A running container leaving a network (`checkpoint` holds its id): finished after a crash.
        case networkDisconnect = "network-disconnect"
    }
    public var kind: Kind
    /// The checkpoint's name and its final directory (for a checkpoint, its images are
    /// written to `.incomplete-<name>` beside it first).
    public var checkpoint: String
    public var directory: String
    /// checkpoint: the container runs on afterwards (`--leave-running`).
    public var leaveRunning: Bool?
    public var began: String
    /// migrate-out: the target cryod (tcp://… or unix://…), asked after a crash how it ended.
    public var peer: String?
    /// migrate-out/in: post-copy (the memory follows the resumed copy from the frozen source).
    public var postCopy: Bool?
    /// migrate-out, post-copy: the target was told to run its copy (durable before it was):
    /// from then on the frozen source copy is never resumed automatically.
    public var peerRuns: Bool?

    public init(kind: Kind, checkpoint: String, directory: String, leaveRunning: Bool? = nil, began: String, peer: String? = nil,
                postCopy: Bool? = nil) {
        self.kind = kind
        self.postCopy = postCopy
        self.peer = peer
        self.checkpoint = checkpoint
        self.directory = directory
        self.leaveRunning = leaveRunning
        self.began = began
    }

    /// Where a checkpoint's images are written until they are complete.
    public var incompleteDirectory: String {
        let slash = directory.lastIndex(of: "/").map { String(directory[..<$0]) } ?? "."
        return slash + "/.incomplete-" + checkpoint
    }
}
