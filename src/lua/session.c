/*
** session.c -- agentcube.Session, the userdata behind
** agentcube.CodeInterpreterClient: one code-interpreter session and its
** client, with the SDK's methods.
**
** Lifecycle (DESIGN section 5). A session the object created is owned:
** stop(), __close and garbage collection delete it (GC through the reaper,
** see reaper.c); detach() gives up ownership. A session attached by id is
** not owned: only an explicit stop() deletes it. After stop() or __close
** every method raises ECLOSED and tostring gives
** "agentcube.Session (closed)".
**
** Re-entrancy. A Lua auth provider runs inside library calls. While a call
** runs the session is busy: a method called from the provider on the same
** session raises EBUSY, and a stop() or __close arriving then is deferred
** until the call returns (STYLE rule 16).
**
** Every method checks its arguments and allocates its Lua-owned scratch
** first, then marks the session busy, calls the library, clears busy, and
** only then converts results or raises (rule 7).
*/
#include "aclua.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

enum close_kind { CLOSE_NONE = ACLUA_CLOSE_NONE, CLOSE_STOP = ACLUA_CLOSE_STOP,
                  CLOSE_SCOPE = ACLUA_CLOSE_SCOPE };

struct aclua_session {
  struct aclua_native *n;             /* owned; NULL once closed */
  struct aclua_reaper *r;             /* the sentinel, user value 1 */
  struct ac_error close_err;          /* why __close's DELETE failed */
};

/* User values: 1 the reaper sentinel (anchors r), 2 the info table
** {name, namespace, ttl}, 3 the shared client's holder (clients.c). */
#define UV_REAPER 1
#define UV_INFO   2
#define UV_CLIENT 3

/* The state of one library call (see call_begin). */
struct call {
  struct aclua_session *ls;
  struct aclua_native *n;
  int err_idx;                        /* provider error slot, or 0 */
  struct aclua_authcb saved;          /* the provider state to restore */
};

/* Ctrl-C during a blocking call. While a call runs, SIGINT sets this flag
** (every client of the module has it as its interrupt flag), the call
** returns EINTERRUPTED within the engine's 50 ms slice, and the method
** raises an agentcube.Error with code EINTERRUPTED. Outside calls the
** host's own handler (lua.c's, the agentcube host's) is in place. */
static volatile sig_atomic_t sigint_flag;
static struct sigaction saved_sigint;
static int sigint_depth;

static void on_sigint(int sig) {
  (void)sig;
  sigint_flag = 1;
}

static void sigint_catch(void) {
  aclua_sigint_catch();
}

static void sigint_release(void) {
  aclua_sigint_release();
}

void aclua_sigint_catch(void) {
  struct sigaction sa;
  if (sigint_depth++ > 0)
    return;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigint_flag = 0;
  sigaction(SIGINT, &sa, &saved_sigint);
}

void aclua_sigint_release(void) {
  if (sigint_depth > 0 && --sigint_depth == 0) {
    sigaction(SIGINT, &saved_sigint, NULL);
    /* the call that took the interrupt has returned: a flag left set
    ** would abort every later request of the clients, the DELETEs that
    ** close the state's sessions at exit included */
    sigint_flag = 0;
  }
}

const volatile sig_atomic_t *aclua_sigint_flag(void) {
  return &sigint_flag;
}

void aclua_sigint_clear(void) {
  sigint_flag = 0;
}

static struct aclua_session *check_session(lua_State *L) {
  return luaL_checkudata(L, 1, AC_SESSION_MT);
}

struct aclua_native *aclua_session_native(lua_State *L, int idx) {
  struct aclua_session *ls = luaL_checkudata(L, idx, AC_SESSION_MT);
  return ls->n;
}

/* Raises the refusal of a call on a closed (n NULL) or busy session,
** naming what keeps it busy. Never returns, which the declaration says:
** call_begin goes on only with a session that can take the call. */
static _Noreturn void refuse_call(lua_State *L,
                                  const struct aclua_native *n) {
  if (n == NULL)
    aclua_raisef(L, AC_ECLOSED, "the session was stopped; this client "
                 "cannot be used any more");
  else if (n->busy)
    aclua_raisef(L, AC_EBUSY, "session %s is busy: its %s() call has not "
                 "returned yet (this call came from inside it: a streaming "
                 "or progress callback, or an auth provider)",
                 ac_session_id(n->s), n->busy_op ? n->busy_op : "method");
  else
    aclua_raisef(L, AC_EBUSY, "session %s is busy: %d agentcube.async "
                 "job%s running on it (the latest: \"%s\"); wait for %s "
                 "(job:result(), async.wait_any, async.poll) or cancel "
                 "%s (job:cancel()) first", ac_session_id(n->s), n->jobs,
                 n->jobs == 1 ? " is" : "s are",
                 n->job_op ? n->job_op : "?", n->jobs == 1 ? "it" : "them",
                 n->jobs == 1 ? "it" : "them");
  abort();                            /* not reached: aclua_raisef raises */
}

struct aclua_native *aclua_session_usable(lua_State *L, int idx,
                                          int jobs_too) {
  struct aclua_native *n = aclua_session_native(L, idx);
  if (n == NULL || n->s == NULL || n->busy || (jobs_too && n->jobs > 0))
    refuse_call(L, n != NULL && n->s != NULL ? n : NULL);
  return n;
}

/* The part of a method between its argument checks and the library call:
** runs the reaper, refuses closed and busy sessions, gives a Lua provider
** this thread and two stack slots, marks the session busy. May raise; it
** holds nothing native when it does. */
static void call_begin(lua_State *L, struct aclua_session *ls,
                       struct call *cc, const char *what) {
  struct aclua_native *n;
  if (ls->r != NULL && ls->r->head != NULL && !ls->r->draining)
    aclua_reaper_drain(L, ls->r, ACLUA_DRAIN_DELETE_MS, NULL, NULL);
  n = ls->n;
  if (n == NULL || n->busy || n->jobs > 0)
    refuse_call(L, n);
  luaL_checkstack(L, 3, NULL);
  cc->ls = ls;
  cc->n = n;
  cc->err_idx = 0;
  if (n->cb != NULL) {
    cc->saved = *n->cb;
    lua_rawgeti(L, LUA_REGISTRYINDEX, n->provider_ref);
    lua_pushnil(L);
    cc->err_idx = lua_gettop(L);
    n->cb->L = L;
    n->cb->fn_idx = cc->err_idx - 1;
    n->cb->err_idx = cc->err_idx;
  }
  n->busy = 1;
  n->busy_op = what;
  sigint_catch();
}

