#define _GNU_SOURCE
#include "cshim.h"

#include <errno.h>
#include <sys/vfs.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>
#include <linux/capability.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

// Report from the child to the parent when a step before execve fails.
struct spawn_failure { int err; int step; };
static const char *const spawn_steps[] = {
    "clone3", "setsid", "dup", "dup2", "prctl(PR_SET_PDEATHSIG)", "chdir", "execve", "pipe2", "sigprocmask",
    "keyctl(KEYCTL_JOIN_SESSION_KEYRING)",
};

static void child_fail(int pipe_fd, int step) {
    struct spawn_failure f = { errno, step };
    ssize_t r = write(pipe_fd, &f, sizeof f);
    (void)r;
    _exit(127);
}

#include <linux/filter.h>
#include <linux/seccomp.h>

int cryo_seccomp_set_filter(const void *prog, unsigned int len, unsigned int flags) {
    struct sock_fprog fp;
    fp.len = (unsigned short)(len / sizeof(struct sock_filter));
    fp.filter = (struct sock_filter *)prog;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fp);
}

// keyctl(2) is variadic in libc's syscall(): these are its two calls cryo makes.
#define CRYO_KEYCTL_SETPERM 5
#define CRYO_KEYCTL_JOIN_SESSION_KEYRING 1

long cryo_join_session_keyring(const char *name, uint32_t perm) {
    long key = syscall(SYS_keyctl, CRYO_KEYCTL_JOIN_SESSION_KEYRING, name, 0, 0, 0);
    if (key < 0) return -1;
    if (syscall(SYS_keyctl, CRYO_KEYCTL_SETPERM, key, (unsigned long)perm, 0, 0) != 0) return -1;
    return key;
}

