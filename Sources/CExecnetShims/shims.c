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
#include <sched.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <pthread.h>
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

int cexecnet_pidfd_exited(int pidfd) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    for (;;) {
        int rc = waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED | WNOHANG | WNOWAIT);
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0) return -1;
        return info.si_pid != 0;
    }
}

/// What the spawned child needs; `error` is written by the child (shared memory) on failure.
struct spawn_arguments {
    const char *path;
    char *const *argv;
    char *const *envp;
    int stdin_fd;
    int stdout_fd;
    int stderr_fd;
    const char *cwd;
    int credential_fd;
    int new_group;
    int parent_death_signal;
    int set_user;
    uid_t uid;
    gid_t gid;
    pid_t parent;
    volatile int error;
};

/// Runs in the child, on its own stack, sharing the parent's memory until execve (CLONE_VFORK):
/// system calls only, and nothing the parent will read but `error`.
static int spawn_child(void *raw) {
    struct spawn_arguments *a = raw;
    if (a->new_group && setpgid(0, 0) != 0) goto fail;
    // Raw system calls: glibc's setuid would signal every thread of the parent, whose memory we share.
    // Before the parent-death signal, which a change of credentials clears.
    if (a->set_user) {
        if (syscall(SYS_setgroups, 0, NULL) != 0 || syscall(SYS_setgid, a->gid) != 0
            || syscall(SYS_setuid, a->uid) != 0) goto fail;
        if (a->uid != 0 && syscall(SYS_setuid, 0) == 0) {
            errno = EPERM;
            goto fail;
        }
    }
    if (a->parent_death_signal != 0) {
        if (prctl(PR_SET_PDEATHSIG, a->parent_death_signal, 0, 0, 0) != 0) goto fail;
        // The parent may have died before the signal was armed.
        if (getppid() != a->parent) {
            errno = ESRCH;
            goto fail;
        }
    }
    int in = a->stdin_fd, out = a->stdout_fd, err = a->stderr_fd, credential = a->credential_fd;
    // Move sources out of 0-3 first, so one dup2 cannot overwrite another's source.
    if (in >= 0 && in < 4 && (in = fcntl(in, F_DUPFD_CLOEXEC, 4)) < 0) goto fail;
    if (out >= 0 && out < 4 && (out = fcntl(out, F_DUPFD_CLOEXEC, 4)) < 0) goto fail;
    if (err >= 0 && err < 4 && (err = fcntl(err, F_DUPFD_CLOEXEC, 4)) < 0) goto fail;
    if (credential >= 0 && credential < 4 && (credential = fcntl(credential, F_DUPFD_CLOEXEC, 4)) < 0) goto fail;
    if (in < 0 && (in = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) goto fail;
    if (dup2(in, 0) < 0) goto fail;
    if (out >= 0 && dup2(out, 1) < 0) goto fail;
    if (err >= 0 && dup2(err, 2) < 0) goto fail;
    if (credential >= 0 && dup2(credential, 3) < 0) goto fail;
    // dup2 onto itself keeps close-on-exec; 0-2 (and 3 with a credential) must stay open.
    for (int fd = 0; fd < (credential >= 0 ? 4 : 3); fd++) fcntl(fd, F_SETFD, 0);
    if (a->cwd != NULL && chdir(a->cwd) != 0) goto fail;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &action, NULL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(a->path, a->argv, a->envp);
fail:
    a->error = errno != 0 ? errno : EINVAL;
    _exit(127);
}

int cexecnet_spawn(const char *path, char *const argv[], char *const envp[], int stdout_fd, int stderr_fd,
                   int credential_fd, const char *cwd, int new_group, int parent_death_signal,
                   int set_user, uid_t uid, gid_t gid, pid_t *pid) {
    return cexecnet_spawn_stdin(path, argv, envp, -1, stdout_fd, stderr_fd, credential_fd, cwd, new_group,
                                parent_death_signal, set_user, uid, gid, pid);
}

int cexecnet_spawn_stdin(const char *path, char *const argv[], char *const envp[], int stdin_fd, int stdout_fd, int stderr_fd,
                   int credential_fd, const char *cwd, int new_group, int parent_death_signal,
                   int set_user, uid_t uid, gid_t gid, pid_t *pid) {
    struct spawn_arguments arguments = {
        .path = path, .argv = argv, .envp = envp, .stdin_fd = stdin_fd, .stdout_fd = stdout_fd, .stderr_fd = stderr_fd,
        .credential_fd = credential_fd, .cwd = cwd, .new_group = new_group,
        .parent_death_signal = parent_death_signal, .set_user = set_user, .uid = uid, .gid = gid,
        .parent = getpid(), .error = 0,
    };
    const size_t stack_size = 64 * 1024;
    void *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) return errno;
    // No signal handler of ours may run in the child while it shares our memory.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t child = clone(spawn_child, (char *)stack + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD, &arguments);
    int clone_error = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    munmap(stack, stack_size);
    if (child < 0) return clone_error;
    if (arguments.error != 0) {
        int status;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
        return arguments.error;
    }
    *pid = child;
    return 0;
}

static volatile sig_atomic_t parent_death_kills_group = 0;

static void on_parent_death(int sig) {
    (void)sig;
    if (parent_death_kills_group) kill(0, SIGKILL);
    kill(getpid(), SIGKILL);
}

int cexecnet_arm_parent_death(int kill_group) {
    int sig = SIGRTMAX;
    parent_death_kills_group = kill_group;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_parent_death;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    if (sigaction(sig, &action, NULL) != 0) return -1;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    return prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0);
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
