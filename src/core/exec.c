/*
** exec.c -- commands (POST api/execute) and run_code, as the SDK's
** execute_command, execute_command_result and run_code; with opts->stream
** the local runtime's streamed execute (an NDJSON event stream), which
** falls back to the buffered answer when the server sends that instead.
*/
#include "events.h"
#include "job.h"

#include <errno.h>
#include <limits.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void ac_exec_result_free(struct ac_exec_result *r) {
  if (r == NULL)
    return;
  free(r->out);
  free(r->err);
  free(r->command);
  memset(r, 0, sizeof *r);
}

static void result_init(struct ac_exec_result *r) {
  memset(r, 0, sizeof *r);
  r->exit_code = -1;
  r->duration = -1;
}

static enum ac_code exec_body(const char *const *argv, size_t argc,
                              const char *timeout,
                              const struct ac_exec_opts *o, char **body,
                              struct ac_error *err) {
  enum ac_code rc = AC_OK;
  json_t *j = json_object(), *cmd = json_array(), *env = NULL;
  *body = NULL;
  if (j == NULL || cmd == NULL) {
    json_decref(cmd);
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    goto out;
  }
  json_object_set_new(j, "command", cmd);
  for (size_t i = 0; i < argc; i++) {
    json_t *a = json_string(argv[i]);  /* start_exec refused NULLs */
    if (a == NULL || json_array_append_new(cmd, a)) {
      rc = ac_error_set(err, AC_EINVAL,
                        "command argument %zu is not UTF-8", i);
      goto out;
    }
  }
  json_object_set_new(j, "timeout", json_string(timeout));
  if (o != NULL && o->nenv > 0) {
    env = json_object();
    if (env == NULL || json_object_set_new(j, "env", env)) {
      rc = ac_error_set(err, AC_ENOMEM, "out of memory");
      goto out;
    }
    for (size_t i = 0; i < o->nenv; i++) {
      const struct ac_kv *kv = &o->env[i];
      json_t *v = kv->key && kv->value ? json_string(kv->value) : NULL;
      if (v == NULL || json_object_set_new(env, kv->key, v)) {
        rc = ac_error_set(err, AC_EINVAL,
                          "environment entry %zu is NULL or not UTF-8", i);
        goto out;
      }
    }
  }
  if (o != NULL && o->working_dir != NULL) {
    json_t *w = json_string(o->working_dir);
    if (w == NULL || json_object_set_new(j, "working_dir", w)) {
      rc = ac_error_set(err, AC_EINVAL, "working_dir is not UTF-8");
      goto out;
    }
  }
  rc = ac_json_dump(j, body, err);
out:
  json_decref(j);
  return rc;
}

