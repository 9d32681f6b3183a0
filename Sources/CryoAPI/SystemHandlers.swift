import CryoEngine
import CryoHTTP
import FoundationEssentials
import Glibc

extension APIServer {
    func ping(_ ex: HTTPExchange) async throws {
        let headers = [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-cache, no-store, must-revalidate"),
                       ("Pragma", "no-cache"), ("Builder-Version", "1"), ("Swarm", "inactive")]
        try await ex.respond(status: 200, headers: headers, body: Array("OK".utf8))
    }

    static var kernelVersion: String {
        var u = utsname()
        uname(&u)
        return withUnsafeBytes(of: u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    func version(_ ex: HTTPExchange) async throws {
        struct Component: Encodable { var Name: String; var Version: String; var Details: [String: String] }
        struct Version: Encodable {
            var Platform: [String: String]
            var Components: [Component]
            var Version: String
            var ApiVersion: String
            var MinAPIVersion: String
            var Os: String
            var Arch: String
            var KernelVersion: String
            var Experimental: Bool
        }
        let details = ["ApiVersion": Self.apiVersion, "MinAPIVersion": Self.minAPIVersion, "Os": "linux", "Arch": "amd64",
                       "KernelVersion": Self.kernelVersion, "Experimental": "true"]
        try await json(ex, 200, Version(
            Platform: ["Name": "cryo"], Components: [Component(Name: "Engine", Version: Self.engineVersion, Details: details)],
            Version: Self.engineVersion, ApiVersion: Self.apiVersion, MinAPIVersion: Self.minAPIVersion, Os: "linux",
            Arch: "amd64", KernelVersion: Self.kernelVersion, Experimental: true))
    }

    func info(_ ex: HTTPExchange) async throws {
        struct SwarmInfo: Encodable { var LocalNodeState = "inactive"; var ControlAvailable = false }
        /// What `docker info` lists as "Insecure Registries" and "Registry Mirrors".
        struct RegistryConfig: Encodable {
            var InsecureRegistryCIDRs: [String]
            var IndexConfigs: [String: String] = [:]
            var Mirrors: [String]
        }
        struct Info: Encodable {
            var ID: String
            var Containers: Int
            var ContainersRunning: Int
            var ContainersPaused: Int
            var ContainersStopped: Int
            var Images: Int
            var Driver = "overlay"
            var DockerRootDir: String
            var LoggingDriver = "json-file"
            var CgroupDriver = "cgroupfs"
            var KernelVersion: String
            var OperatingSystem = "Linux"
            var OSType = "linux"
            var Architecture = "x86_64"
            var NCPU: Int
            var MemTotal: Int64
            var Name: String
            var ServerVersion: String
            var ExperimentalBuild = true
            var Swarm = SwarmInfo()
            var RegistryConfig: RegistryConfig
        }
        let all = await engine.list(all: true)
        let images = (try? engine.images.list().count) ?? 0
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        let name = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        try await json(ex, 200, Info(
            ID: "cryo", Containers: all.count, ContainersRunning: all.filter { $0.status == .running }.count,
            ContainersPaused: all.filter { $0.status == .paused }.count,
            ContainersStopped: all.filter { !$0.isRunning }.count, Images: images, DockerRootDir: engine.options.paths.root,
            KernelVersion: Self.kernelVersion, NCPU: sysconf(Int32(_SC_NPROCESSORS_ONLN)),
            MemTotal: Int64(sysconf(Int32(_SC_PHYS_PAGES))) * Int64(sysconf(Int32(_SC_PAGESIZE))),
            Name: name, ServerVersion: Self.engineVersion,
            RegistryConfig: RegistryConfig(InsecureRegistryCIDRs: ["127.0.0.0/8"] + registry.settings.insecureRegistries,
                                           Mirrors: registry.settings.mirrorURLs)))
    }
}

extension APIServer {
    /// `GET /system/df` → what images, containers and volumes hold (and no build cache).
    func systemDF(_ ex: HTTPExchange) async throws {
        struct DF: Encodable {
            var LayersSize: Int64
            var Images: [ImageSummary]
            var Containers: [ContainerSummary]
            var Volumes: [VolumeJSON]
            var BuildCache: [String] = []
        }
        let du = try await engine.diskUsage()
        let volumes = du.volumes.map { v -> VolumeJSON in
            var j = presentVolume(v.volume)
            j.usage = (v.size, v.refCount)
            return j
        }
        try await json(ex, 200, DF(LayersSize: du.layersSize, Images: du.images, Containers: du.containers.map(Present.summary),
                                   Volumes: volumes))
    }

    /// `POST /build/prune` (`docker system prune` always calls it): cryod builds nothing, so
    /// it has no build cache and this prunes nothing.
    func pruneBuildCache(_ ex: HTTPExchange) async throws {
        struct R: Encodable { var CachesDeleted: [String] = []; var SpaceReclaimed = 0 }
        try await json(ex, 200, R())
    }
}
