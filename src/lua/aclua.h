/*
** aclua.h -- what the files of the Lua binding (module agentcube.core)
** share: metatable names, the session and reaper structures, the auth
** callback state, error objects, scratch boxes and the JSON converter.
**
** The binding's rules for native resources: userdata are created closed and
** then acquire their native resource; __gc and __close never raise; __gc
** never does network I/O (owned sessions are queued on the reaper and
** deleted at the next module call, agentcube.flush() or lua_close); errors
** are raised only from clean points, after every native resource without a
** Lua owner has been released; no lua_State is kept in a C structure
** beyond the call that set it. Only luaopen_agentcube_core is exported.
*/
#ifndef AGENTCUBE_ACLUA_H
#define AGENTCUBE_ACLUA_H

#include "agentcube.h"

#include <lauxlib.h>
#include <lua.h>

#define ACLUA_API __attribute__((visibility("hidden")))

#define AC_SESSION_MT  "agentcube.Session"
#define AC_ERROR_MT    "agentcube.Error"
#define AC_AUTH_MT     "agentcube.Auth"
#define AC_BOX_MT      "agentcube.box"
#define AC_CLIENT_MT   "agentcube.client"
#define AC_REAPER_MT   "agentcube.reaper"
#define AC_REAPER_KEY  "agentcube.reaper.sentinel"   /* registry */

/* How long one deferred DELETE may take at a safe point and when the Lua
** state closes, and after how many consecutive transport failures the rest
** of the queue is abandoned (deferred deletes are never retried: a server
** that is gone must not stall every later call, nor a host's exit). */
#define ACLUA_DRAIN_DELETE_MS  10000
#define ACLUA_CLOSE_DELETE_MS  2000
#define ACLUA_DRAIN_MAX_FAILS  3

/* ---------------------------------------------------------------------- */
/* Auth                                                                    */

/* State of a Lua auth provider (a function, or an object with get_token).
** Owned by the ac_auth made by aclua_auth_resolve (freed through its
** free_ud). L is set by the caller around each library call that may ask
** for a token, and NULL otherwise, so the provider can only run on the
** thread (coroutine) that is making the call; fn_idx is where the
** provider sits on that stack and err_idx the slot that receives an error
** it raised (the binding raises it again once the call has returned).
** Clients share providers, and calls nest (a provider may use another
** client), so each call saves the previous state and restores it. */
struct aclua_authcb {
  lua_State *L;
  int fn_idx;
  int err_idx;
};

/* Resolves the `auth` option at index idx: an agentcube.Auth userdata
** gives its provider (*cb NULL); a function or a table with get_token
** gives a new callback provider (*cb its state). *out is owned by the
** caller (ac_auth_unref). Never raises. */
ACLUA_API enum ac_code aclua_auth_resolve(lua_State *L, int idx,
                                          ac_auth **out,
                                          struct aclua_authcb **cb,
                                          struct ac_error *err);

/* Whether the value at idx can serve as an auth provider. */
ACLUA_API int aclua_auth_ok(lua_State *L, int idx);

ACLUA_API void aclua_auth_open(lua_State *L);   /* [-0, +0] metatable */
ACLUA_API int aclua_token_auth(lua_State *L);
ACLUA_API int aclua_service_account_auth(lua_State *L);

/* ---------------------------------------------------------------------- */
/* Shared clients (clients.c)                                              */

/* A cached ac_client (connection pool) for one configuration. */
struct aclua_client;

ACLUA_API void aclua_clients_open(lua_State *L);  /* [-0, +0] */

/* The client for cfg (whose auth field is ignored: the auth value at
** auth_idx, when not 0, is resolved instead), from the cache or made now;
** its holder is pushed. Raises agentcube.Error when the client cannot be
** made; holds nothing native when it does. [-0, +1] */
ACLUA_API struct aclua_client *aclua_client_get(lua_State *L,
                                  const struct ac_client_config *cfg,
                                  int auth_idx);

/* Borrowed while the holder (or a session made from the client) lives. */
ACLUA_API ac_client *aclua_client_ptr(const struct aclua_client *h);
ACLUA_API struct aclua_authcb *aclua_client_cb(const struct aclua_client *h);

/* ---------------------------------------------------------------------- */
/* Sessions and the reaper                                                 */

/* The native half of a session: malloc'd, owned by the session userdata
** until __gc hands it to the reaper (an owned session still to delete).
** Everything here stays valid without the userdata. */
struct aclua_native {
  ac_session *s;                      /* owned */
  struct aclua_authcb *cb;            /* borrowed from s's client, or NULL */
  int provider_ref;                   /* registry ref of a Lua provider */
  int busy;                           /* a blocking call is running */
  const char *busy_op;                /* its method name, for messages */
  int jobs;                           /* agentcube.async jobs running on it */
  const char *job_op;                 /* the latest one's op name */
  int close_pending;                  /* stop()/__close during those */
  struct aclua_native *next;          /* reaper queue link */
};