int cryo_spawn(const struct cryo_spawn_attr *attr, pid_t *pid_out, int *pidfd_out, const char **failed_step) {
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) != 0) { *failed_step = spawn_steps[7]; return -1; }

    // Block every signal so the child cannot run an inherited handler before it
    // resets them; the parent restores its mask right after clone3.
    sigset_t all, old;
    sigfillset(&all);
    if (pthread_sigmask(SIG_SETMASK, &all, &old) != 0) {
        close(errpipe[0]); close(errpipe[1]); *failed_step = spawn_steps[8]; return -1;
    }

    int pidfd = -1;
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = attr->clone_flags | (pidfd_out ? CLONE_PIDFD : 0);
    args.pidfd = (uint64_t)(uintptr_t)&pidfd;
    args.exit_signal = SIGCHLD;
    if (attr->into_cgroup) {
        // Born in its v2 cgroup: no migration later, so no wait for the global
        // cgroup_threadgroup_rwsem (and its RCU grace period) that a cgroup.procs write takes.
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)attr->cgroup_fd;
    }
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) {
        // Child: async-signal-safe calls only.
        int ep = errpipe[1];
        for (int s = 1; s < NSIG; s++) {
            if (s == SIGKILL || s == SIGSTOP) continue;
            struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = SIG_DFL;
            syscall(SYS_rt_sigaction, s, &sa, NULL, 8);
        }
        if (attr->setsid && setsid() < 0) child_fail(ep, 1);
        if (attr->pdeathsig && prctl(PR_SET_PDEATHSIG, attr->pdeathsig, 0, 0, 0) != 0) child_fail(ep, 4);
        // Possessor: everything; the owner (root): view, read, write, search (so an exec
        // can join it by name). See CryoLinux's SessionKeyring.
        // A kernel without keyrings (ENOSYS) has nothing to share.
        if (attr->session_keyring && cryo_join_session_keyring(attr->session_keyring, 0x3f0f0000u) < 0 && errno != ENOSYS)
            child_fail(ep, 9);
        // Move every source fd above the target range first, so dup2 never
        // clobbers a source that is still needed.
        int n = attr->nfds;
        int floor = n + 3;
        if (ep < floor) { int e2 = fcntl(ep, F_DUPFD_CLOEXEC, floor); if (e2 < 0) child_fail(ep, 2); ep = e2; }
        int exe = attr->exe_fd;
        if (exe >= 0 && exe < floor) { int x = fcntl(exe, F_DUPFD_CLOEXEC, floor); if (x < 0) child_fail(ep, 2); exe = x; }
        int moved[256];
        if (n > 256) { errno = EINVAL; child_fail(ep, 2); }
        for (int i = 0; i < n; i++) {
            moved[i] = -1;
            if (attr->fds[i] >= 0) {
                moved[i] = fcntl(attr->fds[i], F_DUPFD_CLOEXEC, floor);
                if (moved[i] < 0) child_fail(ep, 2);
            }
        }
        for (int i = 0; i < n; i++) {
            if (moved[i] >= 0) {
                if (dup2(moved[i], i) < 0) child_fail(ep, 3);
            } else {
                close(i);
            }
        }
        // Nothing else leaks into the new program.
        syscall(SYS_close_range, (unsigned)n, ~0U, CLOSE_RANGE_CLOEXEC);
        if (attr->cwd && chdir(attr->cwd) != 0) child_fail(ep, 5);
        sigset_t none; sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (exe >= 0) {
            syscall(SYS_execveat, exe, "", attr->argv, attr->envp, AT_EMPTY_PATH);
        } else {
            execve(attr->path, attr->argv, attr->envp);
        }
        child_fail(ep, 6);
    }
    int clone_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(errpipe[1]);
    if (pid < 0) {
        close(errpipe[0]);
        errno = clone_errno;
        *failed_step = spawn_steps[0];
        return -1;
    }
    struct spawn_failure f;
    ssize_t r;
    do { r = read(errpipe[0], &f, sizeof f); } while (r < 0 && errno == EINTR);
    close(errpipe[0]);
    if (r == (ssize_t)sizeof f) {
        // The child failed before execve and exited; reap it.
        int st;
        while (waitpid((pid_t)pid, &st, 0) < 0 && errno == EINTR) {}
        if (pidfd >= 0) close(pidfd);
        *failed_step = spawn_steps[f.step];
        errno = f.err;
        return -1;
    }
    *pid_out = (pid_t)pid;
    if (pidfd_out) *pidfd_out = pidfd;
    return 0;
}

int cryo_pivot_root(const char *new_root, const char *put_old) {
    return (int)syscall(SYS_pivot_root, new_root, put_old);
}

int cryo_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5) {
    return prctl(option, a2, a3, a4, a5);
}

int cryo_pidfd_open(pid_t pid, unsigned int flags) { return (int)syscall(SYS_pidfd_open, pid, flags); }
int cryo_pidfd_send_signal(int pidfd, int sig) { return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0); }
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
int cryo_pidfd_getfd(int pidfd, int targetfd) { return (int)syscall(SYS_pidfd_getfd, pidfd, targetfd, 0); }
/* kcmp(KCMP_FILE = 0): 0 when both fds refer to the same open file. */
int cryo_kcmp_file(pid_t pid1, pid_t pid2, int fd1, int fd2) { return (int)syscall(SYS_kcmp, pid1, pid2, 0, fd1, fd2); }
int cryo_setns(int fd, int nstype) { return setns(fd, nstype); }
int cryo_unshare(int flags) { return unshare(flags); }
int cryo_close_range_cloexec(unsigned int first) {
    return (int)syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC);
}

int cryo_capget(uint32_t eff[2], uint32_t perm[2], uint32_t inh[2]) {
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) != 0) return -1;
    for (int i = 0; i < 2; i++) { eff[i] = d[i].effective; perm[i] = d[i].permitted; inh[i] = d[i].inheritable; }
    return 0;
}

