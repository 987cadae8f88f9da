/*
** mcp_tool_live.c -- tools on the local runtime's extensions: background
** processes (start, read output, stop, list), code contexts whose state
** survives between runs, and file operations (remove, mkdir, stat,
** rename). A server without them (an AgentCube cluster) answers with an
** error result saying so.
**
** These tools keep the session they create (session_reuse defaults to
** true): a background process or a context is useless in a sandbox that
** is deleted after the call.
*/
#include "mcp_toolkit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const spawn_keys[] = {
  "command", "shell", "env", "working_dir", "timeout_seconds", "session_id",
  "session_reuse", NULL
};
static const char *const proc_keys[] = {
  "process_id", "offset", "signal", "session_id", NULL
};
static const char *const list_keys[] = { "session_id", NULL };
static const char *const ctx_keys[] = {
  "language", "session_id", "session_reuse", NULL
};
static const char *const remove_keys[] = {
  "path", "recursive", "session_id", "session_reuse", NULL
};
static const char *const mkdir_keys[] = {
  "path", "parents", "session_id", "session_reuse", NULL
};
static const char *const stat_keys[] = {
  "path", "session_id", "session_reuse", NULL
};
static const char *const rename_keys[] = {
  "from", "to", "overwrite", "session_id", "session_reuse", NULL
};

/* Runs req in the call's session (kept unless session_reuse is false) and
** returns the answer under key, with session_id. */
static json_t *run_ext(const struct mcp_tools_ctx *ctx, json_t *args,
                       struct mcp_ext_req *req, const char *key) {
  struct mcp_plan plan;
  struct ac_error err;
  json_t *answer, *payload, *res;

  if ((res = mcp_plan_begin(&plan, ctx, args)) != NULL)
    return res;
  if (!json_is_boolean(json_object_get(args, "session_reuse")))
    plan.reuse = 1;
  if (mcp_backend_ext(ctx->backend, plan.id, req, ctx->cancel, NULL, NULL,
                      &answer, &err) != AC_OK) {
    res = mcp_result_error(&err, plan.id);
    mcp_plan_end(&plan, NULL);
    return res;
  }
  if (key != NULL) {
    payload = json_object();
    json_object_set_new(payload, key, answer);
  } else if (json_is_object(answer)) {
    payload = answer;
  } else {
    payload = json_pack("{s:o}", "result", answer);
  }
  mcp_plan_end(&plan, payload);
  return mcp_result(payload, NULL, 0);
}

/* A process id: the extension's ids are integers; accept their text. */
static int process_id(json_t *args, char *buf, size_t size,
                      struct mcp_argerr *why) {
  json_t *v = json_object_get(args, "process_id");
  if (json_is_integer(v))
    snprintf(buf, size, "%lld", (long long)json_integer_value(v));
  else if (json_is_string(v) && *json_string_value(v))
    snprintf(buf, size, "%s", json_string_value(v));
  else {
    snprintf(why->msg, sizeof why->msg, "invalid arguments: 'process_id' "
             "is required (the id from start_process)");
    return 0;
  }
  return 1;
}

static int need_session(json_t *args, struct mcp_argerr *why) {
  const char *sid = NULL;
  if (!mcp_arg_string(args, "session_id", 1, &sid, why))
    return 0;
  return 1;
}

json_t *mcp_tool_start_process(const struct mcp_tools_ctx *ctx,
                               json_t *args) {
  const char *command, *workdir = NULL;
  struct mcp_argerr why;
  struct ac_error err;
  struct mcp_ext_req req = { MCP_PROC_SPAWN, NULL, NULL, NULL, 0, 0 };
  int shell = 0;
  double timeout = 0;
  json_t *argv, *env = json_object_get(args, "env"), *r;
  struct ac_kv *kv;
  size_t nkv;
  char dur[64];

  if (!mcp_arg_known(args, spawn_keys, &why) ||
      !mcp_arg_string(args, "command", 1, &command, &why) ||
      !mcp_arg_bool(args, "shell", &shell, &why) ||
      !mcp_arg_string(args, "working_dir", 0, &workdir, &why) ||
      !mcp_arg_number(args, "timeout_seconds", 0.001, 864000, &timeout,
                      &why) ||
      !mcp_arg_env(args, "env", &kv, &nkv, &why))
    return mcp_result_argerr(&why);
  free(kv);
  if (mcp_backend_argv(command, shell, &argv, &err) != AC_OK)
    return mcp_result_error(&err, NULL);
  req.body = json_pack("{s:o}", "command", argv);
  if (json_is_object(env))
    json_object_set(req.body, "env", env);
  if (workdir != NULL)
    json_object_set_new(req.body, "working_dir", json_string(workdir));
  if (timeout > 0) {
    snprintf(dur, sizeof dur, "%gs", timeout);
    json_object_set_new(req.body, "timeout", json_string(dur));
  }
  r = run_ext(ctx, args, &req, "process");
  json_decref(req.body);
  return r;
}

