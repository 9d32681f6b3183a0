@testable import CryoEngine
import FoundationEssentials
import Testing

/// The pure parts of `docker events`: event JSON, filter parsing and matching, since/until
/// parsing, the ring buffer and subscriptions.
@Suite struct EventBusTests {
    func ev(_ type: String, _ action: String, _ id: String, _ attrs: [String: String] = [:], t: Int64 = 1) -> EngineEvent {
        EngineEvent(type: type, action: action, actorID: id, attributes: attrs, timeNano: t)
    }

    @Test func containerEventHasDockerdFieldsAndLegacyOnes() throws {
        let line = ev("container", "die", "abc", ["image": "busybox", "name": "x", "exitCode": "3"], t: 1_700_000_000_123_456_789).jsonLine()
        #expect(line.hasSuffix("}\n"))
        let obj = try JSONDecoder().decode([String: JSONAny].self, from: Data(line.utf8))
        #expect(obj["status"] == .s("die") && obj["id"] == .s("abc") && obj["from"] == .s("busybox"))
        #expect(obj["Type"] == .s("container") && obj["Action"] == .s("die") && obj["scope"] == .s("local"))
        #expect(obj["time"] == .n(1_700_000_000) && obj["timeNano"] == .n(1_700_000_000_123_456_789))
        #expect(!ev("network", "create", "n1").jsonLine().contains("\"status\""))
    }

    @Test func filtersParseBothFormsAndRefuseUnknownNames() throws {
        let f = try EventFilter.parse(#"{"type":{"container":true},"event":["start","die"]}"#)
        #expect(f.values["type"] == ["container"] && f.values["event"] == ["start", "die"])
        #expect(throws: (any Error).self) { try EventFilter.parse(#"{"bogus":["x"]}"#) }
        #expect(throws: (any Error).self) { try EventFilter.parse(#"{"type":["nope"]}"#) }
        #expect(throws: (any Error).self) { try EventFilter.parse("not json") }
    }

    @Test func filterMatching() throws {
        let f = try EventFilter.parse(#"{"type":["container"],"event":["die","start"],"container":["web"],"label":["app=1"]}"#)
        #expect(f.matches(ev("container", "die", "abc", ["name": "web", "app": "1"])))
        #expect(!f.matches(ev("container", "die", "abc", ["name": "web", "app": "2"])))
        #expect(!f.matches(ev("container", "stop", "abc", ["name": "web", "app": "1"])))
        #expect(!f.matches(ev("network", "die", "abc", ["name": "web", "app": "1"])))
        let byID = try EventFilter.parse(#"{"container":["ab"]}"#)
        #expect(byID.matches(ev("container", "start", "abc")))
        let exec = try EventFilter.parse(#"{"event":["exec_start"]}"#)
        #expect(exec.matches(ev("container", "exec_start: sh", "abc")))
        let img = try EventFilter.parse(#"{"image":["busybox"]}"#)
        #expect(img.matches(ev("container", "start", "abc", ["image": "busybox:latest"])))
        #expect(img.matches(ev("image", "tag", "sha256:1", ["name": "busybox"])))
    }

    @Test func timesAsTheCLISendsThem() throws {
        #expect(try EventTime.parse("1700000000", now: 0, name: "since") == 1_700_000_000_000_000_000)
        #expect(try EventTime.parse("1700000000.5", now: 0, name: "since") == 1_700_000_000_500_000_000)
        #expect(try EventTime.parse("1700000000.000000001", now: 0, name: "since") == 1_700_000_000_000_000_001)
        #expect(try EventTime.parse("10m", now: 1000, name: "since") == 400_000_000_000)
        #expect(try EventTime.parse(nil, now: 0, name: "since") == nil)
        #expect(throws: (any Error).self) { try EventTime.parse("yesterday", now: 0, name: "since") }
    }

    @Test func ringKeepsTheLastEvents() {
        let bus = EventBus(capacity: 3)
        for i in 1...5 { bus.publish(ev("container", "start", "c\(i)", t: Int64(i))) }
        #expect(bus.history().map(\.actorID) == ["c3", "c4", "c5"])
    }

    @Test func subscriberGetsPastThenLiveUntilUntil() async {
        let bus = EventBus()
        bus.publish(ev("container", "create", "a", t: 10))
        bus.publish(ev("container", "start", "a", t: 20))
        let stream = bus.subscribe(filter: EventFilter(), since: 15, until: 100, now: 30)
        bus.publish(ev("container", "die", "a", t: 40))
        bus.publish(ev("container", "destroy", "a", t: 200))  // past until: ends the stream
        var got: [String] = []
        for await e in stream { got.append(e.action) }
        #expect(got == ["start", "die"])
        #expect(bus.subscriberCount == 0)
    }

    @Test func untilInThePastGivesOnlyHistory() async {
        let bus = EventBus()
        bus.publish(ev("container", "create", "a", t: 10))
        var got: [String] = []
        for await e in bus.subscribe(filter: EventFilter(), since: 0, until: 20, now: 30) { got.append(e.action) }
        #expect(got == ["create"] && bus.subscriberCount == 0)
    }

    @Test func aCancelledSubscriberIsRemoved() async {
        let bus = EventBus()
        let task = Task { for await _ in bus.subscribe(filter: EventFilter(), since: nil, until: nil) {} }
        while bus.subscriberCount == 0 { await Task.yield() }
        task.cancel()
        await task.value
        #expect(bus.subscriberCount == 0)
    }

    @Test func aSubscriberThatFallsBehindIsEndedNotBlocking() async {
        let bus = EventBus(capacity: 2, bufferLimit: 2)
        let stream = bus.subscribe(filter: EventFilter(), since: nil, until: nil)
        for i in 1...10 { bus.publish(ev("container", "start", "c\(i)", t: Int64(i))) }
        #expect(bus.subscriberCount == 0)
        var n = 0
        for await _ in stream { n += 1 }
        #expect(n == 4)
    }
}

enum JSONAny: Decodable, Equatable {
    case s(String), n(Int64), other
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(Int64.self) { self = .n(v) } else if let v = try? c.decode(String.self) { self = .s(v) } else { self = .other }
    }
}
