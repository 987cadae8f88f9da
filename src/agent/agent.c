/*
** agent.c -- init (PID 1) of a box's live sandbox.
**
** bwrap runs this as the sandbox's command with --as-pid-1: it is the
** only process of the sandbox the server started. It reads requests from
** the socket the server handed it (fd given on the command line), forks
** commands inside the sandbox's namespaces, relays their output, reaps
** every process (orphans come to PID 1), and reports exits.
**
** Trust: the agent runs as the session's uid, like the code it starts, so
** the server treats everything it says as untrusted. The agent still does
** its part: it is not dumpable (so same-uid code cannot open
** /proc/1/fd/<socket> or ptrace it), its socket and cgroup fds are
** close-on-exec, and a command's child joins its own cgroup before it
** runs anything, so that the server can kill the command's whole tree.
**
** Plain C with libc only: no allocation after start-up except for the
** per-command table, bounded by AGP_MAX_CMDS.
*/
#include "agent_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* After the main process of a command exited and its tree was killed,
** how long its pipes may stay open before we stop waiting for them. */
#define DRAIN_MS 2000

extern char **environ;

struct cmd {
  uint32_t id;
  pid_t pid;             /* 0 once reaped */
  int status;
  int out, err, in;      /* our pipe ends, -1 when closed */
  int keep;              /* background: leave the tree alone at exit */
  int cg;                /* it has cgroup c<id> */
  int exited;            /* main process reaped */
  long long drain_until; /* after exit: close the pipes then */
};

