/*
** agent_runtime.c -- agentcube.AgentRuntimeClient, the SDK's client of
** agent runtimes, over libagentcube's ac_agent_runtime.
**
**   local ar <close> = agentcube.AgentRuntimeClient("my-agent",
**                                                   { namespace = "ns" })
**   local answer = ar:invoke({ prompt = "hi" })      -- decoded JSON, else
**   ar:invoke({ x = 1 }, 30, "/v1/chat")             -- the text
**
** Construction takes the SDK's arguments by name (agent_name, namespace,
** router_url, verbose, session_id, timeout, connect_timeout, auth_token,
** auth) plus max_retries; without session_id it makes the Router create a
** session (one GET). invoke(payload [, timeout] [, path]) or
** invoke(payload, {timeout=, path=}) POSTs the payload as JSON and returns
** the decoded answer (agentcube.null for JSON null) or, when the answer is
** not JSON, its text; the HTTP status is a second result. close() (also
** <close> and the garbage collector) frees local memory only, as the SDK's
** close() does: the Router reaps the session.
**
** A payload table becomes a JSON object (string keys, written in sorted
** order: a Lua table has no order of its own), an array (keys 1..n) or,
** empty, {} (or [] when its metatable has __jsontype = "array", the
** dkjson convention); agentcube.null is null; integers and floats keep their
** subtype (2.0 is sent as 2.0, like a Python float). Anything else is an
** agentcube.Error EINVAL before any HTTP.
**
** Failures raise agentcube.Error (an HTTP error also carries the answer's
** body in `body`); a Lua auth provider's own error is raised unchanged.
** The binding's rules (aclua.h) hold: errors are raised only after the
** library call returned; __gc and __close never raise.
*/
#include "aclua.h"

#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define AC_AGENT_MT "agentcube.AgentRuntimeClient"

/* User values: 1 the Lua auth provider (or nil), 2 the info table
** {agent_name, namespace, router_url, session_id, timeout,
** connect_timeout}. */
#define UV_PROVIDER 1
#define UV_INFO     2

struct aclua_agent {
  ac_agent_runtime *rt;               /* NULL once closed */
  struct aclua_authcb *cb;            /* a Lua provider's state, or NULL */
  int busy;                           /* a library call is running */
  int close_pending;                  /* close() from inside that call */
};

/* Ctrl-C during a call: the runtime's interrupt flag. session.c keeps its
** own (static, for its clients); the two nest like any saved handlers. */
static volatile sig_atomic_t sigint_flag;
static struct sigaction saved_sigint;
static int sigint_depth;

static void on_sigint(int sig) {
  (void)sig;
  sigint_flag = 1;
}

static void sigint_catch(void) {
  struct sigaction sa;
  if (sigint_depth++ > 0)
    return;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigint_flag = 0;
  sigaction(SIGINT, &sa, &saved_sigint);
}

static void sigint_release(void) {
  if (sigint_depth > 0 && --sigint_depth == 0)
    sigaction(SIGINT, &saved_sigint, NULL);
}

/* ---------------------------------------------------------------------- */
/* Calls                                                                   */

struct call {
  struct aclua_authcb *cb;
  struct aclua_authcb saved;
  int err_idx;                        /* the provider's error slot, or 0 */
};

/* Gives a Lua provider (the value at provider_idx) this thread for the
** call. [-0, +2] when there is one. */
static void call_begin(lua_State *L, struct aclua_authcb *cb,
                       int provider_idx, struct call *cc) {
  cc->cb = cb;
  cc->err_idx = 0;
  if (cb != NULL) {
    luaL_checkstack(L, 2, NULL);
    cc->saved = *cb;
    lua_pushvalue(L, provider_idx);
    lua_pushnil(L);
    cc->err_idx = lua_gettop(L);
    cb->L = L;
    cb->fn_idx = cc->err_idx - 1;
    cb->err_idx = cc->err_idx;
  }
  sigint_catch();
}

static void call_end(struct call *cc) {
  sigint_release();
  if (cc->cb != NULL)
    *cc->cb = cc->saved;
}

/* Raises the provider's own error if it raised one, else err. */
static int call_fail(lua_State *L, const struct call *cc,
                     const struct ac_error *err) {
  if (cc->err_idx != 0 && !lua_isnil(L, cc->err_idx)) {
    lua_pushvalue(L, cc->err_idx);
    return lua_error(L);
  }
  return aclua_raise(L, err);
}

/* ---------------------------------------------------------------------- */
/* Payload: Lua value -> JSON                                              */