/* aclua_native.close_pending: what to do once the session is free. */
enum aclua_close { ACLUA_CLOSE_NONE, ACLUA_CLOSE_STOP, ACLUA_CLOSE_SCOPE };

/* The sentinel userdata kept in the registry. Created by the first
** luaopen, before any session, so lua_close finalizes it after every
** session (finalizers run in reverse order of marking). */
struct aclua_reaper {
  struct aclua_native *head;          /* sessions collected while owned */
  size_t queued;
  int draining;                       /* drain in progress: no nesting */
  int closed;                         /* lua_close reached the sentinel */
};

/* The sentinel, or NULL when the module was never opened in this state.
** Never raises. */
ACLUA_API struct aclua_reaper *aclua_reaper_get(lua_State *L);

/* Queues n for deletion; never allocates, never raises. */
ACLUA_API void aclua_reaper_push(struct aclua_reaper *r,
                                 struct aclua_native *n);

/* Deletes every queued session, each DELETE bounded by limit_ms and not
** retried. Counts go to *deleted and *failed (either may be NULL). Never
** raises: failures become warnings. */
ACLUA_API void aclua_reaper_drain(lua_State *L, struct aclua_reaper *r,
                                  long limit_ms, size_t *deleted,
                                  size_t *failed);

/* The safe point at the start of every module call. */
ACLUA_API void aclua_safe_point(lua_State *L);

/* Stops n->s (DELETE), making its Lua provider callable meanwhile.
** Never raises. */
ACLUA_API enum ac_code aclua_native_stop(lua_State *L,
                                         struct aclua_native *n,
                                         long limit_ms,
                                         struct ac_error *err);

/* Frees n and everything it owns, local memory only. Never raises. */
ACLUA_API void aclua_native_free(lua_State *L, struct aclua_native *n);

/* The native half of the agentcube.Session at idx (raises when it is not
** one), or NULL once the session is stopped or closed. Borrowed: valid
** while the userdata lives and is not stopped. */
ACLUA_API struct aclua_native *aclua_session_native(lua_State *L, int idx);

/* Refuses a call on the session at idx: raises ECLOSED when it was
** stopped, EBUSY (naming what runs) when a blocking call is in progress
** on it, or when jobs > 0 and jobs_too. Returns its native half. */
ACLUA_API struct aclua_native *aclua_session_usable(lua_State *L, int idx,
                                                    int jobs_too);

/* Runs a stop() or scope close deferred while jobs ran on the session at
** idx, once n->jobs and busy are 0. Never raises. */
ACLUA_API void aclua_session_settle(lua_State *L, int idx);

/* Reads CodeInterpreterClient options (the table at idx) and pushes a new
** session userdata whose native half has no ac_session yet, its shared
** client resolved (which may start the local runtime). *so gets the
** create options, *attach_id the session_id option (or NULL); their
** strings live as long as the stack slots above idx. Raises for bad
** options. [-0, +k] with the userdata at the returned index. */
ACLUA_API int aclua_session_prepare(lua_State *L, int idx,
                                    struct ac_session_opts *so,
                                    const char **attach_id, ac_client **c);

/* Gives the prepared session at idx its ac_session (owned from then). */
ACLUA_API void aclua_session_adopt(lua_State *L, int idx, ac_session *s);

ACLUA_API void aclua_reaper_open(lua_State *L);  /* [-0, +0] */
ACLUA_API void aclua_session_open(lua_State *L); /* [-0, +1] methods */
ACLUA_API int aclua_session_new(lua_State *L);

/* ---------------------------------------------------------------------- */
/* Arguments and results shared by the blocking methods and async jobs     */

/* Where on_stdout / on_stderr sit on the stack (0: not given). */
struct aclua_stream_fns {
  int out, err;
};

/* Reads the options table at idx ({timeout=, env=, working_dir=,
** on_stdout=, on_stderr=}; working_dir only when allow_wd) into o and
** fns. extra: more keys the caller reads itself (NULL-terminated, or
** NULL). Scratch stays on the stack; raises a string for misuse. */
ACLUA_API void aclua_exec_options(lua_State *L, int idx,
                                  struct ac_exec_opts *o, int allow_wd,
                                  const char *const *extra,
                                  struct aclua_stream_fns *fns);

/* Copies the argv array at idx into one Lua-owned block. [-0, +1, m] */
ACLUA_API const char *const *aclua_argv_copy(lua_State *L, int idx,
                                             size_t *argc);

