/*
** sandbox_live.c -- the live sandbox of each box and the event thread that
** runs them all.
**
** A box's sandbox is one bwrap instance started with --as-pid-1 whose
** command is our agent (src/agent). It is launched by the runtime's event
** thread (bwrap's --die-with-parent follows the thread that started it,
** so only a thread that lives as long as the runtime may start it), at
** box create/open ahead of time, and again on demand after it died.
**
** The event thread owns every agent socket and bwrap pidfd (one epoll),
** enforces timeouts and kill deadlines, validates what agents send
** (they run as the session uid, like the code they start: untrusted) and
** delivers task events. One mutex (live->mu) guards every box's live
** state and every task; callbacks run without it.
**
** Tree kills: each command runs in a cgroup c<id> below the sandbox's
** "live" cgroup in the hierarchy that has cgroup.kill. That directory is
** delegated to the session uid; the agent creates c<id> and the command's
** child joins it before it runs anything, so nothing the command starts
** (setsid, double fork) is ever outside it. The server (root) kills a
** command by writing its cgroup.kill; the whole sandbox by the live
** cgroup's. Without cgroup.kill the agent kills the process group.
*/
#include "sandbox.h"
#include "sandbox_int.h"
#include "sandbox_live.h"
#include "sandbox_live_int.h"
#include "sandbox_net.h"
#include "sandbox_util.h"
#include "agent_proto.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_MAX_OUTPUT (16u << 20)
/* After a kill, how long the agent has to report the command's exit
** before the server ends the task itself. */
#define KILL_GRACE_NS (2LL * 1000000000LL)
/* How long a launch may wait for the agent's HELLO. */
#define HELLO_WAIT_NS (20LL * 1000000000LL)
/* Messages handled per agent per turn of the loop: one chatty box cannot
** starve the others. */
#define MSGS_PER_TURN 64
/* Where the agent appears inside the sandbox. */
#define AGENT_PATH "/.agentcube/agent"

extern const unsigned char sbx_agent_bin[];
extern const unsigned long sbx_agent_bin_len;

static const char default_path[] =
  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

static __thread int on_event_thread;

void sbx_live_wake(struct sbx_live_rt *L) {
  uint64_t one = 1;
  ssize_t n = write(L->wakefd, &one, sizeof one);
  (void)n;
}

#define wake sbx_live_wake

/* ---- output buffers ---- */

/* Keeps up to b->max bytes of data (with keep 0 only counts them, for a
** streamed task); returns how many were kept. */
size_t sbx_obuf_add(struct sbx_obuf *b, const char *data, size_t len,
                    int keep) {
  size_t room = b->max - b->len, take = len < room ? len : room;
  if (keep && b->refused) {
    b->truncated = 1;            /* no gap in the middle: keep nothing */
    return 0;
  }
  if (take < len)
    b->truncated = 1;
  if (!keep) {
    b->len += take;              /* streaming: count only */
    return take;
  }
  if (take && b->len + take + 1 > b->cap) {
    size_t ncap = b->cap ? b->cap : 8192;
    char *np;
    while (ncap < b->len + take + 1)
      ncap *= 2;
    if (ncap > b->max + 1)
      ncap = b->max + 1;
    /* The server's pool first: output a sandbox prints is memory the
    ** server spends until the answer is sent. */
    if (b->pool && !b->pool->take(ncap - b->cap)) {
      b->truncated = b->refused = 1;
      return 0;
    }
    np = realloc(b->p, ncap);
    if (np == NULL) {
      if (b->pool)
        b->pool->give(ncap - b->cap);
      b->truncated = 1;
      return 0;
    }
    if (b->pool)
      b->charged += ncap - b->cap;
    b->p = np;
    b->cap = ncap;
  }
  memcpy(b->p + b->len, data, take);
  b->len += take;
  return take;
}

static char *obuf_take(struct sbx_obuf *b, size_t *len, int keep) {
  char *p = keep ? b->p : NULL;
  if (p == NULL) {
    p = malloc(1);
    if (p == NULL)
      return NULL;
    *len = 0;
    p[0] = '\0';
    if (keep)
      b->p = NULL;
    return p;
  }
  p[b->len] = '\0';
  *len = b->len;
  b->p = NULL;
  return p;
}

/* ---- tasks ---- */

static void task_unref_locked(struct sbx_task *t) {
  if (--t->refs > 0)
    return;
  /* The buffers' memory (or the answer made from it) is gone by now. */
  if (t->out.pool && t->out.charged)
    t->out.pool->give(t->out.charged);
  if (t->err.pool && t->err.charged)
    t->err.pool->give(t->err.charged);
  pthread_cond_destroy(&t->cv);
  free(t->out.p);
  free(t->err.p);
  free(t);
}

static void cgroup_name(unsigned id, char *buf, size_t size) {
  snprintf(buf, size, "c%u", id);
}

static void send_locked_signal(struct sbx_box *box, unsigned id, int sig);

/* Kills the task's whole tree (called with mu held). */
static void task_kill_locked(struct sbx_task *t) {
  struct sbx_box *box = t->box;
  if (t->finished || t->killed)
    return;
  t->killed = 1;
  t->kill_at = sbxu_now_ns();
  if (!t->started)
    return;                      /* STARTED will see killed */
  if (box->live.percmd_cg) {
    char name[16];
    cgroup_name(t->id, name, sizeof name);
    if (cg_cmd_kill_child(&box->rt->cg, &box->live.cg, name) == 0)
      return;
  }
  /* No cgroup of its own (no cgroup.kill here): a process group kill
  ** would miss what left the group (setsid), so the whole sandbox goes,
  ** and with it every process of the command. */
  send_locked_signal(box, t->id, SIGKILL);
  if (box->live.have_cg)
    cg_cmd_kill(&box->rt->cg, &box->live.cg);
  if (box->live.pidfd >= 0)
    syscall(SYS_pidfd_send_signal, box->live.pidfd, SIGKILL, NULL, 0);
}

