/* libagentcube against answers a server should not give and arguments a
** caller should not pass: exit codes in every JSON shape int() takes or
** refuses, execute answers that are not objects, streamed executes that
** fail or never end, session ids with control characters, names that are
** not UTF-8, a DELETE that must not block shutdown, stopping through the
** engine, and the NULL arguments refused before any request. */
#include "agentcube.h"
#include "rec_client.h"
#include "tap.h"

#include <signal.h>
#include <stdlib.h>
#include <time.h>

static struct recorder rec;
static int ready;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static ac_client *mk_budget(size_t max_response) {
  struct ac_client_config cfg;
  ac_client_config_init(&cfg);
  cfg.max_response = max_response;
  return rec_client(&rec, &cfg);
}

static ac_client *mk(void) {
  return mk_budget(0);
}

static ac_session *attach(ac_client *c) {
  return rec_attach(c, "sid-a");
}

static void push_ct(int status, const char *body, const char *ct) {
  rec_push_ct(&rec, status, body, ct, 0);
}

/* Runs `true` against one canned answer; the exit code or -999. */
static enum ac_code exec_answer(ac_session *s, const char *answer,
                                int *exit_code, struct ac_error *err) {
  struct ac_exec_result r;
  enum ac_code rc;
  rec_reset(&rec);
  rec_push(&rec, 200, answer);
  rc = ac_session_exec_line(s, "true", NULL, &r, err);
  *exit_code = rc == AC_OK ? r.exit_code : -999;
  ac_exec_result_free(&r);
  return rc;
}

static void test_exit_codes(void) {
  ac_client *c;
  ac_session *s;
  struct ac_error e;
  int code;
  static const struct {
    const char *answer;
    enum ac_code rc;
    int code;
    const char *msg;
  } cases[] = {
    { "{\"exit_code\": 7}", AC_OK, 7, NULL },
    { "{\"exit_code\": 7.9}", AC_OK, 7, NULL },          /* int() truncates */
    { "{\"exit_code\": -2.5}", AC_OK, -2, NULL },
    { "{\"exit_code\": true}", AC_OK, 1, NULL },
    { "{\"exit_code\": false}", AC_OK, 0, NULL },
    { "{\"exit_code\": \"42\"}", AC_OK, 42, NULL },
    { "{\"exit_code\": \"-3\"}", AC_OK, -3, NULL },
    { "{\"exit_code\": null}", AC_OK, -1, NULL },
    { "{\"stdout\": \"x\"}", AC_OK, -1, NULL },
    { "{\"exit_code\": \"4x\"}", AC_EPROTO, 0, "bad exit_code" },
    { "{\"exit_code\": \"\"}", AC_EPROTO, 0, "bad exit_code" },
    { "{\"exit_code\": \"99999999999\"}", AC_EPROTO, 0, "out of range" },
    { "{\"exit_code\": 4294967296}", AC_EPROTO, 0, "out of range" },
    { "{\"exit_code\": 1e300}", AC_EPROTO, 0, "out of range" },
    { "{\"exit_code\": [1]}", AC_EPROTO, 0, "bad exit_code" },
    { "{\"exit_code\": {}}", AC_EPROTO, 0, "bad exit_code" },
  };

  tcase("exit_code: every JSON shape int() accepts, and the ones it "
        "refuses");
  REQUIRE(ready, "the library and the recording server");
  c = mk();
  s = attach(c);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    enum ac_code rc = exec_answer(s, cases[i].answer, &code, &e);
    if (cases[i].rc == AC_OK) {
      is_int(rc, AC_OK, "%s: accepted", cases[i].answer);
      is_int(code, cases[i].code, "%s: exit %d", cases[i].answer,
             cases[i].code);
    } else {
      is_int(rc, cases[i].rc, "%s: a protocol error", cases[i].answer);
      ok(strstr(e.msg, cases[i].msg) != NULL &&
         strncmp(e.msg, "execute: ", 9) == 0, "says \"%s\": %s",
         cases[i].msg, e.msg);
    }
  }
  ac_session_free(s);
  ac_client_free(c);
}

