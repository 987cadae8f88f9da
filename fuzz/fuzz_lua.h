/*
** fuzz_lua.h -- a fresh Lua state with the project's Lua sources and the
** agentcube.yaml C module, for the workflow front end's harnesses.
**
** The Lua interpreter is a system library, not instrumented, so libFuzzer
** would see no coverage of the Lua code it fuzzes (the expression
** language: 2 edges). A line hook gives it some: each pair (previous
** line, line) of a Lua source bumps one of libFuzzer's extra counters.
** Include once per harness.
*/
#ifndef AGENTCUBE_FUZZ_LUA_H
#define AGENTCUBE_FUZZ_LUA_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yaml_load.h"

#ifndef FUZZ_LUA_DIR
#define FUZZ_LUA_DIR "lua"
#endif

#define FUZZ_LUA_EDGES 65536
__attribute__((used, section("__libfuzzer_extra_counters")))
static uint8_t fuzz_lua_edges[FUZZ_LUA_EDGES];
static uint32_t fuzz_lua_prev;

/* A line of Lua ran (the hook function: "line", line): count the edge
** from the previous one. The source is known by its name's length and
** last bytes (cheap, stable across runs, unlike its address). A Lua hook
** (debug.sethook with this C function), not a C one: code that saves and
** restores the hook with debug.gethook/sethook (the expression sandbox)
** gets a function back, where a C hook reads "external hook". */
static int fuzz_lua_line(lua_State *L) {
  lua_Debug ar;
  uint32_t h = 2166136261u;
  size_t n;
  if (!lua_getstack(L, 1, &ar) || !lua_getinfo(L, "S", &ar) ||
      ar.source == NULL)
    return 0;
  n = strlen(ar.source);
  h = (h ^ (uint32_t)n) * 16777619u;
  for (size_t i = n > 24 ? n - 24 : 0; i < n; i++)
    h = (h ^ (unsigned char)ar.source[i]) * 16777619u;
  h ^= (uint32_t)lua_tointeger(L, 2) * 2654435761u;
  fuzz_lua_edges[(h ^ (fuzz_lua_prev >> 1)) % FUZZ_LUA_EDGES]++;
  fuzz_lua_prev = h;
  return 0;
}

/* Runs driver (a Lua chunk receiving the input as its argument). A Lua
** error escaping the driver is a finding: printed, then abort(). */
static inline void fuzz_lua_run(const char *driver, const char *data,
                                size_t size) {
  lua_State *L = luaL_newstate();
  if (L == NULL)
    return;
  luaL_openlibs(L);
  fuzz_lua_prev = 0;
  lua_getglobal(L, "debug");
  lua_getfield(L, -1, "sethook");
  lua_pushcfunction(L, fuzz_lua_line);
  lua_pushstring(L, "l");
  lua_call(L, 2, 0);
  lua_pop(L, 1);
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
