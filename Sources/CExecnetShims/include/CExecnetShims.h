// POSIX and Linux calls that Swift cannot import as they are: variadic syscalls (pidfd_open),
// variadic prctl, and the wait-status macros. Each wrapper is a direct pass-through that returns
// -1 and sets errno on failure, exactly like the call it wraps.
#ifndef CEXECNET_SHIMS_H
#define CEXECNET_SHIMS_H

#include <stdint.h>
#include <sys/types.h>

/// pidfd_open(2): a file descriptor that becomes readable when the process exits.
int cexecnet_pidfd_open(pid_t pid);

/// pidfd_send_signal(2): signal a process through its pidfd (no pid-reuse race).
int cexecnet_pidfd_send_signal(int pidfd, int sig);

/// prctl(PR_SET_PDEATHSIG, sig): the calling thread's parent's death sends `sig` to us.
int cexecnet_set_parent_death_signal(int sig);

/// prctl(PR_SET_NAME): names the calling thread (at most 15 bytes are kept).
int cexecnet_set_thread_name(const char *name);

/// eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK).
int cexecnet_eventfd(void);

/// Adds 1 to an eventfd counter; 0 on success.
int cexecnet_eventfd_signal(int fd);

/// Drains an eventfd counter; returns 0 (also when it was already empty).
int cexecnet_eventfd_drain(int fd);

/// The wait(2) status macros.
int cexecnet_wifexited(int status);
int cexecnet_wexitstatus(int status);
int cexecnet_wifsignaled(int status);
int cexecnet_wtermsig(int status);

/// waitid(P_PIDFD, pidfd, WEXITED | WNOHANG): 1 and the status if exited, 0 if still running, -1 on error.
/// `*code` gets the exit code or the signal; `*signaled` is 1 if killed by a signal.
int cexecnet_waitid_pidfd(int pidfd, int *code, int *signaled);

/// pipe2(fds, O_CLOEXEC).
int cexecnet_pipe_cloexec(int fds[2]);

/// The calling thread's kernel id.
int cexecnet_gettid(void);

/// A per-thread token: an I/O thread stores its identity here, so "am I on this I/O thread?" is
/// one thread-local read instead of a gettid syscall. 0 on threads that never set it.
void cexecnet_set_thread_token(uintptr_t token);
uintptr_t cexecnet_thread_token(void);

/// mallopt: allocations up to `mmap_threshold` come from the heap, and up to `trim_threshold`
/// (plus `top_pad`) of freed memory stays mapped. Returns 1 if all three were set.
int cexecnet_malloc_keep_freed(int mmap_threshold, int trim_threshold, int top_pad);

/// fork + execve of `path` as `uid`/`gid` (supplementary groups dropped), with stdin on /dev/null,
/// stdout and stderr on `out_fd` and `err_fd`, `credential_fd` (if >= 0) on fd 3, signals
/// unblocked and at their defaults. For a root agent starting a worker as another user, which
/// posix_spawn cannot do. Returns the pid, or -1 and errno if fork failed; a child that cannot
/// drop to the user exits 126 before exec.
int cexecnet_spawn_as_user(const char *path, char *const argv[], char *const envp[], int out_fd, int err_fd,
                           int credential_fd, uid_t uid, gid_t gid);

#endif
