/* The job engine of libagentcube against the recording server: one event
** descriptor, callbacks on the polling thread, concurrency without
** threads, cancel and interrupt at each stage, streamed execute and its
** buffered fallback, the extensions' "not supported", and the client's
** limits (redirects, JSON budget, numbers out of range, download deadline
** and size limit, file errors naming path and session). */
#include "agentcube.h"
#include "rec_client.h"
#include "tap.h"

#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct recorder rec;
static char tmpdir[] = "/tmp/ac-engine-XXXXXX";
/* Whether the setup every case needs succeeded. */
static int ready;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static ac_client *mk(struct ac_client_config *over) {
  return rec_client(&rec, over);
}

static ac_session *attach(ac_client *c) {
  return rec_attach(c, "sid-1");
}

static void push_ct(int status, const char *body, const char *ct,
                    int delay_ms) {
  rec_push_ct(&rec, status, body, ct, delay_ms);
}

/* What the callbacks saw. */
struct seen {
  pthread_t thread;
  int wrong_thread;
  int done;
  char out[4096];
  size_t out_len;
  char err[4096];
  size_t err_len;
  int chunks;
  long long prog_done, prog_total;
  int progress_calls;
};

static void on_output(void *ud, ac_job *j, enum ac_stream st,
                      const char *data, size_t len) {
  struct seen *s = ud;
  char *buf = st == AC_STREAM_STDOUT ? s->out : s->err;
  size_t *n = st == AC_STREAM_STDOUT ? &s->out_len : &s->err_len;
  (void)j;
  if (!pthread_equal(pthread_self(), s->thread))
    s->wrong_thread = 1;
  if (*n + len < sizeof s->out) {
    memcpy(buf + *n, data, len);
    *n += len;
    buf[*n] = '\0';
  }
  s->chunks++;
}

static void on_progress(void *ud, ac_job *j, long long done,
                        long long total) {
  struct seen *s = ud;
  (void)j;
  if (!pthread_equal(pthread_self(), s->thread))
    s->wrong_thread = 1;
  s->prog_done = done;
  s->prog_total = total;
  s->progress_calls++;
}

static void on_done(void *ud, ac_job *j) {
  struct seen *s = ud;
  (void)j;
  if (!pthread_equal(pthread_self(), s->thread))
    s->wrong_thread = 1;
  s->done++;
}

static struct ac_job_callbacks cbs_for(struct seen *s) {
  struct ac_job_callbacks cb = { on_output, on_progress, on_done, s };
  memset(s, 0, sizeof *s);
  s->thread = pthread_self();
  return cb;
}