/* Runs the close that arrived during the call, if any. Never raises. */
static void close_now(lua_State *L, struct aclua_session *ls,
                      enum close_kind how) {
  struct aclua_native *n = ls->n;
  struct ac_error err;
  if (n == NULL)
    return;
  ls->n = NULL;                       /* closed first */
  if (how == CLOSE_STOP || ac_session_owned(n->s)) {
    if (aclua_native_stop(L, n, 0, &err) != AC_OK) {
      char line[AC_ERROR_SIZE + 64];
      ls->close_err = err;
      snprintf(line, sizeof line, "agentcube: could not delete session "
               "%s: %s", ac_session_id(n->s), err.msg);
      lua_warning(L, line, 0);
    }
  }
  aclua_native_free(L, n);
}

/* Right after the library call, before anything that may raise. */
static void call_end(lua_State *L, struct call *cc) {
  struct aclua_native *n = cc->n;
  sigint_release();
  n->busy = 0;
  if (n->cb != NULL)
    *n->cb = cc->saved;
  if (n->close_pending != CLOSE_NONE && cc->ls->n == n && n->jobs == 0) {
    enum close_kind how = (enum close_kind)n->close_pending;
    n->close_pending = CLOSE_NONE;
    close_now(L, cc->ls, how);
  }
}

/* Raises the failure of a call: the provider's own error when it raised
** one (unchanged, like the SDK lets get_token()'s exception through),
** else an agentcube.Error. */
static int call_fail(lua_State *L, struct call *cc,
                     const struct ac_error *err) {
  if (cc->err_idx != 0 && !lua_isnil(L, cc->err_idx)) {
    lua_pushvalue(L, cc->err_idx);
    return lua_error(L);
  }
  return aclua_raise(L, err);
}

/* ---------------------------------------------------------------------- */
/* Arguments                                                               */

/* Copies the array at idx into one Lua-owned block (pointers, then the
** bytes), so that the strings stay put even if an auth provider changes
** the table during the call. [-0, +1, m] */
const char *const *aclua_argv_copy(lua_State *L, int idx, size_t *argc) {
  size_t n = (size_t)lua_rawlen(L, idx), total = 0, len, i;
  const char **ptrs;
  char *bytes;
  const char *s;
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, (lua_Integer)i);
    s = lua_tolstring(L, -1, &len);
    if (s == NULL || strlen(s) != len)
      luaL_error(L, "bad command argument #%d (string without NUL "
                 "expected, got %s)", (int)i, luaL_typename(L, -1));
    total += len + 1;
    lua_pop(L, 1);
  }
  ptrs = lua_newuserdatauv(L, (n + 1) * sizeof *ptrs + total, 0);
  bytes = (char *)(ptrs + n + 1);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, (lua_Integer)i);
    s = lua_tolstring(L, -1, &len);
    memcpy(bytes, s, len + 1);
    ptrs[i - 1] = bytes;
    bytes += len + 1;
    lua_pop(L, 1);
  }
  ptrs[n] = NULL;
  *argc = n;
  return ptrs;
}

/* Copies the name->value table at idx as ac_kv pairs. [-0, +1, m] */
static const struct ac_kv *env_copy(lua_State *L, int idx, size_t *count) {
  size_t n = 0, total = 0, kl, vl;
  struct ac_kv *kv;
  char *bytes;
  const char *k, *v;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING ||
        (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER))
      luaL_error(L, "bad option 'env' (string names and string values "
                 "expected)");
    k = lua_tolstring(L, -2, &kl);
    v = lua_tolstring(L, -1, &vl);    /* a copy: converting it is safe */
    if (strlen(k) != kl || strlen(v) != vl)
      luaL_error(L, "bad option 'env' (NUL byte in '%s')", k);
    total += kl + vl + 2;
    n++;
    lua_pop(L, 1);
  }
  kv = lua_newuserdatauv(L, (n ? n : 1) * sizeof *kv + total, 0);
  bytes = (char *)(kv + (n ? n : 1));
  n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    k = lua_tolstring(L, -2, &kl);
    v = lua_tolstring(L, -1, &vl);
    memcpy(bytes, k, kl + 1);
    kv[n].key = bytes;
    bytes += kl + 1;
    memcpy(bytes, v, vl + 1);
    kv[n].value = bytes;
    bytes += vl + 1;
    n++;
    lua_pop(L, 1);
  }
  *count = n;
  return kv;
}

static void set_timeout(lua_State *L, int idx, struct ac_exec_opts *o) {
  int isnum;
  lua_Number t = lua_tonumberx(L, idx, &isnum);
  if (!isnum)
    luaL_error(L, "bad timeout (number of seconds expected, got %s)",
               luaL_typename(L, idx));
  o->timeout = (double)t;
  /* Lua 5.4 keeps the subtype the caller wrote, as Python does: 30 is
  ** sent as "30s", 30.0 as "30.0s". */
  o->timeout_is_float = !lua_isinteger(L, idx);
}

#define stream_fns aclua_stream_fns

static int listed(const char *k, const char *const *keys) {
  for (; keys != NULL && *keys != NULL; keys++)
    if (strcmp(k, *keys) == 0)
      return 1;
  return 0;
}

/* The async jobs read their options from the same table as the command's
** own arguments, so extra names the keys the caller reads itself. */
void aclua_exec_options(lua_State *L, int idx, struct ac_exec_opts *o,
                        int allow_wd, const char *const *extra,
                        struct stream_fns *fns) {
  int t;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                   : NULL;
    if (k == NULL || (strcmp(k, "timeout") != 0 && strcmp(k, "env") != 0 &&
                      strcmp(k, "on_stdout") != 0 &&
                      strcmp(k, "on_stderr") != 0 && !listed(k, extra) &&
                      (!allow_wd || strcmp(k, "working_dir") != 0)))
      luaL_error(L, "unknown option '%s'", k ? k : luaL_typename(L, -2));
    lua_pop(L, 1);
  }
  for (int i = 0; i < 2; i++) {
    const char *k = i == 0 ? "on_stdout" : "on_stderr";
    t = lua_getfield(L, idx, k);                 /* stays: anchored */
    if (t == LUA_TNIL) {
      lua_pop(L, 1);
      continue;
    }
    if (t != LUA_TFUNCTION && !luaL_getmetafield(L, -1, "__call"))
      luaL_error(L, "bad option '%s' (function expected, got %s)", k,
                 luaL_typename(L, -1));
    else if (t != LUA_TFUNCTION)
      lua_pop(L, 1);                             /* the __call field */
    *(i == 0 ? &fns->out : &fns->err) = lua_gettop(L);
    o->stream = 1;
  }
  if (lua_getfield(L, idx, "timeout") != LUA_TNIL)
    set_timeout(L, lua_gettop(L), o);
  lua_pop(L, 1);
  t = lua_getfield(L, idx, "working_dir");       /* stays: anchored */
  if (t == LUA_TSTRING)
    o->working_dir = lua_tostring(L, -1);
  else if (t != LUA_TNIL)
    luaL_error(L, "bad option 'working_dir' (string expected, got %s)",
               luaL_typename(L, -1));
  t = lua_getfield(L, idx, "env");
  if (t == LUA_TTABLE)
    o->env = env_copy(L, lua_gettop(L), &o->nenv);
  else if (t != LUA_TNIL)
    luaL_error(L, "bad option 'env' (table expected, got %s)",
               luaL_typename(L, -1));
}

