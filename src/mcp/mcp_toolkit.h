/*
** mcp_toolkit.h -- what every tool uses: argument checks, results as MCP
** content, and the session rules shared with AgentCube's own MCP server
** (session_id / session_reuse, one re-creation of an expired session).
*/
#ifndef AGENTCUBE_MCP_TOOLKIT_H
#define AGENTCUBE_MCP_TOOLKIT_H

#include "mcp.h"

/* ---- arguments ---- */

/* A failed argument check: the message for the model. */
struct mcp_argerr {
  char msg[256];
};

/* Each returns 0 and fills why when the argument has the wrong type (or
** is missing while required); absent optional arguments keep *out. */
int mcp_arg_string(json_t *args, const char *key, int required,
                   const char **out, struct mcp_argerr *why);
int mcp_arg_bool(json_t *args, const char *key, int *out,
                 struct mcp_argerr *why);
int mcp_arg_number(json_t *args, const char *key, double min, double max,
                   double *out, struct mcp_argerr *why);
/* env: an object of strings; *kv (malloc'd, borrowed strings) and *n. */
int mcp_arg_env(json_t *args, const char *key, struct ac_kv **kv,
                size_t *n, struct mcp_argerr *why);
/* Rejects keys not listed (NULL-terminated), naming the valid ones. */
int mcp_arg_known(json_t *args, const char *const *keys,
                  struct mcp_argerr *why);

/* ---- results ---- */

/* A JSON string from bytes that may not be UTF-8 (invalid sequences
** become U+FFFD). */
json_t *mcp_text(const char *s, size_t n);
/* Base64 of bytes, as a JSON string. */
json_t *mcp_base64(const void *data, size_t n);
/* Decodes base64 text; *out malloc'd. Returns 0 on malformed input. */
int mcp_unbase64(const char *text, unsigned char **out, size_t *n);
/* Whether data is a PNG image. */
int mcp_is_png(const void *data, size_t n);

/* A CallToolResult: a text block with payload as JSON (what AgentCube's
** server returns), the same payload as structuredContent, then extra
** content blocks (images; may be NULL), and isError. Steals payload and
** extra. */
json_t *mcp_result(json_t *payload, json_t *extra, int is_error);
/* An error result {"error": message, "code": "EXXX"} (+ session_id). */
json_t *mcp_result_error(const struct ac_error *err, const char *session_id);
json_t *mcp_result_argerr(const struct mcp_argerr *why);

/* ---- sessions ---- */

/* One call's session: the given session_id or a new one, the reuse rule,
** and what the result must say about recovery. */
struct mcp_plan {
  const struct mcp_tools_ctx *ctx;
  char *id;                   /* the session the operation uses */
  int given, reuse;
  char *previous;             /* set when an expired session was replaced */
};

/* Reads session_id / session_reuse and opens the session (creating one
** when none was given). On failure returns an error result. */
json_t *mcp_plan_begin(struct mcp_plan *p, const struct mcp_tools_ctx *ctx,
                       json_t *args);
/* After an operation failed with err: when the given session is gone
** (410, or the Router's 404 for an unknown session; not a 404 for a
** missing file), replaces it once with a new one and returns 1 (run the
** operation again); 0 otherwise. */
int mcp_plan_recover(struct mcp_plan *p, const struct ac_error *err);
/* Adds session_id (and the recovery fields) to payload; ends the session
** unless it is reused; frees the plan. */
void mcp_plan_end(struct mcp_plan *p, json_t *payload);

/* ---- the tools ---- */

json_t *mcp_tool_run_code(const struct mcp_tools_ctx *ctx, json_t *args);
json_t *mcp_tool_execute_command(const struct mcp_tools_ctx *ctx,
                                 json_t *args);
json_t *mcp_tool_write_file(const struct mcp_tools_ctx *ctx, json_t *args);
json_t *mcp_tool_read_file(const struct mcp_tools_ctx *ctx, json_t *args);
json_t *mcp_tool_list_files(const struct mcp_tools_ctx *ctx, json_t *args);
json_t *mcp_tool_upload_file(const struct mcp_tools_ctx *ctx, json_t *args);
json_t *mcp_tool_download_file(const struct mcp_tools_ctx *ctx,
                               json_t *args);
json_t *mcp_tool_create_session(const struct mcp_tools_ctx *ctx,
                                json_t *args);
json_t *mcp_tool_stop_session(const struct mcp_tools_ctx *ctx, json_t *args);
json_t *mcp_tool_list_sessions(const struct mcp_tools_ctx *ctx,
                               json_t *args);

json_t *mcp_tool_start_process(const struct mcp_tools_ctx *ctx,
                               json_t *args);
json_t *mcp_tool_read_process_output(const struct mcp_tools_ctx *ctx,
                                     json_t *args);
json_t *mcp_tool_stop_process(const struct mcp_tools_ctx *ctx, json_t *args);
json_t *mcp_tool_list_processes(const struct mcp_tools_ctx *ctx,
                                json_t *args);
json_t *mcp_tool_create_context(const struct mcp_tools_ctx *ctx,
                                json_t *args);
json_t *mcp_tool_run_in_context(const struct mcp_tools_ctx *ctx,
                                json_t *args, const char *context_id);
json_t *mcp_tool_remove_path(const struct mcp_tools_ctx *ctx, json_t *args);
json_t *mcp_tool_make_directory(const struct mcp_tools_ctx *ctx,
                                json_t *args);
json_t *mcp_tool_stat_path(const struct mcp_tools_ctx *ctx, json_t *args);
json_t *mcp_tool_rename_path(const struct mcp_tools_ctx *ctx, json_t *args);

#endif
