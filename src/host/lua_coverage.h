/*
** lua_coverage.h -- line coverage of the Lua code the host runs, for
** `make coverage` (a developer option).
**
** With AGENTCUBE_LUA_COVERAGE=DIR in the environment, every Lua state of
** the host counts the lines it runs of the agentcube modules (the copies
** embedded in the binary, "agentcube/...", or the files of
** AGENTCUBE_LUA_DIR, ".../lua/agentcube/...") and the process writes
** them at exit to DIR/<pid>.<random>.hits, one "source<TAB>line" per line
** hit: the format of tests/coverage/lua_lines.lua, which does the same
** for lua5.4. Unset (or empty), nothing is installed and nothing costs.
*/
#ifndef AGENTCUBE_LUA_COVERAGE_H
#define AGENTCUBE_LUA_COVERAGE_H

#include <lua.h>

/* Installs the line counter on L when AGENTCUBE_LUA_COVERAGE is set. */
void ac_host_coverage_start(lua_State *L);

#endif
