/*
** yaml_load.c -- agentcube.yaml: YAML text to Lua values, keeping the
** position of every node so that the workflow engine can say
** "FILE:LINE:COL: message" about any key or value.
**
**   yaml.load(text [, chunkname]) -> value, marks
**                                  | nil, "CHUNK:LINE:COL: message"
**   yaml.null     the value of a YAML null: a NULL light userdata, equal
**                 to agentcube.null and cjson's null
**
** Marks. marks[t] = { line =, col =, k = {}, v = {} } for every mapping
** and sequence t in the result: line and col (1-based, col counted in
** characters) of the node itself; v[key] (v[i] for a sequence) the
** position of that member's value, k[key] that of a mapping key. A
** position is a table { line =, col = }.
**
** Scalars follow the YAML 1.2 core schema, not YAML 1.1's, so that
** GitHub-Actions-style files keep `on:` as a key and `yes`/`no`/`on`/`off`
** as strings. Plain (unquoted) scalars only:
**   null, Null, NULL, ~ and the empty scalar   -> yaml.null
**   true, True, TRUE, false, False, FALSE     -> booleans
**   [-+]?[0-9]+, 0x[0-9a-fA-F]+, 0o[0-7]+     -> integers (a decimal
**                                                that does not fit in 64
**                                                bits becomes a float)
**   [-+]?(.[0-9]+|[0-9]+(.[0-9]*)?)([eE][-+]?[0-9]+)?, [-+]?.inf, .nan
**                                              -> floats
**   anything else                             -> strings
** Quoted and block scalars are strings. The tags !!str, !!int, !!float,
** !!bool, !!null (and !!seq, !!map on collections) force a type; any
** other tag is an error. Mapping keys must be scalars; a duplicate or null
** key is an error; `<<` is an ordinary key (no YAML 1.1 merge). Only one
** document per text. An alias of a collection gives the very same Lua
** table as its anchor (shared, never copied); a document that would hold
** more than ACYAML_MAX_NODES nodes with every alias expanded is refused
** (billion laughs), as is nesting deeper than ACYAML_MAX_DEPTH.
**
** Two phases. The libyaml event parser first runs to the end of the text
** and builds a C tree; nothing in that phase calls Lua, so no error can
** longjmp through libyaml's frames (STYLE rule 15). The tree is then
** turned into Lua values. Parser and tree live in an "agentcube.yaml.doc"
** userdata, memset before its metatable is set (rule 19) and marked
** to-be-closed, whose __gc/__close frees everything: a memory error
** while building Lua values leaks nothing (rule 9). The input string is
** anchored as the userdata's user value while libyaml reads it.
*/
#include "yaml_load.h"

#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define YDOC_MT "agentcube.yaml.doc"

enum ykind { Y_SCALAR, Y_SEQ, Y_MAP, Y_ALIAS };

/* What a tag asks for; T_NONE lets the style decide. */
enum ytag { T_NONE, T_STR, T_INT, T_FLOAT, T_BOOL, T_NULL, T_SEQ, T_MAP,
            T_OTHER };

/* One node of the C tree. Children are linked by index + 1 (0 ends the
** list) because the node array moves when it grows. */
struct ynode {
  unsigned char kind;                 /* enum ykind */
  unsigned char tag;                  /* enum ytag */
  unsigned char plain;                /* plain scalar without a tag */
  unsigned char anchored;             /* an alias may name it */
  unsigned char closed;               /* its end event was seen */
  size_t line, col;                   /* 1-based */
  char *text;                         /* scalar value, malloc'd */
  size_t len;
  size_t target;                      /* alias: the node it names */
  size_t first, last, next;           /* children, siblings (index + 1) */
  size_t nkids;
  size_t weight;                      /* nodes with aliases expanded */
};

struct yanchor {
  char *name;                         /* malloc'd; NULL: free slot */
  size_t node;
};