static void test_execute_answers(void) {
  ac_client *c;
  ac_session *s;
  ac_engine *eng = NULL;
  ac_job *j = NULL;
  struct ac_exec_opts o;
  struct ac_exec_result r;
  struct ac_error e;

  tcase("execute: answers that are not objects, streams that fail or do "
        "not end, the buffered answer to a streamed request, the budget");
  REQUIRE(ready, "the library and the recording server");
  REQUIRE(ac_engine_new(&eng, &e) == AC_OK, "an engine");
  c = mk();
  s = attach(c);
  rec_reset(&rec);
  rec_push(&rec, 200, "[\"stdout\", \"x\"]");
  is_int(ac_session_exec_line(s, "true", NULL, &r, &e), AC_EPROTO,
         "a JSON array: EPROTO");
  ok(strstr(e.msg, "execute: malformed JSON response") != NULL, "says so: %s",
     e.msg);
  ac_exec_result_free(&r);

  memset(&o, 0, sizeof o);
  o.stream = 1;
  rec_reset(&rec);
  push_ct(200, "{\"type\":\"stdout\",\"data\":\"so far\"}\n"
          "{\"type\":\"error\",\"error\":\"the sandbox died\",\"code\":500}\n",
          "application/x-ndjson");
  is_int(ac_start_exec_line(eng, s, "true", &o, NULL, &j, &e), AC_OK,
         "a streamed execute starts");
  ok(j != NULL && ac_job_wait(j, 10000) == 1, "and ends");
  is_int(ac_job_result(j, &e), AC_EHTTP, "an error event: EHTTP");
  is_str(e.msg, "execute: the sandbox died", "with the server's message");
  ac_job_free(j);
  j = NULL;

  rec_reset(&rec);
  push_ct(200, "{\"type\":\"error\"}\n", "application/x-ndjson");
  is_int(ac_start_exec_line(eng, s, "true", &o, NULL, &j, &e), AC_OK,
         "started");
  ok(j != NULL && ac_job_wait(j, 10000) == 1, "and ends");
  is_int(ac_job_result(j, &e), AC_EHTTP, "an error event without message");
  is_str(e.msg, "execute: stream failed", "says the stream failed");
  ac_job_free(j);
  j = NULL;

  rec_reset(&rec);
  push_ct(200, "{\"type\":\"stdout\",\"data\":\"x\"}\n{\"no\":\"type\"}\n",
          "application/x-ndjson");
  is_int(ac_start_exec_line(eng, s, "true", &o, NULL, &j, &e), AC_OK,
         "started");
  ok(j != NULL && ac_job_wait(j, 10000) == 1, "and ends");
  is_int(ac_job_result(j, &e), AC_EPROTO, "an event without a type");
  is_str(e.msg, "execute: event without a type", "says so, naming execute "
         "once");
  ac_job_free(j);
  j = NULL;

  rec_reset(&rec);
  push_ct(200, "{\"type\":\"stdout\",\"data\":\"x\"}\n",
          "application/x-ndjson");
  is_int(ac_start_exec_line(eng, s, "true", &o, NULL, &j, &e), AC_OK,
         "started");
  ok(j != NULL && ac_job_wait(j, 10000) == 1, "and ends");
  is_int(ac_job_result(j, &e), AC_EPROTO, "a stream without its exit event");
  is_str(e.msg, "execute: the stream ended without an exit event",
         "says so");
  ac_job_free(j);
  j = NULL;

  /* a cluster answers a streamed request with the buffered JSON */
  rec_reset(&rec);
  rec_push(&rec, 200, "{\"stdout\":\"all\",\"stderr\":\"\",\"exit_code\":0}");
  is_int(ac_session_exec_line(s, "true", &o, &r, &e), AC_OK,
         "the buffered answer to a streamed request");
  is_str(r.out, "all", "its stdout");
  ac_exec_result_free(&r);
  rec_reset(&rec);
  push_ct(200, "{\"stdout\":\"all\",\"exit_code\":\"x\"}", NULL);
  is_int(ac_session_exec_line(s, "true", &o, &r, &e), AC_EPROTO,
         "and a bad exit code in it");
  ac_exec_result_free(&r);
  ac_engine_free(eng);
  ac_session_free(s);
  ac_client_free(c);

  /* a budget of 4096 bytes: streamed output past it in small events, and
  ** a buffered answer to a streamed request past it */
  c = mk_budget(4096);
  s = attach(c);
  {
    char *body = malloc(600 * 48);
    size_t n = 0;
    for (int i = 0; i < 600; i++)
      n += (size_t)snprintf(body + n, 600 * 48 - n,
                            "{\"type\":\"stdout\",\"data\":\"123456789\"}\n");
    rec_reset(&rec);
    push_ct(200, body, "application/x-ndjson");
    free(body);
  }
  is_int(ac_session_exec_line(s, "yes", &o, &r, &e), AC_ETOOBIG,
         "streamed output over the budget");
  is_str(e.msg, "execute: output larger than 4096 bytes", "says so");
  ac_exec_result_free(&r);
  {
    char *body = malloc(6000);
    snprintf(body, 6000, "{\"stdout\":\"%0*d\",\"exit_code\":0}", 5000, 1);
    rec_reset(&rec);
    push_ct(200, body, NULL);
    free(body);
  }
  is_int(ac_session_exec_line(s, "yes", &o, &r, &e), AC_ETOOBIG,
         "a buffered answer to a streamed request over the budget");
  is_str(e.msg, "execute: response larger than 4096 bytes", "says so");
  ac_exec_result_free(&r);
  ac_session_free(s);
  ac_client_free(c);
}

