/*
** pyjson.c -- json.dumps(value) byte for byte (see pyjson.h). jansson's
** own writer differs from Python's in three ways that reach the wire:
** uppercase \u escapes, DEL (0x7f) left raw, and reals printed with 17
** digits (0.7 becomes 0.69999999999999996).
*/
#include "pyjson.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define ADD(s, n) do {                                                   \
    enum ac_code add_rc_ = ac_buf_add(b, (s), (n));                      \
    if (add_rc_ != AC_OK)                                                \
      return add_failed(add_rc_, err);                                   \
  } while (0)

/* ac_buf_add says which: over the buffer's cap, or out of memory. */
static enum ac_code add_failed(enum ac_code rc, struct ac_error *err) {
  return rc == AC_ETOOBIG ? ac_error_set(err, rc, "JSON body too large")
                          : ac_error_set(err, rc, "out of memory");
}

/* The code point of the UTF-8 sequence at s (jansson checked it) and its
** length in *n. */
static unsigned long utf8_decode(const unsigned char *s, size_t *n) {
  if (s[0] < 0x80) {
    *n = 1;
    return s[0];
  }
  if (s[0] < 0xe0) {
    *n = 2;
    return ((s[0] & 0x1fUL) << 6) | (s[1] & 0x3f);
  }
  if (s[0] < 0xf0) {
    *n = 3;
    return ((s[0] & 0x0fUL) << 12) | ((s[1] & 0x3fUL) << 6) | (s[2] & 0x3f);
  }
  *n = 4;
  return ((s[0] & 0x07UL) << 18) | ((s[1] & 0x3fUL) << 12) |
         ((s[2] & 0x3fUL) << 6) | (s[3] & 0x3f);
}

static enum ac_code add_string(struct ac_buf *b, const char *s, size_t len,
                               struct ac_error *err) {
  const unsigned char *p = (const unsigned char *)s;
  char esc[16];
  size_t i = 0, n;
  ADD("\"", 1);
  while (i < len) {
    unsigned long cp = utf8_decode(p + i, &n);
    const char *short_esc = NULL;
    switch (cp) {
    case '"':  short_esc = "\\\""; break;
    case '\\': short_esc = "\\\\"; break;
    case '\n': short_esc = "\\n"; break;
    case '\r': short_esc = "\\r"; break;
    case '\t': short_esc = "\\t"; break;
    case '\b': short_esc = "\\b"; break;
    case '\f': short_esc = "\\f"; break;
    default: break;
    }
    if (short_esc != NULL) {
      ADD(short_esc, 2);
    } else if (cp >= 0x20 && cp < 0x7f) {
      ADD(p + i, 1);
    } else if (cp < 0x10000) {
      snprintf(esc, sizeof esc, "\\u%04lx", cp);
      ADD(esc, 6);
    } else {
      unsigned long v = cp - 0x10000;
      snprintf(esc, sizeof esc, "\\u%04lx\\u%04lx", 0xd800 | (v >> 10),
               0xdc00 | (v & 0x3ff));
      ADD(esc, 12);
    }
    i += n;
  }
  ADD("\"", 1);
  return AC_OK;
}

static enum ac_code dump(const json_t *j, struct ac_buf *b,
                         struct ac_error *err) {
  enum ac_code rc = AC_OK;
  char num[64];
  switch (json_typeof(j)) {
  case JSON_NULL:
    ADD("null", 4);
    return AC_OK;
  case JSON_TRUE:
    ADD("true", 4);
    return AC_OK;
  case JSON_FALSE:
    ADD("false", 5);
    return AC_OK;
  case JSON_INTEGER:
    snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
    ADD(num, strlen(num));
    return AC_OK;
  case JSON_REAL:
    if (!isfinite(json_real_value(j)))
      return ac_error_set(err, AC_EINVAL, "Out of range float values are "
                          "not JSON compliant");
    ac_py_float_repr(json_real_value(j), num, sizeof num);
    ADD(num, strlen(num));
    return AC_OK;
  case JSON_STRING:
    return add_string(b, json_string_value(j), json_string_length(j), err);
  case JSON_ARRAY: {
    size_t i;
    json_t *v;
    ADD("[", 1);
    json_array_foreach(j, i, v) {
      if (i > 0)
        ADD(", ", 2);
      if ((rc = dump(v, b, err)) != AC_OK)
        return rc;
    }
    ADD("]", 1);
    return AC_OK;
  }
  case JSON_OBJECT: {
    const char *k;
    size_t klen;
    json_t *v;
    int first = 1;
    ADD("{", 1);
    json_object_keylen_foreach((json_t *)j, k, klen, v) {
      if (!first)
        ADD(", ", 2);
      first = 0;
      if ((rc = add_string(b, k, klen, err)) != AC_OK)
        return rc;
      ADD(": ", 2);
      if ((rc = dump(v, b, err)) != AC_OK)
        return rc;
    }
    ADD("}", 1);
    return AC_OK;
  }
  }
  return ac_error_set(err, AC_EINVAL, "unknown JSON value");
}

enum ac_code ac_pyjson_dump(const json_t *j, struct ac_buf *b,
                            struct ac_error *err) {
  if (j == NULL)
    return ac_error_set(err, AC_EINVAL, "no JSON value");
  return dump(j, b, err);
}