struct ydoc {
  yaml_parser_t parser;
  int parser_live;                    /* yaml_parser_initialize done */
  struct ynode *nodes;                /* owned */
  size_t n, cap;
  struct yanchor *anchors;            /* owned; open addressing */
  size_t nanchors, acap;              /* acap: 0 or a power of two */
  size_t stack[ACYAML_MAX_DEPTH];     /* open collections */
  size_t depth;
  size_t root;                        /* index + 1, 0: none */
  int ndocs;
  size_t eline, ecol;                 /* where the error is */
  char msg[512];
};

/* ---------------------------------------------------------------------- */
/* The userdata                                                            */

/* __gc and __close: idempotent, never raises. */
static int doc_release(lua_State *L) {
  struct ydoc *d = luaL_testudata(L, 1, YDOC_MT);
  size_t i;
  if (d == NULL)
    return 0;
  if (d->parser_live) {
    d->parser_live = 0;
    yaml_parser_delete(&d->parser);
  }
  for (i = 0; i < d->n; i++)
    free(d->nodes[i].text);
  free(d->nodes);
  d->nodes = NULL;
  d->n = d->cap = 0;
  for (i = 0; i < d->acap; i++)
    free(d->anchors[i].name);
  free(d->anchors);
  d->anchors = NULL;
  d->nanchors = d->acap = 0;
  return 0;
}

static void fail(struct ydoc *d, size_t line, size_t col, const char *fmt,
                 ...) __attribute__((format(printf, 4, 5)));

/* Records the first error only: later ones are consequences. */
static void fail(struct ydoc *d, size_t line, size_t col, const char *fmt,
                 ...) {
  va_list ap;
  if (d->msg[0] != '\0')
    return;
  d->eline = line;
  d->ecol = col;
  va_start(ap, fmt);
  vsnprintf(d->msg, sizeof d->msg, fmt, ap);
  va_end(ap);
  if (d->msg[0] == '\0')
    snprintf(d->msg, sizeof d->msg, "invalid YAML");
}

/* ---------------------------------------------------------------------- */
/* Anchors: a small open-addressing hash table (FNV-1a)                   */

static size_t hash_name(const char *s) {
  uint64_t h = 1469598103934665603u;
  for (; *s != '\0'; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211u;
  }
  return (size_t)h;
}

static struct yanchor *anchor_slot(struct yanchor *tab, size_t cap,
                                   const char *name) {
  size_t i = hash_name(name) & (cap - 1);
  while (tab[i].name != NULL && strcmp(tab[i].name, name) != 0)
    i = (i + 1) & (cap - 1);
  return &tab[i];
}

static int anchor_grow(struct ydoc *d) {
  size_t ncap = d->acap ? d->acap * 2 : 64, i;
  struct yanchor *nt;
  if (ncap > SIZE_MAX / sizeof *nt)
    return 0;
  nt = calloc(ncap, sizeof *nt);
  if (nt == NULL)
    return 0;
  for (i = 0; i < d->acap; i++)
    if (d->anchors[i].name != NULL)
      *anchor_slot(nt, ncap, d->anchors[i].name) = d->anchors[i];
  free(d->anchors);
  d->anchors = nt;
  d->acap = ncap;
  return 1;
}

/* Binds name to node idx; a later anchor of the same name wins, as the
** YAML spec says. */
static int anchor_set(struct ydoc *d, const char *name, size_t idx) {
  struct yanchor *a;
  if ((d->nanchors + 1) * 2 > d->acap && !anchor_grow(d))
    return 0;
  a = anchor_slot(d->anchors, d->acap, name);
  if (a->name == NULL) {
    a->name = strdup(name);
    if (a->name == NULL)
      return 0;
    d->nanchors++;
  }
  a->node = idx;
  return 1;
}

static const struct yanchor *anchor_get(const struct ydoc *d,
                                        const char *name) {
  const struct yanchor *a;
  if (d->acap == 0)
    return NULL;
  a = anchor_slot(d->anchors, d->acap, name);
  return a->name != NULL ? a : NULL;
}

/* ---------------------------------------------------------------------- */
/* Phase 1: events to the C tree (no Lua calls)                           */

