// Pass-through wrappers; see CExecnetShims.h.
#define _GNU_SOURCE
#include "CExecnetShims.h"

#include <errno.h>
#include <fcntl.h>
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