static int fd_readable(int fd, int ms) {
  struct pollfd p = { fd, POLLIN, 0 };
  return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

static void test_event_fd(void) {
  ac_client *c;
  ac_session *s;
  ac_engine *e = NULL;
  ac_job *j = NULL;
  struct ac_error err;
  struct seen seen;
  struct ac_job_callbacks cb = cbs_for(&seen);
  struct ac_exec_result r;
  long long t0, polls = 0;

  tcase("one event descriptor drives jobs: callbacks on the polling "
        "thread, concurrency without threads");
  REQUIRE(ready, "the library, a temporary directory and the recording "
          "server");
  c = mk(NULL);
  s = attach(c);
  is_int(ac_engine_new(&e, &err), AC_OK, "engine");
  rec_reset(&rec);
  push_ct(200, "{\"stdout\":\"hi\\n\",\"stderr\":\"\",\"exit_code\":0}",
          NULL, 300);
  t0 = now_ms();
  is_int(ac_start_exec_line(e, s, "echo hi", NULL, &cb, &j, &err), AC_OK,
         "start returns at once");
  ok(now_ms() - t0 < 100, "starting does not wait for the answer");
  ok(!ac_job_done(j), "the job runs");
  /* A frame loop: poll the one descriptor with a 16 ms budget. */
  while (!ac_job_done(j) && now_ms() - t0 < 5000) {
    if (fd_readable(ac_engine_fd(e), 16))
      ac_engine_poll(e, 0);
    polls++;
  }
  ok(ac_job_done(j), "the job completed through the event fd (%lld frames)",
     polls);
  ok(polls > 5, "the loop kept running while the command ran");
  is_int(seen.done, 1, "on_done once");
  ok(!seen.wrong_thread, "callbacks on the polling thread");
  is_int(ac_job_result(j, &err), AC_OK, "result OK");
  ac_job_take_exec(j, &r);
  is_str(r.out, "hi\n", "stdout");
  is_int(r.exit_code, 0, "exit code");
  ac_exec_result_free(&r);
  ac_job_free(j);

  /* Five jobs at once, each answered after 400 ms: together, not one
  ** after the other. */
  {
    ac_job *js[5];
    int n = 0;
    rec_reset(&rec);
    for (int i = 0; i < 5; i++)
      push_ct(200, "{\"stdout\":\"\",\"exit_code\":0}", NULL, 400);
    t0 = now_ms();
    for (int i = 0; i < 5; i++)
      ac_start_exec_line(e, s, "true", NULL, NULL, &js[i], &err);
    for (int i = 0; i < 5; i++)
      ac_job_wait(js[i], 10000);
    for (int i = 0; i < 5; i++) {
      n += ac_job_result(js[i], NULL) == AC_OK;
      ac_job_free(js[i]);
    }
    is_int(n, 5, "five concurrent jobs succeed");
    ok(now_ms() - t0 < 1500, "concurrently: %lld ms for 5 x 400 ms",
       now_ms() - t0);
  }
  ac_engine_free(e);
  ac_session_free(s);
  ac_client_free(c);
}

struct cancel_at_end {
  int cancel;
  int last_seen;
};

/* Cancels the job (when asked) on the event that reports every byte. */
static void cancel_at_end_cb(void *ud, ac_job *j, long long done,
                             long long total) {
  struct cancel_at_end *ce = ud;
  if (total > 0 && done == total) {
    ce->last_seen = 1;
    if (ce->cancel)
      ac_job_cancel(j);
  }
}

static void test_cancel(void) {
  ac_client *c;
  ac_session *s;
  ac_engine *e = NULL;
  ac_job *j = NULL;
  struct ac_error err;
  struct seen seen;
  struct ac_job_callbacks cb = cbs_for(&seen);
  long long t0;
  char path[256];
  FILE *f;

  tcase("cancel before send, while running, during upload and download");
  REQUIRE(ready, "the library, a temporary directory and the recording "
          "server");
  c = mk(NULL);
  s = attach(c);
  ac_engine_new(&e, &err);

  /* Before anything was sent. */
  rec_reset(&rec);
  push_ct(200, "{\"exit_code\":0}", NULL, 0);
  ac_start_exec_line(e, s, "true", NULL, &cb, &j, &err);
  ac_job_cancel(j);
  ok(ac_job_done(j), "cancel before send: done at once");
  is_int(ac_job_result(j, &err), AC_ECANCELED, "ECANCELED");
  ac_engine_poll(e, 0);
  is_int(seen.done, 1, "on_done delivered at the next poll");
  ac_job_free(j);

  /* While the command runs (the answer takes 3 s). */
  rec_reset(&rec);
  push_ct(200, "{\"exit_code\":0}", NULL, 3000);
  ac_start_exec_line(e, s, "sleep 3", NULL, NULL, &j, &err);
  ac_job_wait(j, 200);
  ok(!ac_job_done(j), "still running after 200 ms");
  t0 = now_ms();
  ac_job_cancel(j);
  ok(now_ms() - t0 < 100, "cancel while running returns within 100 ms");
  is_int(ac_job_result(j, &err), AC_ECANCELED, "ECANCELED while running");
  ac_job_free(j);

  /* During an upload (the server answers after 2 s). */
  snprintf(path, sizeof path, "%s/up.bin", tmpdir);
  f = fopen(path, "w");
  for (int i = 0; i < 1024 * 1024 && f != NULL; i++)
    fputc(i & 0xff, f);
  if (f != NULL)
    fclose(f);
  rec_reset(&rec);
  push_ct(200, "{}", NULL, 2000);
  is_int(ac_start_upload_file(e, s, path, "up.bin", NULL, &j, &err), AC_OK,
         "upload started");
  ac_job_wait(j, 150);
  t0 = now_ms();
  ac_job_cancel(j);
  ok(now_ms() - t0 < 100, "cancel during upload within 100 ms");
  is_int(ac_job_result(j, NULL), AC_ECANCELED, "upload ECANCELED");
  ac_job_free(j);

  /* During a download: nothing is left behind. */
  {
    char dst[256];
    rec_reset(&rec);
    push_ct(200, "x", "application/octet-stream", 2000);
    snprintf(dst, sizeof dst, "%s/down/file.bin", tmpdir);
    ac_start_download_file(e, s, "file.bin", dst, NULL, &j, &err);
    ac_job_wait(j, 150);
    ac_job_cancel(j);
    is_int(ac_job_result(j, NULL), AC_ECANCELED, "download ECANCELED");
    ac_job_free(j);
    ok(access(dst, F_OK) != 0, "cancelled download: no file");
  }

  /* On its last progress event, when every byte has arrived: the file
  ** has not taken its name yet, and does not (a whole small answer
  ** arrives and ends within one round, before any event is delivered). */
  for (int cancel = 0; cancel <= 1; cancel++) {
    char dst[256];
    struct ac_job_callbacks last = { 0 };
    struct cancel_at_end ce = { cancel, 0 };
    last.on_progress = cancel_at_end_cb;
    last.ud = &ce;
    rec_reset(&rec);
    push_ct(200, "twelve bytes", "application/octet-stream", 0);
    snprintf(dst, sizeof dst, "%s/down/last%d.bin", tmpdir, cancel);
    ac_start_download_file(e, s, "file.bin", dst, &last, &j, &err);
    ac_job_wait(j, 5000);
    ok(ce.last_seen, "%s: the last progress event (12 of 12) delivered",
       cancel ? "cancel" : "control");
    is_int(ac_job_result(j, NULL), cancel ? AC_ECANCELED : AC_OK,
           cancel ? "cancelled on it: ECANCELED" : "not cancelled: OK");
    ac_job_free(j);
    ok(cancel ? access(dst, F_OK) != 0 : access(dst, F_OK) == 0,
       cancel ? "no file" : "the file is there");
  }
  ac_engine_free(e);
  ac_session_free(s);
  ac_client_free(c);
}

static volatile sig_atomic_t flag;
static ac_engine *alarm_engine;

static void on_alarm(int sig) {
  (void)sig;
  if (alarm_engine != NULL)
    ac_engine_interrupt(alarm_engine);
  else
    flag = 1;
}

static void arm_ms(long ms) {
  struct itimerval it;
  memset(&it, 0, sizeof it);
  it.it_value.tv_sec = ms / 1000;
  it.it_value.tv_usec = (ms % 1000) * 1000;
  setitimer(ITIMER_REAL, &it, NULL);
}

static void test_interrupt(void) {
  struct ac_client_config cfg;
  struct sigaction sa;
  struct ac_exec_result r;
  struct ac_error err;
  ac_client *c;
  ac_session *s;
  ac_engine *e = NULL;
  ac_job *j = NULL;
  long long t0;

  tcase("the host's interrupt flag stops blocking calls and jobs");
  REQUIRE(ready, "the library, a temporary directory and the recording "
          "server");
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);

  /* A blocking call and the host's flag (set from a signal handler). */
  ac_client_config_init(&cfg);
  cfg.interrupt = &flag;
  c = mk(&cfg);
  s = attach(c);
  rec_reset(&rec);
  push_ct(200, "{\"exit_code\":0}", NULL, 3000);
  flag = 0;
  alarm_engine = NULL;
  arm_ms(200);
  t0 = now_ms();
  is_int(ac_session_exec_line(s, "sleep 30", NULL, &r, &err),
         AC_EINTERRUPTED, "blocking execute: EINTERRUPTED");
  ok(now_ms() - t0 < 200 + 150, "within 100 ms of the flag (%lld ms)",
     now_ms() - t0);
  ac_exec_result_free(&r);
  /* With the flag set, nothing starts. */
  is_int(ac_session_exec_line(s, "true", NULL, &r, &err), AC_EINTERRUPTED,
         "flag still set: EINTERRUPTED at once");
  ac_exec_result_free(&r);
  flag = 0;
  rec_reset(&rec);
  push_ct(200, "{\"exit_code\":0}", NULL, 0);
  is_int(ac_session_exec_line(s, "true", NULL, &r, &err), AC_OK,
         "flag cleared: the client works again");
  ac_exec_result_free(&r);
  ac_session_free(s);
  ac_client_free(c);

  /* ac_engine_interrupt from the handler, during a wait. */
  c = mk(NULL);
  s = attach(c);
  ac_engine_new(&e, &err);
  rec_reset(&rec);
  push_ct(200, "{\"exit_code\":0}", NULL, 3000);
  ac_start_exec_line(e, s, "sleep 30", NULL, NULL, &j, &err);
  alarm_engine = e;
  arm_ms(200);
  t0 = now_ms();
  ok(ac_job_wait(j, -1), "the wait returns");
  is_int(ac_job_result(j, &err), AC_EINTERRUPTED, "job EINTERRUPTED");
  ok(now_ms() - t0 < 200 + 150, "within 100 ms of the interrupt (%lld ms)",
     now_ms() - t0);
  ac_job_free(j);
  alarm_engine = NULL;
  /* The engine is usable afterwards. */
  rec_reset(&rec);
  push_ct(200, "{\"exit_code\":0}", NULL, 0);
  ac_start_exec_line(e, s, "true", NULL, NULL, &j, &err);
  ac_job_wait(j, 5000);
  is_int(ac_job_result(j, &err), AC_OK, "the next job runs normally");
  ac_job_free(j);
  ac_engine_free(e);
  ac_session_free(s);
  ac_client_free(c);
}