static void test_exec_arguments(void) {
  ac_client *c;
  ac_session *s;
  ac_engine *eng = NULL;
  ac_job *j = NULL;
  struct ac_exec_opts o;
  struct ac_exec_result r;
  struct ac_error e;
  const char *bad_utf8[] = { "echo", "\xff\xfe" };
  const char *with_null[] = { "echo", NULL };
  struct ac_kv env_bad[] = { { "K", "\xc3" } };
  struct ac_kv env_null[] = { { "K", NULL } };
  char lang[64];

  tcase("commands a caller gets wrong are refused before any request");
  REQUIRE(ready, "the library and the recording server");
  REQUIRE(ac_engine_new(&eng, &e) == AC_OK, "an engine");
  c = mk();
  s = attach(c);
  rec_reset(&rec);

  is_int(ac_session_exec(s, bad_utf8, 2, NULL, &r, &e), AC_EINVAL,
         "an argument that is not UTF-8");
  ok(strstr(e.msg, "command argument 1 is not UTF-8") != NULL,
     "names which: %s", e.msg);
  ac_exec_result_free(&r);
  is_int(ac_session_exec(s, with_null, 2, NULL, &r, &e), AC_EINVAL,
         "a NULL argument (no crash)");
  ok(strstr(e.msg, "command argument 1 is NULL") != NULL, "names which: %s",
     e.msg);
  ac_exec_result_free(&r);
  memset(&o, 0, sizeof o);
  o.env = env_bad;
  o.nenv = 1;
  is_int(ac_session_exec_line(s, "true", &o, &r, &e), AC_EINVAL,
         "an environment value that is not UTF-8");
  ok(strstr(e.msg, "environment entry 0") != NULL, "names which: %s",
     e.msg);
  ac_exec_result_free(&r);
  o.env = env_null;
  is_int(ac_session_exec_line(s, "true", &o, &r, &e), AC_EINVAL,
         "an environment entry without a value");
  ac_exec_result_free(&r);
  memset(&o, 0, sizeof o);
  o.working_dir = "/work\xff";
  is_int(ac_session_exec_line(s, "true", &o, &r, &e), AC_EINVAL,
         "a working_dir that is not UTF-8");
  ok(strstr(e.msg, "working_dir is not UTF-8") != NULL, "says so: %s",
     e.msg);
  ac_exec_result_free(&r);

  is_int(ac_session_exec(NULL, with_null, 1, NULL, &r, &e), AC_EINVAL,
         "exec without a session");
  is_int(ac_session_exec_line(NULL, "true", NULL, &r, &e), AC_EINVAL,
         "exec_line without a session");
  is_int(ac_start_exec(eng, s, NULL, 2, NULL, NULL, &j, &e), AC_EINVAL,
         "argv NULL with arguments");
  is_int(ac_start_exec(eng, NULL, bad_utf8, 2, NULL, NULL, &j, &e),
         AC_EINVAL, "a job without a session");
  ok(j == NULL, "and no job");
  is_int(ac_start_exec_line(eng, s, NULL, NULL, NULL, &j, &e), AC_EINVAL,
         "no command line");

  is_int(ac_session_run_code(s, NULL, "1", 1, NULL, &r, &e), AC_EINVAL,
         "run_code without a language");
  ac_exec_result_free(&r);
  is_int(ac_session_run_code(s, "python", NULL, 3, NULL, &r, &e), AC_EINVAL,
         "run_code: NULL code with a length");
  ac_exec_result_free(&r);
  is_int(ac_session_run_code(NULL, "python", "1", 1, NULL, &r, &e),
         AC_EINVAL, "run_code without a session");
  ac_exec_result_free(&r);
  memset(lang, 'p', sizeof lang - 1);
  lang[sizeof lang - 1] = '\0';
  is_int(ac_session_run_code(s, lang, "1", 1, NULL, &r, &e), AC_EUNSUPPORTED,
         "a 63-letter language is no known language");
  ac_exec_result_free(&r);
  memset(&o, 0, sizeof o);
  o.working_dir = "/tmp";
  is_int(ac_session_run_code(s, "bash", "true", 4, &o, &r, &e), AC_EINVAL,
         "run_code with a working_dir");
  ok(strstr(e.msg, "working_dir is not supported") != NULL, "says so: %s",
     e.msg);
  ac_exec_result_free(&r);
  is_int(rec_count(&rec), 0, "nothing was sent");

  /* the positive control: the same call, right, is sent */
  rec_push(&rec, 200, "{}");
  rec_push(&rec, 200, "{\"stdout\":\"\",\"exit_code\":0}");
  is_int(ac_session_run_code(s, "BASH", "true", 4, NULL, &r, &e), AC_OK,
         "run_code in bash (any case)");
  ac_exec_result_free(&r);
  is_int(rec_count(&rec), 2, "writes the script, then runs it");
  ac_engine_free(eng);
  ac_session_free(s);
  ac_client_free(c);
}

