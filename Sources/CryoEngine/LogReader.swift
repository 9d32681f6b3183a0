import CryoMonitor
import FoundationEssentials
import Glibc

/// Reads a container's json-file log for `docker logs`.
public struct LogQuery: Sendable {
    public var stdout = true
    public var stderr = true
    public var follow = false
    public var tail: Int?          // nil: all
    public var since: Double?      // unix seconds
    public var until: Double?
    public var timestamps = false
    public init() {}
}

public struct LogEntry: Sendable {
    public var stream: StreamKind
    public var text: [UInt8]
    public var time: String
}

/// Reads a container's log through one open descriptor, so a follower keeps reading
/// what was written even after the container (and its log file) is removed — docker-py
/// opens `logs?follow=1`, waits for the exit, removes the container, then reads.
public final class LogReader {
    let path: String
    private var fd: Int32 = -1
    public init(path: String) {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
    }
    deinit { if fd >= 0 { close(fd) } }

    /// Entries from byte `offset` on, and the offset after the last whole line.
    public func read(from offset: Int, _ q: LogQuery) -> (entries: [LogEntry], next: Int) {
        if fd < 0 { fd = open(path, O_RDONLY | O_CLOEXEC) }   // the monitor creates it at start
        guard fd >= 0 else { return ([], offset) }
        var data: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        var at = off_t(offset)
        while true {
            let n = pread(fd, &buf, buf.count, at)
            if n <= 0 { break }
            data += buf[0..<n]
            at += off_t(n)
        }
        var entries: [LogEntry] = []
        var consumed = 0
        var start = 0
        for (i, b) in data.enumerated() where b == 0x0a {
            defer { start = i + 1; consumed = i + 1 }
            guard let line = JSONLogLine.decode(data[start..<i]) else { continue }
            let kind: StreamKind = line.stream == "stderr" ? .stderr : .stdout
            if kind == .stdout && !q.stdout || kind == .stderr && !q.stderr { continue }
            if let s = q.since, let t = Self.unixTime(line.time), t < s { continue }
            if let u = q.until, let t = Self.unixTime(line.time), t > u { continue }
            entries.append(LogEntry(stream: kind, text: Array(line.log.utf8), time: line.time))
        }
        return (entries, offset + consumed)
    }

    /// Seconds since the epoch of an RFC 3339 UTC time as the monitor writes it.
    public static func unixTime(_ s: String) -> Double? {
        let u = Array(s.utf8)
        guard u.count >= 20 else { return nil }
        func num(_ a: Int, _ b: Int) -> Int? { Int(String(decoding: u[a..<b], as: UTF8.self)) }
        guard let y = num(0, 4), let mo = num(5, 7), let d = num(8, 10), let h = num(11, 13), let mi = num(14, 16), let se = num(17, 19) else { return nil }
        var frac = 0.0
        if u.count > 20, u[19] == 0x2e {
            let digits = u[20...].prefix { $0 >= 0x30 && $0 <= 0x39 }
            frac = Double("0." + String(decoding: digits, as: UTF8.self)) ?? 0
        }
        // Days from civil (Howard Hinnant's algorithm).
        let yy = mo <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146097 + doe - 719468
        return Double(days * 86400 + h * 3600 + mi * 60 + se) + frac
    }
}
