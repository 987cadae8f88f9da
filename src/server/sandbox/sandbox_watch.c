/*
** sandbox_watch.c -- supervises one running bwrap until it is gone: reads
** its output with caps, enforces the wall timeout and the OOM policy,
** kills the tree when told to (box close/destroy), and reaps everything.
**
** Process tree: server -> bwrap (outer) -> bwrap init (pid 1 of the new
** pid namespace) -> the command. bwrap's outer process learns the exit
** code through an eventfd and exits *without* waiting for its init, so
** the init is routinely orphaned to us (the server is a child subreaper)
** and we reap it. We never reap a pid we have not identified: the init is
** the process whose /proc/<pid>/ns/pid is the pid namespace bwrap reports
** on --info-fd, and we hold a pidfd for it when the kernel has pidfds.
**
** Killing: SIGKILL to the init. The kernel then kills every process of
** the pid namespace -- setsid'd and double-forked daemons included -- and
** bwrap exits by itself. If that has not happened after KILL_WAIT_NS, or
** the init is unknown, cgroup.kill (or the freezer fallback) and SIGKILL
** to bwrap follow; with --die-with-parent the init dies with bwrap.
*/
#include "sandbox_int.h"
#include "sandbox_util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* After bwrap exited, how long the pipes may stay open. */
#define GRACE_NS (10LL * 1000000000LL)
/* After killing the init, how long before the cgroup/bwrap fallback. */
#define KILL_WAIT_NS (2LL * 1000000000LL)
/* After an OOM notification, how long to look for the oom_kill count. */
#define OOM_WATCH_NS (2LL * 1000000000LL)
#define OOM_POLL_MS 20
/* Without pidfds, how often to look for bwrap's exit. */
#define NOPIDFD_POLL_MS 5
/* How long reaping the orphaned init may take. */
#define REAP_MS 10000

/* Reads what is available. Returns 1 at EOF, 0 when it would block, -1 on
** a read error or out of memory (the caller treats it as EOF). */
static int obuf_drain(struct sbx_obuf *b, int fd) {
  char scratch[16384];
  for (;;) {
    size_t room = b->max - b->len;
    char *dst = scratch;
    size_t want = sizeof scratch;
    ssize_t n;
    if (room > 0) {
      if (b->cap - b->len < 2) {
        size_t ncap = b->cap ? b->cap * 2 : 8192;
        char *np;
        if (ncap > b->max + 1)
          ncap = b->max + 1;
        np = realloc(b->p, ncap);
        if (np == NULL)
          return -1;
        b->p = np;
        b->cap = ncap;
      }
      dst = b->p + b->len;
      want = b->cap - b->len - 1;       /* keep room for the NUL */
      if (want > room)
        want = room;
    }
    n = read(fd, dst, want);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno == EAGAIN ? 0 : -1;
    }
    if (n == 0)
      return 1;
    if (room > 0)
      b->len += (size_t)n;
    else
      b->truncated = 1;
  }
}

static void send_kill(int pidfd, pid_t pid) {
  if (pidfd >= 0)
    syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
  else if (pid > 0)
    kill(pid, SIGKILL);
}

/* 1 when pid lives in the pid namespace with inode ns: then it is the
** sandbox's init (the only process of that namespace that can be bwrap's
** child or ours), whatever happened to bwrap meanwhile. */
static int is_init(pid_t pid, unsigned long long ns) {
  char path[64], link[64], want[48];
  ssize_t n;
  snprintf(path, sizeof path, "/proc/%ld/ns/pid", (long)pid);
  n = readlink(path, link, sizeof link - 1);
  if (n <= 0)
    return 0;
  link[n] = '\0';
  snprintf(want, sizeof want, "pid:[%llu]", ns);
  return strcmp(link, want) == 0;
}

/* Looks for a complete "key": number in the info text. */
static int info_number(const char *text, const char *key,
                       unsigned long long *out) {
  const char *p = strstr(text, key);
  char *end;
  if (p == NULL)
    return -1;
  p += strlen(key);
  errno = 0;
  *out = strtoull(p, &end, 10);
  if (end == p || *end == '\0' || errno)
    return -1;                          /* absent or not complete yet */
  return 0;
}