static int key_cmp(const void *a, const void *b) {
  const char *const *x = a, *const *y = b;
  return strcmp(*x, *y);
}

/* The value at idx as a new jansson value, or NULL with err set. Never
** raises (the stack is checked first); the partial tree is freed. */
static json_t *to_json(lua_State *L, int idx, int depth,
                       struct ac_error *err) {
  idx = lua_absindex(L, idx);
  if (depth > ACLUA_JSON_DEPTH) {
    ac_error_set(err, AC_EINVAL, "payload nested deeper than %d levels",
                 ACLUA_JSON_DEPTH);
    return NULL;
  }
  if (!lua_checkstack(L, 4)) {
    ac_error_set(err, AC_ENOMEM, "Lua stack overflow in the payload");
    return NULL;
  }
  switch (lua_type(L, idx)) {
  case LUA_TBOOLEAN:
    return lua_toboolean(L, idx) ? json_true() : json_false();
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL)
      return json_null();                         /* agentcube.null */
    break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx))
      return json_integer((json_int_t)lua_tointeger(L, idx));
    if (!isfinite(lua_tonumber(L, idx))) {
      ac_error_set(err, AC_EINVAL, "payload: %s is not JSON (out of range "
                   "float)", lua_tostring(L, idx));
      return NULL;
    }
    return json_real((double)lua_tonumber(L, idx));
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    json_t *v = json_stringn(s, len);
    if (v == NULL)
      ac_error_set(err, AC_EINVAL, "payload: a string is not valid UTF-8");
    return v;
  }
  case LUA_TTABLE: {
    size_t n = (size_t)lua_rawlen(L, idx), count = 0, nstr = 0, i;
    json_t *out;
    const char **keys;
    int array = 0;
    if (luaL_getmetafield(L, idx, "__jsontype") != LUA_TNIL) {
      const char *t = lua_tostring(L, -1);
      array = t != NULL && strcmp(t, "array") == 0;
      lua_pop(L, 1);
    }
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
      count++;
      nstr += lua_type(L, -2) == LUA_TSTRING;
      lua_pop(L, 1);
    }
    if (count == n && nstr == 0 && (count > 0 || array)) {  /* 1..n */
      out = json_array();
      for (i = 1; out != NULL && i <= n; i++) {
        json_t *v;
        lua_rawgeti(L, idx, (lua_Integer)i);
        v = to_json(L, -1, depth + 1, err);
        lua_pop(L, 1);
        if (v == NULL || json_array_append_new(out, v) != 0) {
          json_decref(out);
          return NULL;
        }
      }
      if (out == NULL)
        ac_error_set(err, AC_ENOMEM, "out of memory");
      return out;
    }
    if (nstr != count) {
      ac_error_set(err, AC_EINVAL, "payload: a table is either an array "
                   "(keys 1..n) or an object (string keys)");
      return NULL;
    }
    keys = malloc((count ? count : 1) * sizeof *keys);
    out = json_object();
    if (keys == NULL || out == NULL) {
      free(keys);
      json_decref(out);
      ac_error_set(err, AC_ENOMEM, "out of memory");
      return NULL;
    }
    /* the key strings stay anchored by the table while we walk it */
    i = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
      keys[i++] = lua_tostring(L, -2);
      lua_pop(L, 1);
    }
    qsort(keys, count, sizeof *keys, key_cmp);
    for (i = 0; i < count; i++) {
      json_t *v;
      lua_getfield(L, idx, keys[i]);
      v = to_json(L, -1, depth + 1, err);
      lua_pop(L, 1);
      if (v == NULL || json_object_set_new(out, keys[i], v) != 0) {
        if (v != NULL)
          ac_error_set(err, AC_EINVAL, "payload: key '%s' is not valid "
                       "UTF-8", keys[i]);
        free(keys);
        json_decref(out);
        return NULL;
      }
    }
    free(keys);
    return out;
  }
  default:
    break;
  }
  ac_error_set(err, AC_EINVAL, "payload: a %s cannot be sent as JSON",
               luaL_typename(L, idx));
  return NULL;
}

/* The payload at idx as JSON text in a to-be-closed box (bytes), or NULL
** for nil (no body). Raises agentcube.Error EINVAL. [-0, +1] */
static const char *payload_text(lua_State *L, int idx) {
  struct aclua_box *box = aclua_box_new(L, ACLUA_BOX_BYTES);
  struct ac_error err;
  json_t *j;
  if (lua_isnoneornil(L, idx))
    return NULL;
  j = to_json(L, idx, 0, &err);
  if (j == NULL)
    aclua_raise(L, &err);
  box->bytes = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY |
                          JSON_PRESERVE_ORDER);
  json_decref(j);
  if (box->bytes == NULL)
    aclua_raisef(L, AC_ENOMEM, "out of memory");
  return box->bytes;
}

