import ArgumentParser
import CryoAPI
import CryoEngine
import CryoHTTP
import CryoLinux
import CryoLog
import CryoMigration
import CryoRegistry
import CryoTLS
import Dispatch
import FoundationEssentials
import Glibc
import NIOConcurrencyHelpers
import NIOPosix

/// Settings file (`--config`, JSON): `{"checkpoint-on-shutdown": true}`.
struct DaemonConfigFile: Decodable {
    var checkpointOnShutdown: Bool?
    var insecureRegistries: [String]?
    var registryMirrors: [String]?
    enum CodingKeys: String, CodingKey {
        case checkpointOnShutdown = "checkpoint-on-shutdown"
        case insecureRegistries = "insecure-registries"
        case registryMirrors = "registry-mirrors"
    }
}

@main
struct Cryod: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cryod",
        abstract: "The cryo daemon: a Docker-compatible container engine with checkpoint/restore.",
        discussion: """
        Serves the Docker Engine API (the subset the docker CLI and docker-py use, plus
        checkpoints) on a unix socket. Each container has its own monitor process, so
        stopping or upgrading cryod never touches a running container.

        TCP is served with mutual TLS only: a tcp:// -H needs --tlsverify with \
        --tlscacert, --tlscert and --tlskey (`cryo tls init` and `cryo tls issue` make \
        them), and every client must present a certificate signed by that CA. cryod \
        refuses to start with a tcp:// -H and no TLS.
        """)

    @Option(help: "Persistent state: images, containers, logs, checkpoints.")
    var root = "/var/lib/cryo"

    @Option(name: .customLong("exec-root"), help: "Runtime state (lost at reboot): runtime state, monitor sockets.")
    var execRoot = "/run/cryo"

    @Option(name: [.customShort("H"), .long],
            help: ArgumentHelp("Where to listen, repeatable: unix://PATH or tcp://ADDR:PORT (TCP needs --tlsverify). Default unix:///run/cryo/cryo.sock.", valueName: "host"))
    var host: [String] = []

    @Flag(help: "Use TLS; implies --tlsverify (there is no TLS without client verification).")
    var tls = false

    @Flag(help: "Use TLS and require client certificates signed by --tlscacert.")
    var tlsverify = false

    @Option(help: ArgumentHelp("Trust client certificates signed only by this CA (default $DOCKER_CERT_PATH/ca.pem).", valueName: "path"))
    var tlscacert: String?

    @Option(help: ArgumentHelp("The daemon's TLS certificate (default $DOCKER_CERT_PATH/cert.pem).", valueName: "path"))
    var tlscert: String?

    @Option(help: ArgumentHelp("The daemon's TLS key (default $DOCKER_CERT_PATH/key.pem).", valueName: "path"))
    var tlskey: String?

    @Flag(name: .customLong("checkpoint-on-shutdown"),
          help: "At shutdown, checkpoint every running container; restore them when cryod starts again.")
    var checkpointOnShutdown = false

    @Option(name: .customLong("default-subnet"), help: ArgumentHelp("Subnet of the default network cryo0 (default 198.18.0.0/24).", valueName: "CIDR"))
    var defaultSubnet: String?

    @Option(name: [.customShort("b"), .customLong("bridge")],
            help: ArgumentHelp("Bridge interface of the default network (default cryo0). A second cryod on the same host needs its own bridge and --default-subnet.", valueName: "NAME"))
    var bridge: String?

    @Option(name: .customLong("cgroup-parent"),
            help: ArgumentHelp("Parent cgroup of the containers (default /cryo). A second cryod on the same host needs its own: container ids may repeat across daemons (a migrated container keeps its id).", valueName: "PATH"))
    var cgroupParent: String?

    @Option(name: .customLong("cni-bin-dir"),
            help: ArgumentHelp("Directories of the CNI plugin binaries, separated by ':' (default /usr/lib/cni:/opt/cni/bin; also $CRYO_CNI_BIN_DIR).", valueName: "DIRS"))
    var cniBinDir: String?

    @Option(help: "JSON settings file, e.g. {\"checkpoint-on-shutdown\": true}.")
    var config: String?

    @Option(name: .customLong("idle-timeout"),
            help: ArgumentHelp("Close an API connection idle (between requests, or sending its request head) for this long (default 120).", valueName: "SECONDS"))
    var idleTimeout: Int = 120

    @Option(name: .customLong("peer-timeout"),
            help: ArgumentHelp("A TCP peer (a migration's other cryod, a remote client) unreachable for this long fails its connection: TCP keepalive and TCP_USER_TIMEOUT (default 15).", valueName: "SECONDS"))
    var peerTimeout: Int = 15

    @Option(name: .customLong("max-connections"),
            help: ArgumentHelp("At most this many API connections (default: three quarters of RLIMIT_NOFILE). When full, the longest-idle one is closed to make room.", valueName: "N"))
    var maxConnections: Int?

    @Option(name: [.customShort("l"), .customLong("log-level")],
            help: ArgumentHelp("Log level: debug, info, warning or error (default info). Monitors and cryo-runtime log at the same level.", valueName: "LEVEL"))
    var logLevel: String = "info"

    @Option(name: .customLong("log-format"),
            help: ArgumentHelp("Log lines on stderr: text or json (one JSON object per line).", valueName: "FORMAT"))
    var logFormat: String = "text"

    @Option(name: .customLong("image-extract-limit"),
            help: ArgumentHelp("Bytes one image load or import may unpack to disk (default: the free space of the root, less a reserve).", valueName: "BYTES"))
    var imageExtractLimit: Int64?

    @Option(name: .customLong("insecure-registry"),
            help: ArgumentHelp("A registry (HOST[:PORT] or an IPv4 CIDR) reached with unverified TLS, or plain HTTP when TLS does not answer; repeatable. Loopback always is.", valueName: "HOST"))
    var insecureRegistries: [String] = []

    @Option(name: .customLong("registry-mirror"),
            help: ArgumentHelp("A mirror asked first for Docker Hub images (https://HOST[:PORT], or http:// for a plain-HTTP one); repeatable, tried in order, Docker Hub last.", valueName: "URL"))
    var registryMirrors: [String] = []

    @Option(name: .customLong("registry-certs-dir"),
            help: ArgumentHelp("Per-registry CAs: DIR/HOST:PORT/*.crt (default /etc/cryo/certs.d).", valueName: "DIR"))
    var registryCertsDir: String = "/etc/cryo/certs.d"

    @Flag(name: .customLong("only-local-registries"),
          help: "Contact only loopback and --insecure-registry registries; refuse pulls from any other (Docker Hub included).")
    var onlyLocalRegistries = false

    func validate() throws {
        for e in insecureRegistries {
            do { _ = try RegistrySettings.validateInsecureEntry(e) } catch { throw ValidationError("\(error)") }
        }
        for m in registryMirrors {
            do { _ = try RegistrySettings.validateMirror(m) } catch { throw ValidationError("\(error)") }
        }
        do {
            _ = try LogOptions.parseLevel(logLevel)
            _ = try LogOptions.parseFormat(logFormat)
        } catch {
            throw ValidationError("\(error)")
        }
        if let n = imageExtractLimit, n < 1 { throw ValidationError("--image-extract-limit must be at least 1") }
        guard (1...86_400).contains(idleTimeout) else { throw ValidationError("--idle-timeout must be from 1 to 86400 seconds") }
        guard (2...3_600).contains(peerTimeout) else { throw ValidationError("--peer-timeout must be from 2 to 3600 seconds") }
        if let n = maxConnections, n < 1 { throw ValidationError("--max-connections must be at least 1") }
    }

    func run() async throws {
        CryoLogging.bootstrap(LogOptions(level: try LogOptions.parseLevel(logLevel), format: try LogOptions.parseFormat(logFormat)))
        guard getuid() == 0 else { throw ValidationError("cryod must run as root (it creates namespaces, cgroups and mounts)") }
        var addresses: [HTTPListener.Address] = []
        for h in host.isEmpty ? ["unix:///run/cryo/cryo.sock"] : host {
            let a: HTTPListener.Address
            do { a = try HTTPListener.Address.parse(h) } catch { throw ValidationError("\(error)") }
            guard !addresses.contains(a) else { throw ValidationError("-H \(h) given twice") }
            addresses.append(a)
        }
        let identity = try loadTLSIdentity(needed: addresses.contains { if case .tcp = $0 { true } else { false } })
        var listeners: [HTTPListener] = []
        for a in addresses {
            switch a {
            case .unix(let path, let mode):
                try FS.mkdirAll(FS.parent(path), mode: 0o711)
                listeners.append(.unix(path, mode: mode))
            case .tcp(let host, let port):
                // loadTLSIdentity refused TCP without an identity.
                let setup = try TLSServerSetup(identity: identity!, liveness: TCPLiveness(seconds: peerTimeout),
                                               log: { daemonLog.warning("\($0)") })
                listeners.append(.tcp(host: host, port: port, secure: { try setup.secure($0) }))
            }
        }
        var shutdownCheckpoint = checkpointOnShutdown
        var insecure = insecureRegistries
        var mirrorURLs = registryMirrors
        if let path = config {
            let file: DaemonConfigFile
            do {
                file = try JSONDecoder().decode(DaemonConfigFile.self, from: Data(try FS.readBytes(path)))
            } catch {
                throw ValidationError("--config \(path): \(error)")
            }
            if file.checkpointOnShutdown == true { shutdownCheckpoint = true }
            insecure += file.insecureRegistries ?? []
            mirrorURLs += file.registryMirrors ?? []
        }
        var mirrors: [String] = []
        var plainMirrors: Set<String> = []
        do {
            insecure = try insecure.map(RegistrySettings.validateInsecureEntry)
            for url in mirrorURLs {
                let m = try RegistrySettings.validateMirror(url)
                if !mirrors.contains(m.hostPort) { mirrors.append(m.hostPort) }
                if m.plain { plainMirrors.insert(m.hostPort) }
                // An http:// mirror is spoken to in plain HTTP, as dockerd does.
                if m.plain && !insecure.contains(m.hostPort) { insecure.append(m.hostPort) }
            }
        } catch {
            throw ValidationError("\(error)")
        }
        signal(SIGPIPE, SIG_IGN)
        // One descriptor per API connection: use all the hard limit allows.
        var openFiles = "open files unknown"
        do {
            openFiles = "open files \(try ResourceLimits.raiseOpenFiles().soft)"
        } catch {
            daemonLog.warning("cannot raise RLIMIT_NOFILE: \(error)")
        }
        let binDir = FS.parent(FS.readlink("/proc/self/exe") ?? CommandLine.arguments[0])
        var options = EngineOptions(paths: EnginePaths(root: FS.absolute(root), execRoot: FS.absolute(execRoot)), binDir: binDir)
        options.checkpointOnShutdown = shutdownCheckpoint
        options.defaultSubnet = defaultSubnet
        options.defaultBridge = bridge
        if let c = cgroupParent {
            guard c.hasPrefix("/"), !c.contains(".."), c.count > 1 else {
                throw ValidationError("--cgroup-parent \"\(c)\": an absolute cgroup path like /cryo-b")
            }
            options.cgroupParent = c.hasSuffix("/") ? String(c.dropLast()) : c
        }
        options.maxImageExtractBytes = imageExtractLimit
        if let identity {
            // `cryo migrate` to tcp://HOST:PORT: this daemon's certificate is its client
            // certificate, the peer's is checked against the same CA and the address dialled.
            let liveness = TCPLiveness(seconds: peerTimeout)
            options.dialPeer = { target in
                guard case .tcp(let host, let port)? = try? HTTPListener.Address.parse(target) else {
                    throw CryoFailure(.invalidArgument, "migration target \"\(target)\": use tcp://HOST:PORT")
                }
                return try await TLSByteStream.connect(host: host, port: port, identity: identity, liveness: liveness)
            }
        }
        if let dirs = cniBinDir ?? ProcessInfo.processInfo.environment["CRYO_CNI_BIN_DIR"], !dirs.isEmpty {
            options.cniPluginDirs = dirs.split(separator: ":").map { FS.absolute(String($0)) }
        }
        let engine = try Engine(options: options, group: MultiThreadedEventLoopGroup.singleton)
        await engine.recover()
        for id in await engine.removeInterruptedCreates() { daemonLog.notice("removed the unfinished create of container \(id)") }

        let registry = RegistryClient(settings: RegistrySettings(insecureRegistries: insecure, certsDir: FS.absolute(registryCertsDir),
                                                                 onlyLocal: onlyLocalRegistries, mirrors: mirrors,
                                                                 plainMirrors: plainMirrors))
        let api = APIServer(engine: engine, tlsIdentity: identity, registry: registry)
        let limits = ConnectionLimits(idleTimeout: .seconds(Int64(idleTimeout)), maxConnections: maxConnections)
        let server = HTTPServer(listeners: listeners, defaultHeaders: APIServer.defaultHeaders, limits: limits) { ex in
            await api.handle(ex)
        }
        do {
            try await server.start()
        } catch {
            await engine.shutdown()
            throw error
        }
        // Recovery has settled: containers whose restart policy brings them back with the
        // daemon start now, in the background, each under its lock.
        let restarting = await engine.startByRestartPolicy()
        if !restarting.isEmpty { daemonLog.info("starting \(restarting.count) container(s) by their restart policy") }
        let tlsNote = identity.map { ", TLS with client certificates from \($0.paths.caPath)" } ?? ""
        daemonLog.info("cryod \(APIServer.engineVersion) listening on \(listeners.map(\.description).joined(separator: ", "))\(tlsNote) (root \(options.paths.root), exec-root \(options.paths.execRoot), \(openFiles)\(shutdownCheckpoint ? ", checkpoint on shutdown" : ""))")

        let signal = await Self.waitForTermination()
        daemonLog.info("received \(signal == SIGINT ? "SIGINT" : "SIGTERM"): shutting down")
        try? await server.shutdown()
        await engine.shutdown()
        await registry.shutdown()
        daemonLog.info("stopped")
    }

    /// --tlsverify (or --tls, which implies it) and the three files, each defaulting to
    /// $DOCKER_CERT_PATH/{ca,cert,key}.pem. A tcp:// listener without them is refused:
    /// cryod has no unauthenticated TCP.
    func loadTLSIdentity(needed: Bool) throws -> TLSIdentity? {
        let verify = tls || tlsverify
        if !verify {
            if needed {
                throw ValidationError("refusing to listen on TCP without TLS: a tcp:// -H needs --tlsverify with --tlscacert, --tlscert and --tlskey (cryo tls init / cryo tls issue make them); anyone who can reach an unauthenticated port can run containers as root")
            }
            if tlscacert != nil || tlscert != nil || tlskey != nil {
                throw ValidationError("--tlscacert, --tlscert and --tlskey need --tlsverify")
            }
            return nil
        }
        let certDir = ProcessInfo.processInfo.environment["DOCKER_CERT_PATH"].flatMap { $0.isEmpty ? nil : $0 }
        func file(_ given: String?, _ flag: String, _ name: String) throws -> String {
            if let given { return FS.absolute(given) }
            if let certDir { return FS.absolute(certDir + "/" + name) }
            throw ValidationError("--tlsverify needs \(flag) (or DOCKER_CERT_PATH holding ca.pem, cert.pem and key.pem)")
        }
        let paths = TLSIdentityPaths(caPath: try file(tlscacert, "--tlscacert", "ca.pem"),
                                     certPath: try file(tlscert, "--tlscert", "cert.pem"),
                                     keyPath: try file(tlskey, "--tlskey", "key.pem"))
        do {
            let identity = try TLSIdentity(paths: paths)
            // Fails here, at start, when the key does not match the certificate.
            _ = try identity.makeServerContext()
            return identity
        } catch {
            throw ValidationError("\(error)")
        }
    }

    static func waitForTermination() async -> Int32 {
        await withCheckedContinuation { (done: CheckedContinuation<Int32, Never>) in
            let fired = NIOLockedValueBox(false)
            for s in [SIGTERM, SIGINT] {
                Glibc.signal(s, SIG_IGN)
                let src = DispatchSource.makeSignalSource(signal: s, queue: .global())
                src.setEventHandler {
                    // The first signal resumes; a second one is ignored.
                    if fired.withLockedValue({ f in defer { f = true }; return !f }) { done.resume(returning: s) }
                }
                src.resume()
                signalSources.append(src)
            }
        }
    }
}

/// Keeps the signal sources alive for the life of the process (set once, at start).
nonisolated(unsafe) var signalSources: [DispatchSourceSignal] = []

/// cryod's own lines (start, stop, TLS handshakes); the engine logs under the same label.
/// Computed, so that it is made after `CryoLogging.bootstrap`.
var daemonLog: Logger { Logger(label: "cryod") }
