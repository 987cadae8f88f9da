/* libagentcube under faults: no server, connections closed mid-answer,
** 5xx answers and the retry policy, slow answers and timeouts, oversized
** bodies, interrupted transfers, downloads that fail half-way, connection
** reuse, concurrent use and verbose logging. No assertion depends on the
** machine being fast: timeouts are short, delays are several times longer. */
#include "agentcube.h"
#include "recorder.h"
#include "tap.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

static struct recorder rec;
static char tmpdir[] = "/tmp/ac-faults-XXXXXX";
static volatile sig_atomic_t interrupted;

struct logbuf {
  pthread_mutex_t mu;
  char text[8192];
};

static void log_line(void *ud, const char *line) {
  struct logbuf *l = ud;
  size_t n;
  pthread_mutex_lock(&l->mu);
  n = strlen(l->text);
  snprintf(l->text + n, sizeof l->text - n, "%s\n", line);
  pthread_mutex_unlock(&l->mu);
}

static ac_client *mk(const char *base, struct ac_client_config *over) {
  struct ac_client_config cfg;
  struct ac_error e;
  ac_client *c = NULL;
  if (over != NULL) {
    cfg = *over;
  } else {
    ac_client_config_init(&cfg);
    cfg.retry_base_ms = 1;
    cfg.retry_max_ms = 5;
  }
  cfg.workload_manager_url = base;
  cfg.router_url = base;
  cfg.sa_token_path = "";
  if (ac_client_new(&cfg, &c, &e) != AC_OK)
    printf("# client: %s\n", e.msg);
  return c;
}

static ac_session *attach(ac_client *c) {
  ac_session *s = NULL;
  struct ac_error e;
  ac_session_attach(c, "sid", NULL, NULL, &s, &e);
  return s;
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  int n = 0;
  if (d == NULL)
    return -1;
  for (de = readdir(d); de != NULL; de = readdir(d))
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
      n++;
  closedir(d);
  return n;
}

static void test_no_server(void) {
  tcase("no server: a connection error, not a hang");
  char base[64];
  ac_client *c;
  ac_session *s = NULL;
  struct ac_error e;
  struct ac_file_list l;
  long long t0;

  snprintf(base, sizeof base, "http://127.0.0.1:%u", rec_dead_port());
  c = mk(base, NULL);
  t0 = time(NULL);
  is_int(ac_session_create(c, NULL, &s, &e), AC_ECONNECT,
         "no server: create is ECONNECT");
  ok(strstr(e.msg, "create session") != NULL, "message: %s", e.msg);
  is_int(e.http_status, 0, "no HTTP status");
  s = attach(c);
  is_int(ac_session_list_files(s, NULL, &l, &e), AC_ECONNECT,
         "no server: data plane is ECONNECT");
  is_int(ac_session_stop(s, &e), AC_ECONNECT, "no server: stop reports");
  ok(time(NULL) - t0 < 30, "refused connections fail fast");
  ac_session_free(s);
  ac_client_free(c);
}

static void test_cut(void) {
  tcase("a connection cut mid-response is an error");
  ac_client *c = mk(rec.base, NULL);
  ac_session *s = attach(c);
  struct ac_error e;
  struct ac_exec_result r;
  struct ac_file_list l;

  rec_reset(&rec);
  rec_push_mode(&rec, 200, "{\"stdout\":\"partial", REC_CUT, 0);
  is_int(ac_session_exec_line(s, "ls", NULL, &r, &e), AC_EIO,
         "answer cut mid-body: EIO");
  ac_exec_result_free(&r);
  is_int(rec_count(&rec), 1, "cut POST not retried");
  rec_reset(&rec);
  rec_push_mode(&rec, 200, "{\"files\":[", REC_CUT, 0);
  is_int(ac_session_list_files(s, NULL, &l, &e), AC_EIO,
         "cut GET answer: EIO");
  is_int(rec_count(&rec), 1, "a GET that got an answer is not retried");
  rec_reset(&rec);
  rec_push_mode(&rec, 200, "", REC_DROP, 0);
  is_int(ac_session_exec_line(s, "ls", NULL, &r, &e), AC_EIO,
         "connection closed without an answer: EIO");
  ac_exec_result_free(&r);
  is_int(rec_count(&rec), 1, "the POST was sent, so it is not repeated");
  rec_push(&rec, 200, "{\"stdout\":\"ok\",\"exit_code\":0}");
  is_int(ac_session_exec_line(s, "ls", NULL, &r, &e), AC_OK,
         "the next call works on a new connection");
  ac_exec_result_free(&r);
  ac_session_free(s);
  ac_client_free(c);
}

