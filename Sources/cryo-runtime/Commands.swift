import CryoRuntime

/// Every subcommand of cryo-runtime with its flags (runc's names).
enum Commands {
    static let createOptions: [CLIOption] = [
        CLIOption("bundle", short: "b", value: true, "path to the bundle directory (default: current directory)"),
        CLIOption("console-socket", value: true, "unix socket that receives the pty master when process.terminal is true"),
        CLIOption("pid-file", value: true, "file to write the container init's pid to"),
        CLIOption("no-pivot", "use MS_MOVE + chroot instead of pivot_root (for ramfs roots)"),
        CLIOption("no-new-keyring", "accepted for runc compatibility; cryo-runtime never creates session keyrings"),
        CLIOption("preserve-fds", value: true, "pass N additional file descriptors (3..3+N-1) to the container"),
    ]

    static let all: [CLICommand] = [
        CLICommand("spec", usage: "spec [--bundle DIR]", summary: "write a default config.json into the bundle",
                   options: [CLIOption("bundle", short: "b", value: true, "bundle directory"),
                             CLIOption("rootless", "not supported (cryo-runtime needs root)")]),
        CLICommand("create", usage: "create [options] CONTAINER-ID", summary: "create a container; its process waits for `start`",
                   options: createOptions),
        CLICommand("start", usage: "start CONTAINER-ID", summary: "run the user process of a created container", options: []),
        CLICommand("run", usage: "run [options] CONTAINER-ID", summary: "create and start a container; without --detach, wait and return its exit code",
                   options: createOptions + [CLIOption("detach", short: "d", "return once the container is running"),
                                             CLIOption("keep", "do not delete the container after it exits")]),
        CLICommand("state", usage: "state CONTAINER-ID", summary: "print the container's OCI state as JSON", options: []),
        CLICommand("list", aliases: ["ls"], usage: "list [--format table|json] [--quiet]", summary: "list containers",
                   options: [CLIOption("format", short: "f", value: true, "table (default) or json"),
                             CLIOption("quiet", short: "q", "print only container IDs")]),
        CLICommand("kill", usage: "kill [--all] CONTAINER-ID [SIGNAL]", summary: "send a signal (default SIGTERM) to the container init",
                   options: [CLIOption("all", short: "a", "send the signal to every process of the container")]),
        CLICommand("delete", aliases: ["rm"], usage: "delete [--force] CONTAINER-ID", summary: "delete a stopped container and its resources",
                   options: [CLIOption("force", short: "f", "kill the container first if it is still running")]),
        CLICommand("pause", usage: "pause CONTAINER-ID", summary: "freeze every process of the container", options: []),
        CLICommand("resume", usage: "resume CONTAINER-ID", summary: "thaw a paused container", options: []),
        CLICommand("ps", usage: "ps [--format table|json] CONTAINER-ID [ps options]", summary: "list the container's processes",
                   options: [CLIOption("format", short: "f", value: true, "table (default) or json")], passThroughAfter: 1),
        CLICommand("exec", usage: "exec [options] CONTAINER-ID [COMMAND [ARG...]]", summary: "run a new process in a running container",
                   options: [
                       CLIOption("process", short: "p", value: true, "path to a process.json (OCI process) instead of COMMAND"),
                       CLIOption("detach", short: "d", "do not wait for the process"),
                       CLIOption("pid-file", value: true, "file to write the process pid to"),
                       CLIOption("console-socket", value: true, "unix socket that receives the pty master"),
                       CLIOption("tty", short: "t", "allocate a pseudo-TTY (needs --console-socket)"),
                       CLIOption("env", short: "e", value: true, "set an environment variable (repeatable)"),
                       CLIOption("cwd", value: true, "working directory in the container"),
                       CLIOption("user", short: "u", value: true, "UID[:GID] to run as"),
                       CLIOption("additional-gids", short: "g", value: true, "additional group id (repeatable)"),
                       CLIOption("cap", short: "c", value: true, "add a capability (repeatable)"),
                       CLIOption("no-new-privs", "set no_new_privileges"),
                       CLIOption("preserve-fds", value: true, "pass N additional file descriptors"),
                       CLIOption("process-label", value: true, "accepted, ignored (no SELinux here)"),
                       CLIOption("apparmor", value: true, "accepted, ignored (no AppArmor here)"),
                   ], passThroughAfter: 1),
        CLICommand("checkpoint", usage: "checkpoint [options] CONTAINER-ID", summary: "checkpoint a running container with CRIU",
                   options: [
                       CLIOption("image-path", value: true, "directory for the CRIU images (default: ./checkpoint)"),
                       CLIOption("work-path", value: true, "directory for CRIU's log and stats (default: the image path)"),
                       CLIOption("parent-path", value: true, "previous pre-dump, relative to the image path (needs soft-dirty tracking)"),
                       CLIOption("leave-running", "keep the container running after the checkpoint"),
                       CLIOption("tcp-established", "checkpoint established TCP connections"),
                       CLIOption("ext-unix-sk", "allow unix sockets connected outside the container"),
                       CLIOption("shell-job", "the container shares the caller's session/terminal"),
                       CLIOption("file-locks", "checkpoint file locks"),
                       CLIOption("pre-dump", "dump memory only, keep running (needs soft-dirty tracking)"),
                       CLIOption("manage-cgroups-mode", value: true, "soft, full, strict or ignore (default soft)"),
                       CLIOption("empty-ns", value: true, "namespace to leave empty in the image (only \"network\")"),
                       CLIOption("auto-dedup", "punch already-saved pages out of parent images"),
                       CLIOption("lazy-pages", "post-copy: leave memory to be pulled lazily (with --page-server)"),
                       CLIOption("page-server", value: true, "ADDRESS:PORT of a page server"),
                       CLIOption("status-fd", value: true, "fd to which a zero byte is written when the lazy page server is ready"),
                       CLIOption("network-lock", value: true, "iptables (default), nftables or skip"),
                   ]),
        CLICommand("restore", usage: "restore [options] CONTAINER-ID", summary: "restore a container from CRIU images",
                   options: [
                       CLIOption("image-path", value: true, "directory holding the CRIU images (default: ./checkpoint)"),
                       CLIOption("work-path", value: true, "directory for CRIU's log and stats"),
                       CLIOption("bundle", short: "b", value: true, "bundle of the container to restore (default: current directory)"),
                       CLIOption("detach", short: "d", "return once the container is restored"),
                       CLIOption("pid-file", value: true, "file to write the restored init's pid to"),
                       CLIOption("console-socket", value: true, "unix socket that receives the restored pty master"),
                       CLIOption("no-subreaper", "do not become a subreaper (without --detach)"),
                       CLIOption("no-pivot", "accepted for compatibility (CRIU sets up the root itself)"),
                       CLIOption("tcp-established", "restore established TCP connections"),
                       CLIOption("ext-unix-sk", "allow external unix sockets"),
                       CLIOption("shell-job", "restore into the caller's session/terminal"),
                       CLIOption("file-locks", "restore file locks"),
                       CLIOption("manage-cgroups-mode", value: true, "soft, full, strict or ignore (default soft)"),
                       CLIOption("empty-ns", value: true, "namespace that was left empty (only \"network\")"),
                       CLIOption("auto-dedup", "punch restored pages out of the images"),
                       CLIOption("lazy-pages", "post-copy: pages are served by a running `criu lazy-pages`"),
                       CLIOption("network-lock", value: true, "iptables (default), nftables or skip"),
                       CLIOption("lsm-profile", value: true, "accepted, ignored (no LSM here)"),
                       CLIOption("lsm-mount-context", value: true, "accepted, ignored (no LSM here)"),
                   ]),
        CLICommand("features", usage: "features", summary: "print the features of this runtime as JSON", options: []),
    ]