int cryo_capset(const uint32_t eff[2], const uint32_t perm[2], const uint32_t inh[2]) {
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    for (int i = 0; i < 2; i++) { d[i].effective = eff[i]; d[i].permitted = perm[i]; d[i].inheritable = inh[i]; }
    return (int)syscall(SYS_capset, &h, d);
}

int cryo_ioctl_int(int fd, unsigned long request, int *arg) { return ioctl(fd, request, arg); }
int cryo_ioctl_noarg(int fd, unsigned long request, unsigned long arg) { return ioctl(fd, request, arg); }
unsigned long cryo_TIOCGPTN(void) { return TIOCGPTN; }
unsigned long cryo_TIOCSPTLCK(void) { return TIOCSPTLCK; }
unsigned long cryo_TIOCSCTTY(void) { return TIOCSCTTY; }

int cryo_mknod(const char *path, unsigned int mode, unsigned int maj, unsigned int min) {
    return mknod(path, mode, makedev(maj, min));
}
unsigned int cryo_major(uint64_t dev) { return major(dev); }
unsigned int cryo_minor(uint64_t dev) { return minor(dev); }

ssize_t cryo_send_fd(int sock, int fd, const void *data, size_t len) {
    char byte = 0;
    struct iovec iov = { (void *)(len ? data : &byte), len ? len : 1 };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
    memset(&u, 0, sizeof u);
    struct msghdr msg; memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov; msg.msg_iovlen = 1;
    if (fd >= 0) {
        msg.msg_control = u.buf; msg.msg_controllen = sizeof u.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS; c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    ssize_t r;
    do { r = sendmsg(sock, &msg, MSG_NOSIGNAL); } while (r < 0 && errno == EINTR);
    return r;
}

ssize_t cryo_recv_with_fd(int sock, void *buf, size_t len, int *fd) {
    *fd = -1;
    struct iovec iov = { buf, len };
    union { char buf[CMSG_SPACE(sizeof(int) * 4)]; struct cmsghdr align; } u;
    struct msghdr msg; memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov; msg.msg_iovlen = 1;
    msg.msg_control = u.buf; msg.msg_controllen = sizeof u.buf;
    ssize_t r;
    do { r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); } while (r < 0 && errno == EINTR);
    if (r < 0) return r;
    if (msg.msg_flags & MSG_TRUNC) { errno = EMSGSIZE; return -1; }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            int fds[4];
            memcpy(fds, CMSG_DATA(c), sizeof(int) * (n > 4 ? 4 : n));
            if (n > 0) *fd = fds[0];
            for (int i = 1; i < n && i < 4; i++) close(fds[i]);
        }
    }
    return r;
}

ssize_t cryo_peek_size(int sock) {
    ssize_t r;
    do { r = recv(sock, NULL, 0, MSG_PEEK | MSG_TRUNC); } while (r < 0 && errno == EINTR);
    return r;
}


int cryo_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }
long cryo_fs_type(const char *path) {
    struct statfs s;
    if (statfs(path, &s) != 0) return -1;
    return (long)s.f_type;
}
long cryo_fd_fs_type(int fd) {
    struct statfs s;
    if (fstatfs(fd, &s) != 0) return -1;
    return (long)s.f_type;
}
int cryo_setresuid(uid_t r, uid_t e, uid_t s) { return setresuid(r, e, s); }
int cryo_setresgid(gid_t r, gid_t e, gid_t s) { return setresgid(r, e, s); }
int cryo_punch_hole(int fd, long long offset, long long length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length);
}

int cryo_set_winsize(int fd, unsigned short rows, unsigned short cols) {
    struct winsize ws = { .ws_row = rows, .ws_col = cols };
    return ioctl(fd, TIOCSWINSZ, &ws);
}

#include <net/if.h>
#include <netinet/in.h>
#include <unistd.h>

int cryo_loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        rc = ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    int saved = errno;
    close(s);
    errno = saved;
    return rc;
}
