import CryoLinux
import FoundationEssentials

/// Opens cryo's peer protocol on a fresh connection to another cryod: an HTTP/1.1 request
/// with `Upgrade`, answered `101` by the peer's API server, after which the connection
/// carries raw bytes (as `docker attach` does).
public enum PeerUpgrade {
    /// Sends `POST path` with Upgrade and waits for the answer's head. Returns the bytes
    /// that followed the head. A non-101 answer throws with the peer's message.
    public static func open(_ stream: any ByteStream, path: String, peer: String) async throws -> [UInt8] {
        let request = "POST \(path) HTTP/1.1\r\nHost: cryod\r\nUser-Agent: cryod-migrate\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
        try await stream.write(Array(request.utf8))
        var head: [UInt8] = []
        let end: [UInt8] = [13, 10, 13, 10]
        while true {
            if let r = find(end, in: head) {
                let rest = Array(head[(r + 4)...])
                let text = String(decoding: head[..<r], as: UTF8.self)
                let status = text.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? 0
                if status == 101 { return rest }
                // An error answer: its body (Docker's {"message": ...}) says why.
                var body = rest
                while body.count < 65536, let more = try await stream.read() { body += more }
                let message = (try? JSONDecoder().decode([String: String].self, from: Data(body)))?["message"]
                    ?? String(decoding: body.prefix(300), as: UTF8.self)
                throw PeerError.refused(peer: peer, status: status, message: message)
            }
            guard head.count < 65536, let more = try await stream.read() else {
                throw PeerError.refused(peer: peer, status: 0, message: "the connection closed before an answer")
            }
            head += more
        }
    }

    static func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i] == needle[0] && Array(hay[i..<i + needle.count]) == needle {
            return i
        }
        return nil
    }
}

/// The peer did not open the migration channel: its HTTP status (0: it closed the
/// connection before answering) says whether it is away, cannot do it, or refuses.
public enum PeerError: CodedError, CustomStringConvertible {
    case refused(peer: String, status: Int, message: String)
    public var code: CryoFailure.Code {
        switch self {
        case .refused(_, let status, _):
            switch status {
            case 0, 502, 503: return .unavailable
            case 501: return .unsupported
            case 400..<500: return .conflict
            default: return .internal
            }
        }
    }
    public var description: String {
        switch self {
        case .refused(let peer, let status, let message):
            return status == 0 ? "cryod at \(peer): \(message)" : "cryod at \(peer) answered \(status): \(message)"
        }
    }
}
