/*
** sandbox_exec.c -- runs one command in a box (docs/sandbox.md §3).
**
** Per command: a cmd-<n> cgroup, three pipes (stdout, stderr, bwrap's
** info), two memfds (the bwrap options and the seccomp program) and an
** eventfd that box close/destroy signal. Everything the launch
** child needs is computed here, before sbx_spawn clones it; then
** sbx_watch_run supervises bwrap until it and its tree are gone
** (sandbox_watch.c explains the kill and reap order).
*/
#include "sandbox.h"
#include "sandbox_int.h"
#include "sandbox_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_MAX_OUTPUT (16u << 20)

static const char default_path[] =
  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/* Gives the result a NUL-terminated, malloc'd string (never NULL unless
** out of memory). */
static char *obuf_finish(struct sbx_obuf *b, size_t *len) {
  char *p = b->p;
  if (p == NULL) {
    p = malloc(1);
    if (p == NULL)
      return NULL;
  }
  p[b->len] = '\0';
  *len = b->len;
  b->p = NULL;
  return p;
}

/* "\nCommand timed out after N seconds", N formatted like Go's %.0f of
** time.Duration.Seconds() (round half to even, as glibc's printf does). */
static int append_timeout(struct sbx_exec_result *res, long long ns) {
  char msg[96];
  double secs = (double)(ns / 1000000000LL) +
                (double)(ns % 1000000000LL) / 1e9;
  int n = snprintf(msg, sizeof msg, "\nCommand timed out after %.0f seconds",
                   secs);
  char *p = realloc(res->err, res->err_len + (size_t)n + 1);
  if (p == NULL)
    return -1;
  memcpy(p + res->err_len, msg, (size_t)n + 1);
  res->err = p;
  res->err_len += (size_t)n;
  return 0;
}

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

/* bwrap takes its options from the --args memfd but the command only from
** its real command line, after "--" (which also defangs an argv[0] that
** looks like an option). */
static char **build_argv(const struct sbx_exec_request *req) {
  static const char *const head[] = { "bwrap", "--args", "3", "--" };
  size_t n = 0, nh = sizeof head / sizeof head[0];
  char **v;
  while (req->argv[n])
    n++;
  v = malloc((nh + n + 1) * sizeof *v);
  if (v == NULL)
    return NULL;
  for (size_t i = 0; i < nh; i++)
    v[i] = (char *)head[i];
  for (size_t i = 0; i < n; i++)
    v[nh + i] = (char *)req->argv[i];
  v[nh + n] = NULL;
  return v;
}

static enum ac_code build_args(const struct sbx_box *box,
                               const struct sbx_exec_request *req,
                               struct sbx_args *a, struct ac_error *err) {
  char num[16];
  sbx_args_addn(a, box->prefix, box->prefix_len - 1);
  sbx_args_add(a, "--chdir");
  sbx_args_add(a, req->working_dir ? req->working_dir : "/workspace");
  sbx_args_add(a, "--clearenv");
  sbx_args_add(a, "--setenv");
  sbx_args_add(a, "PATH");
  sbx_args_add(a, default_path);
  sbx_args_add(a, "--setenv");
  sbx_args_add(a, "HOME");
  sbx_args_add(a, "/home/sandbox");
  sbx_args_add(a, "--setenv");
  sbx_args_add(a, "TMPDIR");
  sbx_args_add(a, "/tmp");
  sbx_args_add(a, "--setenv");
  sbx_args_add(a, "LANG");
  sbx_args_add(a, "C.UTF-8");
  for (const char *const *e = req->env; e && *e; e++) {
    const char *eq = strchr(*e, '=');
    sbx_args_add(a, "--setenv");
    sbx_args_addn(a, *e, (size_t)(eq - *e));
    sbx_args_add(a, eq + 1);
  }
  snprintf(num, sizeof num, "%d", SBX_FD_SECCOMP);
  sbx_args_add(a, "--seccomp");
  sbx_args_add(a, num);
  snprintf(num, sizeof num, "%d", SBX_FD_INFO);
  sbx_args_add(a, "--info-fd");
  sbx_args_add(a, num);
  if (a->oom)
    return ac_error_set(err, AC_ENOMEM, "exec: out of memory");
  return AC_OK;
}

