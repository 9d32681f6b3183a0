import AsyncHTTPClient
import CryoImages
import CryoLinux
import FoundationEssentials
import NIOCore
import NIOHTTP1
import NIOSSL

/// cryod's HTTP client for registries: one connection pool for the daemon's life, TLS per
/// host as `RegistrySettings` says. `session(for:)` finds the endpoint (https, or http for an
/// insecure host whose TLS does not answer), pings `/v2/` and authorizes as the challenge
/// asks (Basic, or a Bearer token from the realm), like dockerd.
public final class RegistryClient: Sendable {
    public let settings: RegistrySettings
    let http: HTTPClient
    /// Manifests and configs are small: anything larger is refused rather than held in memory.
    static let maxDocumentBytes = 8 << 20

    public init(settings: RegistrySettings) {
        self.settings = settings
        var config = HTTPClient.Configuration()
        config.timeout = .init(connect: .seconds(30), read: .seconds(120))
        config.decompression = .disabled
        // A refused or failed connection is an answer (the registry is down, or speaks no
        // TLS): retrying until the deadline would only hide it.
        config.connectionPool.retryConnectionEstablishment = false
        config.redirectConfiguration = .follow(max: 5, allowCycles: false)
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
    }

    public func shutdown() async {
        try? await http.shutdown()
    }

    /// An authorized session on the reference's repository, for `actions` ("pull", "push").
    /// `host`: another endpoint serving the repository (a mirror); the reference's own by default.
    public func session(for ref: RegistryReference, credentials: RegistryCredentials,
                        actions: [String] = ["pull"], host: String? = nil) async throws -> RegistrySession {
        let endpoint = try await connect(host: host ?? ref.endpointHost)
        var s = RegistrySession(client: self, reference: ref, baseURL: endpoint.baseURL, tls: endpoint.tls)
        let ping = endpoint.ping
        guard ping.status == .unauthorized else {
            guard ping.status.code / 100 == 2 else {
                throw CryoFailure(.registryUnreachable, "GET \(endpoint.baseURL)/v2/: the registry answered \(ping.status)")
            }
            return s
        }
        let challenges = AuthChallenge.parse(ping.headers["WWW-Authenticate"])
        if let token = credentials.registrytoken, !token.isEmpty {
            s.authorization = "Bearer " + token
        } else if let bearer = challenges.first(where: { $0.scheme == "bearer" }) {
            let scope = "repository:\(ref.path):\(actions.joined(separator: ","))"
            let token = try await fetchToken(bearer, scope: scope, credentials: credentials, tls: endpoint.tls, forLogin: false)
            s.authorization = "Bearer " + token
        } else if challenges.contains(where: { $0.scheme == "basic" }) {
            guard let (user, password) = credentials.basic else {
                throw CryoFailure(.registryUnauthorized, "Head \"\(s.url("manifests/" + ref.manifestReference))\": no basic auth credentials")
            }
            s.authorization = "Basic " + Base64.encode(Array((user + ":" + password).utf8))
        } else {
            throw CryoFailure(.registryUnauthorized, "GET \(endpoint.baseURL)/v2/: the registry asks for authentication (\(ping.headers["WWW-Authenticate"].joined(separator: ", "))) in a scheme cryo does not speak (Basic and Bearer)")
        }
        return s
    }