static enum ytag tag_of(const yaml_char_t *tag) {
  static const struct { const char *name; enum ytag t; } known[] = {
    { "tag:yaml.org,2002:str", T_STR },
    { "tag:yaml.org,2002:int", T_INT },
    { "tag:yaml.org,2002:float", T_FLOAT },
    { "tag:yaml.org,2002:bool", T_BOOL },
    { "tag:yaml.org,2002:null", T_NULL },
    { "tag:yaml.org,2002:seq", T_SEQ },
    { "tag:yaml.org,2002:map", T_MAP },
    { "!", T_STR }                    /* the non-specific tag */
  };
  size_t i;
  if (tag == NULL)
    return T_NONE;
  for (i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strcmp((const char *)tag, known[i].name) == 0)
      return known[i].t;
  return T_OTHER;
}

/* How a message shows a tag: one of the core schema as a file writes it
** (!!str, not libyaml's tag:yaml.org,2002:str); others as they are. */
static const char *shown_tag(const yaml_char_t *tag, char *buf,
                             size_t size) {
  static const char core[] = "tag:yaml.org,2002:";
  if (strncmp((const char *)tag, core, sizeof core - 1) == 0) {
    snprintf(buf, size, "!!%s", (const char *)tag + sizeof core - 1);
    return buf;
  }
  return (const char *)tag;
}

/* Appends a node at mark m; returns its index, or SIZE_MAX on failure
** (recorded in d). */
static size_t node_new(struct ydoc *d, enum ykind kind, yaml_mark_t m) {
  struct ynode *nd;
  if (d->n == d->cap) {
    size_t ncap = d->cap ? d->cap * 2 : 256;
    struct ynode *nn;
    if (ncap > SIZE_MAX / sizeof *nn ||
        (nn = realloc(d->nodes, ncap * sizeof *nn)) == NULL) {
      fail(d, m.line + 1, m.column + 1, "out of memory");
      return SIZE_MAX;
    }
    d->nodes = nn;
    d->cap = ncap;
  }
  nd = &d->nodes[d->n];
  memset(nd, 0, sizeof *nd);
  nd->kind = (unsigned char)kind;
  nd->line = m.line + 1;
  nd->col = m.column + 1;
  nd->weight = 1;
  return d->n++;
}

/* The node an alias stands for (itself for any other node). */
static const struct ynode *resolved(const struct ydoc *d, size_t idx) {
  const struct ynode *nd = &d->nodes[idx];
  return nd->kind == Y_ALIAS ? &d->nodes[nd->target] : nd;
}

/* Links node idx into the open collection, or makes it the root. */
static int attach(struct ydoc *d, size_t idx) {
  struct ynode *p, *nd = &d->nodes[idx];
  if (d->depth == 0) {
    d->root = idx + 1;
    return 1;
  }
  p = &d->nodes[d->stack[d->depth - 1]];
  if (p->kind == Y_MAP && p->nkids % 2 == 0 &&
      resolved(d, idx)->kind != Y_SCALAR) {
    fail(d, nd->line, nd->col, "a mapping key must be a scalar, not a %s",
         resolved(d, idx)->kind == Y_MAP ? "mapping" : "sequence");
    return 0;
  }
  if (p->last != 0)
    d->nodes[p->last - 1].next = idx + 1;
  else
    p->first = idx + 1;
  p->last = idx + 1;
  p->nkids++;
  return 1;
}

static int anchor_node(struct ydoc *d, const yaml_char_t *anchor,
                       size_t idx) {
  if (anchor == NULL)
    return 1;
  d->nodes[idx].anchored = 1;
  if (!anchor_set(d, (const char *)anchor, idx)) {
    fail(d, d->nodes[idx].line, d->nodes[idx].col, "out of memory");
    return 0;
  }
  return 1;
}

