/*
** buf.h -- a growable byte buffer with a size cap (curl's dynbuf with
** "toobig"; here max is an inclusive maximum length). The contents are
** always NUL-terminated once anything was added, so text bodies can be used
** as C strings.
*/
#ifndef AGENTCUBE_CORE_BUF_H
#define AGENTCUBE_CORE_BUF_H

#include "ac_error.h"

#include <stddef.h>

#define AC_INTERNAL __attribute__((visibility("hidden")))

struct ac_buf {
  char *data;        /* NULL until the first add; owned by the buffer */
  size_t len;
  size_t cap;
  size_t max;        /* len may not exceed this; 0: no cap */
};

AC_INTERNAL void ac_buf_init(struct ac_buf *b, size_t max);

/* Appends n bytes. AC_ETOOBIG when len would exceed max, AC_ENOMEM when
** allocation fails; the buffer is unchanged on failure. */
AC_INTERNAL enum ac_code ac_buf_add(struct ac_buf *b, const void *p,
                                    size_t n);
AC_INTERNAL enum ac_code ac_buf_addstr(struct ac_buf *b, const char *s);

/* Empties the buffer, keeping its memory. */
AC_INTERNAL void ac_buf_reset(struct ac_buf *b);

/* Hands the contents to the caller (malloc'd, NUL-terminated, "" when
** nothing was added; NULL only when that allocation fails), *len set when
** len is not NULL. The buffer is left empty. */
AC_INTERNAL char *ac_buf_steal(struct ac_buf *b, size_t *len);

/* The contents as a C string ("" when empty); borrowed. */
AC_INTERNAL const char *ac_buf_str(const struct ac_buf *b);

AC_INTERNAL void ac_buf_free(struct ac_buf *b);

#endif