/* ---------------------------------------------------------------------- */
/* Methods                                                                 */

static struct aclua_agent *check_agent(lua_State *L) {
  return luaL_checkudata(L, 1, AC_AGENT_MT);
}

static void close_now(struct aclua_agent *a) {
  ac_agent_runtime *rt = a->rt;
  a->rt = NULL;
  a->cb = NULL;
  ac_agent_runtime_free(rt);
}

/* Reply bytes with a Lua owner while they are converted. */
static void push_answer(lua_State *L, struct ac_agent_reply *r) {
  struct aclua_box *box = aclua_box_new(L, ACLUA_BOX_JSON);
  struct ac_error err;
  int top = lua_gettop(L);
  if (aclua_push_json(L, box, r->body, r->len, &err) != AC_OK) {
    lua_settop(L, top);
    lua_pushlstring(L, r->body, r->len);          /* not JSON: the text */
  }
}

/***
** ar:invoke(payload [, timeout] [, path]) -> answer, status
** ar:invoke(payload, {timeout=, path=})
*/
static int agent_invoke(lua_State *L) {
  struct aclua_agent *a = check_agent(L);
  struct ac_agent_reply r;
  struct ac_error err;
  struct call cc;
  const char *payload, *path = NULL;
  double timeout = 0;
  int ok;
  enum ac_code rc;
  lua_Number t;

  lua_settop(L, 4);
  if (lua_type(L, 3) == LUA_TTABLE) {
    static const char *const keys[] = { "timeout", "path", NULL };
    aclua_check_keys(L, 3, keys, "invoke: unknown option");
    lua_getfield(L, 3, "timeout");
    lua_getfield(L, 3, "path");
    lua_replace(L, 4);
    lua_replace(L, 3);
  }
  if (!lua_isnil(L, 3)) {
    t = lua_tonumberx(L, 3, &ok);
    if (!ok || !(t > 0) || !isfinite(t))
      return aclua_raisef(L, AC_EINVAL, "invoke: bad timeout (a positive "
                          "number of seconds expected)");
    timeout = (double)t;
  }
  if (!lua_isnil(L, 4))
    path = luaL_checkstring(L, 4);
  payload = payload_text(L, 2);
  if (a->rt == NULL)
    return aclua_raisef(L, AC_ECLOSED, "AgentRuntimeClient is closed");
  lua_getiuservalue(L, 1, UV_PROVIDER);

  memset(&r, 0, sizeof r);
  call_begin(L, a->cb, lua_gettop(L), &cc);
  a->busy++;
  rc = ac_agent_runtime_invoke(a->rt, payload, path, timeout, &r, &err);
  a->busy--;
  call_end(&cc);
  if (a->busy == 0 && a->close_pending)
    close_now(a);

  /* the answer's bytes get a Lua owner first: raising below frees them */
  {
    struct aclua_box *rb = aclua_box_new(L, ACLUA_BOX_BYTES);
    rb->bytes = r.body;
    rb->nbytes = r.len;
    r.body = NULL;
    free(r.content_type);
    free(r.session_id);
    r.content_type = r.session_id = NULL;
    r.body = rb->bytes;
  }
  if (rc != AC_OK) {
    if (cc.err_idx != 0 && !lua_isnil(L, cc.err_idx))
      return call_fail(L, &cc, &err);
    aclua_push_error(L, &err);
    if (rc == AC_EHTTP && r.body != NULL) {
      lua_pushlstring(L, r.body, r.len);          /* the agent's answer */
      lua_setfield(L, -2, "body");
    }
    return lua_error(L);
  }
  push_answer(L, &r);
  lua_pushinteger(L, (lua_Integer)r.status);
  return 2;
}

/***
** ar:close() -- local memory and connections only (the SDK's close()).
*/
static int agent_close(lua_State *L) {
  struct aclua_agent *a = luaL_testudata(L, 1, AC_AGENT_MT);
  if (a == NULL || a->rt == NULL)
    return 0;
  if (a->busy > 0)
    a->close_pending = 1;             /* from inside a call: after it */
  else
    close_now(a);
  return 0;
}