static int sock = -1, cgfd = -1;
static struct cmd *cmds;
static size_t ncmds;
static char rbuf[AGP_MAX_MSG + 1];

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One packet to the server. A failure means the server is gone: exit
** (our death ends the sandbox). */
static void send_msg(uint16_t type, uint32_t id, uint32_t arg,
                     const void *data, size_t len) {
  struct agp_hdr h;
  struct iovec iov[2];
  struct msghdr m;
  ssize_t n;
  h.len = (uint32_t)(sizeof h + len);
  h.version = AGP_VERSION;
  h.type = type;
  h.id = id;
  h.arg = arg;
  iov[0].iov_base = &h;
  iov[0].iov_len = sizeof h;
  iov[1].iov_base = (void *)data;
  iov[1].iov_len = len;
  memset(&m, 0, sizeof m);
  m.msg_iov = iov;
  m.msg_iovlen = len ? 2 : 1;
  do
    n = sendmsg(sock, &m, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    _exit(0);
}

static void send_failed(uint32_t id, int e, const char *what) {
  char msg[256];
  int n = snprintf(msg, sizeof msg, "%s: %s", what, strerror(e));
  send_msg(AGP_FAILED, id, (uint32_t)e, msg, (size_t)n);
}

static struct cmd *find_cmd(uint32_t id) {
  for (size_t i = 0; i < ncmds; i++)
    if (cmds[i].id == id)
      return &cmds[i];
  return NULL;
}

static void close_fd(int *fd) {
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
}

/* Kills what is left of a command's tree: its cgroup when it has one
** (setsid and double fork included), else its process group. */
static void kill_tree(struct cmd *c) {
  if (c->cg && cgfd >= 0) {
    char path[32];
    int fd;
    snprintf(path, sizeof path, "c%u/cgroup.kill", c->id);
    fd = openat(cgfd, path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      if (write(fd, "1", 1) != 1)
        kill(-c->pid, SIGKILL);
      close(fd);
      return;
    }
  }
  if (c->pid > 0)
    kill(-c->pid, SIGKILL);
}

/* Moves pid (0: the caller) into command id's cgroup; -1 with errno when
** it cannot. */
static int join_cgroup(uint32_t id, pid_t pid) {
  char path[32];
  int fd, rc;
  snprintf(path, sizeof path, "c%u/cgroup.procs", id);
  fd = openat(cgfd, path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  rc = dprintf(fd, "%d", (int)pid) > 0 ? 0 : -1;
  close(fd);
  return rc;
}

/* The child side of a spawn: only async-signal-safe calls would be
** needed in a threaded program, and we are single-threaded, so plain libc
** is fine here. Failures print why on the command's stderr and exit 1,
** as bwrap did for a command it could not start. */
static void child(const struct cmd *c, const struct agp_spawn *sp,
                  const char *cwd, char **argv, char **envp, int in,
                  int out, int err) {
  sigset_t none;
  if (c->cg && join_cgroup(c->id, 0) != 0) {
    dprintf(err, "agent: cannot join the command's cgroup: %s\n",
            strerror(errno));
    _exit(126);
  }
  setsid();
  if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
    _exit(126);
  /* everything else we hold is close-on-exec */
  for (int s = 1; s < NSIG; s++)
    signal(s, SIG_DFL);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (sp->nofile) {
    struct rlimit r = { sp->nofile, sp->nofile };
    setrlimit(RLIMIT_NOFILE, &r);
  }
  if (sp->fsize) {
    struct rlimit r = { sp->fsize, sp->fsize };
    setrlimit(RLIMIT_FSIZE, &r);
  }
  if (sp->cpu_secs) {
    struct rlimit r = { sp->cpu_secs, sp->cpu_secs + 5 };
    setrlimit(RLIMIT_CPU, &r);
  }
  if (chdir(cwd) < 0) {
    dprintf(2, "agent: can't chdir to %s: %s\n", cwd, strerror(errno));
    _exit(1);
  }
  environ = envp;
  execvp(argv[0], argv);
  dprintf(2, "agent: execvp %s: %s\n", argv[0], strerror(errno));
  _exit(1);
}

/* Splits n NUL-terminated strings off p..end into v (NULL-terminated). */
static int split(char **p, const char *end, uint32_t n, char **v) {
  for (uint32_t i = 0; i < n; i++) {
    char *z = memchr(*p, '\0', (size_t)(end - *p));
    if (z == NULL)
      return -1;
    v[i] = *p;
    *p = z + 1;
  }
  v[n] = NULL;
  return 0;
}

static void do_spawn(const struct agp_hdr *h, char *pl, size_t plen) {
  struct agp_spawn sp;
  char *p, *end = pl + plen, *cwd, **argv = NULL, **envp = NULL;
  int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, pi[2] = { -1, -1 };
  struct cmd c, *slot;
  pid_t pid;

  if (plen < sizeof sp || h->id == 0 || find_cmd(h->id)) {
    send_failed(h->id, EINVAL, "spawn: bad request");
    return;
  }
  memcpy(&sp, pl, sizeof sp);
  p = pl + sizeof sp;
  if (sp.argc == 0 || sp.argc > AGP_MAX_STRINGS ||
      sp.envc > AGP_MAX_STRINGS || ncmds >= AGP_MAX_CMDS) {
    send_failed(h->id, EINVAL, "spawn: bad request");
    return;
  }
  argv = calloc(sp.argc + 1, sizeof *argv);
  envp = calloc(sp.envc + 1, sizeof *envp);
  cwd = p;
  if (argv == NULL || envp == NULL ||
      memchr(p, '\0', (size_t)(end - p)) == NULL) {
    send_failed(h->id, EINVAL, "spawn: bad request");
    goto out;
  }
  p += strlen(p) + 1;
  if (split(&p, end, sp.argc, argv) < 0 || split(&p, end, sp.envc, envp) < 0) {
    send_failed(h->id, EINVAL, "spawn: bad request");
    goto out;
  }
  memset(&c, 0, sizeof c);
  c.id = h->id;
  c.keep = (sp.flags & AGP_F_KEEP) != 0;
  c.cg = (sp.flags & AGP_F_CGROUP) != 0 && cgfd >= 0;
  c.in = -1;
  if ((sp.flags & AGP_F_CGROUP) && cgfd < 0) {
    send_failed(h->id, ENOENT, "spawn: no cgroup directory");
    goto out;
  }
  if (c.cg) {
    char name[16];
    snprintf(name, sizeof name, "c%u", c.id);
    if (mkdirat(cgfd, name, 0755) < 0 && errno != EEXIST) {
      send_failed(h->id, errno, "spawn: cgroup mkdir");
      goto out;
    }
  }
  if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
    send_failed(h->id, errno, "spawn: pipe");
    goto fail;
  }
  if (sp.flags & AGP_F_STDIN) {
    if (pipe2(pi, O_CLOEXEC) < 0) {
      send_failed(h->id, errno, "spawn: pipe");
      goto fail;
    }
  } else {
    pi[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (pi[0] < 0) {
      send_failed(h->id, errno, "spawn: /dev/null");
      goto fail;
    }
  }
  pid = fork();
  if (pid < 0) {
    send_failed(h->id, errno, "spawn: fork");
    goto fail;
  }
  if (pid == 0)
    child(&c, &sp, cwd, argv, envp, pi[0], po[1], pe[1]);
  /* The child joins its cgroup first thing; we put it there too before
  ** reporting the start, so that the server's kill of the cgroup, which
  ** may come as soon as it hears of the start, cannot fall between the
  ** fork and that join and miss the child. */
  if (c.cg)
    (void)join_cgroup(c.id, pid);     /* the child's own join reports */
  close(po[1]);
  close(pe[1]);
  close(pi[0]);
  c.pid = pid;
  c.out = po[0];
  c.err = pe[0];
  c.in = pi[1];
  fcntl(c.out, F_SETFL, O_NONBLOCK);
  fcntl(c.err, F_SETFL, O_NONBLOCK);
  if (c.in >= 0)
    fcntl(c.in, F_SETFL, O_NONBLOCK);
  slot = &cmds[ncmds++];
  *slot = c;
  send_msg(AGP_STARTED, c.id, (uint32_t)pid, NULL, 0);
  goto out;
fail:
  for (int i = 0; i < 2; i++) {
    if (po[i] >= 0)
      close(po[i]);
    if (pe[i] >= 0)
      close(pe[i]);
    if (pi[i] >= 0)
      close(pi[i]);
  }
  if (c.cg) {
    char name[16];
    snprintf(name, sizeof name, "c%u", c.id);
    unlinkat(cgfd, name, AT_REMOVEDIR);
  }
out:
  free(argv);
  free(envp);
}

static void do_signal(const struct agp_hdr *h) {
  struct cmd *c = find_cmd(h->id);
  int sig = (int)h->arg;
  if (c == NULL || c->exited || sig <= 0 || sig >= NSIG)
    return;
  if (sig == SIGKILL)
    kill_tree(c);
  else if (kill(-c->pid, sig) < 0 && errno == ESRCH)
    kill(c->pid, sig);           /* before its setsid: no group yet */
}

/* Writes stdin data; a full pipe drops the rest of this write (the
** server bounds what it sends and reports EAGAIN-like loss as a short
** write is not reported back: stdin is best effort for v1). */
static void do_stdin(const struct agp_hdr *h, const char *pl, size_t plen) {
  struct cmd *c = find_cmd(h->id);
  if (c == NULL || c->in < 0)
    return;
  while (plen > 0) {
    ssize_t n = write(c->in, pl, plen);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN) {
        struct pollfd p = { .fd = c->in, .events = POLLOUT };
        if (poll(&p, 1, 1000) > 0)
          continue;
      }
      break;
    }
    pl += n;
    plen -= (size_t)n;
  }
  if (h->arg & 1)
    close_fd(&c->in);
}

