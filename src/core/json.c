/*
** json.c -- JSON text the way the Python SDK writes it (json.dumps
** defaults: ", " and ": " separators, ASCII only, insertion order).
*/
#include "internal.h"

#include <stdlib.h>

#define PY_DUMPS_FLAGS (JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER | \
                        JSON_ENCODE_ANY)

enum ac_code ac_json_add_string(struct ac_buf *b, const char *s, size_t len,
                                struct ac_error *err) {
  json_t *j = json_stringn(s, len);
  char *text;
  enum ac_code rc;
  if (j == NULL)
    return ac_error_set(err, AC_EINVAL, "string is not valid UTF-8");
  text = json_dumps(j, PY_DUMPS_FLAGS);
  json_decref(j);
  if (text == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  rc = ac_buf_addstr(b, text);
  free(text);
  if (rc != AC_OK)
    return ac_error_set(err, rc, "request body too large");
  return AC_OK;
}

enum ac_code ac_json_dump(const json_t *j, char **out, struct ac_error *err) {
  *out = json_dumps(j, PY_DUMPS_FLAGS);
  if (*out == NULL)
    return ac_error_set(err, AC_ENOMEM, "cannot serialise JSON");
  return AC_OK;
}
