/* The local runtime's extensions (processes, contexts, file operations)
** against the recording server, as a misbehaving or unusual server can
** answer them: event streams of process output (text and base64 chunks,
** lost output, errors after the stream started, events without a type,
** broken base64, events and output over the client's budget), streamed
** context runs with and without a listener, raw stdin, and the argument
** errors refused before anything is sent. */
#include "agentcube.h"
#include "rec_client.h"
#include "tap.h"

#include <jansson.h>
#include <signal.h>
#include <stdlib.h>

static struct recorder rec;
static int ready;

#define NDJSON "application/x-ndjson"

static ac_client *mk(size_t max_response) {
  struct ac_client_config cfg;
  ac_client_config_init(&cfg);
  cfg.exec_grace_ms = 100;
  cfg.max_response = max_response;
  return rec_client(&rec, &cfg);
}

static ac_session *attach(ac_client *c) {
  return rec_attach(c, "sid-x");
}

static void push_ct(int status, const char *body, const char *ct,
                    int delay_ms) {
  rec_push_ct(&rec, status, body, ct, delay_ms);
}

/* The JSON answer of a blocking call, parsed (NULL when none). */
static json_t *call_json(ac_session *s, const struct ac_ext_call *call,
                         enum ac_code *rc, struct ac_error *err) {
  char *text = NULL;
  json_t *js = NULL;
  *rc = ac_session_ext(s, call, &text, err);
  if (text != NULL)
    js = json_loads(text, JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
  free(text);
  return js;
}

static const char *str_of(json_t *o, const char *key) {
  const char *v = json_string_value(json_object_get(o, key));
  return v != NULL ? v : "(absent)";
}

/* What on_output saw, in order: "1:<stdout bytes>|2:<stderr bytes>|". */
struct seen {
  char log[2048];
  int done;
};

static void on_output(void *ud, ac_job *j, enum ac_stream st,
                      const char *data, size_t len) {
  struct seen *s = ud;
  size_t n = strlen(s->log);
  (void)j;
  snprintf(s->log + n, sizeof s->log - n, "%d:%.*s|", (int)st, (int)len,
           data);
}

static void on_done(void *ud, ac_job *j) {
  struct seen *s = ud;
  (void)j;
  s->done++;
}

static void test_process_output(void) {
  ac_client *c;
  ac_session *s;
  struct ac_ext_call call;
  struct ac_error err;
  enum ac_code rc;
  char hdr[128];
  json_t *js;

  tcase("process output: an event stream becomes stdout, stderr, "
        "next_offset and the exit record");
  REQUIRE(ready, "the library and the recording server");
  c = mk(0);
  s = attach(c);
  memset(&call, 0, sizeof call);
  call.op = AC_EXT_PROCESS_OUTPUT;
  call.id = "7";
  call.offset = 5;
  rec_reset(&rec);
  /* "b64" carries bytes that are not UTF-8: 0xff 0x00 'z' */
  push_ct(200,
          "{\"type\":\"stdout\",\"data\":\"hello \",\"offset\":5}\n"
          "{\"type\":\"stderr\",\"b64\":\"/wB6\",\"offset\":11}\n"
          "\n"
          "{\"type\":\"stdout\",\"data\":\"world\",\"offset\":14}\n"
          "{\"type\":\"exit\",\"exit_code\":3,\"state\":\"exited\"}\n",
          NDJSON, 0);
  js = call_json(s, &call, &rc, &err);
  is_int(rc, AC_OK, "the stream is read: %s", rc ? err.msg : "ok");
  is_str(str_of(js, "stdout"), "hello world", "stdout chunks joined");
  {
    json_t *e = json_object_get(js, "stderr");
    /* a JSON answer holds text: the byte that is not UTF-8 is U+FFFD
    ** (on_output has it raw, below), the NUL is kept */
    ok(json_is_string(e) && json_string_length(e) == 5 &&
       memcmp(json_string_value(e), "\xEF\xBF\xBD\0z", 5) == 0,
       "the base64 chunk decoded, its invalid byte replaced");
  }
  is_int(json_integer_value(json_object_get(js, "next_offset")), 19,
         "next_offset: after the last chunk (14 + 5)");
  is_int(json_integer_value(json_object_get(
           json_object_get(js, "exit"), "exit_code")), 3,
         "the exit event is the record's exit");
  json_decref(js);
  ok(strstr(rec_get(&rec, 0)->uri, "/api/processes/7/output?offset=5")
     != NULL, "GET from the offset asked for: %s", rec_get(&rec, 0)->uri);
  is_str(rec_header(rec_get(&rec, 0), "Accept", hdr, sizeof hdr), NDJSON,
         "asks for the event stream");

  /* Lost output: the next read starts after the gap the server reports. */
  rec_reset(&rec);
  push_ct(200,
          "{\"type\":\"dropped\",\"bytes\":95,\"offset\":100}\n"
          "{\"type\":\"stdout\",\"data\":\"x\",\"offset\":100}\n",
          NDJSON, 0);
  js = call_json(s, &call, &rc, &err);
  is_int(rc, AC_OK, "a stream with lost output is read");
  is_int(json_integer_value(json_object_get(js, "next_offset")), 101,
         "next_offset counts from where the kept output starts");
  ok(json_is_null(json_object_get(js, "exit")),
     "no exit event: exit is null (the process still runs)");
  json_decref(js);

  /* No new output yet: an empty stream keeps the offset. */
  rec_reset(&rec);
  push_ct(200, "", NDJSON, 0);
  call.offset = 42;
  js = call_json(s, &call, &rc, &err);
  is_int(rc, AC_OK, "an empty stream is an answer");
  is_int(json_integer_value(json_object_get(js, "next_offset")), 42,
         "an empty stream: the next read starts where this one did");
  is_str(str_of(js, "stdout"), "", "no output");
  json_decref(js);

  /* Text with every kind of UTF-8 sequence, valid and not: the valid
  ** ones kept, each invalid byte one U+FFFD. The events carry the bytes
  ** as base64 (the server sends what is not UTF-8 that way). */
  rec_reset(&rec);
  call.offset = 0;
  /* "é" "€" "😀" (valid 2, 3, 4 bytes), then E0 80 80 (overlong),
  ** ED A0 80 (a surrogate), F4 90 80 80 (past U+10FFFF), C3 28 (a bad
  ** continuation), and E2 82 (cut short at the end) */
  push_ct(200,
          "{\"type\":\"stdout\",\"offset\":0,"
          "\"b64\":\"w6nigqzwn5iA4ICA7aCA9JCAgMMo4oI=\"}\n",
          NDJSON, 0);
  js = call_json(s, &call, &rc, &err);
  is_int(rc, AC_OK, "mixed valid and invalid UTF-8 is read");
  is_str(str_of(js, "stdout"),
         "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
         "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
         "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
         "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
         "\xEF\xBF\xBD("
         "\xEF\xBF\xBD\xEF\xBF\xBD",
         "valid sequences kept, each invalid byte one U+FFFD");
  json_decref(js);

  /* A negative offset is read from the start. */
  rec_reset(&rec);
  push_ct(200, "", NDJSON, 0);
  call.offset = -3;
  js = call_json(s, &call, &rc, &err);
  json_decref(js);
  ok(strstr(rec_get(&rec, 0)->uri, "output?offset=0") != NULL,
     "a negative offset asks from 0: %s", rec_get(&rec, 0)->uri);
  ac_session_free(s);
  ac_client_free(c);
}

static void test_process_output_callbacks(void) {
  ac_client *c;
  ac_session *s;
  ac_engine *e = NULL;
  ac_job *j = NULL;
  struct ac_ext_call call;
  struct ac_error err;
  struct seen seen;
  struct ac_job_callbacks cb = { on_output, NULL, on_done, &seen };

  tcase("process output through the engine: chunks reach on_output in "
        "order, as raw bytes");
  REQUIRE(ready, "the library and the recording server");
  REQUIRE(ac_engine_new(&e, &err) == AC_OK, "an engine");
  c = mk(0);
  s = attach(c);
  memset(&seen, 0, sizeof seen);
  memset(&call, 0, sizeof call);
  call.op = AC_EXT_PROCESS_OUTPUT;
  call.id = "1";
  rec_reset(&rec);
  push_ct(200,
          "{\"type\":\"stdout\",\"data\":\"a\",\"offset\":0}\n"
          "{\"type\":\"stderr\",\"data\":\"b\",\"offset\":1}\n"
          "{\"type\":\"stdout\",\"b64\":\"Yw==\",\"offset\":2}\n"
          "{\"type\":\"stderr\",\"b64\":\"/w==\",\"offset\":3}\n"
          "{\"type\":\"exit\",\"exit_code\":0,\"state\":\"exited\"}\n",
          NDJSON, 0);
  is_int(ac_start_ext(e, s, &call, &cb, &j, &err), AC_OK, "started");
  ok(j != NULL && ac_job_wait(j, 10000) == 1, "done in time");
  is_int(ac_job_result(j, &err), AC_OK, "job OK");
  is_str(seen.log, "1:a|2:b|1:c|2:\xff|", "stdout, stderr, stdout, "
         "stderr: base64 chunks as raw bytes, without their padding");
  is_int(seen.done, 1, "on_done once");
  ok(ac_job_json(j) != NULL &&
     strstr(ac_job_json(j), "\"stdout\":\"ac\"") != NULL,
     "the result also holds the output: %s",
     ac_job_json(j) ? ac_job_json(j) : "(null)");
  ok(ac_job_json(j) != NULL &&
     strstr(ac_job_json(j), "\"stderr\":\"b\\uFFFD\"") != NULL,
     "as text: the byte that is not UTF-8 is U+FFFD there");
  ac_job_free(j);
  ac_engine_free(e);
  ac_session_free(s);
  ac_client_free(c);
}

static void test_broken_streams(void) {
  ac_client *c, *small;
  ac_session *s, *ss;
  struct ac_ext_call call;
  struct ac_error err;
  enum ac_code rc;
  json_t *js;
  char big[9000];

  tcase("process output: a stream the server breaks is an error that "
        "says what broke");
  REQUIRE(ready, "the library and the recording server");
  c = mk(0);
  s = attach(c);
  memset(&call, 0, sizeof call);
  call.op = AC_EXT_PROCESS_OUTPUT;
  call.id = "2";

  rec_reset(&rec);
  push_ct(200,
          "{\"type\":\"stdout\",\"data\":\"part\",\"offset\":0}\n"
          "{\"type\":\"error\",\"error\":\"sandbox went away\","
          "\"code\":500}\n", NDJSON, 0);
  js = call_json(s, &call, &rc, &err);
  is_int(rc, AC_EHTTP, "an error event fails the call");
  ok(strstr(err.msg, "process output") != NULL &&
     strstr(err.msg, "sandbox went away") != NULL,
     "with the operation and the server's message: %s", err.msg);
  ok(js == NULL, "and no answer");
  json_decref(js);

  rec_reset(&rec);
  push_ct(200, "{\"type\":\"error\",\"code\":500}\n", NDJSON, 0);
  js = call_json(s, &call, &rc, &err);
  json_decref(js);
  is_int(rc, AC_EHTTP, "an error event without a message");
  ok(strstr(err.msg, "stream failed") != NULL, "says the stream failed: %s",
     err.msg);

  rec_reset(&rec);
  push_ct(200, "{\"data\":\"x\",\"offset\":0}\n", NDJSON, 0);
  js = call_json(s, &call, &rc, &err);
  json_decref(js);
  is_int(rc, AC_EPROTO, "an event without a type is a protocol error");
  ok(strstr(err.msg, "event without a type") != NULL, "says so: %s",
     err.msg);

  rec_reset(&rec);
  push_ct(200, "{\"type\":\"stdout\",\"b64\":\"@@@@\",\"offset\":0}\n",
          NDJSON, 0);
  js = call_json(s, &call, &rc, &err);
  json_decref(js);
  is_int(rc, AC_EPROTO, "a chunk whose base64 does not decode");
  ok(strstr(err.msg, "bad base64") != NULL, "says so: %s", err.msg);

  rec_reset(&rec);
  push_ct(200, "{\"type\":\"stdout\",\"data\":\"x\"}\nnot json at all\n",
          NDJSON, 0);
  js = call_json(s, &call, &rc, &err);
  json_decref(js);
  is_int(rc, AC_EPROTO, "a line that is not JSON");

  /* An event longer than the client's budget, and output larger than
  ** it in many small events: both refused, neither held in memory. */
  small = mk(4096);
  ss = attach(small);
  memset(big, 'y', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  {
    char *body = malloc(sizeof big + 64);
    snprintf(body, sizeof big + 64,
             "{\"type\":\"stdout\",\"data\":\"%s\"}\n", big);
    rec_reset(&rec);
    push_ct(200, body, NDJSON, 0);
    free(body);
  }
  js = call_json(ss, &call, &rc, &err);
  json_decref(js);
  is_int(rc, AC_ETOOBIG, "one event over the budget");
  ok(strstr(err.msg, "event larger than 4096 bytes") != NULL, "says so: %s",
     err.msg);
  {
    /* 3000 bytes of events of 9 output bytes each: more output than 4096
    ** bytes, every line well under it */
    char *body = malloc(600 * 48);
    size_t n = 0;
    for (int i = 0; i < 600; i++)
      n += (size_t)snprintf(body + n, 600 * 48 - n,
                            "{\"type\":\"stdout\",\"data\":\"123456789\"}\n");
    rec_reset(&rec);
    push_ct(200, body, NDJSON, 0);
    free(body);
  }
  js = call_json(ss, &call, &rc, &err);
  json_decref(js);
  is_int(rc, AC_ETOOBIG, "output over the budget, in small events");
  ok(strstr(err.msg, "process output: output too large") != NULL,
     "says so: %s", err.msg);
  /* a process output answered as plain JSON (no stream), over the
  ** budget */
  {
    char *body = malloc(6000);
    snprintf(body, 6000, "{\"stdout\":\"%0*d\"}", 5000, 7);
    rec_reset(&rec);
    push_ct(200, body, NULL, 0);
    free(body);
  }
  js = call_json(ss, &call, &rc, &err);
  json_decref(js);
  is_int(rc, AC_ETOOBIG, "a plain answer over the budget");
  is_str(err.msg, "process output: response too large", "says so");
  ac_session_free(ss);
  ac_client_free(small);

  /* The positive control of the budget: the same output in a client
  ** with the default budget. */
  {
    char *body = malloc(600 * 48);
    size_t n = 0;
    for (int i = 0; i < 600; i++)
      n += (size_t)snprintf(body + n, 600 * 48 - n,
                            "{\"type\":\"stdout\",\"data\":\"123456789\"}\n");
    rec_reset(&rec);
    push_ct(200, body, NDJSON, 0);
    free(body);
  }
  js = call_json(s, &call, &rc, &err);
  is_int(rc, AC_OK, "the same output under the default budget is read");
  is_int(strlen(str_of(js, "stdout")), 5400, "all 5400 bytes of it");
  json_decref(js);
  ac_session_free(s);
  ac_client_free(c);
}

static void test_context_run(void) {
  ac_client *c;
  ac_session *s;
  ac_engine *e = NULL;
  ac_job *j = NULL;
  struct ac_ext_call call;
  struct ac_error err;
  struct seen seen;
  struct ac_job_callbacks cb = { on_output, NULL, on_done, &seen };
  char hdr[128];
  json_t *js;
  enum ac_code rc;

  tcase("context run: streamed to a listener, the plain answer without "
        "one, and a stream with no result");
  REQUIRE(ready, "the library and the recording server");
  REQUIRE(ac_engine_new(&e, &err) == AC_OK, "an engine");
  c = mk(0);
  s = attach(c);
  memset(&call, 0, sizeof call);
  call.op = AC_EXT_CONTEXT_RUN;
  call.id = "c1";
  call.json = "{\"code\": \"print(1); 1/0\"}";

  memset(&seen, 0, sizeof seen);
  rec_reset(&rec);
  push_ct(200,
          "{\"type\":\"stdout\",\"data\":\"1\\n\"}\n"
          "{\"type\":\"stderr\",\"data\":\"Traceback\"}\n"
          "{\"type\":\"stderr\",\"b64\":\"/w==\"}\n"
          "{\"type\":\"result\",\"value\":null,\"error\":{\"name\":"
          "\"ZeroDivisionError\"},\"state\":\"idle\"}\n", NDJSON, 0);
  is_int(ac_start_ext(e, s, &call, &cb, &j, &err), AC_OK, "started");
  ok(j != NULL && ac_job_wait(j, 10000) == 1, "done in time");
  is_int(ac_job_result(j, &err), AC_OK, "a failed run is an answer");
  is_str(seen.log, "1:1\n|2:Traceback|2:\xff|",
         "output streamed to on_output, raw");
  js = json_loads(ac_job_json(j) ? ac_job_json(j) : "", 0, NULL);
  is_str(str_of(js, "stdout"), "1\n", "the result carries the streamed "
         "stdout");
  is_str(str_of(js, "stderr"), "Traceback\xEF\xBF\xBD", "and stderr, "
         "as text (U+FFFD for the byte that is not UTF-8)");
  ok(json_object_get(js, "type") == NULL, "the event's type is not part "
     "of the result");
  is_str(str_of(json_object_get(js, "error"), "name"), "ZeroDivisionError",
         "the result's own fields kept");
  json_decref(js);
  is_str(rec_header(rec_get(&rec, 0), "Accept", hdr, sizeof hdr), NDJSON,
         "with a listener it asks for the stream");
  ok(strstr(rec_get(&rec, 0)->uri, "/api/contexts/c1/run") != NULL,
     "to the context's run: %s", rec_get(&rec, 0)->uri);
  ac_job_free(j);
  j = NULL;

  /* a result event that brings its own output keeps it */
  rec_reset(&rec);
  push_ct(200,
          "{\"type\":\"stdout\",\"data\":\"streamed\"}\n"
          "{\"event\":\"result\",\"stdout\":\"own\",\"stderr\":\"\"}\n",
          NDJSON, 0);
  is_int(ac_start_ext(e, s, &call, &cb, &j, &err), AC_OK, "started");
  ok(j != NULL && ac_job_wait(j, 10000) == 1, "done in time");
  js = json_loads(ac_job_json(j) ? ac_job_json(j) : "", 0, NULL);
  is_str(str_of(js, "stdout"), "own", "the result's own stdout wins");
  ok(json_object_get(js, "event") == NULL, "\"event\" names the type too, "
     "and is dropped as well");
  json_decref(js);
  ac_job_free(j);
  j = NULL;

  /* the stream ends without its result */
  rec_reset(&rec);
  push_ct(200, "{\"type\":\"stdout\",\"data\":\"1\\n\"}\n", NDJSON, 0);
  is_int(ac_start_ext(e, s, &call, &cb, &j, &err), AC_OK, "started");
  ok(j != NULL && ac_job_wait(j, 10000) == 1, "done in time");
  is_int(ac_job_result(j, &err), AC_EPROTO, "no result event: EPROTO");
  ok(strstr(err.msg, "run in context: the stream ended without a result")
     != NULL, "says so: %s", err.msg);
  ac_job_free(j);

  /* nobody listens: the plain answer, not asked as a stream */
  rec_reset(&rec);
  push_ct(200, "{\"stdout\":\"1\\n\",\"stderr\":\"\",\"value\":\"2\"}", NULL,
          0);
  js = call_json(s, &call, &rc, &err);
  is_int(rc, AC_OK, "blocking run: the plain answer");
  is_str(str_of(js, "value"), "2", "as the server sent it");
  json_decref(js);
  ok(rec_header(rec_get(&rec, 0), "Accept", hdr, sizeof hdr) == NULL ||
     strstr(hdr, "ndjson") == NULL, "no stream asked for");
  ac_engine_free(e);
  ac_session_free(s);
  ac_client_free(c);
}

static void test_stdin_and_ids(void) {
  ac_client *c;
  ac_session *s;
  struct ac_ext_call call;
  struct ac_error err;
  enum ac_code rc;
  char hdr[128];
  json_t *js;

  tcase("process stdin: raw bytes as sent, eof on request; ids cannot "
        "change the URL's shape");
  REQUIRE(ready, "the library and the recording server");
  c = mk(0);
  s = attach(c);
  memset(&call, 0, sizeof call);
  call.op = AC_EXT_PROCESS_STDIN;
  call.id = "4";
  call.data = "a\0b\n";
  call.len = 4;
  call.eof = 1;
  rec_reset(&rec);
  push_ct(200, "{\"written\": 4}", NULL, 0);
  js = call_json(s, &call, &rc, &err);
  is_int(rc, AC_OK, "written");
  is_int(json_integer_value(json_object_get(js, "written")), 4, "answer");
  json_decref(js);
  ok(strstr(rec_get(&rec, 0)->uri, "/api/processes/4/stdin?eof=1") != NULL,
     "eof asked for: %s", rec_get(&rec, 0)->uri);
  is_int(rec_get(&rec, 0)->body_total, 4, "all four bytes sent");
  ok(rec_get(&rec, 0)->body != NULL &&
     memcmp(rec_get(&rec, 0)->body, "a\0b\n", 4) == 0,
     "the bytes as given, NUL included");
  is_str(rec_header(rec_get(&rec, 0), "Content-Type", hdr, sizeof hdr),
         "application/octet-stream", "sent as raw bytes");

  /* without eof and without data: an empty write, stdin left open */
  call.eof = 0;
  call.data = NULL;
  call.len = 0;
  rec_reset(&rec);
  push_ct(409, "{\"error\": \"stdin is closed\", \"code\": 409}", NULL, 0);
  js = call_json(s, &call, &rc, &err);
  json_decref(js);
  is_int(rc, AC_EHTTP, "the server's refusal is an HTTP error");
  is_int(err.http_status, 409, "with its status");
  ok(strstr(err.msg, "stdin is closed") != NULL, "and its message: %s",
     err.msg);
  ok(strchr(rec_get(&rec, 0)->uri, '?') == NULL, "no eof: %s",
     rec_get(&rec, 0)->uri);
  is_int(rec_get(&rec, 0)->body_total, 0, "nothing sent");

  /* an id with a slash or '?' stays one path segment */
  memset(&call, 0, sizeof call);
  call.op = AC_EXT_PROCESS_SIGNAL;
  call.id = "../x?y";
  call.json = NULL;
  rec_reset(&rec);
  push_ct(200, "{\"id\": 1}", NULL, 0);
  js = call_json(s, &call, &rc, &err);
  json_decref(js);
  is_int(rc, AC_OK, "signal sent");
  ok(strstr(rec_get(&rec, 0)->uri, "/api/processes/..%2Fx%3Fy/signal")
     != NULL, "the id is one encoded segment: %s", rec_get(&rec, 0)->uri);
  is_str(rec_get(&rec, 0)->body, "{}", "no body given: an empty object");
  ac_session_free(s);
  ac_client_free(c);
}

static void test_refused_before_sending(void) {
  ac_client *c;
  ac_session *s;
  ac_engine *e = NULL;
  ac_job *j = (ac_job *)&j;
  struct ac_ext_call call;
  struct ac_error err;
  enum ac_code rc;
  json_t *js;

  tcase("extension calls with bad arguments are refused before any "
        "request");
  REQUIRE(ready, "the library and the recording server");
  REQUIRE(ac_engine_new(&e, &err) == AC_OK, "an engine");
  c = mk(0);
  s = attach(c);
  rec_reset(&rec);
  memset(&call, 0, sizeof call);
  call.op = AC_EXT_PROCESS_LIST;
  is_int(ac_start_ext(e, NULL, &call, NULL, &j, &err), AC_EINVAL,
         "no session");
  ok(j == NULL, "and no job");
  is_int(ac_start_ext(e, s, NULL, NULL, &j, &err), AC_EINVAL, "no call");
  ok(strstr(err.msg, "NULL argument") != NULL, "says so: %s", err.msg);
  call.op = (enum ac_ext_op)0;
  is_int(ac_start_ext(e, s, &call, NULL, &j, &err), AC_EINVAL, "op 0");
  call.op = (enum ac_ext_op)(AC_EXT_FS_RENAME + 1);
  is_int(ac_start_ext(e, s, &call, NULL, &j, &err), AC_EINVAL,
         "an op past the last");
  ok(strstr(err.msg, "unknown operation 16") != NULL, "names it: %s",
     err.msg);
  call.op = AC_EXT_PROCESS_GET;
  js = call_json(s, &call, &rc, &err);
  is_int(rc, AC_EINVAL, "a process id is required");
  ok(strstr(err.msg, "an id is required") != NULL, "says so: %s", err.msg);
  call.id = "";
  js = call_json(s, &call, &rc, &err);
  is_int(rc, AC_EINVAL, "an empty id is no id");
  call.op = AC_EXT_FS_STAT;
  call.path = NULL;
  js = call_json(s, &call, &rc, &err);
  is_int(rc, AC_EINVAL, "stat without a path");
  ok(strstr(err.msg, "stat: path is required") != NULL, "says so: %s",
     err.msg);
  call.op = AC_EXT_FS_RENAME;
  call.json = "{\"from\": \"a\", \"to\": \"/etc/passwd\"}";
  js = call_json(s, &call, &rc, &err);
  ok(rc != AC_OK, "a rename to outside the session's files: %s", err.msg);
  ok(strstr(err.msg, "/etc/passwd") != NULL, "names the path");
  is_int(ac_session_ext(NULL, &call, (char **)&js, &err), AC_EINVAL,
         "the blocking call without a session");
  is_int(rec_count(&rec), 0, "nothing was sent");

  /* the positive control: the same rename inside the files is sent */
  call.json = "{\"from\": \"a\", \"to\": \"b\", \"overwrite\": true}";
  push_ct(200, "{\"from\": \"a\", \"to\": \"b\"}", NULL, 0);
  js = call_json(s, &call, &rc, &err);
  is_int(rc, AC_OK, "a rename inside the files");
  json_decref(js);
  is_int(rec_count(&rec), 1, "is sent");
  ok(strstr(rec_get(&rec, 0)->body, "\"overwrite\": true") != NULL,
     "with the body as given: %s", rec_get(&rec, 0)->body);
  ac_engine_free(e);
  ac_session_free(s);
  ac_client_free(c);
}

static void test_bad_answers(void) {
  ac_client *c;
  ac_session *s;
  struct ac_ext_call call;
  struct ac_error err;
  enum ac_code rc;
  json_t *js;

  tcase("extension answers that are not JSON, and a wait the server "
        "never answers");
  REQUIRE(ready, "the library and the recording server");
  c = mk(0);
  s = attach(c);
  memset(&call, 0, sizeof call);
  call.op = AC_EXT_CONTEXT_LIST;
  rec_reset(&rec);
  push_ct(200, "<html>hello</html>", "text/html", 0);
  js = call_json(s, &call, &rc, &err);
  json_decref(js);
  is_int(rc, AC_EPROTO, "a 2xx that is not JSON");
  ok(strstr(err.msg, "list contexts") != NULL, "names the operation: %s",
     err.msg);

  /* a JSON answer that is not an object passes through as the server
  ** sent it (the caller decides) */
  rec_reset(&rec);
  push_ct(200, "[1, 2]", NULL, 0);
  js = call_json(s, &call, &rc, &err);
  is_int(rc, AC_OK, "a JSON array");
  ok(json_is_array(js) && json_array_size(js) == 2, "kept as an array");
  json_decref(js);

  /* a 404 that is JSON but not an object is the router's "not here" */
  rec_reset(&rec);
  push_ct(404, "\"no\"", NULL, 0);
  js = call_json(s, &call, &rc, &err);
  json_decref(js);
  is_int(rc, AC_EUNSUPPORTED, "a 404 whose body is not an object");
  ok(strstr(err.msg, "code contexts are not supported") != NULL,
     "names the feature: %s", err.msg);

  /* a wait with a timeout: the answer may take that long plus the grace,
  ** not longer */
  memset(&call, 0, sizeof call);
  call.op = AC_EXT_PROCESS_WAIT;
  call.id = "5";
  call.json = "{\"timeout\": \"0.2s\"}";
  call.timeout = 0.2;
  rec_reset(&rec);
  push_ct(200, "{\"id\":5,\"state\":\"running\"}", NULL, 5000);
  js = call_json(s, &call, &rc, &err);
  json_decref(js);
  is_int(rc, AC_ETIMEOUT, "a wait that is not answered in time");
  ok(strstr(err.msg, "wait for process") != NULL, "names the operation: %s",
     err.msg);
  /* the positive control: answered within its time */
  rec_reset(&rec);
  push_ct(200, "{\"id\":5,\"state\":\"exited\"}", NULL, 0);
  js = call_json(s, &call, &rc, &err);
  is_int(rc, AC_OK, "answered in time");
  is_str(str_of(js, "state"), "exited", "the record");
  json_decref(js);
  ac_session_free(s);
  ac_client_free(c);
}

int main(void) {
  plan(7);
  ready = ac_global_init(NULL) == AC_OK && rec_start(&rec) == 0;
  if (!ready)
    printf("# setup failed: every case fails its precondition\n");
  signal(SIGPIPE, SIG_IGN);
  unsetenv("WORKLOAD_MANAGER_URL");
  unsetenv("ROUTER_URL");
  test_process_output();
  test_process_output_callbacks();
  test_broken_streams();
  test_context_run();
  test_stdin_and_ids();
  test_refused_before_sending();
  test_bad_answers();
  if (ready)
    rec_stop(&rec);
  return done_testing();
}
