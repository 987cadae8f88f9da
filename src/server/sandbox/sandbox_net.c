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
** reach: one nftables table per server in the host's output hook, a chain
** per session selected by the socket's owner uid (every session has its
** own uid, and nothing else runs as it in the host's network namespace).
*/
#include "sandbox.h"
#include "sandbox_int.h"
#include "sandbox_net.h"
#include "sandbox_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <nftables/libnftables.h>
#include <poll.h>
#include <stdarg.h>
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

/* What the host does not offer a sandbox unless the policy names it:
** "this network", private, shared (CGNAT), loopback, link-local,
** multicast and reserved blocks; IPv6 loopback, unspecified, v4-mapped,
** unique-local, link-local and multicast. */
static const char private4[] = "0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, "
  "127.0.0.0/8, 169.254.0.0/16, 172.16.0.0/12, 192.168.0.0/16, 224.0.0.0/3";
static const char private6[] = "::/127, ::ffff:0:0/96, fc00::/7, "
  "fe80::/10, ff00::/8";

struct sbx_net_rt {
  char pasta[64];
  char table[64];              /* "agentcube_<16 hex>_<pid>" */
  struct nft_ctx *nft;
  pthread_mutex_t mu;          /* one nft transaction at a time */
  char dns[3][INET6_ADDRSTRLEN + 2];
  int dnsfam[3];
  int ndns;
};

struct sbx_net {
  int userns, netns;           /* fds */
  pid_t pid;                   /* pasta, or -1 */
  int pidfd;
  struct cg_cmd cg;            /* "net" below the box's cgroups */
  int have_cg, have_rules;
};

/* ---- nftables ---- */

/* Runs one transaction; on failure copies nft's message into err. */
static enum ac_code nft_run(struct sbx_net_rt *N, const char *cmds,
                            struct ac_error *err) {
  int rc;
  pthread_mutex_lock(&N->mu);
  rc = nft_run_cmd_from_buffer(N->nft, cmds);
  if (rc != 0 && err) {
    const char *e = nft_ctx_get_error_buffer(N->nft);
    char msg[200];
    snprintf(msg, sizeof msg, "%s", e ? e : "");
    msg[strcspn(msg, "\n")] = '\0';
    ac_error_set(err, AC_ESYSTEM, "network: nftables: %s", msg);
  }
  /* the buffers grow otherwise */
  nft_ctx_get_error_buffer(N->nft);
  nft_ctx_get_output_buffer(N->nft);
  pthread_mutex_unlock(&N->mu);
  return rc == 0 ? AC_OK : AC_ESYSTEM;
}

/* The host's nameservers, as pasta reads them (resolv.conf is often a
** symlink, into /run/systemd/resolve for instance). */
static void read_resolvers(struct sbx_net_rt *N) {
  char line[512];
  FILE *f = fopen("/etc/resolv.conf", "re");
  if (f == NULL)
    return;
  while (N->ndns < 3 && fgets(line, sizeof line, f)) {
    char addr[INET6_ADDRSTRLEN + 1];
    unsigned char bin[16];
    if (sscanf(line, " nameserver %46s", addr) != 1)
      continue;
    if (inet_pton(AF_INET, addr, bin) == 1)
      N->dnsfam[N->ndns] = AF_INET;
    else if (inet_pton(AF_INET6, addr, bin) == 1)
      N->dnsfam[N->ndns] = AF_INET6;
    else
      continue;                /* "fe80::1%eth0" and the like */
    snprintf(N->dns[N->ndns++], sizeof N->dns[0], "%s", addr);
  }
  fclose(f);
}