static void test_retries(void) {
  tcase("retries: which failures are retried, and how often");
  ac_client *c = mk(rec.base, NULL);
  ac_session *s = attach(c);
  struct ac_error e;
  struct ac_exec_result r;
  struct ac_file_list l;
  char *data;
  size_t len;

  rec_reset(&rec);
  rec_push(&rec, 502, "{\"error\":\"sandbox unreachable\"}");
  rec_push(&rec, 503, "{\"error\":\"sandbox unreachable\"}");
  rec_push(&rec, 200, "{\"files\":[]}");
  is_int(ac_session_list_files(s, NULL, &l, &e), AC_OK,
         "GET retried through 502 and 503");
  is_int(rec_count(&rec), 3, "three attempts");
  ac_file_list_free(&l);

  rec_reset(&rec);
  rec_push(&rec, 504, "{\"error\":\"sandbox timeout\"}");
  rec_push(&rec, 200, "abc");
  is_int(ac_session_read_file(s, "f", 0, &data, &len, &e), AC_OK,
         "read_file retried through 504");
  is_int(rec_count(&rec), 2, "two attempts");
  free(data);

  rec_reset(&rec);
  rec_push(&rec, 500, "{\"error\":\"internal\"}");
  is_int(ac_session_list_files(s, NULL, &l, &e), AC_EHTTP,
         "GET 500 is not retried");
  is_int(rec_count(&rec), 1, "one attempt for 500");

  rec_reset(&rec);
  for (int i = 0; i < 5; i++)
    rec_push(&rec, 503, "{\"error\":\"busy\"}");
  is_int(ac_session_list_files(s, NULL, &l, &e), AC_EHTTP,
         "retries run out");
  is_int(e.http_status, 503, "last status reported");
  is_int(rec_count(&rec), 4, "1 + max_retries (3) attempts");

  rec_reset(&rec);
  rec_push(&rec, 502, "{\"error\":\"sandbox unreachable\"}");
  is_int(ac_session_exec_line(s, "ls", NULL, &r, &e), AC_EHTTP,
         "POST 502 is not retried");
  ac_exec_result_free(&r);
  is_int(rec_count(&rec), 1, "one attempt for a POST");

  rec_reset(&rec);
  rec_push(&rec, 503, "{\"message\":\"busy\"}");
  rec_push(&rec, 404, "{\"message\":\"Session ID sid not found\"}");
  is_int(ac_session_stop(s, &e), AC_OK,
         "DELETE retried; the retry's 404 counts as deleted");
  is_int(rec_count(&rec), 2, "two DELETE attempts");
  ac_session_free(s);
  ac_client_free(c);

  {
    struct ac_client_config cfg;
    ac_client_config_init(&cfg);
    cfg.max_retries = -1;
    c = mk(rec.base, &cfg);
    s = attach(c);
    rec_reset(&rec);
    rec_push(&rec, 503, "{}");
    is_int(ac_session_list_files(s, NULL, &l, &e), AC_EHTTP,
           "max_retries -1: no retry");
    is_int(rec_count(&rec), 1, "one attempt");
    ac_session_free(s);
    ac_client_free(c);
  }
}

static void test_timeouts(void) {
  tcase("timeouts: connect and request deadlines");
  struct ac_client_config cfg;
  ac_client *c;
  ac_session *s;
  struct ac_error e;
  struct ac_exec_result r;
  struct ac_exec_opts o;
  struct ac_file_list l;
  char dst[400];

  ac_client_config_init(&cfg);
  cfg.request_timeout_ms = 200;
  cfg.exec_grace_ms = 100;
  cfg.retry_base_ms = 1;
  c = mk(rec.base, &cfg);
  s = attach(c);

  rec_reset(&rec);
  rec_push_mode(&rec, 200, "{\"files\":[]}", REC_NORMAL, 2000);
  is_int(ac_session_list_files(s, NULL, &l, &e), AC_ETIMEOUT,
         "slow answer past the request timeout: ETIMEOUT");
  ok(strstr(e.msg, "list files") != NULL, "message: %s", e.msg);
  is_int(rec_count(&rec), 1, "a timeout is never retried");

  memset(&o, 0, sizeof o);
  o.timeout = 0.1;
  o.timeout_is_float = 1;
  rec_reset(&rec);
  rec_push_mode(&rec, 200, "{\"stdout\":\"\",\"exit_code\":0}", REC_NORMAL,
                2000);
  is_int(ac_session_exec_line(s, "sleep 5", &o, &r, &e), AC_ETIMEOUT,
         "execute waits timeout + grace only");
  ac_exec_result_free(&r);

  rec_reset(&rec);
  rec_push_mode(&rec, 200, "data", REC_NORMAL, 2000);
  snprintf(dst, sizeof dst, "%s/slow/file.bin", tmpdir);
  is_int(ac_session_download_file(s, "f", dst, &e), AC_ETIMEOUT,
         "download: idle timeout");
  ok(access(dst, F_OK) != 0, "download timeout: no file");
  ac_session_free(s);
  ac_client_free(c);
}