/* Ends a task: builds its result, delivers done (mu is dropped around the
** callback) and drops the in-flight reference. */
static void task_finish_locked(struct sbx_live_rt *L, struct sbx_task *t) {
  struct sbx_box *box = t->box;
  struct sbx_exec_result res;
  int keep = t->ev.output == NULL;
  if (t->finished)
    return;
  t->finished = 1;
  for (struct sbx_task **pp = &box->live.tasks; *pp; pp = &(*pp)->next) {
    if (*pp == t) {
      *pp = t->next;
      break;
    }
  }
  if (t->started && box->live.percmd_cg) {
    char name[16];
    cgroup_name(t->id, name, sizeof name);
    /* what the agent may not have killed (it is not trusted); a
    ** background process's leftovers stay until the box ends */
    if (!t->keep)
      cg_cmd_kill_child(&box->rt->cg, &box->live.cg, name);
    if (cg_cmd_remove_child(&box->rt->cg, &box->live.cg, name) < 0 &&
        !t->keep && L->ngraves < L->capgraves) {
      L->graves[L->ngraves].box = box;
      L->graves[L->ngraves].id = t->id;
      L->ngraves++;
    }
  }
  memset(&res, 0, sizeof res);
  res.start = t->start;
  clock_gettime(CLOCK_REALTIME, &res.end);
  if (t->timed_out) {
    res.exit_code = 124;
    res.timed_out = 1;
  } else if (t->exited && WIFEXITED(t->status)) {
    res.exit_code = WEXITSTATUS(t->status);
  } else if (t->exited && WIFSIGNALED(t->status)) {
    res.exit_code = 128 + WTERMSIG(t->status);
  } else if (t->failed) {
    res.exit_code = 1;
  } else {
    res.exit_code = 137;         /* killed, or the sandbox died */
  }
  if (t->started && box->live.have_cg &&
      cg_cmd_oom_kills(&box->rt->cg, &box->live.cg) > box->live.oom_base) {
    box->live.oom_base = cg_cmd_oom_kills(&box->rt->cg, &box->live.cg);
    if (res.exit_code == 137 || (t->exited && WIFSIGNALED(t->status)))
      t->oom = 1;
  }
  if (t->oom) {
    res.oom_killed = 1;
    if (!res.timed_out)
      res.exit_code = 137;
  }
  res.out = obuf_take(&t->out, &res.out_len, keep);
  res.err = obuf_take(&t->err, &res.err_len, keep);
  res.out_truncated = t->out.truncated;
  res.err_truncated = t->err.truncated;
  res.pool_refused = t->out.refused || t->err.refused;
  if (res.timed_out && res.err) {
    char msg[96];
    double secs = (double)(t->timeout_ns / 1000000000LL) +
                  (double)(t->timeout_ns % 1000000000LL) / 1e9;
    int n = snprintf(msg, sizeof msg,
                     "\nCommand timed out after %.0f seconds", secs);
    char *p = realloc(res.err, res.err_len + (size_t)n + 1);
    if (p) {
      memcpy(p + res.err_len, msg, (size_t)n + 1);
      res.err = p;
      res.err_len += (size_t)n;
    }
  }
  if (res.out == NULL || res.err == NULL) {
    free(res.out);
    free(res.err);
    res.out = res.err = (char *)"";
    res.out_len = res.err_len = 0;
    res.out_truncated = res.err_truncated = 1;
    sbx_live_done(L, t, &res);
  } else {
    sbx_live_done(L, t, &res);
    free(res.out);
    free(res.err);
  }
  task_unref_locked(t);
}

void sbx_live_output(struct sbx_live_rt *L, struct sbx_task *t,
                     enum sbx_stream s, unsigned long long off,
                     const char *data, size_t len) {
  if (t->released || t->ev.output == NULL)
    return;
  t->cb_running = 1;
  pthread_mutex_unlock(&L->mu);
  t->ev.output(t->ud, s, off, data, len);
  pthread_mutex_lock(&L->mu);
  t->cb_running = 0;
  pthread_cond_broadcast(&t->cv);
}

void sbx_live_done(struct sbx_live_rt *L, struct sbx_task *t,
                   const struct sbx_exec_result *res) {
  if (t->released || t->ev.done == NULL)
    return;
  t->cb_running = 1;
  pthread_mutex_unlock(&L->mu);
  t->ev.done(t->ud, res, NULL);
  pthread_mutex_lock(&L->mu);
  t->cb_running = 0;
  pthread_cond_broadcast(&t->cv);
}

void sbx_live_unref(struct sbx_task *t) {
  task_unref_locked(t);
}

void sbx_live_signal(struct sbx_task *t, int sig) {
  if (sig == SIGKILL) {
    task_kill_locked(t);
    return;
  }
  if (t->finished)
    return;
  if (t->started)
    send_locked_signal(t->box, t->id, sig);
  else
    t->pending_sig = sig;        /* not lost: sent once it has a pid */
}

static struct sbx_task *find_task(struct sbx_box *box, unsigned id) {
  for (struct sbx_task *t = box->live.tasks; t; t = t->next)
    if (t->id == id)
      return t;
  return NULL;
}

/* ---- sending ---- */