/* (timeout) / (opts) / (timeout, opts) starting at idx. */
static void exec_args(lua_State *L, int idx, struct ac_exec_opts *o,
                      int allow_wd, struct stream_fns *fns) {
  int ty = lua_type(L, idx);
  memset(fns, 0, sizeof *fns);
  if (ty == LUA_TTABLE) {
    aclua_exec_options(L, idx, o, allow_wd, NULL, fns);
    return;
  }
  if (ty == LUA_TNUMBER)
    set_timeout(L, idx, o);
  else if (ty != LUA_TNIL && ty != LUA_TNONE)
    luaL_typeerror(L, idx, "number or table");
  if (lua_type(L, idx + 1) == LUA_TTABLE)
    aclua_exec_options(L, idx + 1, o, allow_wd, NULL, fns);
  else if (!lua_isnoneornil(L, idx + 1))
    luaL_typeerror(L, idx + 1, "table");
}

/* ---------------------------------------------------------------------- */
/* Commands                                                                */

void aclua_push_command_error(lua_State *L, const struct ac_exec_result *r,
                              int cmd_idx) {
  struct ac_error err;
  ac_error_set(&err, AC_ECOMMAND, "Command failed (exit %d)", r->exit_code);
  aclua_push_error(L, &err);
  lua_pushfstring(L, "Command failed (exit %d): ", r->exit_code);
  lua_pushlstring(L, r->err ? r->err : "", r->err_len);
  lua_concat(L, 2);
  lua_setfield(L, -2, "message");
  lua_pushinteger(L, r->exit_code);
  lua_setfield(L, -2, "exit_code");
  lua_pushlstring(L, r->err ? r->err : "", r->err_len);
  lua_setfield(L, -2, "stderr");
  lua_pushlstring(L, r->out ? r->out : "", r->out_len);
  lua_setfield(L, -2, "stdout");
  lua_pushvalue(L, cmd_idx);
  lua_setfield(L, -2, "command");
}

/* Raises CommandExecutionError with the result's fields; cmd_idx holds
** the caller's command (string or table, as the SDK keeps it). */
static int raise_command_error(lua_State *L, const struct ac_exec_result *r,
                               int cmd_idx) {
  aclua_push_command_error(L, r, cmd_idx);
  return lua_error(L);
}

void aclua_push_exec_result(lua_State *L, const struct ac_exec_result *r) {
  lua_createtable(L, 0, 4);
  lua_pushlstring(L, r->out ? r->out : "", r->out_len);
  lua_setfield(L, -2, "stdout");
  lua_pushlstring(L, r->err ? r->err : "", r->err_len);
  lua_setfield(L, -2, "stderr");
  lua_pushinteger(L, r->exit_code);
  lua_setfield(L, -2, "exit_code");
  if (r->duration >= 0) {
    lua_pushnumber(L, r->duration);
    lua_setfield(L, -2, "duration");
  }
}

#define push_result_table aclua_push_exec_result

/* ---------------------------------------------------------------------- */
/* Streaming: the call runs as a job on an engine of its own; output       */
/* chunks reach the Lua callbacks on this thread, from inside ac_job_wait. */

struct stream_run {
  lua_State *L;
  struct stream_fns fns;
  int failed;                         /* a callback raised */
  int err_slot;                       /* where its error is kept */
};

/* fn, data (light userdata), len: calls fn(string) in protected mode. */
static int call_chunk(lua_State *L) {
  const char *data = lua_touserdata(L, 2);
  size_t len = (size_t)lua_tointeger(L, 3);
  lua_settop(L, 1);
  lua_pushlstring(L, data, len);
  lua_call(L, 1, 0);
  return 0;
}

static void stream_output(void *ud, ac_job *j, enum ac_stream st,
                          const char *data, size_t len) {
  struct stream_run *r = ud;
  lua_State *L = r->L;
  int fn = st == AC_STREAM_STDOUT ? r->fns.out : r->fns.err;
  if (r->failed || fn == 0)
    return;
  /* no allocation may raise outside lua_pcall: the chunk goes in as a
  ** light userdata and becomes a string inside */
  lua_pushcfunction(L, call_chunk);
  lua_pushvalue(L, fn);
  lua_pushlightuserdata(L, (void *)data);
  lua_pushinteger(L, (lua_Integer)len);
  if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
    r->failed = 1;
    lua_replace(L, r->err_slot);
    ac_job_cancel(j);
  }
}

/* Runs start's job to completion with the callbacks of fns. */
typedef enum ac_code (*start_fn)(ac_engine *e, void *ud,
                                 const struct ac_job_callbacks *cbs,
                                 ac_job **out, struct ac_error *err);

static enum ac_code run_streaming(lua_State *L, const struct stream_fns *fns,
                                  start_fn start, void *ud,
                                  struct ac_exec_result *res, char **json,
                                  struct ac_error *err) {
  struct stream_run r;
  struct ac_job_callbacks cbs;
  ac_engine *e = NULL;
  ac_job *j = NULL;
  enum ac_code rc;
  luaL_checkstack(L, 8, NULL);
  lua_pushnil(L);                     /* the callback's error slot */
  memset(&r, 0, sizeof r);
  r.L = L;
  r.fns = *fns;
  r.err_slot = lua_gettop(L);
  memset(&cbs, 0, sizeof cbs);
  cbs.on_output = stream_output;
  cbs.ud = &r;
  rc = ac_engine_new(&e, err);
  if (rc != AC_OK)
    return rc;
  ac_engine_set_interrupt_flag(e, &sigint_flag);
  rc = start(e, ud, &cbs, &j, err);
  if (rc == AC_OK) {
    ac_job_wait(j, -1);
    rc = ac_job_result(j, err);
    if (res != NULL)
      ac_job_take_exec(j, res);
    if (json != NULL && rc == AC_OK && ac_job_json(j) != NULL) {
      *json = strdup(ac_job_json(j));
      if (*json == NULL)
        rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    }
    ac_job_free(j);
  }
  ac_engine_free(e);
  if (r.failed)
    return AC_ECANCELED;              /* the caller raises the slot */
  return rc;
}

struct exec_start {
  ac_session *s;
  const char *line;
  const char *const *argv;
  size_t argc;
  const struct ac_exec_opts *o;
  const char *lang;
  const char *code;
  size_t len;
};

