import CryoMonitor
import FoundationEssentials
import Glibc
import Testing

/// The monitor's log: a new monitor's lines are told apart from an earlier one's, and a
/// full file is moved aside before a new monitor starts.
@Suite struct MonitorLogFileTests {
    func scratch() -> String { "/tmp/cryo-monlog-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log" }

    @Test func aFailureCarriesOnlyTheNewMonitorsLines() throws {
        let path = scratch()
        defer { unlink(path); unlink(path + ".1") }
        let first = try MonitorLogFile.open(path)
        _ = write(first.fd, "old run\n", 8)
        close(first.fd)
        let second = try MonitorLogFile.open(path)
        #expect(second.start == 8)
        _ = write(second.fd, "restoring container\nCRIU failed\n", 32)
        close(second.fd)
        #expect(MonitorLogFile.tail(path, from: second.start) == ["restoring container", "CRIU failed"])
        #expect(MonitorLogFile.excerpt(path, from: second.start) == " [the monitor's log, \(path): restoring container | CRIU failed]")
        #expect(MonitorLogFile.excerpt(path, from: 100) != "", "emptied by the monitor meanwhile: all of it")
        #expect(MonitorLogFile.excerpt(path + ".none", from: 0) == "")
    }

    @Test func aFullLogIsMovedAside() throws {
        let path = scratch()
        defer { unlink(path); unlink(path + ".1") }
        let big = [UInt8](repeating: 0x61, count: MonitorLogFile.sizeLimit + 1)
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        #expect(write(fd, big, big.count) == big.count)
        close(fd)
        let opened = try MonitorLogFile.open(path)
        close(opened.fd)
        #expect(opened.start == 0)
        var st = stat()
        #expect(stat(path + ".1", &st) == 0 && Int(st.st_size) == big.count)
    }
}
