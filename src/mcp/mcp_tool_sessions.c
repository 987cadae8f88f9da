/*
** mcp_tool_sessions.c -- create_session, stop_session, list_sessions.
*/
#include "mcp_toolkit.h"

#include <stdlib.h>

static const char *const none[] = { NULL };
static const char *const stop_keys[] = { "session_id", NULL };

json_t *mcp_tool_create_session(const struct mcp_tools_ctx *ctx,
                                json_t *args) {
  struct mcp_argerr why;
  struct ac_error err;
  char *id;
  json_t *r;

  if (!mcp_arg_known(args, none, &why))
    return mcp_result_argerr(&why);
  if (mcp_backend_create(ctx->backend, ctx->owner, 1, NULL, &id,
                         &err) != AC_OK)
    return mcp_result_error(&err, NULL);
  r = mcp_result(json_pack("{s:s, s:s}", "session_id", id, "status",
                           "created"), NULL, 0);
  free(id);
  return r;
}

json_t *mcp_tool_stop_session(const struct mcp_tools_ctx *ctx,
                              json_t *args) {
  const char *id;
  struct mcp_argerr why;
  struct ac_error err;

  if (!mcp_arg_known(args, stop_keys, &why) ||
      !mcp_arg_string(args, "session_id", 1, &id, &why))
    return mcp_result_argerr(&why);
  if (mcp_backend_stop(ctx->backend, id, &err) != AC_OK)
    return mcp_result_error(&err, id);
  return mcp_result(json_pack("{s:s, s:s}", "session_id", id, "status",
                              "stopped"), NULL, 0);
}

json_t *mcp_tool_list_sessions(const struct mcp_tools_ctx *ctx,
                               json_t *args) {
  struct mcp_argerr why;
  if (!mcp_arg_known(args, none, &why))
    return mcp_result_argerr(&why);
  return mcp_result(json_pack("{s:o}", "sessions",
                              mcp_backend_sessions(ctx->backend, ctx->owner)),
                    NULL, 0);
}
