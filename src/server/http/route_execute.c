/*
** route_execute.c -- POST .../invocations/api/execute (PicoD's execute).
*/
#include "exec_args.h"
#include "live.h"
#include "budget.h"
#include "reply.h"
#include "routes.h"
#include "sdk_script.h"
#include "utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The buffered answer of api/execute for a result (PicoD's fields, plus
** ours when a cap or a limit was hit). NULL when out of memory. */
json_t *exec_result_json(const struct sbx_exec_result *res,
                         size_t max_output) {
  char t0[40], t1[40];
  json_t *o;
  {
    size_t olen, elen;
    char *out = utf8_sanitize(res->out, res->out_len, &olen);
    char *errs = utf8_sanitize(res->err, res->err_len, &elen);
    int out_cut = res->out_truncated, err_cut = res->err_truncated;
    /* The answer's size is bounded by the output limit in encoded bytes,
    ** whatever the bytes are (a control byte takes six). */
    if (out && errs && max_output > 0) {
      size_t ofit = budget_json_fit(out, olen, max_output);
      size_t efit = budget_json_fit(errs, elen, max_output);
      out_cut |= ofit < olen;
      err_cut |= efit < elen;
      olen = ofit;
      elen = efit;
    }
    o = out && errs ? json_pack(
      "{s:s%, s:s%, s:i, s:f, s:s, s:s}",
      "stdout", out, olen, "stderr", errs, elen,
      "exit_code", res->exit_code,
      "duration", (double)(res->end.tv_sec - res->start.tv_sec) +
        (double)(res->end.tv_nsec - res->start.tv_nsec) / 1e9,
      "start_time", fapi_rfc3339(res->start, t0),
      "end_time", fapi_rfc3339(res->end, t1)) : NULL;
    if (out != res->out)
      free(out);
    if (errs != res->err)
      free(errs);
    if (o && (out_cut || err_cut)) {
      /* Say the cap in the response so that a client can tell. */
      json_object_set_new(o, "stdout_truncated", json_boolean(out_cut));
      json_object_set_new(o, "stderr_truncated", json_boolean(err_cut));
      json_object_set_new(o, "output_limit_bytes",
                          json_integer((json_int_t)(max_output)));
    }
  }
  if (o && res->timed_out)
    json_object_set_new(o, "timed_out", json_true());
  if (o && res->oom_killed)
    json_object_set_new(o, "oom_killed", json_true());
  return o;
}

/* {====================================================== live events */

/* A streamed execute ends with its exit event. */
static void on_stream_done(void *ud, const struct sbx_exec_result *res,
                           const struct sbx_ctx_result *ctx) {
  struct live_state *ls = ud;
  (void)ctx;
  sdk_script_exec_done(ls->r);
  ndjson_flush(&ls->nd);
  ndjson_event(ls->nd.s, live_exit_json(res));
  stream_end(ls->nd.s, 0);
}

/* Reserves what the buffered answer costs in the server-wide pool (its
** strings once in the JSON tree, once encoded in the answer); the request
** gives it back when it completes. 0 when the pool cannot hold it. */
static int take_answer_memory(struct req *r, json_t *o) {
  size_t need = 1024;
  const char *const keys[] = { "stdout", "stderr" };
  for (size_t i = 0; i < 2; i++) {
    json_t *v = json_object_get(o, keys[i]);
    size_t len = json_string_length(v);
    need += len + budget_json_size(json_string_value(v), len);
  }
  if (!budget_pool_take(need))
    return 0;
  r->reserved += need;
  return 1;
}


/* A buffered execute answers with PicoD's JSON when its command ends. */
static void on_buffered_done(void *ud, const struct sbx_exec_result *res,
                             const struct sbx_ctx_result *ctx) {
  struct live_state *ls = ud;
  json_t *o = res->pool_refused ? NULL : exec_result_json(res,
                                                          ls->max_output);
  (void)ctx;
  sdk_script_exec_done(ls->r);        /* gone before the answer is */
  if (res->pool_refused) {
    /* The command ran; its output did not fit in the server's memory
    ** budget, so no answer can say what it printed. */
    char msg[300];
    snprintf(msg, sizeof msg, "server busy: the memory budget of requests "
             "in flight (maxRequestMemory) could not hold the command's "
             "output; the command ran and exited with %d", res->exit_code);
    reply_json(ls->r, 503, json_pack("{s:s, s:i, s:i}", "error", msg,
                                     "code", 503, "exit_code",
                                     res->exit_code));
  } else if (o && !take_answer_memory(ls->r, o)) {
    json_decref(o);
    reply_json(ls->r, 503, json_pack(
      "{s:s, s:i}", "error", "server busy: the memory budget of requests "
      "in flight (maxRequestMemory) is spent; try again later",
      "code", 503));
  } else if (o) {
    reply_json(ls->r, 200, o);
  } else {
    reply_error(ls->r, FAM_PICOD, 500, "out of memory");
  }
  req_async_done(ls->r);
}

/* }====================================================== */

enum MHD_Result route_execute(struct req *r) {
  const struct ac_template *tpl = r->sess->tpl;
  json_error_t jerr;
  const char *why = NULL;
  json_t *body = r->body ? budget_json_load(r->srv->cfg, r->body, r->len,
                                            &jerr, &why) : NULL;
  char msg[512];
  struct exec_args a;
  struct sbx_exec_request er;
  struct sbx_task_events ev = { NULL, NULL, on_buffered_done };
  struct live_state *ls;
  struct sbx_task *task;
  struct ac_error err;
  enum MHD_Result ret = MHD_YES;
  int streamed = live_wants_stream(r);

  memset(&a, 0, sizeof a);
  if (body == NULL && r->len > 0) {
    ret = reply_error(r, FAM_PICOD, 400, "invalid JSON: %s", why);
    goto out;
  }
  if (!exec_args_parse(body, tpl, tpl->command_timeout_ns, &a, msg,
                       sizeof msg)) {
    ret = reply_error(r, FAM_PICOD, 400, "%s", msg);
    goto out;
  }
  if (!exec_args_request(r, &a, &er))
    goto out;
  if (!streamed) {
    if (!req_reserve(r, REQ_OUTPUT_ADMISSION)) {
      ret = reply_pool_busy(r, "another command's output");
      goto out;
    }
    er.pool = &req_output_pool;
  }
  if ((ls = live_state_new(r)) == NULL) {
    ret = reply_error(r, FAM_PICOD, 500, "out of memory");
    goto out;
  }
  if (streamed) {
    if (live_stream_open(r, ls) != 0)
      goto out;
    ev.output = live_on_output;
    ev.dropped = live_on_dropped;
    ev.done = on_stream_done;
  } else {
    r->async = 1;            /* the answer comes with the exit */
  }
  sdk_script_exec_start(r, a.argv);
  if (sbx_exec_start(r->sess->box, &er, &ev, ls, &task, &err) != AC_OK) {
    sdk_script_exec_done(r);
    r->async = 0;
    if (streamed) {
      /* The stream is open: the failure is its last event. */
      ndjson_event(ls->nd.s, json_pack("{s:s, s:s, s:i}", "type", "error",
                                       "error", err.msg, "code",
                                       (int)live_status(err.code)));
      stream_end(ls->nd.s, 0);
    } else {
      ret = reply_error(r, FAM_PICOD, live_status(err.code),
                        "Failed to run command: %s", err.msg);
    }
    goto out;
  }
  live_set_task(r, task);
out:
  exec_args_free(&a);
  json_decref(body);
  return ret;
}
