/*
** sandbox_spawn.c -- starts the bwrap process of one command.
**
** The server is multi-threaded, so the child may only make async-signal-
** safe calls until execve. Like glibc's posix_spawn, we clone with
** CLONE_VM|CLONE_VFORK onto a private stack: no page tables are copied
** (fork of a large server costs more than bwrap itself), and the calling
** thread sleeps until the child has exec'd or died. Everything the child
** does was computed by the parent (struct sbx_spawn_plan).
**
** Because the child shares our memory it must not run our signal handlers
** or touch our heap: all signals are blocked around clone, and the child
** resets every disposition to SIG_DFL before unblocking them just before
** execve. Credentials are changed with raw system calls: glibc's setresuid
** would try to broadcast the change to the parent's other threads.
**
** The child code is built without AddressSanitizer instrumentation: it
** runs on a stack ASan does not know about.
*/
#include "sandbox_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILD_STACK (128 * 1024)
#define SBX_CHILD __attribute__((no_sanitize_address, noinline))

enum stage {
  ST_CGROUP = 1, ST_NETNS, ST_RLIMIT, ST_FDS, ST_CHDIR, ST_SETSID,
  ST_SETGROUPS, ST_SETRESGID, ST_SETRESUID, ST_PDEATHSIG, ST_EXEC
};

static const char *const stage_names[] = {
  [ST_CGROUP] = "joining the command's cgroups",
  [ST_NETNS] = "joining the session's network namespace",
  [ST_RLIMIT] = "setrlimit",
  [ST_FDS] = "arranging file descriptors",
  [ST_CHDIR] = "chdir /",
  [ST_SETSID] = "setsid",
  [ST_SETGROUPS] = "setgroups",
  [ST_SETRESGID] = "setresgid",
  [ST_SETRESUID] = "setresuid",
  [ST_PDEATHSIG] = "PR_SET_PDEATHSIG",
  [ST_EXEC] = "execve",
};

static const char *stage_name(int st) {
  return st >= ST_CGROUP && st <= ST_EXEC ? stage_names[st] : "?";
}

struct child_ctx {
  const struct sbx_spawn_plan *plan;
  int errfd;          /* write end of the error pipe, O_CLOEXEC */
  pid_t parent;
};

struct child_err {
  int stage;
  int err;
};

SBX_CHILD __attribute__((noreturn))
static void child_fail(int errfd, int stage) {
  struct child_err rec;
  ssize_t n;
  rec.stage = stage;
  rec.err = errno;
  n = write(errfd, &rec, sizeof rec);
  (void)n;
  _exit(127);
}

/* The kernel's struct sigaction (x86-64, arm64 and most others without
** SA_RESTORER quirks for SIG_DFL): handler, flags, restorer, mask. */
struct kernel_sigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)(void);
  uint64_t mask;
};