static void test_download_failures(void) {
  tcase("download failures leave no half-written file");
  ac_client *c = mk(rec.base, NULL);
  ac_session *s = attach(c);
  struct ac_error e;
  char dir[300], dst[400], buf[32] = { 0 };
  FILE *f;

  snprintf(dir, sizeof dir, "%s/dl", tmpdir);
  snprintf(dst, sizeof dst, "%s/result.csv", dir);

  rec_reset(&rec);
  rec_push_mode(&rec, 200, "half of the bytes", REC_CUT, 0);
  is_int(ac_session_download_file(s, "r.csv", dst, &e), AC_EIO,
         "download cut half-way: EIO");
  ok(access(dst, F_OK) != 0, "no destination file");
  is_int(count_entries(dir), 0, "no temporary file left");

  /* An existing file survives a failed download untouched. */
  f = fopen(dst, "w");
  fputs("old", f);
  fclose(f);
  rec_push_mode(&rec, 200, "new bytes", REC_CUT, 0);
  is_int(ac_session_download_file(s, "r.csv", dst, &e), AC_EIO,
         "second cut download");
  f = fopen(dst, "r");
  if (f != NULL) {
    if (fread(buf, 1, sizeof buf - 1, f) == 0)
      buf[0] = '\0';
    fclose(f);
  }
  is_str(buf, "old", "the old file is intact");
  is_int(count_entries(dir), 1, "still only the old file");

  rec_push(&rec, 500, "{\"error\":\"disk\"}");
  is_int(ac_session_download_file(s, "r.csv", dst, &e), AC_EHTTP,
         "download 500");
  is_int(count_entries(dir), 1, "nothing added on an HTTP error");

  /* A parent path that is a file: the directory cannot be made. */
  snprintf(dst, sizeof dst, "%s/result.csv/inner.txt", dir);
  rec_push(&rec, 200, "bytes");
  is_int(ac_session_download_file(s, "r.csv", dst, &e), AC_EIO,
         "unwritable destination: EIO");
  ok(strstr(e.msg, "directory") != NULL, "message: %s", e.msg);
  is_int(count_entries(dir), 1, "nothing left behind");
  ac_session_free(s);
  ac_client_free(c);
}

static void test_limits_and_logs(void) {
  tcase("response size limits and request logs");
  struct ac_client_config cfg;
  struct logbuf lb;
  ac_client *c;
  ac_session *s;
  struct ac_error e;
  struct ac_file_list l;
  char big[3000];

  memset(&lb, 0, sizeof lb);
  pthread_mutex_init(&lb.mu, NULL);
  ac_client_config_init(&cfg);
  cfg.max_response = 1024;
  cfg.verbose = 1;
  cfg.log = log_line;
  cfg.log_ud = &lb;
  cfg.retry_base_ms = 1;
  c = mk(rec.base, &cfg);
  s = attach(c);
  memset(big, ' ', sizeof big);
  memcpy(big, "{\"files\":[]}", 12);
  big[sizeof big - 1] = '\0';
  rec_reset(&rec);
  rec_push(&rec, 200, big);
  is_int(ac_session_list_files(s, NULL, &l, &e), AC_ETOOBIG,
         "body over max_response: ETOOBIG");
  rec_push(&rec, 503, "{}");
  rec_push(&rec, 200, "{\"files\":[]}");
  is_int(ac_session_list_files(s, NULL, &l, &e), AC_OK, "after a retry");
  ac_file_list_free(&l);
  ok(strstr(lb.text, "> GET http://127.0.0.1:") != NULL,
     "verbose: request line logged");
  ok(strstr(lb.text, "< 503 GET ") != NULL, "verbose: status logged");
  ok(strstr(lb.text, "retrying GET ") != NULL, "verbose: retry logged");
  ok(strstr(lb.text, "< 200 GET ") != NULL, "verbose: final status");
  ac_session_free(s);
  ac_client_free(c);
  pthread_mutex_destroy(&lb.mu);
}