/* {on_progress = fn} at idx (nil allowed): the stack index of fn, or 0. */
ACLUA_API int aclua_progress_option(lua_State *L, int idx);

/* The result table of a command: {stdout, stderr, exit_code, duration}.
** [-0, +1, m] */
ACLUA_API void aclua_push_exec_result(lua_State *L,
                                      const struct ac_exec_result *r);

/* The CommandExecutionError of a failed command (cmd_idx: the command as
** the caller gave it). [-0, +1, m] */
ACLUA_API void aclua_push_command_error(lua_State *L,
                                        const struct ac_exec_result *r,
                                        int cmd_idx);

/* Reads an extension call: the op name at op_idx ("process_spawn", ...)
** and the table at idx {id=, path=, json=, data=, offset=, eof=,
** timeout=}; the strings stay valid while that table holds them. */
ACLUA_API void aclua_ext_call_read(lua_State *L, int op_idx, int idx,
                                   struct ac_ext_call *call);

/* Ctrl-C during a wait: while caught, SIGINT sets the flag that
** aclua_sigint_flag points to (clients and engines poll it). Nested
** catches share one handler. */
ACLUA_API void aclua_sigint_catch(void);
ACLUA_API void aclua_sigint_release(void);
ACLUA_API const volatile sig_atomic_t *aclua_sigint_flag(void);
ACLUA_API void aclua_sigint_clear(void);

/* The local runtime is libagentcube's (ac_local_default, ac_local_live). */

/* ---------------------------------------------------------------------- */
/* Errors                                                                  */

/* The SDK-style class name for a code ("TimeoutError"). */
ACLUA_API const char *aclua_kind(enum ac_code code);

/* Pushes a new agentcube.Error for err. [-0, +1, m] */
ACLUA_API void aclua_push_error(lua_State *L, const struct ac_error *err);

/* Pushes and raises an agentcube.Error. Call only from a clean point. */
ACLUA_API int aclua_raise(lua_State *L, const struct ac_error *err);

/* aclua_raise with a formatted message. */
ACLUA_API int aclua_raisef(lua_State *L, enum ac_code code, const char *fmt,
                           ...) __attribute__((format(printf, 3, 4)));

ACLUA_API void aclua_error_open(lua_State *L);  /* [-0, +1] metatable */

/* ---------------------------------------------------------------------- */
/* Scratch boxes and conversion                                            */

enum aclua_box_kind {
  ACLUA_BOX_EXEC,                     /* struct ac_exec_result */
  ACLUA_BOX_LIST,                     /* struct ac_file_list */
  ACLUA_BOX_BYTES,                    /* malloc'd bytes */
  ACLUA_BOX_JSON                      /* a jansson value */
};

/* Native scratch with a Lua owner (STYLE rule 9): a userdata whose __gc
** and __close free what it holds, pushed and marked to-be-closed, so an
** error raised while results are converted cannot leak it. */
struct aclua_box {
  enum aclua_box_kind kind;
  struct ac_exec_result exec;
  struct ac_file_list list;
  char *bytes;
  size_t nbytes;
  void *json;                         /* json_t * */
};

/* [-0, +1, m] a new empty box at the top, marked to-be-closed. */
ACLUA_API struct aclua_box *aclua_box_new(lua_State *L,
                                          enum aclua_box_kind kind);
ACLUA_API void aclua_box_open(lua_State *L);     /* [-0, +0] */

/* Parses JSON text (len bytes) into box (a ACLUA_BOX_JSON) and pushes it
** as Lua values: objects as tables, arrays as sequences, null as
** agentcube.null (a NULL light userdata, like cjson.null). Depth is
** limited to ACLUA_JSON_DEPTH. Returns AC_OK with one value pushed, or an
** error with nothing pushed. [-0, +(0|1), m] */
#define ACLUA_JSON_DEPTH 1000
ACLUA_API enum ac_code aclua_push_json(lua_State *L, struct aclua_box *box,
                                       const char *text, size_t len,
                                       struct ac_error *err);

/* Raises "<what> '<key>'" (a luaL_error string: misuse of the API) for the
** first key of the table at idx that is not in keys (NULL-terminated).
** [-0, +0, v] */
ACLUA_API void aclua_check_keys(lua_State *L, int idx,
                                const char *const *keys, const char *what);

/* With (mt, methods) on top of the stack: mt.__methods = methods and
** mt.__fields = the field names, for tools that list what an object with
** a computed __index offers (the REPL's completion). */
ACLUA_API void aclua_describe(lua_State *L, const char *const fields[]);

/* ---------------------------------------------------------------------- */
/* Agent runtimes (agent_runtime.c)                                        */

/* core.AgentRuntimeClient(agent_name [, opts]) */
ACLUA_API int aclua_agent_runtime_new(lua_State *L);

#endif
