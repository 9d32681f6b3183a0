@testable import CryoClient
import Foundation
import XCTest

final class ResponseParsingTests: XCTestCase {
    func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    func testHeadWithContentLength() throws {
        let raw = bytes("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        let (head, used) = try XCTUnwrap(try HTTPResponseHead.parse(raw))
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.reason, "OK")
        XCTAssertEqual(head.header("content-type"), "application/json")
        XCTAssertEqual(head.framing(requestMethod: "GET"), .length(2))
        XCTAssertEqual(Array(raw[used...]), bytes("{}"))
    }

    func testIncompleteHeadAndBadStatusLine() throws {
        XCTAssertNil(try HTTPResponseHead.parse(bytes("HTTP/1.1 200 OK\r\nContent-Le")))
        XCTAssertThrowsError(try HTTPResponseHead.parse(bytes("SPDY 200\r\n\r\n")))
        XCTAssertThrowsError(try HTTPResponseHead.parse(bytes("HTTP/1.1 200 OK\r\nno colon\r\n\r\n")))
    }

    func testFramingRules() throws {
        func head(_ s: String) throws -> HTTPResponseHead { try XCTUnwrap(try HTTPResponseHead.parse(bytes(s))).head }
        XCTAssertEqual(try head("HTTP/1.1 204 No Content\r\n\r\n").framing(requestMethod: "POST"), .none)
        XCTAssertEqual(try head("HTTP/1.1 304 Not Modified\r\n\r\n").framing(requestMethod: "POST"), .none)
        XCTAssertEqual(try head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").framing(requestMethod: "HEAD"), .none)
        XCTAssertEqual(try head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").framing(requestMethod: "GET"), .chunked)
        XCTAssertEqual(try head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").framing(requestMethod: "GET"), .none)
        XCTAssertEqual(try head("HTTP/1.1 200 OK\r\n\r\n").framing(requestMethod: "GET"), .untilClose)
        let up = try head("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        XCTAssertEqual(up.status, 101)
        XCTAssertEqual(up.reason, "UPGRADED")
        XCTAssertEqual(up.header("upgrade"), "tcp")
    }

    func testChunkedBodyFedByteByByte() throws {
        let body = bytes("4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\nNEXT")
        var d = ChunkedDecoder()
        var out: [UInt8] = []
        for b in body { out += try d.feed([b]) }
        XCTAssertEqual(String(decoding: out, as: UTF8.self), "Wikipedia in\r\n\r\nchunks.")
        XCTAssertTrue(d.isDone)
        XCTAssertEqual(d.leftover, bytes("NEXT"))
    }

    func testChunkedBodyInOnePieceAndErrors() throws {
        var d = ChunkedDecoder()
        XCTAssertEqual(try d.feed(bytes("3\r\nabc\r\n0\r\n\r\n")), bytes("abc"))
        XCTAssertTrue(d.isDone)
        var bad = ChunkedDecoder()
        XCTAssertThrowsError(try bad.feed(bytes("zz\r\nabc\r\n")))
        var noCRLF = ChunkedDecoder()
        XCTAssertThrowsError(try noCRLF.feed(bytes("3\r\nabcXY")))
    }

    func testDaemonErrorMessage() {
        let e = DaemonClient.error(status: 404, body: bytes(#"{"message":"No such container: x"}"# + "\n"))
        XCTAssertEqual(e.description, "Error response from daemon: No such container: x")
        XCTAssertTrue(e.isNotFound)
        XCTAssertEqual(DaemonClient.error(status: 500, body: bytes("boom\n")).description, "Error response from daemon: boom")
    }

    func testTargetAndQueryEncoding() {
        XCTAssertEqual(DaemonClient.target("/containers/json", [("all", "1")]), "/v1.50/containers/json?all=1")
        XCTAssertEqual(DaemonClient.target("/containers/c/start", [("checkpoint-dir", "/x y")]),
                       "/v1.50/containers/c/start?checkpoint-dir=%2Fx%20y")
    }

    func testHostResolution() {
        XCTAssertEqual(DaemonClient.resolveHost(flag: "unix:///a", environment: ["CRYO_HOST": "unix:///b"]), "unix:///a")
        XCTAssertEqual(DaemonClient.resolveHost(flag: nil, environment: ["CRYO_HOST": "unix:///b"]), "unix:///b")
        XCTAssertEqual(DaemonClient.resolveHost(flag: nil, environment: [:]), "unix:///run/cryo/cryo.sock")
        XCTAssertThrowsError(try DaemonClient(host: "tcp://1.2.3.4:2375"))
        XCTAssertEqual(try DaemonClient(host: "unix:///tmp/x.sock").socketPath, "/tmp/x.sock")
    }

    func testRequestHead() throws {
        let c = try DaemonClient(host: "unix:///tmp/x.sock")
        let post = String(decoding: c.requestHead("POST", "/v1.50/containers/c/start", headers: [], bodyLength: nil), as: UTF8.self)
        XCTAssertTrue(post.hasPrefix("POST /v1.50/containers/c/start HTTP/1.1\r\n"))
        XCTAssertTrue(post.contains("Content-Length: 0\r\n"))
        XCTAssertTrue(post.hasSuffix("\r\n\r\n"))
        let up = String(decoding: c.requestHead("POST", "/x", headers: [], bodyLength: nil, chunked: true), as: UTF8.self)
        XCTAssertTrue(up.contains("Transfer-Encoding: chunked\r\n"))
        XCTAssertFalse(up.contains("Content-Length"))
    }
}

final class DemuxTests: XCTestCase {
    func testFramesSplitAcrossReads() throws {
        let stream = FrameDemuxer.encode(.stdout, Array("hello\n".utf8)) + FrameDemuxer.encode(.stderr, Array("oops\n".utf8))
            + FrameDemuxer.encode(.stdout, [])
        var d = FrameDemuxer()
        var got: [(FrameDemuxer.Stream, String)] = []
        for b in stream {
            d.feed([b])
            while let (k, p) = try d.next() { got.append((k, String(decoding: p, as: UTF8.self))) }
        }
        XCTAssertEqual(got.map(\.0), [.stdout, .stderr, .stdout])
        XCTAssertEqual(got.map(\.1), ["hello\n", "oops\n", ""])
        XCTAssertEqual(d.pending, 0)
    }

    func testLargeFrameLengthIsBigEndian() throws {
        let payload = [UInt8](repeating: 7, count: 70000)
        let f = FrameDemuxer.encode(.stderr, payload)
        XCTAssertEqual(Array(f[0..<8]), [2, 0, 0, 0, 0, 1, 0x11, 0x70])
        var d = FrameDemuxer()
        d.feed(f)
        let (k, p) = try XCTUnwrap(try d.next())
        XCTAssertEqual(k, .stderr)
        XCTAssertEqual(p.count, 70000)
    }

    func testUnknownStreamTypeIsAnError() {
        var d = FrameDemuxer()
        d.feed(Array("hi there!".utf8))
        XCTAssertThrowsError(try d.next()) { e in
            XCTAssertEqual("\(e)", "protocol error: Unrecognized input header: 104")
        }
    }

    func testOutputSinkSendsStreamsToTheirFileDescriptors() throws {
        var outFDs: [Int32] = [0, 0], errFDs: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&outFDs), 0)
        XCTAssertEqual(pipe(&errFDs), 0)
        var sink = OutputSink(tty: false, stdout: outFDs[1], stderr: errFDs[1])
        let data = FrameDemuxer.encode(.stdout, Array("out".utf8)) + FrameDemuxer.encode(.stderr, Array("err".utf8))
        try sink.feed(Array(data[0..<5]))
        try sink.feed(Array(data[5...]))
        close(outFDs[1]); close(errFDs[1])
        XCTAssertEqual(readAll(outFDs[0]), "out")
        XCTAssertEqual(readAll(errFDs[0]), "err")
        var sys = OutputSink(tty: false, stdout: -1, stderr: -1)
        XCTAssertThrowsError(try sys.feed(FrameDemuxer.encode(.systemError, Array("bad".utf8))))
    }

    func readAll(_ fd: Int32) -> String {
        var buf = [UInt8](repeating: 0, count: 100)
        let n = read(fd, &buf, 100)
        close(fd)
        return String(decoding: buf[0..<max(n, 0)], as: UTF8.self)
    }
}

final class FormatTests: XCTestCase {
    func testSizesAndDurations() {
        XCTAssertEqual(Format.size(4_264_960), "4.26MB")
        XCTAssertEqual(Format.size(999), "999B")
        XCTAssertEqual(Format.size(1_200_000_000), "1.2GB")
        XCTAssertEqual(Format.size(42_000), "42kB")
        XCTAssertEqual(Format.duration(seconds: 0.5), "Less than a second")
        XCTAssertEqual(Format.duration(seconds: 1), "1 second")
        XCTAssertEqual(Format.duration(seconds: 59), "59 seconds")
        XCTAssertEqual(Format.duration(seconds: 90), "About a minute")
        XCTAssertEqual(Format.duration(seconds: 600), "10 minutes")
        XCTAssertEqual(Format.duration(seconds: 3600), "About an hour")
        XCTAssertEqual(Format.duration(seconds: 5 * 86400), "5 days")
        XCTAssertEqual(Format.millis(12.345), "12.3 ms")
        XCTAssertEqual(Format.millis(1.5), "1.50 ms")
        XCTAssertEqual(Format.millis(2500), "2.50 s")
    }

    func testTableEllipsisAndIDs() {
        XCTAssertEqual(Format.table([["CONTAINER ID", "NAMES"], ["abc", "c1"]]), "CONTAINER ID   NAMES\nabc            c1\n")
        XCTAssertEqual(Format.table([["A", "B"], ["x", "y"]]), "A         B\nx         y\n")
        XCTAssertEqual(Format.ellipsis("sh -c 'while true; do date; done'", 20), "sh -c 'while true; …")
        XCTAssertEqual(Format.shortID("sha256:0123456789abcdef"), "0123456789ab")
        XCTAssertTrue(Format.splitReference("busybox") == ("busybox", "latest"))
        XCTAssertTrue(Format.splitReference("localhost:5000/busybox:1.36") == ("localhost:5000/busybox", "1.36"))
    }

    func testIndentJSON() {
        let s = Format.indentJSON(Array(#"[{"Id":"a,b","Args":[],"State":{"Running":true,"S":"{x}"}}]"#.utf8))
        XCTAssertEqual(s, """
        [
            {
                "Id": "a,b",
                "Args": [],
                "State": {
                    "Running": true,
                    "S": "{x}"
                }
            }
        ]
        """)
    }

    func testCheckpointSummary() throws {
        let json = #"{"name":"cp1","container":"abc","directory":"/d","leftRunning":true,"durationMs":81.25,"bytesWritten":2048000,"criu":{"freezingTimeUs":1200,"frozenTimeUs":40000,"memdumpTimeUs":9000,"memwriteTimeUs":8000,"pagesScanned":5000,"pagesWritten":500}}"#
        let r = try JSONDecoder().decode(CheckpointReportJSON.self, from: Data(json.utf8))
        XCTAssertEqual(r.summary, "checkpoint cp1: freeze 1.20 ms, frozen 40.0 ms, memory dump 9.00 ms, memory write 8.00 ms, 500 pages written of 5000 scanned, 2.05MB written; total 81.3 ms, container left running")
    }
}