static int agent_index(lua_State *L) {
  struct aclua_agent *a = check_agent(L);
  const char *k;
  lua_settop(L, 2);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
    return 1;
  if (lua_type(L, 2) != LUA_TSTRING)
    return 0;
  k = lua_tostring(L, 2);
  if (strcmp(k, "closed") == 0) {
    lua_pushboolean(L, a->rt == NULL);
  } else {
    if (lua_getiuservalue(L, 1, UV_INFO) != LUA_TTABLE)
      return 0;
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
  }
  return 1;
}

static int agent_newindex(lua_State *L) {
  check_agent(L);
  return luaL_error(L, "agentcube.AgentRuntimeClient: field '%s' is "
                    "read-only", luaL_tolstring(L, 2, NULL));
}

static int agent_tostring(lua_State *L) {
  struct aclua_agent *a = check_agent(L);
  if (a->rt == NULL)
    lua_pushliteral(L, "agentcube.AgentRuntimeClient (closed)");
  else
    lua_pushfstring(L, "agentcube.AgentRuntimeClient (%s/%s, %s)",
                    ac_agent_runtime_namespace(a->rt),
                    ac_agent_runtime_name(a->rt),
                    ac_agent_runtime_session_id(a->rt));
  return 1;
}

static void agent_open_mt(lua_State *L) {
  static const luaL_Reg methods[] = {
    { "invoke", agent_invoke },
    { "close", agent_close },
    { NULL, NULL }
  };
  static const luaL_Reg mt[] = {
    { "__gc", agent_close },
    { "__close", agent_close },
    { "__newindex", agent_newindex },
    { "__tostring", agent_tostring },
    { NULL, NULL }
  };
  static const char *const fields[] = {
    "agent_name", "namespace", "router_url", "session_id", "timeout",
    "connect_timeout", "closed", NULL
  };
  if (!luaL_newmetatable(L, AC_AGENT_MT))
    return;                           /* made by an earlier call */
  luaL_setfuncs(L, mt, 0);
  luaL_newlib(L, methods);                          /* mt, methods */
  aclua_describe(L, fields);
  lua_pushcclosure(L, agent_index, 1);              /* mt, index */
  lua_setfield(L, -2, "__index");
}

/* ---------------------------------------------------------------------- */
/* Construction                                                            */

static const char *opt_str(lua_State *L, int t, const char *k) {
  int ty = lua_getfield(L, t, k);     /* stays on the stack: anchored */
  if (ty == LUA_TNIL)
    return NULL;
  if (ty != LUA_TSTRING)
    luaL_error(L, "AgentRuntimeClient: bad option '%s' (string expected, "
               "got %s)", k, luaL_typename(L, -1));
  return lua_tostring(L, -1);
}

static double opt_seconds(lua_State *L, int t, const char *k) {
  lua_Number v = 0;
  int ok;
  if (lua_getfield(L, t, k) != LUA_TNIL) {
    v = lua_tonumberx(L, -1, &ok);
    if (!ok || !(v > 0) || v > 1e6)
      luaL_error(L, "AgentRuntimeClient: bad option '%s' (positive number "
                 "of seconds expected)", k);
  }
  lua_pop(L, 1);
  return (double)v;
}

/* Whole seconds as an integer (120, like the SDK's default), else a float. */
static void push_seconds(lua_State *L, double s) {
  if (s == floor(s) && s < 1e15)
    lua_pushinteger(L, (lua_Integer)s);
  else
    lua_pushnumber(L, (lua_Number)s);
}

