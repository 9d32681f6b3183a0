// cryo-init: the PID 1 of a container run with `--init`, bind-mounted read-only at
// /sbin/docker-init (where Docker puts its own, so scripts that look for it find one).
//
// Why C and not Swift: it runs *inside* the container's rootfs, which may have no glibc at
// all (busybox, scratch images), so it must be a static executable that starts with nothing
// around it; a Swift executable drags in its runtime and Foundation. This is the "only what
// Swift cannot do" rule of the C targets: a static PID 1 for a foreign rootfs.
//
// What it does, and nothing more:
//   cryo-init [--] COMMAND [ARG...]
//   - forks COMMAND as its only direct child, in its own process group, with the signal
//     mask and dispositions it inherited from the runtime;
//   - waits for signals with sigwaitinfo: every signal except SIGCHLD is forwarded to the
//     child (PID 1 has no default signal actions, COMMAND has), SIGCHLD reaps every
//     exited process, orphans included (they are re-parented to PID 1);
//   - when COMMAND exits, exits with its status (128+N when a signal N ended it).
// It keeps no state that CRIU could not restore: a checkpoint catches it blocked in
// sigwaitinfo, which the restored process simply re-enters (EINTR is retried).
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void fail(const char *what, const char *arg) {
    fprintf(stderr, "cryo-init: %s %s: %s\n", what, arg, strerror(errno));
}

int main(int argc, char **argv) {
    int first = 1;
    if (first < argc && strcmp(argv[first], "--") == 0) first++;
    if (first >= argc) {
        fprintf(stderr, "cryo-init: usage: cryo-init [--] COMMAND [ARG...]\n");
        return 2;
    }

    sigset_t all, original;
    sigfillset(&all);
    if (sigprocmask(SIG_BLOCK, &all, &original) != 0) {
        fail("sigprocmask", "SIG_BLOCK");
        return 1;
    }

    pid_t child = fork();
    if (child < 0) {
        fail("fork for", argv[first]);
        return 1;
    }
    if (child == 0) {
        // The command gets back what cryo-init was given, in a process group of its own
        // (so a job-control shell as COMMAND behaves as it would as PID 1's only child).
        // tcsetpgrp runs while every signal is still blocked, so it raises no SIGTTOU.
        setpgid(0, 0);
        if (isatty(STDIN_FILENO)) tcsetpgrp(STDIN_FILENO, getpgrp());
        sigprocmask(SIG_SETMASK, &original, NULL);
        execvp(argv[first], &argv[first]);
        int err = errno;
        fail("exec", argv[first]);
        _exit(err == ENOENT ? 127 : 126);
    }

    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&all, &info);
        if (sig < 0) {
            if (errno == EINTR) continue;
            fail("sigwaitinfo", "");
            return 1;
        }
        if (sig != SIGCHLD) {
            // Forward: the child (and so the container) decides what the signal means.
            if (kill(child, sig) != 0 && errno != ESRCH) fail("forwarding a signal to", argv[first]);
            continue;
        }
        // Reap everything that exited: the command, and orphans re-parented to PID 1.
        for (;;) {
            int status = 0;
            pid_t pid = waitpid(-1, &status, WNOHANG);
            if (pid <= 0) break;
            if (pid != child) continue;
            if (WIFEXITED(status)) return WEXITSTATUS(status);
            if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
        }
    }
}
