/*
** auth.c -- auth providers for the Lua API: agentcube.TokenAuth and
** agentcube.ServiceAccountAuth (userdata "agentcube.Auth" holding an
** ac_auth), and any Lua function or object with get_token() turned into a
** libagentcube callback provider.
**
** The callback provider runs Lua inside the library call that needs a
** token: under lua_pcall, on the lua_State the binding put in its state
** for the duration of that call (never one kept from earlier), with the
** provider at a stack slot the binding pushed. An error the provider raises
** is kept in another slot and raised again, unchanged, once the library
** call has returned and released everything (Lua-cURLv3's approach), just
** as the SDK lets get_token()'s exception propagate.
*/
#include "aclua.h"

#include <stdlib.h>
#include <string.h>

struct aclua_auth {
  ac_auth *a;                         /* owned; NULL once released */
  const char *what;                   /* static: the class name */
};

/* ---------------------------------------------------------------------- */
/* Lua providers                                                           */

/* Protected part: provider -> its token (or whatever it returned). */
static int authcb_call(lua_State *L) {
  if (lua_type(L, 1) == LUA_TFUNCTION) {
    lua_call(L, 0, 1);
  } else {
    lua_getfield(L, 1, "get_token");                /* obj, get_token */
    lua_insert(L, 1);                               /* get_token, obj */
    lua_call(L, 1, 1);
  }
  return 1;
}

