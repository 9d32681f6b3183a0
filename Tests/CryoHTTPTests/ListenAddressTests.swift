import CryoHTTP
import Testing

/// cryod's `-H` values, as dockerd reads them.
@Suite struct ListenAddressTests {
    @Test func parse() throws {
        #expect(try HTTPListener.Address.parse("unix:///run/x.sock") == .unix(path: "/run/x.sock", mode: 0o660))
        #expect(try HTTPListener.Address.parse("tcp://127.0.0.1:2376") == .tcp(host: "127.0.0.1", port: 2376))
        #expect(try HTTPListener.Address.parse("tcp://:2400") == .tcp(host: "0.0.0.0", port: 2400))
        #expect(try HTTPListener.Address.parse("tcp://[::1]:5") == .tcp(host: "::1", port: 5))
        #expect(try HTTPListener.Address.parse("tcp://127.0.0.1") == .tcp(host: "127.0.0.1", port: 2376))
        #expect(throws: (any Error).self) { try HTTPListener.Address.parse("unix://relative") }
        #expect(throws: (any Error).self) { try HTTPListener.Address.parse("tcp://h:0") }
        #expect(throws: (any Error).self) { try HTTPListener.Address.parse("fd://") }
    }

    /// There is no TCP listener without a TLS hook: HTTPListener.tcp requires one, and
    /// the description is what -H says.
    @Test func description() {
        #expect(HTTPListener.tcp(host: "::1", port: 9, secure: { _ in }).description == "tcp://[::1]:9")
        #expect(HTTPListener.unix("/a.sock").description == "unix:///a.sock")
    }
}
