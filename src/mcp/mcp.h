/*
** mcp.h -- `agentcube mcp`: the sandbox as Model Context Protocol tools.
**
** Units (each one purpose):
**   mcp_main.c       the command line, then one transport
**   mcp_stdio.c      newline-delimited JSON-RPC on stdin/stdout
**   mcp_http.c       Streamable HTTP (libmicrohttpd): POST/DELETE /mcp
**   mcp_conn.c       one client connection: lifecycle, dispatch, in-flight
**                    calls, cancellation, progress
**   mcp_rpc.c        JSON-RPC 2.0 message checks and message builders
**   mcp_tools.c      the tool table: names, descriptions, input schemas
**   mcp_toolkit.c    argument checks, results as MCP content, session rules
**   mcp_tool_run.c   run_code, execute_command
**   mcp_tool_files.c sandbox files and host files
**   mcp_tool_sessions.c  create_session, stop_session, list_sessions
**   mcp_tool_live.c  processes, contexts, file operations (extensions)
**   mcp_backend.c    every libagentcube call (sessions, commands, files,
**                    extensions)
**   mcp_hostfiles.c  host paths confined to --files-dir
**
** Threads: a transport feeds messages to a connection from one thread;
** tools/call runs on its own thread so that cancellation and further
** requests are read while a command runs. A sink serialises its writes.
*/
#ifndef AGENTCUBE_MCP_H
#define AGENTCUBE_MCP_H

#include "agentcube.h"

#include <signal.h>
#include <stddef.h>

#include <jansson.h>

/* The newest protocol revision we speak first; the others we accept. */
#define MCP_PROTOCOL_LATEST "2025-11-25"
extern const char *const mcp_protocol_versions[];

/* JSON-RPC 2.0 error codes. */
enum {
  MCP_PARSE_ERROR = -32700,
  MCP_INVALID_REQUEST = -32600,
  MCP_METHOD_NOT_FOUND = -32601,
  MCP_INVALID_PARAMS = -32602,
  MCP_INTERNAL_ERROR = -32603
};

struct mcp_options {
  const char *transport;      /* "stdio" (default) or "http" */
  const char *listen;         /* http: ADDR:PORT, default 127.0.0.1:8000 */
  const char *template_name;  /* the CodeInterpreter name */
  const char *ns;             /* its namespace */
  long long ttl;              /* seconds, for sessions we create */
  const char *files_dir;      /* NULL: no host file tools */
  int keep;                   /* keep our sessions at disconnect */
  long idle_timeout;          /* http: seconds before an MCP session ends */
  int verbose;
};

/* ---- rpc: message checks and builders (mcp_rpc.c) ---- */

/* What a parsed message is. */
enum mcp_kind { MCP_REQUEST, MCP_NOTIFICATION, MCP_RESPONSE, MCP_BAD };

/* Classifies msg. For MCP_BAD, *code and *why say which error to answer
** (with id, when one could be read, in *id: borrowed). */
enum mcp_kind mcp_rpc_classify(json_t *msg, json_t **id, int *code,
                               const char **why);

/* {"jsonrpc":"2.0","id":id,"result":result}; steals result. */
json_t *mcp_rpc_result(json_t *id, json_t *result);
/* {"jsonrpc":"2.0","id":id|null,"error":{code,message}}. */
json_t *mcp_rpc_error(json_t *id, int code, const char *message);
/* {"jsonrpc":"2.0","method":m,"params":params}; steals params. */
json_t *mcp_rpc_notification(const char *method, json_t *params);

/* ---- sinks: where a connection's messages go ---- */

/* send: one complete message (compact JSON, no newline). final: it is
** the response to the request the sink was given for. Thread-safe. */
struct mcp_sink {
  void (*send)(struct mcp_sink *s, const char *text, int final);
  void (*ref)(struct mcp_sink *s);
  void (*unref)(struct mcp_sink *s);
};

/* ---- backend (mcp_backend.c) ---- */

