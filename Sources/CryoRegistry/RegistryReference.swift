import CryoImages
import CryoLinux

/// An image reference as dockerd normalizes it: `busybox` is `docker.io/library/busybox:latest`,
/// `me/app` is `docker.io/me/app:latest`, `127.0.0.1:5000/test/hello` has the registry
/// `127.0.0.1:5000` and the repository path `test/hello`. The first component is a
/// registry host when it is `localhost` or contains `.` or `:` (or an uppercase letter);
/// `index.docker.io` is `docker.io`.
public struct RegistryReference: Sendable, Equatable, CustomStringConvertible {
    /// The registry as named in references: "docker.io", "127.0.0.1:5000".
    public var domain: String
    /// The repository path on the registry: "library/busybox", "test/hello".
    public var path: String
    public var tag: String?
    public var digest: Digest?

    public init(domain: String, path: String, tag: String?, digest: Digest?) {
        self.domain = domain
        self.path = path
        self.tag = tag
        self.digest = digest
    }

    /// Parses a reference ("busybox", "busybox:1.36", "host:5000/a/b@sha256:…"). With neither
    /// tag nor digest the tag stays nil (the caller decides: `latest`, or refuse).
    public static func parse(_ text: String) throws -> RegistryReference {
        func bad(_ why: String) -> CryoFailure {
            CryoFailure(.invalidArgument, "invalid reference format \"\(text)\": \(why)")
        }
        guard !text.isEmpty else { throw bad("empty reference") }
        var rest = Substring(text)
        var digest: Digest?
        if let at = rest.firstIndex(of: "@") {
            do { digest = try Digest(String(rest[rest.index(after: at)...])) } catch { throw bad("\(error)") }
            rest = rest[..<at]
        }
        var tag: String?
        let lastSlash = rest.lastIndex(of: "/")
        if let colon = rest.lastIndex(of: ":"), lastSlash.map({ colon > $0 }) ?? true {
            let t = String(rest[rest.index(after: colon)...])
            guard isValidTag(t) else { throw bad("tag \"\(t)\" must be 1 to 128 of [A-Za-z0-9_.-], not starting with . or -") }
            tag = t
            rest = rest[..<colon]
        }
        var domain = "docker.io"
        var path = String(rest)
        if let slash = rest.firstIndex(of: "/") {
            let first = rest[..<slash]
            if first == "localhost" || first.contains(".") || first.contains(":") || first.contains(where: \.isUppercase) {
                domain = String(first)
                path = String(rest[rest.index(after: slash)...])
            }
        }
        if domain == "index.docker.io" { domain = "docker.io" }
        guard !domain.isEmpty, domain.utf8.allSatisfy({ isHostByte($0) }) else { throw bad("registry host \"\(domain)\" has characters a host cannot have") }
        if domain == "docker.io" && !path.contains("/") { path = "library/" + path }
        guard !path.isEmpty else { throw bad("no repository name") }
        if path.contains(where: \.isUppercase) { throw bad("repository name must be lowercase") }
        for component in path.split(separator: "/", omittingEmptySubsequences: false) {
            guard isValidPathComponent(component) else {
                throw bad("repository path component \"\(component)\" must be lowercase letters and digits, separated by '.', '_', '__' or '-'")
            }
        }
        guard path.utf8.count + domain.utf8.count < 256 else { throw bad("repository name must not be longer than 255 characters") }
        return RegistryReference(domain: domain, path: path, tag: tag, digest: digest)
    }

    /// The reference of a `POST /images/create` (`fromImage` and `tag`, as the docker CLI and
    /// docker-py send them): a trailing `:` is dropped, a digest in `tag` means a pull by
    /// digest. No tag at all means every tag of the repository to dockerd (`docker pull
    /// --all-tags`, docker-py's low-level `pull(name)`): cryo refuses that rather than pull
    /// only `latest`.
    public static func pullQuery(image: String, tag: String?) throws -> RegistryReference {
        let ref = try fromPullQuery(image: image, tag: tag, defaultTag: nil)
        if ref.tag == nil && ref.digest == nil {
            throw CryoFailure(.unsupported, "pulling every tag of \(ref.familiarName) (docker pull --all-tags) is not supported: name a tag, e.g. \(ref.familiarName):latest")
        }
        return ref
    }

