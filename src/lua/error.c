/*
** error.c -- agentcube.Error, the one error class of the Lua API.
**
** An error is a plain table with the metatable agentcube.Error:
**
**   code         "ETIMEOUT" (ac_codename of the library's code)
**   kind         the SDK's exception name: "CommandExecutionError",
**                "HTTPError", "ConnectionError", "TimeoutError",
**                "ValueError", ...
**   message      human-readable text
**   http_status  the HTTP status, when an answer arrived
**   exit_code, stderr, stdout, command   (CommandExecutionError only)
**
** A table, not a string, so that error() passes it through unchanged and
** nothing has to parse messages (STYLE rule 6); __tostring gives
** "agentcube: CODE: message" for message handlers such as lua.c's.
*/
#include "aclua.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/*
** The names follow the Python SDK where it has one (requests' HTTPError,
** ConnectionError and Timeout, ValueError for bad input and malformed
** answers, FileNotFoundError for a missing local file). A switch without
** default, so that -Wswitch names a code added to errors.def and not here.
*/
const char *aclua_kind(enum ac_code code) {
  switch (code) {
  case AC_OK:           return "OK";
  case AC_EINVAL:       return "ValueError";
  case AC_ENOMEM:       return "MemoryError";
  case AC_EIO:          return "OSError";
  case AC_ESYSTEM:      return "OSError";
  case AC_ETIMEOUT:     return "TimeoutError";
  case AC_ECONNECT:     return "ConnectionError";
  case AC_EHTTP:        return "HTTPError";
  case AC_EPROTO:       return "ValueError";
  case AC_ENOTFOUND:    return "FileNotFoundError";
  case AC_EAUTH:        return "AuthError";
  case AC_ECOMMAND:     return "CommandExecutionError";
  case AC_ECLOSED:      return "SessionError";
  case AC_EBUSY:        return "SessionError";
  case AC_EINTERRUPTED: return "InterruptedError";
  case AC_EUNSUPPORTED: return "ValueError";
  case AC_EACCESS:      return "PermissionError";
  case AC_ETOOBIG:      return "LimitError";
  case AC_ECONFIG:      return "ValueError";
  case AC_EEXIST:       return "FileExistsError";
  case AC_ELIMIT:       return "LimitError";
  case AC_ECANCELED:    return "CancelledError";
  case AC_CODE_LAST:    break;
  }
  return "AgentCubeError";
}

void aclua_push_error(lua_State *L, const struct ac_error *err) {
  lua_createtable(L, 0, 5);
  lua_pushstring(L, ac_codename(err->code));
  lua_setfield(L, -2, "code");
  lua_pushstring(L, aclua_kind(err->code));
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, err->msg[0] ? err->msg : ac_strerror(err->code));
  lua_setfield(L, -2, "message");
  if (err->http_status != 0) {
    lua_pushinteger(L, err->http_status);
    lua_setfield(L, -2, "http_status");
  }
  luaL_setmetatable(L, AC_ERROR_MT);
}

int aclua_raise(lua_State *L, const struct ac_error *err) {
  aclua_push_error(L, err);
  return lua_error(L);
}

int aclua_raisef(lua_State *L, enum ac_code code, const char *fmt, ...) {
  struct ac_error err;
  va_list ap;
  va_start(ap, fmt);
  ac_error_vset(&err, code, fmt, ap);
  va_end(ap);
  return aclua_raise(L, &err);
}

/* The code whose name is s, or AC_CODE_LAST. */
static enum ac_code code_by_name(const char *s) {
  for (int c = AC_OK + 1; c < AC_CODE_LAST; c++)
    if (strcmp(ac_codename((enum ac_code)c), s) == 0)
      return (enum ac_code)c;
  return AC_CODE_LAST;
}

/***
** Error.new(fields) -> agentcube.Error
** A new error object from a table of fields (copied); code defaults to
** "EINVAL", kind to the code's kind, message to the code's text. Lets Lua
** code (the facade, workflow steps) raise the same class as the C side.
** Raises only on misuse.
*/
static int error_new(lua_State *L) {
  enum ac_code code;
  const char *name;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_newtable(L);                                 /* fields, e */
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {                    /* fields, e, k, v */
    lua_pushvalue(L, -2);
    lua_insert(L, -2);                             /* fields, e, k, k, v */
    lua_rawset(L, 2);
  }
  if (lua_getfield(L, 2, "code") != LUA_TSTRING) {
    lua_pushliteral(L, "EINVAL");
    lua_setfield(L, 2, "code");
  }
  lua_pop(L, 1);
  lua_getfield(L, 2, "code");
  name = lua_tostring(L, -1);
  code = code_by_name(name);
  if (lua_getfield(L, 2, "kind") == LUA_TNIL) {
    lua_pushstring(L, code == AC_CODE_LAST ? "AgentCubeError"
                                           : aclua_kind(code));
    lua_setfield(L, 2, "kind");
  }
  if (lua_getfield(L, 2, "message") == LUA_TNIL) {
    lua_pushstring(L, code == AC_CODE_LAST ? name : ac_strerror(code));
    lua_setfield(L, 2, "message");
  }
  lua_settop(L, 2);
  luaL_setmetatable(L, AC_ERROR_MT);
  return 1;
}

/***
** Error.is(v) -> boolean
** Whether v is an agentcube.Error. Never raises.
*/
static int error_is(lua_State *L) {
  int is = 0;
  if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
    luaL_getmetatable(L, AC_ERROR_MT);
    is = lua_rawequal(L, -1, -2);
  }
  lua_pushboolean(L, is);
  return 1;
}

/***
** tostring(err) -> "agentcube: CODE: message"
*/
static int error_tostring(lua_State *L) {
  const char *code, *msg;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "code");
  lua_getfield(L, 1, "message");
  code = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "ERROR";
  msg = lua_type(L, 3) == LUA_TSTRING ? lua_tostring(L, 3) : "";
  lua_pushfstring(L, "agentcube: %s: %s", code, msg);
  return 1;
}

void aclua_error_open(lua_State *L) {
  static const luaL_Reg fns[] = {
    { "__tostring", error_tostring },
    { "new", error_new },
    { "is", error_is },
    { NULL, NULL }
  };
  luaL_newmetatable(L, AC_ERROR_MT);               /* mt */
  luaL_setfuncs(L, fns, 0);
}