struct mcp_backend;

/* The backend resolves its endpoint on first use (the local runtime,
** started when needed, or WORKLOAD_MANAGER_URL/ROUTER_URL). */
enum ac_code mcp_backend_new(const struct mcp_options *o,
                             struct mcp_backend **out, struct ac_error *err);
/* Frees local memory (every connection has released its sessions). */
void mcp_backend_free(struct mcp_backend *b);

/* A flag that aborts the call in progress when set (cancellation). */
typedef volatile sig_atomic_t mcp_cancel_flag;

/* Creates a session owned by owner (a connection); *id malloc'd. A
** pinned session (create_session) stays until stop_session or the end of
** the connection even when a call omits session_reuse. */
enum ac_code mcp_backend_create(struct mcp_backend *b, const void *owner,
                                int pinned, mcp_cancel_flag *cancel,
                                char **id, struct ac_error *err);
int mcp_backend_pinned(struct mcp_backend *b, const char *id);
/* Deletes a session (whoever owns it). */
enum ac_code mcp_backend_stop(struct mcp_backend *b, const char *id,
                              struct ac_error *err);
/* Deletes every session owner created, unless the server keeps them.
** Returns how many were deleted. */
int mcp_backend_release(struct mcp_backend *b, const void *owner);
/* The sessions this server knows: [{session_id, created_by_mcp, ...}]. */
json_t *mcp_backend_sessions(struct mcp_backend *b, const void *owner);

struct mcp_exec {
  const char *command;        /* a command line (shlex, or bash -c), or */
  int shell;                  /* run command with bash -c */
  const char *language;       /* with code: run_code */
  const char *code;
  size_t code_len;
  double timeout;             /* seconds, 0: default */
  const struct ac_kv *env;
  size_t nenv;
  const char *working_dir;
};

/* A chunk of a running command's output (is_stderr: 0 or 1). */
typedef void (*mcp_output_fn)(void *ud, int is_stderr, const char *data,
                              size_t len);

/* Runs a command or code; with output non-NULL the output also arrives
** chunk by chunk while it runs (streamed where the server can). */
enum ac_code mcp_backend_exec(struct mcp_backend *b, const char *id,
                              const struct mcp_exec *x,
                              mcp_cancel_flag *cancel, mcp_output_fn output,
                              void *output_ud, struct ac_exec_result *res,
                              struct ac_error *err);
enum ac_code mcp_backend_write(struct mcp_backend *b, const char *id,
                               const char *path, const void *data,
                               size_t len, struct ac_error *err);
enum ac_code mcp_backend_read(struct mcp_backend *b, const char *id,
                              const char *path, size_t max, char **data,
                              size_t *len, struct ac_error *err);
/* *files: the server's "files" array. */
enum ac_code mcp_backend_list(struct mcp_backend *b, const char *id,
                              const char *path, json_t **files,
                              struct ac_error *err);
enum ac_code mcp_backend_upload(struct mcp_backend *b, const char *id,
                                const char *local, const char *remote,
                                struct ac_error *err);
enum ac_code mcp_backend_download(struct mcp_backend *b, const char *id,
                                  const char *remote, const char *local,
                                  struct ac_error *err);
/* The local runtime's extensions (docs/extensions.md): background
** processes, code contexts, file operations. A server without them (an
** AgentCube cluster) fails with AC_EUNSUPPORTED. */
enum mcp_ext {
  MCP_PROC_SPAWN, MCP_PROC_LIST, MCP_PROC_OUTPUT, MCP_PROC_SIGNAL,
  MCP_CTX_CREATE, MCP_CTX_RUN,
  MCP_FS_REMOVE, MCP_FS_MKDIR, MCP_FS_STAT, MCP_FS_RENAME
};
struct mcp_ext_req {
  enum mcp_ext op;
  const char *id;             /* process or context id */
  const char *path;           /* FS_STAT */
  json_t *body;               /* the request's JSON body (borrowed) */
  long long offset;           /* PROC_OUTPUT */
  double timeout;             /* seconds the answer may take; 0: default */
};
/* *answer: the server's JSON answer (a new reference). CTX_RUN relays
** output as it comes when output is set. */
enum ac_code mcp_backend_ext(struct mcp_backend *b, const char *id,
                             const struct mcp_ext_req *req,
                             mcp_cancel_flag *cancel, mcp_output_fn output,
                             void *output_ud, json_t **answer,
                             struct ac_error *err);

