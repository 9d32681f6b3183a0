import CryoLinux
import Dispatch
import FoundationEssentials

/// Writes container records (`container.json`) off the engine actor, one at a time and in
/// the order the actor asked for them: one serial queue, so a later state never lands
/// before an earlier one, and two writes of one file never share its temporary name.
///
/// The actor changes its in-memory record first and then either awaits the write (`write`:
/// a create, the durable start of an operation) or leaves it queued (`enqueue`: every other
/// change). `Engine.blocking` drains the queue before any pool work runs, so a record
/// change still reaches the disk before the mount, spawn, CRIU call or fault point that
/// follows it — the order crash recovery relies on, as when the actor wrote in place.
final class RecordWriter: Sendable {
    private let queue = DispatchQueue(label: "cryo.engine.records")

    /// Writes `record` to `path` and returns once it is there (fsync'd when `durable`).
    func write(_ record: StoredContainer, to path: String, durable: Bool) async throws {
        try await withCheckedThrowingContinuation { (k: CheckedContinuation<Void, any Error>) in
            queue.async {
                do {
                    try Self.store(record, path, durable: durable)
                    k.resume()
                } catch {
                    k.resume(throwing: error)
                }
            }
        }
    }

    /// Queues the write of `record`; a failure is reported on stderr (the in-memory record
    /// stays the truth until the next write succeeds, as before).
    func enqueue(_ record: StoredContainer, to path: String) {
        queue.async {
            do { try Self.store(record, path, durable: false) } catch {
                EngineLog.logger.error("saving the record of container \(record.name): \(error)")
            }
        }
    }

    /// Returns once every write queued before it is done.
    func flush() async {
        await withCheckedContinuation { (k: CheckedContinuation<Void, Never>) in
            queue.async { k.resume() }
        }
    }

    /// Atomic (a cryod killed at any moment finds the old or the new record); fsync'd only
    /// when `durable`: the hot paths save several times, shutdown syncs.
    private static func store(_ record: StoredContainer, _ path: String, durable: Bool) throws {
        let data = try JSONEncoder().encode(record)
        // A container removed meanwhile keeps its directory gone: no write recreates it.
        guard FS.exists(FS.parent(path)) else { return }
        try FS.atomicWrite(path, Array(data), mode: 0o600, durable: durable)
    }
}