json_t *mcp_tool_read_process_output(const struct mcp_tools_ctx *ctx,
                                     json_t *args) {
  struct mcp_argerr why;
  struct mcp_ext_req req = { MCP_PROC_OUTPUT, NULL, NULL, NULL, 0, 0 };
  double offset = 0;
  char id[64];

  if (!mcp_arg_known(args, proc_keys, &why) || !need_session(args, &why) ||
      !process_id(args, id, sizeof id, &why) ||
      !mcp_arg_number(args, "offset", 0, 9e15, &offset, &why))
    return mcp_result_argerr(&why);
  req.id = id;
  req.offset = (long long)offset;
  return run_ext(ctx, args, &req, NULL);
}

json_t *mcp_tool_stop_process(const struct mcp_tools_ctx *ctx,
                              json_t *args) {
  const char *sig = "TERM";
  struct mcp_argerr why;
  struct mcp_ext_req req = { MCP_PROC_SIGNAL, NULL, NULL, NULL, 0, 0 };
  char id[64];
  json_t *r;

  if (!mcp_arg_known(args, proc_keys, &why) || !need_session(args, &why) ||
      !process_id(args, id, sizeof id, &why) ||
      !mcp_arg_string(args, "signal", 0, &sig, &why))
    return mcp_result_argerr(&why);
  req.id = id;
  req.body = json_pack("{s:s}", "signal", sig);
  r = run_ext(ctx, args, &req, "process");
  json_decref(req.body);
  return r;
}

json_t *mcp_tool_list_processes(const struct mcp_tools_ctx *ctx,
                                json_t *args) {
  struct mcp_argerr why;
  struct mcp_ext_req req = { MCP_PROC_LIST, NULL, NULL, NULL, 0, 0 };
  if (!mcp_arg_known(args, list_keys, &why) || !need_session(args, &why))
    return mcp_result_argerr(&why);
  return run_ext(ctx, args, &req, NULL);
}

json_t *mcp_tool_create_context(const struct mcp_tools_ctx *ctx,
                                json_t *args) {
  const char *lang = "python";
  struct mcp_argerr why;
  struct mcp_ext_req req = { MCP_CTX_CREATE, NULL, NULL, NULL, 0, 0 };
  json_t *r;
  if (!mcp_arg_known(args, ctx_keys, &why) ||
      !mcp_arg_string(args, "language", 0, &lang, &why))
    return mcp_result_argerr(&why);
  req.body = json_pack("{s:s}", "language", lang);
  r = run_ext(ctx, args, &req, "context");
  json_decref(req.body);
  if (r != NULL) {
    /* the id under the name run_code takes */
    json_t *sc = json_object_get(r, "structuredContent");
    json_t *id = json_object_get(json_object_get(sc, "context"), "id");
    if (json_is_string(id)) {
      json_t *payload = json_deep_copy(sc);
      json_object_set(payload, "context_id", id);
      json_decref(r);
      r = mcp_result(payload, NULL, 0);
    }
  }
  return r;
}

/* A streamed context run's result event does not repeat the output that
** came as chunks: keep the chunks (and pass them on as progress). */
struct collected {
  const struct mcp_tools_ctx *ctx;
  char *buf[2];
  size_t len[2];
};

static void collect(void *ud, int is_stderr, const char *data, size_t len) {
  struct collected *c = ud;
  char *grown = realloc(c->buf[is_stderr], c->len[is_stderr] + len + 1);
  if (grown != NULL) {
    memcpy(grown + c->len[is_stderr], data, len);
    c->len[is_stderr] += len;
    grown[c->len[is_stderr]] = '\0';
    c->buf[is_stderr] = grown;
  }
  c->ctx->output(c->ctx->output_ud, is_stderr, data, len);
}

