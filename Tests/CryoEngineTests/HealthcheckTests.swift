@testable import CryoEngine
import CryoImages
import CryoLinux
import FoundationEssentials
import Testing

/// HEALTHCHECK as dockerd runs it: the state machine (status, streak, start period, log),
/// the request's checks, the merge with the image's, the probe's command and defaults, the
/// output's limit and the list filter.
@Suite struct HealthcheckTests {
    static func result(_ code: Int, _ output: String = "") -> HealthcheckResult {
        HealthcheckResult(Start: "2026-01-01T00:00:00.000000000Z", End: "2026-01-01T00:00:00.100000000Z", ExitCode: code, Output: output)
    }

    @Test func startingBecomesHealthyOnFirstSuccess() {
        var h = ContainerHealth()
        #expect(h.Status == "starting" && h.summary == "health: starting")
        #expect(h.record(Self.result(0), inStartPeriod: false, retries: 3) == "healthy")
        #expect(h.FailingStreak == 0 && h.summary == "healthy")
        // No change, no event.
        #expect(h.record(Self.result(0), inStartPeriod: false, retries: 3) == nil)
    }

    @Test func unhealthyAfterRetriesConsecutiveFailures() {
        var h = ContainerHealth()
        _ = h.record(Self.result(0), inStartPeriod: false, retries: 3)
        #expect(h.record(Self.result(1), inStartPeriod: false, retries: 3) == nil)
        #expect(h.record(Self.result(2), inStartPeriod: false, retries: 3) == nil)
        #expect(h.Status == "healthy" && h.FailingStreak == 2)
        #expect(h.record(Self.result(-1), inStartPeriod: false, retries: 3) == "unhealthy")
        #expect(h.FailingStreak == 3)
        // One success ends the streak and the unhealthy status.
        #expect(h.record(Self.result(0), inStartPeriod: false, retries: 3) == "healthy")
        #expect(h.FailingStreak == 0)
    }

