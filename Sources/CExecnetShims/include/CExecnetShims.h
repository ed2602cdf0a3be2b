// POSIX and Linux calls that Swift cannot import as they are: variadic syscalls (pidfd_open),
// variadic prctl, and calls a vfork child must make. Each wrapper is a direct pass-through that returns
// -1 and sets errno on failure, exactly like the call it wraps; the exceptions (spawning, the
// parent-death handler) say what they do.
#ifndef CEXECNET_SHIMS_H
#define CEXECNET_SHIMS_H

#include <stdint.h>
#include <sys/types.h>

/// pidfd_open(2): a file descriptor that becomes readable when the process exits.
int cexecnet_pidfd_open(pid_t pid);

/// pidfd_send_signal(2): signal a process through its pidfd (no pid-reuse race).
int cexecnet_pidfd_send_signal(int pidfd, int sig);

/// prctl(PR_SET_NAME): names the calling thread (at most 15 bytes are kept).
int cexecnet_set_thread_name(const char *name);

/// eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK).
int cexecnet_eventfd(void);

/// Adds 1 to an eventfd counter; 0 on success.
int cexecnet_eventfd_signal(int fd);

/// Drains an eventfd counter; returns 0 (also when it was already empty).
int cexecnet_eventfd_drain(int fd);

/// waitid(P_PIDFD, pidfd, WEXITED | WNOHANG): 1 and the status if exited, 0 if still running, -1 on error.
/// `*code` gets the exit code or the signal; `*signaled` is 1 if killed by a signal.
int cexecnet_waitid_pidfd(int pidfd, int *code, int *signaled);

/// Starts `path` like posix_spawn, plus what posix_spawn cannot do: the child's own process group
/// and a parent-death signal. In the child (vfork, so only system calls run before execve):
/// `new_group` makes it the leader of a new process group (setpgid); `parent_death_signal`
/// (0 for none) is armed with PR_SET_PDEATHSIG and the child exits at once (127) if the calling
/// thread's process is already gone; fds `stdout_fd`/`stderr_fd` become 1 and 2, stdin is
/// /dev/null; `credential_fd` (-1 for none) becomes fd 3; with `set_user` 1 the child drops its
/// supplementary groups and runs as `gid`/`uid` (needs root; it fails with EPERM if it could
/// regain root); `cwd` (NULL for none) is entered; every signal gets its default action and none is
/// blocked. The parent death signal follows the *calling thread*: call it on a thread that lives
/// as long as the child should.
/// Returns 0 and the pid, or an errno value (the child's, if a step or execve failed there).
int cexecnet_spawn(const char *path, char *const argv[], char *const envp[], int stdout_fd, int stderr_fd,
                   int credential_fd, const char *cwd, int new_group, int parent_death_signal,
                   int set_user, uid_t uid, gid_t gid, pid_t *pid);

/// `cexecnet_spawn` with stdin on `stdin_fd` (-1 for /dev/null) instead of /dev/null: a pipe whose
/// write end the caller keeps, so the child sees end of file when the caller closes it or dies.
int cexecnet_spawn_stdin(const char *path, char *const argv[], char *const envp[], int stdin_fd, int stdout_fd, int stderr_fd,
                   int credential_fd, const char *cwd, int new_group, int parent_death_signal,
                   int set_user, uid_t uid, gid_t gid, pid_t *pid);

/// Makes this process's parent's death end it and, if `kill_group` is 1, its whole process group
/// (kill(0, SIGKILL)): arms PR_SET_PDEATHSIG with a signal whose handler does that. For workers,
/// whose process group was made for them at spawn, so commands they started die with them even
/// when nobody is left to kill them. Returns 0, or -1 with errno.
int cexecnet_arm_parent_death(int kill_group);

/// waitid(P_PIDFD, pidfd, WEXITED | WNOHANG | WNOWAIT): 1 if the process has exited (it stays a
/// zombie, so its pid and process group id are not reused yet), 0 if not, -1 on error.
int cexecnet_pidfd_exited(int pidfd);

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

#endif
