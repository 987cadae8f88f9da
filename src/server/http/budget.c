/*
** budget.c -- per-request and server-wide memory budgets (see budget.h).
*/
#include "budget.h"
#include "config.h"

#include <stdatomic.h>
#include <string.h>

const char *budget_json_check(const char *buf, size_t len, unsigned max_depth,
                              unsigned long max_nodes) {
  unsigned depth = 0;
  unsigned long nodes = 1;
  int in_str = 0;

  /* Outside strings every value after the first follows '[' ',' or ':'
  ** (an empty container costs a node too), so counting those bounds the
  ** number of values jansson would allocate. */
  for (size_t i = 0; i < len; i++) {
    char c = buf[i];
    if (in_str) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_str = 0;
      continue;
    }
    switch (c) {
    case '"': in_str = 1; break;
    case '[': case '{':
      if (++depth > max_depth)
        return "JSON body nested too deeply";
      nodes++;
      break;
    case ']': case '}':
      if (depth)
        depth--;
      break;
    case ',': case ':':
      nodes++;
      break;
    default:
      break;
    }
    if (nodes > max_nodes)
      return "JSON body has too many values";
  }
  return NULL;
}

json_t *budget_json_load(const struct ac_config *cfg, const char *buf,
                         size_t len, json_error_t *jerr, const char **why) {
  json_t *j;
  *why = NULL;
  if (buf == NULL) {
    *why = "empty body";
    return NULL;
  }
  if ((*why = budget_json_check(buf, len, cfg->max_json_depth,
                                cfg->max_json_nodes)) != NULL)
    return NULL;
  j = json_loadb(buf, len, 0, jerr);
  if (j == NULL)
    *why = jerr->text;
  return j;
}

/* Bytes jansson writes for one byte of a valid UTF-8 string. */
static size_t enc_len(unsigned char c) {
  switch (c) {
  case '"': case '\\': case '\b': case '\f': case '\n': case '\r': case '\t':
    return 2;
  default:
    return c < 0x20 ? 6 : 1;
  }
}

size_t budget_json_size(const char *s, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++)
    n += enc_len((unsigned char)s[i]);
  return n;
}

size_t budget_json_fit(const char *s, size_t len, size_t budget) {
  size_t used = 0, i = 0;
  for (; i < len; i++) {
    size_t e = enc_len((unsigned char)s[i]);
    if (used + e > budget)
      break;
    used += e;
  }
  if (i == len)
    return len;
  /* never half a character: back to the start of the one cut */
  while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80)
    i--;
  return i;
}

static unsigned long long pool_max;
static atomic_ullong pool_used;

void budget_pool_init(unsigned long long bytes) {
  pool_max = bytes;
  atomic_store(&pool_used, 0);
}

int budget_pool_take(size_t n) {
  unsigned long long cur = atomic_load(&pool_used);
  do {
    if (pool_max && cur + n > pool_max)
      return 0;
  } while (!atomic_compare_exchange_weak(&pool_used, &cur, cur + n));
  return 1;
}

void budget_pool_give(size_t n) {
  atomic_fetch_sub(&pool_used, n);
}

unsigned long long budget_pool_used(void) {
  return atomic_load(&pool_used);
}