/* run_code with context_id: the code runs in that context's interpreter,
** whose variables, imports and functions persist between runs. */
json_t *mcp_tool_run_in_context(const struct mcp_tools_ctx *ctx,
                                json_t *args, const char *context_id) {
  const char *code;
  struct mcp_argerr why;
  struct ac_error err;
  struct mcp_ext_req req = { MCP_CTX_RUN, NULL, NULL, NULL, 0, 0 };
  double timeout = 0;
  const char *sid;
  json_t *answer, *payload, *error;
  char dur[64];
  struct collected got = { ctx, { NULL, NULL }, { 0, 0 } };

  if (!mcp_arg_string(args, "code", 1, &code, &why) ||
      !mcp_arg_string(args, "session_id", 1, &sid, &why) ||
      !mcp_arg_number(args, "timeout_seconds", 0.001, 86400, &timeout,
                      &why))
    return mcp_result_argerr(&why);
  req.id = context_id;
  req.body = json_pack("{s:s}", "code", code);
  if (timeout > 0) {
    snprintf(dur, sizeof dur, "%gs", timeout);
    json_object_set_new(req.body, "timeout", json_string(dur));
    req.timeout = timeout;
  }
  mcp_backend_touch(ctx->backend, ctx->owner, sid);
  if (mcp_backend_ext(ctx->backend, sid, &req, ctx->cancel,
                      ctx->output ? collect : NULL, &got, &answer,
                      &err) != AC_OK) {
    json_decref(req.body);
    free(got.buf[0]);
    free(got.buf[1]);
    return mcp_result_error(&err, sid);
  }
  json_decref(req.body);
  for (int i = 0; i < 2; i++) {
    const char *key = i ? "stderr" : "stdout";
    if (!json_is_string(json_object_get(answer, key)))
      json_object_set_new(answer, key, mcp_text(got.buf[i], got.len[i]));
    free(got.buf[i]);
  }
  /* the shape of run_code's other results, plus value and error */
  payload = json_pack("{s:s, s:s, s:O*, s:O*, s:O*, s:O*}", "session_id", sid,
                      "context_id", context_id,
                      "output", json_object_get(answer, "stdout"),
                      "stderr", json_object_get(answer, "stderr"),
                      "value", json_object_get(answer, "value"),
                      "duration", json_object_get(answer, "duration"));
  error = json_object_get(answer, "error");
  if (json_is_object(error))
    json_object_set(payload, "error", error);
  if (json_is_true(json_object_get(answer, "timed_out")))
    json_object_set_new(payload, "timed_out", json_true());
  json_decref(answer);
  return mcp_result(payload, NULL, json_is_object(error));
}

json_t *mcp_tool_remove_path(const struct mcp_tools_ctx *ctx, json_t *args) {
  const char *path;
  int recursive = 0;
  struct mcp_argerr why;
  struct mcp_ext_req req = { MCP_FS_REMOVE, NULL, NULL, NULL, 0, 0 };
  json_t *r;
  if (!mcp_arg_known(args, remove_keys, &why) ||
      !mcp_arg_string(args, "path", 1, &path, &why) ||
      !mcp_arg_bool(args, "recursive", &recursive, &why))
    return mcp_result_argerr(&why);
  req.body = json_pack("{s:s, s:b}", "path", path, "recursive", recursive);
  r = run_ext(ctx, args, &req, NULL);
  json_decref(req.body);
  return r;
}

json_t *mcp_tool_make_directory(const struct mcp_tools_ctx *ctx,
                                json_t *args) {
  const char *path;
  int parents = 1;
  struct mcp_argerr why;
  struct mcp_ext_req req = { MCP_FS_MKDIR, NULL, NULL, NULL, 0, 0 };
  json_t *r;
  if (!mcp_arg_known(args, mkdir_keys, &why) ||
      !mcp_arg_string(args, "path", 1, &path, &why) ||
      !mcp_arg_bool(args, "parents", &parents, &why))
    return mcp_result_argerr(&why);
  req.body = json_pack("{s:s, s:b}", "path", path, "parents", parents);
  r = run_ext(ctx, args, &req, "entry");
  json_decref(req.body);
  return r;
}

json_t *mcp_tool_stat_path(const struct mcp_tools_ctx *ctx, json_t *args) {
  const char *path;
  struct mcp_argerr why;
  struct mcp_ext_req req = { MCP_FS_STAT, NULL, NULL, NULL, 0, 0 };
  if (!mcp_arg_known(args, stat_keys, &why) ||
      !mcp_arg_string(args, "path", 1, &path, &why))
    return mcp_result_argerr(&why);
  req.path = path;
  return run_ext(ctx, args, &req, "entry");
}

json_t *mcp_tool_rename_path(const struct mcp_tools_ctx *ctx, json_t *args) {
  const char *from, *to;
  int overwrite = 0;
  struct mcp_argerr why;
  struct mcp_ext_req req = { MCP_FS_RENAME, NULL, NULL, NULL, 0, 0 };
  json_t *r;
  if (!mcp_arg_known(args, rename_keys, &why) ||
      !mcp_arg_string(args, "from", 1, &from, &why) ||
      !mcp_arg_string(args, "to", 1, &to, &why) ||
      !mcp_arg_bool(args, "overwrite", &overwrite, &why))
    return mcp_result_argerr(&why);
  req.body = json_pack("{s:s, s:s, s:b}", "from", from, "to", to,
                       "overwrite", overwrite);
  r = run_ext(ctx, args, &req, "entry");
  json_decref(req.body);
  return r;
}