/* Registers a started command; returns 1 when it must kill itself at once
** (the box is closing, or sbx_box_kill ran since the command began). */
static int runs_add(struct sbx_box *box, struct sbx_run *run,
                    unsigned long gen) {
  int dead;
  pthread_mutex_lock(&box->mu);
  run->next = box->runs;
  box->runs = run;
  dead = box->closing || box->kill_gen != gen;
  pthread_mutex_unlock(&box->mu);
  return dead;
}

static void runs_remove(struct sbx_box *box, struct sbx_run *run) {
  pthread_mutex_lock(&box->mu);
  for (struct sbx_run **pp = &box->runs; *pp; pp = &(*pp)->next) {
    if (*pp == run) {
      *pp = run->next;
      break;
    }
  }
  pthread_mutex_unlock(&box->mu);
}

/* Fills the fixed rlimits of one command. */
static void set_rlimits(const struct sbx_box *box, long long timeout_ns,
                        struct sbx_spawn_plan *plan) {
  const struct sbx_limits *l = &box->limits;
  struct sbx_rlimit *rl = plan->rl;
  int n = 0;
  rl[n].resource = RLIMIT_CORE;
  rl[n].lim.rlim_cur = rl[n].lim.rlim_max = 0;
  n++;
  if (l->fsize_bytes) {
    rl[n].resource = RLIMIT_FSIZE;
    rl[n].lim.rlim_cur = rl[n].lim.rlim_max = l->fsize_bytes;
    n++;
  }
  if (l->nofile) {
    rl[n].resource = RLIMIT_NOFILE;
    rl[n].lim.rlim_cur = rl[n].lim.rlim_max = l->nofile;
    n++;
  }
  /* CPU backstop: per process, so a command busy on every CPU for its
  ** whole wall time stays below it; it only matters if the wall timeout
  ** could not be enforced. */
  if (timeout_ns < 1000000000LL * 1000000LL) {
    rlim_t secs = (rlim_t)(timeout_ns / 1000000000LL + 1) *
                  (rlim_t)box->rt->ncpu + 10;
    rl[n].resource = RLIMIT_CPU;
    rl[n].lim.rlim_cur = secs;
    rl[n].lim.rlim_max = secs + 5;
    n++;
  }
  plan->nrl = n;
}

/* The "timed out before it started" result of timeout_ns <= 0. */
static enum ac_code never_started(const struct sbx_exec_request *req,
                                  struct sbx_exec_result *res,
                                  struct ac_error *err) {
  res->timed_out = 1;
  res->exit_code = 124;
  res->out = calloc(1, 1);
  res->err = calloc(1, 1);
  if (res->out == NULL || res->err == NULL ||
      append_timeout(res, req->timeout_ns) < 0) {
    sbx_exec_result_free(res);
    return ac_error_set(err, AC_ENOMEM, "exec: out of memory");
  }
  res->end = res->start;
  return AC_OK;
}

