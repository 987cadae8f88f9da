/*
** repl_print.c -- how the REPL shows values: strings quoted with their
** escapes, tables nested with sorted keys (the array part first, in
** order), a table that is already being shown marked as a cycle, depth
** and length bounded so that a huge value cannot flood the terminal.
**
**   { exit_code = 0, stderr = "", stdout = "hi\n" }
**
** A table whose values are all plain and that fits on one line is shown
** on one line; otherwise one entry per line, indented.
*/
#include "repl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#define MAX_DEPTH 6          /* deeper tables: {...} */
#define MAX_LINES 400        /* then "... (cut at MAX_LINES lines)" */
#define MAX_STRING 2000      /* bytes of one string shown */
#define INLINE_WIDTH 76      /* a one-line table at most this wide */

struct show {
  lua_State *L;
  FILE *out;
  int path;                  /* index of the set of tables being shown */
  long lines;                /* lines written */
  int cut;                   /* something was not written */
};

static void emit(struct show *s, const char *text, size_t len) {
  if (s->lines >= MAX_LINES) {
    s->cut = 1;
    return;
  }
  for (size_t i = 0; i < len; i++)
    s->lines += text[i] == '\n';
  fwrite(text, 1, len, s->out);
}

static void emits(struct show *s, const char *text) {
  emit(s, text, strlen(text));
}

/* Pushes the value at idx quoted: printable bytes as they are (UTF-8
** included), the usual escapes, others as \ddd; cut after MAX_STRING. */
static void push_quoted(lua_State *L, int idx) {
  size_t len, shown;
  const char *p = lua_tolstring(L, idx, &len);
  luaL_Buffer b;
  shown = len > MAX_STRING ? MAX_STRING : len;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '"');
  for (size_t i = 0; i < shown; i++) {
    unsigned char c = (unsigned char)p[i];
    char esc[8];
    switch (c) {
    case '"': luaL_addstring(&b, "\\\""); break;
    case '\\': luaL_addstring(&b, "\\\\"); break;
    case '\n': luaL_addstring(&b, "\\n"); break;
    case '\r': luaL_addstring(&b, "\\r"); break;
    case '\t': luaL_addstring(&b, "\\t"); break;
    default:
      if (c < 0x20 || c == 0x7f) {
        snprintf(esc, sizeof esc, "\\%d", c);
        luaL_addstring(&b, esc);
      } else {
        luaL_addchar(&b, (char)c);
      }
    }
  }
  luaL_addchar(&b, '"');
  if (shown < len) {
    char more[64];
    snprintf(more, sizeof more, "... (%zu bytes in all)", len);
    luaL_addstring(&b, more);
  }
  luaL_pushresult(&b);
}

/* Pushes how a value that is not a table looks. */
static void push_plain(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TSTRING)
    push_quoted(L, idx);
  else if (lua_islightuserdata(L, idx) && lua_touserdata(L, idx) == NULL)
    lua_pushliteral(L, "null");       /* agentcube.null: JSON null */
  else
    luaL_tolstring(L, idx, NULL);     /* __tostring, __name, or the raw */
}