static enum ac_code start_exec_cb(ac_engine *e, void *ud,
                                  const struct ac_job_callbacks *cbs,
                                  ac_job **out, struct ac_error *err) {
  struct exec_start *x = ud;
  if (x->lang != NULL)
    return ac_start_run_code(e, x->s, x->lang, x->code, x->len, x->o, cbs,
                             out, err);
  if (x->line != NULL)
    return ac_start_exec_line(e, x->s, x->line, x->o, cbs, out, err);
  return ac_start_exec(e, x->s, x->argv, x->argc, x->o, cbs, out, err);
}

static int execute(lua_State *L, int check) {
  struct aclua_session *ls = check_session(L);
  struct ac_exec_opts o;
  struct aclua_box *box;
  struct ac_error err;
  struct call cc;
  const char *const *argv = NULL;
  const char *line = NULL;
  size_t argc = 0;
  enum ac_code rc;
  struct stream_fns fns;

  memset(&o, 0, sizeof o);
  lua_settop(L, 4);
  if (lua_type(L, 2) == LUA_TSTRING)
    line = lua_tostring(L, 2);
  else if (lua_type(L, 2) == LUA_TTABLE)
    argv = aclua_argv_copy(L, 2, &argc);
  else
    return luaL_typeerror(L, 2, "string or table");
  exec_args(L, 3, &o, 1, &fns);
  o.check = check;
  box = aclua_box_new(L, ACLUA_BOX_EXEC);
  call_begin(L, ls, &cc, check ? "execute_command" : "execute_command_result");
  if (o.stream) {
    struct exec_start x = { cc.n->s, line, argv, argc, &o, NULL, NULL, 0 };
    rc = run_streaming(L, &fns, start_exec_cb, &x, &box->exec, NULL,
                       &err);
  } else if (line != NULL) {
    rc = ac_session_exec_line(cc.n->s, line, &o, &box->exec, &err);
  } else {
    rc = ac_session_exec(cc.n->s, argv, argc, &o, &box->exec, &err);
  }
  call_end(L, &cc);
  if (rc == AC_ECANCELED && o.stream && !lua_isnil(L, -1))
    return lua_error(L);              /* a callback's own error */
  if (rc == AC_ECOMMAND)
    return raise_command_error(L, &box->exec, 2);
  if (rc != AC_OK)
    return call_fail(L, &cc, &err);
  if (check)
    lua_pushlstring(L, box->exec.out, box->exec.out_len);
  else
    push_result_table(L, &box->exec);
  return 1;
}

/***
** ci:execute_command(cmd [, timeout] [, {env=, working_dir=, timeout=}])
** -> stdout. cmd is a string (split like shlex.split) or an argv table.
** Raises agentcube.Error, CommandExecutionError for a non-zero exit.
*/
static int session_execute_command(lua_State *L) {
  return execute(L, 1);
}

/***
** ci:execute_command_result(cmd [, timeout] [, opts])
** -> {stdout=, stderr=, exit_code=}. Never raises for a non-zero exit.
*/
static int session_execute_command_result(lua_State *L) {
  return execute(L, 0);
}

/***
** ci:run_code(language, code [, timeout] [, {timeout=, env=}]) -> stdout
** python/py/python3 or bash/sh. Raises agentcube.Error (ValueError for
** another language, CommandExecutionError for a non-zero exit).
*/
static int run_code(lua_State *L, int check) {
  struct aclua_session *ls = check_session(L);
  const char *lang = luaL_checkstring(L, 2);
  size_t len;
  const char *code = luaL_checklstring(L, 3, &len);
  struct ac_exec_opts o;
  struct aclua_box *box;
  struct ac_error err;
  struct call cc;
  enum ac_code rc;
  struct stream_fns fns;

  memset(&o, 0, sizeof o);
  lua_settop(L, 5);
  exec_args(L, 4, &o, 0, &fns);
  box = aclua_box_new(L, ACLUA_BOX_EXEC);
  call_begin(L, ls, &cc, check ? "run_code" : "run_code_result");
  if (o.stream) {
    struct exec_start x = { cc.n->s, NULL, NULL, 0, &o, lang, code, len };
    rc = run_streaming(L, &fns, start_exec_cb, &x, &box->exec, NULL,
                       &err);
  } else {
    rc = ac_session_run_code(cc.n->s, lang, code, len, &o, &box->exec,
                             &err);
  }
  call_end(L, &cc);
  if (rc == AC_ECANCELED && o.stream && !lua_isnil(L, -1))
    return lua_error(L);              /* a callback's own error */
  if (rc == AC_ECOMMAND && !check) {
    push_result_table(L, &box->exec);
    return 1;
  }
  if (rc == AC_ECOMMAND) {
    lua_pushstring(L, box->exec.command ? box->exec.command : "");
    return raise_command_error(L, &box->exec, lua_gettop(L));
  }
  if (rc != AC_OK)
    return call_fail(L, &cc, &err);
  if (!check)
    push_result_table(L, &box->exec);
  else
    lua_pushlstring(L, box->exec.out, box->exec.out_len);
  return 1;
}

/***
** ci:run_code(language, code [, timeout] [, {timeout=, env=, on_stdout=,
** on_stderr=}]) -> stdout. python/py/python3 or bash/sh. Raises
** agentcube.Error (ValueError for another language, CommandExecutionError
** for a non-zero exit).
*/
static int session_run_code(lua_State *L) {
  return run_code(L, 1);
}

/***
** ci:run_code_result(language, code [, timeout] [, opts])
** -> {stdout=, stderr=, exit_code=}. Never raises for a failed program.
*/
static int session_run_code_result(lua_State *L) {
  return run_code(L, 0);
}

/***
** ci:_ext(op, {id=, path=, json=, data=, offset=, eof=, timeout=}
**         [, {on_stdout=, on_stderr=}])
** -> the answer's JSON text. The local runtime's extensions (processes,
** contexts, file operations); the friendly methods are in init.lua.
*/
void aclua_ext_call_read(lua_State *L, int op_idx, int idx,
                         struct ac_ext_call *call) {
  static const char *const ops[] = {
    "process_spawn", "process_list", "process_get", "process_signal",
    "process_wait", "process_output", "process_stdin", "context_create",
    "context_list", "context_run", "context_delete", "fs_remove",
    "fs_mkdir", "fs_stat", "fs_rename", NULL
  };
  int op = luaL_checkoption(L, op_idx, NULL, ops);
  idx = lua_absindex(L, idx);
  luaL_checktype(L, idx, LUA_TTABLE);
  memset(call, 0, sizeof *call);
  call->op = (enum ac_ext_op)(op + 1);
  lua_getfield(L, idx, "id");
  call->id = lua_tostring(L, -1);              /* numbers become strings */
  lua_getfield(L, idx, "path");
  call->path = lua_tostring(L, -1);
  lua_getfield(L, idx, "json");
  call->json = lua_tostring(L, -1);
  lua_getfield(L, idx, "data");
  call->data = lua_tolstring(L, -1, &call->len);
  lua_getfield(L, idx, "offset");
  call->offset = (long long)lua_tointeger(L, -1);
  lua_getfield(L, idx, "eof");
  call->eof = lua_toboolean(L, -1);
  lua_getfield(L, idx, "timeout");
  call->timeout = (double)lua_tonumber(L, -1);
  lua_pop(L, 2);
}

