/*
** ext.c -- the local runtime's extensions (docs/extensions.md) as jobs:
** background processes, stateful contexts and file operations. Each is
** one data-plane request whose JSON answer becomes the job's result.
**
** A real AgentCube cluster answers these paths with its router's plain
** "404 page not found"; the local runtime's own 404s (an unknown process,
** a missing file) are JSON error bodies. So a 404 without a JSON body is
** AC_EUNSUPPORTED naming the feature and the server, and one with a JSON
** body is AC_ENOTFOUND.
*/
#include "events.h"
#include "job.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A context run that times out is interrupted; an interpreter that
** ignores the interrupt is killed 2 s later, and only then does the server
** answer (the wire contract). The client waits that long and more, on top
** of the usual grace, so that it gets the answer ("timed out, the
** interpreter killed") instead of giving up just before it. */
#define CONTEXT_RESTART_MS 5000

struct ext_desc {
  const char *op;                     /* message prefix */
  const char *feature;                /* for "not supported" */
  const char *method;
  const char *path;                   /* "%s" is the id */
  int streams;                        /* NDJSON answer possible */
};

static const struct ext_desc descs[] = {
  [AC_EXT_PROCESS_SPAWN]  = { "spawn process", "background processes",
                              "POST", "api/processes", 0 },
  [AC_EXT_PROCESS_LIST]   = { "list processes", "background processes",
                              "GET", "api/processes", 0 },
  [AC_EXT_PROCESS_GET]    = { "get process", "background processes",
                              "GET", "api/processes/%s", 0 },
  [AC_EXT_PROCESS_SIGNAL] = { "signal process", "background processes",
                              "POST", "api/processes/%s/signal", 0 },
  [AC_EXT_PROCESS_WAIT]   = { "wait for process", "background processes",
                              "POST", "api/processes/%s/wait", 0 },
  [AC_EXT_PROCESS_OUTPUT] = { "process output", "background processes",
                              "GET", "api/processes/%s/output", 1 },
  [AC_EXT_PROCESS_STDIN]  = { "process stdin", "background processes",
                              "POST", "api/processes/%s/stdin", 0 },
  [AC_EXT_CONTEXT_CREATE] = { "create context", "code contexts",
                              "POST", "api/contexts", 0 },
  [AC_EXT_CONTEXT_LIST]   = { "list contexts", "code contexts",
                              "GET", "api/contexts", 0 },
  [AC_EXT_CONTEXT_RUN]    = { "run in context", "code contexts",
                              "POST", "api/contexts/%s/run", 1 },
  [AC_EXT_CONTEXT_DELETE] = { "delete context", "code contexts",
                              "POST", "api/contexts/%s/delete", 0 },
  [AC_EXT_FS_REMOVE]      = { "remove", "file operations",
                              "POST", "api/fs/remove", 0 },
  [AC_EXT_FS_MKDIR]       = { "mkdir", "file operations",
                              "POST", "api/fs/mkdir", 0 },
  [AC_EXT_FS_STAT]        = { "stat", "file operations",
                              "GET", "api/fs/stat", 0 },
  [AC_EXT_FS_RENAME]      = { "rename", "file operations",
                              "POST", "api/fs/rename", 0 },
};

struct ext_state {
  const struct ext_desc *d;
  int events;                         /* -1 undecided, 1 NDJSON, 0 JSON */
  struct ac_buf line;
  struct ac_buf out, err;             /* process output, collected */
  long long next_offset;
  json_t *last;                       /* exit/result event */
  char ev_msg[200];
  int ev_failed;
};

static void ext_cleanup(ac_job *j) {
  struct ext_state *st = j->st;
  if (st == NULL)
    return;
  ac_buf_free(&st->line);
  ac_buf_free(&st->out);
  ac_buf_free(&st->err);
  json_decref(st->last);
  free(st);
  j->st = NULL;
}

static enum ac_code on_event(void *ud, const char *text, size_t len,
                             struct ac_error *err) {
  ac_job *j = ud;
  struct ext_state *st = j->st;
  struct ac_event ev;
  enum ac_code rc = ac_event_parse(j->op, text, len, &ev, err);
  json_t *v;
  if (rc != AC_OK)
    return rc;
  if (ev.stream != 0) {
    struct ac_buf *acc = ev.stream == AC_STREAM_STDOUT ? &st->out : &st->err;
    v = json_object_get(ev.json, "offset");
    if (json_is_integer(v))
      st->next_offset = json_integer_value(v) + (long long)ev.len;
    if (ev.len > 0 && (ac_buf_add(acc, ev.data, ev.len) != AC_OK ||
                       ac_job_queue_output(j, ev.stream, ev.data,
                                           ev.len) != AC_OK))
      rc = ac_error_set(err, AC_ETOOBIG, "%s: output too large", j->op);
  } else if (!strcmp(ev.type, "exit") || !strcmp(ev.type, "result")) {
    json_decref(st->last);
    st->last = json_incref(ev.json);
  } else if (!strcmp(ev.type, "error")) {
    v = json_object_get(ev.json, "error");
    snprintf(st->ev_msg, sizeof st->ev_msg, "%s",
             json_is_string(v) ? json_string_value(v) : "stream failed");
    st->ev_failed = 1;
  } else if (!strcmp(ev.type, "dropped")) {
    v = json_object_get(ev.json, "offset");
    if (json_is_integer(v))
      st->next_offset = json_integer_value(v);
  }
  ac_event_free(&ev);
  return rc;
}

/* Whether the answer is an event stream, from its content type. */
static void decide_events(ac_job *j, struct ext_state *st) {
  char *ct = NULL;
  if (st->events >= 0)
    return;
  curl_easy_getinfo(j->easy, CURLINFO_CONTENT_TYPE, &ct);
  st->events = ct != NULL && strstr(ct, "ndjson") != NULL;
}

static enum ac_code ext_sink(void *ud, const char *data, size_t len,
                             struct ac_error *err) {
  ac_job *j = ud;
  struct ext_state *st = j->st;
  decide_events(j, st);
  if (!st->events) {
    if (ac_buf_add(&j->resp.body, data, len) != AC_OK)
      return ac_error_set(err, AC_ETOOBIG, "response too large");
    return AC_OK;
  }
  return ac_event_lines(&st->line, data, len, on_event, j, err);
}

/* Length of the valid UTF-8 sequence at s (1 to 4 bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t left) {
  unsigned char lo = 0x80, hi = 0xBF;
  size_t n;
  if (s[0] < 0x80)
    return 1;
  if (s[0] >= 0xC2 && s[0] <= 0xDF) {
    n = 2;
  } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
    n = 3;
    lo = s[0] == 0xE0 ? 0xA0 : lo;    /* no overlong forms */
    hi = s[0] == 0xED ? 0x9F : hi;    /* no surrogates */
  } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
    n = 4;
    lo = s[0] == 0xF0 ? 0x90 : lo;
    hi = s[0] == 0xF4 ? 0x8F : hi;    /* nothing past U+10FFFF */
  } else {
    return 0;
  }
  if (left < n || s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < n; i++)
    if (s[i] < 0x80 || s[i] > 0xBF)
      return 0;
  return n;
}

