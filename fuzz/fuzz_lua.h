/*
** fuzz_lua.h -- a fresh Lua state with the project's Lua sources and the
** agentcube.yaml C module, for the workflow front end's harnesses.
*/
#ifndef AGENTCUBE_FUZZ_LUA_H
#define AGENTCUBE_FUZZ_LUA_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>

#include "yaml_load.h"

#ifndef FUZZ_LUA_DIR
#define FUZZ_LUA_DIR "lua"
#endif

/* Runs driver (a Lua chunk receiving the input as its argument). A Lua
** error escaping the driver is a finding: printed, then abort(). */
static inline void fuzz_lua_run(const char *driver, const char *data,
                                size_t size) {
  lua_State *L = luaL_newstate();
  if (L == NULL)
    return;
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_agentcube_yaml);
  lua_setfield(L, -2, "agentcube.yaml");
  lua_pop(L, 1);
  lua_getglobal(L, "package");
  lua_pushstring(L, FUZZ_LUA_DIR "/?.lua;" FUZZ_LUA_DIR "/?/init.lua");
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
  if (luaL_loadstring(L, driver) != LUA_OK) {
    fprintf(stderr, "driver: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_pushlstring(L, data, size);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "finding: %s\n", luaL_tolstring(L, -1, NULL));
    abort();
  }
  lua_close(L);
}

#endif