static enum ac_code authcb_token(void *ud, char **token,
                                 struct ac_error *err) {
  struct aclua_authcb *cb = ud;
  lua_State *L = cb->L;
  const char *s;
  size_t len;
  *token = NULL;
  if (L == NULL)
    return ac_error_set(err, AC_EAUTH, "the Lua auth provider can only "
                        "run during a call from Lua");
  if (!lua_checkstack(L, 3))
    return ac_error_set(err, AC_ENOMEM, "Lua stack overflow");
  lua_pushcfunction(L, authcb_call);
  lua_pushvalue(L, cb->fn_idx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    if (lua_type(L, -1) == LUA_TSTRING)
      ac_error_set(err, AC_EAUTH, "auth provider failed: %s",
                   lua_tostring(L, -1));
    else
      ac_error_set(err, AC_EAUTH, "auth provider raised an error");
    lua_replace(L, cb->err_idx);      /* kept, raised again by the caller */
    return AC_EAUTH;
  }
  if (lua_type(L, -1) != LUA_TSTRING) {
    ac_error_set(err, AC_EAUTH, "auth provider returned a %s, not a token",
                 luaL_typename(L, -1));
    lua_pop(L, 1);
    return AC_EAUTH;
  }
  s = lua_tolstring(L, -1, &len);
  if (strlen(s) != len) {
    lua_pop(L, 1);
    return ac_error_set(err, AC_EAUTH, "auth token holds a NUL byte");
  }
  *token = malloc(len + 1);
  if (*token != NULL)
    memcpy(*token, s, len + 1);
  lua_pop(L, 1);
  if (*token == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  return AC_OK;
}

static void authcb_free(void *ud) {
  free(ud);
}

int aclua_auth_ok(lua_State *L, int idx) {
  int ok;
  if (luaL_testudata(L, idx, AC_AUTH_MT) != NULL ||
      lua_type(L, idx) == LUA_TFUNCTION)
    return 1;
  if (lua_type(L, idx) == LUA_TUSERDATA) {
    if (luaL_getmetafield(L, idx, "__index") == LUA_TNIL)
      return 0;
    lua_pop(L, 1);
  } else if (lua_type(L, idx) != LUA_TTABLE) {
    return 0;
  }
  lua_getfield(L, idx, "get_token");
  ok = !lua_isnil(L, -1);
  lua_pop(L, 1);
  return ok;
}

enum ac_code aclua_auth_resolve(lua_State *L, int idx, ac_auth **out,
                                struct aclua_authcb **cb,
                                struct ac_error *err) {
  struct aclua_auth *ua = luaL_testudata(L, idx, AC_AUTH_MT);
  struct aclua_authcb *c;
  enum ac_code rc;
  *out = NULL;
  *cb = NULL;
  if (ua != NULL) {
    if (ua->a == NULL)
      return ac_error_set(err, AC_ECLOSED, "auth provider was released");
    *out = ac_auth_ref(ua->a);
    return AC_OK;
  }
  c = calloc(1, sizeof *c);
  if (c == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  rc = ac_auth_new_callback(authcb_token, c, authcb_free, out, err);
  if (rc != AC_OK) {
    free(c);
    return rc;
  }
  *cb = c;
  return AC_OK;
}

/* ---------------------------------------------------------------------- */
/* agentcube.Auth userdata                                                 */

/* [-0, +1] a closed Auth userdata (STYLE rule 8). */
static struct aclua_auth *auth_push(lua_State *L, const char *what) {
  struct aclua_auth *ua = lua_newuserdatauv(L, sizeof *ua, 0);
  ua->a = NULL;
  ua->what = what;
  luaL_setmetatable(L, AC_AUTH_MT);
  return ua;
}

/***
** agentcube.TokenAuth(token) -> auth
** A static bearer token. Raises agentcube.Error (ValueError) for "".
*/
int aclua_token_auth(lua_State *L) {
  const char *tok = luaL_checkstring(L, 1);
  struct aclua_auth *ua;
  struct ac_error err;
  aclua_safe_point(L);
  ua = auth_push(L, "TokenAuth");
  if (ac_auth_new_token(tok, &ua->a, &err) != AC_OK)
    return aclua_raise(L, &err);
  return 1;
}

static int opt_string(lua_State *L, int t, const char *k, const char **out) {
  int ty = lua_getfield(L, t, k);
  if (ty == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  if (ty != LUA_TSTRING)
    return luaL_error(L, "bad option '%s' (string expected, got %s)", k,
                      luaL_typename(L, -1));
  *out = lua_tostring(L, -1);         /* stays on the stack: anchored */
  return 1;
}

static long timeout_ms(lua_State *L, int idx, const char *what) {
  lua_Number t;
  int ok;
  t = lua_tonumberx(L, idx, &ok);
  if (!ok || !(t > 0) || t > 1e6)
    return luaL_error(L, "bad timeout %s (positive seconds expected)",
                      what);
  return (long)(t * 1000.0 + 0.5);
}

/***
** agentcube.ServiceAccountAuth{token_url=, client_id=, client_secret=,
**   scope=, headers={name=value}, timeout=n | {connect, read}, verbose=}
** agentcube.ServiceAccountAuth(token_url, client_id, client_secret[, opts])
** -> auth. OAuth2 client credentials with token caching; the token is
** fetched on first use. Raises on misuse only.
*/
int aclua_service_account_auth(lua_State *L) {
  static const char *const keys[] = {
    "token_url", "client_id", "client_secret", "scope", "headers",
    "timeout", "verbose", NULL
  };
  struct ac_oauth_config cfg;
  struct ac_header *hdrs = NULL;
  struct aclua_auth *ua;
  struct ac_error err;
  int opts;
  size_t n = 0;

  memset(&cfg, 0, sizeof cfg);
  if (lua_type(L, 1) == LUA_TTABLE) {
    lua_settop(L, 1);
    opts = 1;
  } else {
    cfg.token_url = luaL_checkstring(L, 1);
    cfg.client_id = luaL_checkstring(L, 2);
    cfg.client_secret = luaL_checkstring(L, 3);
    if (lua_isnoneornil(L, 4))
      lua_newtable(L);
    else
      luaL_checktype(L, 4, LUA_TTABLE);
    lua_settop(L, 4);
    opts = 4;
  }
  /* unknown keys are mistakes, not options to ignore (rule 11) */
  lua_pushnil(L);
  while (lua_next(L, opts) != 0) {
    int known = 0;
    if (lua_type(L, -2) == LUA_TSTRING)
      for (int i = 0; keys[i] != NULL; i++)
        known |= strcmp(keys[i], lua_tostring(L, -2)) == 0;
    if (!known)
      return luaL_error(L, "ServiceAccountAuth: unknown option '%s'",
                        lua_type(L, -2) == LUA_TSTRING
                        ? lua_tostring(L, -2) : luaL_typename(L, -2));
    lua_pop(L, 1);
  }
  opt_string(L, opts, "token_url", &cfg.token_url);
  opt_string(L, opts, "client_id", &cfg.client_id);
  opt_string(L, opts, "client_secret", &cfg.client_secret);
  opt_string(L, opts, "scope", &cfg.scope);
  if (cfg.token_url == NULL || cfg.client_id == NULL ||
      cfg.client_secret == NULL)
    return luaL_error(L, "ServiceAccountAuth: token_url, client_id and "
                      "client_secret are required");
  lua_getfield(L, opts, "verbose");
  cfg.verbose = lua_toboolean(L, -1);
  lua_pop(L, 1);
  switch (lua_getfield(L, opts, "timeout")) {
  case LUA_TNIL:
    break;
  case LUA_TNUMBER:
    cfg.connect_timeout_ms = cfg.timeout_ms = timeout_ms(L, -1, "");
    break;
  case LUA_TTABLE:
    lua_rawgeti(L, -1, 1);
    cfg.connect_timeout_ms = timeout_ms(L, -1, "{connect, read}");
    lua_rawgeti(L, -2, 2);
    cfg.timeout_ms = timeout_ms(L, -1, "{connect, read}");
    lua_pop(L, 2);
    break;
  default:
    return luaL_error(L, "bad option 'timeout' (number or {connect, read} "
                      "expected)");
  }
  lua_pop(L, 1);
  if (lua_getfield(L, opts, "headers") == LUA_TTABLE) {
    int t = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
      n++;
      lua_pop(L, 1);
    }
    /* scratch owned by Lua; the strings stay anchored in the table */
    hdrs = lua_newuserdatauv(L, (n ? n : 1) * sizeof *hdrs, 0);
    n = 0;
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
      if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "bad option 'headers' (string names and "
                          "values expected)");
      hdrs[n].name = lua_tostring(L, -2);
      hdrs[n].value = lua_tostring(L, -1);
      n++;
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    return luaL_error(L, "bad option 'headers' (table expected)");
  }
  cfg.headers = hdrs;
  cfg.nheaders = n;
  aclua_safe_point(L);
  ua = auth_push(L, "ServiceAccountAuth");
  if (ac_auth_new_oauth(&cfg, &ua->a, &err) != AC_OK)
    return aclua_raise(L, &err);
  return 1;
}

/***
** auth:get_token() -> string
** The provider's current token (ServiceAccountAuth fetches it when its
** cache is empty or stale). Raises agentcube.Error.
*/
static int auth_get_token(lua_State *L) {
  struct aclua_auth *ua = luaL_checkudata(L, 1, AC_AUTH_MT);
  struct aclua_box *box;
  struct ac_error err;
  aclua_safe_point(L);
  if (ua->a == NULL)
    return aclua_raisef(L, AC_ECLOSED, "auth provider was released");
  box = aclua_box_new(L, ACLUA_BOX_BYTES);
  if (ac_auth_get_token(ua->a, &box->bytes, &err) != AC_OK)
    return aclua_raise(L, &err);
  lua_pushstring(L, box->bytes);
  explicit_bzero(box->bytes, strlen(box->bytes));
  return 1;
}

/* __gc and __close: drops the reference; idempotent, never raises. */
static int auth_release(lua_State *L) {
  struct aclua_auth *ua = luaL_testudata(L, 1, AC_AUTH_MT);
  if (ua != NULL && ua->a != NULL) {
    ac_auth *a = ua->a;
    ua->a = NULL;
    ac_auth_unref(a);
  }
  return 0;
}

static int auth_tostring(lua_State *L) {
  struct aclua_auth *ua = luaL_checkudata(L, 1, AC_AUTH_MT);
  lua_pushfstring(L, "agentcube.%s%s", ua->what,
                  ua->a == NULL ? " (released)" : "");
  return 1;
}

void aclua_auth_open(lua_State *L) {
  static const luaL_Reg mt[] = {
    { "__gc", auth_release },
    { "__close", auth_release },
    { "__tostring", auth_tostring },
    { NULL, NULL }
  };
  static const luaL_Reg methods[] = {
    { "get_token", auth_get_token },
    { NULL, NULL }
  };
  luaL_newmetatable(L, AC_AUTH_MT);                 /* mt */
  luaL_setfuncs(L, mt, 0);
  luaL_newlib(L, methods);                          /* mt, methods */
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
