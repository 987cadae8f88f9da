/*
** lua_lines.c -- the line counter of `make coverage` as a Lua C module,
** for lua5.4: LUA_INIT_5_4 loads it into every lua5.4 the tests start
** (package.loadlib, then the function it returns). It is the counter the
** agentcube executable has built in (src/host/lua_coverage.c, which this
** module is linked with): AGENTCUBE_LUA_COVERAGE=DIR, the lines of
** .../lua/agentcube/NAME.lua, one DIR/PID.RANDOM.hits file at exit. In C
** because a Lua hook's own instructions would use up the instruction
** counts of the hooks the engine sets for its budgets.
**
** Linked with -z nodelete: lua_close unloads C modules, and the counts
** are written later, at exit.
*/
#include "lua_coverage.h"

#include <lua.h>

int luaopen_lua_lines(lua_State *L);

int luaopen_lua_lines(lua_State *L) {
  ac_host_coverage_start(L);
  return 0;
}