static int on_scalar(struct ydoc *d, const yaml_event_t *ev) {
  size_t idx = node_new(d, Y_SCALAR, ev->start_mark);
  struct ynode *nd;
  enum ytag tag = tag_of(ev->data.scalar.tag);
  if (idx == SIZE_MAX)
    return 0;
  nd = &d->nodes[idx];
  nd->closed = 1;
  if (tag == T_OTHER || tag == T_SEQ || tag == T_MAP) {
    char buf[80];
    fail(d, nd->line, nd->col, "unsupported tag %.60s on a scalar",
         shown_tag(ev->data.scalar.tag, buf, sizeof buf));
    return 0;
  }
  nd->tag = (unsigned char)tag;
  nd->plain = tag == T_NONE &&
              ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
  nd->len = ev->data.scalar.length;
  nd->text = malloc(nd->len + 1);
  if (nd->text == NULL) {
    fail(d, nd->line, nd->col, "out of memory");
    return 0;
  }
  memcpy(nd->text, ev->data.scalar.value, nd->len);
  nd->text[nd->len] = '\0';
  return anchor_node(d, ev->data.scalar.anchor, idx) && attach(d, idx);
}

static int on_alias(struct ydoc *d, const yaml_event_t *ev) {
  const char *name = (const char *)ev->data.alias.anchor;
  const struct yanchor *a = anchor_get(d, name);
  size_t idx;
  if (a == NULL) {
    fail(d, ev->start_mark.line + 1, ev->start_mark.column + 1,
         "unknown alias *%s", name);
    return 0;
  }
  if (!d->nodes[a->node].closed) {
    fail(d, ev->start_mark.line + 1, ev->start_mark.column + 1,
         "alias *%s refers to a node that contains it", name);
    return 0;
  }
  idx = node_new(d, Y_ALIAS, ev->start_mark);
  if (idx == SIZE_MAX)
    return 0;
  d->nodes[idx].target = a->node;
  d->nodes[idx].closed = 1;
  d->nodes[idx].weight = d->nodes[a->node].weight;
  return attach(d, idx);
}

static int on_start(struct ydoc *d, const yaml_event_t *ev, enum ykind k) {
  const yaml_char_t *tagname = k == Y_MAP ? ev->data.mapping_start.tag
                                          : ev->data.sequence_start.tag;
  const yaml_char_t *anchor = k == Y_MAP ? ev->data.mapping_start.anchor
                                         : ev->data.sequence_start.anchor;
  enum ytag tag = tag_of(tagname);
  size_t idx;
  if (d->depth == ACYAML_MAX_DEPTH) {
    fail(d, ev->start_mark.line + 1, ev->start_mark.column + 1,
         "nesting deeper than %d levels", ACYAML_MAX_DEPTH);
    return 0;
  }
  if (tag != T_NONE && tag != (k == Y_MAP ? T_MAP : T_SEQ)) {
    char buf[80];
    fail(d, ev->start_mark.line + 1, ev->start_mark.column + 1,
         "unsupported tag %.60s on a %s", shown_tag(tagname, buf, sizeof buf),
         k == Y_MAP ? "mapping" : "sequence");
    return 0;
  }
  idx = node_new(d, k, ev->start_mark);
  if (idx == SIZE_MAX || !anchor_node(d, anchor, idx) || !attach(d, idx))
    return 0;
  d->stack[d->depth++] = idx;
  return 1;
}

/* Closes the innermost collection and weighs it: one node plus its
** children, an alias weighing what it names. */
static int on_end(struct ydoc *d) {
  struct ynode *nd = &d->nodes[d->stack[--d->depth]];
  size_t k;
  nd->closed = 1;
  for (k = nd->first; k != 0; k = d->nodes[k - 1].next) {
    nd->weight += d->nodes[k - 1].weight;
    if (nd->weight > ACYAML_MAX_NODES) {
      fail(d, nd->line, nd->col, "more than %d nodes once aliases are "
           "expanded", ACYAML_MAX_NODES);
      return 0;
    }
  }
  return 1;
}

static int on_event(struct ydoc *d, const yaml_event_t *ev) {
  switch (ev->type) {
  case YAML_DOCUMENT_START_EVENT:
    if (d->ndocs++ > 0) {
      fail(d, ev->start_mark.line + 1, ev->start_mark.column + 1,
           "only one YAML document is allowed here");
      return 0;
    }
    return 1;
  case YAML_SCALAR_EVENT:
    return on_scalar(d, ev);
  case YAML_ALIAS_EVENT:
    return on_alias(d, ev);
  case YAML_SEQUENCE_START_EVENT:
    return on_start(d, ev, Y_SEQ);
  case YAML_MAPPING_START_EVENT:
    return on_start(d, ev, Y_MAP);
  case YAML_SEQUENCE_END_EVENT:
  case YAML_MAPPING_END_EVENT:
    return on_end(d);
  case YAML_NO_EVENT:
  case YAML_STREAM_START_EVENT:
  case YAML_STREAM_END_EVENT:
  case YAML_DOCUMENT_END_EVENT:
    return 1;
  }
  return 1;
}

