import CryoImages
import CryoLinux
import FoundationEssentials

/// Media types and checks of the distribution side (the image models are CryoImages').
extension MediaType {
    public static let schema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
    public static let schema1 = "application/vnd.docker.distribution.manifest.v1+json"

    /// Sent as `Accept` on every manifest request: without the OCI types, registry 2.8 answers
    /// 404 for OCI content; without any, it rewrites schema 2 into schema 1.
    public static let manifestAccept = [dockerManifest, dockerManifestList, ociManifest, ociIndex]

    /// dockerd's check for configs and layers: a Docker or OCI image type, or one of the
    /// legacy values some registries send.
    public static func isAcceptableBlob(_ type: String?) -> Bool {
        guard let type, !type.isEmpty else { return true }
        if type.hasPrefix("application/vnd.docker.ai.") { return false }
        return type.hasPrefix("application/vnd.oci.image") || type.hasPrefix("application/vnd.docker")
            || ["application/octet-stream", "application/json", "text/html"].contains(type)
    }

    /// Layers whose content is not in the registry (Windows base layers): not pullable here.
    public static func isForeignLayer(_ type: String?) -> Bool {
        guard let type else { return false }
        return type.contains("foreign") || type.contains("nondistributable")
    }
}

/// A fetched manifest document: one image, or an index of images.
public enum ManifestDocument: Sendable {
    case image(ImageManifest)
    case index(ImageIndex)

    /// Decodes `bytes` by the response's `Content-Type`, or by the document's own
    /// `mediaType` (and shape) when the registry sends no usable type. Schema 1 is refused.
    public static func decode(_ bytes: [UInt8], contentType: String?) throws -> ManifestDocument {
        let type = contentType.map { String($0.split(separator: ";")[0]).trimmingCharacters(in: .whitespaces) }
        if type == MediaType.schema1 || type == MediaType.schema1Signed {
            throw CryoFailure(.unsupported, "the registry sent a schema 1 manifest (\(type!)): cryo pulls only Docker schema 2 and OCI images")
        }
        struct Probe: Decodable { var mediaType: String?; var schemaVersion: Int?; var manifests: [Descriptor]?; var config: Descriptor? }
        let probe: Probe
        do { probe = try JSONDecoder().decode(Probe.self, from: Data(bytes)) } catch {
            throw CryoFailure(.invalidArgument, "the registry's manifest is not valid JSON: \(error)")
        }
        let effective = [MediaType.dockerManifest, MediaType.dockerManifestList, MediaType.ociManifest, MediaType.ociIndex]
            .contains(type ?? "") ? type! : (probe.mediaType ?? "")
        if probe.schemaVersion == 1 {
            throw CryoFailure(.unsupported, "the registry sent a schema 1 manifest: cryo pulls only Docker schema 2 and OCI images")
        }
        do {
            switch effective {
            case MediaType.dockerManifestList, MediaType.ociIndex:
                return .index(try JSONDecoder().decode(ImageIndex.self, from: Data(bytes)))
            case MediaType.dockerManifest, MediaType.ociManifest:
                return .image(try JSONDecoder().decode(ImageManifest.self, from: Data(bytes)))
            default:
                if probe.manifests != nil { return .index(try JSONDecoder().decode(ImageIndex.self, from: Data(bytes))) }
                if probe.config != nil { return .image(try JSONDecoder().decode(ImageManifest.self, from: Data(bytes))) }
                throw CryoFailure(.unsupported, "the registry sent a manifest of type \"\(type ?? "none")\", which is neither an image manifest nor an index")
            }
        } catch let e as DecodingError {
            throw CryoFailure(.invalidArgument, "the registry's manifest (\(effective)) is malformed: \(e)")
        }
    }
}

/// The platform a pull wants: `os[/arch[/variant]]`, normalized as containerd does
/// (`x86_64`→`amd64`, `aarch64`→`arm64`, amd64 `v1` and arm64 `v8` are no variant, arm
/// without a variant is `v7`).
public struct PlatformSpec: Sendable, Equatable, CustomStringConvertible {
    public var os: String
    public var architecture: String
    public var variant: String?

    public init(os: String, architecture: String, variant: String? = nil) {
        (self.architecture, self.variant) = Self.normalize(architecture.lowercased(), variant?.lowercased())
        self.os = os.lowercased()
    }

    /// This machine's platform (cryo builds for linux/amd64).
    public static let host = PlatformSpec(os: "linux", architecture: "amd64")

