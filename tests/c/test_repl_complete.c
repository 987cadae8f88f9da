/* The REPL's Tab completion (ac_repl_complete) on values built here, no
** terminal: globals and nested keys, what an object offers through its
** metatable (__methods, __fields, a table __index), ':' offering methods
** only, private names only when asked for, paths through methods and
** __index tables, sorted results, and that no Lua code runs. */
#include "repl.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

/* The completions of text joined by ' ' ("" for none). */
static const char *complete(lua_State *L, const char *text) {
  static char buf[1024];
  char **w = ac_repl_complete(L, text);
  buf[0] = '\0';
  if (w == NULL)
    return buf;
  for (size_t i = 0; w[i] != NULL; i++) {
    if (i > 0)
      strncat(buf, " ", sizeof buf - strlen(buf) - 1);
    strncat(buf, w[i], sizeof buf - strlen(buf) - 1);
    free(w[i]);
  }
  free(w);
  return buf;
}

static const char setup_code[] =
  "nest = { inner = { deep = { value = 1, valve = 2, vat = 3 } } }\n"
  "zeta_b, zeta_a, zeta_c = 1, 2, 3\n"
  "_private_thing = 1\n"
  "calls = 0\n"
  /* an object like agentcube.Session: fields computed by an __index
  ** function, listed in __fields; methods in __methods */
  "obj = setmetatable({}, {\n"
  "  __index = function(_, k) calls = calls + 1 end,\n"
  "  __methods = { run = function() end, stop = function() end,\n"
  "                _hidden = function() end,\n"
  "                parts = { alpha = 1, beta = 2 } },\n"
  "  __fields = { 'id', 'name', 'run' } })\n"
  /* a Lua class: methods and a nested table through a table __index,
  ** two levels deep; a callable table counts as a method */
  "local base = { greet = function() end, conf = { port = 1, path = 2 } }\n"
  "local class = setmetatable({ walk = function() end,\n"
  "  callable = setmetatable({}, { __call = function() end }) },\n"
  "  { __index = base })\n"
  "inst = setmetatable({ own = 1 }, { __index = class })\n";

static lua_State *new_state(void) {
  lua_State *L = luaL_newstate();
  if (L == NULL)
    return NULL;
  luaL_openlibs(L);
  if (luaL_dostring(L, setup_code) != LUA_OK) {
    printf("# setup: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return NULL;
  }
  return L;
}

static int calls(lua_State *L) {
  int n;
  lua_getglobal(L, "calls");
  n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return n;
}

static void globals(lua_State *L) {
  tcase("globals and nested keys, sorted");
  REQUIRE(L != NULL, "a state");
  is_str(complete(L, "zeta_"), "zeta_a zeta_b zeta_c", "three globals");
  is_str(complete(L, "nest.inner.deep.va"),
         "nest.inner.deep.value nest.inner.deep.valve nest.inner.deep.vat",
         "nested keys");
  is_str(complete(L, "nest.inner.deep.vat"), "nest.inner.deep.vat",
         "a unique one");
  is_str(complete(L, "nest.nothing.x"), "", "an unknown step: nothing");
  is_str(complete(L, "zzz"), "", "an unknown name: nothing");
}

static void object(lua_State *L) {
  tcase("an object: __methods and __fields, without running Lua code");
  REQUIRE(L != NULL, "a state");
  is_str(complete(L, "obj."), "obj.id obj.name obj.parts obj.run obj.stop",
         "fields and methods, each once");
  is_int(calls(L), 0, "its __index function never ran");
}

static void methods_only(lua_State *L) {
  tcase("after ':' only methods");
  REQUIRE(L != NULL, "a state");
  is_str(complete(L, "obj:"), "obj:run obj:stop", "no fields, no tables");
  is_str(complete(L, "inst:"), "inst:callable inst:greet inst:walk",
         "through __index tables; a callable table is a method");
}

static void private_names(lua_State *L) {
  tcase("private names only when the typed part starts with '_'");
  REQUIRE(L != NULL, "a state");
  is_str(complete(L, "_private"), "_private_thing", "asked for");
  ok(strstr(complete(L, "_"), "_private_thing") != NULL, "'_' lists it");
  is_str(complete(L, "obj:_"), "obj:_hidden", "a private method");
  ok(strstr(complete(L, "obj:"), "_hidden") == NULL,
     "control: not without '_'");
}

static void index_levels(lua_State *L) {
  tcase("a table through two __index levels");
  REQUIRE(L != NULL, "a state");
  is_str(complete(L, "inst."),
         "inst.callable inst.conf inst.greet inst.own inst.walk",
         "own keys, the class's, the base's");
}

static void paths(lua_State *L) {
  tcase("paths through a __methods entry and through __index tables");
  REQUIRE(L != NULL, "a state");
  is_str(complete(L, "obj.parts."), "obj.parts.alpha obj.parts.beta",
         "a table among the methods");
  is_str(complete(L, "inst.conf.pa"), "inst.conf.path",
         "a table of the base class");
  is_str(complete(L, "obj.nothing."), "", "control: an unknown one");
  is_int(calls(L), 0, "still no __index call");
}

static void stack(lua_State *L) {
  int top;
  tcase("the stack is left as it was");
  REQUIRE(L != NULL, "a state");
  top = lua_gettop(L);
  complete(L, "inst.conf.pa");
  complete(L, "obj:");
  complete(L, "nest.nothing.x");
  is_int(lua_gettop(L), top, "same top");
}

int main(void) {
  lua_State *L = new_state();
  plan(7);
  globals(L);
  object(L);
  methods_only(L);
  private_names(L);
  index_levels(L);
  paths(L);
  stack(L);
  if (L != NULL)
    lua_close(L);
  return done_testing();
}
