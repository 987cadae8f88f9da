/*
** sandbox_net.c -- a networked session's namespace, its pasta, and the
** host nftables rules that hold pasta to the template's policy
** (docs/sandbox.md §7 has the threat model).
**
** The namespace: a user namespace owned by the session uid with a network
** namespace in it, made by a short-lived child of a thread whose
** effective ids are the session's (a user namespace's owner is its
** creator's euid). The server keeps fds of both. The sandbox's launcher
** joins the network namespace while still root and bwrap keeps it
** (--share-net); bwrap's own user namespace is a sibling of this one, so
** nothing in the sandbox holds a capability over its network namespace:
** it cannot change addresses, routes or any filter there.
**
** pasta (Debian's passt, 2023-03) runs in the host namespaces as the
** session uid, joins the session's user and network namespaces to make
** its tap device, and carries the sandbox's traffic as ordinary sockets of
** its own. Its options stop it from offering the host's loopback: no
** gateway mapping (--no-map-gw), no port forwarding either way (-t/-u/-T/
** -U none; the default "auto" of -T would forward every port bound on the
** host's loopback). /dev/net/tun is opened through a private node in a
** mount namespace of its own, so the host's device mode does not matter.
**
** The policy is enforced on pasta's sockets, where the sandbox cannot
** reach (sandbox_nft.c): one nftables table per server in the host's
** output hook, a chain per session selected by the socket's owner uid
** (every session has its own uid, and nothing else runs as it in the
** host's network namespace).
*/
#include "sandbox.h"
#include "sandbox_int.h"
#include "sandbox_net.h"
#include "sandbox_nft.h"
#include "sandbox_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILD_STACK (64 * 1024)
#define SBX_CHILD __attribute__((no_sanitize_address, noinline))
/* How long pasta may take to configure the namespace. */
#define READY_WAIT_MS 10000

static const char *const pasta_paths[] = { "/usr/bin/pasta", "/usr/sbin/pasta" };

struct sbx_net_rt {
  char pasta[64];
  struct sbx_nft *nft;         /* the policy (sandbox_nft.c) */
};

struct sbx_net {
  int userns, netns;           /* fds */
  pid_t pid;                   /* pasta, or -1 */
  int pidfd;
  struct cg_cmd cg;            /* "net" below the box's cgroups */
  int have_cg, have_rules;
};

/* ---- nftables ---- */

void sbx_net_rt_init(struct sbx_runtime *rt) {
  struct sbx_net_rt *N;
  size_t i;

  if (!rt->root) {
    snprintf(rt->why_net, sizeof rt->why_net, "not root: the network "
             "policy is a host nftables ruleset on each session's uid");
    return;
  }
  N = calloc(1, sizeof *N);
  if (N == NULL) {
    snprintf(rt->why_net, sizeof rt->why_net, "out of memory");
    return;
  }
  for (i = 0; i < sizeof pasta_paths / sizeof pasta_paths[0]; i++)
    if (access(pasta_paths[i], X_OK) == 0) {
      snprintf(N->pasta, sizeof N->pasta, "%s", pasta_paths[i]);
      break;
    }
  if (N->pasta[0] == '\0')
    snprintf(rt->why_net, sizeof rt->why_net, "pasta not found (apt-get "
             "install passt)");
  else if (access("/dev/net", F_OK) != 0)
    snprintf(rt->why_net, sizeof rt->why_net, "no /dev/net (tun)");
  else
    N->nft = sbx_nft_open(rt->cgname + strlen("agentcube-"), rt->why_net,
                          sizeof rt->why_net);
  if (N->nft == NULL) {
    free(N);
    return;
  }
  rt->net = N;
}

void sbx_net_rt_free(struct sbx_runtime *rt) {
  if (rt->net == NULL)
    return;
  sbx_nft_close(rt->net->nft);
  free(rt->net);
  rt->net = NULL;
}

/* ---- the namespaces ---- */

struct mkns {
  uid_t uid;
  gid_t gid;
  int userns, netns;
  int err;
};

