/*
** module.c -- luaopen_agentcube_core, the only symbol the module exports,
** and the module-level functions. The public API is the facade
** lua/agentcube/init.lua; this table is its engine:
**
**   core.new(opts)                 -> agentcube.Session
**   core.TokenAuth(token)          -> agentcube.Auth
**   core.ServiceAccountAuth{...}   -> agentcube.Auth
**   core.flush()                   -> deleted, failed
**   core.pending()                 -> sessions waiting in the reaper
**   core.Error                     the agentcube.Error metatable
**   core.Session                   the session methods table
**   core.null                      JSON null (a NULL light userdata)
**   core.version                   the library version
**
** It also puts the workflow engine's C modules, agentcube.async and
** agentcube.yaml (async.c, yaml_load.c), in package.preload: they live in
** this shared object, which exports nothing else.
**
** Nothing is kept in C statics: metatables and the reaper live in the
** registry, so several Lua states in one process stay independent.
*/
#include "aclua.h"
#include "async.h"
#include "yaml_load.h"

/***
** core.flush() -> deleted, failed
** Deletes now every owned session that was garbage-collected without
** stop(). Never raises; failures are counted (and warned about).
*/
static int mod_flush(lua_State *L) {
  struct aclua_reaper *r = aclua_reaper_get(L);
  size_t deleted = 0, failed = 0;
  if (r != NULL && !r->draining && !r->closed)
    aclua_reaper_drain(L, r, ACLUA_DRAIN_DELETE_MS, &deleted, &failed);
  lua_pushinteger(L, (lua_Integer)deleted);
  lua_pushinteger(L, (lua_Integer)failed);
  return 2;
}

/***
** core.pending() -> n
** How many collected sessions wait for deletion.
*/
static int mod_pending(lua_State *L) {
  struct aclua_reaper *r = aclua_reaper_get(L);
  lua_pushinteger(L, r != NULL ? (lua_Integer)r->queued : 0);
  return 1;
}

__attribute__((visibility("default")))
int luaopen_agentcube_core(lua_State *L);

int luaopen_agentcube_core(lua_State *L) {
  static const luaL_Reg fns[] = {
    { "new", aclua_session_new },
    { "TokenAuth", aclua_token_auth },
    { "ServiceAccountAuth", aclua_service_account_auth },
    { "AgentRuntimeClient", aclua_agent_runtime_new },
    { "flush", mod_flush },
    { "pending", mod_pending },
    { NULL, NULL }
  };
  struct ac_error err;
  luaL_checkversion(L);
  aclua_error_open(L);                             /* Error */
  aclua_box_open(L);
  aclua_auth_open(L);
  aclua_clients_open(L);
  aclua_reaper_open(L);
  /* libcurl's global state; reference counted by libcurl itself, and
  ** thread-safe in the libcurl Debian 12 ships (7.88). */
  if (ac_global_init(&err) != AC_OK)
    return aclua_raise(L, &err);
  luaL_newlib(L, fns);                             /* Error, M */
  lua_insert(L, -2);                               /* M, Error */
  lua_setfield(L, -2, "Error");                    /* M */
  aclua_session_open(L);                           /* M, methods */
  lua_setfield(L, -2, "Session");
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  lua_pushliteral(L, AC_VERSION);
  lua_setfield(L, -2, "version");
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_agentcube_async);
  lua_setfield(L, -2, "agentcube.async");
  lua_pushcfunction(L, luaopen_agentcube_yaml);
  lua_setfield(L, -2, "agentcube.yaml");
  lua_pop(L, 1);
  return 1;
}