static void *raise_later(void *arg) {
  struct timespec ts = { 0, 300 * 1000000L };
  (void)arg;
  nanosleep(&ts, NULL);
  interrupted = 1;
  return NULL;
}

static void test_interrupt(void) {
  tcase("an interrupt cancels a request in flight");
  struct ac_client_config cfg;
  ac_client *c;
  ac_session *s;
  struct ac_error e;
  struct ac_exec_result r;
  pthread_t th;

  ac_client_config_init(&cfg);
  cfg.interrupt = &interrupted;
  c = mk(rec.base, &cfg);
  s = attach(c);
  rec_reset(&rec);
  interrupted = 1;
  is_int(ac_session_exec_line(s, "ls", NULL, &r, &e), AC_EINTERRUPTED,
         "flag already raised: EINTERRUPTED");
  ac_exec_result_free(&r);
  is_int(rec_count(&rec), 0, "nothing sent");
  interrupted = 0;
  rec_push_mode(&rec, 200, "{\"exit_code\":0}", REC_NORMAL, 5000);
  pthread_create(&th, NULL, raise_later, NULL);
  is_int(ac_session_exec_line(s, "sleep 9", NULL, &r, &e), AC_EINTERRUPTED,
         "flag raised during a transfer: EINTERRUPTED");
  ac_exec_result_free(&r);
  pthread_join(th, NULL);
  interrupted = 0;
  ac_session_free(s);
  ac_client_free(c);
}

static void test_reuse(void) {
  tcase("connections are reused across requests");
  ac_client *c = mk(rec.base, NULL);
  ac_session *s = attach(c);
  struct ac_error e;
  struct ac_file_list l;
  int same = 1;

  rec_reset(&rec);
  for (int i = 0; i < 5; i++) {
    rec_push(&rec, 200, "{\"files\":[]}");
    ac_session_list_files(s, NULL, &l, &e);
    ac_file_list_free(&l);
  }
  is_int(rec_count(&rec), 5, "five requests");
  for (int i = 1; i < 5; i++)
    same = same && rec_get(&rec, i)->peer_port == rec_get(&rec, 0)->peer_port;
  ok(same && rec_get(&rec, 0)->peer_port != 0,
     "sequential requests reuse one connection");
  ac_session_free(s);
  ac_client_free(c);
}

struct worker {
  ac_session *s;
  int ok;
};

static void *work(void *arg) {
  struct worker *w = arg;
  for (int i = 0; i < 20; i++) {
    struct ac_exec_result r;
    struct ac_error e;
    if (ac_session_exec_line(w->s, "echo hi", NULL, &r, &e) == AC_OK &&
        strcmp(r.out, "hi\n") == 0)
      w->ok++;
    ac_exec_result_free(&r);
  }
  return NULL;
}

static void test_threads(void) {
  tcase("4 threads x 20 commands on one session");
  ac_client *c = mk(rec.base, NULL);
  ac_session *s = attach(c);
  struct worker w[4];
  pthread_t th[4];
  int total = 0;

  rec_reset(&rec);
  free(rec.fallback.body);
  rec.fallback.body = strdup("{\"stdout\":\"hi\\n\",\"exit_code\":0}");
  rec.fallback.body_len = strlen(rec.fallback.body);
  for (int i = 0; i < 4; i++) {
    w[i].s = s;
    w[i].ok = 0;
    pthread_create(&th[i], NULL, work, &w[i]);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    total += w[i].ok;
  }
  is_int(total, 80, "4 threads x 20 commands on one session");
  is_int(rec_count(&rec), 80, "80 requests recorded");
  ac_session_free(s);
  ac_client_free(c);
}

int main(void) {
  plan(9);
  if (ac_global_init(NULL) != AC_OK || mkdtemp(tmpdir) == NULL ||
      rec_start(&rec) != 0) {
    printf("Bail out! setup failed\n");
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  unsetenv("WORKLOAD_MANAGER_URL");
  unsetenv("ROUTER_URL");
  test_no_server();
  test_cut();
  test_retries();
  test_timeouts();
  test_download_failures();
  test_limits_and_logs();
  test_interrupt();
  test_reuse();
  test_threads();
  rec_stop(&rec);
  {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
      printf("# cleanup failed\n");
  }
  ac_global_cleanup();
  return done_testing();
}
