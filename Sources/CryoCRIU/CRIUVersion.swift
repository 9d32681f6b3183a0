import CRIURPC
import CryoLinux

/// CRIU's version as runc and go-criu compute it: major*10000 + minor*100 + sublevel.
public struct CRIUVersion: Comparable, CustomStringConvertible, Sendable {
    public let major: Int, minor: Int, sublevel: Int
    public let gitID: String?

    public init(major: Int, minor: Int, sublevel: Int, gitID: String? = nil) {
        self.major = major
        self.minor = minor
        self.sublevel = sublevel
        self.gitID = gitID
    }

    init(_ v: criu_version) {
        self.init(major: Int(v.majorNumber), minor: Int(v.minorNumber), sublevel: Int(v.sublevel),
                  gitID: v.hasGitid ? v.gitid : nil)
    }

    public var number: Int { major * 10000 + minor * 100 + sublevel }
    public var description: String { "\(major).\(minor)" + (sublevel > 0 ? ".\(sublevel)" : "") + (gitID.map { " (\($0))" } ?? "") }
    public static func < (a: CRIUVersion, b: CRIUVersion) -> Bool { a.number < b.number }
    /// Versions compare by number; the git id is informational.
    public static func == (a: CRIUVersion, b: CRIUVersion) -> Bool { a.number == b.number }

    /// The oldest CRIU cryo accepts, and why.
    public static let minimum = CRIUVersion(major: 4, minor: 2, sublevel: 0)

    public func checkSupported() throws {
        if self < CRIUVersion.minimum {
            throw CryoFailure(.unavailable, """
                CRIU \(self) is too old: cryo needs CRIU 4.2 or newer. On kernels 6.13+ CRIU before 4.0 \
                fails on the vDSO layout ("Unexpected rt vDSO area bounds", Debian 12's 3.17), and CRIU 4.1.x \
                cannot dump TCP or UDP sockets on kernels 6.16+ ("Can't get 1:16 opt"). Run scripts/setup.sh \
                to install CRIU 4.2 from Debian trixie/sid.
                """)
        }
    }
}

extension CRIUWorker {
    /// Asks for the version on a kept-open worker, so the same worker then
    /// serves the real request (saves a second `criu swrk` start).
    public func version() throws -> CRIUVersion {
        try requestVersion()
        return try receiveVersion()
    }

    /// Sends the VERSION request without waiting: CRIU answers once it has
    /// initialised (~10-20 ms of kernel probing), which the caller can overlap
    /// with its own preparation before `receiveVersion()`.
    public func requestVersion() throws {
        var req = criu_req()
        req.type = .version
        req.keepOpen = true
        try send(req)
    }

    public func receiveVersion() throws -> CRIUVersion {
        let (resp, _) = try receive()
        guard resp.success, resp.hasVersion else { throw CryoFailure(.internal, "criu did not report its version") }
        return CRIUVersion(resp.version)
    }

    /// Kernel and CRIU support for memory tracking (pre-dump) and lazy pages.
    public func features() throws -> (memTrack: Bool, lazyPages: Bool) {
        var req = criu_req()
        req.type = .featureCheck
        req.keepOpen = true
        var f = criu_features()
        f.memTrack = true
        f.lazyPages = true
        req.features = f
        try send(req)
        let (resp, _) = try receive()
        return (resp.features.memTrack, resp.features.lazyPages)
    }
}
