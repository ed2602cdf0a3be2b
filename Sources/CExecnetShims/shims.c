// Pass-through wrappers; see CExecnetShims.h.
#define _GNU_SOURCE
#include "CExecnetShims.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int cexecnet_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int cexecnet_pidfd_send_signal(int pidfd, int sig) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

int cexecnet_set_parent_death_signal(int sig) {
    return prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0);
}

int cexecnet_set_thread_name(const char *name) {
    return prctl(PR_SET_NAME, name, 0, 0, 0);
}

int cexecnet_eventfd(void) {
    return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

int cexecnet_eventfd_signal(int fd) {
    uint64_t one = 1;
    for (;;) {
        ssize_t n = write(fd, &one, sizeof one);
        if (n == (ssize_t)sizeof one) return 0;
        if (n < 0 && errno == EINTR) continue;
        // EAGAIN: the counter is saturated, so the reader is already woken.
        if (n < 0 && errno == EAGAIN) return 0;
        return -1;
    }
}

int cexecnet_eventfd_drain(int fd) {
    uint64_t value;
    for (;;) {
        ssize_t n = read(fd, &value, sizeof value);
        if (n == (ssize_t)sizeof value) return 0;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return 0;
        return -1;
    }
}

int cexecnet_wifexited(int status) { return WIFEXITED(status); }
int cexecnet_wexitstatus(int status) { return WEXITSTATUS(status); }
int cexecnet_wifsignaled(int status) { return WIFSIGNALED(status); }
int cexecnet_wtermsig(int status) { return WTERMSIG(status); }

int cexecnet_waitid_pidfd(int pidfd, int *code, int *signaled) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    for (;;) {
        int rc = waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED | WNOHANG);
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0) return -1;
        break;
    }
    if (info.si_pid == 0) return 0;
    if (info.si_code == CLD_EXITED) {
        *code = info.si_status;
        *signaled = 0;
    } else {
        *code = info.si_status;
        *signaled = 1;
    }
    return 1;
}

int cexecnet_gettid(void) {
    return (int)syscall(SYS_gettid);
}

int cexecnet_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

int cexecnet_malloc_keep_freed(int mmap_threshold, int trim_threshold, int top_pad) {
    return mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1
        && mallopt(M_TOP_PAD, top_pad) == 1;
}

static _Thread_local uintptr_t cexecnet_token;

void cexecnet_set_thread_token(uintptr_t token) {
    cexecnet_token = token;
}

uintptr_t cexecnet_thread_token(void) {
    return cexecnet_token;
}

int cexecnet_spawn_as_user(const char *path, char *const argv[], char *const envp[], int out_fd, int err_fd,
                           int credential_fd, uid_t uid, gid_t gid) {
    // The child of a multithreaded process may only make async-signal-safe calls until exec:
    // every call below is one. Signals stay blocked across fork so no handler runs in the child.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    pid_t pid = fork();
    if (pid != 0) {
        int saved = errno;
        pthread_sigmask(SIG_SETMASK, &previous, NULL);
        errno = saved;
        return pid;
    }
    struct sigaction standard;
    memset(&standard, 0, sizeof standard);
    standard.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &standard, NULL);
    }
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd < 0 || dup2(null_fd, 0) < 0) _exit(127);
    if (null_fd != 0) close(null_fd);
    if (dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) _exit(127);
    if (credential_fd >= 0) {
        if (credential_fd == 3) {
            if (fcntl(3, F_SETFD, 0) < 0) _exit(127);
        } else if (dup2(credential_fd, 3) < 0) {
            _exit(127);
        }
    }
    if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0) _exit(126);
    if (setuid(0) == 0 && uid != 0) _exit(126);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(path, argv, envp);
    _exit(127);
}