SBX_CHILD static int mkns_child(void *arg) {
  struct mkns *m = arg;
  /* CLONE_FILES: these land in the server's table */
  m->userns = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
  m->netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (m->userns < 0 || m->netns < 0)
    m->err = errno;
  _exit(0);
}

/* Runs on a thread of its own: its effective ids (per thread for the
** kernel, set with raw system calls) become the owner of the new user
** namespace, and die with the thread. */
static void *mkns_thread(void *arg) {
  struct mkns *m = arg;
  sigset_t all;
  char *stack;
  pid_t pid;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  if (syscall(SYS_setresgid, -1, m->gid, -1) < 0 ||
      syscall(SYS_setresuid, -1, m->uid, -1) < 0) {
    m->err = errno;
    return NULL;
  }
  stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) {
    m->err = errno;
    return NULL;
  }
  pid = clone(mkns_child, stack + CHILD_STACK, CLONE_VM | CLONE_VFORK |
              CLONE_FILES | CLONE_NEWUSER | CLONE_NEWNET | SIGCHLD, m);
  if (pid < 0)
    m->err = errno;
  else
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
      ;
  munmap(stack, CHILD_STACK);
  return NULL;
}

static enum ac_code make_ns(struct sbx_net *n, uid_t uid, gid_t gid,
                            struct ac_error *err) {
  struct mkns m = { uid, gid, -1, -1, 0 };
  pthread_t th;
  if (pthread_create(&th, NULL, mkns_thread, &m) != 0)
    return ac_error_set(err, AC_ESYSTEM, "network: cannot start a thread");
  pthread_join(th, NULL);
  if (m.err || m.userns < 0 || m.netns < 0) {
    if (m.userns >= 0)
      close(m.userns);
    if (m.netns >= 0)
      close(m.netns);
    return ac_error_errno(err, AC_ESYSTEM, m.err ? m.err : EINVAL,
                          "network: creating the session's namespaces");
  }
  n->userns = m.userns;
  n->netns = m.netns;
  return AC_OK;
}

/* ---- pasta ---- */

enum { PFD_IN, PFD_OUT, PFD_ERR, PFD_READY, PFD_USERNS, PFD_NETNS, PFD_N };

struct pasta_plan {
  const char *path;
  char *const *argv;
  int fds[PFD_N];
  const int *join;
  int njoin;
  uid_t uid;
  gid_t gid;
  pid_t parent;
  int errfd;                   /* O_CLOEXEC: a record means failure */
};

SBX_CHILD static void pchild_fail(int fd, int stage) {
  int rec[2] = { stage, errno };
  ssize_t n = write(fd, rec, sizeof rec);
  (void)n;
  _exit(127);
}

