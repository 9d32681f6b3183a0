import CryoOCI

/// cryo's default seccomp profile: what a container may call unless `--privileged` or
/// `--security-opt seccomp=…` says otherwise. It behaves as Docker's default (moby 28):
/// everything not listed fails with EPERM, a fixed set is allowed to everyone, more is
/// allowed with certain capabilities (`docker run --cap-add SYS_ADMIN` also unlocks mount,
/// unshare, setns...), and a few calls are allowed only with certain arguments. Kept as
/// data here and turned into a `SeccompProfile` (Docker's format), so it resolves per
/// container exactly as a user's profile does.
public enum DefaultSeccompProfile {
    /// Not allowed: EPERM, as Docker (podman's default answers ENOSYS instead).
    static let deniedErrno: UInt32 = 1

    /// Allowed to every container, grouped by what they are for. Notably absent: the
    /// keyring calls (add_key, keyctl, request_key: keys are not namespaced), io_uring,
    /// kexec, swapon/swapoff, userfaultfd, bpf and perf_event_open (see `byCapability`),
    /// mount and unshare (CAP_SYS_ADMIN), ptrace before kernel 4.8.
    static let allowed: [(purpose: String, names: [String])] = [
        ("processes and threads", [
            "execve", "execveat", "exit", "exit_group", "fork", "get_robust_list", "get_thread_area", "getpgid",
            "getpgrp", "getpid", "getppid", "getrandom", "getsid", "gettid", "landlock_add_rule",
            "landlock_create_ruleset", "landlock_restrict_self", "pidfd_open", "prctl", "riscv_hwprobe", "seccomp",
            "set_robust_list", "set_thread_area", "set_tid_address", "setpgid", "setsid", "umask", "uname",
            "uretprobe", "vfork", "wait4", "waitid", "waitpid",
        ]),
        ("identity: user and group ids, capabilities", [
            "capget", "capset", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
            "getgroups32", "getresgid", "getresgid32", "getresuid", "getresuid32", "getuid", "getuid32", "setfsgid",
            "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setregid",
            "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setuid",
            "setuid32",
        ]),
        ("signals", [
            "kill", "pause", "pidfd_send_signal", "restart_syscall", "rt_sigaction", "rt_sigpending",
            "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
            "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sigaltstack", "signalfd", "signalfd4", "sigprocmask",
            "sigreturn", "tgkill", "tkill",
        ]),
        ("memory", [
            "brk", "cachestat", "madvise", "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret",
            "mincore", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mremap", "mseal", "msync",
            "munlock", "munlockall", "munmap", "pkey_alloc", "pkey_free", "pkey_mprotect", "process_mrelease",
            "remap_file_pages",
        ]),
        ("files and directories", [
            "access", "chdir", "chmod", "chown", "chown32", "creat", "faccessat", "faccessat2", "fchdir", "fchmod",
            "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fstat", "fstat64", "fstatat64", "fstatfs",
            "fstatfs64", "futimesat", "getcwd", "getdents", "getdents64", "lchown", "lchown32", "link", "linkat",
            "listmount", "lstat", "lstat64", "mkdir", "mkdirat", "mknod", "mknodat", "name_to_handle_at",
            "newfstatat", "open", "openat", "openat2", "readlink", "readlinkat", "rename", "renameat", "renameat2",
            "rmdir", "stat", "stat64", "statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat", "unlink",
            "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes",
        ]),
        ("extended attributes", [
            "fgetxattr", "flistxattr", "fremovexattr", "fsetxattr", "getxattr", "getxattrat", "lgetxattr",
            "listxattr", "listxattrat", "llistxattr", "lremovexattr", "lsetxattr", "removexattr", "removexattrat",
            "setxattr", "setxattrat",
        ]),
        ("file descriptors and I/O", [
            "_llseek", "close", "close_range", "copy_file_range", "dup", "dup2", "dup3", "fadvise64", "fadvise64_64",
            "fallocate", "fcntl", "fcntl64", "fdatasync", "flock", "fsync", "ftruncate", "ftruncate64", "ioctl",
            "lseek", "pipe", "pipe2", "pread64", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2", "read",
            "readahead", "readv", "sendfile", "sendfile64", "splice", "sync", "sync_file_range", "syncfs", "tee",
            "truncate", "truncate64", "vmsplice", "write", "writev",
        ]),
        ("waiting: polling, events, futexes, asynchronous I/O", [
            "_newselect", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
            "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "fanotify_mark", "futex",
            "futex_requeue", "futex_time64", "futex_wait", "futex_waitv", "futex_wake", "inotify_add_watch",
            "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "io_destroy", "io_getevents",
            "io_pgetevents", "io_pgetevents_time64", "io_setup", "io_submit", "ioprio_get", "ioprio_set", "poll",
            "ppoll", "ppoll_time64", "pselect6", "pselect6_time64", "select",
        ]),
        ("sockets (socket(2) itself is a rule of its own)", [
            "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt", "listen", "recv",
            "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg", "sendmsg", "sendto",
            "setsockopt", "shutdown", "socketcall", "socketpair",
        ]),
        ("IPC: System V and POSIX message queues, semaphores, shared memory", [
            "ipc", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
            "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "msgctl", "msgget", "msgrcv", "msgsnd", "semctl",
            "semget", "semop", "semtimedop", "semtimedop_time64", "shmat", "shmctl", "shmdt", "shmget",
        ]),
        ("time and timers", [
            "adjtimex", "alarm", "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64",
            "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "getitimer",
            "gettimeofday", "nanosleep", "setitimer", "time", "timer_create", "timer_delete", "timer_getoverrun",
            "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create",
            "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64",
        ]),
        ("scheduling and resources", [
            "getcpu", "getpriority", "getrlimit", "getrusage", "prlimit64", "rseq", "sched_get_priority_max",
            "sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_getscheduler",
            "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr",
            "sched_setparam", "sched_setscheduler", "sched_yield", "setpriority", "setrlimit", "sysinfo", "times",
            "ugetrlimit",
        ]),
    ]