    @Test func failuresInTheStartPeriodDoNotCountWhileStarting() {
        var h = ContainerHealth()
        for _ in 0..<10 { #expect(h.record(Self.result(1), inStartPeriod: true, retries: 1) == nil) }
        #expect(h.Status == "starting" && h.FailingStreak == 0)
        // Past the start period they do.
        #expect(h.record(Self.result(1), inStartPeriod: false, retries: 1) == "unhealthy")
    }

    @Test func failuresInTheStartPeriodCountOnceHealthy() {
        // The grace is for a container still starting; one that was healthy is judged at once.
        var h = ContainerHealth()
        _ = h.record(Self.result(0), inStartPeriod: true, retries: 2)
        _ = h.record(Self.result(1), inStartPeriod: true, retries: 2)
        #expect(h.record(Self.result(1), inStartPeriod: true, retries: 2) == "unhealthy")
    }

    @Test func logKeepsTheLastFive() {
        var h = ContainerHealth()
        for i in 0..<8 { _ = h.record(Self.result(i % 2, "r\(i)"), inStartPeriod: false, retries: 3) }
        #expect(h.Log.map(\.Output) == ["r3", "r4", "r5", "r6", "r7"])
    }

    @Test func outputIsCutAt4KiB() {
        let o = HealthProbeOutput()
        o.append(Array(repeating: UInt8(ascii: "a"), count: 3000))
        #expect(o.text.utf8.count == 3000)
        o.append(Array(repeating: UInt8(ascii: "b"), count: 3000))
        o.append([UInt8(ascii: "c")])
        let t = o.text
        #expect(t.hasSuffix("..."))
        #expect(t.utf8.count == HealthProbeOutput.limit + 3)
        #expect(!t.contains("c"))
    }

    @Test func requestFieldsOverrideTheImagesOneByOne() {
        let image = HealthcheckConfig(Test: ["CMD", "check"], Interval: 10_000_000_000, Timeout: 2_000_000_000, StartPeriod: 0,
                                      StartInterval: 0, Retries: 5)
        // What the docker CLI sends for `--health-interval 1s` alone.
        let req = HealthcheckConfig(Test: nil, Interval: 1_000_000_000, Timeout: 0, StartPeriod: 0, StartInterval: 0, Retries: 0)
        let m = HealthcheckSettings.merge(container: req, image: image)
        #expect(m == HealthcheckConfig(Test: ["CMD", "check"], Interval: 1_000_000_000, Timeout: 2_000_000_000, StartPeriod: 0,
                                       StartInterval: 0, Retries: 5))
        #expect(HealthcheckSettings.merge(container: nil, image: image) == image)
        #expect(HealthcheckSettings.merge(container: req, image: nil) == req)
        // --no-healthcheck wins over the image's test.
        let none = HealthcheckSettings.merge(container: HealthcheckConfig(Test: ["NONE"]), image: image)
        #expect(none?.Test == ["NONE"])
        #expect(HealthcheckSettings.plan(none) == nil)
    }

    @Test func planFillsDockerdsDefaults() throws {
        let p = try #require(HealthcheckSettings.plan(HealthcheckConfig(Test: ["CMD-SHELL", "curl -f localhost || exit 1"])))
        #expect(p.command == ["/bin/sh", "-c", "curl -f localhost || exit 1"])
        #expect(p.interval == 30_000_000_000 && p.timeout == 30_000_000_000)
        #expect(p.startPeriod == 0 && p.startInterval == 5_000_000_000 && p.retries == 3)
        let q = try #require(HealthcheckSettings.plan(HealthcheckConfig(Test: ["CMD", "/bin/check", "-v"], Interval: 1_000_000_000,
                                                                         Timeout: 2_000_000, StartPeriod: 3, StartInterval: 4, Retries: 7)))
        #expect(q.command == ["/bin/check", "-v"])
        #expect(q.interval == 1_000_000_000 && q.timeout == 2_000_000 && q.startPeriod == 3 && q.startInterval == 4 && q.retries == 7)
        #expect(HealthcheckSettings.plan(nil) == nil)
        #expect(HealthcheckSettings.plan(HealthcheckConfig(Test: [])) == nil)
        #expect(HealthcheckSettings.plan(HealthcheckConfig(Test: ["CMD"])) == nil)
    }

    @Test func validationRefusesWhatDockerdRefuses() {
        func message(_ h: HealthcheckConfig) -> String? {
            do { try HealthcheckSettings.validate(h); return nil } catch {
                #expect(CryoFailure.Code.of(error) == .invalidArgument)
                return "\(error)"
            }
        }
        #expect(message(HealthcheckConfig(Test: ["CMD", "true"], Interval: 999_999))?.contains("Interval in Healthcheck cannot be less than 1ms") == true)
        #expect(message(HealthcheckConfig(Timeout: 1))?.contains("Timeout in Healthcheck cannot be less than 1ms") == true)
        #expect(message(HealthcheckConfig(StartPeriod: 5))?.contains("StartPeriod in Healthcheck") == true)
        #expect(message(HealthcheckConfig(StartInterval: 5))?.contains("StartInterval in Healthcheck") == true)
        #expect(message(HealthcheckConfig(Retries: -1))?.contains("Retries in Healthcheck cannot be negative") == true)
        #expect(message(HealthcheckConfig(Test: ["HTTP", "x"]))?.contains("unknown Healthcheck Test type") == true)
        #expect(message(HealthcheckConfig(Test: ["CMD-SHELL"]))?.contains("no command") == true)
        #expect(message(HealthcheckConfig(Test: ["CMD", "a\u{0}b"]))?.contains("NUL") == true)
        // 0 means "not set"; exactly 1ms is allowed; NONE and the empty test are fine.
        #expect(message(HealthcheckConfig(Test: ["CMD", "true"], Interval: 0, Timeout: 1_000_000, StartPeriod: 0, StartInterval: 0, Retries: 0)) == nil)
        #expect(message(HealthcheckConfig(Test: ["NONE"])) == nil)
        #expect(message(HealthcheckConfig(Test: [], Interval: 2_000_000)) == nil)
    }

    @Test func timeoutIsNamedAsGoPrintsIt() {
        #expect(GoDuration.format(30_000_000_000) == "30s")
        #expect(GoDuration.format(1_500_000_000) == "1.5s")
        #expect(GoDuration.format(500_000_000) == "500ms")
        #expect(GoDuration.format(90_000_000_000) == "1m30s")
        #expect(GoDuration.format(3_600_000_000_000) == "1h0m0s")
        #expect(GoDuration.format(1_000_000) == "1ms")
    }

    @Test func listFilterTakesDockersValues() throws {
        #expect(try ContainerHealthFilter.parse(nil) == nil)
        #expect(try ContainerHealthFilter.parse("{\"label\":[\"a\"]}") == nil)
        let f = try #require(try ContainerHealthFilter.parse("{\"health\":[\"healthy\",\"none\"]}"))
        #expect(f.wanted == ["healthy", "none"])
        let g = try #require(try ContainerHealthFilter.parse("{\"health\":{\"unhealthy\":true}}"))
        #expect(g.wanted == ["unhealthy"])
        #expect(throws: (any Error).self) { try ContainerHealthFilter.parse("{\"health\":[\"sick\"]}") }
        var c = StoredContainer(id: "x", name: "x", created: "", imageRef: "busybox", imageID: "", config: ContainerConfig(),
                                hostConfig: HostConfig(), path: "sh", args: [])
        #expect(f.matches(c) && !g.matches(c))
        c.health = ContainerHealth(Status: "unhealthy")
        #expect(!f.matches(c) && g.matches(c))
    }
}
