/*
** chook.c -- a C debug hook for the Lua specs: what a profiler or a
** coverage counter installs. Lua code sees it only as "external hook" and
** cannot save and restore it, which is what the specs check the engine
** copes with.
**
**   chook.set()    -> installs a count hook on the calling thread
**   chook.clear()  -> removes it: the calling thread gets back the hook it
**                     had before set (none, or the line counter of
**                     `make coverage`, which must go on counting after
**                     these specs)
**   chook.count()  -> how many times it fired
**   chook.active() -> true while it is still the calling thread's hook
*/
#include <lauxlib.h>
#include <lua.h>

static long fired;

/* the hook set() replaced, put back by clear() */
static lua_Hook saved_hook;
static int saved_mask, saved_count;

static void on_count(lua_State *L, lua_Debug *ar) {
  (void)L;
  (void)ar;
  fired++;
}

static int l_set(lua_State *L) {
  if (lua_gethook(L) != on_count) {
    saved_hook = lua_gethook(L);
    saved_mask = lua_gethookmask(L);
    saved_count = lua_gethookcount(L);
  }
  lua_sethook(L, on_count, LUA_MASKCOUNT, 100);
  return 0;
}

static int l_clear(lua_State *L) {
  lua_sethook(L, saved_hook, saved_mask, saved_count);
  saved_hook = NULL;
  saved_mask = saved_count = 0;
  return 0;
}

static int l_count(lua_State *L) {
  lua_pushinteger(L, fired);
  return 1;
}

static int l_active(lua_State *L) {
  lua_pushboolean(L, lua_gethook(L) == on_count);
  return 1;
}

int luaopen_chook(lua_State *L);
int luaopen_chook(lua_State *L) {
  static const luaL_Reg fns[] = { { "set", l_set }, { "clear", l_clear },
                                  { "count", l_count },
                                  { "active", l_active }, { NULL, NULL } };
  luaL_newlib(L, fns);
  return 1;
}
