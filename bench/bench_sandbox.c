/*
** bench_sandbox.c -- the live sandbox's C API, each number against a
** baseline measured in the same run (run as root: session uids, cgroups):
**
**   exec      sbx_exec of `true` vs fork+exec of /bin/true on the host
**   context   a python context run of `x = x + 1` vs that exec
**   lifecycle box create + first exec + destroy vs that exec
**   cancel    sbx_task_cancel of a setsid'd/double-forked tree until no
**             process of it is left (target < 100 ms)
**   idle      200 live boxes: memory per box (sandbox processes' PSS +
**             server growth; target <= 2 MiB) and their CPU use over 2 s
*/
#include "sandbox.h"
#include "sandbox_live.h"
#include "uid_procs.h"

#include <dirent.h>
#include <poll.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SEC 1000000000LL

static struct sbx_runtime *rt;
static char state[64] = "/tmp/agentcube-bench-sbx-XXXXXX";
static uid_t base;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return v[n / 2];
}

static struct sbx_box *box(const char *name, uid_t uid) {
  struct sbx_limits l = { .memory_bytes = 1ULL << 30, .pids = 256,
                          .cpu_millis = 1000, .nofile = 1024 };
  struct sbx_box *b = NULL;
  struct ac_error e;
  char path[256];
  snprintf(path, sizeof path, "%s/%s", state, name);
  if (sbx_box_create(rt, path, uid, &l, &b, &e) != AC_OK)
    fprintf(stderr, "box %s: %s\n", name, e.msg);
  return b;
}

static int exec_true(struct sbx_box *b) {
  const char *argv[] = { "true", NULL };
  struct sbx_exec_request rq = { .argv = argv, .timeout_ns = 60 * SEC };
  struct sbx_exec_result r;
  struct ac_error e;
  if (sbx_exec(b, &rq, &r, &e) != AC_OK)
    return -1;
  sbx_exec_result_free(&r);
  return 0;
}

static double host_true(int n) {
  double *v = calloc((size_t)n, sizeof *v), m;
  for (int i = 0; i < n; i++) {
    double t0 = now_ms();
    pid_t p = fork();
    if (p == 0) {
      execl("/bin/true", "true", (char *)NULL);
      _exit(127);
    }
    waitpid(p, NULL, 0);
    v[i] = now_ms() - t0;
  }
  m = median(v, n);
  free(v);
  return m;
}

static double sbx_true(struct sbx_box *b, int n) {
  double *v = calloc((size_t)n, sizeof *v), m;
  for (int i = 0; i < n; i++) {
    double t0 = now_ms();
    exec_true(b);
    v[i] = now_ms() - t0;
  }
  m = median(v, n);
  free(v);
  return m;
}

/* What uid_procs_each hands on: the pids (up to npids) and the summed
** proportional set size of the processes. */
struct proc_tally {
  pid_t *pids;
  int npids, seen;
  double *pss_kib;
};

static void tally(pid_t pid, const char *status, void *arg) {
  struct proc_tally *t = arg;
  (void)status;
  if (t->pids && t->seen < t->npids)
    t->pids[t->seen] = pid;
  t->seen++;
  if (t->pss_kib) {
    char path[64], line[256];
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
    f = fopen(path, "re");
    if (f) {
      while (fgets(line, sizeof line, f))
        if (strncmp(line, "Pss:", 4) == 0)
          *t->pss_kib += strtod(line + 4, NULL);
      fclose(f);
    }
  }
}

/* Processes of uid (with cmds_only: not bwrap or the agent); their pids
** go to pids (up to npids) when it is not NULL. */
static int uid_procs_pids(uid_t uid, int cmds_only, double *pss_kib,
                          pid_t *pids, int npids) {
  struct proc_tally t = { pids, npids, 0, pss_kib };
  if (pss_kib)
    *pss_kib = 0;
  return uid_procs_each(uid, cmds_only, tally, &t);
}

