/// OCI image-spec models (image-layout index.json, manifest, image config).
/// Unknown fields are ignored on decode; optional fields are omitted on encode.

public enum MediaType {
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    public static let ociLayer = "application/vnd.oci.image.layer.v1.tar"
    public static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let ociLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
}

/// A content descriptor: what a blob is, its digest and its size in bytes.
public struct Descriptor: Codable, Sendable, Equatable {
    public var mediaType: String
    public var digest: String
    public var size: Int64
    public var annotations: [String: String]?
    public var platform: Platform?

    public init(mediaType: String, digest: String, size: Int64, annotations: [String: String]? = nil, platform: Platform? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.annotations = annotations
        self.platform = platform
    }
}

public struct Platform: Codable, Sendable, Equatable {
    public var architecture: String
    public var os: String
    public var variant: String?

    public init(os: String, architecture: String, variant: String? = nil) {
        self.os = os
        self.architecture = architecture
        self.variant = variant
    }
}

/// `index.json` of an OCI image layout (and OCI image indexes in general).
public struct ImageIndex: Codable, Sendable, Equatable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var manifests: [Descriptor]
    public var annotations: [String: String]?

    public init(schemaVersion: Int = 2, mediaType: String? = MediaType.ociIndex, manifests: [Descriptor], annotations: [String: String]? = nil) {
        self.schemaVersion = schemaVersion
        self.mediaType = mediaType
        self.manifests = manifests
        self.annotations = annotations
    }
}

public struct ImageManifest: Codable, Sendable, Equatable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
    public var annotations: [String: String]?

    public init(schemaVersion: Int = 2, mediaType: String? = MediaType.ociManifest, config: Descriptor, layers: [Descriptor], annotations: [String: String]? = nil) {
        self.schemaVersion = schemaVersion
        self.mediaType = mediaType
        self.config = config
        self.layers = layers
        self.annotations = annotations
    }
}

/// The image configuration blob (`application/vnd.oci.image.config.v1+json`).
public struct ImageConfiguration: Codable, Sendable, Equatable {
    public var created: String?
    public var author: String?
    public var architecture: String?
    public var os: String?
    public var config: Config?
    public var rootfs: RootFS
    /// The build steps, oldest first (`docker history`); a step with `empty_layer` made no layer.
    public var history: [HistoryEntry]?

    public struct HistoryEntry: Codable, Sendable, Equatable {
        public var created: String?
        public var created_by: String?
        public var author: String?
        public var comment: String?
        public var empty_layer: Bool?

        public init(created: String? = nil, created_by: String? = nil, author: String? = nil, comment: String? = nil,
                    empty_layer: Bool? = nil) {
            self.created = created
            self.created_by = created_by
            self.author = author
            self.comment = comment
            self.empty_layer = empty_layer
        }
    }

    public struct Config: Codable, Sendable, Equatable {
        public var User: String?
        public var ExposedPorts: [String: EmptyObject]?
        public var Env: [String]?
        public var Entrypoint: [String]?
        public var Cmd: [String]?
        public var Volumes: [String: EmptyObject]?
        public var WorkingDir: String?
        public var Labels: [String: String]?
        public var StopSignal: String?
        /// Dockerfile HEALTHCHECK.
        public var Healthcheck: HealthcheckConfig?

        public init(User: String? = nil, ExposedPorts: [String: EmptyObject]? = nil, Env: [String]? = nil,
                    Entrypoint: [String]? = nil, Cmd: [String]? = nil, Volumes: [String: EmptyObject]? = nil,
                    WorkingDir: String? = nil, Labels: [String: String]? = nil, StopSignal: String? = nil,
                    Healthcheck: HealthcheckConfig? = nil) {
            self.Healthcheck = Healthcheck
            self.User = User
            self.ExposedPorts = ExposedPorts
            self.Env = Env
            self.Entrypoint = Entrypoint
            self.Cmd = Cmd
            self.Volumes = Volumes
            self.WorkingDir = WorkingDir
            self.Labels = Labels
            self.StopSignal = StopSignal
        }
    }

    public struct RootFS: Codable, Sendable, Equatable {
        public var type: String
        public var diff_ids: [String]
        public init(type: String = "layers", diff_ids: [String]) {
            self.type = type
            self.diff_ids = diff_ids
        }
    }

    public init(created: String? = nil, architecture: String? = "amd64", os: String? = "linux", config: Config? = nil, rootfs: RootFS) {
        self.created = created
        self.architecture = architecture
        self.os = os
        self.config = config
        self.rootfs = rootfs
    }
}

/// `{}` — the value type of ExposedPorts and Volumes maps.
public struct EmptyObject: Codable, Sendable, Equatable {
    public init() {}
}

/// One entry of a `docker save` archive's `manifest.json` (the file is an array of these).
public struct DockerArchiveManifestEntry: Codable, Sendable, Equatable {
    public var Config: String
    public var RepoTags: [String]?
    public var Layers: [String]

    public init(Config: String, RepoTags: [String]?, Layers: [String]) {
        self.Config = Config
        self.RepoTags = RepoTags
        self.Layers = Layers
    }
}