/* Identifies the init from bwrap's --info-fd JSON as soon as its pid and
** pid namespace are there (bwrap's init inherits the info pipe, so EOF
** only comes when the sandbox ends), and takes a pidfd for it. */
static void take_init(struct sbx_watch *w) {
  unsigned long long pid, ns;
  int fd;
  if (w->init_pid > 0)
    return;
  w->info[w->info_len] = '\0';
  if (info_number(w->info, "\"child-pid\":", &pid) < 0 ||
      info_number(w->info, "\"pid-namespace\":", &ns) < 0 ||
      pid == 0 || pid > INT32_MAX || !is_init((pid_t)pid, ns))
    return;
  w->init_pid = (pid_t)pid;
  w->init_ns = ns;
  if (w->pidfd < 0)
    return;                             /* a kernel without pidfds */
  fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
  /* Checked again with the pidfd held: it now pins that process. */
  if (fd >= 0 && is_init((pid_t)pid, ns))
    w->init_pidfd = fd;
  else if (fd >= 0)
    close(fd);
}

static void kill_init(struct sbx_watch *w) {
  if (w->init_pidfd >= 0)
    send_kill(w->init_pidfd, 0);
  else if (w->init_pid > 0 && is_init(w->init_pid, w->init_ns))
    send_kill(-1, w->init_pid);
}

/* The fallback: every process in the command's cgroup, and bwrap. */
static void hard_kill(struct sbx_watch *w) {
  if (w->cmd)
    cg_cmd_kill(&w->box->rt->cg, w->cmd);
  if (!w->exited)
    send_kill(w->pidfd, w->pid);
  kill_init(w);
  w->hard_killed = 1;
}

/* Starts killing the tree (see the top of the file). While bwrap has not
** yet reported its init, the kill waits for it (info pipe still open). */
static void kill_tree(struct sbx_watch *w) {
  if (!w->killed) {
    w->killed = 1;
    w->kill_at = sbxu_now_ns();
  }
  if (w->exited)
    return;
  if (w->init_pid > 0)
    kill_init(w);
  else if (w->infofd < 0 && !w->hard_killed)
    hard_kill(w);
}

static void try_reap(struct sbx_watch *w, int flags) {
  pid_t got;
  do
    got = waitpid(w->pid, &w->status, flags);
  while (got < 0 && errno == EINTR);
  if (got == w->pid) {
    w->exited = 1;
  } else if (got < 0 && errno == ECHILD) {
    /* Someone reaped bwrap behind our back (SIGCHLD set to SIG_IGN after
    ** sbx_runtime_init): the status is lost. */
    w->exited = 1;
    w->status = 1 << 8;
  }
}

/* After bwrap is reaped: reaps the init if it was orphaned to us. bwrap
** is gone, so the init is either our child now or already reaped;
** ECHILD means bwrap reaped it (or it went to another reaper). */
static void reap_init(struct sbx_watch *w) {
  if (w->init_pidfd >= 0) {
    struct pollfd p = { .fd = w->init_pidfd, .events = POLLIN };
    siginfo_t si;
    send_kill(w->init_pidfd, 0);
    if (poll(&p, 1, REAP_MS) > 0) {
      memset(&si, 0, sizeof si);
      while (waitid((idtype_t)P_PIDFD, (id_t)w->init_pidfd, &si,
                    WEXITED | WNOHANG) < 0 && errno == EINTR)
        ;
    }
    close(w->init_pidfd);
    w->init_pidfd = -1;
  } else if (w->init_pid > 0) {
    long long end = sbxu_now_ns() + REAP_MS * 1000000LL;
    kill_init(w);
    while (is_init(w->init_pid, w->init_ns)) {
      pid_t got = waitpid(w->init_pid, NULL, WNOHANG);
      if (got == w->init_pid || (got < 0 && errno != EINTR) ||
          sbxu_now_ns() >= end)
        break;
      sbxu_sleep_ms(1);
    }
  }
  w->init_pid = 0;
}

static void close_fd(int *fd) {
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
}

/* How long poll may sleep, in ms. */
static int poll_ms(const struct sbx_watch *w, long long now,
                   long long deadline, long long grace, long long oom) {
  long long ns;
  if (w->exited)
    ns = grace - now;
  else if (w->killed)
    ns = w->hard_killed ? GRACE_NS : w->kill_at + KILL_WAIT_NS - now;
  else
    ns = deadline - now;
  if (oom && ns > OOM_POLL_MS * 1000000LL)
    ns = OOM_POLL_MS * 1000000LL;
  if (!w->exited && w->pidfd < 0 && ns > NOPIDFD_POLL_MS * 1000000LL)
    ns = NOPIDFD_POLL_MS * 1000000LL;
  if (ns < 0)
    ns = 0;
  if (ns > 3600LL * 1000000000LL)
    return 3600000;
  return (int)((ns + 999999) / 1000000);
}

