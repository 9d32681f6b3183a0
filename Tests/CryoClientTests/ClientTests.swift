@testable import CryoClient
import Foundation
import Testing

@Suite struct ResponseParsingTests {
    func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func headWithContentLength() throws {
        let raw = bytes("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        let (head, used) = try #require(try HTTPResponseHead.parse(raw))
        #expect(head.status == 200)
        #expect(head.reason == "OK")
        #expect(head.header("content-type") == "application/json")
        #expect(head.framing(requestMethod: "GET") == .length(2))
        #expect(Array(raw[used...]) == bytes("{}"))
    }

    @Test func incompleteHeadAndBadStatusLine() throws {
        #expect(try HTTPResponseHead.parse(bytes("HTTP/1.1 200 OK\r\nContent-Le")) == nil)
        #expect(throws: (any Error).self) { try HTTPResponseHead.parse(bytes("SPDY 200\r\n\r\n")) }
        #expect(throws: (any Error).self) { try HTTPResponseHead.parse(bytes("HTTP/1.1 200 OK\r\nno colon\r\n\r\n")) }
    }

    @Test func framingRules() throws {
        func head(_ s: String) throws -> HTTPResponseHead { try #require(try HTTPResponseHead.parse(bytes(s))).head }
        #expect(try head("HTTP/1.1 204 No Content\r\n\r\n").framing(requestMethod: "POST") == .none)
        #expect(try head("HTTP/1.1 304 Not Modified\r\n\r\n").framing(requestMethod: "POST") == .none)
        #expect(try head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").framing(requestMethod: "HEAD") == .none)
        #expect(try head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").framing(requestMethod: "GET") == .chunked)
        #expect(try head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").framing(requestMethod: "GET") == .none)
        #expect(try head("HTTP/1.1 200 OK\r\n\r\n").framing(requestMethod: "GET") == .untilClose)
        let up = try head("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        #expect(up.status == 101)
        #expect(up.reason == "UPGRADED")
        #expect(up.header("upgrade") == "tcp")
    }

    @Test func chunkedBodyFedByteByByte() throws {
        let body = bytes("4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\nNEXT")
        var d = ChunkedDecoder()
        var out: [UInt8] = []
        for b in body { out += try d.feed([b]) }
        #expect(String(decoding: out, as: UTF8.self) == "Wikipedia in\r\n\r\nchunks.")
        #expect(d.isDone)
        #expect(d.leftover == bytes("NEXT"))
    }

    @Test func chunkedBodyInOnePieceAndErrors() throws {
        var d = ChunkedDecoder()
        #expect(try d.feed(bytes("3\r\nabc\r\n0\r\n\r\n")) == bytes("abc"))
        #expect(d.isDone)
        var bad = ChunkedDecoder()
        #expect(throws: (any Error).self) { try bad.feed(bytes("zz\r\nabc\r\n")) }
        var noCRLF = ChunkedDecoder()
        #expect(throws: (any Error).self) { try noCRLF.feed(bytes("3\r\nabcXY")) }
    }

    @Test func daemonErrorMessage() {
        let e = DaemonClient.error(status: 404, body: bytes(#"{"message":"No such container: x"}"# + "\n"))
        #expect(e.description == "Error response from daemon: No such container: x")
        #expect(e.isNotFound)
        #expect(DaemonClient.error(status: 500, body: bytes("boom\n")).description == "Error response from daemon: boom")
    }

    @Test func targetAndQueryEncoding() {
        #expect(DaemonClient.target("/containers/json", [("all", "1")]) == "/v1.50/containers/json?all=1")
        #expect(DaemonClient.target("/containers/c/start", [("checkpoint-dir", "/x y")]) == "/v1.50/containers/c/start?checkpoint-dir=%2Fx%20y")
    }

    @Test func hostResolution() throws {
        #expect(DaemonClient.resolveHost(flag: "unix:///a", environment: ["CRYO_HOST": "unix:///b"]) == "unix:///a")
        #expect(DaemonClient.resolveHost(flag: nil, environment: ["CRYO_HOST": "unix:///b"]) == "unix:///b")
        #expect(DaemonClient.resolveHost(flag: nil, environment: [:]) == "unix:///run/cryo/cryo.sock")
        #expect(throws: (any Error).self) { try DaemonClient(host: "tcp://1.2.3.4:2375") }
        #expect(try DaemonClient(host: "unix:///tmp/x.sock").socketPath == "/tmp/x.sock")
    }

    @Test func requestHead() throws {
        let c = try DaemonClient(host: "unix:///tmp/x.sock")
        let post = String(decoding: c.requestHead("POST", "/v1.50/containers/c/start", headers: [], bodyLength: nil), as: UTF8.self)
        #expect(post.hasPrefix("POST /v1.50/containers/c/start HTTP/1.1\r\n"))
        #expect(post.contains("Content-Length: 0\r\n"))
        #expect(post.hasSuffix("\r\n\r\n"))
        let up = String(decoding: c.requestHead("POST", "/x", headers: [], bodyLength: nil, chunked: true), as: UTF8.self)
        #expect(up.contains("Transfer-Encoding: chunked\r\n"))
        #expect(!up.contains("Content-Length"))
    }
}

@Suite struct DemuxTests {
    @Test func framesSplitAcrossReads() throws {
        let stream = FrameDemuxer.encode(.stdout, Array("hello\n".utf8)) + FrameDemuxer.encode(.stderr, Array("oops\n".utf8))
            + FrameDemuxer.encode(.stdout, [])
        var d = FrameDemuxer()
        var got: [(FrameDemuxer.Stream, String)] = []
        for b in stream {
            d.feed([b])
            while let (k, p) = try d.next() { got.append((k, String(decoding: p, as: UTF8.self))) }
        }
        #expect(got.map(\.0) == [.stdout, .stderr, .stdout])
        #expect(got.map(\.1) == ["hello\n", "oops\n", ""])
        #expect(d.pending == 0)
    }

    @Test func largeFrameLengthIsBigEndian() throws {
        let payload = [UInt8](repeating: 7, count: 70000)
        let f = FrameDemuxer.encode(.stderr, payload)
        #expect(Array(f[0..<8]) == [2, 0, 0, 0, 0, 1, 0x11, 0x70])
        var d = FrameDemuxer()
        d.feed(f)
        let (k, p) = try #require(try d.next())
        #expect(k == .stderr)
        #expect(p.count == 70000)
    }

    @Test func unknownStreamTypeIsAnError() throws {
        var d = FrameDemuxer()
        d.feed(Array("hi there!".utf8))
        if let e = #expect(throws: (any Error).self, performing: { try d.next() }) {
            #expect("\(e)" == "protocol error: Unrecognized input header: 104")
        }
    }

    @Test func outputSinkSendsStreamsToTheirFileDescriptors() throws {
        var outFDs: [Int32] = [0, 0], errFDs: [Int32] = [0, 0]
        #expect(pipe(&outFDs) == 0)
        #expect(pipe(&errFDs) == 0)
        var sink = OutputSink(tty: false, stdout: outFDs[1], stderr: errFDs[1])
        let data = FrameDemuxer.encode(.stdout, Array("out".utf8)) + FrameDemuxer.encode(.stderr, Array("err".utf8))
        try sink.feed(Array(data[0..<5]))
        try sink.feed(Array(data[5...]))
        close(outFDs[1]); close(errFDs[1])
        #expect(readAll(outFDs[0]) == "out")
        #expect(readAll(errFDs[0]) == "err")
        var sys = OutputSink(tty: false, stdout: -1, stderr: -1)
        #expect(throws: (any Error).self) { try sys.feed(FrameDemuxer.encode(.systemError, Array("bad".utf8))) }
    }

    func readAll(_ fd: Int32) -> String {
        var buf = [UInt8](repeating: 0, count: 100)
        let n = read(fd, &buf, 100)
        close(fd)
        return String(decoding: buf[0..<max(n, 0)], as: UTF8.self)
    }
}

@Suite struct FormatTests {
    @Test func sizesAndDurations() {
        #expect(Format.size(4_264_960) == "4.26MB")
        #expect(Format.size(999) == "999B")
        #expect(Format.size(1_200_000_000) == "1.2GB")
        #expect(Format.size(42_000) == "42kB")
        #expect(Format.duration(seconds: 0.5) == "Less than a second")
        #expect(Format.duration(seconds: 1) == "1 second")
        #expect(Format.duration(seconds: 59) == "59 seconds")
        #expect(Format.duration(seconds: 90) == "About a minute")
        #expect(Format.duration(seconds: 600) == "10 minutes")
        #expect(Format.duration(seconds: 3600) == "About an hour")
        #expect(Format.duration(seconds: 5 * 86400) == "5 days")
        #expect(Format.millis(12.345) == "12.3 ms")
        #expect(Format.millis(1.5) == "1.50 ms")
        #expect(Format.millis(2500) == "2.50 s")
    }

    @Test func tableEllipsisAndIDs() {
        #expect(Format.table([["CONTAINER ID", "NAMES"], ["abc", "c1"]]) == "CONTAINER ID   NAMES\nabc            c1\n")
        #expect(Format.table([["A", "B"], ["x", "y"]]) == "A         B\nx         y\n")
        #expect(Format.ellipsis("sh -c 'while true; do date; done'", 20) == "sh -c 'while true; …")
        #expect(Format.shortID("sha256:0123456789abcdef") == "0123456789ab")
        #expect(Format.splitReference("busybox") == ("busybox", "latest"))
        #expect(Format.splitReference("localhost:5000/busybox:1.36") == ("localhost:5000/busybox", "1.36"))
    }

    @Test func indentJSON() {
        let s = Format.indentJSON(Array(#"[{"Id":"a,b","Args":[],"State":{"Running":true,"S":"{x}"}}]"#.utf8))
        #expect(s == """
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

    @Test func checkpointSummary() throws {
        let json = #"{"name":"cp1","container":"abc","directory":"/d","leftRunning":true,"durationMs":81.25,"bytesWritten":2048000,"criu":{"freezingTimeUs":1200,"frozenTimeUs":40000,"memdumpTimeUs":9000,"memwriteTimeUs":8000,"pagesScanned":5000,"pagesWritten":500}}"#
        let r = try JSONDecoder().decode(CheckpointReportJSON.self, from: Data(json.utf8))
        #expect(r.summary == "checkpoint cp1: freeze 1.20 ms, frozen 40.0 ms, memory dump 9.00 ms, memory write 8.00 ms, 500 pages written of 5000 scanned, 2.05MB written; total 81.3 ms, container left running")
    }
}
