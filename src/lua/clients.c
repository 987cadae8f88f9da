/*
** clients.c -- one ac_client per distinct configuration in a Lua state,
** shared by every CodeInterpreterClient made with that configuration.
**
** An ac_client holds the pool of libcurl handles and their live
** connections. One per CodeInterpreterClient would give a script that
** makes a thousand clients a thousand idle connections (and the server a
** thousand connection threads) until the garbage collector gets to them;
** sharing keeps it to the pool's few, and lets a new client reuse a warm
** connection.
**
** The cache is a weak-valued table in the registry: key -> holder
** userdata ("agentcube.client") owning one reference on the ac_client.
** Each session userdata anchors its holder (a user value), so the entry
** lives while any client object using it does; sessions waiting in the
** reaper keep the ac_client itself alive through their own reference.
**
** The key is the resolved configuration: the endpoints (explicit, else the
** environment, else "local" and the state directory), the auth (the
** token, or the identity of the auth object, which the holder anchors so
** that the address cannot be reused), verbose and the timeouts. A cached
** local-runtime client is reused only while serve.json still names its URL
** and the server's process is alive; otherwise the local hook runs again
** (and restarts the server when needed).
*/
#include "aclua.h"

#include <stdlib.h>
#include <string.h>

#define AC_CLIENTS_KEY "agentcube.clients"      /* registry: the cache */

struct aclua_client {
  ac_client *c;                       /* one reference; NULL: released */
  struct aclua_authcb *cb;            /* borrowed from c's auth, or NULL */
  int local;                          /* endpoints from the local runtime */
};

/* __gc: drops the cache's reference. Never raises. */
static int client_gc(lua_State *L) {
  struct aclua_client *h = luaL_testudata(L, 1, AC_CLIENT_MT);
  if (h != NULL && h->c != NULL) {
    ac_client *c = h->c;
    h->c = NULL;
    h->cb = NULL;
    ac_client_free(c);
  }
  return 0;
}

void aclua_clients_open(lua_State *L) {
  static const luaL_Reg mt[] = {
    { "__gc", client_gc },
    { NULL, NULL }
  };
  luaL_newmetatable(L, AC_CLIENT_MT);
  luaL_setfuncs(L, mt, 0);
  lua_pop(L, 1);
  if (lua_getfield(L, LUA_REGISTRYINDEX, AC_CLIENTS_KEY) != LUA_TTABLE) {
    lua_newtable(L);                                /* nil, cache */
    lua_createtable(L, 0, 1);                       /* nil, cache, mt */
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, AC_CLIENTS_KEY);
  }
  lua_pop(L, 1);
}

static const char *setting(const char *explicit_value, const char *env) {
  const char *v = explicit_value;
  if (v == NULL || v[0] == '\0')
    v = getenv(env);
  return v != NULL && v[0] != '\0' ? v : NULL;
}

/* Pushes the cache key of cfg; home receives the state directory of a
** local configuration (else ""). Returns whether it is local. */
static int push_key(lua_State *L, const struct ac_client_config *cfg,
                    int auth_idx, char *home, size_t size) {
  const char *wm = setting(cfg->workload_manager_url,
                           "WORKLOAD_MANAGER_URL");
  const char *router = setting(cfg->router_url, "ROUTER_URL");
  int local = wm == NULL && router == NULL;
  struct ac_error err;
  home[0] = '\0';
  if (local) {
    if (ac_local_home(home, size, &err) != AC_OK)
      home[0] = '\0';               /* ac_client_new reports it */
    lua_pushfstring(L, "local\n%s\n", home);
  } else {
    lua_pushfstring(L, "remote\n%s\n%s\n", wm ? wm : "",
                    router ? router : "");
  }
  if (auth_idx != 0)
    lua_pushfstring(L, "auth %p\n", lua_topointer(L, auth_idx));
  else if (cfg->auth_token != NULL && cfg->auth_token[0] != '\0')
    lua_pushfstring(L, "token %s\n", cfg->auth_token);
  else
    lua_pushliteral(L, "none\n");
  lua_pushfstring(L, "%d %I %I %I %d", cfg->verbose,
                  (lua_Integer)cfg->connect_timeout_ms,
                  (lua_Integer)cfg->request_timeout_ms,
                  (lua_Integer)cfg->upload_timeout_ms, cfg->max_retries);
  lua_concat(L, 3);
  return local;
}

struct aclua_client *aclua_client_get(lua_State *L,
                                      const struct ac_client_config *cfg,
                                      int auth_idx) {
  struct ac_client_config own = *cfg;
  struct aclua_client *h;
  struct aclua_authcb *cb = NULL;
  struct ac_error err;
  ac_auth *auth = NULL;
  ac_client *c = NULL;
  char home[4096];
  int local, key, cache, top = lua_gettop(L);
  enum ac_code rc;

  luaL_checkstack(L, 6, NULL);
  if (auth_idx != 0)
    auth_idx = lua_absindex(L, auth_idx);
  local = push_key(L, cfg, auth_idx, home, sizeof home);
  key = lua_gettop(L);
  lua_getfield(L, LUA_REGISTRYINDEX, AC_CLIENTS_KEY);
  cache = lua_gettop(L);
  lua_pushvalue(L, key);
  lua_rawget(L, cache);                           /* key, cache, holder? */
  h = luaL_testudata(L, -1, AC_CLIENT_MT);
  if (h != NULL && h->c != NULL &&
      (!h->local || ac_local_live(home,
                                     ac_client_workload_manager_url(h->c)))) {
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return h;
  }
  lua_pop(L, 1);

  /* a new holder, closed first (rule 8) */
  h = lua_newuserdatauv(L, sizeof *h, 1);
  memset(h, 0, sizeof *h);
  luaL_setmetatable(L, AC_CLIENT_MT);
  if (auth_idx != 0) {
    lua_pushvalue(L, auth_idx);       /* anchors the identity in the key */
    lua_setiuservalue(L, -2, 1);
    rc = aclua_auth_resolve(L, auth_idx, &auth, &cb, &err);
    if (rc != AC_OK)
      aclua_raise(L, &err);
  }
  /* auth has no Lua owner until it is unref'd: nothing may raise here */
  own.auth = auth;
  rc = ac_client_new(&own, &c, &err);
  ac_auth_unref(auth);                /* the client keeps its own */
  if (rc != AC_OK)
    aclua_raise(L, &err);             /* cb went with auth */
  h->c = c;
  h->cb = cb;
  h->local = local;
  lua_pushvalue(L, key);
  lua_pushvalue(L, -2);
  lua_rawset(L, cache);                           /* cache[key] = holder */
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
  return h;
}

ac_client *aclua_client_ptr(const struct aclua_client *h) {
  return h->c;
}

struct aclua_authcb *aclua_client_cb(const struct aclua_client *h) {
  return h->cb;
}
