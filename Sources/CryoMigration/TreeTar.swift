import CryoHTTP
import CryoLinux
import Glibc
import NIOPosix

/// A directory tree as a tar stream, made and unpacked by GNU tar so that an overlay upper
/// directory travels exactly: whiteouts (0/0 character devices), opaque-directory and other
/// xattrs (trusted.* too: tar runs as root), owners by number, holes. tar's output (or
/// input) is one end of a socket pair that cryod reads (or writes) asynchronously.
///
/// The receiving tar runs with GNU tar's defaults against hostile members (leading `/` and
/// `..` members are refused) and the peer is an authenticated cryod of the same cluster.
public struct TarProcess: Sendable {
    public let stream: RawStream
    let process: SpawnedProcess
    let errorFile: String
    let what: String

    static let tar: String = ["/usr/bin/tar", "/bin/tar"].first(where: { (p: String) in access(p, X_OK) == 0 }) ?? "/usr/bin/tar"

    /// `tar --create` of `members` (paths relative to `dir`; "." for all) → the stream.
    /// `errorFile` (in cryo's own directories) collects tar's complaints.
    public static func create(dir: String, members: [String] = ["."], errorFile: String) async throws -> TarProcess {
        // --no-recursion with an explicit list would miss subtrees: recurse for ".".
        let args = [tar, "--create", "--file=-", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--sparse",
                    "--one-file-system", "-C", dir, "--"] + members
        return try await start(args, output: true, errorFile: errorFile, what: "archiving \(dir)")
    }

    /// `tar --extract` into `dir` from what is written to the stream.
    public static func extract(into dir: String, errorFile: String) async throws -> TarProcess {
        let args = [tar, "--extract", "--file=-", "--numeric-owner", "--same-owner", "--same-permissions",
                    "--xattrs", "--xattrs-include=*", "--sparse", "-C", dir]
        return try await start(args, output: false, errorFile: errorFile, what: "unpacking into \(dir)")
    }

    static func start(_ args: [String], output: Bool, errorFile: String, what: String) async throws -> TarProcess {
        var sv: [Int32] = [-1, -1]
        try sys(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sv), "socketpair")
        let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
        let err = open(errorFile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        defer {
            if devnull >= 0 { close(devnull) }
            if err >= 0 { close(err) }
            close(sv[1])
        }
        guard devnull >= 0, err >= 0 else {
            close(sv[0])
            throw SyscallError("open", devnull < 0 ? "/dev/null" : errorFile)
        }
        let fds = output ? [devnull, sv[1], err] : [sv[1], devnull, err]
        let p: SpawnedProcess
        do {
            p = try Spawn.spawn(path: args[0], args: args, env: ["PATH=/usr/bin:/bin", "LC_ALL=C"], fds: fds)
        } catch {
            close(sv[0])
            throw error
        }
        let stream = try await RawStream.adopt(socket: sv[0])
        return TarProcess(stream: stream, process: p, errorFile: errorFile, what: what)
    }

    /// Waits for tar to end; throws with its complaints unless it exited 0.
    public func finish() async throws {
        let code = try await exitCode(of: process)
        guard code == 0 else {
            let text = ((try? FS.readString(errorFile)) ?? "").split(separator: "\n").suffix(5).joined(separator: "; ")
            throw CryoFailure(.internal, "tar failed \(what) (exit status \(code)): \(text)")
        }
    }

    /// Stops tar (after a failure elsewhere) and reaps it.
    public func cancel() async {
        kill(process.pid, SIGKILL)
        await stream.close()
        try? await finish()
    }
}