SBX_CHILD static int pasta_child(void *arg) {
  static const struct sigaction dfl = { .sa_handler = SIG_DFL };
  const struct pasta_plan *p = arg;
  int errfd = p->errfd, tmp[PFD_N];
  sigset_t none;

  for (int s = 1; s < NSIG; s++)
    if (s != SIGKILL && s != SIGSTOP)
      sigaction(s, &dfl, NULL);
  /* in the session's cgroups: its memory and pids count there */
  for (int i = 0; i < p->njoin; i++)
    if (write(p->join[i], "0", 1) != 1)
      pchild_fail(errfd, 1);
  errfd = fcntl(errfd, F_DUPFD_CLOEXEC, PFD_N);
  if (errfd < 0)
    pchild_fail(p->errfd, 2);
  for (int i = 0; i < PFD_N; i++)
    if ((tmp[i] = fcntl(p->fds[i], F_DUPFD_CLOEXEC, PFD_N)) < 0)
      pchild_fail(errfd, 2);
  for (int i = 0; i < PFD_N; i++)
    if (dup2(tmp[i], i) < 0)
      pchild_fail(errfd, 2);
  if (close_range(PFD_N, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
    pchild_fail(errfd, 2);
  /* A private /dev/net/tun the session uid may open, whatever the mode
  ** of the host's node: in a mount namespace of pasta's own. */
  if (unshare(CLONE_NEWNS) < 0 ||
      mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    pchild_fail(errfd, 3);
  if (mount("none", "/dev/net", "tmpfs", MS_NOSUID | MS_NOEXEC,
            "mode=0755,size=16k") < 0 ||
      mknod("/dev/net/tun", S_IFCHR | 0600, makedev(10, 200)) < 0 ||
      chown("/dev/net/tun", p->uid, p->gid) < 0)
    pchild_fail(errfd, 4);
  if (chdir("/") < 0 || setsid() < 0)
    pchild_fail(errfd, 5);
  if (syscall(SYS_setgroups, 0, NULL) < 0 ||
      syscall(SYS_setresgid, p->gid, p->gid, p->gid) < 0 ||
      syscall(SYS_setresuid, p->uid, p->uid, p->uid) < 0)
    pchild_fail(errfd, 6);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 ||
      getppid() != p->parent)
    pchild_fail(errfd, 7);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  {
    char *envp[] = { NULL };
    execve(p->path, p->argv, envp);
  }
  pchild_fail(errfd, 8);
  return 127;
}

static const char *pstage(int st) {
  static const char *const names[] = {
    "?", "joining the session's cgroups", "arranging file descriptors",
    "a private mount namespace", "a private /dev/net/tun", "setsid",
    "switching to the session uid", "PR_SET_PDEATHSIG", "execve",
  };
  return st >= 0 && st < 9 ? names[st] : "?";
}

/* Waits until pasta writes its pid (it does once the namespace is
** configured) or dies. Returns 0 when ready. */
static int wait_ready(int rfd, int pidfd, int errfd, char *why,
                      size_t whysize) {
  long long until = sbxu_now_ns() + READY_WAIT_MS * 1000000LL;
  char buf[32];
  for (;;) {
    struct pollfd pf[2] = { { rfd, POLLIN, 0 }, { pidfd, POLLIN, 0 } };
    long long left = (until - sbxu_now_ns()) / 1000000LL;
    int n;
    if (left <= 0) {
      snprintf(why, whysize, "pasta did not configure the namespace in "
               "%d s", READY_WAIT_MS / 1000);
      return -1;
    }
    n = poll(pf, pidfd >= 0 ? 2 : 1, (int)left);
    if (n < 0 && errno == EINTR)
      continue;
    if (n > 0 && (pf[0].revents & POLLIN)) {
      ssize_t r = read(rfd, buf, sizeof buf - 1);
      if (r > 0)
        return 0;
    }
    if (n > 0) {
      /* EOF or pasta died: its stderr says why */
      char msg[200];
      ssize_t r = pread(errfd, msg, sizeof msg - 1, 0);
      msg[r > 0 ? r : 0] = '\0';
      for (char *c = msg; *c; c++)
        if (*c == '\n')
          *c = ' ';
      snprintf(why, whysize, "pasta exited: %s", msg[0] ? msg : "no reason "
               "given");
      return -1;
    }
  }
}

static enum ac_code start_pasta(struct sbx_box *box, struct sbx_net *n,
                                struct ac_error *err) {
  struct sbx_runtime *rt = box->rt;
  const struct sbx_net_policy *pol = box->limits.netpol;
  char ready[32], userns[32], netns[32];
  char *argv[40];
  int argc = 0, rp[2] = { -1, -1 }, ep[2] = { -1, -1 }, errmem = -1;
  struct pasta_plan plan;
  enum ac_code rc = AC_OK;
  sigset_t all, old;
  char *stack;
  pid_t pid;
  int rec[2];
  ssize_t got;

  snprintf(ready, sizeof ready, "/proc/self/fd/%d", PFD_READY);
  snprintf(userns, sizeof userns, "/proc/self/fd/%d", PFD_USERNS);
  snprintf(netns, sizeof netns, "/proc/self/fd/%d", PFD_NETNS);
  argv[argc++] = "pasta";
  argv[argc++] = "--config-net";
  argv[argc++] = "--userns";
  argv[argc++] = userns;
  argv[argc++] = "--netns";
  argv[argc++] = netns;
  argv[argc++] = "--no-netns-quit";
  argv[argc++] = "--foreground";
  argv[argc++] = "--quiet";
  argv[argc++] = "--pid";
  argv[argc++] = ready;
  /* nothing of the host's loopback: no gateway mapping, no forwarding */
  argv[argc++] = "--no-map-gw";
  argv[argc++] = "-t";
  argv[argc++] = "none";
  argv[argc++] = "-u";
  argv[argc++] = "none";
  argv[argc++] = "-T";
  argv[argc++] = "none";
  argv[argc++] = "-U";
  argv[argc++] = "none";
  if (pol == NULL || pol->dns) {
    argv[argc++] = "--dns-forward";
    argv[argc++] = SBX_NET_DNS;
  }
  argv[argc] = NULL;

  memset(&plan, 0, sizeof plan);
  if (pipe2(rp, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0 ||
      (errmem = memfd_create("pasta-stderr", MFD_CLOEXEC)) < 0) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "network: pipes");
    goto out;
  }
  /* pasta (the session uid) reopens the write end by its /proc path */
  if (fchown(rp[1], box->fs.uid, box->fs.gid) < 0) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "network: ready pipe");
    goto out;
  }
  plan.path = rt->net->pasta;
  plan.argv = argv;
  plan.fds[PFD_IN] = open("/dev/null", O_RDONLY | O_CLOEXEC);
  plan.fds[PFD_OUT] = open("/dev/null", O_WRONLY | O_CLOEXEC);
  plan.fds[PFD_ERR] = errmem;
  plan.fds[PFD_READY] = rp[1];
  plan.fds[PFD_USERNS] = n->userns;
  plan.fds[PFD_NETNS] = n->netns;
  if (plan.fds[PFD_IN] < 0 || plan.fds[PFD_OUT] < 0) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "network: /dev/null");
    goto out;
  }
  plan.join = n->cg.join;
  plan.njoin = n->have_cg ? n->cg.njoin : 0;
  plan.uid = box->fs.uid;
  plan.gid = box->fs.gid;
  plan.parent = getpid();
  plan.errfd = ep[1];
  stack = mmap(NULL, CHILD_STACK * 2, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "network: mmap");
    goto out;
  }
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  pid = clone(pasta_child, stack + CHILD_STACK * 2,
              CLONE_VM | CLONE_VFORK | SIGCHLD, &plan);
  {
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    munmap(stack, CHILD_STACK * 2);
    errno = e;
  }
  if (pid < 0) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "network: clone");
    goto out;
  }
  close(ep[1]);
  ep[1] = -1;
  close(rp[1]);
  rp[1] = -1;
  do
    got = read(ep[0], rec, sizeof rec);
  while (got < 0 && errno == EINTR);
  if (got == (ssize_t)sizeof rec) {
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
      ;
    rc = ac_error_errno(err, AC_ESYSTEM, rec[1], "network: starting pasta: "
                        "%s", pstage(rec[0]));
    goto out;
  }
  n->pid = pid;
  n->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  {
    char why[256];
    if (wait_ready(rp[0], n->pidfd, errmem, why, sizeof why) < 0)
      rc = ac_error_set(err, AC_ESYSTEM, "network: %s", why);
  }