/* One message to the agent (send_mu held by the caller, mu not needed).
** Returns 0 or -1 (the agent is stuck or gone). */
static int send_msg(int sock, uint16_t type, unsigned id, uint32_t arg,
                    const void *a, size_t alen, const void *b, size_t blen) {
  struct agp_hdr h;
  struct iovec iov[3];
  struct msghdr m;
  ssize_t n;
  h.len = (uint32_t)(sizeof h + alen + blen);
  h.version = AGP_VERSION;
  h.type = type;
  h.id = id;
  h.arg = arg;
  iov[0] = (struct iovec){ &h, sizeof h };
  iov[1] = (struct iovec){ (void *)a, alen };
  iov[2] = (struct iovec){ (void *)b, blen };
  memset(&m, 0, sizeof m);
  m.msg_iov = iov;
  m.msg_iovlen = 3;
  do
    n = sendmsg(sock, &m, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n == (ssize_t)h.len ? 0 : -1;
}

/* Sending with mu held (the event thread too): never blocks. A signal
** that cannot be sent at once (the agent is not reading, or another
** thread is sending) is dropped, except SIGKILL, which then takes the
** whole sandbox down: a kill is never lost. */
static void send_locked_signal(struct sbx_box *box, unsigned id, int sig) {
  struct agp_hdr h = { sizeof h, AGP_VERSION, AGP_SIGNAL, id, (uint32_t)sig };
  int sent = 0;
  if (box->live.sock < 0)
    return;
  /* the event thread must not wait for another sender (which may wait
  ** for the agent, which may wait for the event thread) */
  if ((on_event_thread ? pthread_mutex_trylock(&box->live.send_mu)
                       : pthread_mutex_lock(&box->live.send_mu)) == 0) {
    sent = send(box->live.sock, &h, sizeof h, MSG_DONTWAIT | MSG_NOSIGNAL) ==
           (ssize_t)sizeof h;
    pthread_mutex_unlock(&box->live.send_mu);
  }
  if (!sent && sig == SIGKILL && box->live.pidfd >= 0)
    syscall(SYS_pidfd_send_signal, box->live.pidfd, SIGKILL, NULL, 0);
}

int sbx_live_stdin(struct sbx_box *box, unsigned id, const void *data,
                   size_t len, int eof) {
  struct sbx_live_rt *L = box->rt->live;
  const char *p = data;
  int sock, rc = 0;
  pthread_mutex_lock(&L->mu);
  sock = box->live.sock >= 0 ? fcntl(box->live.sock, F_DUPFD_CLOEXEC, 3)
                             : -1;
  pthread_mutex_lock(&box->live.send_mu);
  pthread_mutex_unlock(&L->mu);
  if (sock < 0)
    rc = -1;
  do {
    size_t n = len > AGP_CHUNK ? AGP_CHUNK : len;
    if (rc == 0 && send_msg(sock, AGP_STDIN, id,
                            (eof && n == len) ? 1u : 0u, p, n, NULL, 0) < 0)
      rc = -1;
    p += n;
    len -= n;
  } while (len > 0 && rc == 0);
  pthread_mutex_unlock(&box->live.send_mu);
  if (sock >= 0)
    close(sock);
  return rc;
}

/* ---- launching and losing a sandbox ---- */

static enum ac_code build_live_args(struct sbx_box *box, struct sbx_args *a,
                                    struct ac_error *err) {
  char num[16];
  sbx_args_addn(a, box->prefix, box->prefix_len - 1);
  sbx_args_add(a, "--as-pid-1");
  sbx_args_add(a, "--chdir");
  sbx_args_add(a, "/");
  sbx_args_add(a, "--clearenv");
  sbx_args_add(a, "--perms");
  sbx_args_add(a, "0555");
  snprintf(num, sizeof num, "%d", SBX_FD_AGENT);
  sbx_args_add(a, "--ro-bind-data");
  sbx_args_add(a, num);
  sbx_args_add(a, AGENT_PATH);
  snprintf(num, sizeof num, "%d", SBX_FD_SECCOMP);
  sbx_args_add(a, "--seccomp");
  sbx_args_add(a, num);
  if (a->oom)
    return ac_error_set(err, AC_ENOMEM, "sandbox: out of memory");
  return AC_OK;
}

static void live_release_fds(struct sbx_live *lv) {
  if (lv->sock >= 0)
    close(lv->sock);
  if (lv->pidfd >= 0)
    close(lv->pidfd);
  if (lv->errfd >= 0)
    close(lv->errfd);
  if (lv->cgdirfd >= 0)
    close(lv->cgdirfd);
  lv->sock = lv->pidfd = lv->errfd = lv->cgdirfd = -1;
}

/* Starts bwrap + agent for box (event thread, mu held). */
static enum ac_code live_spawn(struct sbx_live_rt *L, struct sbx_box *box,
                               struct ac_error *err) {
  struct sbx_runtime *rt = box->rt;
  struct sbx_live *lv = &box->live;
  char sockarg[16], cgarg[16];
  char *argv[] = { "bwrap", "--args", "3", "--", AGENT_PATH, sockarg, cgarg,
                   NULL };
  char *envp[] = { NULL };
  struct sbx_spawn_plan plan;
  struct sbx_args args = { 0 };
  struct epoll_event ev;
  int sv[2] = { -1, -1 };
  enum ac_code rc;

  memset(&plan, 0, sizeof plan);
  for (int i = 0; i < SBX_NFDS; i++)
    plan.fds[i] = -1;
  rc = cg_cmd_create(&rt->cg, &box->cg, "live", &lv->cg, err);
  if (rc)
    return rc;
  lv->have_cg = 1;
  lv->oom_base = cg_cmd_oom_kills(&rt->cg, &lv->cg);
  lv->cgdirfd = cg_cmd_delegate(&rt->cg, &lv->cg, rt->root,
                                (unsigned)box->fs.uid, (unsigned)box->fs.gid);
  lv->percmd_cg = lv->cgdirfd >= 0;
  if (cg_cmd_kill_index(&rt->cg, &lv->cg) >= 0 && !lv->percmd_cg) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "sandbox: delegating the "
                        "command cgroups");
    goto fail;
  }
  snprintf(sockarg, sizeof sockarg, "%d", SBX_FD_SOCK);
  snprintf(cgarg, sizeof cgarg, "%d", lv->percmd_cg ? SBX_FD_CGDIR : -1);
  rc = build_live_args(box, &args, err);
  if (rc)
    goto fail;
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "sandbox: socketpair");
    goto fail;
  }
  {
    int one = 1;
    struct timeval tv = { 2, 0 };
    setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  lv->errfd = memfd_create("sandbox-stderr", MFD_CLOEXEC);
  plan.fds[SBX_FD_STDIN] = open("/dev/null", O_RDONLY | O_CLOEXEC);
  plan.fds[SBX_FD_STDOUT] = open("/dev/null", O_WRONLY | O_CLOEXEC);
  plan.fds[SBX_FD_STDERR] = lv->errfd >= 0 ? dup(lv->errfd) : -1;
  plan.fds[SBX_FD_ARGS] = sbxu_memfd("bwrap-args", args.p, args.len);
  plan.fds[SBX_FD_SECCOMP] = sbxu_memfd("seccomp", rt->seccomp.bpf,
                                        rt->seccomp.len);
  plan.fds[SBX_FD_AGENT] = sbxu_memfd("agent", sbx_agent_bin,
                                      sbx_agent_bin_len);
  plan.fds[SBX_FD_SOCK] = sv[1];
  sv[1] = -1;
  for (int i = 0; i <= SBX_FD_SECCOMP; i++) {
    if (i != SBX_FD_INFO && plan.fds[i] < 0) {
      rc = ac_error_errno(err, AC_ESYSTEM, errno, "sandbox: preparing fd "
                          "%d", i);
      goto fail;
    }
  }
  if (plan.fds[SBX_FD_AGENT] < 0) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "sandbox: agent memfd");
    goto fail;
  }
  plan.fds[SBX_FD_ETC] = rt->etcfd;
  plan.fds[SBX_FD_WS] = box->fs.wsfd;
  plan.fds[SBX_FD_TMP] = box->fs.tmpfd;
  plan.fds[SBX_FD_HOME] = box->fs.homefd;
  plan.fds[SBX_FD_CGDIR] = lv->cgdirfd;
  if (sbx_net_box_dns(box)) {
    static const char resolv[] = "nameserver " SBX_NET_DNS "\n";
    plan.fds[SBX_FD_RESOLV] = sbxu_memfd("resolv.conf", resolv,
                                         sizeof resolv - 1);
    if (plan.fds[SBX_FD_RESOLV] < 0) {
      rc = ac_error_errno(err, AC_ESYSTEM, errno, "sandbox: resolv.conf");
      goto fail;
    }
  }
  if (box->limits.network) {
    plan.netns = sbx_net_box_netns(box);
    if (plan.netns <= 0) {
      rc = ac_error_set(err, AC_ESYSTEM, "sandbox: the session's network "
                        "is gone");
      goto fail;
    }
  }
  plan.nfds = SBX_NFDS;
  plan.path = rt->bwrap;
  plan.argv = argv;
  plan.envp = envp;
  plan.join = lv->cg.join;
  plan.njoin = lv->cg.njoin;
  plan.rl[0].resource = RLIMIT_CORE;
  plan.rl[0].lim.rlim_cur = plan.rl[0].lim.rlim_max = 0;
  plan.nrl = 1;
  if (rt->root) {
    plan.set_ids = 1;
    plan.uid = box->fs.uid;
    plan.gid = box->fs.gid;
  }
  rc = sbx_spawn(&plan, &lv->pid, &lv->pidfd, err);
  if (rc)
    goto fail;
  lv->sock = sv[0];
  sv[0] = -1;
  fcntl(lv->sock, F_SETFL, O_NONBLOCK);
  lv->ep_sock = (struct sbx_live_ep){ box, 1 };
  lv->ep_pid = (struct sbx_live_ep){ box, 2 };
  ev.events = EPOLLIN;
  ev.data.ptr = &lv->ep_sock;
  epoll_ctl(L->epfd, EPOLL_CTL_ADD, lv->sock, &ev);
  if (lv->pidfd >= 0) {
    ev.data.ptr = &lv->ep_pid;
    epoll_ctl(L->epfd, EPOLL_CTL_ADD, lv->pidfd, &ev);
  }
  if (lv->cg.oom_efd >= 0) {
    lv->ep_oom = (struct sbx_live_ep){ box, 3 };
    ev.data.ptr = &lv->ep_oom;
    epoll_ctl(L->epfd, EPOLL_CTL_ADD, lv->cg.oom_efd, &ev);
  }
  lv->agent_pid = 0;
  lv->spawned = 1;
  lv->launches++;
  goto out;