/***
** core.AgentRuntimeClient(agent_name [, opts]) / ({agent_name=, ...})
*/
int aclua_agent_runtime_new(lua_State *L) {
  static const char *const keys[] = {
    "agent_name", "namespace", "router_url", "verbose", "session_id",
    "timeout", "connect_timeout", "auth_token", "auth", "max_retries", NULL
  };
  struct ac_agent_runtime_config cfg;
  struct aclua_agent *a;
  struct aclua_authcb *cb = NULL;
  struct ac_error err;
  ac_agent_runtime *rt = NULL;
  ac_auth *auth = NULL;
  struct call cc;
  enum ac_code rc;
  int opts, ud, provider = 0;
  lua_Integer n;
  int ok;

  /* ("name" [, opts]) or (opts) */
  if (lua_type(L, 1) == LUA_TSTRING) {
    lua_settop(L, 2);
    if (lua_isnil(L, 2)) {
      lua_newtable(L);
      lua_replace(L, 2);
    }
    luaL_checktype(L, 2, LUA_TTABLE);
    if (lua_getfield(L, 2, "agent_name") != LUA_TNIL)
      luaL_error(L, "AgentRuntimeClient: agent_name given twice");
    lua_pop(L, 1);
    opts = 2;
  } else {
    lua_settop(L, 1);
    luaL_checktype(L, 1, LUA_TTABLE);
    opts = 1;
  }
  aclua_check_keys(L, opts, keys, "AgentRuntimeClient: unknown option");
  aclua_safe_point(L);
  ac_agent_runtime_config_init(&cfg);
  cfg.agent_name = opts == 2 ? lua_tostring(L, 1)
                             : opt_str(L, opts, "agent_name");
  if (cfg.agent_name == NULL)
    luaL_error(L, "AgentRuntimeClient: agent_name is required");
  cfg.ns = opt_str(L, opts, "namespace");
  cfg.router_url = opt_str(L, opts, "router_url");
  cfg.session_id = opt_str(L, opts, "session_id");
  cfg.auth_token = opt_str(L, opts, "auth_token");
  if (opt_seconds(L, opts, "timeout") > 0)
    cfg.timeout = opt_seconds(L, opts, "timeout");
  if (opt_seconds(L, opts, "connect_timeout") > 0)
    cfg.connect_timeout = opt_seconds(L, opts, "connect_timeout");
  lua_getfield(L, opts, "verbose");
  cfg.verbose = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (lua_getfield(L, opts, "max_retries") != LUA_TNIL) {
    n = lua_tointegerx(L, -1, &ok);
    if (!ok || n < 0 || n > 100)
      luaL_error(L, "AgentRuntimeClient: bad option 'max_retries' "
                 "(0..100 expected)");
    cfg.max_retries = n == 0 ? -1 : (int)n;
  }
  lua_pop(L, 1);
  if (lua_getfield(L, opts, "auth") != LUA_TNIL) {
    if (!aclua_auth_ok(L, -1))
      luaL_error(L, "AgentRuntimeClient: bad option 'auth' "
                 "(agentcube.TokenAuth, ServiceAccountAuth, a function or "
                 "an object with get_token expected, got %s)",
                 luaL_typename(L, -1));
    provider = lua_gettop(L);         /* stays on the stack */
  } else {
    lua_pop(L, 1);
  }
  cfg.interrupt = &sigint_flag;

  /* closed first, then acquire (rule 8) */
  agent_open_mt(L);
  lua_pop(L, 1);
  a = lua_newuserdatauv(L, sizeof *a, 2);
  memset(a, 0, sizeof *a);
  ud = lua_gettop(L);
  luaL_setmetatable(L, AC_AGENT_MT);
  lua_createtable(L, 0, 5);
  lua_pushstring(L, cfg.agent_name);
  lua_setfield(L, -2, "agent_name");
  lua_pushstring(L, cfg.ns ? cfg.ns : AC_DEFAULT_NAMESPACE);
  lua_setfield(L, -2, "namespace");
  push_seconds(L, cfg.timeout);
  lua_setfield(L, -2, "timeout");
  push_seconds(L, cfg.connect_timeout);
  lua_setfield(L, -2, "connect_timeout");
  lua_setiuservalue(L, ud, UV_INFO);
  luaL_checkstack(L, 4, NULL);        /* call_begin's slots: no raise */
  if (provider != 0) {
    lua_pushvalue(L, provider);
    lua_setiuservalue(L, ud, UV_PROVIDER);
    if (aclua_auth_resolve(L, provider, &auth, &cb, &err) != AC_OK)
      return aclua_raise(L, &err);
  }
  /* auth has no Lua owner until unref'd below: nothing may raise here */
  cfg.auth = auth;
  call_begin(L, cb, provider, &cc);
  rc = ac_agent_runtime_new(&cfg, &rt, &err);
  call_end(&cc);
  ac_auth_unref(auth);                /* the runtime keeps its own */
  if (rc != AC_OK)
    return call_fail(L, &cc, &err);
  a->rt = rt;
  a->cb = cb;
  lua_getiuservalue(L, ud, UV_INFO);
  lua_pushstring(L, ac_agent_runtime_router_url(rt));
  lua_setfield(L, -2, "router_url");
  /* kept after close(), which leaves the session alive on the Router:
  ** another client may take it up with session_id */
  lua_pushstring(L, ac_agent_runtime_session_id(rt));
  lua_setfield(L, -2, "session_id");
  lua_settop(L, ud);
  return 1;
}