/* Reads one request; returns -1 when the server closed the socket. */
static int read_request(void) {
  struct agp_hdr h;
  ssize_t n;
  do
    n = recv(sock, rbuf, AGP_MAX_MSG, 0);
  while (n < 0 && errno == EINTR);
  if (n == 0 || (n < 0 && errno != EAGAIN))
    return -1;
  if (n < (ssize_t)sizeof h)
    return 0;
  memcpy(&h, rbuf, sizeof h);
  if (h.version != AGP_VERSION || h.len != (uint32_t)n)
    return 0;
  rbuf[n] = '\0';
  switch (h.type) {
  case AGP_SPAWN:
    do_spawn(&h, rbuf + sizeof h, (size_t)n - sizeof h);
    break;
  case AGP_SIGNAL:
    do_signal(&h);
    break;
  case AGP_STDIN:
    do_stdin(&h, rbuf + sizeof h, (size_t)n - sizeof h);
    break;
  default:
    break;
  }
  return 0;
}

/* Relays what a pipe has; closes it at EOF. */
static void relay(struct cmd *c, int *fd, uint32_t stream) {
  static char buf[AGP_CHUNK];
  ssize_t n;
  do
    n = read(*fd, buf, sizeof buf);
  while (n < 0 && errno == EINTR);
  if (n > 0)
    send_msg(AGP_OUTPUT, c->id, stream, buf, (size_t)n);
  else if (n == 0 || errno != EAGAIN)
    close_fd(fd);
}