    /// Allowed only to a container holding the capability.
    static let byCapability: [(capability: String, names: [String])] = [
        ("CAP_DAC_READ_SEARCH", ["open_by_handle_at"]),
        ("CAP_SYS_ADMIN", [
            "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie",
            "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "mount", "mount_setattr", "move_mount",
            "open_tree", "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns",
            "syslog", "umount", "umount2", "unshare",
        ]),
        ("CAP_SYS_BOOT", ["reboot"]),
        ("CAP_SYS_CHROOT", ["chroot"]),
        ("CAP_SYS_MODULE", ["delete_module", "finit_module", "init_module"]),
        ("CAP_SYS_PACCT", ["acct"]),
        ("CAP_SYS_PTRACE", ["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"]),
        ("CAP_SYS_RAWIO", ["ioperm", "iopl"]),
        ("CAP_SYS_TIME", ["clock_settime", "clock_settime64", "settimeofday", "stime"]),
        ("CAP_SYS_TTY_CONFIG", ["vhangup"]),
        ("CAP_SYS_NICE", ["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"]),
        ("CAP_SYSLOG", ["syslog"]),
        ("CAP_BPF", ["bpf"]),
        ("CAP_PERFMON", ["perf_event_open"]),
    ]

    /// Allowed to everyone from this kernel on (before 4.8 ptrace could bypass seccomp).
    static let fromKernel: [(version: String, names: [String])] = [
        ("4.8", ["process_vm_readv", "process_vm_writev", "ptrace"]),
    ]

    /// Allowed only on these architectures (Go's names).
    static let byArchitecture: [(arches: [String], names: [String])] = [
        (["amd64", "x32"], ["arch_prctl"]),
        (["amd64", "x32", "x86"], ["modify_ldt"]),
        (["arm", "arm64"], ["arm_fadvise64_64", "arm_sync_file_range", "breakpoint", "cacheflush", "set_tls", "sync_file_range2"]),
        (["ppc64le"], ["swapcontext", "sync_file_range2"]),
        (["s390", "s390x"], ["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"]),
        (["riscv64"], ["riscv_flush_icache"]),
    ]

    /// personality(2) personas allowed: Linux (0), UNAME26 (0x0020000), PER_LINUX32 (8)
    /// and both, and 0xffffffff (a query). READ_IMPLIES_EXEC and the like are not.
    static let personalities: [UInt64] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff]

    /// socket(2) families refused: AF_VSOCK (40), a way out to the hypervisor.
    static let refusedSocketFamily: UInt64 = 40

    /// clone(2) flags that make namespaces (NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER,
    /// NEWPID, NEWNET): without CAP_SYS_ADMIN a clone must set none of them.
    static let namespaceCloneFlags: UInt64 = 0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000
        | 0x1000_0000 | 0x2000_0000 | 0x4000_0000

    /// The architectures filtered, per native one (a 64-bit filter must also cover the
    /// 32-bit ABIs the CPU can run, or those would be a way around it).
    static let architectures: [SeccompProfile.ArchMap] = [
        .init(architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
        .init(architecture: "SCMP_ARCH_AARCH64", subArchitectures: ["SCMP_ARCH_ARM"]),
        .init(architecture: "SCMP_ARCH_S390X", subArchitectures: ["SCMP_ARCH_S390"]),
        .init(architecture: "SCMP_ARCH_PPC64LE", subArchitectures: nil),
        .init(architecture: "SCMP_ARCH_RISCV64", subArchitectures: nil),
    ]

    public static let profile: SeccompProfile = {
        typealias Rule = SeccompProfile.Rule
        typealias When = SeccompProfile.Condition
        let allow = "SCMP_ACT_ALLOW"
        var rules: [Rule] = [Rule(names: allowed.flatMap(\.names), action: allow)]
        for (version, names) in fromKernel { rules.append(Rule(names: names, action: allow, includes: When(minKernel: version))) }
        rules.append(Rule(names: ["socket"], action: allow,
                          args: [Spec.SyscallArg(index: 0, value: refusedSocketFamily, op: "SCMP_CMP_NE")]))
        for p in personalities {
            rules.append(Rule(names: ["personality"], action: allow, args: [Spec.SyscallArg(index: 0, value: p, op: "SCMP_CMP_EQ")]))
        }
        for (arches, names) in byArchitecture { rules.append(Rule(names: names, action: allow, includes: When(arches: arches))) }
        for (cap, names) in byCapability { rules.append(Rule(names: names, action: allow, includes: When(caps: [cap]))) }
        // Without CAP_SYS_ADMIN: clone only without namespace flags (s390 swaps clone's
        // first two arguments), and clone3 — whose flags seccomp cannot see, they are in
        // memory — answers ENOSYS so that libc falls back to clone.
        let masked = { (index: UInt32) in [Spec.SyscallArg(index: index, value: namespaceCloneFlags, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ")] }
        rules.append(Rule(names: ["clone"], action: allow, args: masked(0),
                          excludes: When(caps: ["CAP_SYS_ADMIN"], arches: ["s390", "s390x"])))
        rules.append(Rule(names: ["clone"], action: allow, args: masked(1),
                          includes: When(arches: ["s390", "s390x"]), excludes: When(caps: ["CAP_SYS_ADMIN"])))
        rules.append(Rule(names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: UInt32(38 /* ENOSYS */),
                          excludes: When(caps: ["CAP_SYS_ADMIN"])))
        return SeccompProfile(defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: deniedErrno, archMap: architectures, syscalls: rules)
    }()
}