static int is_identifier(const char *k, size_t len) {
  static const char *const reserved[] = {
    "and", "break", "do", "else", "elseif", "end", "false", "for",
    "function", "goto", "if", "in", "local", "nil", "not", "or", "repeat",
    "return", "then", "true", "until", "while", NULL
  };
  if (len == 0 || strlen(k) != len || (k[0] >= '0' && k[0] <= '9'))
    return 0;
  for (size_t i = 0; i < len; i++) {
    char c = k[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_'))
      return 0;
  }
  for (int i = 0; reserved[i]; i++)
    if (!strcmp(k, reserved[i]))
      return 0;
  return 1;
}

/* Pushes "key = " for a key at idx ("[1.5] = ", "[\"a b\"] = "). */
static void push_key(lua_State *L, int idx) {
  size_t len = 0;
  const char *k = lua_type(L, idx) == LUA_TSTRING
                  ? lua_tolstring(L, idx, &len) : NULL;
  if (k != NULL && is_identifier(k, len)) {
    lua_pushfstring(L, "%s = ", lua_tostring(L, idx));
    return;
  }
  push_plain(L, idx);
  lua_pushfstring(L, "[%s] = ", lua_tostring(L, -1));
  lua_remove(L, -2);
}

/* The order of keys: numbers, strings, booleans, then the rest. */
static int key_rank(lua_State *L, int idx) {
  switch (lua_type(L, idx)) {
  case LUA_TNUMBER: return 0;
  case LUA_TSTRING: return 1;
  case LUA_TBOOLEAN: return 2;
  default: return 3;
  }
}

static int key_less(lua_State *L, int a, int b) {
  int ra = key_rank(L, a), rb = key_rank(L, b);
  if (ra != rb)
    return ra < rb;
  switch (ra) {
  case 0: return lua_compare(L, a, b, LUA_OPLT);
  case 1: {
    size_t la, lb;
    const char *sa = lua_tolstring(L, a, &la), *sb = lua_tolstring(L, b, &lb);
    int c = memcmp(sa, sb, la < lb ? la : lb);
    return c != 0 ? c < 0 : la < lb;
  }
  case 2: return !lua_toboolean(L, a) && lua_toboolean(L, b);
  default: return lua_topointer(L, a) < lua_topointer(L, b);
  }
}

/* Whether src[a] sorts before src[b]. */
static int less_at(lua_State *L, int src, lua_Integer a, lua_Integer b) {
  int less;
  lua_rawgeti(L, src, a);
  lua_rawgeti(L, src, b);
  less = key_less(L, -2, -1);
  lua_pop(L, 2);
  return less;
}

/* Sorts the sequence keys[1..n] (merge sort, bottom-up: a table with a
** million keys is shown at once too; the comparison never raises). */
static void sort_keys(lua_State *L, int keys, lua_Integer n) {
  int src = keys, dst;
  lua_createtable(L, n > 0 && n < 1 << 26 ? (int)n : 0, 0);
  dst = lua_gettop(L);
  for (lua_Integer width = 1; width < n; width *= 2) {
    for (lua_Integer lo = 1; lo <= n; lo += 2 * width) {
      lua_Integer mid = lo + width <= n + 1 ? lo + width : n + 1;
      lua_Integer hi = lo + 2 * width <= n + 1 ? lo + 2 * width : n + 1;
      lua_Integer i = lo, j = mid;
      for (lua_Integer k = lo; k < hi; k++) {
        if (i < mid && (j >= hi || !less_at(L, src, j, i)))
          lua_rawgeti(L, src, i++);
        else
          lua_rawgeti(L, src, j++);
        lua_rawseti(L, dst, k);
      }
    }
    int t = src;                      /* the merged runs are the input */
    src = dst;
    dst = t;
  }
  if (src != keys)
    for (lua_Integer k = 1; k <= n; k++) {
      lua_rawgeti(L, src, k);
      lua_rawseti(L, keys, k);
    }
  lua_pop(L, 1);                      /* the scratch table */
}

/* Pushes a sequence of the keys of the table at t that are not in its
** array part 1..n, sorted. */
static void push_sorted_keys(lua_State *L, int t, lua_Integer n) {
  lua_Integer count = 0;
  int keys;
  lua_newtable(L);
  keys = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1 &&
        lua_tointeger(L, -1) <= n)
      continue;
    lua_pushvalue(L, -1);
    lua_rawseti(L, keys, ++count);
  }
  sort_keys(L, keys, count);
}

/* The length of the array part: 1..n all present. */
static lua_Integer array_len(lua_State *L, int t) {
  lua_Integer n = 0;
  while (lua_rawgeti(L, t, n + 1) != LUA_TNIL) {
    lua_pop(L, 1);
    n++;
  }
  lua_pop(L, 1);
  return n;
}

static void show_value(struct show *s, int idx, int depth, int indent);