    static let globalOptions: [CLIOption] = [
        CLIOption("root", value: true, "state directory (default /run/cryo-runtime)"),
        CLIOption("log", value: true, "log file (errors are also printed to stderr)"),
        CLIOption("log-format", value: true, "text (default) or json"),
        CLIOption("debug", "verbose logging"),
        CLIOption("criu", value: true, "path to the criu binary (default: criu on PATH)"),
        CLIOption("systemd-cgroup", "not supported: cryo-runtime manages cgroups through cgroupfs"),
        CLIOption("rootless", value: true, "only \"false\" is supported"),
        CLIOption("help", short: "h", "show help"),
        CLIOption("version", short: "v", "print the version"),
    ]

    static func find(_ name: String) -> CLICommand? {
        all.first { $0.name == name || $0.aliases.contains(name) }
    }

    static func mainHelp() -> String {
        var s = "cryo-runtime - an OCI runtime with native checkpoint/restore (runc-compatible command line)\n\n"
        s += "Usage:\n  cryo-runtime [global options] COMMAND [options] [arguments]\n\nCommands:\n"
        for c in all { s += "  \(c.name.padding(toLength: 12, withPad: " ", startingAt: 0)) \(c.summary)\n" }
        s += "\nGlobal options:\n"
        for o in globalOptions {
            let short = o.short.map { "-\($0), " } ?? "    "
            let flag = "--\(o.name)\(o.takesValue ? " value" : "")"
            s += "  \(short)\(flag.padding(toLength: 20, withPad: " ", startingAt: 0)) \(o.help)\n"
        }
        s += "\nRun 'cryo-runtime COMMAND --help' for a command's options.\n"
        return s
    }
}

extension String {
    func padding(toLength n: Int, withPad _: String, startingAt _: Int) -> String {
        count >= n ? self : self + String(repeating: " ", count: n - count)
    }
}