/* Collected output as a JSON string. A JSON answer holds text, so bytes
** that are not UTF-8 become U+FFFD there, as in the server's buffered
** answers; on_output saw them raw. NULL: out of memory. */
static json_t *text_of(const struct ac_buf *b) {
  const char *p = b->data ? b->data : "";
  struct ac_buf fixed;
  json_t *v = json_stringn(p, b->len);
  size_t i = 0;
  if (v != NULL)
    return v;                         /* valid already: the usual case */
  ac_buf_init(&fixed, 0);
  while (i < b->len) {
    size_t n = utf8_seq((const unsigned char *)p + i, b->len - i);
    if ((n > 0 ? ac_buf_add(&fixed, p + i, n)
               : ac_buf_add(&fixed, "\xEF\xBF\xBD", 3)) != AC_OK) {
      ac_buf_free(&fixed);
      return NULL;
    }
    i += n > 0 ? n : 1;
  }
  v = json_stringn(fixed.data ? fixed.data : "", fixed.len);
  ac_buf_free(&fixed);
  return v;
}

/* The result of a streamed answer as one JSON object: a context run's
** result event as is; process output as {"stdout", "stderr",
** "next_offset", "exit"}. */
static enum ac_code events_result(ac_job *j, struct ext_state *st,
                                  struct ac_error *err) {
  json_t *o;
  if (st->ev_failed)
    return ac_error_set(err, AC_EHTTP, "%s: %s", j->op, st->ev_msg);
  if (st->d == &descs[AC_EXT_CONTEXT_RUN]) {
    if (st->last == NULL)
      return ac_error_set(err, AC_EPROTO, "%s: the stream ended without a "
                          "result", j->op);
    json_object_del(st->last, "type");
    json_object_del(st->last, "event");
    /* the output came as events: the result carries it as the plain
    ** answer does, so both shapes are the same */
    if (json_object_get(st->last, "stdout") == NULL)
      json_object_set_new(st->last, "stdout", text_of(&st->out));
    if (json_object_get(st->last, "stderr") == NULL)
      json_object_set_new(st->last, "stderr", text_of(&st->err));
    j->json = json_dumps(st->last, JSON_COMPACT | JSON_PRESERVE_ORDER);
  } else {
    o = json_object();
    if (o == NULL)
      return ac_error_set(err, AC_ENOMEM, "out of memory");
    json_object_set_new(o, "stdout", text_of(&st->out));
    json_object_set_new(o, "stderr", text_of(&st->err));
    json_object_set_new(o, "next_offset", json_integer(st->next_offset));
    json_object_set(o, "exit", st->last ? st->last : json_null());
    j->json = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER |
                         JSON_ENSURE_ASCII);
    json_decref(o);
  }
  if (j->json == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  return AC_OK;
}

