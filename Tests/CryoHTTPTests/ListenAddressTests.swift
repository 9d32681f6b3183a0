import CryoHTTP
import XCTest

/// cryod's `-H` values, as dockerd reads them.
final class ListenAddressTests: XCTestCase {
    func testParse() throws {
        XCTAssertEqual(try HTTPListener.Address.parse("unix:///run/x.sock"), .unix(path: "/run/x.sock", mode: 0o660))
        XCTAssertEqual(try HTTPListener.Address.parse("tcp://127.0.0.1:2376"), .tcp(host: "127.0.0.1", port: 2376))
        XCTAssertEqual(try HTTPListener.Address.parse("tcp://:2400"), .tcp(host: "0.0.0.0", port: 2400))
        XCTAssertEqual(try HTTPListener.Address.parse("tcp://[::1]:5"), .tcp(host: "::1", port: 5))
        XCTAssertEqual(try HTTPListener.Address.parse("tcp://127.0.0.1"), .tcp(host: "127.0.0.1", port: 2376))
        XCTAssertThrowsError(try HTTPListener.Address.parse("unix://relative"))
        XCTAssertThrowsError(try HTTPListener.Address.parse("tcp://h:0"))
        XCTAssertThrowsError(try HTTPListener.Address.parse("fd://"))
    }

    /// There is no TCP listener without a TLS hook: HTTPListener.tcp requires one, and
    /// the description is what -H says.
    func testDescription() {
        XCTAssertEqual(HTTPListener.tcp(host: "::1", port: 9, secure: { _ in }).description, "tcp://[::1]:9")
        XCTAssertEqual(HTTPListener.unix("/a.sock").description, "unix:///a.sock")
    }
}
