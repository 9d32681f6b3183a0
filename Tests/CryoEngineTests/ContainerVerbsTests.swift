@testable import CryoEngine
import CryoImages
import CryoLinux
import CryoOCI
import Glibc
import FoundationEssentials
import Testing

/// The pure parts of issue 13's container verbs: `ps` output for top, upper-dir entries for
/// diff, prune filters, the stats JSON from cgroup file text, and --init in the spec.
@Suite struct ContainerVerbsTests {
    // MARK: top

    @Test func psOutputKeepsTheContainersRowsWithSpacesInTheCommand() throws {
        let out = """
        UID          PID    PPID  C STIME TTY          TIME CMD
        root           1       0  0 14:00 ?        00:00:01 /sbin/init
        root        4242    4200  0 14:01 ?        00:00:00 sleep 1000
        root        4243    4242  0 14:01 ?        00:00:00 sh -c echo  two  spaces
        """
        let t = try ProcessTable.parse(out, pids: [4242, 4243])
        #expect(t.Titles == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"])
        #expect(t.Processes.count == 2)
        #expect(t.Processes[0] == ["root", "4242", "4200", "0", "14:01", "?", "00:00:00", "sleep 1000"])
        #expect(t.Processes[1].last == "sh -c echo  two  spaces")
    }

    @Test func psOutputWithoutAPIDColumnIsRefused() {
        #expect(throws: EngineError.self) { try ProcessTable.parse("COMMAND\nsleep\n", pids: [1]) }
        let t = try? ProcessTable.parse("  PID COMMAND\n   7 sleep\n   8 sh\n", pids: [7])
        #expect(t?.Processes == [["7", "sleep"]])
    }

    // MARK: diff