static void test_sessions(void) {
  ac_client *c;
  ac_session *s = NULL;
  ac_engine *eng = NULL;
  ac_job *j = NULL;
  struct ac_session_opts so;
  struct ac_error e;
  long long t0;

  tcase("sessions: ids with control characters, names that are not UTF-8, "
        "NULL arguments, accessors");
  REQUIRE(ready, "the library and the recording server");
  REQUIRE(ac_engine_new(&eng, &e) == AC_OK, "an engine");
  c = mk();
  rec_reset(&rec);
  rec_push(&rec, 200, "{\"sessionId\": \"abc\\r\\nX-Evil: 1\"}");
  is_int(ac_session_create(c, NULL, &s, &e), AC_EPROTO,
         "a session id with CR LF: EPROTO");
  ok(strstr(e.msg, "control characters") != NULL, "says so: %s", e.msg);
  ok(s == NULL, "no session");
  rec_reset(&rec);
  rec_push(&rec, 200, "{\"sessionId\": \"ab\\u0000c\"}");
  is_int(ac_session_create(c, NULL, &s, &e), AC_EPROTO,
         "a session id with a NUL: EPROTO");
  rec_reset(&rec);
  rec_push(&rec, 200, "[\"sessionId\"]");
  is_int(ac_session_create(c, NULL, &s, &e), AC_EPROTO,
         "an answer that is not an object: EPROTO");
  ok(strstr(e.msg, "'sessionId' missing") != NULL, "says so: %s", e.msg);

  memset(&so, 0, sizeof so);
  so.name = "bad\xff";
  rec_reset(&rec);
  is_int(ac_session_create(c, &so, &s, &e), AC_EINVAL,
         "a name that is not UTF-8");
  is_str(e.msg, "name is not valid UTF-8", "says so");
  so.name = NULL;
  so.ns = "\xc0\x80";
  is_int(ac_session_create(c, &so, &s, &e), AC_EINVAL,
         "a namespace that is not UTF-8");
  is_str(e.msg, "namespace is not valid UTF-8", "says so");
  is_int(ac_session_create(NULL, NULL, &s, &e), AC_EINVAL, "no client");
  is_int(ac_start_session_create(eng, NULL, NULL, NULL, &j, &e), AC_EINVAL,
         "no client (job)");
  is_int(ac_start_session_stop(eng, NULL, NULL, &j, &e), AC_EINVAL,
         "stop without a session (job)");
  is_int(ac_session_attach(NULL, "x", NULL, NULL, &s, &e), AC_EINVAL,
         "attach without a client");
  is_int(rec_count(&rec), 0, "nothing was sent");

  /* accessors, and ownership bookkeeping */
  rec_push(&rec, 200, "{\"sessionId\": \"s-9\"}");
  so.ns = "team-a";
  so.name = "interp";
  is_int(ac_session_create(c, &so, &s, &e), AC_OK, "created");
  is_str(ac_session_id(s), "s-9", "its id");
  is_str(ac_session_name(s), "interp", "its name");
  is_str(ac_session_namespace(s), "team-a", "its namespace");
  ok(ac_session_owned(s), "a created session is owned");
  ac_session_detach(s);
  ok(!ac_session_owned(s), "detached: no longer owned");

  /* stop through the engine; a second stop completes without a request */
  rec_reset(&rec);
  rec_push(&rec, 404, "{\"message\": \"gone\"}");
  is_int(ac_start_session_stop(eng, s, NULL, &j, &e), AC_OK, "stop started");
  ok(j != NULL && ac_job_wait(j, 10000) == 1, "and done");
  is_int(ac_job_result(j, &e), AC_OK, "a 404 is stopped already");
  ac_job_free(j);
  j = NULL;
  ok(ac_session_closed(s), "the session is closed");
  is_int(ac_start_session_stop(eng, s, NULL, &j, &e), AC_OK,
         "stopping again starts");
  ok(j != NULL && ac_job_wait(j, 10000) == 1, "and is done at once");
  is_int(ac_job_result(j, &e), AC_OK, "with success");
  is_int(rec_count(&rec), 1, "without a second DELETE");
  ac_job_free(j);
  ac_session_free(s);
  s = NULL;

  /* a DELETE at shutdown never blocks longer than asked, never retried */
  s = attach(c);
  rec_reset(&rec);
  rec_push_mode(&rec, 200, "{}", REC_NORMAL, 3000);
  t0 = now_ms();
  is_int(ac_session_stop_within(s, 200, &e), AC_ETIMEOUT,
         "a DELETE not answered within 200 ms: ETIMEOUT");
  ok(now_ms() - t0 < 2500, "returned before the answer came (%lld ms)",
     now_ms() - t0);
  is_int(rec_count(&rec), 1, "one attempt");
  ok(ac_session_closed(s), "closed anyway");
  is_int(ac_session_stop_within(s, 0, &e), AC_OK,
         "stopping a closed session again: OK, nothing sent");
  ac_session_free(s);
  ac_engine_free(eng);
  ac_client_free(c);
}