/* Pushes the one-line form of the table at t, or nothing (returns 0)
** when it holds a table or is too wide. */
static int push_inline(struct show *s, int t, lua_Integer n, int keys,
                       int width) {
  lua_State *L = s->L;
  lua_Integer count = (lua_Integer)lua_rawlen(L, keys);
  size_t used = 4;
  int base = lua_gettop(L), top;
  if (n + count > 40 || !lua_checkstack(L, (int)(2 * (n + count)) + 8))
    return 0;
  /* the pieces first (key text, value text; each pushed), measured */
  for (lua_Integer i = 1; i <= n + count; i++) {
    if (i <= n) {
      lua_rawgeti(L, t, i);
      lua_pushliteral(L, "");
    } else {
      lua_rawgeti(L, keys, i - n);
      lua_pushvalue(L, -1);
      lua_rawget(L, t);
      lua_insert(L, -2);
      push_key(L, -1);
      lua_remove(L, -2);
    }
    if (lua_type(L, -2) == LUA_TTABLE) {    /* value, keytext */
      lua_settop(L, base);
      return 0;
    }
    push_plain(L, -2);
    lua_remove(L, -3);                      /* keytext, valuetext */
    used += lua_rawlen(L, -1) + lua_rawlen(L, -2) + 2;
    if (used > (size_t)width) {
      lua_settop(L, base);
      return 0;
    }
  }
  top = lua_gettop(L);
  lua_pushliteral(L, "{ ");
  for (int i = base + 1; i <= top; i += 2) {
    lua_pushvalue(L, i);
    lua_pushvalue(L, i + 1);
    if (i + 2 <= top)
      lua_pushliteral(L, ", ");
  }
  lua_pushliteral(L, " }");
  lua_concat(L, lua_gettop(L) - top);
  lua_replace(L, base + 1);
  lua_settop(L, base + 1);
  return 1;
}

static void indent_to(struct show *s, int indent) {
  static const char spaces[] = "                                        ";
  while (indent > 0) {
    int k = indent < (int)sizeof spaces - 1 ? indent
                                             : (int)sizeof spaces - 1;
    emit(s, spaces, (size_t)k);
    indent -= k;
  }
}

static void show_table(struct show *s, int t, int depth, int indent) {
  lua_State *L = s->L;
  lua_Integer n, count;
  int keys, top = lua_gettop(L);

  lua_pushvalue(L, t);
  if (lua_rawget(L, s->path) != LUA_TNIL) {
    emits(s, "<cycle>");
    lua_settop(L, top);
    return;
  }
  lua_pop(L, 1);
  if (depth >= MAX_DEPTH) {
    emits(s, "{...}");
    return;
  }
  n = array_len(L, t);
  push_sorted_keys(L, t, n);
  keys = lua_gettop(L);
  count = (lua_Integer)lua_rawlen(L, keys);
  if (n + count == 0) {
    emits(s, "{}");
    lua_settop(L, top);
    return;
  }
  if (push_inline(s, t, n, keys, INLINE_WIDTH - indent)) {
    emits(s, lua_tostring(L, -1));
    lua_settop(L, top);
    return;
  }
  lua_pushvalue(L, t);                      /* on the path while shown */
  lua_pushboolean(L, 1);
  lua_rawset(L, s->path);
  emits(s, "{\n");
  for (lua_Integer i = 1; i <= n + count && s->lines < MAX_LINES; i++) {
    indent_to(s, indent + 2);
    if (i <= n) {
      lua_rawgeti(L, t, i);
    } else {
      lua_rawgeti(L, keys, i - n);
      push_key(L, -1);
      emits(s, lua_tostring(L, -1));
      lua_pop(L, 1);
      lua_rawget(L, t);
    }
    show_value(s, lua_gettop(L), depth + 1, indent + 2);
    lua_pop(L, 1);
    emits(s, ",\n");
  }
  indent_to(s, indent);
  emits(s, "}");
  lua_pushvalue(L, t);
  lua_pushnil(L);
  lua_rawset(L, s->path);
  lua_settop(L, top);
}

static void show_value(struct show *s, int idx, int depth, int indent) {
  if (lua_type(s->L, idx) == LUA_TTABLE) {
    show_table(s, idx, depth, indent);
  } else {
    push_plain(s->L, idx);
    emits(s, lua_tostring(s->L, -1));
    lua_pop(s->L, 1);
  }
}

int ac_repl_show(lua_State *L) {
  struct show s;
  int n = lua_gettop(L);
  luaL_checkstack(L, 2 * MAX_DEPTH + 40, "value too deep to show");
  lua_newtable(L);
  s.L = L;
  s.out = stdout;
  s.path = lua_gettop(L);
  s.lines = 0;
  s.cut = 0;
  for (int i = 1; i <= n; i++) {
    if (i > 1)
      emits(&s, "\t");
    show_value(&s, i, 0, 0);
  }
  fputc('\n', stdout);
  if (s.cut)
    fprintf(stdout, "... (cut at %d lines)\n", MAX_LINES);
  fflush(stdout);
  return 0;
}
