import Glibc

/// The local terminal: raw mode for `-t`, and its size for resize requests.
public enum Terminal {
    public static func isTTY(_ fd: Int32) -> Bool { isatty(fd) == 1 }

    /// [height, width] of the terminal on `fd`, or nil.
    public static func size(_ fd: Int32) -> [Int]? {
        var ws = winsize()
        guard ioctl(fd, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_row > 0, ws.ws_col > 0 else { return nil }
        return [Int(ws.ws_row), Int(ws.ws_col)]
    }

    /// Puts `fd` into raw mode; returns the previous settings to restore.
    public static func makeRaw(_ fd: Int32) -> termios? {
        var old = termios()
        guard tcgetattr(fd, &old) == 0 else { return nil }
        var raw = old
        cfmakeraw(&raw)
        guard tcsetattr(fd, TCSANOW, &raw) == 0 else { return nil }
        return old
    }

    public static func restore(_ fd: Int32, _ state: termios) {
        var s = state
        _ = tcsetattr(fd, TCSANOW, &s)
    }
}

/// Writes all of `bytes` to `fd` (stdout/stderr); false when the reader went away.
@discardableResult
public func writeFully(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    var off = 0
    while off < bytes.count {
        let n = bytes.withUnsafeBytes { p in write(fd, p.baseAddress! + off, p.count - off) }
        if n < 0 {
            if errno == EINTR { continue }
            return false
        }
        off += n
    }
    return true
}

/// Copies a container's output stream to the local stdout/stderr: demultiplexed for a
/// non-tty stream (stdout frames to fd 1, stderr frames to fd 2), raw for a tty.
public struct OutputSink: Sendable {
    public var tty: Bool
    public var stdout: Int32 = 1
    public var stderr: Int32 = 2
    var demux = FrameDemuxer()

    public init(tty: Bool, stdout: Int32 = 1, stderr: Int32 = 2) {
        self.tty = tty
        self.stdout = stdout
        self.stderr = stderr
    }

    /// Writes what `bytes` completes; a system-error frame (type 3) throws its text.
    public mutating func feed(_ bytes: [UInt8]) throws {
        if tty {
            emit(stdout, bytes)
            return
        }
        demux.feed(bytes)
        while let (kind, payload) = try demux.next() {
            switch kind {
            case .stdout, .stdin: emit(stdout, payload)
            case .stderr: emit(stderr, payload)
            case .systemError: throw ClientError.io(String(decoding: payload, as: UTF8.self))
            }
        }
    }

    /// A reader that went away (`cryo logs -f | head -1`) ends the process as SIGPIPE
    /// would (as the Go CLI does), instead of reading the stream forever.
    func emit(_ fd: Int32, _ bytes: [UInt8]) {
        if !writeFully(fd, bytes) && errno == EPIPE {
            signal(SIGPIPE, SIG_DFL)
            raise(SIGPIPE)
        }
    }

    /// Copies the whole stream until EOF.
    public mutating func pump(_ read: () throws -> [UInt8]?) throws {
        while let b = try read() { try feed(b) }
    }
}
