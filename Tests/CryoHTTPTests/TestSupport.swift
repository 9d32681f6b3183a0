import CryoHTTP
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

struct ClientError: Error, CustomStringConvertible {
    let description: String
}

/// A tiny blocking unix-socket client; every read times out after 10 s so a broken server fails
/// the test instead of hanging it.
final class BlockingClient {
    let fd: Int32
    private(set) var buffer: [UInt8] = []

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ClientError(description: "socket: \(errno)") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0 else {
            let e = errno
            Glibc.close(fd)
            throw ClientError(description: "connect: \(e)")
        }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { Glibc.close(fd) }

    func send(_ s: String) throws { try send(Array(s.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ClientError(description: "send: \(errno)")
            }
            offset += n
        }
    }

    /// Reads more bytes into the buffer; false at EOF.
    @discardableResult
    func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ClientError(description: "recv: errno \(errno) (timeout?) buffered: \(String(decoding: buffer, as: UTF8.self))")
            }
            if n == 0 { return false }
            buffer.append(contentsOf: chunk[..<n])
            return true
        }
    }

    func take(_ n: Int) -> [UInt8] {
        let out = Array(buffer[..<n])
        buffer.removeFirst(n)
        return out
    }

    func readExactly(_ n: Int) throws -> [UInt8] {
        while buffer.count < n {
            guard try fill() else { throw ClientError(description: "EOF after \(buffer.count) of \(n) bytes") }
        }
        return take(n)
    }

    /// Everything up to and including `marker`.
    func readThrough(_ marker: String) throws -> String {
        let m = Array(marker.utf8)
        while true {
            if let r = find(m) { return String(decoding: take(r + m.count), as: UTF8.self) }
            guard try fill() else {
                throw ClientError(description: "EOF before \(marker.debugDescription); got \(String(decoding: buffer, as: UTF8.self).debugDescription)")
            }
        }
    }

    private func find(_ m: [UInt8]) -> Int? {
        guard buffer.count >= m.count else { return nil }
        for i in 0...(buffer.count - m.count) where buffer[i] == m[0] {
            if Array(buffer[i..<(i + m.count)]) == m { return i }
        }
        return nil
    }

    func readToEOF() throws -> [UInt8] {
        while try fill() {}
        return take(buffer.count)
    }

    /// Reads one response: head (as text) and body (Content-Length or chunked, de-chunked).
    func readResponse(bodyless: Bool = false) throws -> (head: String, body: [UInt8]) {
        let head = try readThrough("\r\n\r\n")
        if bodyless { return (head, []) }
        let lines = head.split(separator: "\r\n").map { $0.lowercased() }
        if let cl = lines.first(where: { $0.hasPrefix("content-length:") }) {
            let n = Int(cl.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))!
            return (head, try readExactly(n))
        }
        if lines.contains("transfer-encoding: chunked") {
            var body: [UInt8] = []
            while true {
                let sizeLine = try readThrough("\r\n")
                let size = Int(sizeLine.dropLast(2), radix: 16)!
                if size == 0 {
                    _ = try readThrough("\r\n")
                    return (head, body)
                }
                body += try readExactly(size)
                _ = try readExactly(2)
            }
        }
        return (head, try readToEOF())
    }

    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }
}

/// Runs blocking client code on its own thread, not on the (small) cooperative pool.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, Error>) in
        let thread = Thread { c.resume(with: Result { try body() }) }
        thread.start()
    }
}

/// Something handlers wait for and tests open (from any thread).
final class Gate: Sendable {
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation
    init() { (stream, continuation) = AsyncStream.makeStream(of: Void.self) }
    func open() { continuation.finish() }
    func wait() async { for await _ in stream {} }
}

/// Thread-safe log of what handlers saw.
final class Recorder: Sendable {
    private let items = Mutex<[String]>([])
    func add(_ s: String) { items.withLock { $0.append(s) } }
    var all: [String] { items.withLock { $0 } }
    /// The same, for a test's blocking client thread.
    func waitOnThread(count: Int) {
        for _ in 0..<1000 where all.count < count { usleep(10_000) }
    }

    /// Polls until `count` items were recorded (or 10 s passed).
    func wait(count: Int) async -> [String] {
        for _ in 0..<1000 {
            let now = all
            if now.count >= count { return now }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return all
    }
}

func tempSocketPath() -> String {
    "/tmp/cryo-http-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
}

/// Starts a server with the test defaults and returns it with its socket path.
func startServer(
    defaultHeaders: [(String, String)] = [("Api-Version", "1.50"), ("Server", "cryod")],
    _ handler: @escaping @Sendable (HTTPExchange) async -> Void
) async throws -> (HTTPServer, String) {
    let path = tempSocketPath()
    let server = HTTPServer(socketPath: path, defaultHeaders: defaultHeaders, handler: handler)
    try await server.start()
    return (server, path)
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
