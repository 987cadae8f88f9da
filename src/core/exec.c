/*
** exec.c -- commands (POST api/execute) and run_code, as the SDK's
** execute_command, execute_command_result and run_code.
*/
#include "internal.h"

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
    json_t *a = argv[i] ? json_string(argv[i]) : NULL;
    if (a == NULL || json_array_append_new(cmd, a)) {
      rc = ac_error_set(err, AC_EINVAL,
                        "command argument %zu is NULL or not UTF-8", i);
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

/* int(result.get("exit_code", -1)) for the JSON types int() accepts. */
static enum ac_code take_exit(json_t *obj, int *code, struct ac_error *err) {
  json_t *v = json_object_get(obj, "exit_code");
  if (v == NULL) {
    *code = -1;
  } else if (json_is_integer(v)) {
    *code = (int)json_integer_value(v);
  } else if (json_is_real(v) && isfinite(json_real_value(v))) {
    *code = (int)json_real_value(v);
  } else if (json_is_boolean(v)) {
    *code = json_is_true(v);
  } else if (json_is_string(v)) {
    char *end;
    long l = strtol(json_string_value(v), &end, 10);
    if (end == json_string_value(v) || *end != '\0')
      return ac_error_set(err, AC_EPROTO, "execute: bad exit_code");
    *code = (int)l;
  } else {
    return ac_error_set(err, AC_EPROTO, "execute: bad exit_code");
  }
  return AC_OK;
}

static enum ac_code exec_argv(ac_session *s, const char *const *argv,
                              size_t argc, const struct ac_exec_opts *o,
                              const char *command_text,
                              struct ac_exec_result *res,
                              struct ac_error *err) {
  enum ac_code rc;
  char timeout[64], *body = NULL;
  double t = o ? o->timeout : 0, ms;
  struct ac_dp_call call;
  struct ac_http_resp resp;
  json_t *j = NULL;
  json_error_t jerr;

  ac_http_resp_init(&resp);
  if (s == NULL)
    return ac_error_set(err, AC_EINVAL, "session is NULL");
  if (argv == NULL && argc > 0)
    return ac_error_set(err, AC_EINVAL, "argv is NULL");
  rc = ac_format_timeout(t, o ? o->timeout_is_float : 0, timeout,
                         sizeof timeout, err);
  if (rc != AC_OK)
    return rc;
  res->command = command_text ? strdup(command_text) : NULL;
  if (command_text == NULL)
    rc = ac_shlex_join(argv, argc, &res->command, err);
  else if (res->command == NULL)
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
  if (rc == AC_OK)
    rc = exec_body(argv, argc, timeout, o, &body, err);
  if (rc != AC_OK)
    goto out;

  /* The SDK waits timeout + 2 s for the answer. */
  ms = (t == 0 ? 120.0 : t) * 1000.0 + (double)s->c->exec_grace_ms;
  memset(&call, 0, sizeof call);
  call.op = "execute";
  call.method = "POST";
  call.endpoint = "api/execute";
  call.json = body;
  call.json_len = strlen(body);
  call.timeout_ms = ms > 2e9 ? 2000000000L : (long)ceil(ms);
  call.max_body = s->c->max_response;
  rc = ac_dp_request(s, &call, &resp, err);
  if (rc != AC_OK)
    goto out;

  /* Command output may hold NUL bytes (\u0000). */
  j = json_loadb(ac_buf_str(&resp.body), resp.body.len, JSON_ALLOW_NUL,
                 &jerr);
  if (!json_is_object(j)) {
    rc = ac_error_set(err, AC_EPROTO, "execute: malformed JSON response%s%s",
                      j ? "" : ": ", j ? "" : jerr.text);
    goto out;
  }
  rc = take_text(j, "stdout", &res->out, &res->out_len, err);
  if (rc == AC_OK)
    rc = take_text(j, "stderr", &res->err, &res->err_len, err);
  if (rc == AC_OK)
    rc = take_exit(j, &res->exit_code, err);
  if (rc != AC_OK)
    goto out;
  if (json_is_number(json_object_get(j, "duration")))
    res->duration = json_number_value(json_object_get(j, "duration"));
  if (o != NULL && o->check && res->exit_code != 0)
    rc = ac_error_set(err, AC_ECOMMAND, "Command failed (exit %d): %s",
                      res->exit_code, res->err);
out:
  json_decref(j);
  ac_http_resp_free(&resp);
  free(body);
  return rc;
}

enum ac_code ac_session_exec(ac_session *s, const char *const *argv,
                             size_t argc, const struct ac_exec_opts *opts,
                             struct ac_exec_result *res,
                             struct ac_error *err) {
  result_init(res);
  return exec_argv(s, argv, argc, opts, NULL, res, err);
}

enum ac_code ac_session_exec_line(ac_session *s, const char *command,
                                  const struct ac_exec_opts *opts,
                                  struct ac_exec_result *res,
                                  struct ac_error *err) {
  enum ac_code rc;
  char **argv = NULL;
  size_t argc = 0;
  result_init(res);
  if (command == NULL)
    return ac_error_set(err, AC_EINVAL, "command is NULL");
  rc = ac_shlex_split(command, &argv, &argc, err);
  if (rc != AC_OK)
    return rc;
  rc = exec_argv(s, (const char *const *)argv, argc, opts, command, res,
                 err);
  ac_argv_free(argv);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* run_code                                                                */

enum ac_code ac_session_run_code(ac_session *s, const char *language,
                                 const char *code, size_t len,
                                 const struct ac_exec_opts *opts,
                                 struct ac_exec_result *res,
                                 struct ac_error *err) {
  enum ac_code rc;
  char lang[16], file[64], *fixed = NULL;
  const char *interp, *ext;
  const char *argv[2];
  struct ac_exec_opts o;
  struct timespec now;
  size_t i, fixed_len = 0;

  result_init(res);
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
    if (ac_pyfix_newlines(code ? code : "", len, &fixed, &fixed_len) < 0)
      return ac_error_set(err, AC_ENOMEM, "out of memory");
  } else if (!strcmp(lang, "bash") || !strcmp(lang, "sh")) {
    interp = "bash";
    ext = "sh";
  } else {
    return ac_error_set(err, AC_EUNSUPPORTED, "Unsupported language: %s",
                        language);
  }
  if (opts != NULL && opts->working_dir != NULL) {
    free(fixed);
    return ac_error_set(err, AC_EINVAL,
                        "run code: working_dir is not supported");
  }
  clock_gettime(CLOCK_REALTIME, &now);
  snprintf(file, sizeof file, "script_%lld.%s",
           (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000, ext);
  rc = ac_session_write_file(s, file, fixed ? fixed : code,
                             fixed ? fixed_len : len, err);
  free(fixed);
  if (rc != AC_OK)
    return rc;
  if (opts != NULL)
    o = *opts;
  else
    memset(&o, 0, sizeof o);
  o.check = 1;
  argv[0] = interp;
  argv[1] = file;
  return exec_argv(s, argv, 2, &o, NULL, res, err);
}
