/*
** buf.c -- growable byte buffer with a size cap.
*/
#include "buf.h"

#include <stdlib.h>
#include <string.h>

void ac_buf_init(struct ac_buf *b, size_t max) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max;
}

enum ac_code ac_buf_add(struct ac_buf *b, const void *p, size_t n) {
  size_t need;
  if (b->max && (n > b->max || b->len > b->max - n))
    return AC_ETOOBIG;
  if (n > (size_t)-1 - b->len - 1)
    return AC_ENOMEM;
  need = b->len + n + 1;
  if (need > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    char *d;
    while (cap < need)
      cap = cap > (size_t)-1 / 2 ? need : cap * 2;
    if (b->max && b->max < (size_t)-1 && cap > b->max + 1)
      cap = b->max + 1;
    d = realloc(b->data, cap);
    if (d == NULL)
      return AC_ENOMEM;
    b->data = d;
    b->cap = cap;
  }
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return AC_OK;
}

enum ac_code ac_buf_addstr(struct ac_buf *b, const char *s) {
  return ac_buf_add(b, s, strlen(s));
}

void ac_buf_reset(struct ac_buf *b) {
  b->len = 0;
  if (b->data)
    b->data[0] = '\0';
}

char *ac_buf_steal(struct ac_buf *b, size_t *len) {
  char *d = b->data;
  if (d == NULL) {
    d = malloc(1);
    if (d == NULL)
      return NULL;
    d[0] = '\0';
  }
  if (len)
    *len = b->len;
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  return d;
}

const char *ac_buf_str(const struct ac_buf *b) {
  return b->data ? b->data : "";
}

void ac_buf_free(struct ac_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}