struct ext_start {
  ac_session *s;
  const struct ac_ext_call *call;
};

static enum ac_code start_ext_cb(ac_engine *e, void *ud,
                                 const struct ac_job_callbacks *cbs,
                                 ac_job **out, struct ac_error *err) {
  struct ext_start *x = ud;
  return ac_start_ext(e, x->s, x->call, cbs, out, err);
}

static int session_ext(lua_State *L) {
  struct aclua_session *ls = check_session(L);
  struct ac_ext_call call;
  struct ac_error err;
  struct call cc;
  struct stream_fns fns;
  enum ac_code rc;
  char *json = NULL;

  lua_settop(L, 4);
  aclua_ext_call_read(L, 2, 3, &call);
  memset(&fns, 0, sizeof fns);
  if (!lua_isnil(L, 4)) {             /* {on_stdout=, on_stderr=} */
    luaL_checktype(L, 4, LUA_TTABLE);
    if (lua_getfield(L, 4, "on_stdout") != LUA_TNIL)
      fns.out = lua_gettop(L);
    if (lua_getfield(L, 4, "on_stderr") != LUA_TNIL)
      fns.err = lua_gettop(L);
  }
  call_begin(L, ls, &cc, lua_tostring(L, 2));
  if (fns.out != 0 || fns.err != 0) {
    struct ext_start x = { cc.n->s, &call };
    rc = run_streaming(L, &fns, start_ext_cb, &x, NULL, &json, &err);
  } else {
    rc = ac_session_ext(cc.n->s, &call, &json, &err);
  }
  call_end(L, &cc);
  if (rc == AC_ECANCELED && (fns.out != 0 || fns.err != 0) &&
      !lua_isnil(L, -1)) {
    free(json);
    return lua_error(L);              /* a callback's own error */
  }
  if (rc != AC_OK) {
    free(json);
    return call_fail(L, &cc, &err);
  }
  lua_pushstring(L, json != NULL ? json : "null");
  free(json);
  return 1;
}

/* ---------------------------------------------------------------------- */
/* Files                                                                   */

/***
** ci:write_file(content, remote_path). Raises agentcube.Error.
*/
static int session_write_file(lua_State *L) {
  struct aclua_session *ls = check_session(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  const char *path = luaL_checkstring(L, 3);
  struct ac_error err;
  struct call cc;
  enum ac_code rc;
  call_begin(L, ls, &cc, "write_file");
  rc = ac_session_write_file(cc.n->s, path, data, len, &err);
  call_end(L, &cc);
  if (rc != AC_OK)
    return call_fail(L, &cc, &err);
  return 0;
}

/* fn, done, total: calls fn(done, total) in protected mode. */
static int call_progress(lua_State *L) {
  lua_call(L, 2, 0);
  return 0;
}

static void stream_progress(void *ud, ac_job *j, long long done,
                            long long total) {
  struct stream_run *r = ud;
  lua_State *L = r->L;
  if (r->failed || r->fns.out == 0)
    return;
  lua_pushcfunction(L, call_progress);
  lua_pushvalue(L, r->fns.out);
  lua_pushinteger(L, (lua_Integer)done);
  lua_pushinteger(L, (lua_Integer)total);
  if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
    r->failed = 1;
    lua_replace(L, r->err_slot);
    ac_job_cancel(j);
  }
}

int aclua_progress_option(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx))
    return 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  aclua_check_keys(L, idx, (const char *const[]){ "on_progress", NULL },
                   "unknown option");
  if (lua_getfield(L, idx, "on_progress") == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  if (lua_type(L, -1) != LUA_TFUNCTION)
    luaL_error(L, "bad option 'on_progress' (function expected, got %s)",
               luaL_typename(L, -1));
  return lua_gettop(L);
}

/* upload_file / download_file; with {on_progress = fn} the transfer runs
** as a job whose progress reaches fn(done, total) on this thread. */
static int transfer(lua_State *L, int upload) {
  struct aclua_session *ls = check_session(L);
  const char *a = luaL_checkstring(L, 2);
  const char *b = luaL_checkstring(L, 3);
  struct ac_error err;
  struct call cc;
  enum ac_code rc;
  struct stream_run r;
  int fn = 0;

  lua_settop(L, 4);
  fn = aclua_progress_option(L, 4);
  call_begin(L, ls, &cc, upload ? "upload_file" : "download_file");
  if (fn == 0) {
    rc = upload ? ac_session_upload_file(cc.n->s, a, b, &err)
                : ac_session_download_file(cc.n->s, a, b, &err);
  } else {
    struct ac_job_callbacks cbs;
    ac_engine *e = NULL;
    ac_job *j = NULL;
    luaL_checkstack(L, 8, NULL);
    lua_pushnil(L);                   /* the callback's error slot */
    memset(&r, 0, sizeof r);
    r.L = L;
    r.fns.out = fn;
    r.err_slot = lua_gettop(L);
    memset(&cbs, 0, sizeof cbs);
    cbs.on_progress = stream_progress;
    cbs.ud = &r;
    rc = ac_engine_new(&e, &err);
    if (rc == AC_OK) {
      ac_engine_set_interrupt_flag(e, &sigint_flag);
      rc = upload ? ac_start_upload_file(e, cc.n->s, a, b, &cbs, &j, &err)
                  : ac_start_download_file(e, cc.n->s, a, b, &cbs, &j,
                                           &err);
    }
    if (rc == AC_OK) {
      ac_job_wait(j, -1);
      rc = ac_job_result(j, &err);
      ac_job_free(j);
    }
    ac_engine_free(e);
  }
  call_end(L, &cc);
  /* A callback that raised cancelled the job, even on the last progress
  ** report: the engine puts a download's file in place only after it, so
  ** nothing is left behind. */
  if (fn != 0 && r.failed)
    return lua_error(L);              /* the callback's own error */
  if (rc != AC_OK)
    return call_fail(L, &cc, &err);
  return 0;
}

/***
** ci:upload_file(local_path, remote_path [, {on_progress = fn}]).
** Streams the file; fn(done, total) reports the bytes sent. Raises
** agentcube.Error (FileNotFoundError for a missing local file).
*/
static int session_upload_file(lua_State *L) {
  return transfer(L, 1);
}

