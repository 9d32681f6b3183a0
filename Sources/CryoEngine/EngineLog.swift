import CryoLog

/// cryod's logger for the engine: what happened to a container or a migration outside any
/// request (recovery, a failed detach, a peer's abort). cryod bootstraps CryoLogging first,
/// so the handler is the daemon's (level and format from its flags).
enum EngineLog {
    static var logger: Logger { Logger(label: "cryod") }
}
