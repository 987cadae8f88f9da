/*
** mcp_tool_run.c -- run_code and execute_command.
**
** The result text is AgentCube's ({"session_id", "output": stdout}) with
** stderr, exit_code and duration added; a command that exits non-zero is
** a result with isError (the model reads why), never a protocol error.
** Paths listed in "images" are read back after the run and PNG files among
** them are returned as image content (a plot the code saved).
*/
#include "mcp_toolkit.h"

#include <stdlib.h>
#include <string.h>

#define IMAGE_MAX (8u << 20)
#define MAX_TIMEOUT 86400.0

static const char *const run_keys[] = {
  "language", "code", "session_id", "session_reuse", "timeout_seconds",
  "env", "images", "context_id", NULL
};
static const char *const exec_keys[] = {
  "command", "session_id", "session_reuse", "timeout_seconds", "env",
  "working_dir", "shell", "images", NULL
};

/* Image content for each PNG named in images; notes the others. */
static json_t *images(const struct mcp_tools_ctx *ctx, const char *id,
                      json_t *paths, json_t *payload) {
  json_t *extra = json_array(), *skipped = json_array(), *v;
  size_t i;

  json_array_foreach(paths, i, v) {
    struct ac_error err;
    char *data = NULL;
    size_t len = 0;
    const char *path = json_string_value(v);
    if (mcp_backend_read(ctx->backend, id, path, IMAGE_MAX, &data, &len,
                         &err) != AC_OK) {
      json_array_append_new(skipped, json_pack("{s:s, s:s}", "path", path,
                                               "reason", err.msg));
    } else if (!mcp_is_png(data, len)) {
      json_array_append_new(skipped, json_pack("{s:s, s:s}", "path", path,
                                               "reason", "not a PNG file"));
    } else {
      json_array_append_new(extra, json_pack("{s:s, s:o, s:s}", "type",
        "image", "data", mcp_base64(data, len), "mimeType", "image/png"));
    }
    free(data);
  }
  if (json_array_size(skipped) > 0)
    json_object_set_new(payload, "images_skipped", skipped);
  else
    json_decref(skipped);
  return extra;
}

static json_t *run(const struct mcp_tools_ctx *ctx, json_t *args,
                   struct mcp_exec *x) {
  struct mcp_argerr why;
  struct mcp_plan plan;
  struct ac_exec_result res;
  struct ac_error err;
  struct ac_kv *env = NULL;
  json_t *result, *payload, *extra = NULL;
  json_t *paths = json_object_get(args, "images"), *v;
  enum ac_code rc;
  size_t i;

  if (!mcp_arg_number(args, "timeout_seconds", 0.001, MAX_TIMEOUT,
                      &x->timeout, &why) ||
      !mcp_arg_env(args, "env", &env, &x->nenv, &why))
    return mcp_result_argerr(&why);
  if (paths != NULL && !json_is_null(paths)) {
    int ok = json_is_array(paths);
    json_array_foreach(paths, i, v)
      ok = ok && json_is_string(v);
    if (!ok) {
      free(env);
      return mcp_result(json_pack("{s:s, s:s}", "error",
        "invalid arguments: 'images' must be an array of paths", "code",
        "EINVAL"), NULL, 1);
    }
  }
  x->env = env;
  result = mcp_plan_begin(&plan, ctx, args);
  if (result != NULL) {
    free(env);
    return result;
  }
  do
    rc = mcp_backend_exec(ctx->backend, plan.id, x, ctx->cancel,
                          ctx->output, ctx->output_ud, &res, &err);
  while (rc != AC_OK && rc != AC_ECOMMAND && !*ctx->cancel &&
         mcp_plan_recover(&plan, &err) && (ac_exec_result_free(&res), 1));
  free(env);
  if (rc != AC_OK && rc != AC_ECOMMAND) {
    ac_exec_result_free(&res);
    result = mcp_result_error(&err, plan.id);
    mcp_plan_end(&plan, NULL);
    return result;
  }
  payload = json_pack("{s:o, s:o, s:i}", "output",
                      mcp_text(res.out, res.out_len), "stderr",
                      mcp_text(res.err, res.err_len), "exit_code",
                      res.exit_code);
  if (res.duration >= 0)
    json_object_set_new(payload, "duration", json_real(res.duration));
  if (res.exit_code == 124)
    json_object_set_new(payload, "timed_out", json_true());
  if (json_is_array(paths) && json_array_size(paths) > 0)
    extra = images(ctx, plan.id, paths, payload);
  ac_exec_result_free(&res);
  mcp_plan_end(&plan, payload);
  return mcp_result(payload, extra, rc == AC_ECOMMAND ||
                    json_integer_value(json_object_get(payload,
                                                       "exit_code")) != 0);
}

json_t *mcp_tool_run_code(const struct mcp_tools_ctx *ctx, json_t *args) {
  struct mcp_exec x = { 0 };
  struct mcp_argerr why;
  const char *context_id = NULL;
  if (!mcp_arg_known(args, run_keys, &why) ||
      !mcp_arg_string(args, "context_id", 0, &context_id, &why))
    return mcp_result_argerr(&why);
  if (context_id != NULL)
    return mcp_tool_run_in_context(ctx, args, context_id);
  if (!mcp_arg_string(args, "language", 1, &x.language, &why) ||
      !mcp_arg_string(args, "code", 1, &x.code, &why))
    return mcp_result_argerr(&why);
  x.code_len = strlen(x.code);
  return run(ctx, args, &x);
}

json_t *mcp_tool_execute_command(const struct mcp_tools_ctx *ctx,
                                 json_t *args) {
  struct mcp_exec x = { 0 };
  struct mcp_argerr why;

  if (!mcp_arg_known(args, exec_keys, &why) ||
      !mcp_arg_string(args, "command", 1, &x.command, &why) ||
      !mcp_arg_string(args, "working_dir", 0, &x.working_dir, &why) ||
      !mcp_arg_bool(args, "shell", &x.shell, &why))
    return mcp_result_argerr(&why);
  return run(ctx, args, &x);
}
