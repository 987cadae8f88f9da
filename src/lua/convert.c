/*
** convert.c -- scratch boxes and JSON -> Lua conversion.
**
** Library results (command output, file lists, file contents) are malloc'd
** by libagentcube. Turning them into Lua values allocates, and any
** allocation may raise; so each result lives in a box userdata, marked
** to-be-closed, whose __close/__gc frees it (lauxlib's UBox). An error
** while converting then frees the result on the way out.
**
** JSON is parsed with jansson (which libagentcube already uses) into a box
** and walked recursively with a depth limit and lua_checkstack per level;
** a failure is reported through struct ac_error, never by raising half-way
** (the partial tables are plain garbage).
*/
#include "aclua.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* __gc and __close: frees what the box holds; idempotent, never raises. */
static int box_release(lua_State *L) {
  struct aclua_box *b = luaL_testudata(L, 1, AC_BOX_MT);
  if (b == NULL)
    return 0;
  ac_exec_result_free(&b->exec);
  ac_file_list_free(&b->list);
  if (b->bytes != NULL) {
    free(b->bytes);
    b->bytes = NULL;
    b->nbytes = 0;
  }
  if (b->json != NULL) {
    json_decref(b->json);
    b->json = NULL;
  }
  return 0;
}

struct aclua_box *aclua_box_new(lua_State *L, enum aclua_box_kind kind) {
  struct aclua_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);                 /* closed before the metatable */
  b->kind = kind;
  luaL_setmetatable(L, AC_BOX_MT);
  lua_toclose(L, -1);
  return b;
}

void aclua_box_open(lua_State *L) {
  static const luaL_Reg mt[] = {
    { "__gc", box_release },
    { "__close", box_release },
    { NULL, NULL }
  };
  luaL_newmetatable(L, AC_BOX_MT);
  luaL_setfuncs(L, mt, 0);
  lua_pop(L, 1);
}

/* Pushes j; AC_OK with one value pushed, or an error with the stack as it
** was. */
static enum ac_code push_value(lua_State *L, json_t *j, int depth,
                               struct ac_error *err) {
  enum ac_code rc;
  size_t i;
  if (depth > ACLUA_JSON_DEPTH)
    return ac_error_set(err, AC_EPROTO, "JSON nested deeper than %d levels",
                        ACLUA_JSON_DEPTH);
  if (!lua_checkstack(L, 3))
    return ac_error_set(err, AC_ENOMEM, "Lua stack overflow in JSON");
  switch (json_typeof(j)) {
  case JSON_OBJECT: {
    const char *k;
    json_t *v;
    lua_createtable(L, 0, (int)json_object_size(j));
    json_object_foreach(j, k, v) {
      rc = push_value(L, v, depth + 1, err);
      if (rc != AC_OK) {
        lua_pop(L, 1);
        return rc;
      }
      lua_setfield(L, -2, k);
    }
    return AC_OK;
  }
  case JSON_ARRAY:
    lua_createtable(L, (int)json_array_size(j), 0);
    for (i = 0; i < json_array_size(j); i++) {
      rc = push_value(L, json_array_get(j, i), depth + 1, err);
      if (rc != AC_OK) {
        lua_pop(L, 1);
        return rc;
      }
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return AC_OK;
  case JSON_STRING:
    lua_pushlstring(L, json_string_value(j), json_string_length(j));
    return AC_OK;
  case JSON_INTEGER:
    lua_pushinteger(L, (lua_Integer)json_integer_value(j));
    return AC_OK;
  case JSON_REAL:
    lua_pushnumber(L, (lua_Number)json_real_value(j));
    return AC_OK;
  case JSON_TRUE:
    lua_pushboolean(L, 1);
    return AC_OK;
  case JSON_FALSE:
    lua_pushboolean(L, 0);
    return AC_OK;
  case JSON_NULL:
    lua_pushlightuserdata(L, NULL);
    return AC_OK;
  }
  return ac_error_set(err, AC_EPROTO, "unknown JSON type");
}

enum ac_code aclua_push_json(lua_State *L, struct aclua_box *box,
                             const char *text, size_t len,
                             struct ac_error *err) {
  json_error_t jerr;
  enum ac_code rc;
  if (box->json != NULL)
    json_decref(box->json);
  /* JSON_DECODE_ANY: the "files" array comes as bare JSON text. */
  box->json = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
  if (box->json == NULL)
    return ac_error_set(err, AC_EPROTO, "malformed JSON: %s", jerr.text);
  rc = push_value(L, box->json, 0, err);
  json_decref(box->json);
  box->json = NULL;
  return rc;
}

void aclua_check_keys(lua_State *L, int idx, const char *const *keys,
                      const char *what) {
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    int known = 0;
    if (lua_type(L, -2) == LUA_TSTRING)
      for (int i = 0; keys[i] != NULL; i++)
        known |= strcmp(keys[i], lua_tostring(L, -2)) == 0;
    if (!known)
      luaL_error(L, "%s '%s'", what,
                 lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                : luaL_typename(L, -2));
    lua_pop(L, 1);
  }
}