SBX_CHILD static int child_main(void *arg) {
  static const struct kernel_sigaction dfl = { .handler = SIG_DFL };
  const struct child_ctx *c = arg;
  const struct sbx_spawn_plan *p = c->plan;
  int errfd = c->errfd, tmp[SBX_NFDS];
  sigset_t none;

  /* Dispositions: nothing of the server's survives (SIGPIPE ignored by an
  ** HTTP server must not be ignored in the sandbox). The raw system call,
  ** because glibc's sigaction refuses its own internal signals (32 and
  ** 33), and an ignored one would stay ignored across execve when the
  ** server's parent ignored it. Signals stay blocked until just before
  ** execve. */
  for (int s = 1; s < NSIG; s++) {
    if (s == SIGKILL || s == SIGSTOP)
      continue;
    syscall(SYS_rt_sigaction, s, &dfl, NULL, sizeof dfl.mask);
  }
  /* Join the cgroups while still root; everything bwrap starts inherits
  ** them, so no process of the command is ever outside. */
  for (int i = 0; i < p->njoin; i++)
    if (write(p->join[i], "0", 1) != 1)
      child_fail(errfd, ST_CGROUP);
  /* The session's network (sandbox_net.c): joined while still root, as
  ** the namespace's user namespace is not ours. */
  if (p->netns > 0 && setns(p->netns, CLONE_NEWNET) < 0)
    child_fail(errfd, ST_NETNS);

  /* fds[i] -> i: first lift every source (and the error pipe) above the
  ** target range so that no dup2 clobbers a source, then place them. The
  ** dup2'd targets lose O_CLOEXEC; everything else gets it. */
  errfd = fcntl(errfd, F_DUPFD_CLOEXEC, p->nfds);
  if (errfd < 0)
    child_fail(c->errfd, ST_FDS);
  for (int i = 0; i < p->nfds; i++) {
    tmp[i] = -1;
    if (p->fds[i] >= 0) {
      tmp[i] = fcntl(p->fds[i], F_DUPFD_CLOEXEC, p->nfds);
      if (tmp[i] < 0)
        child_fail(errfd, ST_FDS);
    }
  }
  for (int i = 0; i < p->nfds; i++) {
    if (tmp[i] >= 0) {
      if (dup2(tmp[i], i) < 0)
        child_fail(errfd, ST_FDS);
    } else {
      close(i);
    }
  }
  if (close_range((unsigned)p->nfds, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
    child_fail(errfd, ST_FDS);
  /* Limits only now: the server may hold more descriptors than the
  ** sandbox's RLIMIT_NOFILE allows, and the moves above need free slots
  ** above them. */
  for (int i = 0; i < p->nrl; i++)
    if (setrlimit((__rlimit_resource_t)p->rl[i].resource,
                  &p->rl[i].lim) < 0)
      child_fail(errfd, ST_RLIMIT);

  if (chdir("/") < 0)
    child_fail(errfd, ST_CHDIR);
  if (setsid() < 0)
    child_fail(errfd, ST_SETSID);
  if (p->set_ids) {
    if (syscall(SYS_setgroups, 0, NULL) < 0)
      child_fail(errfd, ST_SETGROUPS);
    if (syscall(SYS_setresgid, p->gid, p->gid, p->gid) < 0)
      child_fail(errfd, ST_SETRESGID);
    if (syscall(SYS_setresuid, p->uid, p->uid, p->uid) < 0)
      child_fail(errfd, ST_SETRESUID);
  }
  /* bwrap's --die-with-parent is set only once bwrap runs; cover the gap.
  ** (Set after the uid switch, which clears it.) */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
    child_fail(errfd, ST_PDEATHSIG);
  if (getppid() != c->parent)
    _exit(127);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  execve(p->path, p->argv, p->envp);
  child_fail(errfd, ST_EXEC);
}

enum ac_code sbx_spawn(const struct sbx_spawn_plan *plan, pid_t *pidp,
                       int *pidfdp, struct ac_error *err) {
  struct child_ctx ctx;
  struct child_err rec;
  sigset_t all, old;
  enum ac_code rc = AC_OK;
  char *stack;
  ssize_t n;
  pid_t pid;
  int ep[2], e, pidfd;

  *pidp = -1;
  *pidfdp = -1;
  if (pipe2(ep, O_CLOEXEC) < 0)
    return ac_error_errno(err, AC_ESYSTEM, errno, "sandbox: pipe2");
  stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "sandbox: mmap stack");
    close(ep[0]);
    close(ep[1]);
    return rc;
  }
  ctx.plan = plan;
  ctx.errfd = ep[1];
  ctx.parent = getpid();
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  pid = clone(child_main, stack + CHILD_STACK,
              CLONE_VM | CLONE_VFORK | SIGCHLD, &ctx);
  e = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  munmap(stack, CHILD_STACK);
  close(ep[1]);
  if (pid < 0) {
    close(ep[0]);
    return ac_error_errno(err, AC_ESYSTEM, e, "sandbox: clone");
  }
  /* EOF: the child exec'd (the pipe is O_CLOEXEC). A record: it failed. */
  do
    n = read(ep[0], &rec, sizeof rec);
  while (n < 0 && errno == EINTR);
  close(ep[0]);
  if (n == (ssize_t)sizeof rec) {
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
      ;
    return ac_error_errno(err, AC_ESYSTEM, rec.err, "sandbox launch: %s",
                          stage_name(rec.stage));
  }
  pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0 && errno != ENOSYS) {
    e = errno;
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
      ;
    return ac_error_errno(err, AC_ESYSTEM, e, "sandbox: pidfd_open");
  }
  /* ENOSYS (kernels before 5.3, valgrind): the caller polls waitpid. */
  *pidp = pid;
  *pidfdp = pidfd;
  return AC_OK;
}
