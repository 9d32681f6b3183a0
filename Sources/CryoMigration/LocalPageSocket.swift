import CryoLinux
import Glibc
import NIOPosix
import Synchronization

/// CRIU's page stream to a target on this machine (`unix://`), with no relay: B listens on a
/// unix socket of its own for this one migration, A connects and hands the connected socket
/// to its CRIU dump as `ps.fd`, B hands the accepted one to `criu page-server --ps-socket`.
/// The pages then go from A's CRIU to B's with no copy through either cryod (a relay costs
/// two copies per side of every page, which dominated a 1 GiB move). Between hosts the
/// stream stays inside the TLS connection, relayed (`PageStream`).
///
/// The socket file is in B's exec-root (root only); A proves it is the migration's source by
/// sending the token B gave it on the authenticated control connection.
public enum LocalPageSocket {
    /// What B gives A in its `accept`: where to connect and what to say first.
    public struct Offer: Codable, Sendable, Equatable {
        public var path: String
        public var token: String
        public init(path: String, token: String) {
            self.path = path
            self.token = token
        }
    }

    /// B's listening socket for one migration.
    public final class Listener: Sendable {
        public let offer: Offer
        let socket: UnixListener
        var fd: Int32 { socket.fd }

        /// Listens at `path` (nil when the path is too long for a unix socket address: the
        /// migration then uses the relayed stream).
        public static func open(path: String) throws -> Listener? {
            guard path.utf8.count < 100 else { return nil }
            return Listener(socket: try UnixListener(path: path, backlog: 2), offer: Offer(path: path, token: randomHexID()))
        }

        init(socket: UnixListener, offer: Offer) {
            self.socket = socket
            self.offer = offer
        }

        /// The source's connection, once it has sent the token (waits on a pool thread, at most
        /// `seconds`). A connection with a wrong token is closed and waited past.
        public func accept(seconds: Double) async throws -> Int32 {
            let fd = self.fd, offer = self.offer
            return try await NIOThreadPool.singleton.runIfActive {
                let deadline = Monotonic.now().adding(seconds: seconds)
                while true {
                    let left = Double(deadline.millisecondsLeft)
                    guard left > 0, try Self.wait(fd, milliseconds: left) else {
                        throw MigrationWireError.unexpected("the page-stream connection did not arrive within \(Int(seconds)) s")
                    }
                    // (cryo's spawns close every descriptor they do not map: no accept4 needed)
                    let conn = Glibc.accept(fd, nil, nil)
                    if conn < 0 {
                        if errno == EINTR || errno == EAGAIN || errno == ECONNABORTED { continue }
                        throw CryoFailure(.internal, "accept on \(offer.path): \(String(cString: strerror(errno)))")
                    }
                    _ = fcntl(conn, F_SETFD, FD_CLOEXEC)
                    if Self.readToken(conn, count: offer.token.utf8.count, milliseconds: 5000) == offer.token {
                        PageStream.widen([conn])
                        return conn
                    }
                    Glibc.close(conn)
                }
            }
        }

        /// Stops listening and removes the socket file.
        public func close() {
            socket.close()
        }

        static func wait(_ fd: Int32, milliseconds: Double) throws -> Bool {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            while true {
                let n = poll(&p, 1, Int32(min(milliseconds, 60_000)))
                if n >= 0 { return n > 0 }
                if errno != EINTR { throw CryoFailure(.internal, "poll: \(String(cString: strerror(errno)))") }
            }
        }

        static func readToken(_ fd: Int32, count: Int, milliseconds: Double) -> String? {
            var got: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: count)
            let deadline = Monotonic.now().adding(seconds: milliseconds / 1000)
            while got.count < count {
                let left = Double(deadline.millisecondsLeft)
                guard left > 0, (try? wait(fd, milliseconds: left)) == true else { return nil }
                let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, count - got.count) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return nil }
                got += buf[..<n]
            }
            return String(decoding: got, as: UTF8.self)
        }
    }

    /// A's side: connects to B's socket and sends the token. The socket is then CRIU's.
    public static func connect(_ offer: Offer) throws -> Int32 {
        let fd = try sys(socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0), "socket(AF_UNIX)", offer.path)
        do {
            try UnixListener.withAddress(offer.path) { addr, len in try sys(Glibc.connect(fd, addr, len), "connect", offer.path) }
            PageStream.widen([fd])
            let token = Array(offer.token.utf8)
            var sent = 0
            while sent < token.count {
                let n = token.withUnsafeBytes { write(fd, $0.baseAddress! + sent, $0.count - sent) }
                if n < 0 && errno == EINTR { continue }
                try sys(Int32(n < 0 ? -1 : 0), "write (page-stream token)", offer.path)
                sent += n
            }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// A's duplicate of the socket CRIU writes the pages into: how far B has read, and a way to
    /// cut the stream when B falls silent. Closed once the dump is over; a late `shut` is then
    /// a no-op (never a call on a descriptor number reused meanwhile).
    public final class Watched: Sendable {
        private let fd: Mutex<Int32>
        private let poller: Mutex<Task<Void, Never>?> = Mutex(nil)

        /// Watches a duplicate of `socket`: `moved` is called each time B has read more (or
        /// has read everything written so far), polled every 50 ms.
        public init(duplicating socket: Int32, moved: @escaping @Sendable () -> Void) throws {
            let d = dup(socket)
            guard d >= 0 else { throw CryoFailure(.internal, "dup of the page socket: \(String(cString: strerror(errno)))") }
            fd = Mutex(d)
            let task = Task { [weak self] in
                var last = -1
                while !Task.isCancelled, let self {
                    let now = self.fd.withLock { $0 < 0 ? nil : LocalPageSocket.unread($0) }
                    guard let now else { return }
                    if now != last || now == 0 { moved() }
                    last = now
                    try? await Task.sleep(nanoseconds: 50_000_000)
                }
            }
            poller.withLock { $0 = task }
        }

        /// Cuts the stream both ways: CRIU's next write fails.
        public func shut() {
            fd.withLock { if $0 >= 0 { _ = shutdown($0, Int32(SHUT_RDWR)) } }
        }

        public func close() {
            poller.withLock { $0?.cancel(); $0 = nil }
            fd.withLock { if $0 >= 0 { Glibc.close($0); $0 = -1 } }
        }
    }

    /// Bytes written to a connected unix socket that its peer has not read yet (SIOCOUTQ).
    static func unread(_ fd: Int32) -> Int? {
        var n: Int32 = 0
        return ioctl(fd, UInt(TIOCOUTQ), &n) == 0 ? Int(n) : nil
    }
}
