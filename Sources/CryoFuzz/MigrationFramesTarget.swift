import CryoMigration

/// Fuzz target: arbitrary bytes as what a peer cryod sends on a migration's control connection
/// (`FrameDecoder`, then the JSON of message and end frames). The first byte sets how the rest
/// is cut into reads (1–16 bytes, or all at once), as a network would cut it; a frame must
/// decode the same whatever the cut.
public enum MigrationFramesTarget {
    public static func run(_ data: [UInt8]) {
        guard let first = data.first else { return }
        let body = data.dropFirst()
        let step = first >= 0xf0 ? max(body.count, 1) : Int(first % 16) + 1
        var decoder = FrameDecoder()
        var i = body.startIndex
        while i < body.endIndex {
            let j = min(body.endIndex, i + step)
            decoder.append(body[i..<j])
            i = j
            while true {
                let frame: (FrameKind, [UInt8])?
                do { frame = try decoder.next() } catch { return }
                guard let (kind, payload) = frame else { break }
                switch kind {
                case .message: _ = try? FrameDecoder.message(payload)
                case .end: _ = try? FrameDecoder.end(payload)
                case .data: break
                }
            }
        }
    }
}
