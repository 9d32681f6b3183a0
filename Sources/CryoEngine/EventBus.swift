import FoundationEssentials
import Glibc
import Synchronization

/// One engine event in dockerd 24+'s `/events` shape: `Type`, `Action`, `Actor{ID, Attributes}`,
/// `scope`, `time`, `timeNano`, plus the legacy `status`/`id`/`from` of container and image events.
/// cryo's own container actions: `restore` and `migrate` (besides dockerd's `checkpoint`).
public struct EngineEvent: Sendable, Equatable, Encodable {
    public var type: String
    public var action: String
    public var actorID: String
    public var attributes: [String: String]
    public var timeNano: Int64

    public init(type: String, action: String, actorID: String, attributes: [String: String] = [:], timeNano: Int64) {
        self.type = type; self.action = action; self.actorID = actorID
        self.attributes = attributes; self.timeNano = timeNano
    }

    struct Actor: Encodable { var ID: String; var Attributes: [String: String] }

    enum Keys: String, CodingKey { case status, id, from, type = "Type", action = "Action", actor = "Actor", scope, time, timeNano }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        if type == "container" || type == "image" {
            try c.encode(action, forKey: .status)
            try c.encode(actorID, forKey: .id)
            if let image = attributes["image"] { try c.encode(image, forKey: .from) }
        }
        try c.encode(type, forKey: .type)
        try c.encode(action, forKey: .action)
        try c.encode(Actor(ID: actorID, Attributes: attributes), forKey: .actor)
        try c.encode("local", forKey: .scope)
        try c.encode(timeNano / 1_000_000_000, forKey: .time)
        try c.encode(timeNano, forKey: .timeNano)
    }

    /// One line of the stream: the JSON object and a newline, as dockerd writes it.
    public func jsonLine() -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? enc.encode(self)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}

/// `filters` of `GET /events`: type, event (= action), container (id, id prefix or name), image,
/// label (`key` or `key=value`), network, volume, scope. Values of one name are ORed, names ANDed.
/// Any other name is refused with dockerd's message, never ignored.
public struct EventFilter: Sendable, Equatable {
    public var values: [String: [String]] = [:]

    public static let accepted: Set<String> = ["type", "event", "container", "image", "label", "network", "volume", "scope", "daemon", "plugin", "node", "service", "secret", "config"]
    static let types: Set<String> = ["container", "image", "network", "volume", "daemon", "plugin", "node", "service", "secret", "config"]

    public init() {}

    public static func parse(_ json: String?) throws -> EventFilter {
        var f = EventFilter()
        guard let json, !json.isEmpty else { return f }
        guard let obj = try? JSONDecoder().decode([String: PruneFilter.FilterValues].self, from: Data(json.utf8)) else {
            throw EngineError.bad("invalid filter: \(json): expected {\"name\": [values]} or {\"name\": {\"value\": true}}")
        }
        for (key, raw) in obj {
            guard accepted.contains(key) else { throw EngineError.bad("invalid filter '\(key)'") }
            if key == "type", let bad = raw.values.first(where: { !types.contains($0) }) {
                throw EngineError.bad("invalid filter 'type=\(bad)'")
            }
            if key == "scope", let bad = raw.values.first(where: { $0 != "local" && $0 != "swarm" }) {
                throw EngineError.bad("invalid filter 'scope=\(bad)'")
            }
            f.values[key, default: []] += raw.values
        }
        return f
    }

    public func matches(_ e: EngineEvent) -> Bool {
        func any(_ key: String, _ test: (String) -> Bool) -> Bool {
            guard let vs = values[key], !vs.isEmpty else { return true }
            return vs.contains(where: test)
        }
        func actorIs(_ type: String, _ v: String) -> Bool {
            e.type == type && (e.actorID == v || e.actorID.hasPrefix(v) || e.attributes["name"] == v)
        }
        return any("type") { $0 == e.type }
            && any("event") { $0 == e.action || e.action.hasPrefix($0 + ":") }
            && any("scope") { $0 == "local" }
            && any("container") { v in actorIs("container", v) || (e.type == "network" && e.attributes["container"].map { c in c == v || c.hasPrefix(v) } == true) }
            && any("image") { v in
                (e.type == "image" && (e.actorID == v || e.attributes["name"] == v))
                    || (e.type == "container" && (e.attributes["image"] == v || e.attributes["image"] == v + ":latest"))
            }
            && any("network") { actorIs("network", $0) }
            && any("volume") { actorIs("volume", $0) }
            && any("label") { spec in
                let kv = spec.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                guard let v = e.attributes[kv[0]] else { return false }
                return kv.count == 1 || v == kv[1]
            }
    }
}

