import AsyncHTTPClient
import CryoImages
import CryoLinux
import FoundationEssentials
import Glibc
import NIOCore
import NIOHTTP1

/// `docker push`: the packed image's layers the registry lacks (a HEAD on each blob first),
/// each uploaded in one PUT, streamed from its file; then the config and the OCI manifest
/// under the tag. The progress stream is dockerd's: "The push refers to repository [...]",
/// per layer "Pushed" or "Layer already exists", then "TAG: digest: sha256:… size: N" and an
/// `aux` line with the tag, digest and size, which the docker CLI reads.
public struct ImagePusher: Sendable {
    public let client: RegistryClient

    public init(client: RegistryClient) { self.client = client }

    /// Pushes `image` as `ref` (which has a tag). `emit` gets the progress lines; the first is
    /// sent after the registry accepted the credentials, so an auth failure is an HTTP error.
    public func push(_ image: PackedImage, as ref: RegistryReference, credentials: RegistryCredentials,
                     emit: @escaping @Sendable (ProgressLine) async throws -> Void) async throws {
        let session = try await client.session(for: ref, credentials: credentials, actions: ["pull", "push"])
        try await emit(.message("The push refers to repository [\(ref.name)]"))
        for layer in image.layers.reversed() {
            let id = String(layer.digest.hex.prefix(12))
            if try await session.hasBlob(layer.digest) {
                try await emit(.update("Layer already exists", id: id))
                continue
            }
            try await emit(.update("Preparing", id: id))
            try await session.uploadBlob(layer.digest, size: layer.size, body: try FileBody.open(layer.path, size: layer.size))
            try await emit(.update("Pushed", id: id))
        }
        if try await !session.hasBlob(image.configDigest) {
            try await session.uploadBlob(image.configDigest, size: Int64(image.config.count),
                                         body: .bytes(ByteBuffer(bytes: image.config)))
        }
        let tag = ref.tag ?? "latest"
        try await session.putManifest(tag, image.manifest, mediaType: MediaType.ociManifest)
        let digest = image.manifestDigest
        try await emit(.message("\(tag): digest: \(digest) size: \(image.manifest.count)"))
        try await emit(.aux(#"{"Tag":"\#(tag)","Digest":"\#(digest)","Size":\#(image.manifest.count)}"#))
    }
}

extension RegistrySession {
    /// HEAD /v2/NAME/blobs/DIGEST: whether the registry has the blob.
    func hasBlob(_ digest: Digest) async throws -> Bool {
        var req = request("blobs/" + digest.description)
        req.method = .HEAD
        let what = "HEAD \(url("blobs/" + digest.description))"
        let resp = try await client.execute(req, what: what)
        _ = try? await resp.body.collect(upTo: 1 << 16)
        switch resp.status {
        case .ok: return true
        case .notFound: return false
        default: throw failure(resp.status, [], what: what, manifest: nil)
        }
    }

    /// A monolithic upload: POST /v2/NAME/blobs/uploads/ for a location, then one PUT of the
    /// whole blob to it with `?digest=`; the registry checks the digest.
    func uploadBlob(_ digest: Digest, size: Int64, body: HTTPClientRequest.Body) async throws {
        var start = request("blobs/uploads/")
        start.method = .POST
        start.headers.add(name: "Content-Length", value: "0")
        let what = "POST \(url("blobs/uploads/"))"
        let resp = try await client.execute(start, what: what)
        let startBody = try await client.collect(resp, what: "the upload of \(digest)")
        guard resp.status == .accepted, let location = resp.headers.first(name: "Location") else {
            throw failure(resp.status, startBody, what: what, manifest: nil)
        }
        var target = location.hasPrefix("/") ? baseURL + location : location
        target += (target.contains("?") ? "&" : "?") + "digest=" + RegistryClient.percentEncode(digest.description)
        var put = HTTPClientRequest(url: target)
        put.method = .PUT
        put.tlsConfiguration = tls
        if let authorization { put.headers.add(name: "Authorization", value: authorization) }
        put.headers.add(name: "Content-Type", value: "application/octet-stream")
        put.body = body
        let putWhat = "PUT \(url("blobs/uploads/…")) (\(digest), \(size) bytes)"
        let done = try await client.execute(put, what: putWhat, timeout: .hours(24))
        let doneBody = try await client.collect(done, what: "the upload of \(digest)")
        guard done.status == .created else { throw failure(done.status, doneBody, what: putWhat, manifest: nil) }
    }

    /// PUT /v2/NAME/manifests/TAG.
    func putManifest(_ tag: String, _ bytes: [UInt8], mediaType: String) async throws {
        var req = request("manifests/" + tag)
        req.method = .PUT
        req.headers.add(name: "Content-Type", value: mediaType)
        req.body = .bytes(ByteBuffer(bytes: bytes))
        let what = "PUT \(url("manifests/" + tag))"
        let resp = try await client.execute(req, what: what)
        let body = try await client.collect(resp, what: "the manifest \(tag)")
        guard resp.status == .created else { throw failure(resp.status, body, what: what, manifest: nil) }
    }
}

/// A file as a request body: read in 1 MiB chunks as the client asks for them.
enum FileBody {
    final class Reader: Sendable {
        let fd: Int32
        let path: String
        init(fd: Int32, path: String) {
            self.fd = fd
            self.path = path
        }
        deinit { close(fd) }

        func next() throws -> ByteBuffer? {
            var buf = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                guard n >= 0 else { throw SyscallError("read", path) }
                return n == 0 ? nil : ByteBuffer(bytes: buf[0..<n])
            }
        }
    }

    static func open(_ path: String, size: Int64) throws -> HTTPClientRequest.Body {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SyscallError("open", path) }
        let reader = Reader(fd: fd, path: path)
        let chunks = AsyncThrowingStream<ByteBuffer, Error>(unfolding: { try reader.next() })
        return .stream(chunks, length: .known(size))
    }
}
