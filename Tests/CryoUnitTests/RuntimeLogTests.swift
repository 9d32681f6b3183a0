import Foundation
import Testing
@testable import CryoRuntime

/// cryo-runtime's `--log` file keeps runc's lines (containerd and podman parse them).
@Suite struct RuntimeLogTests {
    @Test func runcTextAndJSONLines() throws {
        let t = "2026-12-04T10:00:00.000000000Z"
        #expect(RuncLogFileHandler.line(level: .error, message: "container \"x\" does not exist", time: t, json: false)
            == "time=\"\(t)\" level=error msg=\"container \\\"x\\\" does not exist\"\n")
        let json = RuncLogFileHandler.line(level: .warning, message: "hook\nfailed", time: t, json: true)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String])
        #expect(object == ["level": "warning", "msg": "hook\nfailed", "time": t])
        #expect(RuncLogFileHandler.levelName(.info) == "info" && RuncLogFileHandler.levelName(.debug) == "debug"
            && RuncLogFileHandler.levelName(.critical) == "fatal")
    }
}
