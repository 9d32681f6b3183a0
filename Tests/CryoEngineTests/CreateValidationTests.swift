@testable import CryoAPI
@testable import CryoEngine
import CryoImages
import CryoOCI
import Testing

/// Hostile numbers and sizes in a create request: each is a 400 with Docker's wording,
/// never a trap (several of these crashed cryod before they were checked).
@Suite struct CreateValidationTests {
    func message(_ body: () throws -> Void) -> String? {
        do { try body() } catch let e as EngineError {
            #expect(e.code == .invalidArgument, "\(e.message)")
            return e.message
        } catch { Issue.record("unexpected \(error)") }
        return nil
    }

    func host(_ edit: (inout HostConfig) -> Void) -> HostConfig {
        var h = HostConfig()
        edit(&h)
        return h
    }

    func build(_ h: HostConfig, config: ContainerConfig? = nil, cpus: Int = 2) throws -> Spec {
        var c = config ?? ContainerConfig()
        if c.Cmd == nil { c.Cmd = ["sh"] }
        var input = SpecBuilder.Input(id: String(repeating: "b", count: 64), config: c, hostConfig: h, image: nil)
        input.onlineCPUs = cpus
        // What Engine.create does: the request's checks, then the spec.
        _ = try CreateValidation.validate(config: c, hostConfig: h)
        return try SpecBuilder.build(input)
    }

    @Test func cpuCountsThatOverflowedAreRefused() throws {
        // docker run --cpus 100000000: NanoCpus 1e17 (× 100_000 overflowed Int64).
        let m = message { _ = try build(host { $0.NanoCpus = 100_000_000 * 1_000_000_000 }) }
        #expect(m == "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available")
        #expect((message { _ = try build(host { $0.NanoCpus = Int64.max }) }) != nil)
        #expect((message { _ = try build(host { $0.NanoCpus = -1_000_000_000 }) }) != nil)
        #expect((message { _ = try build(host { $0.NanoCpus = 1_000_000 }) }) != nil, "below 0.01 CPU")
        #expect(try build(host { $0.NanoCpus = 2_000_000_000 }).linux?.resources?.cpu?.quota == 200_000)
    }

    @Test func quotaAndPeriod() throws {
        // CpuQuota > 0 with CpuPeriod -1 trapped in UInt64(-1).
        let m = message { _ = try build(host { $0.CpuQuota = 50_000; $0.CpuPeriod = -1 }) }
        #expect(m == "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1 second (i.e. 1000000)")
        #expect((message { _ = try build(host { $0.CpuPeriod = Int64.max }) }) != nil)
        #expect((message { _ = try build(host { $0.CpuQuota = 10 }) }) == "CPU cfs quota can not be less than 1ms (i.e. 1000)")
        #expect((message { _ = try build(host { $0.CpuQuota = -5 }) }) != nil)
        #expect((message { _ = try build(host { $0.CpuQuota = Int64.max }) }) != nil)
        #expect((message { _ = try build(host { $0.NanoCpus = 1_000_000_000; $0.CpuQuota = 50_000 }) }) != nil)
        let cpu = try? build(host { $0.CpuQuota = 50_000; $0.CpuPeriod = 200_000 }).linux?.resources?.cpu
        #expect(cpu?.quota == 50_000)
        #expect(cpu?.period == 200_000)
    }

    @Test func memorySharesPids() throws {
        #expect((message { _ = try build(host { $0.Memory = -1 }) }) == "Minimum memory limit allowed is 6MB")
        #expect((message { _ = try build(host { $0.Memory = Int64.min }) }) == "Minimum memory limit allowed is 6MB")
        #expect((message { _ = try build(host { $0.CpuShares = -1 }) }) != nil)
        #expect(try build(host { $0.CpuShares = Int64.max }).linux?.resources?.cpu?.shares == 262_144)
        #expect(try build(host { $0.CpuShares = 512 }).linux?.resources?.cpu?.shares == 512)
        // Docker: PidsLimit 0 or any negative value is "unlimited", stored as null.
        for p: Int64 in [0, -1, -7, Int64.min] {
            #expect(try CreateValidation.validate(config: ContainerConfig(), hostConfig: host { $0.PidsLimit = p }).PidsLimit == nil)
            #expect(try build(host { $0.PidsLimit = p }).linux?.resources?.pids == nil)
        }
    }

    @Test func shmConsoleAndStopTimeout() throws {
        #expect((message { _ = try build(host { $0.ShmSize = -1 }) }) == "SHM size can not be less than 0")
        #expect(throws: Never.self) { try build(host { $0.ShmSize = Int64.max }) }
        #expect((message { _ = try build(host { $0.ConsoleSize = [-1, -1] }) }) != nil)
        #expect((message { _ = try build(host { $0.ConsoleSize = [70_000, 10] }) }) != nil)
        #expect((message { _ = try build(host { $0.ConsoleSize = [1] }) }) != nil)
        #expect(throws: Never.self) { try build(host { $0.ConsoleSize = [0, 0] }) }
        #expect(try build(host { $0.ConsoleSize = [40, 100] }).process?.consoleSize == Spec.Box(height: 40, width: 100))
        var c = ContainerConfig()
        c.StopTimeout = -2
        #expect((message { _ = try build(HostConfig(), config: c) }) != nil)
        c.StopTimeout = 99_999_999_999
        #expect(throws: Never.self) { try build(HostConfig(), config: c) }
    }