fail:
  live_release_fds(lv);
  if (lv->have_cg)
    cg_cmd_destroy(&rt->cg, &lv->cg);
  lv->have_cg = 0;
  lv->percmd_cg = 0;
out:
  for (int i = 0; i < SBX_NFDS; i++)
    if (i < SBX_FD_ETC || i == SBX_FD_AGENT || i == SBX_FD_SOCK ||
        i == SBX_FD_RESOLV)
      if (plan.fds[i] >= 0)
        close(plan.fds[i]);
  if (sv[0] >= 0)
    close(sv[0]);
  if (sv[1] >= 0)
    close(sv[1]);
  sbx_args_free(&args);
  return rc;
}

/* The sandbox is gone or must go (event thread, mu held): kills what is
** left, reaps bwrap, ends every task in flight, and marks it down. */
static void live_down(struct sbx_live_rt *L, struct sbx_box *box,
                      const char *why) {
  struct sbx_live *lv = &box->live;
  struct sbx_runtime *rt = box->rt;
  if (lv->state == SBX_LIVE_DOWN)
    return;
  if (lv->sock >= 0)
    epoll_ctl(L->epfd, EPOLL_CTL_DEL, lv->sock, NULL);
  if (lv->pidfd >= 0)
    epoll_ctl(L->epfd, EPOLL_CTL_DEL, lv->pidfd, NULL);
  if (lv->have_cg && lv->cg.oom_efd >= 0)
    epoll_ctl(L->epfd, EPOLL_CTL_DEL, lv->cg.oom_efd, NULL);
  if (lv->have_cg)
    cg_cmd_kill(&rt->cg, &lv->cg);
  if (lv->pidfd >= 0)
    syscall(SYS_pidfd_send_signal, lv->pidfd, SIGKILL, NULL, 0);
  else if (lv->pid > 0)
    kill(lv->pid, SIGKILL);
  if (lv->pid > 0)
    while (waitpid(lv->pid, NULL, 0) < 0 && errno == EINTR)
      ;
  /* The agent was bwrap's child; if bwrap died first it was orphaned to
  ** us (the server is a subreaper) and is ours to reap. */
  if (lv->agent_pidfd >= 0) {
    struct pollfd p = { .fd = lv->agent_pidfd, .events = POLLIN };
    siginfo_t si;
    syscall(SYS_pidfd_send_signal, lv->agent_pidfd, SIGKILL, NULL, 0);
    if (poll(&p, 1, 2000) > 0) {
      memset(&si, 0, sizeof si);
      while (waitid((idtype_t)P_PIDFD, (id_t)lv->agent_pidfd, &si,
                    WEXITED | WNOHANG) < 0 && errno == EINTR)
        ;
    }
    close(lv->agent_pidfd);
    lv->agent_pidfd = -1;
  }
  if (why && lv->state == SBX_LIVE_STARTING && lv->errfd >= 0) {
    char msg[200];
    ssize_t n = pread(lv->errfd, msg, sizeof msg - 1, 0);
    msg[n > 0 ? n : 0] = '\0';
    msg[strcspn(msg, "\n")] = '\0';
    snprintf(lv->why, sizeof lv->why, "%s%s%s", why, msg[0] ? ": " : "",
             msg);
  }
  lv->pid = -1;
  live_release_fds(lv);
  lv->state = SBX_LIVE_DOWN;
  lv->spawned = 0;
  lv->down_epoch = L->epoch;
  while (lv->tasks)
    task_finish_locked(L, lv->tasks);
  if (lv->have_cg) {
    pthread_mutex_unlock(&L->mu);
    cg_cmd_destroy(&rt->cg, &lv->cg);
    pthread_mutex_lock(&L->mu);
  }
  lv->have_cg = 0;
  lv->percmd_cg = 0;
  for (size_t i = 0; i < L->ngraves;) {
    if (L->graves[i].box == box)
      L->graves[i] = L->graves[--L->ngraves];
    else
      i++;
  }
  pthread_cond_broadcast(&L->cv);
}

/* ---- receiving ---- */

/* A command the server gave up before the agent started it (its timeout
** and the grace passed without an answer) starts only now: its request
** has been answered, so what it runs goes at once (mu held). */
static void kill_late_start(struct sbx_live_rt *L, struct sbx_box *box,
                            unsigned id) {
  struct sbx_live *lv = &box->live;
  if (lv->percmd_cg) {
    char name[16];
    cgroup_name(id, name, sizeof name);
    cg_cmd_kill_child(&box->rt->cg, &lv->cg, name);
    if (L->ngraves < L->capgraves) {
      L->graves[L->ngraves].box = box;   /* removed once empty */
      L->graves[L->ngraves].id = id;
      L->ngraves++;
    }
  } else {
    send_locked_signal(box, id, SIGKILL);
  }
}