static int uid_procs_pss(uid_t uid, int cmds_only, double *pss_kib) {
  return uid_procs_pids(uid, cmds_only, pss_kib, NULL, 0);
}

static long self_rss_kib(void) {
  char buf[4096], *p;
  FILE *f = fopen("/proc/self/status", "re");
  size_t n;
  if (f == NULL)
    return 0;
  n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  p = strstr(buf, "VmRSS:");
  return p ? strtol(p + 6, NULL, 10) : 0;
}

/* CPU ticks (utime + stime) of every process of the uids. */
static unsigned long long uid_ticks(uid_t from, int count) {
  DIR *d = opendir("/proc");
  struct dirent *e;
  unsigned long long sum = 0;
  if (d == NULL)
    return 0;
  while ((e = readdir(d)) != NULL) {
    char path[300], buf[2048], *u, *p;
    FILE *f;
    size_t len;
    unsigned long ut, st;
    uid_t uid;
    if (e->d_name[0] < '0' || e->d_name[0] > '9')
      continue;
    snprintf(path, sizeof path, "/proc/%s/status", e->d_name);
    f = fopen(path, "re");
    if (f == NULL)
      continue;
    len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    u = strstr(buf, "\nUid:");
    if (u == NULL)
      continue;
    uid = (uid_t)strtoul(u + 5, NULL, 10);
    if (uid < from || uid >= from + (uid_t)count)
      continue;
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    f = fopen(path, "re");
    if (f == NULL)
      continue;
    len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    p = strrchr(buf, ')');
    if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                    "%lu %lu", &ut, &st) == 2)
      sum += ut + st;
  }
  closedir(d);
  return sum;
}

static void cancel_done(void *ud, const struct sbx_exec_result *r,
                        const struct sbx_ctx_result *c) {
  (void)ud;
  (void)r;
  (void)c;
}

static void on_out(void *ud, enum sbx_stream s, unsigned long long off,
                   const char *d, size_t n) {
  (void)s;
  (void)off;
  if (memmem(d, n, "started", 7))
    *(volatile int *)ud = 1;
}

/* Cancel latency, timed on the tree's own processes: from the cancel to
** every one of them exited (pidfds readable), and to every one reaped
** (gone from /proc: no zombie either). */
static void bench_cancel(struct sbx_box *b, uid_t uid, int n) {
  static const struct sbx_task_events ev = { on_out, NULL, cancel_done };
  const char *argv[] = { "sh", "-c",
    "(setsid sh -c 'sleep 1000 & exec sleep 1001' &); "
    "(sh -c 'sleep 1003 &'); echo started; exec sleep 1004", NULL };
  struct sbx_exec_request rq = { .argv = argv, .timeout_ns = 60 * SEC };
  double *dead = calloc((size_t)n, sizeof *dead);
  double *gone = calloc((size_t)n, sizeof *gone), worst = 0, worst_g = 0;
  int runs = 0;
  for (int i = 0; i < n; i++) {
    volatile int started = 0;
    struct sbx_task *t;
    struct ac_error e;
    pid_t pids[16];
    int fds[16], np = 0, left;
    double t0;
    if (sbx_exec_start(b, &rq, &ev, (void *)&started, &t, &e) != AC_OK)
      break;
    while (!started || (np = uid_procs_pids(uid, 1, NULL, pids, 16)) < 4)
      usleep(1000);
    if (np > 16)
      np = 16;
    for (int k = 0; k < np; k++)
      fds[k] = (int)syscall(SYS_pidfd_open, pids[k], 0);
    t0 = now_ms();
    sbx_task_cancel(t);
    do {
      struct pollfd pf[16];
      left = 0;
      for (int k = 0; k < np; k++)
        if (fds[k] >= 0)
          pf[left++] = (struct pollfd){ .fd = fds[k], .events = POLLIN };
      if (left == 0 || poll(pf, (nfds_t)left, 1000) < 0)
        break;
      left = 0;
      for (int k = 0; k < np; k++) {
        struct pollfd p1 = { .fd = fds[k], .events = POLLIN };
        if (fds[k] >= 0 && poll(&p1, 1, 0) == 1) {
          close(fds[k]);
          fds[k] = -1;
        }
        left += fds[k] >= 0;
      }
    } while (left > 0);
    dead[i] = now_ms() - t0;
    for (;;) {
      char path[32];
      int alive = 0;
      for (int k = 0; k < np; k++) {
        snprintf(path, sizeof path, "/proc/%d", (int)pids[k]);
        alive += access(path, F_OK) == 0;
      }
      if (!alive)
        break;
      usleep(100);
    }
    gone[i] = now_ms() - t0;
    if (dead[i] > worst)
      worst = dead[i];
    if (gone[i] > worst_g)
      worst_g = gone[i];
    sbx_task_release(t);
    runs++;
  }
  if (runs) {
    double md = median(dead, runs), mg = median(gone, runs);
    printf("cancel to every process of the tree killed: median %.2f ms, "
           "worst %.2f ms; to every one reaped: median %.2f ms, worst "
           "%.2f ms (%d runs, target < 100 ms) -> %s\n", md, worst, mg,
           worst_g, runs, worst_g < 100 ? "ok" : "MISSED");
  }
  free(dead);
  free(gone);
}