/* stdout/stderr: a string, or "" for absent/null (`result.get(k) or ""`). */
static enum ac_code take_text(json_t *obj, const char *key, char **out,
                              size_t *len, struct ac_error *err) {
  json_t *v = json_object_get(obj, key);
  const char *s = "";
  size_t n = 0;
  if (json_is_string(v)) {
    s = json_string_value(v);
    n = json_string_length(v);
  } else if (v != NULL && !json_is_null(v)) {
    return ac_error_set(err, AC_EPROTO, "execute: \"%s\" is not a string",
                        key);
  }
  *out = malloc(n + 1);
  if (*out == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  memcpy(*out, s, n);
  (*out)[n] = '\0';
  *len = n;
  return AC_OK;
}

/* int(result.get("exit_code", -1)) for the JSON types int() accepts; a
** number outside int's range is refused (4294967296 must not read as 0,
** and casting 1e300 to int is undefined). */
static enum ac_code take_exit(json_t *obj, int *code, struct ac_error *err) {
  json_t *v = json_object_get(obj, "exit_code");
  if (v == NULL || json_is_null(v)) {
    *code = -1;
  } else if (json_is_integer(v)) {
    json_int_t n = json_integer_value(v);
    if (n < INT_MIN || n > INT_MAX)
      return ac_error_set(err, AC_EPROTO, "execute: exit_code %" JSON_INTEGER_FORMAT
                          " out of range", n);
    *code = (int)n;
  } else if (json_is_real(v)) {
    double d = json_real_value(v);
    if (!(d > (double)INT_MIN - 1.0 && d < (double)INT_MAX + 1.0))
      return ac_error_set(err, AC_EPROTO, "execute: exit_code %g out of "
                          "range", d);
    *code = (int)d;
  } else if (json_is_boolean(v)) {
    *code = json_is_true(v);
  } else if (json_is_string(v)) {
    char *end;
    long l;
    errno = 0;
    l = strtol(json_string_value(v), &end, 10);
    if (end == json_string_value(v) || *end != '\0')
      return ac_error_set(err, AC_EPROTO, "execute: bad exit_code");
    if (errno == ERANGE || l < INT_MIN || l > INT_MAX)
      return ac_error_set(err, AC_EPROTO, "execute: exit_code out of range");
    *code = (int)l;
  } else {
    return ac_error_set(err, AC_EPROTO, "execute: bad exit_code");
  }
  return AC_OK;
}

/* The fields of a buffered answer (or of an "exit" event) into res. */
static enum ac_code take_result(json_t *j, struct ac_exec_result *res,
                                int texts, struct ac_error *err) {
  enum ac_code rc = AC_OK;
  json_t *d;
  if (texts) {
    free(res->out);
    free(res->err);
    res->out = res->err = NULL;
    rc = take_text(j, "stdout", &res->out, &res->out_len, err);
    if (rc == AC_OK)
      rc = take_text(j, "stderr", &res->err, &res->err_len, err);
  }
  if (rc == AC_OK)
    rc = take_exit(j, &res->exit_code, err);
  d = json_object_get(j, "duration");
  if (rc == AC_OK && json_is_number(d) && isfinite(json_number_value(d)))
    res->duration = json_number_value(d);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* The job                                                                 */

enum { MODE_UNDECIDED, MODE_EVENTS, MODE_BUFFERED };

struct exec_state {
  int check, stream;
  int mode;
  int got_exit;
  struct ac_buf line;                 /* a partial NDJSON line */
  struct ac_buf out, err;             /* streamed output, accumulated */
  enum ac_code ev_rc;                 /* an "error" event */
  char ev_msg[200];
  /* run_code */
  int phase;                          /* 0 write, 1 execute */
  char script[64];
  const char *interp;
  double timeout;
  int timeout_is_float;
  struct ac_kv *env;                  /* copies: the job outlives the call */
  size_t nenv;
};

static void exec_cleanup(ac_job *j) {
  struct exec_state *st = j->st;
  if (st == NULL)
    return;
  ac_buf_free(&st->line);
  ac_buf_free(&st->out);
  ac_buf_free(&st->err);
  for (size_t i = 0; i < st->nenv; i++) {
    free((char *)st->env[i].key);
    free((char *)st->env[i].value);
  }
  free(st->env);
  free(st);
  j->st = NULL;
}

/* One NDJSON event of a streamed execute. */
static enum ac_code on_event(void *ud, const char *text, size_t len,
                             struct ac_error *err) {
  ac_job *j = ud;
  struct exec_state *st = j->st;
  struct ac_event ev;
  enum ac_code rc = ac_event_parse("execute", text, len, &ev, err);
  if (rc != AC_OK)
    return rc;
  if (ev.stream != 0) {
    struct ac_buf *acc = ev.stream == AC_STREAM_STDOUT ? &st->out : &st->err;
    if (ev.len > 0) {
      if (ac_buf_add(acc, ev.data, ev.len) != AC_OK)
        rc = ac_error_set(err, AC_ETOOBIG, "execute: output larger than "
                          "%zu bytes", acc->max);
      else if (ac_job_queue_output(j, ev.stream, ev.data, ev.len) != AC_OK)
        rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    }
  } else if (!strcmp(ev.type, "exit")) {
    st->got_exit = 1;
    rc = take_result(ev.json, &j->exec, 0, err);
  } else if (!strcmp(ev.type, "error")) {
    json_t *m = json_object_get(ev.json, "error");
    snprintf(st->ev_msg, sizeof st->ev_msg, "%s",
             json_is_string(m) ? json_string_value(m) : "stream failed");
    st->ev_rc = AC_EHTTP;
  }
  ac_event_free(&ev);
  return rc;
}

/* 2xx bodies of a streamed execute: events when the server streams, the
** buffered answer otherwise. Runs inside libcurl: plain bookkeeping only;
** output is queued for the polling thread. */
static enum ac_code exec_sink(void *ud, const char *data, size_t len,
                              struct ac_error *err) {
  ac_job *j = ud;
  struct exec_state *st = j->st;
  if (st->mode == MODE_UNDECIDED) {
    char *ct = NULL;
    curl_easy_getinfo(j->easy, CURLINFO_CONTENT_TYPE, &ct);
    st->mode = ct != NULL && strstr(ct, "ndjson") != NULL ? MODE_EVENTS
                                                          : MODE_BUFFERED;
  }
  if (st->mode == MODE_BUFFERED) {
    if (ac_buf_add(&j->resp.body, data, len) != AC_OK)
      return ac_error_set(err, AC_ETOOBIG, "response larger than %zu bytes",
                          j->resp.body.max);
    return AC_OK;
  }
  return ac_event_lines(&st->line, data, len, on_event, j, err);
}

static enum ac_code send_execute(ac_job *j, const char *const *argv,
                                 size_t argc, const struct ac_exec_opts *o,
                                 struct ac_error *err) {
  struct exec_state *st = j->st;
  enum ac_code rc;
  char timeout[64], *body = NULL;
  double t = o ? o->timeout : 0, ms;
  struct ac_dp_call call;

  rc = ac_format_timeout(t, o ? o->timeout_is_float : 0, timeout,
                         sizeof timeout, err);
  if (rc == AC_OK)
    rc = exec_body(argv, argc, timeout, o, &body, err);
  if (rc != AC_OK)
    return rc;
  /* The SDK waits timeout + 2 s for the answer. */
  ms = (t == 0 ? 120.0 : t) * 1000.0 + (double)j->c->exec_grace_ms;
  memset(&call, 0, sizeof call);
  call.op = "execute";
  call.method = "POST";
  call.endpoint = "api/execute";
  call.json = body;
  call.json_len = strlen(body);
  call.timeout_ms = ms > 2e9 ? 2000000000L : (long)ceil(ms);
  call.max_body = j->c->max_response;
  if (st->stream) {
    call.accept = "application/x-ndjson";
    call.sink = exec_sink;
    call.sink_ud = j;
    st->mode = MODE_UNDECIDED;
    st->got_exit = 0;
    ac_buf_init(&st->line, j->c->max_response);
    ac_buf_init(&st->out, j->c->max_response);
    ac_buf_init(&st->err, j->c->max_response);
  }
  rc = ac_job_send_dp(j, &call, err);
  free(body);
  return rc;
}

/* The answer of api/execute, buffered or streamed, into j->exec. */
static enum ac_code finish_execute(ac_job *j, enum ac_code rc,
                                   struct ac_error *err) {
  struct exec_state *st = j->st;
  json_t *js;
  if (rc != AC_OK)
    return rc;
  if (st->stream && st->mode == MODE_EVENTS) {
    if (st->ev_rc != AC_OK)
      return ac_error_set(err, st->ev_rc, "execute: %s", st->ev_msg);
    if (!st->got_exit)
      return ac_error_set(err, AC_EPROTO, "execute: the stream ended "
                          "without an exit event");
    free(j->exec.out);
    free(j->exec.err);
    j->exec.out = ac_buf_steal(&st->out, &j->exec.out_len);
    j->exec.err = ac_buf_steal(&st->err, &j->exec.err_len);
    if (j->exec.out == NULL || j->exec.err == NULL)
      return ac_error_set(err, AC_ENOMEM, "out of memory");
  } else {
    /* Command output may hold NUL bytes (\u0000). */
    js = ac_json_parse(ac_buf_str(&j->resp.body), j->resp.body.len,
                       JSON_ALLOW_NUL, "execute", err);
    if (js == NULL)
      return err->code;
    if (!json_is_object(js)) {
      json_decref(js);
      return ac_error_set(err, AC_EPROTO, "execute: malformed JSON "
                          "response");
    }
    rc = take_result(js, &j->exec, 1, err);
    json_decref(js);
    if (rc != AC_OK)
      return rc;
    /* A buffered answer to a streamed request: the callbacks fire once. */
    if (st->stream &&
        (ac_job_queue_output(j, AC_STREAM_STDOUT, j->exec.out,
                             j->exec.out_len) != AC_OK ||
         ac_job_queue_output(j, AC_STREAM_STDERR, j->exec.err,
                             j->exec.err_len) != AC_OK))
      return ac_error_set(err, AC_ENOMEM, "out of memory");
  }
  if (st->check && j->exec.exit_code != 0)
    return ac_error_set(err, AC_ECOMMAND, "Command failed (exit %d): %s",
                        j->exec.exit_code, j->exec.err);
  return AC_OK;
}

static enum ac_code exec_step(ac_job *j, enum ac_code rc,
                              struct ac_error *err) {
  return finish_execute(j, rc, err);
}

static enum ac_code start_exec(ac_engine *e, ac_session *s,
                               const char *const *argv, size_t argc,
                               const struct ac_exec_opts *o,
                               const char *command_text,
                               const struct ac_job_callbacks *cbs,
                               ac_job **out, struct ac_error *err) {
  enum ac_code rc;
  struct exec_state *st;
  ac_job *j;
  *out = NULL;
  if (s == NULL)
    return ac_error_set(err, AC_EINVAL, "session is NULL");
  if (argv == NULL && argc > 0)
    return ac_error_set(err, AC_EINVAL, "argv is NULL");
  for (size_t i = 0; i < argc; i++)
    if (argv[i] == NULL)
      return ac_error_set(err, AC_EINVAL, "command argument %zu is NULL", i);
  rc = ac_job_new(e, s->c, s, "execute", cbs, &j, err);
  if (rc != AC_OK)
    return rc;
  st = calloc(1, sizeof *st);
  if (st == NULL)
    return ac_job_abandon(j, ac_error_set(err, AC_ENOMEM, "out of memory"));
  j->st = st;
  j->cleanup = exec_cleanup;
  j->step = exec_step;
  st->check = o != NULL && o->check;
  st->stream = o != NULL && o->stream;
  j->exec.command = command_text ? strdup(command_text) : NULL;
  if (command_text == NULL)
    rc = ac_shlex_join(argv, argc, &j->exec.command, err);
  else if (j->exec.command == NULL)
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
  if (rc == AC_OK)
    rc = send_execute(j, argv, argc, o, err);
  if (rc != AC_OK)
    return ac_job_abandon(j, rc);
  *out = j;
  return AC_OK;
}

enum ac_code ac_start_exec(ac_engine *e, ac_session *s,
                           const char *const *argv, size_t argc,
                           const struct ac_exec_opts *opts,
                           const struct ac_job_callbacks *cbs, ac_job **out,
                           struct ac_error *err) {
  return start_exec(e, s, argv, argc, opts, NULL, cbs, out, err);
}

enum ac_code ac_start_exec_line(ac_engine *e, ac_session *s,
                                const char *command,
                                const struct ac_exec_opts *opts,
                                const struct ac_job_callbacks *cbs,
                                ac_job **out, struct ac_error *err) {
  enum ac_code rc;
  char **argv = NULL;
  size_t argc = 0;
  *out = NULL;
  if (command == NULL)
    return ac_error_set(err, AC_EINVAL, "command is NULL");
  rc = ac_shlex_split(command, &argv, &argc, err);
  if (rc != AC_OK)
    return rc;
  rc = start_exec(e, s, (const char *const *)argv, argc, opts, command, cbs,
                  out, err);
  ac_argv_free(argv);
  return rc;
}

/* Runs a started job to completion and moves its result into res. */
static enum ac_code exec_blocking(ac_session *s, ac_engine *e, ac_job *j,
                                  enum ac_code rc,
                                  struct ac_exec_result *res,
                                  struct ac_error *err) {
  if (rc == AC_OK) {
    rc = ac_job_finish_blocking(j, err);
    ac_job_take_exec(j, res);
    ac_job_free(j);
  }
  ac_client_engine_put(s->c, e);
  return rc;
}

enum ac_code ac_session_exec(ac_session *s, const char *const *argv,
                             size_t argc, const struct ac_exec_opts *opts,
                             struct ac_exec_result *res,
                             struct ac_error *err) {
  ac_engine *e;
  ac_job *j = NULL;
  result_init(res);
  if (s == NULL)
    return ac_error_set(err, AC_EINVAL, "session is NULL");
  if ((e = ac_client_engine_get(s->c, err)) == NULL)
    return err != NULL ? err->code : AC_ENOMEM;
  return exec_blocking(s, e, j,
                       ac_start_exec(e, s, argv, argc, opts, NULL, &j, err),
                       res, err);
}

enum ac_code ac_session_exec_line(ac_session *s, const char *command,
                                  const struct ac_exec_opts *opts,
                                  struct ac_exec_result *res,
                                  struct ac_error *err) {
  ac_engine *e;
  ac_job *j = NULL;
  enum ac_code rc;
  result_init(res);
  if (s == NULL)
    return ac_error_set(err, AC_EINVAL, "session is NULL");
  if ((e = ac_client_engine_get(s->c, err)) == NULL)
    return err != NULL ? err->code : AC_ENOMEM;
  rc = ac_start_exec_line(e, s, command, opts, NULL, &j, err);
  return exec_blocking(s, e, j, rc, res, err);
}

/* ---------------------------------------------------------------------- */
/* run_code: the SDK's two requests, write the script and execute it,     */
/* everywhere. The local runtime removes the script once it has run       */
/* (src/server/http/sdk_script.c), for the SDK and this client alike.     */

static enum ac_code run_code_step(ac_job *j, enum ac_code rc,
                                  struct ac_error *err) {
  struct exec_state *st = j->st;
  if (st->phase == 0) {               /* the script is written */
    struct ac_exec_opts o;
    const char *argv[2];
    if (rc != AC_OK)
      return rc;
    memset(&o, 0, sizeof o);
    o.timeout = st->timeout;
    o.timeout_is_float = st->timeout_is_float;
    o.env = st->env;
    o.nenv = st->nenv;
    o.check = 1;
    o.stream = st->stream;
    argv[0] = st->interp;
    argv[1] = st->script;
    st->phase = 1;
    j->op = "execute";
    return send_execute(j, argv, 2, &o, err);
  }
  return finish_execute(j, rc, err);  /* the command ended */
}

enum ac_code ac_start_run_code(ac_engine *e, ac_session *s,
                               const char *language, const char *code,
                               size_t len, const struct ac_exec_opts *opts,
                               const struct ac_job_callbacks *cbs,
                               ac_job **out, struct ac_error *err) {
  enum ac_code rc;
  char lang[16], *fixed = NULL;
  const char *interp, *ext;
  struct exec_state *st;
  struct timespec now;
  size_t i, fixed_len = 0;
  ac_job *j;

  *out = NULL;
  if (s == NULL || language == NULL || (code == NULL && len > 0))
    return ac_error_set(err, AC_EINVAL, "run code: NULL argument");
  for (i = 0; language[i] != '\0' && i + 1 < sizeof lang; i++)
    lang[i] = (char)(language[i] >= 'A' && language[i] <= 'Z'
                     ? language[i] - 'A' + 'a' : language[i]);
  lang[i] = '\0';
  if (language[i] != '\0')
    lang[0] = '\0';                   /* too long to be a known name */
  if (!strcmp(lang, "python") || !strcmp(lang, "py") ||
      !strcmp(lang, "python3")) {
    interp = "python3";
    ext = "py";
  } else if (!strcmp(lang, "bash") || !strcmp(lang, "sh")) {
    interp = "bash";
    ext = "sh";
  } else {
    return ac_error_set(err, AC_EUNSUPPORTED, "Unsupported language: %s",
                        language);
  }
  if (opts != NULL && opts->working_dir != NULL)
    return ac_error_set(err, AC_EINVAL,
                        "run code: working_dir is not supported");
  if (interp[0] == 'p' &&
      ac_pyfix_newlines(code ? code : "", len, &fixed, &fixed_len) < 0)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  rc = ac_job_new(e, s->c, s, "write file", cbs, &j, err);
  if (rc != AC_OK) {
    free(fixed);
    return rc;
  }
  st = calloc(1, sizeof *st);
  if (st == NULL) {
    free(fixed);
    return ac_job_abandon(j, ac_error_set(err, AC_ENOMEM, "out of memory"));
  }
  j->st = st;
  j->cleanup = exec_cleanup;
  j->step = run_code_step;
  st->check = 1;
  st->stream = opts != NULL && opts->stream;
  st->interp = interp;
  st->timeout = opts ? opts->timeout : 0;
  st->timeout_is_float = opts ? opts->timeout_is_float : 0;
  if (opts != NULL && opts->nenv > 0) {
    st->env = calloc(opts->nenv, sizeof *st->env);
    if (st->env == NULL) {
      free(fixed);
      return ac_job_abandon(j, ac_error_set(err, AC_ENOMEM,
                                            "out of memory"));
    }
    for (size_t k = 0; k < opts->nenv; k++) {
      const struct ac_kv *kv = &opts->env[k];
      st->env[k].key = kv->key ? strdup(kv->key) : NULL;
      st->env[k].value = kv->value ? strdup(kv->value) : NULL;
      st->nenv = k + 1;
      if ((kv->key && !st->env[k].key) || (kv->value && !st->env[k].value)) {
        free(fixed);
        return ac_job_abandon(j, ac_error_set(err, AC_ENOMEM,
                                              "out of memory"));
      }
    }
  }
  clock_gettime(CLOCK_REALTIME, &now);
  snprintf(st->script, sizeof st->script, "script_%lld.%s",
           (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000, ext);
  j->exec.command = malloc(strlen(interp) + strlen(st->script) + 2);
  if (j->exec.command != NULL)
    sprintf(j->exec.command, "%s %s", interp, st->script);
  rc = ac_job_send_write_file(j, st->script, fixed ? fixed : code,
                              fixed ? fixed_len : len, err);
  free(fixed);
  if (rc != AC_OK)
    return ac_job_abandon(j, rc);
  *out = j;
  return AC_OK;
}

enum ac_code ac_session_run_code(ac_session *s, const char *language,
                                 const char *code, size_t len,
                                 const struct ac_exec_opts *opts,
                                 struct ac_exec_result *res,
                                 struct ac_error *err) {
  ac_engine *e;
  ac_job *j = NULL;
  enum ac_code rc;
  result_init(res);
  if (s == NULL)
    return ac_error_set(err, AC_EINVAL, "run code: NULL argument");
  if ((e = ac_client_engine_get(s->c, err)) == NULL)
    return err != NULL ? err->code : AC_ENOMEM;
  rc = ac_start_run_code(e, s, language, code, len, opts, NULL, &j, err);
  return exec_blocking(s, e, j, rc, res, err);
}