/* A command line as a JSON array of words (split like shell words; with
** shell, ["bash", "-c", line]). */
enum ac_code mcp_backend_argv(const char *line, int shell, json_t **argv,
                              struct ac_error *err);

/* Remembers id as used by owner (a session the client passed in). */
void mcp_backend_touch(struct mcp_backend *b, const void *owner,
                       const char *id);
/* Aborts the request running under cancel (after *cancel was set). */
void mcp_backend_cancel(struct mcp_backend *b, mcp_cancel_flag *cancel);

/* ---- host files (mcp_hostfiles.c) ---- */

struct mcp_hostdir;
/* Opens DIR as the only place host files may be read or written. */
enum ac_code mcp_hostdir_open(const char *dir, struct mcp_hostdir **out,
                              struct ac_error *err);
void mcp_hostdir_close(struct mcp_hostdir *d);
/* Opens an existing regular file under the directory for reading (an
** absolute path must lie inside the directory; no symlinks, no ".."
** out). Returns an fd or -1 with err set. */
int mcp_hostdir_open_read(struct mcp_hostdir *d, const char *path,
                          struct ac_error *err);
/* Opens (creating) the parent directory of path under the directory and
** returns its fd (O_PATH), with the final name in name (no slash). */
int mcp_hostdir_open_parent(struct mcp_hostdir *d, const char *path,
                            char *name, size_t size, struct ac_error *err);

/* ---- tools (mcp_tools.c) ---- */

struct mcp_tools_ctx {
  struct mcp_backend *backend;
  struct mcp_hostdir *hostdir;    /* NULL: host file tools are off */
  const void *owner;              /* the connection */
  mcp_cancel_flag *cancel;
  mcp_output_fn output;           /* NULL: the client wants no progress */
  void *output_ud;
};

/* The tools/list result's "tools" array (a new reference). */
json_t *mcp_tools_list(int host_files);
/* Whether name is a tool. */
int mcp_tools_exists(const char *name);
/* Runs a tool: returns a CallToolResult (isError for failures the model
** should read). Never NULL. */
json_t *mcp_tools_call(const struct mcp_tools_ctx *ctx, const char *name,
                       json_t *args);

/* ---- connection (mcp_conn.c) ---- */

struct mcp_conn;

struct mcp_conn *mcp_conn_new(struct mcp_backend *b,
                              struct mcp_hostdir *hostdir);
/* Handles one message text. Responses and notifications related to it go
** to sink (kept referenced while a call runs). Returns 1 when the message
** was a request (a final message will reach the sink), 0 otherwise. */
int mcp_conn_handle(struct mcp_conn *c, const char *text, size_t len,
                    struct mcp_sink *sink);
/* The negotiated version, NULL before initialize. */
const char *mcp_conn_version(struct mcp_conn *c);
/* Cancels every call in flight, waits for them, releases the sessions the
** connection created (unless --keep) and frees it. */
void mcp_conn_close(struct mcp_conn *c);

/* ---- transports ---- */
int mcp_stdio_run(const struct mcp_options *o, struct mcp_backend *b,
                  struct mcp_hostdir *hostdir);
int mcp_http_run(const struct mcp_options *o, struct mcp_backend *b,
                 struct mcp_hostdir *hostdir);

/* The `agentcube mcp` subcommand; argv[0] is "mcp". */
int ac_mcp_main(int argc, char **argv);

#endif