static void test_streaming(void) {
  ac_client *c;
  ac_session *s;
  ac_engine *e = NULL;
  ac_job *j = NULL;
  struct ac_error err;
  struct seen seen;
  struct ac_job_callbacks cb = cbs_for(&seen);
  struct ac_exec_opts o;
  struct ac_exec_result r;
  char hv[256];

  tcase("streamed execute in order, its buffered fallback, a cut stream");
  REQUIRE(ready, "the library, a temporary directory and the recording "
          "server");
  c = mk(NULL);
  s = attach(c);
  ac_engine_new(&e, &err);
  memset(&o, 0, sizeof o);
  o.stream = 1;

  /* A server that streams. */
  rec_reset(&rec);
  push_ct(200,
          "{\"type\":\"stdout\",\"data\":\"one\\n\",\"offset\":0}\n"
          "{\"type\":\"stderr\",\"data\":\"warn\\n\",\"offset\":4}\n"
          "{\"type\":\"stdout\",\"b64\":\"/3R3bwo=\",\"offset\":9}\n"
          "{\"type\":\"exit\",\"exit_code\":3,\"duration\":0.5}\n",
          "application/x-ndjson", 0);
  ac_start_exec_line(e, s, "prog", &o, &cb, &j, &err);
  ac_job_wait(j, 5000);
  is_int(ac_job_result(j, &err), AC_OK, "streamed execute OK");
  is_int(seen.chunks, 3, "three chunks delivered");
  is_int(seen.out_len, 9, "stdout bytes (one invalid UTF-8 byte)");
  ok(memcmp(seen.out, "one\n\xfftwo\n", 9) == 0, "stdout in order, b64 "
     "decoded");
  is_str(seen.err, "warn\n", "stderr");
  ac_job_take_exec(j, &r);
  is_int(r.exit_code, 3, "exit code from the exit event");
  is_int(r.out_len, 9, "result holds the whole stdout");
  ac_exec_result_free(&r);
  ac_job_free(j);
  is_str(rec_header(rec_get(&rec, 0), "Accept", hv, sizeof hv),
         "application/x-ndjson", "streamed request asks for NDJSON");

  /* A cluster answers with the buffered JSON: callbacks fire once. */
  cb = cbs_for(&seen);
  rec_reset(&rec);
  push_ct(200, "{\"stdout\":\"all\\n\",\"stderr\":\"e\",\"exit_code\":0}",
          NULL, 0);
  ac_start_exec_line(e, s, "prog", &o, &cb, &j, &err);
  ac_job_wait(j, 5000);
  is_int(ac_job_result(j, &err), AC_OK, "buffered fallback OK");
  is_int(seen.chunks, 2, "one chunk per stream at the end");
  is_str(seen.out, "all\n", "fallback stdout");
  is_str(seen.err, "e", "fallback stderr");
  ac_job_free(j);

  /* A stream without its exit event is an error, not a success. */
  rec_reset(&rec);
  push_ct(200, "{\"type\":\"stdout\",\"data\":\"x\",\"offset\":0}\n",
          "application/x-ndjson", 0);
  ac_start_exec_line(e, s, "prog", &o, NULL, &j, &err);
  ac_job_wait(j, 5000);
  is_int(ac_job_result(j, &err), AC_EPROTO, "a stream cut before exit: "
         "EPROTO");
  ac_job_free(j);

  /* Without stream, the request is the SDK's: no Accept header. */
  rec_reset(&rec);
  push_ct(200, "{\"exit_code\":0}", NULL, 0);
  ac_session_exec_line(s, "true", NULL, &r, &err);
  ac_exec_result_free(&r);
  ok(rec_header(rec_get(&rec, 0), "Accept", hv, sizeof hv) == NULL ||
     strcmp(hv, "*/*") == 0, "plain execute sends no NDJSON Accept");
  ac_engine_free(e);
  ac_session_free(s);
  ac_client_free(c);
}

