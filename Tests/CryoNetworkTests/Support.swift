import CryoLinux
import Foundation
import Glibc
import CryoTestSupport
import Testing
@testable import CryoNetwork

/// Runs a command to completion and captures its output.
@discardableResult
func sh(_ args: [String], input: String = "", timeoutMs: Int32 = 20_000) throws -> CapturedRun {
    let path = args[0].hasPrefix("/") ? args[0]
        : ["/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"].map { $0 + args[0] }.first(where: FS.exists) ?? args[0]
    return try Spawn.run(path: path, args: args, env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"],
                         input: Array(input.utf8), timeoutMs: timeoutMs)
}

/// A command inside a network namespace file (util-linux nsenter; no `ip netns`).
@discardableResult
func inNetns(_ netns: String, _ args: [String], timeoutMs: Int32 = 20_000) throws -> CapturedRun {
    try sh(["nsenter", "--net=" + netns] + args, timeoutMs: timeoutMs)
}

func interfaceExists(_ name: String) -> Bool { FS.exists("/sys/class/net/" + name) }

/// Connects to 127.0.0.1:port (TCP) and reads until EOF or timeout; retries the connect while
/// the listener is coming up.
func tcpFetch(port: Int, host: String = "127.0.0.1", send: String = "", timeoutMs: Int = 5000) -> String? {
    let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
    while Date() < deadline {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = IPv4Address(host)!.value.bigEndian
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 { close(fd); usleep(100_000); continue }
        if !send.isEmpty { _ = send.withCString { Glibc.write(fd, $0, strlen($0)) } }
        shutdown(fd, Int32(SHUT_WR))
        let bytes = (try? FS.readAll(fd: fd, what: "tcp")) ?? []
        close(fd)
        if bytes.isEmpty { usleep(100_000); continue }
        return String(decoding: bytes, as: UTF8.self)
    }
    return nil
}

/// A socket bound (and for TCP listening) on 127.0.0.1 at a kernel-chosen port.
struct HeldPort {
    let fd: Int32
    let port: Int
    init(udp: Bool, address: String = "127.0.0.1") throws {
        let fd = socket(AF_INET, Int32((udp ? SOCK_DGRAM : SOCK_STREAM).rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = IPv4Address(address)!.value.bigEndian
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw SyscallError("bind", address) }
        if !udp { listen(fd, 4) }
        var got = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &got) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        port = Int(UInt16(bigEndian: got.sin_port))
    }
    func close() { Glibc.close(fd) }
}

/// A port that is free now (bound and released).
func freePort(udp: Bool = false) throws -> Int {
    let h = try HeldPort(udp: udp)
    defer { h.close() }
    return h.port
}

func assertThrowsNetworkError(_ body: @autoclosure () throws -> Any, sourceLocation: SourceLocation = #_sourceLocation,
                              _ check: (NetworkError) -> Bool) {
    do {
        _ = try body()
        Issue.record("expected an error", sourceLocation: sourceLocation)
    } catch let e as NetworkError {
        #expect(check(e), "unexpected error: \(e)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected error type: \(error)", sourceLocation: sourceLocation)
    }
}