out:
  for (int i = 0; i < 2; i++) {
    if (rp[i] >= 0)
      close(rp[i]);
    if (ep[i] >= 0)
      close(ep[i]);
  }
  if (errmem >= 0)
    close(errmem);
  if (plan.fds[PFD_IN] > 0)
    close(plan.fds[PFD_IN]);
  if (plan.fds[PFD_OUT] > 0)
    close(plan.fds[PFD_OUT]);
  return rc;
}

/* ---- boxes ---- */

enum ac_code sbx_net_box_start(struct sbx_box *box, struct ac_error *err) {
  struct sbx_runtime *rt = box->rt;
  struct sbx_net *n;
  enum ac_code rc;

  if (!box->limits.network)
    return AC_OK;
  if (rt->net == NULL)
    return ac_error_set(err, AC_ECONFIG, "network: this server cannot "
                        "give a session a network: %s", rt->why_net);
  n = calloc(1, sizeof *n);
  if (n == NULL)
    return ac_error_set(err, AC_ENOMEM, "network: out of memory");
  n->userns = n->netns = n->pidfd = -1;
  n->pid = -1;
  box->net = n;
  rc = sbx_nft_session_add(rt->net->nft, (unsigned)box->fs.uid,
                           box->limits.netpol, err);
  if (rc)
    goto fail;
  n->have_rules = 1;
  rc = make_ns(n, box->fs.uid, box->fs.gid, err);
  if (rc)
    goto fail;
  rc = cg_cmd_create(&rt->cg, &box->cg, "net", &n->cg, err);
  if (rc)
    goto fail;
  n->have_cg = 1;
  rc = start_pasta(box, n, err);
  if (rc)
    goto fail;
  return AC_OK;
fail:
  sbx_net_box_stop(box);
  return rc;
}

