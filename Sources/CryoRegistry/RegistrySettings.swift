import CryoLinux
import Glibc
import NIOSSL

/// How cryod reaches registries: which hosts are insecure, where per-host CAs live.
///
/// - Loopback (`localhost`, 127.0.0.0/8, ::1) is insecure as in dockerd, and so is every
///   `--insecure-registry` entry (`host[:port]` or an IPv4 CIDR): TLS without verification,
///   then plain HTTP if TLS does not answer.
/// - Every other host is HTTPS only, verified against the system CAs plus
///   `<certsDir>/<host:port>/*.crt` (dockerd's certs.d convention, at /etc/cryo/certs.d).
/// - One difference from dockerd: a CA in certs.d for an insecure host is used (and TLS then
///   verified) rather than ignored — someone who put it there asked for it.
public struct RegistrySettings: Sendable {
    public var insecureRegistries: [String]
    public var certsDir: String
    /// `--only-local-registries`: contact loopback and `--insecure-registry` hosts only, and
    /// refuse every other registry (Docker Hub included) without sending anything. For
    /// machines that must not reach out, the test suites among them: the docker CLI pulls
    /// on its own when `docker run` names a missing image.
    public var onlyLocal: Bool
    /// `--registry-mirror` (`registry-mirrors`): HOST[:PORT]s asked, in order, for Docker Hub
    /// images before Docker Hub itself (pulls only, as in dockerd).
    public var mirrors: [String]
    /// The mirrors given as http:// (the others as https://).
    public var plainMirrors: Set<String>

    public init(insecureRegistries: [String] = [], certsDir: String = "/etc/cryo/certs.d", onlyLocal: Bool = false,
                mirrors: [String] = [], plainMirrors: Set<String> = []) {
        self.insecureRegistries = insecureRegistries
        self.certsDir = certsDir
        self.onlyLocal = onlyLocal
        self.mirrors = mirrors
        self.plainMirrors = plainMirrors
    }

    /// The mirrors as URLs, as they were configured (`docker info`'s list).
    public var mirrorURLs: [String] { mirrors.map { (plainMirrors.contains($0) ? "http://" : "https://") + $0 + "/" } }

    /// A `--registry-mirror` as dockerd takes it: `https://HOST[:PORT]` or `http://HOST[:PORT]`,
    /// with at most a "/" after it. Returns (HOST[:PORT], whether it is plain http).
    public static func validateMirror(_ url: String) throws -> (hostPort: String, plain: Bool) {
        func bad(_ why: String) -> CryoFailure {
            CryoFailure(.invalidArgument, "registry mirror \"\(url)\": \(why)")
        }
        let plain: Bool
        var rest: Substring
        if url.hasPrefix("https://") {
            plain = false
            rest = url.dropFirst(8)
        } else if url.hasPrefix("http://") {
            plain = true
            rest = url.dropFirst(7)
        } else {
            throw bad("a mirror is a URL with a scheme, https://HOST[:PORT] or http://HOST[:PORT]")
        }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        if rest.contains("/") || rest.contains("?") || rest.contains("#") {
            throw bad("a path, query or fragment is not supported (the mirror serves /v2/ at its root)")
        }
        if rest.contains("@") { throw bad("credentials in the URL are not supported") }
        guard !rest.isEmpty, rest.utf8.allSatisfy({ RegistryReference.isHostByte($0) }) else {
            throw bad("expected HOST[:PORT] after the scheme")
        }
        return (String(rest), plain)
    }

    /// Where a pull of `ref` is tried, in order: the mirrors for a Docker Hub image, then the
    /// image's own registry.
    public func pullHosts(for ref: RegistryReference) -> [String] {
        ref.domain == "docker.io" ? mirrors + [ref.endpointHost] : [ref.endpointHost]
    }

    /// Refuses an `--insecure-registry` entry that is neither `host[:port]` nor a CIDR.
    public static func validateInsecureEntry(_ entry: String) throws -> String {
        var e = entry
        for p in ["http://", "https://"] where e.hasPrefix(p) { e.removeFirst(p.count) }
        if e.hasSuffix("/") { e.removeLast() }
        if let slash = e.firstIndex(of: "/") {
            guard parseIPv4(String(e[..<slash])) != nil, let bits = Int(e[e.index(after: slash)...]), (0...32).contains(bits) else {
                throw CryoFailure(.invalidArgument, "--insecure-registry \"\(entry)\": a CIDR must be an IPv4 network like 10.0.0.0/8")
            }
            return e
        }
        guard !e.isEmpty, e.utf8.allSatisfy({ RegistryReference.isHostByte($0) }) else {
            throw CryoFailure(.invalidArgument, "--insecure-registry \"\(entry)\": expected HOST[:PORT] or an IPv4 CIDR")
        }
        return e
    }

    /// Whether `hostPort` ("127.0.0.1:5000", "reg.example:443") gets dockerd's insecure treatment.
    public func isInsecure(_ hostPort: String) -> Bool {
        let host = Self.hostOnly(hostPort)
        if host == "localhost" || host == "::1" { return true }
        if let ip = Self.parseIPv4(host), ip >> 24 == 127 { return true }
        for entry in insecureRegistries {
            if entry == hostPort || entry == host { return true }
            if let slash = entry.firstIndex(of: "/"), let net = Self.parseIPv4(String(entry[..<slash])),
               let bits = UInt32(entry[entry.index(after: slash)...]), let ip = Self.parseIPv4(host) {
                let mask: UInt32 = bits == 0 ? 0 : ~UInt32(0) << (32 - bits)
                if ip & mask == net & mask { return true }
            }
        }
        return false
    }

    /// The CA files for a host: `<certsDir>/<host:port>/*.crt`.
    public func caFiles(for hostPort: String) -> [String] {
        let dir = certsDir + "/" + hostPort
        guard let names = try? FS.listDirectory(dir) else { return [] }
        return names.filter { $0.hasSuffix(".crt") }.sorted().map { dir + "/" + $0 }
    }

    /// The TLS settings for a host: verified against the system CAs and certs.d, or (insecure
    /// and no CA given) not verified at all.
    public func tlsConfiguration(for hostPort: String) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        let cas = caFiles(for: hostPort)
        if !cas.isEmpty {
            // Loaded here, not named by path: the client caches TLS contexts by configuration,
            // so a replaced file must make a different configuration.
            for ca in cas {
                do { tls.additionalTrustRoots.append(.certificates(try NIOSSLCertificate.fromPEMFile(ca))) } catch {
                    throw CryoFailure(.invalidArgument, "the CA file \(ca) for registry \(hostPort) cannot be read as PEM certificates: \(error)")
                }
            }
        } else if isInsecure(hostPort) {
            tls.certificateVerification = .none
        }
        return tls
    }

    /// Whether plain HTTP may be tried after TLS failed to answer.
    public func allowsPlainHTTP(_ hostPort: String) -> Bool { isInsecure(hostPort) && caFiles(for: hostPort).isEmpty }

    static func hostOnly(_ hostPort: String) -> String {
        if hostPort.hasPrefix("["), let close = hostPort.firstIndex(of: "]") {
            return String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
        }
        if let colon = hostPort.lastIndex(of: ":"), hostPort.filter({ $0 == ":" }).count == 1 {
            return String(hostPort[..<colon])
        }
        return hostPort
    }

    static func parseIPv4(_ s: String) -> UInt32? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard let n = UInt32(p), n < 256, !p.isEmpty else { return nil }
            v = v << 8 | n
        }
        return v
    }
}
