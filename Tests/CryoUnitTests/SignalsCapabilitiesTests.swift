import Glibc
import Testing
@testable import CryoLinux

@Suite struct SignalsTests {
    @Test(arguments: [
        ("9", 9), ("15", 15), ("1", 1), ("64", 64),
        ("KILL", 9), ("SIGKILL", 9), ("sigkill", 9), ("kill", 9), ("SigTerm", 15), ("TERM", 15),
        ("HUP", 1), ("INT", 2), ("QUIT", 3), ("USR1", 10), ("SIGUSR2", 12), ("CHLD", 17), ("CONT", 18),
        ("STOP", 19), ("WINCH", 28), ("IOT", 6), ("ABRT", 6), ("POLL", 29), ("IO", 29), ("PWR", 30), ("SYS", 31),
        ("RTMIN", 34), ("SIGRTMIN", 34), ("RTMIN+0", 34), ("RTMIN+1", 35), ("rtmin+3", 37), ("SIGRTMIN+30", 64),
        ("RTMAX", 64), ("RTMAX-1", 63), ("sigrtmax-30", 34),
    ] as [(String, Int32)])
    func valid(_ text: String, _ expected: Int32) {
        #expect(Signals.parse(text) == expected, "\(text)")
    }

    @Test(arguments: [
        "", "0", "65", "-9", "999999999999", "SIG", "FOO", "SIGFOO", "KILLX", " KILL", "9 ",
        "RTMIN+31", "RTMAX-31", "RTMIN+", "RTMIN+x", "RTMIN-1", "RTMAX+1",
    ])
    func invalid(_ text: String) {
        #expect(Signals.parse(text) == nil, "\(text)")
    }

    /// A negative offset must not count as RTMIN+n / RTMAX-n: "RTMIN+-3" is not
    /// signal 31 and "RTMAX--3" is not a signal at all (67 > 64).
    @Test(arguments: ["RTMIN+-3", "RTMAX--3", "RTMIN+-34"])
    func negativeRealtimeOffsetsAreRejected(_ text: String) {
        #expect(Signals.parse(text) == nil, "\(text) parsed as \(String(describing: Signals.parse(text)))")
    }

    /// Offsets that do not fit must be rejected, not overflow (an arithmetic
    /// overflow traps and kills the process). Run in a child process.
    @Test func hugeRealtimeOffsetsDoNotCrash() async {
        await #expect(processExitsWith: .success) {
            precondition(Signals.parse("RTMIN+2147483647") == nil)
        }
        await #expect(processExitsWith: .success) {
            precondition(Signals.parse("RTMAX--2147483648") == nil)
        }
    }

    @Test func everyNamedSignalRoundTripsThroughItsNumber() {
        for (name, n) in Signals.names {
            #expect(Signals.parse("SIG" + name) == n)
            #expect(Signals.parse(name.lowercased()) == n)
            #expect(Signals.parse(String(n)) == n)
        }
        #expect(Signals.names.count >= 31)
    }
}

@Suite struct CapabilitiesTests {
    @Test func knownNames() throws {
        let caps = try Capabilities.numbers(["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN",
                                             "CAP_AUDIT_WRITE", "CAP_SETFCAP"])
        #expect(caps == [0, 5, 10, 21, 29, 31])
    }

    @Test func lowercaseAndWithoutPrefix() throws {
        #expect(try Capabilities.numbers(["net_admin"]) == [12])
        #expect(try Capabilities.numbers(["cap_net_raw", "Sys_Chroot", "MKNOD"]) == [13, 18, 27])
        #expect(try Capabilities.numbers(["kill", "CAP_KILL", "cap_kill"]) == [5])
        #expect(try Capabilities.numbers([]) == [])
    }

    @Test func unknownNameThrowsAndNamesIt() {
        let e = #expect(throws: CryoFailure.self) { try Capabilities.numbers(["CAP_KILL", "CAP_FLY"]) }
        #expect(e?.message.contains("CAP_FLY") == true)
        #expect(throws: CryoFailure.self) { try Capabilities.numbers(["CAP_"]) }
        #expect(throws: CryoFailure.self) { try Capabilities.numbers([""]) }
        #expect(throws: CryoFailure.self) { try Capabilities.numbers(["CAP_CAP_KILL"]) }
    }

    @Test func tableMatchesKernelNumbering() {
        // linux/capability.h: spot checks across the range.
        let expected: [String: Int] = [
            "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_SETPCAP": 8, "CAP_NET_ADMIN": 12, "CAP_SYS_PTRACE": 19,
            "CAP_SYS_ADMIN": 21, "CAP_MKNOD": 27, "CAP_AUDIT_CONTROL": 30, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34,
            "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39, "CAP_CHECKPOINT_RESTORE": 40,
        ]
        for (name, n) in expected { #expect(Capabilities.names.firstIndex(of: name) == n, "\(name)") }
        #expect(Set(Capabilities.names).count == Capabilities.names.count)
    }

    @Test func capabilitiesTheKernelDoesNotKnowAreDropped() throws {
        let last = Capabilities.lastCap
        let all = try Capabilities.numbers(Capabilities.names)
        #expect(all == Set(0...min(last, Capabilities.names.count - 1)))
    }

    @Test func mask() {
        #expect(Capabilities.mask([]) == [0, 0])
        #expect(Capabilities.mask([0, 5, 31]) == [0x8000_0021, 0])
        #expect(Capabilities.mask([32, 40]) == [0, 0x101])
    }
}