/* Opens what the child inherits (fds 0..SBX_NFDS-1 of struct sbx_spawn
** plan) and our ends of the pipes. */
static enum ac_code open_fds(const struct sbx_runtime *rt,
                             const struct sbx_box *box,
                             const struct sbx_args *args,
                             struct sbx_spawn_plan *plan,
                             struct sbx_watch *w, struct ac_error *err) {
  int po[2], pe[2], pi[2];
  if (pipe2(po, O_CLOEXEC) < 0)
    return ac_error_errno(err, AC_ESYSTEM, errno, "exec: pipe2");
  w->outfd = po[0];
  plan->fds[SBX_FD_STDOUT] = po[1];
  if (pipe2(pe, O_CLOEXEC) < 0)
    return ac_error_errno(err, AC_ESYSTEM, errno, "exec: pipe2");
  w->errfd = pe[0];
  plan->fds[SBX_FD_STDERR] = pe[1];
  if (pipe2(pi, O_CLOEXEC) < 0)
    return ac_error_errno(err, AC_ESYSTEM, errno, "exec: pipe2");
  w->infofd = pi[0];
  plan->fds[SBX_FD_INFO] = pi[1];
  /* Only our ends are non-blocking; the sandbox's writes block. */
  fcntl(w->outfd, F_SETFL, O_NONBLOCK);
  fcntl(w->errfd, F_SETFL, O_NONBLOCK);
  fcntl(w->infofd, F_SETFL, O_NONBLOCK);
  plan->fds[SBX_FD_STDIN] = open("/dev/null", O_RDONLY | O_CLOEXEC);
  plan->fds[SBX_FD_ARGS] = sbxu_memfd("bwrap-args", args->p, args->len);
  plan->fds[SBX_FD_SECCOMP] = sbxu_memfd("seccomp", rt->seccomp.bpf,
                                         rt->seccomp.len);
  for (int i = 0; i < SBX_FD_FIRST_BORROWED; i++)
    if (plan->fds[i] < 0)
      return ac_error_errno(err, AC_ESYSTEM, errno, "exec: preparing fd "
                            "%d", i);
  /* Borrowed: bwrap binds them and closes its copies. */
  plan->fds[SBX_FD_ETC] = rt->etcfd;
  plan->fds[SBX_FD_WS] = box->fs.wsfd;
  plan->fds[SBX_FD_TMP] = box->fs.tmpfd;
  plan->fds[SBX_FD_HOME] = box->fs.homefd;
  plan->nfds = SBX_NFDS;
  return AC_OK;
}

/* Turns what the watch saw into the result (takes the output buffers). */
static enum ac_code fill_result(struct sbx_watch *w,
                                const struct sbx_exec_request *req,
                                struct sbx_exec_result *res,
                                struct ac_error *err) {
  res->timed_out = w->timed_out;
  res->oom_killed = w->oom_killed;
  if (w->timed_out)
    res->exit_code = 124;
  else if (WIFEXITED(w->status))
    res->exit_code = WEXITSTATUS(w->status);
  else if (WIFSIGNALED(w->status))
    res->exit_code = 128 + WTERMSIG(w->status);
  else
    res->exit_code = 1;
  res->out = obuf_finish(&w->out, &res->out_len);
  res->err = obuf_finish(&w->err, &res->err_len);
  res->out_truncated = w->out.truncated;
  res->err_truncated = w->err.truncated;
  if (res->out == NULL || res->err == NULL ||
      (res->timed_out && append_timeout(res, req->timeout_ns) < 0)) {
    sbx_exec_result_free(res);
    return ac_error_set(err, AC_ENOMEM, "exec: out of memory");
  }
  return AC_OK;
}