/* Line and column (1-based, in characters) of byte offset off. */
static void offset_pos(const char *text, size_t len, size_t off,
                       size_t *line, size_t *col) {
  size_t i;
  *line = 1;
  *col = 1;
  for (i = 0; i < off && i < len; i++) {
    if (text[i] == '\n') {
      (*line)++;
      *col = 1;
    } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
      (*col)++;
    }
  }
}

/* What a person needs to hear after libyaml's words, or "": libyaml names
** the grammar rule that failed, not the usual cause of it. */
static const char *parser_hint(const yaml_parser_t *p, const char *text,
                               size_t len) {
  size_t at = p->problem_mark.index;
  if (p->problem == NULL)
    return "";
  if (strstr(p->problem, "tab") != NULL ||
      (at < len && text[at] == '\t'))
    return "; tabs are not allowed in YAML indentation: indent with spaces";
  if (strstr(p->problem, "expected '-' indicator") != NULL ||
      strstr(p->problem, "expected key") != NULL)
    return "; check the indentation: the entries of one list or mapping "
           "start in the same column, and a value on its own line is "
           "indented more than its key";
  if (strstr(p->problem, "mapping values are not allowed") != NULL)
    return "; a value that contains ': ' must be quoted";
  if (strstr(p->problem, "could not find expected ':'") != NULL)
    return "; a mapping entry is 'key: value': is the ':' missing?";
  if (strstr(p->problem, "unexpected end of stream") != NULL &&
      p->context != NULL && strstr(p->context, "quoted scalar") != NULL)
    return "; the quoted string is never closed";
  return "";
}

static void parser_error(struct ydoc *d, const char *text, size_t len) {
  const yaml_parser_t *p = &d->parser;
  const char *problem = p->problem ? p->problem : "invalid YAML";
  const char *hint = parser_hint(p, text, len);
  size_t line = p->problem_mark.line + 1, col = p->problem_mark.column + 1;
  if (p->error == YAML_MEMORY_ERROR) {
    fail(d, line, col, "out of memory");
    return;
  }
  if (p->error == YAML_READER_ERROR) {
    offset_pos(text, len, p->problem_offset, &line, &col);
    fail(d, line, col, "%s", problem);
    return;
  }
  if (p->context != NULL)
    fail(d, line, col, "%s (%s at %zu:%zu)%s", problem, p->context,
         p->context_mark.line + 1, p->context_mark.column + 1, hint);
  else
    fail(d, line, col, "%s%s", problem, hint);
}

static int parse_all(struct ydoc *d, const char *text, size_t len) {
  yaml_event_t ev;
  int ok, end;
  for (;;) {
    if (!yaml_parser_parse(&d->parser, &ev)) {
      parser_error(d, text, len);
      return 0;
    }
    ok = on_event(d, &ev);
    end = ev.type == YAML_STREAM_END_EVENT;
    yaml_event_delete(&ev);
    if (!ok)
      return 0;
    if (end)
      return 1;
  }
}

/* ---------------------------------------------------------------------- */
/* Phase 2: the C tree to Lua values                                      */

static int is_digits(const char *s, const char *set) {
  if (*s == '\0')
    return 0;
  return s[strspn(s, set)] == '\0';
}

/* YAML 1.2 core float syntax, without .inf/.nan. */
static int is_float(const char *s) {
  int digits = 0;
  if (*s == '-' || *s == '+')
    s++;
  while (*s >= '0' && *s <= '9') {
    s++;
    digits = 1;
  }
  if (*s == '.') {
    s++;
    while (*s >= '0' && *s <= '9') {
      s++;
      digits = 1;
    }
  }
  if (!digits)
    return 0;
  if (*s == 'e' || *s == 'E') {
    s++;
    if (*s == '-' || *s == '+')
      s++;
    if (!is_digits(s, "0123456789"))
      return 0;
    return 1;
  }
  return *s == '\0';
}

