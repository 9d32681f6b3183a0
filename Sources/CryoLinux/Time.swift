import Glibc

/// Now as RFC 3339 with nanoseconds, UTC — what runc prints for "created" and what
/// Docker's JSON carries (StartedAt, log lines).
public func rfc3339Now() -> String {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    var t = ts.tv_sec
    var tmv = tm()
    gmtime_r(&t, &tmv)
    func pad(_ v: Int, _ w: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
    return "\(pad(Int(tmv.tm_year) + 1900, 4))-\(pad(Int(tmv.tm_mon) + 1, 2))-\(pad(Int(tmv.tm_mday), 2))T"
        + "\(pad(Int(tmv.tm_hour), 2)):\(pad(Int(tmv.tm_min), 2)):\(pad(Int(tmv.tm_sec), 2)).\(pad(ts.tv_nsec, 9))Z"
}

/// 64 random hex digits: Docker-style ids for containers, execs and networks.
public func randomHexID() -> String {
    var g = SystemRandomNumberGenerator()
    let hex = Array("0123456789abcdef")
    return String((0..<64).map { _ in hex[Int(g.next() % 16)] })
}