enum ac_code sbx_exec(struct sbx_box *box, const struct sbx_exec_request *req,
                      struct sbx_exec_result *res, struct ac_error *err) {
  struct sbx_runtime *rt = box->rt;
  char *envp[] = { NULL };
  char **argv = NULL;
  struct sbx_spawn_plan plan;
  struct sbx_args args = { 0 };
  struct sbx_run run = { -1, NULL };
  struct sbx_watch w;
  struct cg_cmd cmd;
  enum ac_code rc = AC_OK;
  char name[32];
  int have_cmd = 0, registered = 0;
  unsigned long id, gen;

  memset(res, 0, sizeof *res);
  memset(&w, 0, sizeof w);
  memset(&plan, 0, sizeof plan);
  w.box = box;
  w.pid = -1;
  w.pidfd = w.outfd = w.errfd = w.infofd = w.wakefd = w.init_pidfd = -1;
  w.timeout_ns = req->timeout_ns;
  w.out.max = w.err.max = req->max_output ? req->max_output
                                          : DEFAULT_MAX_OUTPUT;
  for (int i = 0; i < SBX_NFDS; i++)
    plan.fds[i] = -1;
  clock_gettime(CLOCK_REALTIME, &res->start);
  rc = check_request(req, err);
  if (rc)
    return rc;
  if (req->timeout_ns <= 0)
    return never_started(req, res, err);
  pthread_mutex_lock(&box->mu);
  if (box->closing) {
    pthread_mutex_unlock(&box->mu);
    return ac_error_set(err, AC_ECLOSED, "exec: the box is closing");
  }
  box->running++;
  id = box->next_cmd++;
  gen = box->kill_gen;
  pthread_mutex_unlock(&box->mu);

  rc = build_args(box, req, &args, err);
  if (rc)
    goto out;
  argv = build_argv(req);
  if (argv == NULL) {
    rc = ac_error_set(err, AC_ENOMEM, "exec: out of memory");
    goto out;
  }
  snprintf(name, sizeof name, "cmd-%lu", id);
  rc = cg_cmd_create(&rt->cg, &box->cg, name, &cmd, err);
  if (rc)
    goto out;
  have_cmd = 1;
  if (rt->cg.n > 0)
    w.cmd = &cmd;
  rc = open_fds(rt, box, &args, &plan, &w, err);
  if (rc)
    goto out;
  w.wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (w.wakefd < 0) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "exec: eventfd");
    goto out;
  }
  plan.path = rt->bwrap;
  plan.argv = argv;
  plan.envp = envp;
  plan.join = cmd.join;
  plan.njoin = cmd.njoin;
  set_rlimits(box, req->timeout_ns, &plan);
  if (rt->root) {
    plan.set_ids = 1;
    plan.uid = box->fs.uid;
    plan.gid = box->fs.gid;
  }
  rc = sbx_spawn(&plan, &w.pid, &w.pidfd, err);
  for (int i = 0; i < SBX_NFDS; i++) {
    if (i < SBX_FD_FIRST_BORROWED && plan.fds[i] >= 0)
      close(plan.fds[i]);            /* the child has its copies */
    plan.fds[i] = -1;
  }
  if (rc)
    goto out;
  run.wake_fd = w.wakefd;
  registered = 1;
  if (runs_add(box, &run, gen)) {
    uint64_t one = 1;
    ssize_t n = write(w.wakefd, &one, sizeof one);
    (void)n;
  }
  sbx_watch_run(&w);
  rc = fill_result(&w, req, res, err);
out:
  if (registered)
    runs_remove(box, &run);
  if (w.wakefd >= 0)
    close(w.wakefd);
  if (w.pidfd >= 0)
    close(w.pidfd);
  if (w.outfd >= 0)
    close(w.outfd);
  if (w.errfd >= 0)
    close(w.errfd);
  if (w.infofd >= 0)
    close(w.infofd);
  if (have_cmd)
    cg_cmd_destroy(&rt->cg, &cmd);
  for (int i = 0; i < SBX_FD_FIRST_BORROWED; i++)
    if (plan.fds[i] >= 0)
      close(plan.fds[i]);
  free(w.out.p);
  free(w.err.p);
  free(argv);
  sbx_args_free(&args);
  clock_gettime(CLOCK_REALTIME, &res->end);
  pthread_mutex_lock(&box->mu);
  box->running--;
  if (box->running == 0)
    pthread_cond_broadcast(&box->cv);
  pthread_mutex_unlock(&box->mu);
  return rc;
}

void sbx_exec_result_free(struct sbx_exec_result *res) {
  if (res == NULL)
    return;
  free(res->out);
  free(res->err);
  res->out = res->err = NULL;
  res->out_len = res->err_len = 0;
}