static int one_of(const char *s, const char *const *words) {
  for (; *words != NULL; words++)
    if (strcmp(s, *words) == 0)
      return 1;
  return 0;
}

_Static_assert(LUA_MAXINTEGER == 0x7fffffffffffffff,
               "0o and 21 octal digits fit a lua_Integer");

/* Pushes the number in s when it has core-schema int syntax.
** [-0, +(0|1)] */
static int push_int(lua_State *L, const char *s) {
  const char *d = s + (*s == '-' || *s == '+');
  /* 21 octal digits hold at most 8^21 - 1, which is LUA_MAXINTEGER */
  if (d[0] == '0' && d[1] == 'o' && is_digits(d + 2, "01234567") &&
      d == s && strlen(d + 2) <= 21) {
    lua_Unsigned v = 0;
    for (d += 2; *d != '\0'; d++)
      v = v * 8 + (lua_Unsigned)(*d - '0');
    lua_pushinteger(L, (lua_Integer)v);
    return 1;
  }
  if (d[0] == '0' && d[1] == 'x' && d == s &&
      is_digits(d + 2, "0123456789abcdefABCDEF"))
    return lua_stringtonumber(L, s) != 0;
  if (is_digits(d, "0123456789"))
    return lua_stringtonumber(L, s) != 0;
  return 0;
}

/* Pushes the number in s when it has core-schema float syntax. */
static int push_float(lua_State *L, const char *s) {
  static const char *const inf[] = { ".inf", ".Inf", ".INF", NULL };
  static const char *const nan[] = { ".nan", ".NaN", ".NAN", NULL };
  const char *d = s + (*s == '-' || *s == '+');
  if (one_of(d, inf)) {
    lua_pushnumber(L, *s == '-' ? -HUGE_VAL : HUGE_VAL);
    return 1;
  }
  if (d == s && one_of(s, nan)) {
    lua_pushnumber(L, (lua_Number)NAN);
    return 1;
  }
  if (!is_float(s) || lua_stringtonumber(L, s) == 0)
    return 0;
  if (lua_isinteger(L, -1)) {         /* "1e3" is a float in YAML */
    lua_Integer i = lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_pushnumber(L, (lua_Number)i);
  }
  return 1;
}

/* The name of a scalar's type tag, as a file writes it. */
static const char *tag_name(enum ytag tag) {
  return tag == T_INT ? "!!int" : tag == T_FLOAT ? "!!float"
         : tag == T_BOOL ? "!!bool" : "!!null";
}

/* Pushes a scalar node's value; 0 (nothing pushed, error recorded) when
** a tag asks for what the text is not. [-0, +(0|1), m] */
static int push_scalar(lua_State *L, struct ydoc *d, const struct ynode *nd,
                       size_t line, size_t col) {
  static const char *const nulls[] = { "", "~", "null", "Null", "NULL",
                                       NULL };
  static const char *const trues[] = { "true", "True", "TRUE", NULL };
  static const char *const falses[] = { "false", "False", "FALSE", NULL };
  const char *s = nd->text;
  enum ytag tag = (enum ytag)nd->tag;
  int is_plain = nd->plain;
  if (tag == T_STR || (tag == T_NONE && !is_plain) ||
      strlen(s) != nd->len) {
    if (tag != T_STR && tag != T_NONE) {
      fail(d, line, col, "a NUL byte in a %s scalar", tag_name(tag));
      return 0;
    }
    lua_pushlstring(L, s, nd->len);
    return 1;
  }
  if ((is_plain || tag == T_NULL) && one_of(s, nulls)) {
    lua_pushlightuserdata(L, NULL);
    return 1;
  }
  if ((is_plain || tag == T_BOOL) &&
      (one_of(s, trues) || one_of(s, falses))) {
    lua_pushboolean(L, one_of(s, trues));
    return 1;
  }
  if ((is_plain || tag == T_INT) && push_int(L, s))
    return 1;
  if ((is_plain || tag == T_FLOAT) &&
      (push_float(L, s) || (tag == T_FLOAT && push_int(L, s)))) {
    if (tag == T_FLOAT && lua_isinteger(L, -1)) {
      lua_Number f = (lua_Number)lua_tointeger(L, -1);
      lua_pop(L, 1);
      lua_pushnumber(L, f);
    }
    return 1;
  }
  if (is_plain) {
    lua_pushlstring(L, s, nd->len);
    return 1;
  }
  fail(d, line, col, "'%.60s' is not a valid %s", s, tag_name(tag));
  return 0;
}