void sbx_watch_run(struct sbx_watch *w) {
  const struct cg_runtime *cg = &w->box->rt->cg;
  long long start = sbxu_now_ns(), deadline, grace = 0, oom_until = 0;
  int oomfd = w->cmd ? w->cmd->oom_efd : -1;

  w->init_pidfd = -1;
  deadline = w->timeout_ns > INT64_MAX - start ? INT64_MAX
             : start + w->timeout_ns;
  for (;;) {
    struct pollfd pf[6];
    int np = 0, iout = -1, ierr = -1, iinfo = -1, ipid = -1, ioom = -1;
    int iwake = -1;
    long long now = sbxu_now_ns();

    if (w->outfd < 0 && w->errfd < 0 && w->exited)
      break;
    if (!w->exited && !w->killed && now >= deadline) {
      w->timed_out = 1;
      kill_tree(w);
    }
    if (w->killed && !w->exited && !w->hard_killed &&
        now - w->kill_at >= KILL_WAIT_NS)
      hard_kill(w);
    if (w->exited && grace == 0)
      grace = now + GRACE_NS;
    if (grace && now >= grace) {
      /* bwrap is gone but something still holds the pipes. */
      hard_kill(w);
      break;
    }
    if (w->outfd >= 0) {
      pf[np] = (struct pollfd){ .fd = w->outfd, .events = POLLIN };
      iout = np++;
    }
    if (w->errfd >= 0) {
      pf[np] = (struct pollfd){ .fd = w->errfd, .events = POLLIN };
      ierr = np++;
    }
    if (w->infofd >= 0) {
      pf[np] = (struct pollfd){ .fd = w->infofd, .events = POLLIN };
      iinfo = np++;
    }
    if (!w->exited && w->pidfd >= 0) {
      pf[np] = (struct pollfd){ .fd = w->pidfd, .events = POLLIN };
      ipid = np++;
    }
    if (oomfd >= 0 && !w->oom_killed) {
      pf[np] = (struct pollfd){ .fd = oomfd, .events = POLLIN };
      ioom = np++;
    }
    if (w->wakefd >= 0 && !w->woken) {
      pf[np] = (struct pollfd){ .fd = w->wakefd, .events = POLLIN };
      iwake = np++;
    }
    if (poll(pf, (nfds_t)np, poll_ms(w, now, deadline, grace, oom_until))
        < 0 && errno != EINTR)
      sbxu_sleep_ms(1);
    if (iout >= 0 && pf[iout].revents && obuf_drain(&w->out, w->outfd))
      close_fd(&w->outfd);
    if (ierr >= 0 && pf[ierr].revents && obuf_drain(&w->err, w->errfd))
      close_fd(&w->errfd);
    if (iinfo >= 0 && pf[iinfo].revents) {
      char sink[256];
      int known = w->init_pid > 0;
      size_t room = sizeof w->info - 1 - w->info_len;
      ssize_t n = room ? read(w->infofd, w->info + w->info_len, room)
                       : read(w->infofd, sink, sizeof sink);
      if (n > 0 && room)
        w->info_len += (size_t)n;
      take_init(w);
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
        close_fd(&w->infofd);
      /* A kill that was waiting for the init (or for the pipe to end). */
      if (w->killed && ((!known && w->init_pid > 0) || w->infofd < 0))
        kill_tree(w);
    }
    if (ipid >= 0 && pf[ipid].revents)
      try_reap(w, WNOHANG);
    else if (!w->exited && w->pidfd < 0)
      try_reap(w, WNOHANG);
    if (iwake >= 0 && pf[iwake].revents) {
      w->woken = 1;              /* the box is closing */
      if (!w->exited)
        kill_tree(w);
    }
    if (ioom >= 0 && pf[ioom].revents) {
      uint64_t v;
      ssize_t n = read(oomfd, &v, sizeof v);
      (void)n;
      oom_until = sbxu_now_ns() + OOM_WATCH_NS;
    }
    if (oom_until && !w->oom_killed) {
      /* v1 kills one task; the policy is to kill the whole command, as
      ** memory.oom.group=1 does on v2. */
      if (cg_cmd_oom_kills(cg, w->cmd) > 0) {
        w->oom_killed = 1;
        oom_until = 0;
        if (!w->exited)
          kill_tree(w);
      } else if (sbxu_now_ns() >= oom_until) {
        oom_until = 0;
      }
    }
  }
  close_fd(&w->outfd);
  close_fd(&w->errfd);
  close_fd(&w->infofd);
  if (!w->exited)
    try_reap(w, 0);
  reap_init(w);
  if (w->cmd && cg_cmd_oom_kills(cg, w->cmd) > 0)
    w->oom_killed = 1;
}
