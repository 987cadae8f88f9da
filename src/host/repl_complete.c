/*
** repl_complete.c -- Tab completion for the REPL: global names, table
** keys, and the fields and methods of objects, through "a.b.c" and
** "obj:meth" chains.
**
** Completion never runs Lua code: a value is looked into with raw
** lookups only. A table offers its keys, then those of its metatable's
** __index table. An object whose __index is a function (agentcube.Session:
** its fields are computed) lists what it offers in its metatable instead:
** __methods, a table of methods, and __fields, a list of field names.
** After ':' only methods (functions) are offered; names beginning with
** '_' only when the typed part does.
*/
#include "repl.h"

#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#define MAX_META_DEPTH 4

struct words {
  char **w;
  size_t n;
};

/* What is being completed: the text before the last separator, the
** separator, and the partial name after it. */
struct target {
  const char *prefix;
  size_t plen;
  const char *sep;
  const char *partial;
  int methods_only;
};

static void words_add(struct words *ws, const struct target *t,
                      const char *key, size_t klen) {
  size_t slen = strlen(t->sep), n = t->plen + slen + klen;
  char **grown, *w;
  if (strlen(key) != klen || strncmp(key, t->partial, strlen(t->partial)))
    return;
  if (key[0] == '_' && t->partial[0] != '_')
    return;                            /* private, unless asked for */
  for (size_t i = 0; i < ws->n; i++)   /* no duplicates */
    if (strlen(ws->w[i]) == n && !strcmp(ws->w[i] + t->plen + slen, key))
      return;
  if ((grown = realloc(ws->w, (ws->n + 1) * sizeof *grown)) == NULL)
    return;
  ws->w = grown;
  if ((w = malloc(n + 1)) == NULL)
    return;
  memcpy(w, t->prefix, t->plen);
  memcpy(w + t->plen, t->sep, slen);
  memcpy(w + t->plen + slen, key, klen + 1);
  ws->w[ws->n++] = w;
}

static int callable(lua_State *L, int idx) {
  int yes;
  if (lua_type(L, idx) == LUA_TFUNCTION)
    return 1;
  if (!lua_getmetatable(L, idx))
    return 0;
  lua_pushliteral(L, "__call");
  yes = lua_rawget(L, -2) != LUA_TNIL;
  lua_pop(L, 2);
  return yes;
}

/* The string keys of the table at the top (values callable when only
** methods are wanted). */
static void table_keys(lua_State *L, struct words *ws,
                       const struct target *t) {
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (lua_type(L, -2) == LUA_TSTRING &&
        (!t->methods_only || callable(L, -1))) {
      size_t klen;
      const char *k = lua_tolstring(L, -2, &klen);
      words_add(ws, t, k, klen);
    }
    lua_pop(L, 1);
  }
}

/* Pushes the raw field name of the metatable of the value at the top
** (nil when there is none). */
static int metafield(lua_State *L, const char *name) {
  if (!lua_getmetatable(L, -1)) {
    lua_pushnil(L);
    return LUA_TNIL;
  }
  lua_pushstring(L, name);
  lua_rawget(L, -2);
  lua_remove(L, -2);
  return lua_type(L, -1);
}

/* Everything the value at the top offers: its own keys (a table), its
** metatable's __methods and __fields, and, through a table __index, what
** that table offers. */
static void offers(lua_State *L, struct words *ws, const struct target *t,
                   int depth) {
  if (lua_type(L, -1) == LUA_TTABLE)
    table_keys(L, ws, t);
  if (metafield(L, "__methods") == LUA_TTABLE)
    table_keys(L, ws, t);
  lua_pop(L, 1);
  if (!t->methods_only) {
    if (metafield(L, "__fields") == LUA_TTABLE) {
      for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
        size_t klen;
        const char *k = lua_tolstring(L, -1, &klen);
        words_add(ws, t, k, klen);
        lua_pop(L, 1);
      }
      lua_pop(L, 1);                   /* what ended the list */
    }
    lua_pop(L, 1);                     /* __fields */
  }
  if (depth < MAX_META_DEPTH && metafield(L, "__index") == LUA_TTABLE)
    offers(L, ws, t, depth + 1);
  lua_pop(L, 1);
}

/* Replaces the value at the top by its field key (len bytes), looked up
** raw: in the table itself, then in __methods, then through a table
** __index. nil when not found. */
static void lookup(lua_State *L, const char *key, size_t len) {
  for (int depth = 0; depth <= MAX_META_DEPTH; depth++) {
    if (lua_type(L, -1) == LUA_TTABLE) {
      lua_pushlstring(L, key, len);
      if (lua_rawget(L, -2) != LUA_TNIL) {
        lua_remove(L, -2);
        return;
      }
      lua_pop(L, 1);
    }
    if (metafield(L, "__methods") == LUA_TTABLE) {
      lua_pushlstring(L, key, len);
      if (lua_rawget(L, -2) != LUA_TNIL) {
        lua_remove(L, -2);
        lua_remove(L, -2);
        return;
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    metafield(L, "__index");
    lua_remove(L, -2);
    if (lua_type(L, -1) != LUA_TTABLE)
      break;
  }
  lua_pop(L, 1);
  lua_pushnil(L);
}

char **ac_repl_complete(lua_State *L, const char *text) {
  struct words ws = { NULL, 0 };
  struct target t;
  const char *last = NULL, *seg;
  int top = lua_gettop(L);
  char **out;

  if (!lua_checkstack(L, 16))
    return NULL;
  for (const char *p = text; *p; p++)
    if (*p == '.' || *p == ':')
      last = p;
  lua_pushglobaltable(L);
  t.prefix = text;
  t.plen = 0;
  t.sep = "";
  t.partial = text;
  t.methods_only = 0;
  if (last != NULL) {
    for (seg = text; seg < last; ) {
      const char *end = seg + strcspn(seg, ".:");
      lookup(L, seg, (size_t)(end - seg));
      if (lua_isnil(L, -1) || end >= last)
        break;
      seg = end + 1;
    }
    t.plen = (size_t)(last - text);
    t.sep = *last == ':' ? ":" : ".";
    t.partial = last + 1;
    t.methods_only = *last == ':';
  }
  if (!lua_isnil(L, -1))
    offers(L, &ws, &t, 0);
  lua_settop(L, top);
  /* sorted, NULL-terminated */
  for (size_t i = 1; i < ws.n; i++)
    for (size_t k = i; k > 0 && strcmp(ws.w[k - 1], ws.w[k]) > 0; k--) {
      char *x = ws.w[k];
      ws.w[k] = ws.w[k - 1];
      ws.w[k - 1] = x;
    }
  out = realloc(ws.w, (ws.n + 1) * sizeof *out);
  if (out == NULL) {
    for (size_t i = 0; i < ws.n; i++)
      free(ws.w[i]);
    free(ws.w);
    return NULL;
  }
  out[ws.n] = NULL;
  return out;
}
