// The C side of cryo: only what Swift cannot call directly (variadic syscalls,
// macros such as CMSG_* and makedev, raw clone3). Nothing here grows into logic.
#ifndef CRYO_CSHIM_H
#define CRYO_CSHIM_H

#include <sys/types.h>
#include <sys/signalfd.h>
#include <stdint.h>
#include <linux/prctl.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sched.h>
#include <netpacket/packet.h>   // struct sockaddr_ll, for GratuitousARP's packet socket
#include <execinfo.h>          // backtrace, for OffActorCheck's log mode

#define CRYO_O_PATH 010000000

/// How to start a child process. The child runs only async-signal-safe C
/// between clone3 and execve (the parent may be multithreaded).
struct cryo_spawn_attr {
    const char *path;              // executable path (used when exe_fd < 0)
    int exe_fd;                    // execveat(exe_fd, "", AT_EMPTY_PATH) when >= 0
    char *const *argv;
    char *const *envp;
    uint64_t clone_flags;          // CLONE_NEW* flags for new namespaces
    const int *fds;                // child fd i becomes a dup of fds[i] (-1: /dev/null... left closed)
    int nfds;
    int setsid;                    // call setsid() in the child
    int pdeathsig;                 // PR_SET_PDEATHSIG in the child (0: none)
    const char *cwd;               // chdir in the child (NULL: none)
    int into_cgroup;               // 1: born in the cgroup-v2 directory cgroup_fd (CLONE_INTO_CGROUP)
    int cgroup_fd;                 // used only when into_cgroup is 1
    const char *session_keyring;   // join this named session keyring (NULL: keep the parent's)
};

/// Starts a child. Returns 0 and sets *pid (and *pidfd when pidfd != NULL);
/// on failure returns -1 with errno set (also errno of a failed child step)
/// and *failed_step naming the step ("clone3", "dup2", "execve", ...).
int cryo_spawn(const struct cryo_spawn_attr *attr, pid_t *pid, int *pidfd, const char **failed_step);

int cryo_pivot_root(const char *new_root, const char *put_old);
int cryo_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5);
int cryo_pidfd_open(pid_t pid, unsigned int flags);
int cryo_pidfd_send_signal(int pidfd, int sig);
/// pidfd_getfd(2): a copy (close-on-exec) of another process's fd `targetfd`.
int cryo_pidfd_getfd(int pidfd, int targetfd);
/// kcmp(2) KCMP_FILE: 0 when pid1's fd1 and pid2's fd2 are the same open file.
int cryo_kcmp_file(pid_t pid1, pid_t pid2, int fd1, int fd2);
int cryo_setns(int fd, int nstype);
int cryo_unshare(int flags);
int cryo_close_range_cloexec(unsigned int first);

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, {len / 8, prog}): loads a compiled BPF program
/// (`len` bytes of struct sock_filter). Returns 0, or -1 with errno.
int cryo_seccomp_set_filter(const void *prog, unsigned int len, unsigned int flags);

/// Joins the session keyring `name` (made when no keyring of that name is searchable)
/// and sets its permissions to `perm`. Returns the keyring's serial, or -1 with errno.
long cryo_join_session_keyring(const char *name, uint32_t perm);

/// Capabilities: version-3 capget/capset on the calling thread.
int cryo_capget(uint32_t eff[2], uint32_t perm[2], uint32_t inh[2]);
int cryo_capset(const uint32_t eff[2], const uint32_t perm[2], const uint32_t inh[2]);

int cryo_ioctl_int(int fd, unsigned long request, int *arg);
int cryo_ioctl_noarg(int fd, unsigned long request, unsigned long arg);
/// TIOCSWINSZ: resize a terminal (docker resize / exec resize).
int cryo_set_winsize(int fd, unsigned short rows, unsigned short cols);
/// Brings up "lo" in the calling thread's network namespace (SIOCSIFFLAGS).
int cryo_loopback_up(void);
unsigned long cryo_TIOCGPTN(void);
unsigned long cryo_TIOCSPTLCK(void);
unsigned long cryo_TIOCSCTTY(void);

int cryo_mknod(const char *path, unsigned int mode, unsigned int major, unsigned int minor);
unsigned int cryo_major(uint64_t dev);
unsigned int cryo_minor(uint64_t dev);

/// SCM_RIGHTS: send one fd with a small payload / receive one.
ssize_t cryo_send_fd(int sock, int fd, const void *data, size_t len);
/// Receives a datagram; *fd is -1 when no fd came with it. Returns bytes or -1.
ssize_t cryo_recv_with_fd(int sock, void *buf, size_t len, int *fd);
/// Size of the next datagram on a SEQPACKET socket (MSG_PEEK|MSG_TRUNC).
ssize_t cryo_peek_size(int sock);

/// GNU-only calls the Glibc module does not export.
int cryo_pipe2(int fds[2], int flags);
/* statfs(2)'s f_type of the file system holding path, or -1 with errno. */
long cryo_fs_type(const char *path);
/// fstatfs(2)'s f_type of a descriptor (-1 on failure).
long cryo_fd_fs_type(int fd);
int cryo_setresuid(uid_t r, uid_t e, uid_t s);
int cryo_setresgid(gid_t r, gid_t e, gid_t s);
/* fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE): 0, or -1 with errno. */
int cryo_punch_hole(int fd, long long offset, long long length);

/// libFuzzer's driver: only the `-sanitize=fuzzer` build of cryo-fuzz (scripts/fuzz.sh)
/// links and calls it; declared here because Swift cannot declare a C function itself.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