    /// `docker login`: checks the credentials against the registry's `/v2/` (Basic) or its
    /// token service (Bearer). Returns normally only when the registry accepted them.
    public func login(_ credentials: RegistryCredentials) async throws {
        var address = credentials.serveraddress ?? ""
        for p in ["https://", "http://"] where address.hasPrefix(p) { address.removeFirst(p.count) }
        if let slash = address.firstIndex(of: "/") { address = String(address[..<slash]) }
        if address.isEmpty || address == "index.docker.io" || address == "docker.io" { address = "registry-1.docker.io" }
        let endpoint = try await connect(host: address)
        let url = endpoint.baseURL + "/v2/"
        func failed(_ status: HTTPResponseStatus) -> CryoFailure {
            CryoFailure(.loginFailed, "login attempt to \(url) failed with status: \(status.code) \(status.reasonPhrase)")
        }
        let ping = endpoint.ping
        if ping.status.code / 100 == 2 { return }
        guard ping.status == .unauthorized else { throw failed(ping.status) }
        let challenges = AuthChallenge.parse(ping.headers["WWW-Authenticate"])
        if let bearer = challenges.first(where: { $0.scheme == "bearer" }) {
            _ = try await fetchToken(bearer, scope: nil, credentials: credentials, tls: endpoint.tls, forLogin: true)
            return
        }
        guard let (user, password) = credentials.basic else {
            throw CryoFailure(.loginFailed, "login to \(url): no username and password given")
        }
        var req = HTTPClientRequest(url: url)
        req.tlsConfiguration = endpoint.tls
        req.headers.add(name: "Authorization", value: "Basic " + Base64.encode(Array((user + ":" + password).utf8)))
        let resp = try await execute(req, what: "GET \(url)")
        _ = try? await resp.body.collect(upTo: Self.maxDocumentBytes)
        guard resp.status.code / 100 == 2 else { throw failed(resp.status) }
    }

    struct Endpoint {
        var baseURL: String
        var tls: TLSConfiguration?
        var ping: HTTPClientResponse
    }

    /// https first; for an insecure host whose TLS does not answer, plain http.
    func connect(host: String) async throws -> Endpoint {
        if settings.onlyLocal && !settings.isInsecure(host) {
            throw CryoFailure(.registryUnreachable, "registry \(host) is not contacted: cryod runs with --only-local-registries (loopback and --insecure-registry hosts only)")
        }
        let tls = try settings.tlsConfiguration(for: host)
        var req = HTTPClientRequest(url: "https://\(host)/v2/")
        req.tlsConfiguration = tls
        do {
            let resp = try await http.execute(req, timeout: .seconds(60))
            _ = try? await resp.body.collect(upTo: Self.maxDocumentBytes)
            return Endpoint(baseURL: "https://\(host)", tls: tls, ping: resp)
        } catch {
            guard settings.allowsPlainHTTP(host) else {
                throw CryoFailure(.registryUnreachable, "GET https://\(host)/v2/ failed", cause: DescribedError(error))
            }
            let plain = HTTPClientRequest(url: "http://\(host)/v2/")
            do {
                let resp = try await http.execute(plain, timeout: .seconds(60))
                _ = try? await resp.body.collect(upTo: Self.maxDocumentBytes)
                return Endpoint(baseURL: "http://\(host)", tls: nil, ping: resp)
            } catch let plainError {
                throw CryoFailure(.registryUnreachable, "registry \(host) cannot be reached: GET https://\(host)/v2/: \(DescribedError(error)); GET http://\(host)/v2/: \(DescribedError(plainError))")
            }
        }
    }

