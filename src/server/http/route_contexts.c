/*
** route_contexts.c -- stateful code contexts of the live sandbox
** (docs/extensions.md): create, list, run (buffered or streamed), delete.
*/
#include "duration.h"
#include "live.h"
#include "reply.h"
#include "routes.h"
#include "utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUN_DEFAULT_TIMEOUT_NS (60 * 1000000000LL)

static enum MHD_Result reply_sbx(struct req *r, const struct ac_error *err) {
  if (err->code == AC_ENOTFOUND)
    return reply_error(r, FAM_PICOD, 404, "context %s not found",
                       r->live_id);
  if (err->code == AC_EBUSY)
    return reply_error(r, FAM_PICOD, 409, "context %s is running code; "
                       "one run at a time", r->live_id);
  return reply_error(r, FAM_PICOD, live_status(err->code), "%s", err->msg);
}

static json_t *body_object(struct req *r) {
  json_error_t jerr;
  json_t *body = r->body ? json_loadb(r->body, r->len, 0, &jerr) : NULL;
  if (!json_is_object(body)) {
    json_decref(body);
    reply_error(r, FAM_PICOD, 400, "request body must be a JSON object");
    return NULL;
  }
  return body;
}

static json_t *ctx_json(const struct sbx_ctx_info *c) {
  return json_pack("{s:s, s:s, s:i, s:s}", "id", c->id, "language",
                   c->language, "pid", c->pid, "state",
                   c->busy ? "busy" : "idle");
}

static enum MHD_Result create(struct req *r) {
  json_t *body = body_object(r), *v, *envobj;
  const char *lang, *key, *workdir = NULL;
  char **env = NULL, mapped[4096], sbxdir[4200];
  struct sbx_ctx_info c;
  struct ac_error err;
  enum MHD_Result ret;
  size_t n = 0;

  if (body == NULL)
    return MHD_YES;
  v = json_object_get(body, "language");
  lang = json_is_string(v) ? json_string_value(v) : NULL;
  if (lang == NULL || (strcmp(lang, "python") && strcmp(lang, "bash") &&
                       strcmp(lang, "lua"))) {
    ret = reply_error(r, FAM_PICOD, 400, "language must be \"python\", "
                      "\"bash\" or \"lua\"");
    goto out;
  }
  envobj = json_object_get(body, "env");
  if (envobj && !json_is_null(envobj) && !json_is_object(envobj)) {
    ret = reply_error(r, FAM_PICOD, 400, "env must be an object of strings");
    goto out;
  }
  env = calloc(json_object_size(envobj) + 1, sizeof *env);
  if (env == NULL) {
    ret = reply_error(r, FAM_PICOD, 500, "out of memory");
    goto out;
  }
  json_object_foreach(envobj, key, v) {
    size_t len;
    if (!json_is_string(v) || !*key || strchr(key, '=')) {
      ret = reply_error(r, FAM_PICOD, 400, "env entry '%s' must be a "
                        "string under a name without '='", key);
      goto out;
    }
    len = strlen(key) + json_string_length(v) + 2;
    if ((env[n] = malloc(len)) == NULL) {
      ret = reply_error(r, FAM_PICOD, 500, "out of memory");
      goto out;
    }
    snprintf(env[n++], len, "%s=%s", key, json_string_value(v));
  }
  v = json_object_get(body, "working_dir");
  if (v && !json_is_null(v) && !json_is_string(v)) {
    ret = reply_error(r, FAM_PICOD, 400, "working_dir must be a string");
    goto out;
  }
  if (json_is_string(v) && *json_string_value(v)) {
    struct fapi_root root;
    if (fapi_map_path(json_string_value(v), mapped, sizeof mapped,
                      &err) != AC_OK) {
      ret = reply_error(r, FAM_PICOD, 400, "Invalid working directory: %s",
                        err.msg);
      goto out;
    }
    req_fapi_root(r, &root);
    if (fapi_mkdirs(&root, json_string_value(v), &err) != AC_OK) {
      ret = reply_error(r, FAM_PICOD, err.code == AC_ESYSTEM ? 500 : 400,
                        "Failed to create working directory: %s", err.msg);
      goto out;
    }
    snprintf(sbxdir, sizeof sbxdir, "/%s", mapped);
    workdir = sbxdir;
  }
  if (sbx_ctx_create(r->sess->box, lang, (const char *const *)env, workdir,
                     &c, &err) != AC_OK) {
    ret = reply_error(r, FAM_PICOD, live_status(err.code),
                      "Failed to create context: %s", err.msg);
    goto out;
  }
  ret = reply_json(r, 201, ctx_json(&c));
out:
  for (size_t i = 0; env && i < n; i++)
    free(env[i]);
  free(env);
  json_decref(body);
  return ret;
}