/***
** ci:download_file(remote_path, local_path [, {on_progress = fn}]).
** Streams into a temporary file renamed into place: on error nothing is
** left behind. fn(done, total) reports the bytes received (total 0 when
** unknown). Raises agentcube.Error.
*/
static int session_download_file(lua_State *L) {
  return transfer(L, 0);
}

/***
** ci:read_file(remote_path) -> string. Raises agentcube.Error.
*/
static int session_read_file(lua_State *L) {
  struct aclua_session *ls = check_session(L);
  const char *remote = luaL_checkstring(L, 2);
  struct aclua_box *box = aclua_box_new(L, ACLUA_BOX_BYTES);
  struct ac_error err;
  struct call cc;
  enum ac_code rc;
  call_begin(L, ls, &cc, "read_file");
  rc = ac_session_read_file(cc.n->s, remote, 0, &box->bytes, &box->nbytes,
                            &err);
  call_end(L, &cc);
  if (rc != AC_OK)
    return call_fail(L, &cc, &err);
  lua_pushlstring(L, box->bytes, box->nbytes);
  return 1;
}

/***
** ci:list_files([path]) -> { {name=, size=, modified=, mode=, is_dir=},
** ... } as the server sent them (path defaults to "."). Raises
** agentcube.Error.
*/
static int session_list_files(lua_State *L) {
  struct aclua_session *ls = check_session(L);
  const char *path = luaL_optstring(L, 2, ".");
  struct aclua_box *box = aclua_box_new(L, ACLUA_BOX_LIST);
  struct aclua_box *jbox = aclua_box_new(L, ACLUA_BOX_JSON);
  struct ac_error err;
  struct call cc;
  enum ac_code rc;
  call_begin(L, ls, &cc, "list_files");
  rc = ac_session_list_files(cc.n->s, path, &box->list, &err);
  call_end(L, &cc);
  if (rc != AC_OK)
    return call_fail(L, &cc, &err);
  if (aclua_push_json(L, jbox, box->list.json, strlen(box->list.json),
                      &err) != AC_OK)
    return aclua_raise(L, &err);
  return 1;
}

/* ---------------------------------------------------------------------- */
/* Lifecycle                                                               */

/***
** ci:stop() -> true
** Deletes the session on the server (owned or not, like the SDK) and
** closes this object; a second stop() does nothing. Called from an auth
** provider during a call on this session, it is deferred until that call
** returns. Raises agentcube.Error when the DELETE failed (the object is
** closed anyway).
*/
static int session_stop(lua_State *L) {
  struct aclua_session *ls = check_session(L);
  struct aclua_native *n;
  struct ac_error err;
  struct call cc;
  enum ac_code rc;
  if (ls->r != NULL && ls->r->head != NULL && !ls->r->draining)
    aclua_reaper_drain(L, ls->r, ACLUA_DRAIN_DELETE_MS, NULL, NULL);
  n = ls->n;
  if (n == NULL) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (n->busy || n->jobs > 0) {
    n->close_pending = CLOSE_STOP;
    lua_pushboolean(L, 1);
    return 1;
  }
  call_begin(L, ls, &cc, "stop");
  rc = ac_session_stop(n->s, &err);
  /* this stop covers any stop() or __close asked for meanwhile */
  n->close_pending = CLOSE_NONE;
  call_end(L, &cc);
  ls->n = NULL;
  if (rc != AC_OK && cc.err_idx != 0 && !lua_isnil(L, cc.err_idx))
    lua_pushvalue(L, cc.err_idx);     /* the provider's own error */
  else if (rc != AC_OK)
    aclua_push_error(L, &err);
  aclua_native_free(L, n);
  if (rc != AC_OK)
    return lua_error(L);
  lua_pushboolean(L, 1);
  return 1;
}

/***
** ci:detach() -> session_id
** Gives up ownership: neither <close>, GC nor the end of the Lua state will
** delete the session (an explicit stop() still does). Raises ECLOSED on a
** stopped client.
*/
static int session_detach(lua_State *L) {
  struct aclua_session *ls = check_session(L);
  aclua_safe_point(L);
  if (ls->n == NULL)
    return aclua_raisef(L, AC_ECLOSED, "the session was stopped");
  ac_session_detach(ls->n->s);
  lua_pushstring(L, ac_session_id(ls->n->s));
  return 1;
}

/* ci:transfer() -> bytes moved, size (nil while unknown) of the upload or
** download in progress (or the last one). Cheap and never raises: progress
** displays call it between polls while an agentcube.async job runs the
** transfer. */
static int session_transfer(lua_State *L) {
  struct aclua_session *ls = check_session(L);
  long long done = 0, total = -1;
  if (ls->n != NULL)
    ac_session_transfer(ls->n->s, &done, &total);
  lua_pushinteger(L, (lua_Integer)done);
  if (total >= 0)
    lua_pushinteger(L, (lua_Integer)total);
  else
    lua_pushnil(L);
  return 2;
}

/*
** __gc: never raises, never does network I/O. An owned session not yet
** deleted goes to the reaper, which deletes it at the next safe point
** (or right away within bounds when the state is already closing).
*/
static int session_gc(lua_State *L) {
  struct aclua_session *ls = luaL_testudata(L, 1, AC_SESSION_MT);
  struct aclua_native *n;
  if (ls == NULL || ls->n == NULL)
    return 0;
  n = ls->n;
  ls->n = NULL;                       /* closed first */
  n->busy = 0;
  if (n->s != NULL && ac_session_owned(n->s) && !ac_session_closed(n->s) &&
      ls->r != NULL) {
    if (!ls->r->closed) {
      char line[160];
      aclua_reaper_push(ls->r, n);
      snprintf(line, sizeof line, "agentcube: session %s collected "
               "without stop(); it will be deleted", ac_session_id(n->s));
      lua_warning(L, line, 0);
      return 0;
    }
    (void)aclua_native_stop(L, n, ACLUA_CLOSE_DELETE_MS, &ls->close_err);
  }
  aclua_native_free(L, n);
  return 0;
}

