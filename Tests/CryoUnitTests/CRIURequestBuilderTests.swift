import CRIURPC
import FoundationEssentials
import Testing
@testable import CryoLinux
@testable import CryoRuntime

/// CRIU's requests from plans: every network handling, and each option that reaches CRIU.
@Suite struct CRIURequestBuilderTests {
    static let newnet = UInt32(NamespaceKind.network.cloneFlag)

    func target(netns: UInt64? = nil, pidns: UInt64? = nil, mounts: [CRIUMounts.Mapping] = [],
                yard: String? = nil, freezer: String? = nil) -> CRIURequestBuilder.DumpTarget {
        CRIURequestBuilder.DumpTarget(initPid: 4242, rootfs: "/b/rootfs", imagesDirFD: 7, workDirFD: 8,
                                      networkNamespaceInode: netns, pidNamespaceInode: pidns, freezerDir: freezer,
                                      cgroupYard: yard, externalMounts: mounts)
    }

    func restoreTarget(netns: Bool, inherited: [(key: String, fd: Int32)] = [], yard: String? = nil) -> CRIURequestBuilder.RestoreTarget {
        CRIURequestBuilder.RestoreTarget(imagesDirFD: 7, workDirFD: 8, criuRoot: "/s/criu-root", joinsNetworkNamespace: netns,
                                         inherited: inherited, externalMounts: [CRIUMounts.Mapping(key: "/etc/hosts", value: "/h/hosts")],
                                         cgroupRoots: [(controllers: "", path: "/cryo/x"), (controllers: "cpu,cpuacct", path: "/cryo/x")],
                                         cgroupYard: yard)
    }

    @Test func runcDefaultsWithoutANamespaceJoinedByPath() throws {
        let plan = CheckpointPlan(imagePath: "/i", network: .runc(lock: nil, emptyNamespace: false))
        let req = try CRIURequestBuilder.dump(plan, target())
        #expect(req.type == .dump)
        let o = req.opts
        #expect(o.imagesDirFd == 7 && o.workDirFd == 8 && o.pid == 4242 && o.root == "/b/rootfs")
        #expect(o.logFile == "dump.log" && o.logLevel == 4)
        #expect(o.notifyScripts && o.orphanPtsMaster && o.manageCgroups && o.manageCgroupsMode == .soft)
        #expect(!o.hasNetworkLock)           // CRIU's default (iptables), as runc
        #expect(o.emptyNs == 0 && o.external.isEmpty)
        #expect(!o.leaveRunning && !o.tcpEstablished && !o.hasPs && !o.hasParentImg && !o.lazyPages)
    }

    @Test func runcWithAJoinedNamespaceMakesItExternalAndEmpty() throws {
        let plan = CheckpointPlan(imagePath: "/i", network: .runc(lock: .nftables, emptyNamespace: false))
        let o = try CRIURequestBuilder.dump(plan, target(netns: 123, pidns: 456)).opts
        #expect(o.external == ["net[123]:extRootNetNS", "pid[456]:extRootPidNS"])
        #expect(o.emptyNs == Self.newnet)
        #expect(o.networkLock == .nftables)
        #expect(!plan.cryoLocksBeforeDump && !plan.cryoLocksAtNotification)
    }

    @Test func runcEmptyNamespaceFlag() throws {
        let plan = CheckpointPlan(imagePath: "/i", network: .runc(lock: .skip, emptyNamespace: true))
        let o = try CRIURequestBuilder.dump(plan, target()).opts
        #expect(o.emptyNs == Self.newnet && o.networkLock == .skip && o.external.isEmpty)
    }

    @Test func engineDumpsFromInsideAndLocksBeforeTheDump() throws {
        let plan = CheckpointPlan(imagePath: "/i", network: NetworkHandling(criuInside: true, locker: .cryo))
        let o = try CRIURequestBuilder.dump(plan, target(netns: 123, pidns: 456)).opts
        #expect(o.external == ["pid[456]:extRootPidNS"])   // CRIU takes the namespace for its own
        #expect(o.emptyNs == 0)
        #expect(o.networkLock == .skip)
        #expect(plan.cryoLocksBeforeDump && !plan.cryoLocksAtNotification)
    }

