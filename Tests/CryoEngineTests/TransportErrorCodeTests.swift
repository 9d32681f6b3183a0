@testable import CryoAPI
import CryoArchive
@testable import CryoEngine
import CryoHTTP
import CryoLinux
import CryoLog
import CryoMigration
import CryoTLS
import Testing

/// The error types of the modules below the engine have codes, so the API's status (and
/// any caller's decision) comes from `Code.of`, never from a message.
@Suite struct TransportErrorCodeTests {
    func status(_ e: any Error) -> Int { HTTPStatus.of(HTTPStatus.failure(e).code) }

    @Test func requestBodyFailures() {
        #expect(status(HTTPError.bodyTooLarge(10)) == 413)
        #expect(HTTPStatus.failure(HTTPError.bodyTooLarge(10)).description == "request body is too large: this endpoint accepts at most 10 bytes")
        #expect(status(HTTPError.malformedBody("bad chunk")) == 400)
        #expect(HTTPStatus.failure(HTTPError.malformedBody("bad chunk")).description == "malformed request body: bad chunk")
        #expect(status(HTTPError.invalidState("respond twice")) == 500)
        #expect(CryoFailure.Code.of(HTTPError.connectionClosed) == .clientGone)
        // Wrapped for context, a broken upload is still the client's.
        #expect(status(CryoFailure("reading the image from the request failed", cause: HTTPError.malformedBody("x"))) == 400)
    }

    @Test func startupRefusals() {
        #expect(CryoFailure.Code.of(ListenError("-H x: bad")) == .invalidArgument)
        #expect(CryoFailure.Code.of(LogOptionError("log level \"x\"")) == .invalidArgument)
    }

    @Test func archiveRefusalsAreTheArchivesAndOwnFailuresCryods() {
        #expect(status(ArchiveError("member ../x has a \"..\" component (a path escape): refused")) == 400)
        #expect(CryoFailure.Code.of(ArchiveError("truncated")) == .invalidArchive)
        #expect(status(ArchiveError.own("member x: writing /s/x: No space left on device")) == 500)
        #expect(throws: ArchiveError("unknown compression \"lz4\": use zstd, gzip or none", code: .invalidArgument)) {
            try ArchiveCompression(parsing: "lz4")
        }
        #expect(status(CryoFailure("checkpoint archive refused", cause: ArchiveError("x"))) == 400)
    }

    @Test func peersAndTLS() {
        #expect(status(TLSError("cannot connect to 10.0.0.2:2376: connection refused", kind: .connect)) == 503)
        #expect(status(TLSError("TLS handshake with 10.0.0.2:2376 failed: certificate verify failed", kind: .handshake)) == 403)
        #expect(status(TLSError("TLS connection to 10.0.0.2:2376 is closed", kind: .closed)) == 503)
        #expect(status(TLSError("--tlscert x.pem does not exist")) == 400)
        #expect(status(PeerError.refused(peer: "p", status: 0, message: "the connection closed before an answer")) == 503)
        #expect(status(PeerError.refused(peer: "p", status: 409, message: "name in use")) == 409)
        #expect(status(PeerError.refused(peer: "p", status: 400, message: "bad offer")) == 409)
        #expect(status(PeerError.refused(peer: "p", status: 501, message: "no")) == 501)
        #expect(status(PeerError.refused(peer: "p", status: 500, message: "boom")) == 500)
        #expect(status(MigrationWireError.peerClosed) == 503)
        #expect(status(MigrationWireError.malformed("frame")) == 500)
        #expect(status(MigrationWireError.unexpected("commit")) == 500)
    }

    @Test func aTLSRefusalIsExplainedFromItsAlertNotItsText() {
        let expired = TLSError("TLS connection to p: whatever the text", kind: .connection, alert: .certificateExpired)
        let f = Engine.peerFailure("cannot connect to cryod at tcp://p", expired)
        #expect(f.code == .unavailable)
        #expect(f.description.contains("the target refused this daemon's certificate: it has expired"))
        // Text that reads like an alert but is not one explains nothing.
        let plain = TLSError("TLS connection to p: ALERT_UNKNOWN_CA", kind: .connection)
        #expect(Engine.peerFailure("s", plain).description == "s: TLS connection to p: ALERT_UNKNOWN_CA")
        let unknownCA = TLSError("TLS handshake with p failed: tlsv1 alert unknown ca", kind: .handshake, alert: .unknownCA)
        #expect(Engine.peerFailure("s", unknownCA).code == .untrusted)
        #expect(Engine.peerFailure("s", unknownCA).description.contains("does not trust the CA"))
        #expect(Engine.peerFailure("s", TLSError("TLS connection to p is closed", kind: .closed)).description.contains("may have refused"))
    }
}