static void bench_lifecycle(double exec_ms, int n) {
  double *v = calloc((size_t)n, sizeof *v), *c = calloc((size_t)n, sizeof *c);
  double *x = calloc((size_t)n, sizeof *x), *d = calloc((size_t)n, sizeof *d);
  double m;
  int runs = 0;
  for (int i = 0; i < n; i++) {
    char name[32];
    struct sbx_box *b;
    double t0 = now_ms(), t1, t2;
    snprintf(name, sizeof name, "life%d", i);
    b = box(name, base + 10 + (uid_t)i);
    if (b == NULL)
      break;
    t1 = now_ms();
    exec_true(b);
    t2 = now_ms();
    sbx_box_destroy(b);
    v[i] = now_ms() - t0;
    c[i] = t1 - t0;
    x[i] = t2 - t1;
    d[i] = now_ms() - t2;
    runs++;
  }
  if (runs) {
    m = median(v, runs);
    printf("box create + first exec + destroy: median %.2f ms (%d runs; "
           "create %.2f, first exec %.2f, destroy %.2f); ratio to exec: "
           "%.1f\n", m, runs, median(c, runs), median(x, runs),
           median(d, runs), m / exec_ms);
  }
  free(v);
  free(c);
  free(x);
  free(d);
}

static void bench_idle(int n) {
  struct sbx_box **v = calloc((size_t)n, sizeof *v);
  long rss0 = self_rss_kib(), rss1;
  double pss = 0, pss_one;
  unsigned long long t0, t1;
  int made = 0, procs = 0;
  long hz = sysconf(_SC_CLK_TCK);
  for (int i = 0; i < n; i++) {
    char name[32];
    snprintf(name, sizeof name, "idle%d", i);
    v[i] = box(name, base + 100 + (uid_t)i);
    if (v[i] == NULL)
      break;
    made++;
  }
  /* every sandbox up (they launch ahead of the first command) */
  for (int i = 0; i < made; i++)
    exec_true(v[i]);
  sleep(1);
  rss1 = self_rss_kib();
  for (int i = 0; i < made; i++) {
    procs += uid_procs_pss(base + 100 + (uid_t)i, 0, &pss_one);
    pss += pss_one;
  }
  t0 = uid_ticks(base + 100, made);
  sleep(2);
  t1 = uid_ticks(base + 100, made);
  printf("idle: %d live boxes, %d sandbox processes; PSS %.0f KiB per box "
         "+ server growth %.0f KiB per box = %.2f MiB per box (target <= 2)"
         " -> %s\n", made, procs, pss / made,
         (double)(rss1 - rss0) / made,
         (pss + (double)(rss1 - rss0)) / made / 1024.0,
         (pss + (double)(rss1 - rss0)) / made / 1024.0 <= 2 ? "ok"
                                                           : "MISSED");
  printf("idle: CPU of all of them over 2 s: %.2f%% of one CPU\n",
         (double)(t1 - t0) * 100.0 / (double)hz / 2.0);
  for (int i = 0; i < made; i++)
    sbx_box_destroy(v[i]);
  free(v);
}