static enum MHD_Result list(struct req *r) {
  struct sbx_ctx_info *v;
  struct ac_error err;
  size_t n;
  json_t *arr;
  if (sbx_ctx_list(r->sess->box, &v, &n, &err) != AC_OK)
    return reply_error(r, FAM_PICOD, live_status(err.code), "%s", err.msg);
  arr = json_array();
  for (size_t i = 0; arr && i < n; i++)
    json_array_append_new(arr, ctx_json(&v[i]));
  free(v);
  return reply_json(r, 200, json_pack("{s:o}", "contexts", arr));
}

/* {====================================================== run */

/* The error name on the wire (docs/extensions.md): a run that timed out
** is a TimeoutError whatever the interpreter raised on its interrupt, and
** a failed bash run is an ExitStatus. */
static const char *wire_error_name(const struct sbx_ctx_result *ctx) {
  if (ctx->timed_out)
    return "TimeoutError";
  if (!strcmp(ctx->err_name, "NonZeroExit"))
    return "ExitStatus";
  return ctx->err_name;
}

/* The fields of a run's result; the output of a buffered run included. */
static json_t *result_json(const struct sbx_exec_result *res,
                           const struct sbx_ctx_result *ctx, int with_output) {
  json_t *o, *error = json_null();
  if (ctx && (ctx->err_name || ctx->timed_out))
    error = json_pack("{s:s, s:s, s:s}", "name", wire_error_name(ctx),
                      "message", ctx->err_message ? ctx->err_message : "",
                      "traceback",
                      ctx->err_traceback ? ctx->err_traceback : "");
  o = json_pack("{s:o, s:o, s:f, s:b, s:s}",
                "value", ctx && ctx->value ? json_string(ctx->value)
                                           : json_null(),
                "error", error,
                "duration", (double)(res->end.tv_sec - res->start.tv_sec) +
                  (double)(res->end.tv_nsec - res->start.tv_nsec) / 1e9,
                "timed_out", ctx ? ctx->timed_out : res->timed_out,
                "state", ctx && ctx->restarted ? "restarted" : "idle");
  if (o && with_output) {
    size_t ol, el;
    char *out = utf8_sanitize(res->out, res->out_len, &ol);
    char *err = utf8_sanitize(res->err, res->err_len, &el);
    json_object_set_new(o, "stdout", json_stringn(out ? out : "", ol));
    json_object_set_new(o, "stderr", json_stringn(err ? err : "", el));
    if (out != res->out)
      free(out);
    if (err != res->err)
      free(err);
  }
  return o;
}

static void on_stream_done(void *ud, const struct sbx_exec_result *res,
                           const struct sbx_ctx_result *ctx) {
  struct live_state *ls = ud;
  json_t *ev = result_json(res, ctx, 0);
  ndjson_flush(&ls->nd);
  if (ev)
    json_object_set_new(ev, "type", json_string("result"));
  ndjson_event(ls->nd.s, ev);
  stream_end(ls->nd.s, 0);
}