/// `since`/`until` of `/events`: unix seconds with an optional fraction ("1700000000.5", as the
/// docker CLI sends after converting its own durations), RFC 3339, or a Go duration before now.
public enum EventTime {
    public static func parse(_ s: String?, now: Double, name: String) throws -> Int64? {
        guard let s, !s.isEmpty else { return nil }
        let parts = s.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        if let secs = Int64(parts[0]), parts.count == 1 || (parts[1].allSatisfy(\.isNumber) && !parts[1].isEmpty && parts[1].count <= 9) {
            var nanos: Int64 = 0
            if parts.count == 2 { nanos = Int64(parts[1].padding(toLength: 9, withPad: "0", startingAt: 0))! }
            return secs * 1_000_000_000 + nanos
        }
        if let t = PruneFilter.untilTime(s, now: now) { return Int64(t * 1e9) }
        throw EngineError.bad("invalid value for \(name): \(s): expected a unix timestamp, an RFC 3339 time or a duration")
    }
}

/// The engine's event bus: the last `capacity` events in memory (dockerd keeps 1000) and live
/// subscribers. `publish` never blocks: each subscriber has a bounded buffer, and one that falls
/// `bufferLimit` events behind is finished (its stream ends; the client sees the end), so a slow
/// client can never stall the engine actor nor grow memory.
public final class EventBus: Sendable {
    public let capacity: Int
    public let bufferLimit: Int

    struct Subscriber {
        var filter: EventFilter
        var until: Int64?
        var continuation: AsyncStream<EngineEvent>.Continuation
    }
    struct State {
        var ring: [EngineEvent] = []
        var start = 0
        var nextID = 0
        var subscribers: [Int: Subscriber] = [:]
    }
    private let state = Mutex(State())

    public init(capacity: Int = 1000, bufferLimit: Int = 1024) {
        self.capacity = capacity; self.bufferLimit = bufferLimit
    }

    /// Hook for any module (volumes included): emit one event with the time of now.
    public func emit(_ type: String, _ action: String, id: String, attributes: [String: String] = [:]) {
        publish(EngineEvent(type: type, action: action, actorID: id, attributes: attributes, timeNano: Self.nowNano()))
    }

    public static func nowNano() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    public func publish(_ event: EngineEvent) {
        // finished outside the lock: finish() runs onTermination, which takes the lock
        let ended: [AsyncStream<EngineEvent>.Continuation] = state.withLock { s in
            var ended: [AsyncStream<EngineEvent>.Continuation] = []
            if s.ring.count < capacity { s.ring.append(event) } else {
                s.ring[s.start] = event
                s.start = (s.start + 1) % capacity
            }
            for (id, sub) in s.subscribers {
                if let until = sub.until, event.timeNano > until {
                    ended.append(sub.continuation); s.subscribers[id] = nil; continue
                }
                guard sub.filter.matches(event) else { continue }
                if case .dropped = sub.continuation.yield(event) {
                    ended.append(sub.continuation); s.subscribers[id] = nil
                }
            }
            return ended
        }
        for c in ended { c.finish() }
    }

    /// The events kept in memory, oldest first.
    public func history() -> [EngineEvent] {
        state.withLock { s in Array(s.ring[s.start...] + s.ring[..<s.start]) }
    }

    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    /// Past events in [since, until] then live ones until `until` (nil: no end). Without
    /// `since` and with `until` only past events are given, as dockerd. The stream ends when
    /// `until` passes (seen at the next event or by the caller's timer calling `expire`), and
    /// its termination (a client gone) removes the subscription.
    public func subscribe(filter: EventFilter, since: Int64?, until: Int64?, now: Int64 = EventBus.nowNano()) -> AsyncStream<EngineEvent> {
        let (stream, cont) = AsyncStream.makeStream(of: EngineEvent.self, bufferingPolicy: .bufferingOldest(bufferLimit + capacity))
        let id: Int? = state.withLock { s in
            let past = Array(s.ring[s.start...] + s.ring[..<s.start])
            if since != nil || until != nil {
                for e in past where (since.map { e.timeNano >= $0 } ?? true) && (until.map { e.timeNano <= $0 } ?? true) && filter.matches(e) {
                    cont.yield(e)
                }
            }
            if let until, until <= now { return nil }
            let id = s.nextID; s.nextID += 1
            s.subscribers[id] = Subscriber(filter: filter, until: until, continuation: cont)
            return id
        }
        if let id { cont.onTermination = { [weak self] _ in self?.remove(id) } } else { cont.finish() }
        return stream
    }

    /// Ends subscriptions whose `until` has passed (called by the API's timer).
    public func expire(now: Int64 = EventBus.nowNano()) {
        let ended: [AsyncStream<EngineEvent>.Continuation] = state.withLock { s in
            var ended: [AsyncStream<EngineEvent>.Continuation] = []
            for (id, sub) in s.subscribers where sub.until.map({ $0 <= now }) == true {
                ended.append(sub.continuation); s.subscribers[id] = nil
            }
            return ended
        }
        for c in ended { c.finish() }
    }

    private func remove(_ id: Int) {
        state.withLock { s in _ = s.subscribers.removeValue(forKey: id) }
    }
}
