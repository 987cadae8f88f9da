/*
** events.c -- decoding the local runtime's NDJSON events (events.h).
*/
#include "events.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* The bytes of a "b64" chunk into ev->raw. */
static enum ac_code decode_b64(const char *op, json_t *b, struct ac_event *ev,
                               struct ac_error *err) {
  size_t bl = json_string_length(b);
  const char *s = json_string_value(b);
  int got;
  ev->raw = malloc(bl / 4 * 3 + 3);
  if (ev->raw == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  got = EVP_DecodeBlock(ev->raw, (const unsigned char *)s, (int)bl);
  if (got < 0)
    return ac_error_set(err, AC_EPROTO, "%s: bad base64 chunk", op);
  ev->len = (size_t)got;
  while (ev->len > 0 && bl > 0 && s[bl - 1] == '=') {
    ev->len--;                        /* EVP_DecodeBlock counts padding */
    bl--;
  }
  ev->data = (const char *)ev->raw;
  return AC_OK;
}

enum ac_code ac_event_parse(const char *op, const char *text, size_t len,
                            struct ac_event *ev, struct ac_error *err) {
  json_t *d, *b;
  enum ac_code rc = AC_OK;
  memset(ev, 0, sizeof *ev);
  ev->json = ac_json_parse(text, len, JSON_ALLOW_NUL, op, err);
  if (ev->json == NULL)
    return err->code;
  ev->type = json_string_value(json_object_get(ev->json, "type"));
  if (ev->type == NULL)
    ev->type = json_string_value(json_object_get(ev->json, "event"));
  if (ev->type == NULL) {
    rc = ac_error_set(err, AC_EPROTO, "%s: event without a type", op);
  } else if (!strcmp(ev->type, "stdout") || !strcmp(ev->type, "stderr")) {
    ev->stream = ev->type[3] == 'o' ? AC_STREAM_STDOUT : AC_STREAM_STDERR;
    d = json_object_get(ev->json, "data");
    b = json_object_get(ev->json, "b64");
    if (json_is_string(d)) {
      ev->data = json_string_value(d);
      ev->len = json_string_length(d);
    } else if (json_is_string(b)) {
      rc = decode_b64(op, b, ev, err);
    }
  }
  if (rc != AC_OK)
    ac_event_free(ev);
  return rc;
}

void ac_event_free(struct ac_event *ev) {
  json_decref(ev->json);
  free(ev->raw);
  memset(ev, 0, sizeof *ev);
}

enum ac_code ac_event_lines(struct ac_buf *line, const char *data,
                            size_t len, ac_event_line_fn fn, void *ud,
                            struct ac_error *err) {
  while (len > 0) {
    const char *nl = memchr(data, '\n', len);
    size_t take = nl ? (size_t)(nl - data) : len;
    enum ac_code rc;
    if (ac_buf_add(line, data, take) != AC_OK)
      return ac_error_set(err, AC_ETOOBIG, "event larger than %zu bytes",
                          line->max);
    data += take;
    len -= take;
    if (nl == NULL)
      break;
    data++;
    len--;
    if (line->len > 0) {
      rc = fn(ud, ac_buf_str(line), line->len, err);
      ac_buf_reset(line);
      if (rc != AC_OK)
        return rc;
    }
  }
  return AC_OK;
}
