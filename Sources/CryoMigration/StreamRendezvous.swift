import Synchronization

/// Hands a migration's second connection (CRIU's page stream), which arrives as its own API
/// request, to the session that expects it. Only sessions that registered are served, so a
/// stray connection is refused rather than kept.
public final class StreamRendezvous: Sendable {
    private enum Entry {
        case expected
        case waiting(CheckedContinuation<any ByteStream, Error>)
        case arrived(any ByteStream)
    }
    private let entries = Mutex<[String: Entry]>([:])

    public init() {}

    public func expect(_ session: String) {
        entries.withLock { $0[session] = .expected }
    }

    /// Gives `stream` to the session; false if no such session expects one (close it).
    public func deliver(_ session: String, _ stream: any ByteStream) -> Bool {
        let waiter = entries.withLock { e -> CheckedContinuation<any ByteStream, Error>?? in
            switch e[session] {
            case .expected?: e[session] = .arrived(stream); return .some(nil)
            case .waiting(let k)?: e[session] = nil; return .some(k)
            default: return .none
            }
        }
        guard let w = waiter else { return false }
        w?.resume(returning: stream)
        return true
    }

    /// The stream once it arrives; throws after `seconds`.
    public func wait(_ session: String, seconds: Double) async throws -> any ByteStream {
        let timeout = Task {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
            self.fail(session, MigrationWireError.unexpected("the page-stream connection did not arrive within \(Int(seconds)) s"))
        }
        defer { timeout.cancel() }
        return try await withCheckedThrowingContinuation { (k: CheckedContinuation<any ByteStream, Error>) in
            let now = entries.withLock { e -> (any ByteStream)? in
                if case .arrived(let s)? = e[session] { e[session] = nil; return s }
                e[session] = .waiting(k)
                return nil
            }
            if let now { k.resume(returning: now) }
        }
    }

    /// The session is over: a waiter fails, a stream that arrived unused is dropped.
    public func cancel(_ session: String) {
        fail(session, MigrationWireError.peerClosed)
    }

    func fail(_ session: String, _ error: Error) {
        let entry = entries.withLock { e -> Entry? in
            defer { e[session] = nil }
            return e[session]
        }
        switch entry {
        case .waiting(let k)?: k.resume(throwing: error)
        case .arrived(let s)?: Task { await s.close() }
        default: break
        }
    }
}
