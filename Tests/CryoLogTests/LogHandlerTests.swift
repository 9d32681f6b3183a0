import CryoLog
import Foundation
import Glibc
import Logging
import Testing

/// What a handler wrote, through a file (a pipe could fill while every writer task waits).
private final class Capture: Sendable {
    let path: String
    let output: LineOutput
    private let fd: Int32

    init() {
        path = "/tmp/cryo-log-test-\(UUID().uuidString)"
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        precondition(fd >= 0)
        output = LineOutput(fd: fd)
    }

    func logger(_ label: String, _ options: LogOptions) -> Logger {
        let out = output
        return Logger(label: label, factory: { LineLogHandler(label: $0, options: options, output: out) })
    }

    /// Every line written; removes the file.
    func lines() -> [String] {
        close(fd)
        defer { unlink(path) }
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }
}

@Suite struct LogHandlerTests {
    @Test func textLine() {
        let line = LogLine.render(time: "2026-12-04T10:00:00.000000000Z", level: .warning, label: "cryod",
                                  message: "container abc: gone", metadata: ["b": "two words", "a": "1"], format: .text)
        #expect(line == "2026-12-04T10:00:00.000000000Z warning cryod: container abc: gone a=1 b=\"two words\"\n")
    }

    @Test func jsonLine() throws {
        let line = LogLine.render(time: "2026-12-04T10:00:00.000000000Z", level: .error, label: "cryo-monitor",
                                  message: "say \"hi\"\nand go", metadata: ["container": "abc", "msg": "not mine", "ids": ["1", "2"]],
                                  format: .json)
        #expect(line.hasSuffix("}\n") && !line.dropLast().contains("\n"), "one line: \(line)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["time"] as? String == "2026-12-04T10:00:00.000000000Z")
        #expect(object["level"] as? String == "error")
        #expect(object["label"] as? String == "cryo-monitor")
        #expect(object["msg"] as? String == "say \"hi\"\nand go", "metadata never replaces the message")
        #expect(object["container"] as? String == "abc")
        #expect(object["ids"] as? [String] == ["1", "2"])
    }

    @Test func levelFilters() throws {
        let capture = Capture()
        var log = capture.logger("cryod", LogOptions(level: .warning, format: .json))
        log.debug("d")
        log.info("i")
        log.warning("w")
        log[metadataKey: "container"] = "c1"
        log.error("e", metadata: ["step": "restore"])
        let lines = capture.lines()
        #expect(lines.count == 2, "\(lines)")
        let objects = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(objects.map { $0["msg"] as? String } == ["w", "e"])
        #expect(objects.map { $0["level"] as? String } == ["warning", "error"])
        #expect(objects[1]["container"] as? String == "c1" && objects[1]["step"] as? String == "restore")
    }

    @Test func debugLevelWritesEverything() {
        let capture = Capture()
        let log = capture.logger("cryo-runtime", LogOptions(level: .debug, format: .text))
        log.debug("d")
        log.info("i")
        let lines = capture.lines()
        #expect(lines.count == 2)
        #expect(lines.allSatisfy { $0.contains(" cryo-runtime: ") })
        #expect(lines[0].hasSuffix(" debug cryo-runtime: d"))
    }

    @Test func concurrentLinesStayWhole() async {
        let capture = Capture()
        let log = capture.logger("cryod", LogOptions(level: .info, format: .text))
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<16 {
                group.addTask { for i in 0..<100 { log.info("task \(t) line \(i) \(String(repeating: "x", count: 600))") } }
            }
        }
        let lines = capture.lines()
        #expect(lines.count == 1600)
        #expect(lines.allSatisfy { $0.hasSuffix(String(repeating: "x", count: 600)) && $0.contains(" info cryod: task ") })
    }

    @Test func options() throws {
        #expect(try LogOptions.parseLevel("debug") == .debug)
        #expect(try LogOptions.parseLevel("WARN") == .warning)
        #expect(try LogOptions.parseLevel("warning") == .warning)
        #expect(try LogOptions.parseLevel("fatal") == .critical)
        #expect(throws: LogOptionError.self) { try LogOptions.parseLevel("loud") }
        #expect(try LogOptions.parseFormat("json") == .json)
        #expect(throws: LogOptionError.self) { try LogOptions.parseFormat("xml") }
        #expect(LogOptions(level: .error, format: .json).childEnvironment == ["CRYO_LOG_LEVEL=error", "CRYO_LOG_FORMAT=json"])
    }
}

@Suite struct LineOutputLimitTests {
    /// A monitor's log file: a line that would pass the limit empties the file first.
    @Test func aCappedFileNeverPassesItsLimit() throws {
        let path = "/tmp/cryo-log-cap-\(UUID().uuidString)"
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o600)
        try #require(fd >= 0)
        defer { close(fd); unlink(path) }
        let out = LineOutput(fd: fd, sizeLimit: 100)
        for i in 0..<30 { out.write("line \(i) of the capped log\n") }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.utf8.count <= 100)
        #expect(text.hasSuffix("line 29 of the capped log\n"), "the newest line is kept: \(text)")
        #expect(text.hasPrefix("line "), "whole lines only: \(text)")
    }
}