/* Tables of earlier servers of this state directory that are gone (kill
** -9): their sessions' uids are handed out afresh. A server still running
** (`serve --check` beside it) keeps its own. */
static void remove_stale_tables(struct sbx_net_rt *N, const char *hash) {
  char prefix[48], *list, *line, *save = NULL;
  const char *out;
  snprintf(prefix, sizeof prefix, "table inet agentcube_%s_", hash);
  pthread_mutex_lock(&N->mu);
  if (nft_run_cmd_from_buffer(N->nft, "list tables inet\n") != 0) {
    pthread_mutex_unlock(&N->mu);
    return;
  }
  out = nft_ctx_get_output_buffer(N->nft);
  list = strdup(out ? out : "");
  pthread_mutex_unlock(&N->mu);
  for (line = list ? strtok_r(list, "\n", &save) : NULL; line;
       line = strtok_r(NULL, "\n", &save)) {
    char *end, cmd[128];
    long pid;
    if (strncmp(line, prefix, strlen(prefix)) != 0)
      continue;
    pid = strtol(line + strlen(prefix), &end, 10);
    if (*end || pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
      continue;
    snprintf(cmd, sizeof cmd, "delete %s\n", line);
    nft_run(N, cmd, NULL);
  }
  free(list);
}

void sbx_net_rt_init(struct sbx_runtime *rt) {
  struct sbx_net_rt *N;
  char *cmds;
  struct ac_error err;
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
  if (N->pasta[0] == '\0') {
    snprintf(rt->why_net, sizeof rt->why_net, "pasta not found (apt-get "
             "install passt)");
    free(N);
    return;
  }
  if (access("/dev/net", F_OK) != 0) {
    snprintf(rt->why_net, sizeof rt->why_net, "no /dev/net (tun)");
    free(N);
    return;
  }
  N->nft = nft_ctx_new(NFT_CTX_DEFAULT);
  if (N->nft == NULL) {
    snprintf(rt->why_net, sizeof rt->why_net, "nftables: no context");
    free(N);
    return;
  }
  nft_ctx_buffer_output(N->nft);
  nft_ctx_buffer_error(N->nft);
  pthread_mutex_init(&N->mu, NULL);
  snprintf(N->table, sizeof N->table, "agentcube_%s_%ld",
           rt->cgname + strlen("agentcube-"), (long)getpid());
  read_resolvers(N);
  remove_stale_tables(N, rt->cgname + strlen("agentcube-"));
  cmds = sbxu_fmt(
    "add table inet %1$s\n"
    "delete table inet %1$s\n"
    "add table inet %1$s\n"
    "add set inet %1$s private4 { type ipv4_addr; flags interval; "
    "elements = { %2$s }; }\n"
    "add set inet %1$s private6 { type ipv6_addr; flags interval; "
    "elements = { %3$s }; }\n"
    "add map inet %1$s sessions { type uid : verdict; }\n"
    "add chain inet %1$s deny\n"
    "add rule inet %1$s deny meta l4proto tcp reject with tcp reset\n"
    "add rule inet %1$s deny reject with icmpx type admin-prohibited\n"
    "add chain inet %1$s output { type filter hook output priority 0; "
    "policy accept; }\n"
    "add rule inet %1$s output meta skuid vmap @sessions\n",
    N->table, private4, private6);
  if (cmds == NULL || nft_run(N, cmds, &err) != AC_OK) {
    snprintf(rt->why_net, sizeof rt->why_net, "%.190s",
             cmds ? err.msg : "out of memory");
    free(cmds);
    nft_ctx_free(N->nft);
    pthread_mutex_destroy(&N->mu);
    free(N);
    return;
  }
  free(cmds);
  rt->net = N;
}

void sbx_net_rt_free(struct sbx_runtime *rt) {
  struct sbx_net_rt *N = rt->net;
  char cmd[128];
  if (N == NULL)
    return;
  snprintf(cmd, sizeof cmd, "delete table inet %s\n", N->table);
  nft_run(N, cmd, NULL);
  nft_ctx_free(N->nft);
  pthread_mutex_destroy(&N->mu);
  free(N);
  rt->net = NULL;
}

static void append(char **buf, size_t *len, size_t *cap, int *oom,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void append(char **buf, size_t *len, size_t *cap, int *oom,
                   const char *fmt, ...) {
  va_list ap;
  int n;
  if (*oom)
    return;
  for (;;) {
    va_start(ap, fmt);
    n = vsnprintf(*buf ? *buf + *len : NULL, *buf ? *cap - *len : 0, fmt,
                  ap);
    va_end(ap);
    if (n < 0) {
      *oom = 1;
      return;
    }
    if (*buf && *len + (size_t)n < *cap) {
      *len += (size_t)n;
      return;
    }
    {
      size_t ncap = *cap ? *cap * 2 : 2048;
      char *p;
      while (ncap <= *len + (size_t)n)
        ncap *= 2;
      p = realloc(*buf, ncap);
      if (p == NULL) {
        *oom = 1;
        return;
      }
      *buf = p;
      *cap = ncap;
    }
  }
}

#define APPEND(...) append(&b, &len, &cap, &oom, __VA_ARGS__)

/* One accept rule for an address block of the allowlist. */
static void allow_rule(char **bp, size_t *lenp, size_t *capp, int *oomp,
                       const char *table, unsigned uid, int family,
                       const char *addr, unsigned prefix,
                       const struct sbx_net_allow *a) {
  char ports[32] = "";
  if (a->port_lo)
    snprintf(ports, sizeof ports, a->port_hi > a->port_lo ? "%u-%u" : "%u",
             a->port_lo, a->port_hi);
  append(bp, lenp, capp, oomp, "add rule inet %s s%u %s daddr %s/%u%s%s "
         "accept\n", table, uid, family == AF_INET ? "ip" : "ip6", addr,
         prefix, ports[0] ? " meta l4proto { tcp, udp } th dport " : "",
         ports);
}

/* The session's chain: DNS, the allowlist, then what is refused. */
static enum ac_code rules_add(struct sbx_runtime *rt, unsigned uid,
                              const struct sbx_net_policy *p,
                              struct ac_error *err) {
  struct sbx_net_rt *N = rt->net;
  char *b = NULL;
  size_t len = 0, cap = 0;
  int oom = 0, dns = p ? p->dns : 1, pub = p ? p->public_ : 1;
  enum ac_code rc;

  APPEND("add chain inet %s s%u\nflush chain inet %s s%u\n", N->table, uid,
         N->table, uid);
  for (int i = 0; dns && i < N->ndns; i++)
    APPEND("add rule inet %s s%u %s daddr %s meta l4proto { tcp, udp } "
           "th dport 53 accept\n", N->table, uid,
           N->dnsfam[i] == AF_INET ? "ip" : "ip6", N->dns[i]);
  for (size_t i = 0; p && i < p->nallow; i++) {
    const struct sbx_net_allow *a = &p->allow[i];
    char addr[INET6_ADDRSTRLEN];
    if (a->host == NULL) {
      inet_ntop(a->family, a->addr, addr, sizeof addr);
      allow_rule(&b, &len, &cap, &oom, N->table, uid, a->family, addr,
                 a->prefix, a);
    } else {
      struct addrinfo hints, *res = NULL, *ai;
      int e;
      memset(&hints, 0, sizeof hints);
      hints.ai_socktype = SOCK_STREAM;
      e = getaddrinfo(a->host, NULL, &hints, &res);
      if (e != 0) {
        free(b);
        return ac_error_set(err, AC_ECONFIG, "network: the allowed host "
                            "'%s' does not resolve: %s", a->host,
                            gai_strerror(e));
      }
      for (ai = res; ai; ai = ai->ai_next) {
        const void *src = ai->ai_family == AF_INET
          ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
          : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
          continue;
        inet_ntop(ai->ai_family, src, addr, sizeof addr);
        allow_rule(&b, &len, &cap, &oom, N->table, uid, ai->ai_family, addr,
                   ai->ai_family == AF_INET ? 32 : 128, a);
      }
      freeaddrinfo(res);
    }
  }
  /* Anything local to the host (every address it has, public ones too)
  ** leaves through lo. */
  APPEND("add rule inet %s s%u oifname \"lo\" goto deny\n", N->table, uid);
  APPEND("add rule inet %s s%u ip daddr @private4 goto deny\n", N->table,
         uid);
  APPEND("add rule inet %s s%u ip6 daddr @private6 goto deny\n", N->table,
         uid);
  if (!pub)
    APPEND("add rule inet %s s%u goto deny\n", N->table, uid);
  APPEND("add element inet %s sessions { %u : jump s%u }\n", N->table, uid,
         uid);
  if (oom) {
    free(b);
    return ac_error_set(err, AC_ENOMEM, "network: out of memory");
  }
  rc = nft_run(N, b, err);
  free(b);
  return rc;
}

static void rules_remove(struct sbx_runtime *rt, unsigned uid) {
  struct sbx_net_rt *N = rt->net;
  char cmd[400];
  snprintf(cmd, sizeof cmd, "delete element inet %1$s sessions { %2$u : "
           "jump s%2$u }\nflush chain inet %1$s s%2$u\n"
           "delete chain inet %1$s s%2$u\n", N->table, uid);
  nft_run(N, cmd, NULL);
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
  rc = rules_add(rt, (unsigned)box->fs.uid, box->limits.netpol, err);
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
    rules_remove(box->rt, (unsigned)box->fs.uid);
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

int sbx_net_box_helper_pid(const struct sbx_box *box) {
  return box->net ? (int)box->net->pid : -1;
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
          "nftables table inet %s on each session's uid; host loopback, "
          "host addresses and private ranges refused unless allowed; DNS "
          "via %s to ", "session networks", "on", N->pasta, N->table,
          SBX_NET_DNS);
  for (int i = 0; i < N->ndns; i++)
    fprintf(out, "%s%s", i ? ", " : "", N->dns[i]);
  fprintf(out, "%s\n", N->ndns ? "" : "(no nameserver)");
  return 0;
}