/* Stack slots of phase 2. */
struct build {
  struct ydoc *d;
  int marks;                          /* marks table */
  int built;                          /* node index -> shared table */
};

/* [-0, +1, m] { line =, col = } */
static void push_pos(lua_State *L, const struct ynode *nd) {
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, (lua_Integer)nd->line);
  lua_setfield(L, -2, "line");
  lua_pushinteger(L, (lua_Integer)nd->col);
  lua_setfield(L, -2, "col");
}

static int build(lua_State *L, struct build *b, size_t idx);

/* Records t[key]'s positions: tab[key] = pos, for tab at slot. */
static void set_pos(lua_State *L, int slot, int key,
                    const struct ynode *nd) {
  lua_pushvalue(L, key);
  push_pos(L, nd);
  lua_rawset(L, slot);
}

static int build_collection(lua_State *L, struct build *b, size_t idx) {
  struct ydoc *d = b->d;
  const struct ynode *nd = &d->nodes[idx];
  int is_map = nd->kind == Y_MAP;
  int t, ktab = 0, vtab;
  size_t k, i = 0;
  lua_createtable(L, is_map ? 0 : (int)nd->nkids,
                  is_map ? (int)(nd->nkids / 2) : 0);
  t = lua_gettop(L);
  lua_createtable(L, 0, 4);                        /* t, entry */
  push_pos(L, nd);
  lua_getfield(L, -1, "line");
  lua_setfield(L, -3, "line");
  lua_getfield(L, -1, "col");
  lua_setfield(L, -3, "col");
  lua_pop(L, 1);
  if (is_map) {
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "k");
    ktab = lua_gettop(L);                          /* t, entry, k */
  }
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lua_setfield(L, t + 1, "v");
  vtab = lua_gettop(L);                            /* t, entry, [k,] v */
  lua_pushvalue(L, t);
  lua_pushvalue(L, t + 1);
  lua_rawset(L, b->marks);                         /* marks[t] = entry */
  if (nd->anchored) {
    lua_pushvalue(L, t);
    lua_rawseti(L, b->built, (lua_Integer)idx + 1);
  }
  for (k = nd->first; k != 0; k = d->nodes[k - 1].next) {
    const struct ynode *kn = &d->nodes[k - 1], *vn;
    if (!is_map) {
      if (!build(L, b, k - 1))
        return 0;
      lua_rawseti(L, t, (lua_Integer)++i);
      lua_pushinteger(L, (lua_Integer)i);
      push_pos(L, kn);
      lua_rawset(L, vtab);
      continue;
    }
    k = kn->next;                     /* the value; always present */
    vn = &d->nodes[k - 1];
    if (!build(L, b, (size_t)(kn - d->nodes)))
      return 0;                                    /* ..., key */
    if ((lua_type(L, -1) == LUA_TLIGHTUSERDATA &&
         lua_touserdata(L, -1) == NULL) ||
        (lua_type(L, -1) == LUA_TNUMBER && isnan(lua_tonumber(L, -1)))) {
      fail(d, kn->line, kn->col, "a mapping key must not be %s",
           lua_type(L, -1) == LUA_TNUMBER ? "NaN" : "null");
      return 0;
    }
    lua_pushvalue(L, -1);
    if (lua_rawget(L, ktab) != LUA_TNIL) {         /* ..., key, first */
      lua_getfield(L, -1, "line");
      lua_getfield(L, -2, "col");
      fail(d, kn->line, kn->col, "duplicate key '%.60s' (first at "
           "%d:%d)", resolved(d, (size_t)(kn - d->nodes))->text,
           (int)lua_tointeger(L, -2), (int)lua_tointeger(L, -1));
      return 0;
    }
    lua_pop(L, 1);
    if (!build(L, b, k - 1))
      return 0;                                    /* ..., key, value */
    lua_pushvalue(L, -2);
    lua_insert(L, -2);                             /* ..., key, key, val */
    lua_rawset(L, t);
    set_pos(L, ktab, lua_gettop(L), kn);
    set_pos(L, vtab, lua_gettop(L), vn);
    lua_pop(L, 1);
  }
  lua_settop(L, t);
  return 1;
}