/* Handles one message; returns -1 when the agent broke the protocol (the
** sandbox is then taken down). */
static int handle_msg(struct sbx_live_rt *L, struct sbx_box *box,
                      const struct agp_hdr *h, const char *pl, size_t plen,
                      pid_t sender) {
  struct sbx_live *lv = &box->live;
  struct sbx_task *t;

  if (h->version != AGP_VERSION || h->len != sizeof *h + plen)
    return -1;
  if (h->type == AGP_HELLO) {
    if (lv->state != SBX_LIVE_STARTING || plen || h->arg != AGP_VERSION)
      return -1;
    lv->agent_pid = sender;
    lv->agent_pidfd = (int)syscall(SYS_pidfd_open, sender, 0);
    lv->state = SBX_LIVE_UP;
    pthread_cond_broadcast(&L->cv);
    return 0;
  }
  /* Everything else only from the process that said HELLO, about a
  ** command it was given. */
  if (lv->state != SBX_LIVE_UP || sender != lv->agent_pid || h->id == 0)
    return -1;
  t = find_task(box, h->id);
  if (t == NULL) {
    /* a task the server already ended (killed, grace over): its late
    ** messages are expected; anything else is not */
    if (h->id >= lv->next_id)
      return -1;
    if (h->type == AGP_STARTED)
      kill_late_start(L, box, h->id);
    return 0;
  }
  switch (h->type) {
  case AGP_STARTED:
    if (t->started || plen || h->arg < 1 || h->arg > (1u << 22))
      return -1;
    t->started = 1;
    t->pid = (int)h->arg;
    if (t->killed) {
      t->killed = 0;             /* killed before it started: now */
      task_kill_locked(t);
    } else if (t->pending_sig) {
      send_locked_signal(t->box, t->id, t->pending_sig);
      t->pending_sig = 0;
    }
    return 0;
  case AGP_OUTPUT: {
    struct sbx_obuf *b;
    size_t kept;
    if (!t->started || t->exited || plen == 0 || plen > AGP_CHUNK ||
        (h->arg != SBX_STDOUT && h->arg != SBX_STDERR))
      return -1;
    b = h->arg == SBX_STDOUT ? &t->out : &t->err;
    kept = sbx_obuf_add(b, pl, plen, t->ev.output == NULL);
    t->offset += kept;
    if (kept)
      sbx_live_output(L, t, (enum sbx_stream)h->arg, t->offset - kept, pl,
                      kept);
    return 0;
  }
  case AGP_EXIT:
    if (!t->started || plen)
      return -1;
    t->exited = 1;
    t->status = (int)h->arg;
    task_finish_locked(L, t);
    return 0;
  case AGP_FAILED:
    if (t->started || plen > 512)
      return -1;
    t->failed = 1;
    {
      char line[600];
      int n = snprintf(line, sizeof line, "agent: %.*s\n", (int)plen, pl);
      sbx_obuf_add(&t->err, line, (size_t)n, 1);
      if (t->ev.output) {
        t->err.len = 0;          /* count delivered, not kept */
        sbx_obuf_add(&t->err, line, (size_t)n, 0);
        t->offset += (size_t)n;
        sbx_live_output(L, t, SBX_STDERR, 0, line, (size_t)n);
      }
    }
    task_finish_locked(L, t);
    return 0;
  default:
    return -1;
  }
}

/* Reads up to MSGS_PER_TURN messages of one agent. */
static void read_agent(struct sbx_live_rt *L, struct sbx_box *box) {
  char *buf = L->rbuf;
  union {
    char c[CMSG_SPACE(sizeof(struct ucred))];
    struct cmsghdr align;
  } ctl;
  for (int k = 0; k < MSGS_PER_TURN && box->live.sock >= 0; k++) {
    struct iovec iov = { buf, AGP_MAX_MSG + 1 };
    struct msghdr m;
    struct agp_hdr h;
    struct cmsghdr *cm;
    pid_t sender = 0;
    ssize_t n;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl.c;
    m.msg_controllen = sizeof ctl.c;
    n = recvmsg(box->live.sock, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      return;
    if (n <= 0) {
      live_down(L, box, "the sandbox's agent exited");
      return;
    }
    for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
      if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS &&
          cm->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
        struct ucred uc;
        memcpy(&uc, CMSG_DATA(cm), sizeof uc);
        sender = uc.pid;
      }
    }
    /* The control buffer holds the credentials only (the kernel puts them
    ** first): descriptors handed to us never fit, the kernel closes them
    ** and says MSG_CTRUNC, and nobody may hand us descriptors. */
    if ((m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || sender <= 0 ||
        (size_t)n < sizeof h || (size_t)n > AGP_MAX_MSG) {
      live_down(L, box, "the sandbox's agent broke the protocol");
      return;
    }
    memcpy(&h, buf, sizeof h);
    if (handle_msg(L, box, &h, buf + sizeof h, (size_t)n - sizeof h,
                   sender) < 0) {
      live_down(L, box, "the sandbox's agent broke the protocol");
      return;
    }
  }
}

/* ---- the event thread ---- */

static void active_add(struct sbx_box *box) {
  struct boxset *a = &box->rt->live->active;
  for (size_t i = 0; i < a->n; i++)
    if (a->v[i] == box)
      return;
  if (a->n == a->cap) {
    size_t ncap = a->cap ? a->cap * 2 : 64;
    struct sbx_box **nv = realloc(a->v, ncap * sizeof *nv);
    if (nv == NULL)
      return;
    a->v = nv;
    a->cap = ncap;
  }
  a->v[a->n++] = box;
}

void sbx_live_activate(struct sbx_box *box) {
  active_add(box);
}

static void active_remove(struct sbx_box *box) {
  struct boxset *a = &box->rt->live->active;
  for (size_t i = 0; i < a->n; i++) {
    if (a->v[i] == box) {
      a->v[i] = a->v[--a->n];
      return;
    }
  }
}

static long long scan_tasks(struct sbx_live_rt *L, long long now) {
  long long best = now + 3600LL * 1000000000LL;
  for (size_t i = 0; i < L->active.n; i++) {
    struct sbx_box *box = L->active.v[i];
    struct sbx_task *t, *next;
    for (t = box->live.tasks; t; t = next) {
      next = t->next;
      if (t->never) {
        t->timed_out = 1;
        task_finish_locked(L, t);
        next = box->live.tasks;     /* the list changed */
        continue;
      }
      if (!t->killed && t->deadline && now >= t->deadline) {
        t->timed_out = 1;
        task_kill_locked(t);
      }
      if (t->killed && now >= t->kill_at + KILL_GRACE_NS) {
        task_finish_locked(L, t);
        next = box->live.tasks;
        continue;
      }
      if (t->killed) {
        if (t->kill_at + KILL_GRACE_NS < best)
          best = t->kill_at + KILL_GRACE_NS;
      } else if (t->deadline && t->deadline < best) {
        best = t->deadline;
      }
    }
  }
  return best;
}

static void launch_wanted(struct sbx_live_rt *L) {
  while (L->nwant > 0) {
    struct sbx_box *box = L->want[--L->nwant];
    struct ac_error err;
    if (box->live.state != SBX_LIVE_STARTING || box->live.spawned)
      continue;
    active_add(box);
    if (live_spawn(L, box, &err)) {
      snprintf(box->live.why, sizeof box->live.why, "%s", err.msg);
      box->live.state = SBX_LIVE_DOWN;
      box->live.down_epoch = L->epoch;
      while (box->live.tasks)
        task_finish_locked(L, box->live.tasks);
      pthread_cond_broadcast(&L->cv);
    }
  }
}