    @Test func cryoLockFromOutsideLocksAtTheNotification() throws {
        let plan = CheckpointPlan(imagePath: "/i", network: NetworkHandling(criuInside: false, locker: .cryo))
        let o = try CRIURequestBuilder.dump(plan, target(netns: 123)).opts
        #expect(o.external == ["net[123]:extRootNetNS"] && o.emptyNs == Self.newnet && o.networkLock == .skip)
        #expect(!plan.cryoLocksBeforeDump && plan.cryoLocksAtNotification)
    }

    @Test func isolatedAndHostLockNothing() throws {
        let isolated = CheckpointPlan(imagePath: "/i", network: NetworkHandling(criuInside: true, locker: .nobody))
        let o = try CRIURequestBuilder.dump(isolated, target(netns: 123)).opts
        #expect(o.networkLock == .skip && o.external.isEmpty && o.emptyNs == 0)
        #expect(!isolated.cryoLocksBeforeDump && !isolated.cryoLocksAtNotification)
        let host = CheckpointPlan(imagePath: "/i", network: NetworkHandling(criuInside: false, locker: .nobody))
        let h = try CRIURequestBuilder.dump(host, target()).opts
        #expect(h.networkLock == .skip && h.external.isEmpty && h.emptyNs == 0)
    }

    @Test func handlingsThatNeedANamespaceAreRefusedWithoutOne() {
        #expect(throws: CryoFailure.self) {
            try CRIURequestBuilder.dump(CheckpointPlan(imagePath: "/i", network: NetworkHandling(criuInside: true, locker: .nobody)), target())
        }
        #expect(throws: CryoFailure.self) {
            try CRIURequestBuilder.dump(CheckpointPlan(imagePath: "/i", network: NetworkHandling(criuInside: false, locker: .cryo)), target())
        }
        #expect(throws: CryoFailure.self) {
            try CRIURequestBuilder.restore(RestorePlan(imagePath: "/i", network: NetworkHandling(criuInside: false, locker: .cryo)),
                                           restoreTarget(netns: false))
        }
    }

    @Test func tcpEstablishedReachesDumpAndRestore() throws {
        var plan = CheckpointPlan(imagePath: "/i", network: NetworkHandling(criuInside: true, locker: .cryo))
        plan.tcpEstablished = true
        #expect(try CRIURequestBuilder.dump(plan, target(netns: 1)).opts.tcpEstablished)
        var r = RestorePlan(imagePath: "/i", network: NetworkHandling(criuInside: true, locker: .cryo))
        r.tcpEstablished = true
        #expect(try CRIURequestBuilder.restore(r, restoreTarget(netns: true)).opts.tcpEstablished)
    }

    @Test func leaveRunningAndPreDump() throws {
        var plan = CheckpointPlan(imagePath: "/i", network: .runc(lock: nil, emptyNamespace: false))
        plan.leaveRunning = true
        let mounts = [CRIUMounts.Mapping(key: "/etc/hosts", value: "/etc/hosts")]
        let o = try CRIURequestBuilder.dump(plan, target(mounts: mounts)).opts
        #expect(o.leaveRunning && o.extMnt.map(\.key) == ["/etc/hosts"])
        plan.leaveRunning = false
        plan.preDump = true
        let req = try CRIURequestBuilder.dump(plan, target(mounts: mounts))
        #expect(req.type == .preDump)
        #expect(req.opts.leaveRunning && req.opts.logFile == "predump.log" && req.opts.extMnt.isEmpty)
    }

    @Test func parentLazyPagesAndPageServer() throws {
        var plan = CheckpointPlan(imagePath: "/i", network: .runc(lock: nil, emptyNamespace: false))
        plan.parentPath = "../pre"
        plan.lazyPages = true
        plan.pageServer = try PageServer.parse("192.0.2.1:2700")
        let o = try CRIURequestBuilder.dump(plan, target()).opts
        #expect(o.parentImg == "../pre" && o.trackMem)
        #expect(o.lazyPages)
        #expect(o.ps.address == "192.0.2.1" && o.ps.port == 2700 && !o.ps.hasFd)
        #expect(throws: CryoFailure.self) { try PageServer.parse("nohost") }
        #expect(try PageServer.parse("[::1]:5") == .address(host: "[::1]", port: 5))
    }

    @Test func pageServerSocketIsTheWorkersFD4() throws {
        var plan = CheckpointPlan(imagePath: "/i", network: NetworkHandling(criuInside: true, locker: .cryo))
        #expect(CRIURequestBuilder.dumpWorkerFDs(plan) == [])
        plan.pageServer = .socket(fd: 17)
        #expect(CRIURequestBuilder.dumpWorkerFDs(plan) == [17])
        let o = try CRIURequestBuilder.dump(plan, target(netns: 1)).opts
        #expect(o.ps.fd == 4 && !o.ps.hasAddress && !o.ps.hasPort)
        #expect(o.external.isEmpty && o.networkLock == .skip)   // still dumped from inside
    }

    @Test func lazyPageServerIsAPortInsideTheNamespace() throws {
        // Post-copy: CRIU serves the memory after the dump, listening on the port inside the
        // container's namespace (dumped from inside); a lazy dump reads no address or fd.
        var plan = CheckpointPlan(imagePath: "/i", network: NetworkHandling(criuInside: true, locker: .cryo))
        plan.pageServer = .lazy(port: 24242)
        #expect(plan.lazyPort == 24242)
        #expect(CRIURequestBuilder.dumpWorkerFDs(plan) == [])
        let o = try CRIURequestBuilder.dump(plan, target(netns: 1)).opts
        #expect(o.lazyPages && o.ps.port == 24242 && !o.ps.hasFd && !o.ps.hasAddress)
        #expect(o.external.isEmpty && o.networkLock == .skip && !o.leaveRunning)
        // cryo's lock lets loopback TCP on that port through, and nothing else.
        let rules = NetworkLock.rules(loopbackPort: 24242)
        #expect(rules.contains("iifname \"lo\" tcp dport 24242 accept") && rules.contains("oifname \"lo\" tcp sport 24242 accept"))
        #expect(!NetworkLock.rules().contains("iifname"))
    }

    @Test func cgroupsFreezerAndYard() throws {
        var plan = CheckpointPlan(imagePath: "/i", network: .runc(lock: nil, emptyNamespace: false))
        let o = try CRIURequestBuilder.dump(plan, target(yard: "/run/yard", freezer: "/sys/fs/cgroup/freezer/x")).opts
        #expect(o.cgroupYard == "/run/yard" && o.freezeCgroup == "/sys/fs/cgroup/freezer/x")
        plan.cgroupsMode = .ignore
        let i = try CRIURequestBuilder.dump(plan, target(yard: "/run/yard")).opts
        #expect(!i.hasCgroupYard && i.manageCgroupsMode == .ignore)
    }

    @Test func restoreFields() throws {
        let plan = RestorePlan(imagePath: "/i", network: .runc(lock: nil, emptyNamespace: false))
        let inherited = [(key: "extRootNetNS", fd: Int32(4)), (key: "extRootPidNS", fd: Int32(5)), (key: "pipe:[99]", fd: Int32(1))]
        let req = try CRIURequestBuilder.restore(plan, restoreTarget(netns: true, inherited: inherited, yard: "/run/yard"))
        #expect(req.type == .restore)
        let o = req.opts
        #expect(o.rstSibling && o.evasiveDevices && o.root == "/s/criu-root" && o.logFile == "restore.log")
        #expect(o.notifyScripts && o.orphanPtsMaster && o.manageCgroups)
        #expect(o.emptyNs == Self.newnet && !o.hasNetworkLock)
        #expect(o.inheritFd.map(\.key) == ["extRootNetNS", "extRootPidNS", "pipe:[99]"])
        #expect(o.inheritFd.map(\.fd) == [4, 5, 1])
        #expect(o.extMnt.map(\.val) == ["/h/hosts"])
        #expect(o.cgRoot.map(\.hasCtrl) == [false, true] && o.cgRoot.map(\.path) == ["/cryo/x", "/cryo/x"])
        #expect(o.cgroupYard == "/run/yard")
    }

    @Test func restoreFromInsideLeavesTheNamespaceAlone() throws {
        let plan = RestorePlan(imagePath: "/i", network: NetworkHandling(criuInside: true, locker: .cryo))
        let o = try CRIURequestBuilder.restore(plan, restoreTarget(netns: true)).opts
        #expect(o.emptyNs == 0 && o.networkLock == .skip)
        let joined = [(type: "network", path: "/run/netns/a"), (type: "pid", path: "/proc/1/ns/pid"), (type: "ipc", path: "/x")]
        #expect(CRIURequestBuilder.restoreNamespaceKeys(plan, joined: joined).map(\.key) == ["extRootPidNS"])
        let outside = RestorePlan(imagePath: "/i", network: .runc(lock: nil, emptyNamespace: false))
        #expect(CRIURequestBuilder.restoreNamespaceKeys(outside, joined: joined).map(\.key) == ["extRootNetNS", "extRootPidNS"])
        #expect(CRIURequestBuilder.restoreNamespaceKeys(outside, joined: joined).map(\.path) == ["/run/netns/a", "/proc/1/ns/pid"])
    }

    @Test func whoUnlocksAfterARestore() throws {
        var plan = RestorePlan(imagePath: "/i", network: NetworkHandling(criuInside: true, locker: .cryo))
        #expect(plan.cryoUnlockNotification == "pre-resume")
        plan.network.criuInside = false
        #expect(plan.cryoUnlockNotification == "network-unlock")
        plan.keepNetworkLocked = true
        #expect(plan.cryoUnlockNotification == nil)
        #expect(try CRIURequestBuilder.restore(plan, restoreTarget(netns: true)).opts.networkLock == .skip)
        plan.network.locker = .nobody            // nothing locked, nothing to keep
        #expect(plan.cryoUnlockNotification == nil)
        _ = try CRIURequestBuilder.restore(plan, restoreTarget(netns: true))
        plan.network.locker = .criu(nil)         // CRIU unlocks by itself: cannot be kept
        #expect(throws: CryoFailure.self) { try CRIURequestBuilder.restore(plan, restoreTarget(netns: true)) }
        #expect(RestorePlan(imagePath: "/i", network: .runc(lock: .iptables, emptyNamespace: false)).cryoUnlockNotification == nil)
    }

    @Test func stdioPipesAreInherited() {
        let keys = CRIURequestBuilder.stdioInherits(descriptors: ["/dev/null", "pipe:[12]", "pipe:[13]"])
        #expect(keys.map(\.key) == ["pipe:[12]", "pipe:[13]"] && keys.map(\.fd) == [1, 2])
    }

    @Test func plansSurviveJSON() throws {
        var plan = RestorePlan(imagePath: "/i", network: NetworkHandling(criuInside: true, locker: .cryo))
        plan.tcpEstablished = true
        plan.networkGateFD = 4
        plan.keepNetworkLocked = true
        let back = try JSONDecoder().decode(RestorePlan.self, from: JSONEncoder().encode(plan))
        #expect(back == plan)
        var cp = CheckpointPlan(imagePath: "/i", network: .runc(lock: .nftables, emptyNamespace: true))
        cp.pageServer = .address(host: "h", port: 1)
        cp.cgroupsMode = .full
        #expect(try JSONDecoder().decode(CheckpointPlan.self, from: JSONEncoder().encode(cp)) == cp)
    }
}