    /// Parses the `platform` query parameter: "linux", "linux/amd64", "linux/arm/v7".
    public static func parse(_ text: String) throws -> PlatformSpec {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (1...3).contains(parts.count), !parts.contains(where: \.isEmpty) else {
            throw CryoFailure(.invalidArgument, "invalid platform \"\(text)\": expected os[/arch[/variant]], e.g. linux/amd64")
        }
        guard parts[0].lowercased() == "linux" else {
            throw CryoFailure(.unsupported, "platform \"\(text)\": cryo runs Linux images only")
        }
        return PlatformSpec(os: parts[0], architecture: parts.count > 1 ? parts[1] : host.architecture,
                            variant: parts.count > 2 ? parts[2] : nil)
    }

    static func normalize(_ arch: String, _ variant: String?) -> (String, String?) {
        var a = arch
        var v = variant.flatMap { $0.isEmpty ? nil : $0 }
        switch a {
        case "x86_64", "x86-64": a = "amd64"
        case "aarch64": a = "arm64"
        case "i386", "i686": a = "386"
        case "armhf": a = "arm"; v = v ?? "v7"
        case "armel": a = "arm"; v = v ?? "v6"
        default: break
        }
        if a == "amd64" && v == "v1" { v = nil }
        if a == "arm64" && (v == "v8" || v == "8") { v = nil }
        if a == "arm" && v == nil { v = "v7" }
        return (a, v)
    }

    /// Whether an index entry's platform matches (containerd's `Only`: the exact platform,
    /// plus lower amd64 variants and 386 on amd64, and v6/v5 on arm v7). An entry without
    /// a platform matches; `unknown/unknown` (attestations) never does.
    public func matches(_ p: Platform?) -> Bool {
        guard let p else { return true }
        let other = PlatformSpec(os: p.os, architecture: p.architecture, variant: p.variant)
        guard other.os == os else { return false }
        if other.architecture == architecture {
            if other.variant == variant || variant == nil { return true }
            if architecture == "amd64", let ov = other.variant, let mv = variant { return ov < mv }
            if architecture == "arm", let ov = other.variant, let mv = variant { return ov < mv }
            return false
        }
        return architecture == "amd64" && other.architecture == "386"
    }

    /// The preference of a matching entry: the exact platform first.
    func rank(_ p: Platform?) -> Int {
        guard let p else { return 2 }
        let other = PlatformSpec(os: p.os, architecture: p.architecture, variant: p.variant)
        if other == self { return 0 }
        return other.architecture == architecture ? 1 : 3
    }

    /// The index entry for this platform: the best match whose type is an image manifest.
    public func select(from index: ImageIndex) throws -> Descriptor {
        let candidates = index.manifests.enumerated().filter { _, d in
            (d.mediaType.isEmpty || d.mediaType == MediaType.dockerManifest || d.mediaType == MediaType.ociManifest) && matches(d.platform)
        }
        guard let best = candidates.min(by: { (rank($0.element.platform), $0.offset) < (rank($1.element.platform), $1.offset) }) else {
            throw CryoFailure(.notFound, "no matching manifest for \(self) in the manifest list entries")
        }
        return best.element
    }

    public var description: String { os + "/" + architecture + (variant.map { "/" + $0 } ?? "") }
}

extension RegistrySession {
    /// The image manifest `platform` selects in `index`, fetched and checked against the
    /// index's digest. `inWhat` names the index in errors ("the index", "busybox's index"),
    /// `outcome` says what did not happen ("nothing was stored").
    func platformManifest(from index: ImageIndex, platform: PlatformSpec, inWhat: String,
                          outcome: String) async throws -> (manifest: ImageManifest, bytes: [UInt8], digest: Digest) {
        let entry = try platform.select(from: index)
        let wanted = try Digest(entry.digest)
        let child = try await fetchManifest(wanted.description)
        guard child.digest == wanted else {
            throw CryoFailure(.invalidArgument, "the registry sent manifest \(child.digest) for \(wanted) (\(platform) in \(inWhat)): digests differ; \(outcome)")
        }
        guard case .image(let m) = try ManifestDocument.decode(child.bytes, contentType: child.contentType) else {
            throw CryoFailure(.unsupported, "the index entry for \(platform) in \(inWhat) is itself an index: nested indexes are not supported")
        }
        return (m, child.bytes, child.digest)
    }
}
