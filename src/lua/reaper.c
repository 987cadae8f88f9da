/*
** reaper.c -- deferred deletion of sessions that Lua collected while they
** were still owned.
**
** __gc must not do network I/O (finalizers run "in unpredictable times"
** and should do "the minimum necessary"), so a session's __gc only links
** its native half into the reaper's queue: no allocation, no Lua call, no
** I/O (neovim's multiqueue_put is the model). The queue is emptied at safe
** points: the start of every module call, agentcube.flush(), and lua_close.
**
** The reaper is a sentinel userdata in the registry, created by the first
** luaopen of the module in a state, before any session exists. lua_close
** calls finalizers in the reverse order in which objects were marked for
** finalization, so the sentinel's __gc runs after every session's __gc has
** queued its session, and deletes them all. Deferred DELETEs are bounded
** (ACLUA_DRAIN_DELETE_MS at safe points, ACLUA_CLOSE_DELETE_MS at close)
** and never retried, and the queue is abandoned after
** ACLUA_DRAIN_MAX_FAILS transport failures in a row: a server that is gone
** must neither stall every later call nor keep a host from exiting.
*/
#include "aclua.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct aclua_reaper *aclua_reaper_get(lua_State *L) {
  struct aclua_reaper *r;
  lua_getfield(L, LUA_REGISTRYINDEX, AC_REAPER_KEY);
  r = luaL_testudata(L, -1, AC_REAPER_MT);
  lua_pop(L, 1);
  return r;
}

void aclua_reaper_push(struct aclua_reaper *r, struct aclua_native *n) {
  n->next = r->head;
  r->head = n;
  r->queued++;
}

enum ac_code aclua_native_stop(lua_State *L, struct aclua_native *n,
                               long limit_ms, struct ac_error *err) {
  enum ac_code rc;
  struct aclua_authcb saved;
  int top = lua_gettop(L);
  if (n->s == NULL)
    return AC_OK;
  /* A Lua provider may be asked for a token for the DELETE: give it this
  ** thread and its slots for the duration of the call. */
  if (n->cb != NULL) {
    saved = *n->cb;
    n->cb->L = NULL;
    if (n->provider_ref != LUA_NOREF && lua_checkstack(L, 2)) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, n->provider_ref);
      lua_pushnil(L);
      n->cb->L = L;
      n->cb->fn_idx = top + 1;
      n->cb->err_idx = top + 2;
    }
  }
  if (limit_ms > 0)
    rc = ac_session_stop_within(n->s, limit_ms, err);
  else
    rc = ac_session_stop(n->s, err);
  if (n->cb != NULL)
    *n->cb = saved;
  lua_settop(L, top);
  return rc;
}

void aclua_native_free(lua_State *L, struct aclua_native *n) {
  if (n == NULL)
    return;
  /* The session holds the client, which holds the auth provider and with
  ** it n->cb: all go here. */
  ac_session_free(n->s);
  n->s = NULL;
  n->cb = NULL;
  if (n->provider_ref != LUA_NOREF)
    luaL_unref(L, LUA_REGISTRYINDEX, n->provider_ref);
  free(n);
}

static int transport_failure(enum ac_code rc) {
  return rc == AC_ECONNECT || rc == AC_ETIMEOUT || rc == AC_EIO;
}

void aclua_reaper_drain(lua_State *L, struct aclua_reaper *r, long limit_ms,
                        size_t *deleted, size_t *failed) {
  size_t ok = 0, bad = 0, abandoned = 0;
  int in_row = 0;
  char line[AC_ERROR_SIZE + 160];
  if (deleted != NULL)
    *deleted = 0;
  if (failed != NULL)
    *failed = 0;
  if (r == NULL || r->draining)
    return;
  r->draining = 1;
  /* A provider called during a DELETE may run Lua, and a GC step there may
  ** queue more sessions: the loop takes them too. */
  while (r->head != NULL) {
    struct aclua_native *n = r->head;
    struct ac_error err;
    enum ac_code rc;
    r->head = n->next;
    r->queued--;
    n->next = NULL;
    if (in_row >= ACLUA_DRAIN_MAX_FAILS) {
      abandoned++;
      aclua_native_free(L, n);
      continue;
    }
    rc = aclua_native_stop(L, n, limit_ms, &err);
    if (rc == AC_OK) {
      ok++;
      in_row = 0;
    } else {
      bad++;
      in_row = transport_failure(rc) ? in_row + 1 : 0;
      snprintf(line, sizeof line, "agentcube: could not delete session %s "
               "(collected without stop()): %s", ac_session_id(n->s),
               err.msg);
      lua_warning(L, line, 0);
    }
    aclua_native_free(L, n);
  }
  r->draining = 0;
  if (abandoned > 0) {
    snprintf(line, sizeof line, "agentcube: server unreachable, %zu owned "
             "session%s left undeleted", abandoned, abandoned == 1 ? "" : "s");
    lua_warning(L, line, 0);
  }
  if (deleted != NULL)
    *deleted = ok;
  if (failed != NULL)
    *failed = bad + abandoned;
}

void aclua_safe_point(lua_State *L) {
  struct aclua_reaper *r = aclua_reaper_get(L);
  if (r != NULL && r->head != NULL && !r->draining && !r->closed)
    aclua_reaper_drain(L, r, ACLUA_DRAIN_DELETE_MS, NULL, NULL);
}

/* The sentinel's __gc: the Lua state is closing (nothing else keeps the
** sentinel from collection), so every owned session still queued is
** deleted now, within bounds. Never raises. */
static int reaper_gc(lua_State *L) {
  struct aclua_reaper *r = luaL_testudata(L, 1, AC_REAPER_MT);
  if (r == NULL || r->closed)
    return 0;
  r->closed = 1;
  r->draining = 0;
  aclua_reaper_drain(L, r, ACLUA_CLOSE_DELETE_MS, NULL, NULL);
  return 0;
}

void aclua_reaper_open(lua_State *L) {
  static const luaL_Reg mt[] = {
    { "__gc", reaper_gc },
    { NULL, NULL }
  };
  struct aclua_reaper *r;
  if (aclua_reaper_get(L) != NULL)
    return;                           /* a second require of the module */
  luaL_newmetatable(L, AC_REAPER_MT);
  luaL_setfuncs(L, mt, 0);
  lua_pop(L, 1);
  r = lua_newuserdatauv(L, sizeof *r, 0);
  memset(r, 0, sizeof *r);
  luaL_setmetatable(L, AC_REAPER_MT);
  lua_setfield(L, LUA_REGISTRYINDEX, AC_REAPER_KEY);
}