static void test_session_listing(void) {
  ac_client *c;
  struct ac_error e;
  char *json = (char *)"x";
  ac_engine *eng = NULL;
  ac_job *j = (ac_job *)&j;

  tcase("session listing: an answer that is not JSON, no client");
  REQUIRE(ready, "the library and the recording server");
  REQUIRE(ac_engine_new(&eng, &e) == AC_OK, "an engine");
  c = mk();
  rec_reset(&rec);
  push_ct(200, "<html>sessions</html>", "text/html");
  is_int(ac_session_list(c, &json, &e), AC_EPROTO, "HTML: EPROTO");
  ok(strstr(e.msg, "list sessions") != NULL, "names the call: %s", e.msg);
  ok(json == NULL, "no answer");
  is_int(ac_session_list(NULL, &json, &e), AC_EINVAL, "no client");
  is_int(ac_start_session_list(eng, NULL, NULL, &j, &e), AC_EINVAL,
         "no client (job)");
  ok(j == NULL, "no job");
  ac_engine_free(eng);
  ac_client_free(c);
}

int main(void) {
  plan(5);
  ready = ac_global_init(NULL) == AC_OK && rec_start(&rec) == 0;
  if (!ready)
    printf("# setup failed: every case fails its precondition\n");
  signal(SIGPIPE, SIG_IGN);
  unsetenv("WORKLOAD_MANAGER_URL");
  unsetenv("ROUTER_URL");
  test_exit_codes();
  test_execute_answers();
  test_exec_arguments();
  test_sessions();
  test_session_listing();
  if (ready)
    rec_stop(&rec);
  return done_testing();
}