static void dig_graves(struct sbx_live_rt *L) {
  for (size_t i = 0; i < L->ngraves;) {
    struct sbx_box *box = L->graves[i].box;
    char name[16];
    cgroup_name(L->graves[i].id, name, sizeof name);
    if (!box->live.have_cg ||
        cg_cmd_remove_child(&box->rt->cg, &box->live.cg, name) == 0)
      L->graves[i] = L->graves[--L->ngraves];
    else
      i++;
  }
}

/* The box's memory cgroup (v1) is out of memory. v1 kills one task; the
** policy (memory.oom.group on v2) is that the whole command goes: every
** command of the box in flight when the kill happened, like a pod's
** containers. */
static void oom_event(struct sbx_box *box) {
  struct sbx_live *lv = &box->live;
  unsigned long long v;
  long long until = sbxu_now_ns() + 2000000000LL;
  uint64_t junk;
  ssize_t n = read(lv->cg.oom_efd, &junk, sizeof junk);
  (void)n;
  /* the kill is counted a little after the notification */
  while ((v = cg_cmd_oom_kills(&box->rt->cg, &lv->cg)) <= lv->oom_base &&
         sbxu_now_ns() < until)
    sbxu_sleep_ms(2);
  if (v <= lv->oom_base)
    return;
  lv->oom_base = v;
  for (struct sbx_task *t = lv->tasks; t; t = t->next) {
    if (t->started && !t->killed) {
      t->oom = 1;
      task_kill_locked(t);
    }
  }
}

static void *event_thread(void *arg) {
  struct sbx_live_rt *L = arg;
  struct epoll_event evs[64];
  sigset_t all;
  int timeout_ms = -1;

  on_event_thread = 1;
  /* Signals go to the server's other threads. */
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  pthread_mutex_lock(&L->mu);
  while (!L->stop) {
    int n;
    long long now, best;
    pthread_mutex_unlock(&L->mu);
    n = epoll_wait(L->epfd, evs, 64, timeout_ms);
    pthread_mutex_lock(&L->mu);
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr == NULL) {
        uint64_t v;
        ssize_t r = read(L->wakefd, &v, sizeof v);
        (void)r;
        continue;
      }
      {
        struct sbx_live_ep *ep = evs[i].data.ptr;
        struct sbx_box *box = ep->box;
        if (box->live.state == SBX_LIVE_DOWN)
          continue;                /* went down earlier in this batch */
        if (ep->kind == 1)
          read_agent(L, box);
        else if (ep->kind == 3)
          oom_event(box);
        else
          live_down(L, box, "the sandbox exited");
      }
    }
    launch_wanted(L);
    dig_graves(L);
    now = sbxu_now_ns();
    best = scan_tasks(L, now);
    for (size_t i = 0; i < L->active.n;) {
      struct sbx_box *box = L->active.v[i];
      long long cb;
      sbx_proc_pump(L, box);
      cb = sbx_ctx_tick(L, box, now);
      if (cb < best)
        best = cb;
      if (box->live.state == SBX_LIVE_DOWN && box->live.tasks == NULL &&
          box->live.watches == NULL && box->live.ctxs == NULL)
        active_remove(box);
      else
        i++;
    }
    L->epoch++;
    pthread_cond_broadcast(&L->cv);
    if (L->ngraves)
      best = best < now + 5000000LL ? best : now + 5000000LL;
    timeout_ms = (int)((best - now + 999999) / 1000000);
    if (timeout_ms < 0)
      timeout_ms = 0;
  }
  pthread_mutex_unlock(&L->mu);
  return NULL;
}

enum ac_code sbx_live_rt_start(struct sbx_runtime *rt, struct ac_error *err) {
  struct sbx_live_rt *L = calloc(1, sizeof *L);
  struct epoll_event ev;
  if (L == NULL)
    return ac_error_set(err, AC_ENOMEM, "sandbox: out of memory");
  L->rt = rt;
  L->epfd = epoll_create1(EPOLL_CLOEXEC);
  L->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  L->capgraves = 4096;
  L->graves = calloc(L->capgraves, sizeof *L->graves);
  if (L->epfd < 0 || L->wakefd < 0 || L->graves == NULL) {
    enum ac_code rc = ac_error_errno(err, AC_ESYSTEM, errno,
                                     "sandbox: event loop");
    if (L->epfd >= 0)
      close(L->epfd);
    if (L->wakefd >= 0)
      close(L->wakefd);
    free(L->graves);
    free(L);
    return rc;
  }
  ev.events = EPOLLIN;
  ev.data.ptr = NULL;
  epoll_ctl(L->epfd, EPOLL_CTL_ADD, L->wakefd, &ev);
  pthread_mutex_init(&L->mu, NULL);
  pthread_cond_init(&L->cv, NULL);
  if (pthread_create(&L->thread, NULL, event_thread, L) != 0) {
    close(L->epfd);
    close(L->wakefd);
    free(L->graves);
    free(L);
    return ac_error_set(err, AC_ESYSTEM, "sandbox: cannot start the event "
                        "thread");
  }
  rt->live = L;
  return AC_OK;
}

void sbx_live_rt_stop(struct sbx_runtime *rt) {
  struct sbx_live_rt *L = rt->live;
  if (L == NULL)
    return;
  pthread_mutex_lock(&L->mu);
  L->stop = 1;
  pthread_mutex_unlock(&L->mu);
  wake(L);
  pthread_join(L->thread, NULL);
  close(L->epfd);
  close(L->wakefd);
  pthread_mutex_destroy(&L->mu);
  pthread_cond_destroy(&L->cv);
  free(L->want);
  free(L->graves);
  free(L->active.v);
  L->active.v = NULL;
  L->active.n = L->active.cap = 0;
  free(L);
  rt->live = NULL;
}

/* ---- boxes ---- */

int sbx_live_box_init(struct sbx_box *box) {
  struct sbx_live *lv = &box->live;
  memset(lv, 0, sizeof *lv);
  lv->sock = lv->pidfd = lv->errfd = lv->cgdirfd = lv->agent_pidfd = -1;
  lv->pid = -1;
  lv->next_id = 1;
  return pthread_mutex_init(&lv->send_mu, NULL) == 0 ? 0 : -1;
}

void sbx_live_box_fini(struct sbx_box *box) {
  sbx_proc_free_all(box);
  sbx_ctx_free_all(box);
  pthread_mutex_destroy(&box->live.send_mu);
}