/* run_code's execute step carries the caller's env: the job copies it,
** since the step runs after the start function returned. */
static void test_run_code_env(void) {
  ac_client *c;
  ac_session *s;
  ac_engine *e = NULL;
  ac_job *j = NULL;
  struct ac_error err;
  struct ac_exec_opts o;
  struct ac_kv env[1];
  char key[8], val[8];

  tcase("run_code's execute step carries the caller's env");
  REQUIRE(ready, "the library, a temporary directory and the recording "
          "server");
  c = mk(NULL);
  s = attach(c);
  ac_engine_new(&e, &err);
  strcpy(key, "V");
  strcpy(val, "42");
  env[0].key = key;
  env[0].value = val;
  memset(&o, 0, sizeof o);
  o.env = env;
  o.nenv = 1;
  rec_reset(&rec);
  push_ct(200, "{}", NULL, 0);
  push_ct(200, "{\"stdout\":\"42\\n\",\"exit_code\":0}", NULL, 0);
  is_int(ac_start_run_code(e, s, "python", "print(1)", 8, &o, NULL, &j,
                           &err), AC_OK, "run_code started");
  strcpy(key, "X");                   /* the caller's memory changes */
  strcpy(val, "0");
  ac_job_wait(j, 5000);
  is_int(ac_job_result(j, &err), AC_OK, "run_code OK");
  ok(rec_get(&rec, 1)->body != NULL &&
     strstr(rec_get(&rec, 1)->body, "\"env\": {\"V\": \"42\"}") != NULL,
     "execute body keeps the env: %s",
     rec_get(&rec, 1)->body ? rec_get(&rec, 1)->body : "(none)");
  is_int(rec_count(&rec), 2, "write + execute only (not the local runtime)");
  ac_job_free(j);
  ac_engine_free(e);
  ac_session_free(s);
  ac_client_free(c);
}