/*
** __close (scope exit of `local ci <close>`): deletes an owned session now
** (an attached or detached one is only released). Never raises: a failed
** DELETE becomes a warning and ci.close_error.
*/
static int session_close(lua_State *L) {
  struct aclua_session *ls = luaL_testudata(L, 1, AC_SESSION_MT);
  if (ls == NULL || ls->n == NULL)
    return 0;
  if (ls->n->busy || ls->n->jobs > 0) {
    if (ls->n->close_pending == CLOSE_NONE)
      ls->n->close_pending = CLOSE_SCOPE;
    return 0;
  }
  close_now(L, ls, CLOSE_SCOPE);
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Fields                                                                  */

/* ci.session_id (nil once stopped, as the SDK sets it to None), ci.name,
** ci.namespace, ci.ttl, ci.owned, ci.closed, ci.close_error; methods from
** the methods table (upvalue 1). */
static int session_index(lua_State *L) {
  struct aclua_session *ls = check_session(L);
  const char *k;
  lua_settop(L, 2);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
    return 1;
  if (lua_type(L, 2) != LUA_TSTRING)
    return 0;
  k = lua_tostring(L, 2);
  if (strcmp(k, "session_id") == 0) {
    if (ls->n == NULL)
      return 0;
    lua_pushstring(L, ac_session_id(ls->n->s));
  } else if (strcmp(k, "owned") == 0) {
    lua_pushboolean(L, ls->n != NULL && ac_session_owned(ls->n->s));
  } else if (strcmp(k, "closed") == 0) {
    lua_pushboolean(L, ls->n == NULL);
  } else if (strcmp(k, "close_error") == 0) {
    if (ls->close_err.code == AC_OK)
      return 0;
    aclua_push_error(L, &ls->close_err);
  } else {
    lua_getiuservalue(L, 1, UV_INFO);
    if (lua_type(L, -1) != LUA_TTABLE)
      return 0;
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
  }
  return 1;
}

static int session_newindex(lua_State *L) {
  check_session(L);
  return luaL_error(L, "agentcube.Session: field '%s' is read-only",
                    luaL_tolstring(L, 2, NULL));
}

static int session_tostring(lua_State *L) {
  struct aclua_session *ls = check_session(L);
  if (ls->n == NULL)
    lua_pushliteral(L, "agentcube.Session (closed)");
  else
    lua_pushfstring(L, "agentcube.Session (%s)", ac_session_id(ls->n->s));
  return 1;
}

/* ---------------------------------------------------------------------- */
/* Construction                                                            */

struct new_opts {
  const char *name, *ns, *wm, *router, *token, *session_id;
  long long ttl;
  int verbose;
  int auth_idx;                       /* 0: none */
  long connect_ms, request_ms;
  int max_retries;
  int retries_set;
};

static const char *opt_str(lua_State *L, int t, const char *k) {
  int ty = lua_getfield(L, t, k);     /* stays on the stack: anchored */
  if (ty == LUA_TNIL)
    return NULL;
  if (ty != LUA_TSTRING)
    luaL_error(L, "bad option '%s' (string expected, got %s)", k,
               luaL_typename(L, -1));
  return lua_tostring(L, -1);
}

static long opt_ms(lua_State *L, int t, const char *k) {
  lua_Number v;
  int ok;
  if (lua_getfield(L, t, k) == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  v = lua_tonumberx(L, -1, &ok);
  if (!ok || !(v > 0) || v > 1e6)
    luaL_error(L, "bad option '%s' (positive number of seconds expected)",
               k);
  lua_pop(L, 1);
  return (long)ceil(v * 1000.0);
}

static void read_options(lua_State *L, int t, struct new_opts *o) {
  static const char *const keys[] = {
    "name", "namespace", "ttl", "workload_manager_url", "router_url",
    "auth_token", "verbose", "session_id", "auth", "connect_timeout",
    "request_timeout", "max_retries", NULL
  };
  lua_Integer i;
  int ok;
  memset(o, 0, sizeof *o);
  aclua_check_keys(L, t, keys, "CodeInterpreterClient: unknown option");
  o->name = opt_str(L, t, "name");
  o->ns = opt_str(L, t, "namespace");
  o->wm = opt_str(L, t, "workload_manager_url");
  o->router = opt_str(L, t, "router_url");
  o->token = opt_str(L, t, "auth_token");
  o->session_id = opt_str(L, t, "session_id");
  if (lua_getfield(L, t, "ttl") != LUA_TNIL) {
    i = lua_tointegerx(L, -1, &ok);
    if (!ok || i <= 0)
      luaL_error(L, "bad option 'ttl' (positive integer expected)");
    o->ttl = (long long)i;
  }
  lua_pop(L, 1);
  lua_getfield(L, t, "verbose");
  o->verbose = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (lua_getfield(L, t, "auth") != LUA_TNIL) {
    if (!aclua_auth_ok(L, -1))
      luaL_error(L, "bad option 'auth' (agentcube.TokenAuth, "
                 "ServiceAccountAuth, a function or an object with "
                 "get_token expected, got %s)", luaL_typename(L, -1));
    o->auth_idx = lua_gettop(L);      /* stays on the stack */
  } else {
    lua_pop(L, 1);
  }
  o->connect_ms = opt_ms(L, t, "connect_timeout");
  o->request_ms = opt_ms(L, t, "request_timeout");
  if (lua_getfield(L, t, "max_retries") != LUA_TNIL) {
    i = lua_tointegerx(L, -1, &ok);
    if (!ok || i < 0 || i > 100)
      luaL_error(L, "bad option 'max_retries' (0..100 expected)");
    o->max_retries = i == 0 ? -1 : (int)i;  /* the library's "never" */
    o->retries_set = 1;
  }
  lua_pop(L, 1);
}

/* [-0, +1] the info table behind ci.name, ci.namespace, ci.ttl */
static void push_info(lua_State *L, const struct new_opts *o) {
  lua_createtable(L, 0, 3);
  lua_pushstring(L, o->name ? o->name : AC_DEFAULT_NAME);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, o->ns ? o->ns : AC_DEFAULT_NAMESPACE);
  lua_setfield(L, -2, "namespace");
  lua_pushinteger(L, o->ttl ? o->ttl : AC_DEFAULT_TTL);
  lua_setfield(L, -2, "ttl");
}

/***
** core.new([opts]) -> agentcube.Session
** opts: the SDK's options by name (name, namespace, ttl,
** workload_manager_url, router_url, auth_token, verbose, session_id,
** auth) plus connect_timeout, request_timeout (seconds) and max_retries.
** Creates a session (one POST), or attaches to session_id (no HTTP).
** Without URLs (argument or environment) the local runtime is used,
** started if needed. Raises agentcube.Error; misuse raises a string.
*/
int aclua_session_prepare(lua_State *L, int idx, struct ac_session_opts *so,
                          const char **attach_id, ac_client **c) {
  struct new_opts o;
  struct ac_client_config cfg;
  struct aclua_session *ls;
  struct aclua_native *n;
  struct aclua_client *h;
  int verbose, ud_idx;

  memset(so, 0, sizeof *so);
  *attach_id = NULL;
  *c = NULL;
  idx = lua_absindex(L, idx);
  luaL_checktype(L, idx, LUA_TTABLE);
  read_options(L, idx, &o);
  aclua_safe_point(L);
  luaL_checkstack(L, 6, NULL);

  /* closed first, then acquire (rule 8) */
  ls = lua_newuserdatauv(L, sizeof *ls, 3);
  memset(ls, 0, sizeof *ls);
  ud_idx = lua_gettop(L);
  lua_getfield(L, LUA_REGISTRYINDEX, AC_REAPER_KEY);
  ls->r = luaL_testudata(L, -1, AC_REAPER_MT);
  lua_setiuservalue(L, ud_idx, UV_REAPER);
  push_info(L, &o);
  lua_setiuservalue(L, ud_idx, UV_INFO);
  luaL_setmetatable(L, AC_SESSION_MT);
  n = calloc(1, sizeof *n);
  if (n == NULL)
    return aclua_raisef(L, AC_ENOMEM, "out of memory");
  n->provider_ref = LUA_NOREF;
  ls->n = n;

  /* the shared client for this configuration (it may start the local
  ** runtime); anchored by the session */
  ac_client_config_init(&cfg);
  cfg.workload_manager_url = o.wm;
  cfg.router_url = o.router;
  cfg.auth_token = o.token;
  cfg.verbose = o.verbose;
  cfg.local_default = ac_local_default;
  cfg.interrupt = &sigint_flag;
  verbose = o.verbose;
  cfg.local_ud = &verbose;
  if (o.connect_ms > 0)
    cfg.connect_timeout_ms = o.connect_ms;
  if (o.request_ms > 0)
    cfg.request_timeout_ms = cfg.upload_timeout_ms = o.request_ms;
  if (o.retries_set)
    cfg.max_retries = o.max_retries;
  h = aclua_client_get(L, &cfg, o.auth_idx);
  lua_setiuservalue(L, ud_idx, UV_CLIENT);
  if (aclua_client_cb(h) != NULL) {
    /* a Lua provider: kept for every later call, and for a deferred
    ** DELETE after this object is gone */
    lua_pushvalue(L, o.auth_idx);
    n->provider_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    n->cb = aclua_client_cb(h);
  }
  memset(so, 0, sizeof *so);
  so->name = o.name;
  so->ns = o.ns;
  so->ttl = o.ttl;
  *attach_id = o.session_id;
  *c = aclua_client_ptr(h);
  return ud_idx;
}

void aclua_session_adopt(lua_State *L, int idx, ac_session *s) {
  struct aclua_session *ls = luaL_checkudata(L, idx, AC_SESSION_MT);
  if (ls->n != NULL && ls->n->s == NULL)
    ls->n->s = s;
  else
    ac_session_free(s);               /* not reached: prepared sessions */
}

void aclua_session_settle(lua_State *L, int idx) {
  struct aclua_session *ls = luaL_testudata(L, idx, AC_SESSION_MT);
  enum close_kind how;
  if (ls == NULL || ls->n == NULL || ls->n->busy || ls->n->jobs > 0 ||
      ls->n->close_pending == CLOSE_NONE)
    return;
  how = (enum close_kind)ls->n->close_pending;
  ls->n->close_pending = CLOSE_NONE;
  close_now(L, ls, how);
}

/***
** core.new([opts]) -> agentcube.Session
** opts: the SDK's options by name (name, namespace, ttl,
** workload_manager_url, router_url, auth_token, verbose, session_id,
** auth) plus connect_timeout, request_timeout (seconds) and max_retries.
** Creates a session (one POST), or attaches to session_id (no HTTP).
** Without URLs (argument or environment) the local runtime is used,
** started if needed. Raises agentcube.Error; misuse raises a string.
*/
int aclua_session_new(lua_State *L) {
  struct ac_session_opts so;
  struct aclua_session *ls;
  struct aclua_native *n;
  struct aclua_authcb *cb, saved;
  struct ac_error err;
  const char *attach_id;
  ac_client *c;
  ac_session *s = NULL;
  enum ac_code rc;
  int ud_idx, err_idx = 0;

  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  ud_idx = aclua_session_prepare(L, 1, &so, &attach_id, &c);
  ls = lua_touserdata(L, ud_idx);
  n = ls->n;
  luaL_checkstack(L, 4, NULL);
  cb = n->cb;
  if (cb != NULL) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, n->provider_ref);
    lua_pushnil(L);
    err_idx = lua_gettop(L);
    saved = *cb;
    cb->L = L;
    cb->fn_idx = err_idx - 1;
    cb->err_idx = err_idx;
  }

  n->busy = 1;
  n->busy_op = "CodeInterpreterClient";
  if (attach_id != NULL)
    rc = ac_session_attach(c, attach_id, so.name, so.ns, &s, &err);
  else
    rc = ac_session_create(c, &so, &s, &err);
  n->busy = 0;
  if (cb != NULL)
    *cb = saved;
  if (rc != AC_OK) {
    if (err_idx != 0 && !lua_isnil(L, err_idx)) {
      lua_pushvalue(L, err_idx);
      return lua_error(L);
    }
    return aclua_raise(L, &err);
  }
  n->s = s;
  lua_settop(L, ud_idx);
  return 1;
}

