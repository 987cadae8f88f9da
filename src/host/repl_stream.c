/*
** repl_stream.c -- in the REPL, a command's output appears while it runs.
**
** execute_command, execute_command_result, run_code and run_code_result
** of agentcube.Session are wrapped once, for this state: a call that gives
** no on_stdout (on_stderr) callback of its own gets one that writes the
** chunk to the terminal's stdout (stderr) at once. The call's result is
** then shown as usual. `_STREAM = false` turns this off (like _PROMPT, a
** global of the REPL); a script run with `agentcube FILE` is not affected.
*/
#include "repl.h"

#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

/* Whether the live output so far ended in the middle of a line. */
static int midline;

static int write_to(lua_State *L, FILE *f) {
  size_t len;
  const char *p = luaL_checklstring(L, 1, &len);
  fwrite(p, 1, len, f);
  fflush(f);
  if (len > 0)
    midline = p[len - 1] != '\n';
  return 0;
}

static int live_stdout(lua_State *L) {
  return write_to(L, stdout);
}

static int live_stderr(lua_State *L) {
  return write_to(L, stderr);
}

static int streaming_on(lua_State *L) {
  int on;
  lua_getglobal(L, "_STREAM");
  on = lua_isnil(L, -1) || lua_toboolean(L, -1);
  lua_pop(L, 1);
  return on;
}

/* Replaces the options table at idx by a copy with the live callbacks
** where it has none. */
static void with_live_callbacks(lua_State *L, int idx) {
  lua_newtable(L);
  if (lua_type(L, idx) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    }
  }
  if (lua_getfield(L, -1, "on_stdout") == LUA_TNIL) {
    lua_pushcfunction(L, live_stdout);
    lua_setfield(L, -3, "on_stdout");
  }
  lua_pop(L, 1);
  if (lua_getfield(L, -1, "on_stderr") == LUA_TNIL) {
    lua_pushcfunction(L, live_stderr);
    lua_setfield(L, -3, "on_stderr");
  }
  lua_pop(L, 1);
  lua_replace(L, idx);
}

/* upvalues: the method, how many arguments come before the options
** (after self). The options are (timeout) / (opts) / (timeout, opts). */
static int streamed_call(lua_State *L) {
  int fixed = (int)lua_tointeger(L, lua_upvalueindex(2));
  int first = 2 + fixed, n = lua_gettop(L);
  if (streaming_on(L)) {
    if (n >= first && lua_type(L, first) == LUA_TTABLE) {
      with_live_callbacks(L, first);
    } else if (n <= first + 1 && (n <= first || lua_isnil(L, first + 1))) {
      lua_settop(L, first + 1);
      with_live_callbacks(L, first + 1);
    } else if (lua_type(L, first + 1) == LUA_TTABLE) {
      with_live_callbacks(L, first + 1);
    }                        /* else: a bad argument, the method says so */
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

void ac_repl_stream_install(lua_State *L) {
  static const struct { const char *name; int fixed; } wrapped[] = {
    { "execute_command", 1 }, { "execute_command_result", 1 },
    { "run_code", 2 }, { "run_code_result", 2 }, { NULL, 0 }
  };
  int top = lua_gettop(L);
  luaL_getmetatable(L, "agentcube.Session");
  if (lua_type(L, -1) == LUA_TTABLE &&
      lua_getfield(L, -1, "__methods") == LUA_TTABLE) {
    for (int i = 0; wrapped[i].name != NULL; i++) {
      if (lua_getfield(L, -1, wrapped[i].name) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        continue;
      }
      lua_pushinteger(L, wrapped[i].fixed);
      lua_pushcclosure(L, streamed_call, 2);
      lua_setfield(L, -2, wrapped[i].name);
    }
  }
  lua_settop(L, top);
}

int ac_repl_stream_midline(void) {
  int was = midline;
  midline = 0;
  return was;
}