static void test_extensions(void) {
  ac_client *c;
  ac_session *s;
  struct ac_ext_call call;
  struct ac_error err;
  char *json = NULL;

  tcase("extensions: requests on the wire, and not supported");
  REQUIRE(ready, "the library, a temporary directory and the recording "
          "server");
  c = mk(NULL);
  s = attach(c);
  memset(&call, 0, sizeof call);
  call.op = AC_EXT_PROCESS_SPAWN;
  call.json = "{\"command\": [\"sleep\", \"5\"]}";
  rec_reset(&rec);
  push_ct(201, "{\"id\": 3, \"pid\": 17, \"state\": \"running\"}", NULL, 0);
  is_int(ac_session_ext(s, &call, &json, &err), AC_OK, "spawn OK");
  ok(json != NULL && strstr(json, "\"pid\":17") != NULL, "record: %s",
     json ? json : "(null)");
  free(json);
  is_str(rec_get(&rec, 0)->method, "POST", "spawn is a POST");
  ok(strstr(rec_get(&rec, 0)->uri, "/invocations/api/processes") != NULL,
     "to api/processes: %s", rec_get(&rec, 0)->uri);

  /* A cluster: the router's plain 404. */
  rec_reset(&rec);
  push_ct(404, "404 page not found", "text/plain", 0);
  is_int(ac_session_ext(s, &call, &json, &err), AC_EUNSUPPORTED,
         "plain 404: EUNSUPPORTED");
  ok(strstr(err.msg, "background processes") != NULL &&
     strstr(err.msg, rec.base) != NULL, "names feature and server: %s",
     err.msg);
  /* The local runtime's own 404 (JSON) is a real not-found. */
  memset(&call, 0, sizeof call);
  call.op = AC_EXT_FS_STAT;
  call.path = "no/such file";
  rec_reset(&rec);
  push_ct(404, "{\"error\": \"not found\", \"code\": 404}", NULL, 0);
  is_int(ac_session_ext(s, &call, &json, &err), AC_ENOTFOUND,
         "JSON 404: ENOTFOUND");
  ok(strstr(rec_get(&rec, 0)->uri, "api/fs/stat?path=no%2Fsuch+file")
     != NULL, "stat's path is form-encoded: %s", rec_get(&rec, 0)->uri);
  free(json);
  ac_session_free(s);
  ac_client_free(c);
}