/* With a metatable and its method table on top of the stack (mt,
** methods): __index is a function (the fields are computed), so a tool
** that lists what an object offers (the REPL's Tab completion) finds the
** methods and the field names in mt.__methods and mt.__fields instead of
** calling it. Leaves the stack as it was. */
void aclua_describe(lua_State *L, const char *const fields[]) {
  int n = 0;
  while (fields[n] != NULL)
    n++;
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__methods");
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, fields[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -3, "__fields");
}

void aclua_session_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    { "execute_command", session_execute_command },
    { "execute_command_result", session_execute_command_result },
    { "run_code", session_run_code },
    { "run_code_result", session_run_code_result },
    { "_ext", session_ext },
    { "write_file", session_write_file },
    { "upload_file", session_upload_file },
    { "download_file", session_download_file },
    { "read_file", session_read_file },
    { "list_files", session_list_files },
    { "stop", session_stop },
    { "detach", session_detach },
    { "transfer", session_transfer },
    { NULL, NULL }
  };
  static const luaL_Reg mt[] = {
    { "__gc", session_gc },
    { "__close", session_close },
    { "__newindex", session_newindex },
    { "__tostring", session_tostring },
    { NULL, NULL }
  };
  static const char *const fields[] = {
    "session_id", "name", "namespace", "ttl", "owned", "closed",
    "close_error", NULL
  };
  luaL_newmetatable(L, AC_SESSION_MT);             /* mt */
  luaL_setfuncs(L, mt, 0);
  luaL_newlib(L, methods);                         /* mt, methods */
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, session_index, 1);           /* mt, methods, index */
  lua_setfield(L, -3, "__index");                  /* mt, methods */
  aclua_describe(L, fields);
  lua_remove(L, -2);                               /* methods */
}