    /// A Bearer token from the challenge's realm (with Basic credentials when there are some).
    func fetchToken(_ challenge: AuthChallenge, scope: String?, credentials: RegistryCredentials,
                    tls: TLSConfiguration?, forLogin: Bool) async throws -> String {
        guard let realm = challenge.parameters["realm"], realm.hasPrefix("https://") || realm.hasPrefix("http://") else {
            throw CryoFailure(.registryUnauthorized, "the registry's Bearer challenge has no usable realm: \(challenge.parameters)")
        }
        var query: [(String, String)] = []
        if let service = challenge.parameters["service"] { query.append(("service", service)) }
        if let scope { query.append(("scope", scope)) }
        let basic = credentials.basic
        if let basic { query.append(("account", basic.user)) }
        if forLogin { query += [("offline_token", "true"), ("client_id", "docker")] }
        let url = realm + (realm.contains("?") ? "&" : "?") + query.map { "\($0)=\(Self.percentEncode($1))" }.joined(separator: "&")
        var req = HTTPClientRequest(url: url)
        if realm.hasPrefix("https://") {
            // The realm's host is a host of its own: its own TLS rules.
            if let host = realm.dropFirst(8).split(separator: "/").first { req.tlsConfiguration = try settings.tlsConfiguration(for: String(host)) }
        }
        if let basic {
            req.headers.add(name: "Authorization", value: "Basic " + Base64.encode(Array((basic.user + ":" + basic.password).utf8)))
        }
        let resp = try await execute(req, what: "GET \(realm)")
        let body = try await collect(resp, what: "the token from \(realm)")
        guard resp.status.code / 100 == 2 else {
            let code: CryoFailure.Code = forLogin ? .loginFailed : .registryUnauthorized
            if forLogin { throw CryoFailure(code, "login attempt to \(realm) failed with status: \(resp.status.code) \(resp.status.reasonPhrase)") }
            throw CryoFailure(code, "getting a token from \(realm) failed: \(resp.status)\(Self.errorText(body))")
        }
        struct TokenReply: Decodable { var token: String?; var access_token: String? }
        guard let reply = try? JSONDecoder().decode(TokenReply.self, from: Data(body)),
              let token = [reply.access_token, reply.token].compactMap({ $0 }).first(where: { !$0.isEmpty }) else {
            throw CryoFailure(.registryUnauthorized, "the token service \(realm) answered without a token")
        }
        return token
    }

    func execute(_ req: HTTPClientRequest, what: String, timeout: TimeAmount = .seconds(120)) async throws -> HTTPClientResponse {
        do {
            return try await http.execute(req, timeout: timeout)
        } catch {
            throw CryoFailure(.registryUnreachable, "\(what) failed", cause: DescribedError(error))
        }
    }

    func collect(_ resp: HTTPClientResponse, what: String) async throws -> [UInt8] {
        do {
            let buf = try await resp.body.collect(upTo: Self.maxDocumentBytes)
            return Array(buf.readableBytesView)
        } catch {
            throw CryoFailure(.registryUnreachable, "reading \(what) failed (more than \(Self.maxDocumentBytes) bytes, or the connection broke)", cause: DescribedError(error))
        }
    }

    static func errorText(_ body: [UInt8]) -> String {
        let entries = RegistryErrorBody.parse(body)
        guard !entries.isEmpty else { return "" }
        return ": " + entries.map { "\(($0.code ?? "error").lowercased().replacingOccurrences(of: "_", with: " ")): \($0.message ?? "")" }.joined(separator: "; ")
    }

    static func percentEncode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            if RegistryReference.isAlnumLower(b) || (b >= 0x41 && b <= 0x5a) || "-._~".utf8.contains(b) {
                out.unicodeScalars.append(UnicodeScalar(b))
            } else {
                out += "%" + String(b, radix: 16, uppercase: true).leftPadded(2)
            }
        }
        return out
    }
}

extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}

/// An error from NIO or AsyncHTTPClient, described in words (their own descriptions are
/// type names such as `HTTPClientError.remoteConnectionClosed`).
struct DescribedError: Error, CustomStringConvertible {
    let description: String
    init(_ error: any Error) {
        if let f = error as? CryoFailure { description = f.description; return }
        if let e = error as? HTTPClientError {
            switch e {
            case .remoteConnectionClosed: description = "the registry closed the connection"
            case .readTimeout: description = "the registry sent nothing for 120 s"
            case .connectTimeout: description = "connecting timed out"
            case .deadlineExceeded: description = "the request took too long"
            case .cancelled: description = "cancelled"
            default: description = "\(e)"
            }
            return
        }
        description = "\(error)"
    }
}

/// One repository on one registry, authorized.
public struct RegistrySession: Sendable {
    let client: RegistryClient
    public let reference: RegistryReference
    let baseURL: String
    let tls: TLSConfiguration?
    var authorization: String?