/* Asks the event thread for a launch (mu held). */
static int want_launch_locked(struct sbx_live_rt *L, struct sbx_box *box) {
  if (box->live.state != SBX_LIVE_DOWN)
    return 0;
  if (L->nwant == L->capwant) {
    size_t ncap = L->capwant ? L->capwant * 2 : 64;
    struct sbx_box **nv = realloc(L->want, ncap * sizeof *nv);
    if (nv == NULL)
      return -1;
    L->want = nv;
    L->capwant = ncap;
  }
  L->want[L->nwant++] = box;
  box->live.state = SBX_LIVE_STARTING;
  box->live.spawned = 0;
  box->live.why[0] = '\0';
  wake(L);
  return 0;
}

void sbx_live_box_warm(struct sbx_box *box) {
  struct sbx_live_rt *L = box->rt->live;
  pthread_mutex_lock(&L->mu);
  want_launch_locked(L, box);
  pthread_mutex_unlock(&L->mu);
}

void sbx_live_box_kill(struct sbx_box *box) {
  struct sbx_live_rt *L = box->rt->live;
  pthread_mutex_lock(&L->mu);
  for (struct sbx_task *t = box->live.tasks; t; t = t->next)
    task_kill_locked(t);
  pthread_mutex_unlock(&L->mu);
  wake(L);
}

void sbx_live_box_stop(struct sbx_box *box) {
  struct sbx_live_rt *L = box->rt->live;
  pthread_mutex_lock(&L->mu);
  /* a launch still queued is dropped */
  for (size_t i = 0; i < L->nwant;) {
    if (L->want[i] == box)
      L->want[i] = L->want[--L->nwant];
    else
      i++;
  }
  if (box->live.state == SBX_LIVE_STARTING && !box->live.spawned) {
    box->live.state = SBX_LIVE_DOWN;
    box->live.down_epoch = L->epoch;
    /* each task is unlinked here, before finishing it frees it */
    for (struct sbx_task *t; (t = box->live.tasks) != NULL;) {
      assert(!t->finished);      /* a finished task is no longer listed */
      box->live.tasks = t->next;
      t->next = NULL;
      task_finish_locked(L, t);
    }
  }
  if (box->live.state != SBX_LIVE_DOWN) {
    /* The event thread takes it down (it owns the fds); kill it now so
    ** that it goes within milliseconds. */
    if (box->live.have_cg)
      cg_cmd_kill(&box->rt->cg, &box->live.cg);
    if (box->live.pidfd >= 0)
      syscall(SYS_pidfd_send_signal, box->live.pidfd, SIGKILL, NULL, 0);
  }
  wake(L);
  /* Down, and a whole turn of the loop since (no event of this box is
  ** still in the loop's hands). */
  while (box->live.state != SBX_LIVE_DOWN ||
         L->epoch <= box->live.down_epoch || box->live.watches)
    pthread_cond_wait(&L->cv, &L->mu);
  active_remove(box);
  pthread_mutex_unlock(&L->mu);
}

/* ---- commands ---- */

static enum ac_code check_request(const struct sbx_exec_request *req,
                                  struct ac_error *err) {
  if (req->argv == NULL || req->argv[0] == NULL || req->argv[0][0] == '\0')
    return ac_error_set(err, AC_EINVAL, "exec: empty command");
  if (req->working_dir && req->working_dir[0] != '/')
    return ac_error_set(err, AC_EINVAL, "exec: working_dir must be an "
                        "absolute path");
  for (const char *const *e = req->env; e && *e; e++) {
    const char *eq = strchr(*e, '=');
    if (eq == NULL || eq == *e)
      return ac_error_set(err, AC_EINVAL, "exec: bad environment entry "
                          "\"%.40s\"", *e);
  }
  return AC_OK;
}

/* The AGP_SPAWN payload: struct agp_spawn, cwd, argv, env (defaults
** first, then the request's entries, later ones overriding earlier). */
static enum ac_code build_spawn(const struct sbx_box *box,
                                const struct sbx_exec_request *req,
                                unsigned flags, struct sbx_args *a,
                                struct agp_spawn *sp, struct ac_error *err) {
  static const char *const defaults[] = {
    "PATH=", "HOME=/home/sandbox", "TMPDIR=/tmp", "LANG=C.UTF-8",
  };
  const struct sbx_limits *l = &box->limits;
  size_t nenv = 0, nreq = 0, argc = 0;
  const char **env;

  memset(sp, 0, sizeof *sp);
  while (req->argv[argc])
    argc++;
  for (const char *const *e = req->env; e && *e; e++)
    nreq++;
  if (argc + nreq + 4 > AGP_MAX_STRINGS)
    return ac_error_set(err, AC_ETOOBIG, "exec: too many arguments and "
                        "environment entries (at most %u)", AGP_MAX_STRINGS);
  env = calloc(nreq + 4, sizeof *env);
  if (env == NULL)
    return ac_error_set(err, AC_ENOMEM, "exec: out of memory");
  for (size_t i = 0; i < 4; i++)
    env[nenv++] = defaults[i];
  /* a request entry replaces a default or an earlier entry of its name */
  for (size_t r = 0; r < nreq; r++) {
    const char *e = req->env[r];
    size_t klen = (size_t)(strchr(e, '=') - e) + 1, j;
    for (j = 0; j < nenv; j++)
      if (strncmp(env[j], e, klen) == 0)
        break;
    env[j] = e;
    if (j == nenv)
      nenv++;
  }
  sp->flags = flags;
  sp->argc = (uint32_t)argc;
  sp->envc = (uint32_t)nenv;
  sp->nofile = l->nofile;
  sp->fsize = l->fsize_bytes;
  /* CPU backstop: per process, so a command busy on every CPU for its
  ** whole wall time stays below it (as before the live sandbox). */
  if (req->timeout_ns < 1000000000LL * 1000000LL)
    sp->cpu_secs = (uint64_t)(req->timeout_ns / 1000000000LL + 1) *
                   (uint64_t)box->rt->ncpu + 10;
  sbx_args_add(a, req->working_dir ? req->working_dir : "/workspace");
  for (size_t i = 0; i < argc; i++)
    sbx_args_add(a, req->argv[i]);
  for (size_t i = 0; i < nenv; i++) {
    if (strcmp(env[i], "PATH=") == 0) {
      char *p = sbxu_fmt("PATH=%s", default_path);
      if (p == NULL) {
        a->oom = 1;
        break;
      }
      sbx_args_add(a, p);
      free(p);
    } else {
      sbx_args_add(a, env[i]);
    }
  }
  free(env);
  if (a->oom)
    return ac_error_set(err, AC_ENOMEM, "exec: out of memory");
  if (sizeof(struct agp_hdr) + sizeof *sp + a->len > AGP_MAX_MSG)
    return ac_error_set(err, AC_ETOOBIG, "exec: command line and "
                        "environment too large (%zu bytes, at most %u)",
                        a->len, AGP_MAX_MSG - 256);
  return AC_OK;
}

