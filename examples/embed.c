/*
** embed.c -- a host program that embeds Lua 5.4 with agentcube, the way a
** game, an editor or a tool does: it owns the lua_State, links the module
** (agentcube.core) into itself instead of loading a shared object, carries
** the Lua facade inside the executable, and runs a user script.
**
**   usage: embed SCRIPT [ARGS...]
**
** What a host must get right, and where this file does it:
**   - libcurl's global state before anything else, cleaned up after
**     lua_close (main);
**   - everything that touches Lua in protected mode, lua.c style: main
**     calls pmain through lua_pcall;
**   - the modules in package.preload, so `require "agentcube"` works with
**     no file installed and loads lazily (pmain);
**   - scripts run with a message handler that prints agentcube.Error
**     objects through their __tostring and adds a traceback (msghandler);
**   - lua_close at the end: it runs every finalizer, and the module's
**     reaper deletes each session the script still owned.
**
** AGENTCUBE_LUA_DIR=dir makes the host load the facade from
** dir/agentcube/init.lua instead of the embedded copy (for development).
*/
#include "agentcube.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <stdio.h>
#include <stdlib.h>

#include "facade_lua.h"          /* ac_lua_facade[], ac_lua_facade_len */

/* The module is linked in; its loader is its only entry point. */
int luaopen_agentcube_core(lua_State *L);

static const char *progname = "embed";

/* package.preload["agentcube"]: the facade, from disk when asked to, else
** the copy embedded at build time. Source text, not bytecode, so that
** tracebacks carry the file's line numbers. */
static int load_facade(lua_State *L) {
  const char *dir = getenv("AGENTCUBE_LUA_DIR");
  int status;
  if (dir != NULL && dir[0] != '\0') {
    const char *path = lua_pushfstring(L, "%s/agentcube/init.lua", dir);
    status = luaL_loadfilex(L, path, "t");
  } else {
    status = luaL_loadbufferx(L, (const char *)ac_lua_facade,
                              ac_lua_facade_len, "@agentcube/init.lua",
                              "t");
  }
  if (status != LUA_OK)
    return lua_error(L);
  lua_pushliteral(L, "agentcube");
  lua_call(L, 1, 1);
  return 1;
}

/* Turns any error object into text plus a traceback; agentcube.Error
** tables print through their __tostring ("agentcube: ECODE: message"). */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else
      msg = lua_pushfstring(L, "(error object is a %s value)",
                            luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Runs the chunk at the top with narg arguments below it. */
static int docall(lua_State *L, int narg) {
  int base = lua_gettop(L) - narg;
  int status;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  status = lua_pcall(L, narg, 0, base);
  lua_remove(L, base);
  return status;
}

static void report(lua_State *L, int status) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "%s: %s\n", progname,
            msg != NULL ? msg : "(error object is not a string)");
    fflush(stderr);
    lua_pop(L, 1);
  }
}

static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = lua_touserdata(L, 2);
  int status, i;

  luaL_checkversion(L);
  lua_gc(L, LUA_GCSTOP);              /* no GC while building the state */
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_agentcube_core);
  lua_setfield(L, -2, "agentcube.core");
  lua_pushcfunction(L, load_facade);
  lua_setfield(L, -2, "agentcube");
  lua_pop(L, 1);
  /* arg, as lua.c builds it: arg[0] the script, arg[1..] its arguments */
  lua_createtable(L, argc - 2, 2);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - 1);
  }
  lua_setglobal(L, "arg");
  lua_gc(L, LUA_GCRESTART);
  lua_gc(L, LUA_GCGEN, 0, 0);

  status = luaL_loadfilex(L, argv[1], "t");
  if (status == LUA_OK) {
    luaL_checkstack(L, argc, "too many arguments");
    for (i = 2; i < argc; i++)
      lua_pushstring(L, argv[i]);
    status = docall(L, argc - 2);
  }
  report(L, status);
  lua_pushboolean(L, status == LUA_OK);
  return 1;
}

int main(int argc, char **argv) {
  struct ac_error err;
  lua_State *L;
  int status, ok;

  if (argc > 0 && argv[0][0] != '\0')
    progname = argv[0];
  if (argc < 2) {
    fprintf(stderr, "usage: %s SCRIPT [ARGS...]\n", progname);
    return 2;
  }
  if (ac_global_init(&err) != AC_OK) {
    fprintf(stderr, "%s: %s\n", progname, err.msg);
    return 1;
  }
  L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "%s: cannot create the Lua state\n", progname);
    ac_global_cleanup();
    return 1;
  }
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  status = lua_pcall(L, 2, 1, 0);
  ok = status == LUA_OK && lua_toboolean(L, -1);
  report(L, status);
  /* Runs every finalizer: sessions the script still owns are deleted. */
  lua_close(L);
  ac_global_cleanup();
  return ok ? 0 : 1;
}