/* Pushes the value of node idx; 0 (error recorded, stack unspecified)
** on a bad value. Recursion is bounded by ACYAML_MAX_DEPTH (phase 1), and
** every level checks its stack space. */
static int build(lua_State *L, struct build *b, size_t idx) {
  const struct ynode *nd = &b->d->nodes[idx];
  if (!lua_checkstack(L, 16)) {
    fail(b->d, nd->line, nd->col, "nesting too deep");
    return 0;
  }
  if (nd->kind == Y_ALIAS) {
    const struct ynode *tn = &b->d->nodes[nd->target];
    if (tn->kind == Y_SCALAR)
      return push_scalar(L, b->d, tn, nd->line, nd->col);
    lua_rawgeti(L, b->built, (lua_Integer)nd->target + 1);
    return 1;
  }
  if (nd->kind == Y_SCALAR)
    return push_scalar(L, b->d, nd, nd->line, nd->col);
  return build_collection(L, b, idx);
}

/* Where the chunk name starts: Lua's '@file' and '=name' prefixes go. */
static const char *chunk_label(const char *chunk) {
  return (chunk[0] == '@' || chunk[0] == '=') ? chunk + 1 : chunk;
}

/***
** yaml.load(text [, chunkname]) -> value, marks
**                                | nil, "CHUNK:LINE:COL: message"
** Parses one YAML document. Raises only for a bad argument or when Lua
** runs out of memory; every problem of the text is returned.
*/
static int mod_load(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  const char *chunk = chunk_label(luaL_optstring(L, 2, "=yaml"));
  struct ydoc *d;
  struct build b;
  int ok;

  lua_settop(L, 2);
  d = lua_newuserdatauv(L, sizeof *d, 1);          /* text, chunk, d */
  memset(d, 0, sizeof *d);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, 3, 1);         /* anchors the input (rule 19) */
  luaL_setmetatable(L, YDOC_MT);
  lua_toclose(L, 3);
  if (!yaml_parser_initialize(&d->parser))
    return luaL_error(L, "not enough memory");
  d->parser_live = 1;
  yaml_parser_set_input_string(&d->parser, (const unsigned char *)text,
                               len);
  ok = parse_all(d, text, len);
  d->parser_live = 0;                 /* the parser is done with text */
  yaml_parser_delete(&d->parser);
  if (ok) {
    lua_newtable(L);                               /* ..., marks */
    lua_newtable(L);                               /* ..., marks, built */
    b.d = d;
    b.marks = 4;
    b.built = 5;
    if (d->root == 0) {
      lua_pushlightuserdata(L, NULL); /* an empty text is a null */
    } else {
      ok = build(L, &b, d->root - 1);
    }
    if (ok) {
      lua_pushvalue(L, b.marks);                   /* ..., value, marks */
      return 2;
    }
  }
  lua_settop(L, 3);
  lua_pushnil(L);
  lua_pushfstring(L, "%s:%d:%d: %s", chunk, (int)d->eline, (int)d->ecol,
                  d->msg);
  return 2;
}

int luaopen_agentcube_yaml(lua_State *L) {
  static const luaL_Reg fns[] = {
    { "load", mod_load },
    { NULL, NULL }
  };
  if (luaL_newmetatable(L, YDOC_MT)) {
    lua_pushcfunction(L, doc_release);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, doc_release);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  luaL_newlib(L, fns);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  return 1;
}
