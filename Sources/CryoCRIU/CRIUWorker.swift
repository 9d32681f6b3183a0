import CRIURPC
import CryoLinux
import Glibc
import SwiftProtobuf

/// One `criu swrk` process and the RPC conversation with it: one protobuf
/// message per SEQPACKET datagram, notifications ACKed as they arrive.
public final class CRIUWorker {
    public let pid: pid_t
    private let sock: PacketSocket
    /// The worker's pidfd: readable once it has exited. A restore's children inherit the
    /// socket's other end, so a worker that dies mid-restore never gives EOF on it: its exit
    /// is watched instead (otherwise the caller would wait forever).
    private let pidfd: Int32
    private var reaped = false
    /// `finish` closes the socket; `deinit` must not close that number again: by then it may
    /// be another thread's descriptor (an accepted API connection: NIO then trapped on
    /// EBADF, integration/engine/test_load.py).
    private var sockClosed = false

    /// Spawns `criu swrk 3`. `stdio` become the worker's fds 0-2 (on restore, the
    /// restored process's new stdio); `extraFDs` become 4, 5, ... (for inherit_fd).
    /// With `networkNamespace` (a path), CRIU starts inside that network namespace (it is
    /// spawned from a thread switched into it), so CRIU takes it for its own.
    /// With `sessionKeyring`, the worker (and so every task it restores) joins that named
    /// session keyring.
    public init(criuPath: String, stdio: [Int32] = [0, 1, 2], extraFDs: [Int32] = [], networkNamespace: String? = nil,
                sessionKeyring: String? = nil) throws {
        let (client, server) = try PacketSocket.pair()
        let path = try CRIUWorker.resolve(criuPath)
        KerndatCache.ensure(criuPath: path)
        do {
            let spawn = {
                try Spawn.spawn(path: path, args: [path, "swrk", "3"], env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
                                fds: stdio + [server.fd] + extraFDs, sessionKeyring: sessionKeyring)
            }
            let p = try networkNamespace.map { try NetworkNamespace.withThread(in: $0, spawn) } ?? spawn()
            pid = p.pid
            pidfd = p.pidfd
        } catch {
            client.close()
            server.close()
            throw CryoFailure(.internal, "cannot start criu (\(path))", cause: error)
        }
        // Our copy of the server end goes away so a crashing CRIU gives EOF, not a hang.
        server.close()
        sock = client
    }

    deinit {
        if !sockClosed { sock.close() }
        if !reaped { _ = try? Spawn.wait(pid: pid) }
        if pidfd >= 0 { close(pidfd) }
    }

    /// The path of CRIU binary `name` (a name without a slash is looked up in the sbin/bin dirs).
    public static func resolve(_ name: String) throws -> String {
        if name.contains("/") { return name }
        for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"] {
            if access("\(dir)/\(name)", X_OK) == 0 { return "\(dir)/\(name)" }
        }
        throw CryoFailure(.unavailable, "criu not found in PATH: install CRIU 4.2 or newer (scripts/setup.sh)")
    }

    public func send(_ req: criu_req) throws {
        let bytes: [UInt8]
        do { bytes = try req.serializedBytes() } catch { throw CryoFailure(.internal, "encoding CRIU request", cause: error) }
        try sock.send(bytes)
    }

    /// Next response; `fd` is set when CRIU attached one (orphan-pts-master).
    public func receive() throws -> (resp: criu_resp, fd: Int32) {
        try awaitMessage()
        let message: (bytes: [UInt8], fd: Int32)?
        do { message = try sock.receive() } catch { throw endError(wait: 200) ?? error }
        guard let (bytes, fd) = message else {
            throw endError(wait: 200) ?? CryoFailure(.internal, "criu (pid \(pid)) exited without answering")
        }
        do {
            return (try criu_resp(serializedBytes: bytes), fd)
        } catch {
            throw CryoFailure(.internal, "decoding CRIU response", cause: error)
        }
    }

    /// Waits until a message (or EOF) is there to read, or the worker has exited with
    /// nothing left to say: then it is reaped and its end reported.
    private func awaitMessage() throws {
        guard pidfd >= 0 else { return }
        while true {
            var fds = [pollfd(fd: sock.fd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)]
            let n = poll(&fds, 2, -1)
            if n < 0 {
                if errno == EINTR { continue }
                throw SyscallError("poll", "criu worker \(pid)")
            }
            // A last answer written before it exited is read first.
            if fds[0].revents != 0 { return }
            if fds[1].revents != 0, let e = endError(wait: 0) { throw e }
        }
    }

    /// If the worker has exited (within `wait` ms): it is reaped, and the error says how it ended.
    private func endError(wait ms: Int32) -> CryoFailure? {
        guard pidfd >= 0, !reaped else { return nil }
        var p = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, ms) == 1 else { return nil }
        reaped = true
        let code = (try? Spawn.wait(pid: pid)) ?? -1
        let how = code > 128 ? "was killed by signal \(code - 128)" : "exited with status \(code)"
        return CryoFailure(.internal, "criu (pid \(pid)) \(how) without answering")
    }

    /// Sends `req` and answers notifications with `onNotify` until the final
    /// response. A throwing handler NACKs the notification (CRIU then aborts).
    public func call(_ req: criu_req, onNotify: (String, Int32, Int32) throws -> Void = { _, _, _ in }) throws -> criu_resp {
        try send(req)
        var handlerError: Error?
        while true {
            let (resp, fd) = try receive()
            guard resp.type == .notify else {
                if let e = handlerError, !resp.success { throw e }
                return resp
            }
            var ack = criu_req()
            ack.type = .notify
            do {
                try onNotify(resp.notify.script, resp.notify.pid, fd)
                ack.notifySuccess = true
            } catch {
                handlerError = error
                ack.notifySuccess = false
            }
            if fd >= 0 { close(fd) }
            try send(ack)
        }
    }

    /// Closes our end and reaps the worker; returns its exit code.
    @discardableResult
    public func finish() -> Int32 {
        if !sockClosed { sock.close() }
        sockClosed = true
        if reaped { return -1 }
        reaped = true
        return (try? Spawn.wait(pid: pid)) ?? -1
    }
}
