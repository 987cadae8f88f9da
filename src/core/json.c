/*
** json.c -- JSON text the way the Python SDK writes it (json.dumps
** defaults, byte for byte: pyjson.c), and bounded parsing of replies.
*/
#include "internal.h"
#include "pyjson.h"

#include <stdlib.h>

enum ac_code ac_json_add_string(struct ac_buf *b, const char *s, size_t len,
                                struct ac_error *err) {
  json_t *j = json_stringn(s, len);
  enum ac_code rc;
  if (j == NULL)
    return ac_error_set(err, AC_EINVAL, "string is not valid UTF-8");
  rc = ac_pyjson_dump(j, b, err);
  json_decref(j);
  return rc;
}

enum ac_code ac_json_dump(const json_t *j, char **out, struct ac_error *err) {
  struct ac_buf b;
  enum ac_code rc;
  ac_buf_init(&b, 0);
  *out = NULL;
  rc = ac_pyjson_dump(j, &b, err);
  if (rc == AC_OK && (*out = ac_buf_steal(&b, NULL)) == NULL)
    rc = ac_error_set(err, AC_ENOMEM, "cannot serialise JSON");
  ac_buf_free(&b);
  return rc;
}

/* Values in the text, counted without parsing: every value but the first
** follows a '[', ',' or ':' outside strings. Bounds what jansson will
** allocate before it allocates anything (a 60 MB `[{},{},...]`, inflated
** from 58 KB of gzip, would otherwise cost gigabytes of nodes). */
static size_t count_nodes(const char *s, size_t len, size_t limit) {
  size_t n = 1;
  int in_str = 0;
  for (size_t i = 0; i < len && n <= limit; i++) {
    char ch = s[i];
    if (in_str) {
      if (ch == '\\')
        i++;
      else if (ch == '"')
        in_str = 0;
    } else if (ch == '"') {
      in_str = 1;
    } else if (ch == '[' || ch == ',' || ch == ':') {
      n++;
    }
  }
  return n;
}

json_t *ac_json_parse(const char *text, size_t len, size_t flags,
                      const char *op, struct ac_error *err) {
  json_error_t jerr;
  json_t *j;
  if (count_nodes(text, len, AC_JSON_MAX_NODES) > AC_JSON_MAX_NODES) {
    ac_error_set(err, AC_ETOOBIG, "%s: response has more than %d JSON "
                 "values", op, AC_JSON_MAX_NODES);
    return NULL;
  }
  j = json_loadb(text, len, flags, &jerr);
  if (j == NULL)
    ac_error_set(err, AC_EPROTO, "%s: malformed JSON response: %s", op,
                 jerr.text);
  return j;
}
