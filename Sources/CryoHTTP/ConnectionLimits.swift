#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import Synchronization

/// How many connections the server keeps, and for how long an idle one.
public struct ConnectionLimits: Sendable {
    /// A connection between requests (or still sending its request head) is closed after
    /// this long. Never applied while a request's handler runs, nor to a hijacked stream.
    public var idleTimeout: TimeAmount
    /// At most this many open connections; nil: a share of RLIMIT_NOFILE, read at each
    /// accept (see `defaultMaxConnections`).
    public var maxConnections: Int?

    public init(idleTimeout: TimeAmount = .seconds(120), maxConnections: Int? = nil) {
        self.idleTimeout = idleTimeout
        self.maxConnections = maxConnections
    }

    /// Three quarters of the soft RLIMIT_NOFILE (at least 128 descriptors kept back): the
    /// rest stays for what cryod opens on its own — monitor sockets, exec pipes, CRIU and
    /// CNI plumbing, image files.
    public static func defaultMaxConnections() -> Int {
        var r = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &r) == 0 else { return 768 }
        let soft = r.rlim_cur > UInt64(Int32.max) ? Int(Int32.max) : Int(r.rlim_cur)
        return max(16, min(soft - 128, soft / 4 * 3))
    }
}

/// The server's open connections, and which of them are idle. When a new connection would
/// go over the limit, the connection idle for longest is closed to make room; when none
/// is idle, the new one is closed at once.
final class ConnectionTracker: Sendable {
    private struct Entry {
        let channel: Channel
        /// When it went idle (nil: a request is in progress, or the stream is hijacked).
        var idleSince: NIODeadline?
    }
    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        var shuttingDown = false
    }
    private let state = Mutex(State())
    let limits: ConnectionLimits

    init(limits: ConnectionLimits) { self.limits = limits }

    /// Registers a new (idle) connection. False: it must be closed (shutting down, or the
    /// limit is reached and every other connection is busy).
    func admit(_ channel: Channel) -> Bool {
        let cap = limits.maxConnections ?? ConnectionLimits.defaultMaxConnections()
        let (admitted, evicted) = state.withLock { s -> (Bool, Channel?) in
            if s.shuttingDown { return (false, nil) }
            var evicted: Channel?
            if s.entries.count >= cap {
                guard let oldest = s.entries.filter({ $0.value.idleSince != nil })
                    .min(by: { $0.value.idleSince! < $1.value.idleSince! }) else { return (false, nil) }
                evicted = oldest.value.channel
                s.entries[oldest.key] = nil
            }
            s.entries[ObjectIdentifier(channel)] = Entry(channel: channel, idleSince: .now())
            return (true, evicted)
        }
        evicted?.close(promise: nil)
        return admitted
    }

    func setIdle(_ channel: Channel, _ idle: Bool) {
        let id = ObjectIdentifier(channel)
        state.withLock { s in
            guard s.entries[id] != nil else { return }
            s.entries[id]?.idleSince = idle ? .now() : nil
        }
    }

    func remove(_ channel: Channel) {
        let id = ObjectIdentifier(channel)
        _ = state.withLock { $0.entries.removeValue(forKey: id) }
    }

    var count: Int { state.withLock { $0.entries.count } }

    /// Refuses new connections from now on; returns the open ones.
    func beginShutdown() -> [Channel] {
        state.withLock { s in
            s.shuttingDown = true
            return s.entries.values.map(\.channel)
        }
    }
}