/* Waits until the box's sandbox is up, launching it when needed (mu
** held). */
static enum ac_code ensure_up_locked(struct sbx_live_rt *L,
                                     struct sbx_box *box,
                                     struct ac_error *err) {
  long long until = sbxu_now_ns() + HELLO_WAIT_NS;
  if (box->live.state == SBX_LIVE_UP)
    return AC_OK;
  if (want_launch_locked(L, box) < 0)
    return ac_error_set(err, AC_ENOMEM, "exec: out of memory");
  while (box->live.state == SBX_LIVE_STARTING) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 1;
    pthread_cond_timedwait(&L->cv, &L->mu, &ts);
    if (box->live.state == SBX_LIVE_STARTING && sbxu_now_ns() >= until) {
      if (box->live.pidfd >= 0)
        syscall(SYS_pidfd_send_signal, box->live.pidfd, SIGKILL, NULL, 0);
      snprintf(box->live.why, sizeof box->live.why, "the sandbox's agent "
               "did not answer");
    }
  }
  if (box->live.state != SBX_LIVE_UP)
    return ac_error_set(err, AC_ESYSTEM, "sandbox: cannot start: %s",
                        box->live.why[0] ? box->live.why : "unknown error");
  return AC_OK;
}

enum ac_code sbx_live_task_start(struct sbx_box *box,
                               const struct sbx_exec_request *req,
                               unsigned flags,
                               const struct sbx_task_events *ev, void *ud,
                               struct sbx_task **out, struct ac_error *err) {
  struct sbx_live_rt *L = box->rt->live;
  struct sbx_args a = { 0 };
  struct agp_spawn sp;
  struct sbx_task *t;
  enum ac_code rc;
  int sock, bad = 0;

  *out = NULL;
  rc = check_request(req, err);
  if (rc)
    return rc;
  t = calloc(1, sizeof *t);
  if (t == NULL)
    return ac_error_set(err, AC_ENOMEM, "exec: out of memory");
  pthread_cond_init(&t->cv, NULL);
  t->box = box;
  if (ev)
    t->ev = *ev;
  t->ud = ud;
  t->refs = 2;
  t->timeout_ns = req->timeout_ns;
  t->out.max = t->err.max = req->max_output ? req->max_output
                                            : DEFAULT_MAX_OUTPUT;
  t->out.pool = t->err.pool = req->pool;
  clock_gettime(CLOCK_REALTIME, &t->start);
  t->keep = (flags & AGP_F_KEEP) != 0;
  if (flags & AGP_F_KEEP) {
    /* a background process: no timeout unless asked, output bounded by
    ** its ring, not here */
    t->out.max = t->err.max = SIZE_MAX / 4;
    if (req->timeout_ns <= 0)
      flags |= 1u << 31;         /* internal: no deadline */
  }
  if (req->timeout_ns > 0 || (flags & (1u << 31))) {
    rc = build_spawn(box, req, flags, &a, &sp, err);
    if (rc)
      goto fail;
  }
  pthread_mutex_lock(&box->mu);
  if (box->closing) {
    pthread_mutex_unlock(&box->mu);
    rc = ac_error_set(err, AC_ECLOSED, "exec: the box is closing");
    goto fail;
  }
  box->running++;
  pthread_mutex_unlock(&box->mu);

  pthread_mutex_lock(&L->mu);
  if (req->timeout_ns <= 0 && !(flags & (1u << 31))) {
    /* times out at once, never starts: ended by the event thread */
    t->never = 1;
    t->id = 0;
    t->next = box->live.tasks;
    box->live.tasks = t;
    active_add(box);
    pthread_mutex_unlock(&L->mu);
    wake(L);
    *out = t;
    sbx_args_free(&a);
    return AC_OK;
  }
  rc = ensure_up_locked(L, box, err);
  if (rc) {
    pthread_mutex_unlock(&L->mu);
    pthread_mutex_lock(&box->mu);
    if (--box->running == 0)
      pthread_cond_broadcast(&box->cv);
    pthread_mutex_unlock(&box->mu);
    goto fail;
  }
  t->id = box->live.next_id++;
  t->deadline = (flags & (1u << 31)) ||
                req->timeout_ns > INT64_MAX - sbxu_now_ns()
                ? 0 : sbxu_now_ns() + req->timeout_ns;
  sp.flags &= ~(1u << 31);
  t->next = box->live.tasks;
  box->live.tasks = t;
  if (box->live.percmd_cg)
    sp.flags |= AGP_F_CGROUP;
  /* Our own copy of the socket: the event thread may close the box's
  ** (the sandbox died) while we send; then the send fails, and the task
  ** has already been ended by live_down. */
  sock = fcntl(box->live.sock, F_DUPFD_CLOEXEC, 3);
  pthread_mutex_lock(&box->live.send_mu);
  pthread_mutex_unlock(&L->mu);
  if (sock < 0 || send_msg(sock, AGP_SPAWN, t->id, 0, &sp, sizeof sp, a.p,
                           a.len) < 0)
    bad = 1;
  pthread_mutex_unlock(&box->live.send_mu);
  if (sock >= 0)
    close(sock);
  if (bad) {
    /* the agent does not take requests: the sandbox goes, and with it
    ** this task (ended by the event thread) */
    pthread_mutex_lock(&L->mu);
    if (box->live.pidfd >= 0)
      syscall(SYS_pidfd_send_signal, box->live.pidfd, SIGKILL, NULL, 0);
    pthread_mutex_unlock(&L->mu);
  }
  wake(L);
  sbx_args_free(&a);
  *out = t;
  return AC_OK;
fail:
  sbx_args_free(&a);
  pthread_cond_destroy(&t->cv);
  free(t);
  return rc;
}

enum ac_code sbx_exec_start(struct sbx_box *box,
                            const struct sbx_exec_request *req,
                            const struct sbx_task_events *ev, void *ud,
                            struct sbx_task **out, struct ac_error *err) {
  return sbx_live_task_start(box, req, 0, ev, ud, out, err);
}

void sbx_task_cancel(struct sbx_task *t) {
  struct sbx_live_rt *L;
  if (t == NULL)
    return;
  L = t->box->rt->live;
  pthread_mutex_lock(&L->mu);
  if (!t->finished && !t->never)
    task_kill_locked(t);
  pthread_mutex_unlock(&L->mu);
  wake(L);
}

void sbx_task_release(struct sbx_task *t) {
  struct sbx_live_rt *L;
  struct sbx_box *box;
  if (t == NULL)
    return;
  box = t->box;
  L = box->rt->live;
  pthread_mutex_lock(&L->mu);
  t->released = 1;
  while (t->cb_running && !on_event_thread)
    pthread_cond_wait(&t->cv, &L->mu);
  task_unref_locked(t);
  pthread_mutex_unlock(&L->mu);
  pthread_mutex_lock(&box->mu);
  if (--box->running == 0)
    pthread_cond_broadcast(&box->cv);
  pthread_mutex_unlock(&box->mu);
}