    @Test func upperEntriesBecomeDockerChanges() {
        let lower: Set<String> = ["/etc", "/etc/passwd", "/bin", "/bin/ls"]
        let entries: [RootfsChanges.Entry] = [
            .init(path: "/new"), .init(path: "/etc"), .init(path: "/etc/passwd"),
            .init(path: "/bin"), .init(path: "/bin/ls", isWhiteout: true),
        ]
        let changes = RootfsChanges.changes(entries, inLower: lower.contains)
        #expect(changes == [
            RootfsChange(Path: "/bin", Kind: 0), RootfsChange(Path: "/bin/ls", Kind: 2),
            RootfsChange(Path: "/etc", Kind: 0), RootfsChange(Path: "/etc/passwd", Kind: 0),
            RootfsChange(Path: "/new", Kind: 1),
        ])
    }

    @Test func upperDirectoryWalkSkipsCryosMountPoints() throws {
        let dir = "/tmp/cryo-diff-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FS.removeAll(dir) }
        for d in ["/etc", "/sbin", "/dev/shm", "/data/sub"] { try FS.mkdirAll(dir + d) }
        for f in ["/etc/hosts", "/etc/resolv.conf", "/sbin/docker-init", "/data/sub/f"] { try FS.touch(dir + f) }
        #expect(mknod(dir + "/gone", S_IFCHR | 0o000, 0) == 0)
        let entries = try Engine.upperEntries(dir, skip: ["/dev", "/etc/hosts", "/etc/resolv.conf", "/sbin/docker-init"])
        #expect(entries.map(\.path) == ["/data", "/data/sub", "/data/sub/f", "/gone"])
        #expect(entries.map(\.isWhiteout) == [false, false, false, true])
    }

    // MARK: prune

    @Test func pruneFiltersInBothClientForms() throws {
        let now = 1_000_000.0
        let cli = try PruneFilter.parse(#"{"label":{"grp=a":true},"until":{"10m":true}}"#, now: now)
        #expect(cli.labels == ["grp=a"])
        #expect(cli.until == now - 600)
        #expect(cli.matches(labels: ["grp": "a"], created: now - 601))
        #expect(!cli.matches(labels: ["grp": "a"], created: now - 10))
        #expect(!cli.matches(labels: ["grp": "b"], created: now - 601))
        let py = try PruneFilter.parse(#"{"label":["k"],"label!":["x=1"]}"#, now: now)
        #expect(py.matches(labels: ["k": "anything"], created: now))
        #expect(!py.matches(labels: ["k": "v", "x": "1"], created: now))
        #expect(PruneFilter.goDuration("1h30m") == 5400)
        #expect(PruneFilter.goDuration("1.5s") == 1.5)
        #expect(PruneFilter.goDuration("10") == nil)
        #expect(throws: EngineError.self) { try PruneFilter.parse(#"{"dangling":["true"]}"#, now: now) }
        #expect(throws: EngineError.self) { try PruneFilter.parse(#"{"until":["soon"]}"#, now: now) }
    }

    @Test func imagePruneTakesDanglingOthersRefuseIt() throws {
        #expect(try PruneFilter.parse(nil, now: 0, kind: .image).dangling)
        #expect(!(try PruneFilter.parse(#"{"dangling":{"false":true}}"#, now: 0, kind: .image).dangling))
        #expect(throws: EngineError.self) { try PruneFilter.parse(#"{"dangling":["maybe"]}"#, now: 0, kind: .image) }
        #expect(throws: EngineError.self) { try PruneFilter.parse(#"{"dangling":["true"]}"#, now: 0, kind: .network) }
    }

    // MARK: history

    @Test func historyIsNewestFirstWithEachLayersSizeAndEmptyStepsZero() {
        var cfg = ImageConfiguration(created: "2024-01-02T03:04:05Z", rootfs: .init(diff_ids: ["a", "b"]))
        cfg.history = [.init(created: "2024-01-01T00:00:00Z", created_by: "ADD rootfs"),
                       .init(created: "2024-01-01T00:00:01Z", created_by: "CMD [\"sh\"]", empty_layer: true),
                       .init(created: "2024-01-01T00:00:02Z", created_by: "RUN make", comment: "c")]
        let rows = ImageHistory.items(imageID: "sha256:top", tags: ["x:1"], config: cfg, layerSizes: [100, 7])
        #expect(rows.map(\.CreatedBy) == ["RUN make", "CMD [\"sh\"]", "ADD rootfs"])
        #expect(rows.map(\.Size) == [7, 0, 100])
        #expect(rows.map(\.Id) == ["sha256:top", "<missing>", "<missing>"])
        #expect(rows[0].Tags == ["x:1"] && rows[1].Tags == nil)
        #expect(rows[0].Created == 1_704_067_202 && rows[0].Comment == "c")
        // No history (docker import, hand-made archives): one row per layer.
        cfg.history = nil
        let bare = ImageHistory.items(imageID: "sha256:top", tags: [], config: cfg, layerSizes: [100, 7])
        #expect(bare.map(\.Size) == [7, 100] && bare.allSatisfy { $0.Created == 1_704_164_645 })
    }

    // MARK: stats

    @Test func statsFromCgroupV2Text() {
        let (cpu, thr) = ContainerStats.cpuFromV2(cpuStat: "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 30\n")
        #expect(cpu.total_usage == 2_500_000 && cpu.usage_in_usermode == 2_000_000 && cpu.usage_in_kernelmode == 500_000)
        #expect(thr.periods == 4 && thr.throttled_periods == 1 && thr.throttled_time == 30_000)
        let io = ContainerStats.blkio("8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n")
        #expect(io.bytes == [.init(major: 8, minor: 0, op: "read", value: 4096), .init(major: 8, minor: 0, op: "write", value: 8192)])
        #expect(io.ios.map(\.value) == [1, 2])
        #expect(ContainerStats.memoryLimit(nil, memTotal: 1000) == 1000)          // "max"
        #expect(ContainerStats.memoryLimit(64, memTotal: 1000) == 64)
    }

    @Test func statsFromCgroupV1TextAndProc() {
        let io = ContainerStats.blkio("8:0 Read 100\n8:0 Write 200\n8:0 Sync 300\nTotal 300\n")
        #expect(io.bytes.map(\.op) == ["Read", "Write", "Sync"])
        #expect(ContainerStats.memoryLimit(9_223_372_036_854_771_712, memTotal: 4 << 30) == 4 << 30)
        #expect(ContainerStats.number("max\n") == nil && ContainerStats.number("42\n") == 42)
        let procStat = "cpu  100 5 50 1000 10 1 2 7 0 0\ncpu0 50 2 25 500 5 0 1 0 0 0\n"
        #expect(ContainerStats.systemCPUNanos(procStat: procStat) == 1168 * 10_000_000)
        #expect(ContainerStats.memTotal(meminfo: "MemTotal:        2048 kB\nMemFree: 1 kB\n") == 2048 * 1024)
        let netDev = """
        Inter-|   Receive                                                |  Transmit
         face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
            lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
          eth0:    5000      40    1    2    0     0          0         0     3000      30    3    4    0     0       0          0
        """
        let n = ContainerStats.networks(netDev: netDev)
        #expect(Array(n.keys) == ["eth0"])
        #expect(n["eth0"]?.rx_bytes == 5000 && n["eth0"]?.tx_bytes == 3000 && n["eth0"]?.rx_dropped == 2 && n["eth0"]?.tx_errors == 3)
    }

    @Test func cpuAndMemoryAsTheDockerCLIComputesThem() throws {
        var s = ContainerStats()
        s.precpu_stats.cpu_usage.total_usage = 1_000_000_000
        s.precpu_stats.system_cpu_usage = 100_000_000_000
        s.cpu_stats.cpu_usage.total_usage = 1_500_000_000
        s.cpu_stats.system_cpu_usage = 102_000_000_000
        s.cpu_stats.online_cpus = 2
        #expect(s.cpuPercent == 50)
        s.memory_stats.usage = 1000
        s.memory_stats.stats = ["total_inactive_file": 300]
        #expect(s.memoryUsedWithoutCache == 700)
        // The JSON carries Docker's field names.
        let json = String(decoding: try JSONEncoder().encode(s), as: UTF8.self)
        for key in ["\"cpu_stats\"", "\"precpu_stats\"", "\"system_cpu_usage\"", "\"online_cpus\"", "\"total_usage\"",
                    "\"memory_stats\"", "\"pids_stats\"", "\"blkio_stats\"", "\"io_service_bytes_recursive\""] {
            #expect(json.contains(key), "\(key)")
        }
    }

    // MARK: --init

    @Test func initWrapsTheCommandAndBindsTheBinary() throws {
        var config = ContainerConfig()
        config.Cmd = ["sleep", "1000"]
        var host = HostConfig()
        host.Init = true
        var input = SpecBuilder.Input(id: "abc", config: config, hostConfig: host, image: nil)
        input.initBinary = "/opt/cryo/cryo-init"
        let spec = try SpecBuilder.build(input)
        #expect(spec.process?.args == ["/sbin/docker-init", "--", "sleep", "1000"])
        let m = spec.mounts?.first { $0.destination == "/sbin/docker-init" }
        #expect(m?.source == "/opt/cryo/cryo-init" && m?.type == "bind" && m?.options?.contains("ro") == true)
        input.initBinary = nil
        if let e = #expect(throws: EngineError.self, performing: { try SpecBuilder.build(input) }) {
            #expect(e.code == .unsupported && "\(e)".contains("--init"))
        }
        host.Init = nil
        let plain = try SpecBuilder.build(SpecBuilder.Input(id: "abc", config: config, hostConfig: host, image: nil))
        #expect(plain.process?.args == ["sleep", "1000"])
    }
}