static void reap(void) {
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0)
      return;
    for (size_t i = 0; i < ncmds; i++) {
      struct cmd *c = &cmds[i];
      if (c->pid == pid && !c->exited) {
        c->exited = 1;
        c->status = status;
        c->drain_until = now_ms() + DRAIN_MS;
        /* A command ends with its main process, as a bwrap sandbox did:
        ** what it left running goes too. */
        if (!c->keep)
          kill_tree(c);
        break;
      }
    }
  }
}

/* Reports the commands whose main process exited and whose output is
** complete (or took too long to close), and forgets them. */
static void finish(void) {
  long long now = now_ms();
  for (size_t i = 0; i < ncmds;) {
    struct cmd *c = &cmds[i];
    if (c->exited && ((c->out < 0 && c->err < 0) || now >= c->drain_until)) {
      close_fd(&c->out);
      close_fd(&c->err);
      close_fd(&c->in);
      send_msg(AGP_EXIT, c->id, (uint32_t)c->status, NULL, 0);
      cmds[i] = cmds[--ncmds];
      continue;
    }
    i++;
  }
}

static int parse_fd(const char *s) {
  char *end;
  long v = strtol(s, &end, 10);
  return (*end || v < -1 || v > 1 << 20) ? -2 : (int)v;
}

int main(int argc, char **argv) {
  sigset_t chld;
  int sfd;
  struct pollfd *pf;

  if (argc != 3 || (sock = parse_fd(argv[1])) < 0 ||
      (cgfd = parse_fd(argv[2])) < -1) {
    fprintf(stderr, "usage: agent SOCKET-FD CGROUP-FD|-1\n");
    return 2;
  }
  /* Not dumpable: /proc/1/{fd,mem,environ} and ptrace are closed to the
  ** same-uid code we run. */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  fcntl(sock, F_SETFD, FD_CLOEXEC);
  if (cgfd >= 0)
    fcntl(cgfd, F_SETFD, FD_CLOEXEC);
  for (int fd = 3; fd < 1024; fd++)
    if (fd != sock && fd != cgfd)
      close(fd);
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  signal(SIGPIPE, SIG_IGN);
  sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  cmds = calloc(AGP_MAX_CMDS, sizeof *cmds);
  pf = calloc(2 + 2 * AGP_MAX_CMDS, sizeof *pf);
  if (sfd < 0 || cmds == NULL || pf == NULL)
    return 1;
  send_msg(AGP_HELLO, 0, AGP_VERSION, NULL, 0);
  for (;;) {
    nfds_t n = 0;
    size_t npoll = ncmds;              /* a spawn below appends only */
    int timeout = -1;
    long long now = now_ms();
    pf[n++] = (struct pollfd){ .fd = sock, .events = POLLIN };
    pf[n++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
    for (size_t i = 0; i < ncmds; i++) {
      pf[n++] = (struct pollfd){ .fd = cmds[i].out, .events = POLLIN };
      pf[n++] = (struct pollfd){ .fd = cmds[i].err, .events = POLLIN };
      if (cmds[i].exited) {
        long long left = cmds[i].drain_until - now;
        if (left < 0)
          left = 0;
        if (timeout < 0 || left < timeout)
          timeout = (int)left;
      }
    }
    if (poll(pf, n, timeout) < 0 && errno != EINTR)
      return 1;
    if (pf[0].revents && read_request() < 0)
      return 0;                          /* the server is gone */
    if (pf[1].revents) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) > 0)
        ;
    }
    /* Output before exits, so that an exit is always the last message. */
    for (size_t i = 0, k = 2; i < npoll; i++, k += 2) {
      if (pf[k].fd >= 0 && pf[k].revents)
        relay(&cmds[i], &cmds[i].out, 1);
      if (pf[k + 1].fd >= 0 && pf[k + 1].revents)
        relay(&cmds[i], &cmds[i].err, 2);
    }
    reap();
    finish();
  }
}