static void test_limits(void) {
  struct ac_client_config cfg;
  ac_client *c;
  ac_session *s;
  struct ac_exec_result r;
  struct ac_file_list l;
  struct ac_error err;
  char dst[256];
  struct rec_reply rp;

  tcase("client limits: redirects, JSON budget, numbers, download "
        "deadline and size, file errors");
  REQUIRE(ready, "the library, a temporary directory and the recording "
          "server");
  c = mk(NULL);
  s = attach(c);
  /* Redirects are answers, never followed. */
  memset(&rp, 0, sizeof rp);
  rp.status = 307;
  rp.body = "";
  rp.hname = "Location";
  rp.hvalue = "http://127.0.0.1:1/steal";
  rec_reset(&rec);
  rec_push_reply(&rec, &rp);
  is_int(ac_session_exec_line(s, "true", NULL, &r, &err), AC_EHTTP,
         "307: EHTTP");
  is_int(err.http_status, 307, "status 307");
  is_int(rec_count(&rec), 1, "not followed");
  ac_exec_result_free(&r);

  /* Numbers out of range. */
  rec_reset(&rec);
  push_ct(200, "{\"exit_code\": 4294967296}", NULL, 0);
  is_int(ac_session_exec_line(s, "true", NULL, &r, &err), AC_EPROTO,
         "exit_code 4294967296: EPROTO (not 0)");
  ac_exec_result_free(&r);
  rec_reset(&rec);
  push_ct(200, "{\"exit_code\": 1e300}", NULL, 0);
  is_int(ac_session_exec_line(s, "true", NULL, &r, &err), AC_EPROTO,
         "exit_code 1e300: EPROTO");
  ac_exec_result_free(&r);
  rec_reset(&rec);
  push_ct(200, "{\"exit_code\": 3.0}", NULL, 0);
  is_int(ac_session_exec_line(s, "true", NULL, &r, &err), AC_OK,
         "control: exit_code 3.0 is fine");
  is_int(r.exit_code, 3, "exit code 3");
  ac_exec_result_free(&r);

  /* A JSON value bomb within the body cap. */
  {
    size_t n = 1200000, len = 10 + n * 3;
    char *bomb = malloc(len + 16);
    size_t o = 0;
    o += (size_t)sprintf(bomb, "{\"files\":[");
    for (size_t i = 0; i < n; i++) {
      memcpy(bomb + o, i ? ",{}" : "{}", i ? 3 : 2);
      o += i ? 3 : 2;
    }
    memcpy(bomb + o, "]}", 3);
    rec_reset(&rec);
    push_ct(200, bomb, NULL, 0);
    free(bomb);
    is_int(ac_session_list_files(s, ".", &l, &err), AC_ETOOBIG,
           "1.2 M JSON values: ETOOBIG");
    ac_file_list_free(&l);
    rec_reset(&rec);
    push_ct(200, "{\"files\":[{},{}]}", NULL, 0);
    is_int(ac_session_list_files(s, ".", &l, &err), AC_OK,
           "control: a small listing parses");
    is_int(l.count, 2, "two entries");
    ac_file_list_free(&l);
  }

  /* File errors name the remote path and the session. */
  snprintf(dst, sizeof dst, "%s/x.txt", tmpdir);
  rec_reset(&rec);
  push_ct(404, "{\"error\": \"File not found\"}", NULL, 0);
  is_int(ac_session_download_file(s, "/workspace/x.txt", dst, &err),
         AC_EHTTP, "download 404");
  ok(strstr(err.msg, "/workspace/x.txt") && strstr(err.msg, "sid-1"),
     "message names path and session: %s", err.msg);
  ac_session_free(s);
  ac_client_free(c);

  /* A download size limit, and a deadline. */
  ac_client_config_init(&cfg);
  cfg.max_download = 1000;
  cfg.download_timeout_ms = 400;
  c = mk(&cfg);
  s = attach(c);
  memset(&rp, 0, sizeof rp);
  rp.status = 200;
  rp.mode = REC_STREAM;
  rp.stream_size = 5000;
  rp.content_type = "application/octet-stream";
  rec_reset(&rec);
  rec_push_reply(&rec, &rp);
  snprintf(dst, sizeof dst, "%s/big.bin", tmpdir);
  is_int(ac_session_download_file(s, "big.bin", dst, &err), AC_ETOOBIG,
         "past max_download: ETOOBIG");
  ok(access(dst, F_OK) != 0, "nothing left behind");
  rp.stream_size = 900;
  rec_reset(&rec);
  rec_push_reply(&rec, &rp);
  is_int(ac_session_download_file(s, "big.bin", dst, &err), AC_OK,
         "control: under the limit");
  rec_reset(&rec);
  push_ct(200, "late", "application/octet-stream", 2000);
  {
    long long t0 = now_ms();
    is_int(ac_session_download_file(s, "slow.bin", dst, &err), AC_ETIMEOUT,
           "past the download deadline: ETIMEOUT");
    ok(now_ms() - t0 < 1500, "the deadline holds (%lld ms)", now_ms() - t0);
  }
  ac_session_free(s);
  ac_client_free(c);
}