struct waitctx {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  char value[64];
};

static void ctx_wake(void *ud, const struct sbx_exec_result *r,
                     const struct sbx_ctx_result *c) {
  struct waitctx *w = ud;
  (void)r;
  pthread_mutex_lock(&w->mu);
  snprintf(w->value, sizeof w->value, "%s",
           c && c->value ? c->value : c && c->err_name ? c->err_name : "");
  w->done = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static char last_value[64];

static int ctx_run(struct sbx_box *b, const char *id, const char *code) {
  static const struct sbx_task_events ev = { NULL, NULL, ctx_wake };
  struct waitctx w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
                       0, "" };
  struct sbx_task *t;
  struct ac_error e;
  if (sbx_ctx_run_start(b, id, code, 60 * SEC, &ev, &w, NULL, &t, &e) != AC_OK) {
    fprintf(stderr, "context run: %s\n", e.msg);
    return -1;
  }
  pthread_mutex_lock(&w.mu);
  while (!w.done)
    pthread_cond_wait(&w.cv, &w.mu);
  pthread_mutex_unlock(&w.mu);
  sbx_task_release(t);
  snprintf(last_value, sizeof last_value, "%s", w.value);
  return 0;
}

static void bench_context(struct sbx_box *b, double exec_ms, int n) {
  struct sbx_ctx_info info;
  struct ac_error e;
  double *v = calloc((size_t)n, sizeof *v), m;
  if (sbx_ctx_create(b, "python", NULL, NULL, &info, &e) != AC_OK) {
    printf("context: not available: %s\n", e.msg);
    free(v);
    return;
  }
  ctx_run(b, info.id, "x = 0");
  for (int i = 0; i < n; i++) {
    double t0 = now_ms();
    if (ctx_run(b, info.id, "x = x + 1") < 0)
      break;
    v[i] = now_ms() - t0;
  }
  m = median(v, n);
  ctx_run(b, info.id, "x");
  printf("python context run of x = x + 1: median %.3f ms (x is %s after "
         "%d runs); ratio to the true exec: %.2f (target <= 2) -> %s\n", m,
         last_value, n, m / exec_ms, m / exec_ms <= 2 ? "ok" : "MISSED");
  sbx_ctx_delete(b, info.id, &e);
  free(v);
}

int main(int argc, char **argv) {
  struct ac_error e;
  struct sbx_box *b;
  int n = argc > 1 ? atoi(argv[1]) : 300, idle = argc > 2 ? atoi(argv[2])
                                                          : 200;
  double host, live;
  if (geteuid() != 0) {
    printf("bench_sandbox: skipped (needs root)\n");
    return 0;
  }
  if (mkdtemp(state) == NULL || sbx_runtime_init(&rt, state, &e) != AC_OK) {
    fprintf(stderr, "bench_sandbox: runtime: %s\n", e.msg);
    return 1;
  }
  base = 260000 + (uid_t)(getpid() % 100) * 400;
  b = box("main", base);
  if (b == NULL)
    return 1;
  exec_true(b);
  host = host_true(n);
  live = sbx_true(b, n);
  printf("fork+exec /bin/true on the host: median %.3f ms (%d runs)\n",
         host, n);
  printf("sbx_exec true on the live sandbox: median %.3f ms; ratio %.2f "
         "(HTTP-level target <= 1.5)\n", live, live / host);
  bench_context(b, live, n);
  bench_lifecycle(live, 30);
  bench_cancel(b, base, 20);
  sbx_box_destroy(b);
  if (idle > 0)
    bench_idle(idle);
  sbx_runtime_free(rt);
  rmdir(state);
  return 0;
}