    /// As `pullQuery`, with `defaultTag` for a name without tag or digest (`docker tag`).
    public static func fromPullQuery(image: String, tag: String?, defaultTag: String? = "latest") throws -> RegistryReference {
        var name = image
        if name.hasSuffix(":") { name.removeLast() }
        var ref = try parse(name)
        if let tag, !tag.isEmpty {
            if tag.hasPrefix("sha256:") {
                do { ref.digest = try Digest(tag) } catch {
                    throw CryoFailure(.invalidArgument, "invalid reference format: \(error)")
                }
            } else {
                guard isValidTag(tag) else { throw CryoFailure(.invalidArgument, "invalid tag \"\(tag)\": 1 to 128 of [A-Za-z0-9_.-], not starting with . or -") }
                ref.tag = tag
            }
        }
        if ref.tag == nil && ref.digest == nil { ref.tag = defaultTag }
        return ref
    }

    /// "docker.io/library/busybox"
    public var name: String { domain + "/" + path }

    /// The name people type and cryo's image store records: "busybox", "me/app",
    /// "127.0.0.1:5000/test/hello" (docker's "familiar" form).
    public var familiarName: String {
        guard domain == "docker.io" else { return name }
        return path.hasPrefix("library/") && path.split(separator: "/").count == 2 ? String(path.dropFirst(8)) : path
    }

    /// "busybox:latest" — the store's tag for this reference, nil for a pull by digest alone.
    public var familiarTagged: String? { tag.map { familiarName + ":" + $0 } }

    /// "busybox@sha256:…"
    public var familiarDigested: String? { digest.map { familiarName + "@" + $0.description } }

    /// What the manifest is fetched by: the digest if there is one, else the tag.
    public var manifestReference: String { digest?.description ?? tag ?? "latest" }

    /// The host requests go to: Docker Hub's registry is not at "docker.io".
    public var endpointHost: String { domain == "docker.io" ? "registry-1.docker.io" : domain }

    public var description: String {
        var s = name
        if let tag { s += ":" + tag }
        if let digest { s += "@" + digest.description }
        return s
    }

    static func isValidTag(_ t: String) -> Bool {
        guard let first = t.utf8.first, t.utf8.count <= 128 else { return false }
        guard isWordByte(first) else { return false }
        return t.utf8.allSatisfy { isWordByte($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
    static func isValidPathComponent(_ c: Substring) -> Bool {
        let b = Array(c.utf8)
        guard let first = b.first, let last = b.last, isAlnumLower(first), isAlnumLower(last) else { return false }
        var i = 0
        while i < b.count {
            if isAlnumLower(b[i]) { i += 1; continue }
            // a separator run: ".", "_", "__" or one or more "-"
            var j = i
            while j < b.count && !isAlnumLower(b[j]) { j += 1 }
            let sep = b[i..<j]
            let ok = sep.elementsEqual([UInt8(ascii: ".")]) || sep.elementsEqual([UInt8(ascii: "_")])
                || sep.elementsEqual([UInt8(ascii: "_"), UInt8(ascii: "_")]) || sep.allSatisfy { $0 == UInt8(ascii: "-") }
            if !ok { return false }
            i = j
        }
        return true
    }

    static func isAlnumLower(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) }
    static func isWordByte(_ c: UInt8) -> Bool { isAlnumLower(c) || (c >= 0x41 && c <= 0x5a) || c == UInt8(ascii: "_") }
    static func isHostByte(_ c: UInt8) -> Bool {
        isWordByte(c) || c == UInt8(ascii: ".") || c == UInt8(ascii: "-") || c == UInt8(ascii: ":") || c == UInt8(ascii: "[") || c == UInt8(ascii: "]")
    }
}
