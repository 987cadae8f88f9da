/*
** async_args.c -- the arguments of agentcube.async.submit, read into a job
** (async_job.h) through the blocking methods' own readers (session.c), so
** that a job and a method refuse the same arguments with the same words.
** The operations init.lua builds (spawn, contexts, file operations) come
** as plans from agentcube._plans.
*/
#include "async_job.h"

#include <string.h>

/* A string field of args (required, or NULL when absent). Anchored by
** the args copy. */
static const char *field_str(lua_State *L, int args, const char *k,
                             int required, size_t *len) {
  int t = lua_getfield(L, args, k);
  const char *s;
  size_t l;
  if (t == LUA_TNIL && !required) {
    lua_pop(L, 1);
    return NULL;
  }
  if (t != LUA_TSTRING && t != LUA_TNUMBER)
    luaL_error(L, "bad argument '%s' (string expected, got %s)", k,
               luaL_typename(L, -1));
  s = lua_tolstring(L, -1, &l);
  if (len != NULL)
    *len = l;
  else if (strlen(s) != l)
    luaL_error(L, "bad argument '%s' (string without NUL expected)", k);
  lua_setfield(L, args, k);           /* a number stays as its string */
  lua_getfield(L, args, k);
  s = lua_tolstring(L, -1, len);
  lua_pop(L, 1);
  return s;
}

/* Moves the callbacks found by the option readers into the anchor. */
void acasync_keep_fn(lua_State *L, int anchor, int idx, const char *key,
                    int *flag) {
  if (idx == 0)
    return;
  lua_pushvalue(L, idx);
  lua_setfield(L, anchor, key);
  *flag = 1;
}

/* Reads the arguments of a native op from args (a private copy) into j;
** scratch values are left on the stack for the caller to anchor. */
void acasync_read_args(lua_State *L, int args, int anchor, struct job *j) {
  static const char *const k_exec[] = { "command", "check", NULL };
  static const char *const k_run[] = { "language", "code", "check", NULL };
  static const char *const k_write[] = { "content", "path", NULL };
  static const char *const k_move[] = { "from", "to", "on_progress", NULL };
  static const char *const k_path[] = { "path", NULL };
  static const char *const k_stop[] = { "timeout", NULL };
  struct aclua_stream_fns fns;
  int t;
  memset(&fns, 0, sizeof fns);
  switch (j->op) {
  case OP_EXEC:
    t = lua_getfield(L, args, "command");
    if (t == LUA_TTABLE) {
      j->argv = aclua_argv_copy(L, lua_gettop(L), &j->argc);
    } else if (t == LUA_TSTRING) {
      j->line = lua_tostring(L, -1);
    } else {
      luaL_error(L, "bad argument 'command' (string or table expected, "
                 "got %s)", luaL_typename(L, -1));
    }
    aclua_exec_options(L, args, &j->o, 1, k_exec, &fns);
    break;
  case OP_RUN:
    j->a = field_str(L, args, "language", 1, NULL);
    j->data = field_str(L, args, "code", 1, &j->len);
    aclua_exec_options(L, args, &j->o, 0, k_run, &fns);
    break;
  case OP_WRITE:
    aclua_check_keys(L, args, k_write, "unknown option");
    j->data = field_str(L, args, "content", 1, &j->len);
    j->a = field_str(L, args, "path", 1, NULL);
    break;
  case OP_UPLOAD:
  case OP_DOWNLOAD:
    /* upload_file(local, remote) and download_file(remote, local) both
    ** take from, then to */
    aclua_check_keys(L, args, k_move, "unknown option");
    j->a = field_str(L, args, "from", 1, NULL);
    j->b = field_str(L, args, "to", 1, NULL);
    if (lua_getfield(L, args, "on_progress") != LUA_TNIL) {
      if (lua_type(L, -1) != LUA_TFUNCTION)
        luaL_error(L, "bad option 'on_progress' (function expected, got "
                   "%s)", luaL_typename(L, -1));
      acasync_keep_fn(L, anchor, lua_gettop(L), "on_progress",
                      &j->has_progress);
    }
    lua_pop(L, 1);
    break;
  case OP_LIST:
  case OP_READ:
    aclua_check_keys(L, args, k_path, "unknown option");
    j->a = field_str(L, args, "path", j->op == OP_READ, NULL);
    if (j->a == NULL)
      j->a = ".";
    break;
  case OP_STOP:
    aclua_check_keys(L, args, k_stop, "unknown option");
    if (lua_getfield(L, args, "timeout") != LUA_TNIL) {
      int isnum;
      lua_Number v = lua_tonumberx(L, -1, &isnum);
      if (!isnum || !(v > 0) || v > 1e6)
        luaL_error(L, "bad option 'timeout' (seconds expected)");
      j->stop_limit = (double)v;
    }
    lua_pop(L, 1);
    break;
  case OP_CREATE:
  case OP_EXT:
    break;
  }
  if (j->op == OP_EXEC || j->op == OP_RUN) {
    lua_getfield(L, args, "check");
    j->check = lua_toboolean(L, -1);
    lua_pop(L, 1);
    acasync_keep_fn(L, anchor, fns.out, "on_stdout", &j->has_out);
    acasync_keep_fn(L, anchor, fns.err, "on_stderr", &j->has_err);
    j->o.stream = j->has_out || j->has_err;
  }
}

/* The plan builder of the Lua op named at idx is pushed: the agentcube
** module's _plans[name] (init.lua), the module required when needed. */
int acasync_push_lua_op(lua_State *L, int idx) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "agentcube");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  if (lua_getfield(L, -1, "_plans") != LUA_TTABLE) {
    lua_pop(L, 2);
    return 0;
  }
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) != LUA_TFUNCTION) {
    lua_pop(L, 3);
    return 0;
  }
  lua_replace(L, -3);
  lua_pop(L, 1);
  return 1;
}