static void test_progress(void) {
  ac_client *c;
  ac_session *s;
  ac_engine *e = NULL;
  ac_job *j = NULL;
  struct ac_error err;
  struct seen seen;
  struct ac_job_callbacks cb = cbs_for(&seen);
  char path[256];
  FILE *f;

  tcase("upload progress reaches its total on the polling thread");
  REQUIRE(ready, "the library, a temporary directory and the recording "
          "server");
  c = mk(NULL);
  s = attach(c);
  snprintf(path, sizeof path, "%s/p.bin", tmpdir);
  f = fopen(path, "w");
  for (int i = 0; i < 3 * 1024 * 1024 && f != NULL; i++)
    fputc('a', f);
  if (f != NULL)
    fclose(f);
  ac_engine_new(&e, &err);
  rec_reset(&rec);
  push_ct(200, "{}", NULL, 0);
  ac_start_upload_file(e, s, path, "p.bin", &cb, &j, &err);
  ac_job_wait(j, 10000);
  is_int(ac_job_result(j, &err), AC_OK, "upload OK");
  ok(seen.progress_calls > 0, "on_progress called (%d)",
     seen.progress_calls);
  ok(seen.prog_total > 3 * 1024 * 1024 && seen.prog_done == seen.prog_total,
     "last progress: %lld of %lld", seen.prog_done, seen.prog_total);
  ok(!seen.wrong_thread, "progress on the polling thread");
  ac_job_free(j);
  ac_engine_free(e);
  ac_session_free(s);
  ac_client_free(c);
}

int main(void) {
  plan(8);
  ready = ac_global_init(NULL) == AC_OK && mkdtemp(tmpdir) != NULL &&
          rec_start(&rec) == 0;
  if (!ready)
    printf("# setup failed: every case fails its precondition\n");
  signal(SIGPIPE, SIG_IGN);
  unsetenv("WORKLOAD_MANAGER_URL");
  unsetenv("ROUTER_URL");
  test_event_fd();
  test_cancel();
  test_interrupt();
  test_streaming();
  test_run_code_env();
  test_extensions();
  test_limits();
  test_progress();
  if (ready)
    rec_stop(&rec);
  {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
      printf("# cleanup failed\n");
  }
  return done_testing();
}
