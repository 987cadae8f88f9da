/*
** bench_server.c -- measurements of the local runtime, each against a
** baseline taken in the same run:
**
**   bench_server lifecycle URL N    session create + delete vs GET /health
**   bench_server exec URL N         execute `true` over HTTP vs the same
**                                   sandbox launched directly (sbx_exec)
**   bench_server runcode URL N      write_file + execute python3 vs a
**                                   direct sandboxed `python3 script.py`
**   bench_server fanout URL S C     S sessions x C commands, concurrently
**   bench_server fileserver PORT DIR  a plain file server (the baseline
**                                   for transfers): GET streams a file with
**                                   sendfile, PUT writes the body to a file
*/
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <microhttpd.h>

#define DP "/v1/namespaces/default/code-interpreters/my-interpreter/" \
           "invocations/"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return v[(int)((n - 1) * p + 0.5)];
}

struct buf { char data[65536]; size_t len; };

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  struct buf *b = ud;
  size_t take = sz * n;
  if (take > sizeof b->data - 1 - b->len)
    take = sizeof b->data - 1 - b->len;
  memcpy(b->data + b->len, p, take);
  b->len += take;
  b->data[b->len] = '\0';
  return sz * n;
}

/* One request on a reused handle; returns the HTTP status (0: failed). */
static long http(CURL *c, const char *method, const char *url,
                 const char *sid, const char *body, struct buf *out) {
  struct curl_slist *h = NULL;
  char hdr[128];
  long status = 0;
  out->len = 0;
  out->data[0] = '\0';
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (body)
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  else
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  h = curl_slist_append(h, "Content-Type: application/json");
  if (sid) {
    snprintf(hdr, sizeof hdr, "x-agentcube-session-id: %s", sid);
    h = curl_slist_append(h, hdr);
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
  curl_slist_free_all(h);
  return status;
}

static int create_named(CURL *c, const char *base, const char *tpl,
                        char sid[37]) {
  char url[512], body[256];
  struct buf b;
  const char *p;
  snprintf(url, sizeof url, "%s/v1/code-interpreter", base);
  snprintf(body, sizeof body, "{\"name\":\"%s\",\"namespace\":\"default\","
           "\"ttl\":3600,\"metadata\":{}}", tpl);
  if (http(c, "POST", url, NULL, body, &b) != 200 ||
      (p = strstr(b.data, "\"sessionId\":\"")) == NULL)
    return -1;
  memcpy(sid, p + 13, 36);
  sid[36] = '\0';
  return 0;
}

static int create(CURL *c, const char *base, char sid[37]) {
  return create_named(c, base, "my-interpreter", sid);
}

static int delete(CURL *c, const char *base, const char *sid) {
  char url[512];
  struct buf b;
  snprintf(url, sizeof url, "%s/v1/code-interpreter/sessions/%s", base, sid);
  return http(c, "DELETE", url, NULL, NULL, &b) == 200 ? 0 : -1;
}

/* Create + delete pairs on template tpl, pausing between pairs so that a
** warm pool can refill as it would between users' requests. */
static int lifecycle_run(CURL *c, const char *base, const char *tpl, int n,
                         int pause_ms, double *t) {
  char sid[37];
  int errors = 0;
  for (int i = 0; i < n; i++) {
    double t0 = now_ms();
    if (create_named(c, base, tpl, sid) != 0 || delete(c, base, sid) != 0)
      errors++;
    t[i] = now_ms() - t0;
    usleep((useconds_t)pause_ms * 1000);
  }
  return errors;
}

static int lifecycle(const char *base, int n) {
  CURL *c = curl_easy_init();
  double *t = calloc((size_t)n, sizeof *t), *h = calloc((size_t)n, sizeof *h);
  char url[512];
  struct buf b;
  int errors = 0;
  double warm, cold;

  snprintf(url, sizeof url, "%s/health", base);
  for (int i = 0; i < n; i++) {
    double t0 = now_ms();
    if (http(c, "GET", url, NULL, NULL, &b) != 200)
      errors++;
    h[i] = now_ms() - t0;
  }
  errors += lifecycle_run(c, base, "my-interpreter", n, 300, t);
  warm = pct(t, n, 0.5);
  printf("create+delete (warm pool, idle 300 ms between pairs, outside "
         "the timer): median %.2f ms, p95 %.2f ms over %d "
         "(errors %d)\n", warm, pct(t, n, 0.95), n, errors);
  errors += lifecycle_run(c, base, "cold", n / 4, 100, t);
  cold = pct(t, n / 4, 0.5);
  printf("create+delete (no pool):   median %.2f ms, p95 %.2f ms over %d\n",
         cold, pct(t, n / 4, 0.95), n / 4);
  printf("baseline GET /health: median %.3f ms; warm create+delete = %.1f "
         "bare round trips; cold/warm %.1fx\n", pct(h, n, 0.5),
         warm / pct(h, n, 0.5), cold / warm);
  printf("target: median < 5 ms -> %s\n", warm < 5 ? "met" : "NOT met");
  {
    /* Sustained: pairs back to back, no pause, so the pool's refill and
    ** the sandboxes' teardown run inside the timer, as a user creating
    ** sessions in a loop pays them; and against the bare round trip
    ** measured the same way, A and B alternated. */
    double ta = 0, tb = 0;
    int pairs = 0;
    char sid[37];
    for (int i = 0; i < n; i++) {
      double t0 = now_ms();
      if (http(c, "GET", url, NULL, NULL, &b) != 200)
        errors++;
      tb += now_ms() - t0;
      t0 = now_ms();
      if (create(c, base, sid) != 0 || delete(c, base, sid) != 0)
        errors++;
      else
        pairs++;
      ta += now_ms() - t0;
    }
    printf("sustained create+delete (no pause, teardown and refill inside "
           "the timer): %.1f pairs/s over %d; bare GET /health %.0f/s; "
           "ratio %.1fx\n", pairs / (ta / 1000), n, n / (tb / 1000),
           (ta / n) / (tb / n));
  }
  free(t);
  free(h);
  curl_easy_cleanup(c);
  return errors ? 1 : 0;
}

/* A box made by this process with the server's own sandbox code: the
** "same sandbox launched directly" baseline. */
static struct sbx_runtime *rt;
static struct sbx_box *direct_box(char *dir) {
  struct sbx_limits lim = {
    .memory_bytes = 1ULL << 30, .disk_bytes = 1ULL << 30,
    .fsize_bytes = 1ULL << 30, .pids = 256, .cpu_millis = 1000,
    .nofile = 1024, .ptys = 64 };
  struct sbx_box *box = NULL;
  struct ac_error err;
  char tmpl[] = "/tmp/agentcube-bench.XXXXXX";
  if (mkdtemp(tmpl) == NULL)
    return NULL;
  if (sbx_runtime_init(&rt, tmpl, &err) != AC_OK) {
    fprintf(stderr, "sandbox: %s\n", err.msg);
    return NULL;
  }
  snprintf(dir, 300, "%s/box", tmpl);
  if (sbx_box_create(rt, dir, 299999, &lim, &box, &err) != AC_OK) {
    fprintf(stderr, "sandbox: %s\n", err.msg);
    return NULL;
  }
  return box;
}

static double direct_run(struct sbx_box *box, const char *const *argv) {
  struct sbx_exec_request rq = { argv, NULL, NULL, 60000000000LL, 0, NULL };
  struct sbx_exec_result res;
  struct ac_error err;
  double t0 = now_ms();
  if (sbx_exec(box, &rq, &res, &err) != AC_OK) {
    fprintf(stderr, "direct: %s\n", err.msg);
    return -1;
  }
  if (res.exit_code != 0)
    fprintf(stderr, "direct: exit %d: %s\n", res.exit_code, res.err);
  sbx_exec_result_free(&res);
  return now_ms() - t0;
}

static int exec_bench(const char *base, int n, int python) {
  CURL *c = curl_easy_init();
  double *viahttp = calloc((size_t)n, sizeof(double));
  double *direct = calloc((size_t)n, sizeof(double));
  char sid[37], url[512], dir[300], body[512];
  struct buf b;
  struct sbx_box *box = direct_box(dir);
  static const char *const t_argv[] = { "true", NULL };
  static const char *const p_argv[] = { "python3", "script.py", NULL };
  int errors = 0;

  if (box == NULL || create(c, base, sid) != 0)
    return 1;
  if (python) {
    /* the direct baseline runs a script that is already there */
    int fd = openat(sbx_box_rootfd(box), "workspace", O_PATH | O_DIRECTORY);
    int f = openat(fd, "script.py", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (f < 0 || write(f, "pass\n", 5) != 5)
      return 1;
    close(f);
    fchownat(fd, "script.py", 299999, 299999, 0);
    close(fd);
  }
  for (int round = 0; round < 2; round++) {   /* round 0 warms up */
    for (int i = 0; i < n; i++) {
      double t0 = now_ms();
      if (python) {
        snprintf(url, sizeof url, "%s" DP "api/files", base);
        if (http(c, "POST", url, sid, "{\"path\":\"script_1.py\","
                 "\"content\":\"cGFzcwo=\",\"mode\":\"0644\"}", &b) != 200)
          errors++;
        snprintf(body, sizeof body, "{\"command\":[\"python3\","
                 "\"script_1.py\"],\"timeout\":\"120s\"}");
      } else {
        snprintf(body, sizeof body, "{\"command\":[\"true\"],"
                 "\"timeout\":\"120s\"}");
      }
      snprintf(url, sizeof url, "%s" DP "api/execute", base);
      if (http(c, "POST", url, sid, body, &b) != 200 ||
          !strstr(b.data, "\"exit_code\":0"))
        errors++;
      viahttp[i] = now_ms() - t0;
      direct[i] = direct_run(box, python ? p_argv : t_argv);
    }
  }
  {
    double h = pct(viahttp, n, 0.5), d = pct(direct, n, 0.5);
    const char *what = python ? "run_code python pass (write + execute)"
                              : "execute true";
    printf("%s over HTTP: median %.2f ms, p95 %.2f ms (errors %d)\n", what,
           h, pct(viahttp, n, 0.95), errors);
    printf("direct sandbox %s: median %.2f ms, p95 %.2f ms\n",
           python ? "python3 script.py" : "true", d, pct(direct, n, 0.95));
    printf("ratio HTTP/direct: %.3f (target <= %s) -> %s\n", h / d,
           python ? "1.2" : "1.3",
           h / d <= (python ? 1.2 : 1.3) ? "met" : "NOT met");
  }
  delete(c, base, sid);
  sbx_box_destroy(box);
  {
    char parent[300];
    snprintf(parent, sizeof parent, "%.*s", (int)(strrchr(dir, '/') - dir),
             dir);
    rmdir(parent);
  }
  sbx_runtime_free(rt);
  curl_easy_cleanup(c);
  free(viahttp);
  free(direct);
  return errors ? 1 : 0;
}

struct fan { const char *base; int cmds, errors; };

static void *fan_worker(void *arg) {
  struct fan *f = arg;
  CURL *c = curl_easy_init();
  char sid[37], url[512];
  struct buf b;
  if (create(c, f->base, sid) != 0) {
    f->errors += f->cmds;
    curl_easy_cleanup(c);
    return NULL;
  }
  snprintf(url, sizeof url, "%s" DP "api/execute", f->base);
  for (int i = 0; i < f->cmds; i++)
    if (http(c, "POST", url, sid, "{\"command\":[\"true\"]}", &b) != 200 ||
        !strstr(b.data, "\"exit_code\":0"))
      f->errors++;
  if (delete(c, f->base, sid) != 0)
    f->errors++;
  curl_easy_cleanup(c);
  return NULL;
}

static int fanout(const char *base, int sessions, int cmds) {
  pthread_t *th = calloc((size_t)sessions, sizeof *th);
  struct fan *f = calloc((size_t)sessions, sizeof *f);
  int errors = 0;
  double t0 = now_ms(), el;
  for (int i = 0; i < sessions; i++) {
    f[i].base = base;
    f[i].cmds = cmds;
    pthread_create(&th[i], NULL, fan_worker, &f[i]);
  }
  for (int i = 0; i < sessions; i++) {
    pthread_join(th[i], NULL);
    errors += f[i].errors;
  }
  el = now_ms() - t0;
  printf("%d sessions x %d commands concurrently: %.2f s, %.0f commands/s,"
         " errors %d (target 0) -> %s\n", sessions, cmds, el / 1e3,
         sessions * cmds / (el / 1e3), errors, errors ? "NOT met" : "met");
  free(th);
  free(f);
  return errors ? 1 : 0;
}

/* {=================================================== plain file server */

struct upload { int fd; };

static enum MHD_Result fs_handler(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *data,
                                  size_t *size, void **con_cls) {
  const char *dir = cls;
  char path[4200];
  struct MHD_Response *r;
  enum MHD_Result ret;
  (void)version;
  snprintf(path, sizeof path, "%s/%s", dir, strrchr(url, '/') + 1);
  if (!strcmp(method, "PUT")) {
    struct upload *u = *con_cls;
    if (u == NULL) {
      u = calloc(1, sizeof *u);
      u->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
      *con_cls = u;
      return MHD_YES;
    }
    if (*size) {
      if (write(u->fd, data, *size) != (ssize_t)*size)
        return MHD_NO;
      *size = 0;
      return MHD_YES;
    }
    close(u->fd);
    free(u);
    *con_cls = NULL;
    r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
  } else {
    struct stat st;
    int fd = open(path, O_RDONLY);
    if (fd < 0 || fstat(fd, &st) != 0)
      return MHD_NO;
    r = MHD_create_response_from_fd64((uint64_t)st.st_size, fd);
  }
  ret = MHD_queue_response(conn, 200, r);
  MHD_destroy_response(r);
  return ret;
}

static int fileserver(int port, const char *dir) {
  sigset_t s;
  int sig;
  struct MHD_Daemon *d = MHD_start_daemon(
    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
    MHD_USE_POLL, (uint16_t)port, NULL, NULL, fs_handler, (void *)dir,
    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(1 << 20),
    MHD_OPTION_END);
  if (d == NULL)
    return 1;
  printf("ready\n");
  fflush(stdout);
  sigemptyset(&s);
  sigaddset(&s, SIGTERM);
  sigaddset(&s, SIGINT);
  pthread_sigmask(SIG_BLOCK, &s, NULL);
  sigwait(&s, &sig);
  MHD_stop_daemon(d);
  return 0;
}

/* }=================================================== */

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: bench_server lifecycle|exec|runcode URL N\n"
                    "       bench_server fanout URL SESSIONS COMMANDS\n"
                    "       bench_server fileserver PORT DIR\n");
    return 2;
  }
  if (!strcmp(argv[1], "fileserver"))
    return fileserver(atoi(argv[2]), argv[3]);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (!strcmp(argv[1], "lifecycle"))
    return lifecycle(argv[2], atoi(argv[3]));
  if (!strcmp(argv[1], "exec"))
    return exec_bench(argv[2], atoi(argv[3]), 0);
  if (!strcmp(argv[1], "runcode"))
    return exec_bench(argv[2], atoi(argv[3]), 1);
  if (!strcmp(argv[1], "fanout") && argc > 4)
    return fanout(argv[2], atoi(argv[3]), atoi(argv[4]));
  return 2;
}
