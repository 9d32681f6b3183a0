import CryoHTTP
import Glibc
import Synchronization

/// Fuzz target: arbitrary bytes as one client connection to cryod's HTTP server (CryoHTTP,
/// the same pipeline cryod serves the Docker API with). The handler behind it exercises every
/// way a handler uses an exchange — whole bodies under a limit, streamed bodies, streamed and
/// complete responses, hijacks — so request heads, chunked framing, pipelining, upgrades and
/// half-closes all meet real code. A crash or trap in the server is a crash of this process.
public enum HTTPFramingTarget {
    private static let server: HTTPServer = {
        let path = "/dev/shm/cryo-fuzz-http-\(getpid()).sock"
        let server = HTTPServer(socketPath: path, socketMode: 0o600) { ex in
            await serve(ex)
        }
        let started = Mutex<Bool?>(nil)
        Task {
            do { try await server.start(); started.withLock { $0 = true } } catch { started.withLock { $0 = false } }
        }
        while true {
            if let ok = started.withLock({ $0 }) {
                precondition(ok, "fuzz: the HTTP server did not start on \(path)")
                break
            }
            usleep(1000)
        }
        return server
    }()

    static func serve(_ ex: HTTPExchange) async {
        let path = ex.request.path
        do {
            if path.hasPrefix("/hijack") {
                let raw = try await ex.hijack(contentType: "application/vnd.docker.raw-stream")
                while let chunk = try await raw.read() { try await raw.write(chunk) }
                await raw.close()
            } else if path.hasPrefix("/stream") {
                var total = 0
                for try await chunk in ex.bodyChunks() { total += chunk.count }
                try await ex.startStream(status: 200, headers: [("Content-Type", "text/plain")])
                try await ex.write(Array("\(total)\n".utf8))
                try await ex.finish()
            } else {
                let body = try await ex.collectBody(limit: 64 * 1024)
                try await ex.respond(status: 200, headers: [("Content-Type", "text/plain")], body: Array("\(body.count)".utf8))
            }
        } catch {
            try? await ex.respond(status: 400, body: Array("\(error)".utf8))
        }
    }

    /// Sends `data` on a fresh connection, half-closes, and reads until the server closes
    /// (at most ~2 s: a server that waits for more of an incomplete request is not a bug).
    public static func run(_ data: [UInt8]) {
        let path = server.socketPath
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { return }
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var offset = 0
        while offset < data.count {
            let n = data[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            offset += n
        }
        shutdown(fd, Int32(SHUT_WR))
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
        }
    }
}