void sbx_net_box_stop(struct sbx_box *box) {
  struct sbx_net *n = box->net;
  if (n == NULL)
    return;
  if (n->pid > 0) {
    if (n->pidfd >= 0)
      syscall(SYS_pidfd_send_signal, n->pidfd, SIGKILL, NULL, 0);
    else
      kill(n->pid, SIGKILL);
    while (waitpid(n->pid, NULL, 0) < 0 && errno == EINTR)
      ;
  }
  if (n->pidfd >= 0)
    close(n->pidfd);
  if (n->have_cg)
    cg_cmd_destroy(&box->rt->cg, &n->cg);
  if (n->have_rules)
    sbx_nft_session_remove(box->rt->net->nft, (unsigned)box->fs.uid);
  if (n->userns >= 0)
    close(n->userns);
  if (n->netns >= 0)
    close(n->netns);
  free(n);
  box->net = NULL;
}

int sbx_net_box_netns(const struct sbx_box *box) {
  return box->net ? box->net->netns : -1;
}

int sbx_net_box_dns(const struct sbx_box *box) {
  return box->net && (box->limits.netpol == NULL ||
                      box->limits.netpol->dns);
}

/* ---- reporting ---- */

void sbx_net_policy_print(const struct sbx_net_policy *p, FILE *out) {
  int pub = p ? p->public_ : 1, dns = p ? p->dns : 1;
  fprintf(out, "public %s, dns %s, host and private addresses %s",
          pub ? "yes" : "no", dns ? "yes" : "no",
          p && p->nallow ? "refused except" : "refused");
  for (size_t i = 0; p && i < p->nallow; i++) {
    const struct sbx_net_allow *a = &p->allow[i];
    char addr[INET6_ADDRSTRLEN];
    if (a->host)
      fprintf(out, " %s", a->host);
    else
      fprintf(out, " %s/%u", inet_ntop(a->family, a->addr, addr,
                                       sizeof addr), a->prefix);
    if (a->port_lo && a->port_hi > a->port_lo)
      fprintf(out, ":%u-%u", a->port_lo, a->port_hi);
    else if (a->port_lo)
      fprintf(out, ":%u", a->port_lo);
  }
}

int sbx_net_report(const struct sbx_runtime *rt, FILE *out) {
  const struct sbx_net_rt *N = rt->net;
  if (N == NULL) {
    fprintf(out, "  %-30s %-3s  %s\n", "session networks", "off",
            rt->why_net);
    return 1;
  }
  fprintf(out, "  %-30s %-3s  own namespace per session through %s; "
          "host loopback, host addresses and private ranges refused unless "
          "allowed, on each session's uid: ", "session networks", "on",
          N->pasta);
  sbx_nft_describe(N->nft, out);
  fprintf(out, " (resolver %s in the sandbox)\n", SBX_NET_DNS);
  return 0;
}
