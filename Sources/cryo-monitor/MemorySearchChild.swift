import CryoCheckpointInspect
import FoundationEssentials
import Glibc

/// `cryo-monitor memory-search`: one memory search for cryod, in a process it can kill when
/// the search's time budget runs out (see MemorySearchRequest). Exit 0 with the matches as
/// JSON on stdout; exit 2 with the reason on stderr.
enum MemorySearchChild {
    static func main() -> Never {
        var input: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            input += buf[0..<n]
        }
        do {
            let request = try JSONDecoder().decode(MemorySearchRequest.self, from: Data(input))
            let out = try JSONEncoder().encode(try request.run())
            out.withUnsafeBytes { p in
                var off = 0
                while off < p.count {
                    let n = write(1, p.baseAddress! + off, p.count - off)
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { exit(3) }
                    off += n
                }
            }
            exit(0)
        } catch {
            let message = "\(error)\n"
            _ = message.withCString { write(2, $0, strlen($0)) }
            exit(2)
        }
    }
}