static enum ac_code ext_step(ac_job *j, enum ac_code rc,
                             struct ac_error *err) {
  struct ext_state *st = j->st;
  json_t *js;
  if (rc == AC_EHTTP && j->resp.status == 404) {
    js = ac_json_parse(ac_buf_str(&j->resp.body), j->resp.body.len, 0,
                       j->op, NULL);
    if (!json_is_object(js)) {
      json_decref(js);
      return ac_error_set(err, AC_EUNSUPPORTED, "%s: %s are not supported "
                          "by this server (%s)", j->op, st->d->feature,
                          j->c->router_url);
    }
    json_decref(js);
    err->code = AC_ENOTFOUND;
    return AC_ENOTFOUND;
  }
  if (rc != AC_OK)
    return rc;
  /* an empty stream (no output yet from a process) never reached the
  ** sink: it is still a stream */
  decide_events(j, st);
  if (st->events > 0)
    return events_result(j, st, err);
  js = ac_json_parse(ac_buf_str(&j->resp.body), j->resp.body.len,
                     JSON_ALLOW_NUL, j->op, err);
  if (js == NULL)
    return err->code;
  j->json = json_dumps(js, JSON_COMPACT | JSON_PRESERVE_ORDER |
                       JSON_ENCODE_ANY);
  json_decref(js);
  if (j->json == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  return AC_OK;
}

/* Appends a path segment that must not change the URL's shape. */
static enum ac_code add_id(struct ac_buf *ep, const char *fmt,
                           const char *id, struct ac_error *err) {
  const char *at = strstr(fmt, "%s");
  if (at == NULL)
    return ac_buf_addstr(ep, fmt) == AC_OK ? AC_OK
         : ac_error_set(err, AC_ENOMEM, "out of memory");
  if (id == NULL || id[0] == '\0')
    return ac_error_set(err, AC_EINVAL, "an id is required");
  if (ac_buf_add(ep, fmt, (size_t)(at - fmt)) != AC_OK ||
      ac_url_encode(ep, id, 0) != AC_OK || ac_buf_addstr(ep, at + 2) != AC_OK)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  return AC_OK;
}

/* The file operations' paths follow the rule of every file operation
** (rpath.c): one outside the session's files is refused before anything
** is sent, named in the message like other file errors. A body that is
** not a JSON object is left for the server to refuse. */
static enum ac_code check_fs_paths(ac_job *j, const struct ac_ext_call *call,
                                   struct ac_error *err) {
  static const char *const keys[] = { "path", "from", "to" };
  enum ac_code rc = AC_OK;
  json_t *body;
  if (call->op == AC_EXT_FS_STAT)
    return call->path == NULL ? AC_OK
         : ac_job_file_error(j, call->path,
                             ac_rpath_resolve(call->path, NULL, err), err);
  if (call->op < AC_EXT_FS_REMOVE || call->json == NULL)
    return AC_OK;
  body = json_loads(call->json, 0, NULL);
  for (size_t i = 0; rc == AC_OK && json_is_object(body) &&
                     i < sizeof keys / sizeof keys[0]; i++) {
    json_t *v = json_object_get(body, keys[i]);
    if (json_is_string(v))
      rc = ac_job_file_error(j, json_string_value(v), ac_rpath_resolve(
                               json_string_value(v), NULL, err), err);
  }
  json_decref(body);
  return rc;
}

enum ac_code ac_start_ext(ac_engine *e, ac_session *s,
                          const struct ac_ext_call *call,
                          const struct ac_job_callbacks *cbs, ac_job **out,
                          struct ac_error *err) {
  enum ac_code rc;
  const struct ext_desc *d;
  struct ext_state *st;
  struct ac_dp_call dp;
  struct ac_buf ep;
  char num[32];
  ac_job *j;
  double ms;

  *out = NULL;
  if (s == NULL || call == NULL)
    return ac_error_set(err, AC_EINVAL, "extension: NULL argument");
  if (call->op < AC_EXT_PROCESS_SPAWN || call->op > AC_EXT_FS_RENAME)
    return ac_error_set(err, AC_EINVAL, "extension: unknown operation %d",
                        (int)call->op);
  d = &descs[call->op];
  rc = ac_job_new(e, s->c, s, d->op, cbs, &j, err);
  if (rc != AC_OK)
    return rc;
  st = calloc(1, sizeof *st);
  if (st == NULL)
    return ac_job_abandon(j, ac_error_set(err, AC_ENOMEM, "out of memory"));
  j->st = st;
  j->cleanup = ext_cleanup;
  j->step = ext_step;
  st->d = d;
  st->events = -1;
  /* no new output: the next read starts where this one did */
  st->next_offset = call->offset > 0 ? call->offset : 0;
  ac_buf_init(&st->line, s->c->max_response);
  ac_buf_init(&st->out, s->c->max_response);
  ac_buf_init(&st->err, s->c->max_response);
  ac_buf_init(&ep, 0);
  rc = check_fs_paths(j, call, err);
  if (rc == AC_OK)
    rc = add_id(&ep, d->path, call->id, err);
  if (rc == AC_OK && call->op == AC_EXT_FS_STAT) {
    if (call->path == NULL)
      rc = ac_error_set(err, AC_EINVAL, "stat: path is required");
    else if (ac_buf_addstr(&ep, "?path=") != AC_OK ||
             ac_url_encode(&ep, call->path, 1) != AC_OK)
      rc = ac_error_set(err, AC_ENOMEM, "out of memory");
  } else if (rc == AC_OK && call->op == AC_EXT_PROCESS_OUTPUT) {
    snprintf(num, sizeof num, "?offset=%lld",
             call->offset > 0 ? call->offset : 0);
    if (ac_buf_addstr(&ep, num) != AC_OK)
      rc = ac_error_set(err, AC_ENOMEM, "out of memory");
  } else if (rc == AC_OK && call->op == AC_EXT_PROCESS_STDIN && call->eof) {
    if (ac_buf_addstr(&ep, "?eof=1") != AC_OK)
      rc = ac_error_set(err, AC_ENOMEM, "out of memory");
  }
  if (rc != AC_OK) {
    ac_buf_free(&ep);
    return ac_job_abandon(j, rc);
  }
  memset(&dp, 0, sizeof dp);
  dp.op = d->op;
  dp.method = d->method;
  dp.endpoint = ac_buf_str(&ep);
  if (call->op == AC_EXT_PROCESS_STDIN) {
    dp.json = call->data ? call->data : "";
    dp.json_len = call->len;
    dp.content_type = "application/octet-stream";
  } else if (strcmp(d->method, "POST") == 0) {
    dp.json = call->json ? call->json : "{}";
    dp.json_len = strlen(dp.json);
  }
  ms = call->timeout > 0 ? call->timeout * 1000.0 + j->c->exec_grace_ms +
       (call->op == AC_EXT_CONTEXT_RUN ? CONTEXT_RESTART_MS : 0)
     : call->op == AC_EXT_PROCESS_WAIT ? 0
     : (double)j->c->request_timeout_ms;
  dp.timeout_ms = ms > 2e9 ? 2000000000L : (long)ceil(ms);
  dp.max_body = j->c->max_response;
  if (d->streams) {
    if (call->op == AC_EXT_CONTEXT_RUN && (cbs == NULL ||
                                           cbs->on_output == NULL))
      st->events = 0;                 /* nobody listens: the plain answer */
    else
      dp.accept = "application/x-ndjson";
    dp.sink = ext_sink;
    dp.sink_ud = j;
  }
  rc = ac_job_send_dp(j, &dp, err);
  ac_buf_free(&ep);
  if (rc != AC_OK)
    return ac_job_abandon(j, rc);
  *out = j;
  return AC_OK;
}
