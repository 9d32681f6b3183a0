import CShim
import CryoLinux
import CryoLog
import CryoMonitor
import CryoRuntime
import FoundationEssentials
import Glibc
import NIOCore
import NIOPosix

/// cryod's side of the per-container monitor: starting it, and talking to its socket.
public enum MonitorLink {
    /// The environment of a monitor and of `cryo-runtime exec`: a PATH, and cryod's log level and format.
    static var environment: [String] {
        ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] + CryoLogging.childEnvironment
    }

    /// Starts `cryo-monitor CONFIG` in a session of its own and waits for its ready line:
    /// the container exists (created, or restored and running) or the reason it does not.
    /// The monitor stays cryod's child (collected by `reaper`) until cryod exits. Blocking.
    /// `extraFDs` become the monitor's fds 4, 5, ... (a restore's network gate). The
    /// monitor's stderr is `logPath` (`MonitorLogFile`); a failure it reports carries the
    /// lines it logged.
    static func launch(binary: String, configPath: String, logPath: String, reaper: ChildReaper,
                       extraFDs: [Int32] = []) throws -> MonitorReady {
        var p: [Int32] = [0, 0]
        try sys(cryo_pipe2(&p, O_CLOEXEC), "pipe2", "monitor ready pipe")
        defer { close(p[0]) }
        let null = try sys(open("/dev/null", O_RDWR | O_CLOEXEC), "open", "/dev/null")
        defer { close(null) }
        // With CRYO_TRACE, the monitor (and the runtime and CRIU steps in it) traces to our stderr.
        let tracing = !Trace.childEnvironment.isEmpty
        var log: (fd: Int32, start: Int)?
        if !tracing {
            do { log = try MonitorLogFile.open(logPath) } catch {
                close(p[1])
                throw CryoFailure("opening the container monitor's log", cause: error)
            }
            EngineLog.logger.debug("container monitor log", metadata: ["path": "\(logPath)"])
        }
        defer { if let log { close(log.fd) } }
        let child: SpawnedProcess
        do {
            child = try Spawn.spawn(path: binary, args: ["cryo-monitor", configPath],
                                    env: environment + Trace.childEnvironment + FaultPoint.childEnvironment,
                                    fds: [null, null, log?.fd ?? 2, p[1]] + extraFDs, setsid: true)
        } catch {
            close(p[1])
            throw error
        }
        close(p[1])
        reaper.add(pid: child.pid, pidfd: child.pidfd)
        FaultPoint.hit("monitor-spawned")
        let out = try FS.readAll(fd: p[0], what: "monitor ready pipe")
        let logged = log.map { MonitorLogFile.excerpt(logPath, from: $0.start) } ?? ""
        guard let line = out.split(separator: 0x0a).first else {
            throw CryoFailure(.internal, "the container monitor exited without reporting (\(binary))\(logged)")
        }
        var ready = try JSONDecoder().decode(MonitorReady.self, from: Data(line))
        // A command that cannot be run says all there is in its own words (docker's).
        if ready.error != nil, !logged.isEmpty, ready.failure?.code != .commandNotRunnable {
            ready.error! += logged
            ready.failure?.message += logged
        }
        return ready
    }

    /// Connects to a monitor's socket. Send `requestLine(...)` first; the monitor answers
    /// "ok\n", then (attach) frames follow.
    /// With `halfClosure`, finishing the outbound writer shuts down only our write side
    /// (the attached client's stdin ended) and the monitor's output keeps coming.
    public static func connect(path: String, group: EventLoopGroup, halfClosure: Bool = false) async throws
        -> NIOAsyncChannel<ByteBuffer, ByteBuffer>
    {
        try await ClientBootstrap(group: group)
            .channelOption(.allowRemoteHalfClosure, value: halfClosure)
            .connect(unixDomainSocketPath: path) { ch in
                ch.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: ch,
                        configuration: .init(isOutboundHalfClosureEnabled: halfClosure))
                }
            }
    }

    public static func requestLine(_ request: MonitorRequest) -> ByteBuffer {
        ByteBuffer(bytes: ((try? JSONEncoder().encode(request)) ?? Data()) + [0x0a])
    }

    /// Returns when the monitor exits (its socket closes), or at once if it is gone.
    /// Returns the exit record the monitor sent before closing (nil from a monitor that
    /// was killed, or one older than the in-band record).
    @discardableResult
    public static func waitForExit(path: String, group: EventLoopGroup) async -> ExitRecord? {
        guard let ch = try? await connect(path: path, group: group) else { return nil }
        var received: [UInt8] = []
        _ = try? await ch.executeThenClose { inbound, outbound in
            try await outbound.write(requestLine(MonitorRequest(op: .wait)))
            for try await var buf in inbound {
                if received.count < 1 << 16 { received += buf.readBytes(length: buf.readableBytes) ?? [] }
            }
        }
        // "ok\n", then the record's line.
        let last = received.split(separator: 0x0a).last.map(Array.init) ?? []
        return try? JSONDecoder().decode(ExitRecord.self, from: Data(last))
    }

    public static func resize(path: String, height: UInt16, width: UInt16, group: EventLoopGroup) async throws {
        let ch = try await connect(path: path, group: group)
        try await ch.executeThenClose { inbound, outbound in
            try await outbound.write(requestLine(MonitorRequest(op: .resize, height: height, width: width)))
            for try await _ in inbound { break }
        }
    }
}