static void on_buffered_done(void *ud, const struct sbx_exec_result *res,
                             const struct sbx_ctx_result *ctx) {
  struct live_state *ls = ud;
  json_t *o = res->pool_refused ? NULL : result_json(res, ctx, 1);
  if (res->pool_refused)
    /* The code ran; what it printed did not fit in the server's memory
    ** budget, so no answer can say what it printed. */
    reply_json(ls->r, 503, json_pack(
      "{s:s, s:i}", "error", "server busy: the memory budget of requests "
      "in flight (maxRequestMemory) could not hold the run's output; the "
      "code ran", "code", 503));
  else if (o)
    reply_json(ls->r, 200, o);
  else
    reply_error(ls->r, FAM_PICOD, 500, "out of memory");
  req_async_done(ls->r);
}

static enum MHD_Result run(struct req *r) {
  json_t *body = body_object(r), *code, *t;
  struct sbx_task_events ev = { NULL, NULL, on_buffered_done };
  long long timeout_ns = RUN_DEFAULT_TIMEOUT_NS;
  struct live_state *ls;
  struct sbx_task *task;
  struct ac_error err;
  enum MHD_Result ret = MHD_YES;
  int streamed = live_wants_stream(r);

  if (body == NULL)
    return MHD_YES;
  code = json_object_get(body, "code");
  t = json_object_get(body, "timeout");
  if (!json_is_string(code)) {
    ret = reply_error(r, FAM_PICOD, 400, "code is required and must be a "
                      "string");
    goto out;
  }
  if (t && !json_is_null(t) &&
      (!json_is_string(t) ||
       (*json_string_value(t) &&
        (ac_duration_parse(json_string_value(t), &timeout_ns, &err) != AC_OK
         || timeout_ns <= 0)))) {
    ret = reply_error(r, FAM_PICOD, 400, "timeout must be a positive "
                      "duration string such as \"30s\"");
    goto out;
  }
  if ((ls = live_state_new(r)) == NULL) {
    ret = reply_error(r, FAM_PICOD, 500, "out of memory");
    goto out;
  }
  /* A busy or unknown context is answered before any stream starts. */
  if (streamed) {
    struct sbx_ctx_info *v;
    size_t n, i;
    if (sbx_ctx_list(r->sess->box, &v, &n, &err) != AC_OK) {
      ret = reply_sbx(r, &err);
      goto out;
    }
    for (i = 0; i < n && strcmp(v[i].id, r->live_id); i++)
      ;
    if (i == n || v[i].busy) {
      err.code = i == n ? AC_ENOTFOUND : AC_EBUSY;
      free(v);
      ret = reply_sbx(r, &err);
      goto out;
    }
    free(v);
    if (live_stream_open(r, ls) != 0)
      goto out;
    ev.output = live_on_output;
    ev.done = on_stream_done;
  } else {
    if (!req_reserve(r, REQ_OUTPUT_ADMISSION)) {
      ret = reply_pool_busy(r, "another run's output");
      goto out;
    }
    r->async = 1;
  }
  if (sbx_ctx_run_start(r->sess->box, r->live_id, json_string_value(code),
                        timeout_ns, &ev, ls, streamed ? NULL : &req_output_pool,
                        &task, &err) != AC_OK) {
    r->async = 0;
    if (streamed) {
      ndjson_event(ls->nd.s, json_pack("{s:s, s:s, s:i}", "type", "error",
                                       "error", err.msg, "code",
                                       (int)live_status(err.code)));
      stream_end(ls->nd.s, 0);
    } else {
      ret = reply_sbx(r, &err);
    }
    goto out;
  }
  live_set_task(r, task);
out:
  json_decref(body);
  return ret;
}

/* }====================================================== */

static enum MHD_Result delete(struct req *r) {
  struct ac_error err;
  if (sbx_ctx_delete(r->sess->box, r->live_id, &err) != AC_OK)
    return reply_sbx(r, &err);
  return reply_json(r, 200, json_pack("{s:s, s:s}", "id", r->live_id,
                                      "state", "deleted"));
}

enum MHD_Result route_contexts(struct req *r) {
  switch (r->op) {
  case OP_CTX_CREATE: return create(r);
  case OP_CTX_LIST: return list(r);
  case OP_CTX_RUN: return run(r);
  case OP_CTX_DELETE: return delete(r);
  default: break;
  }
  return reply_text(r, 404, "404 page not found");
}
