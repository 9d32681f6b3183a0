import Foundation
import Glibc
import Testing
@testable import CryoLinux

/// `TraceLog` is marked from many threads at once (NIO's, the blocking pool, the monitor's
/// netlink-unlock thread): every line must come out whole, and each line's "+N ms since
/// the previous mark" must belong to the line before it, so the "since start" column
/// never goes down from one line to the next.
@Suite struct TraceTests {
    @Test func marksFromManyTasks() async throws {
        let path = "/tmp/cryo-trace-test-\(UUID().uuidString)"
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        try #require(fd >= 0)
        defer { unlink(path) }
        let trace = TraceLog(fd: fd)
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<32 {
                group.addTask { for i in 0..<200 { trace.mark("task \(t) step \(i)") } }
            }
        }
        close(fd)
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(lines.count == 32 * 200)
        var previousSinceStart = -1.0
        var seen = Set<String>()
        for line in lines {
            // trace[PID] @NOW +DELTA ms (SINCE ms) task T step I
            let parts = line.split(separator: " ")
            try #require(parts.count == 10 && parts[0].hasPrefix("trace[") && parts[1].hasPrefix("@") && parts[2].hasPrefix("+"), "\(line)")
            let delta = try #require(Double(parts[2].dropFirst()))
            let sinceStart = try #require(Double(parts[4].dropFirst()))
            #expect(delta >= 0, "\(line)")
            #expect(sinceStart >= previousSinceStart, "lines out of order: \(line)")
            previousSinceStart = sinceStart
            seen.insert(parts[6...].joined(separator: " "))
        }
        #expect(seen.count == 32 * 200, "every mark once")
    }
}