    func url(_ tail: String) -> String { "\(baseURL)/v2/\(reference.path)/\(tail)" }

    func request(_ tail: String, accept: [String] = []) -> HTTPClientRequest {
        var req = HTTPClientRequest(url: url(tail))
        req.tlsConfiguration = tls
        if let authorization { req.headers.add(name: "Authorization", value: authorization) }
        for a in accept { req.headers.add(name: "Accept", value: a) }
        return req
    }

    /// A manifest or index by tag or digest: its bytes, its type and its digest.
    public func fetchManifest(_ reference: String) async throws -> (bytes: [UInt8], contentType: String?, digest: Digest) {
        let req = request("manifests/" + reference, accept: MediaType.manifestAccept)
        let what = "GET \(url("manifests/" + reference))"
        let resp = try await client.execute(req, what: what, timeout: .seconds(120))
        let body = try await client.collect(resp, what: "the manifest \(reference)")
        guard resp.status == .ok else { throw failure(resp.status, body, what: what, manifest: reference) }
        return (body, resp.headers.first(name: "Content-Type"), Digest.of(body))
    }

    /// A small blob (an image config), verified against its digest.
    public func fetchSmallBlob(_ digest: Digest) async throws -> [UInt8] {
        let what = "GET \(url("blobs/" + digest.description))"
        let resp = try await client.execute(request("blobs/" + digest.description), what: what)
        let body = try await client.collect(resp, what: "blob \(digest)")
        guard resp.status == .ok else { throw failure(resp.status, body, what: what, manifest: nil) }
        let got = Digest.of(body)
        guard got == digest else {
            throw CryoFailure(.invalidArgument, "the registry sent blob \(digest) with the wrong content: its digest is \(got); nothing was stored")
        }
        return body
    }

    /// Opens a blob for streaming; the caller reads and verifies the body.
    func openBlob(_ digest: Digest) async throws -> HTTPClientResponse {
        let what = "GET \(url("blobs/" + digest.description))"
        let resp = try await client.execute(request("blobs/" + digest.description), what: what, timeout: .hours(24))
        guard resp.status == .ok else {
            let body = (try? await resp.body.collect(upTo: 1 << 16)).map { Array($0.readableBytesView) } ?? []
            throw failure(resp.status, body, what: what, manifest: nil)
        }
        return resp
    }

    /// dockerd's messages for a registry's refusals (moby distribution/errors.go).
    func failure(_ status: HTTPResponseStatus, _ body: [UInt8], what: String, manifest: String?) -> CryoFailure {
        let entries = RegistryErrorBody.parse(body)
        let codes = Set(entries.compactMap(\.code))
        let name = reference.familiarName
        if status == .unauthorized {
            let detail = RegistryClient.errorText(body)
            let text = detail.isEmpty ? ": unauthorized: authentication required" : detail
            return CryoFailure(.registryUnauthorized, "\(what.replacingOccurrences(of: "GET ", with: "Head \"").appending("\""))\(text)")
        }
        if codes.contains("MANIFEST_UNKNOWN"), let manifest {
            let ref = manifest.hasPrefix("sha256:") ? "\(name)@\(manifest)" : "\(name):\(manifest)"
            return CryoFailure(.notFound, "manifest for \(ref) not found: manifest unknown: \(entries.first?.message ?? "manifest unknown")")
        }
        if codes.contains("DENIED") {
            return CryoFailure(.notFound, "pull access denied for \(name), repository does not exist or may require 'docker login'")
        }
        if codes.contains("NAME_UNKNOWN") { return CryoFailure(.notFound, "repository \(name) not found") }
        if status == .notFound {
            return CryoFailure(.notFound, "\(what): not found\(RegistryClient.errorText(body))")
        }
        return CryoFailure(.registryUnreachable, "\(what): the registry answered \(status.code) \(status.reasonPhrase)\(RegistryClient.errorText(body))")
    }
}