    @Test func hostnames() throws {
        for bad in ["../../etc", "a..b", "-a", "a-", "a_b", String(repeating: "a", count: 64), "a." + String(repeating: "b", count: 63), ""] where !bad.isEmpty {
            var c = ContainerConfig()
            c.Hostname = bad
            #expect((message { _ = try build(HostConfig(), config: c) }) != nil, "\(bad)")
        }
        for good in ["web", "web-1.example.com", "A1", String(repeating: "a", count: 63)] {
            var c = ContainerConfig()
            c.Hostname = good
            #expect(try build(HostConfig(), config: c).hostname == good)
        }
        var c = ContainerConfig()
        c.Domainname = "../x"
        #expect((message { _ = try build(HostConfig(), config: c) }) != nil)
    }

    @Test func sizesOfEnvCmdLabels() throws {
        var c = ContainerConfig()
        c.Env = ["BIG=" + String(repeating: "x", count: 1_000_000)]
        #expect((message { _ = try build(HostConfig(), config: c) }) != nil, "one variable over MAX_ARG_STRLEN")
        c.Env = (0..<20).map { "V\($0)=" + String(repeating: "x", count: 100_000) }
        #expect((message { _ = try build(HostConfig(), config: c) }) != nil, "over 1 MiB together")
        c.Env = ["A=1"]
        c.Cmd = ["echo", String(repeating: "y", count: 200_000)]
        #expect((message { _ = try build(HostConfig(), config: c) }) != nil)
        c.Cmd = ["echo"]
        c.Labels = ["l": String(repeating: "z", count: 300_000)]
        #expect((message { _ = try build(HostConfig(), config: c) }) != nil)
        c.Labels = ["l": "ok"]
        #expect(throws: Never.self) { try build(HostConfig(), config: c) }
        // The image's environment counts too: together with the request's, over the limit.
        var image = ImageConfiguration.Config()
        image.Env = (0..<8).map { "I\($0)=" + String(repeating: "i", count: 100_000) }
        c.Env = (0..<4).map { "R\($0)=" + String(repeating: "r", count: 100_000) }
        var input = SpecBuilder.Input(id: String(repeating: "c", count: 64), config: c, hostConfig: HostConfig(), image: image)
        input.onlineCPUs = 2
        #expect((message { _ = try SpecBuilder.build(input) }) != nil)
        c.Env = nil
        input.config = c
        #expect(throws: Never.self) { try SpecBuilder.build(input) }
    }

    @Test func usersThatLeftNothingToIndex() throws {
        for bad in [":", "::", ":0", "0:", "root:"] {
            #expect((message { _ = try SpecBuilder.user(bad, passwd: "root:x:0:0::/root:/bin/sh\n", group: "root:x:0:\n") }) != nil, "\(bad)")
        }
        #expect((try? SpecBuilder.user("0:0", passwd: "", group: "").uid) == 0)
    }

    @Test func execRequests() throws {
        var r = ExecCreateRequest()
        r.Cmd = ["sh"]
        r.ConsoleSize = [-1, -1]
        #expect((message { try CreateValidation.execRequest(r) }) != nil)
        r.ConsoleSize = [24, 80]
        r.Env = ["X=" + String(repeating: "x", count: 200_000)]
        #expect((message { try CreateValidation.execRequest(r) }) != nil)
        r.Env = ["X=1"]
        #expect(throws: Never.self) { try CreateValidation.execRequest(r) }
    }

    @Test func nulBytesAndStopSignal() throws {
        var c = ContainerConfig()
        c.Cmd = ["echo", "a\u{0}b"]
        #expect((message { _ = try build(HostConfig(), config: c) }) != nil)
        c.Cmd = ["echo"]
        #expect((message { _ = try build(host { $0.Binds = ["/tmp\u{0}/etc:/x"] }, config: c) }) != nil)
        c.StopSignal = "SIGNOPE"
        #expect((message { _ = try build(HostConfig(), config: c) }) == "invalid signal: SIGNOPE")
        c.StopSignal = "SIGUSR1"
        #expect(throws: Never.self) { try build(HostConfig(), config: c) }
    }

    @Test func aStoredNegativeConsoleSizeIsNotShown() {
        var h = HostConfig()
        h.ConsoleSize = [-1, -1]
        let c = StoredContainer(id: String(repeating: "d", count: 64), name: "old", created: "2026-01-01T00:00:00Z", imageRef: "busybox",
                                imageID: "sha256:" + String(repeating: "0", count: 64), config: ContainerConfig(), hostConfig: h,
                                path: "true", args: [])
        #expect(Present.inspect(c, logPath: "/dev/null").HostConfig.ConsoleSize == [0, 0])
    }
}
