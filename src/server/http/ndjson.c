/*
** ndjson.c -- event lines of streamed answers (see ndjson.h).
*/
#include "ndjson.h"
#include "budget.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

int ndjson_event(struct stream *s, json_t *obj) {
  char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
  int rc = -1;
  json_decref(obj);
  if (text) {
    size_t n = strlen(text);
    text[n] = '\n';              /* json_dumps leaves room for the NUL */
    rc = stream_write(s, text, n + 1);
    free(text);
  }
  return rc;
}

/* Length of the valid UTF-8 prefix of s, and whether the rest is only an
** incomplete (but so far valid) sequence at the very end. */
static size_t valid_prefix(const unsigned char *s, size_t len, int *tail) {
  size_t i = 0;
  *tail = 0;
  while (i < len) {
    unsigned char c = s[i];
    size_t need = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2
                : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (need == 0 || (need == 2 && c < 0xC2) || (need == 4 && c > 0xF4))
      return i;
    for (size_t k = 1; k < need; k++) {
      if (i + k >= len) {
        *tail = 1;               /* cut by the chunk's end */
        return i;
      }
      if ((s[i + k] & 0xC0) != 0x80)
        return i;
    }
    if (need == 3 && ((c == 0xE0 && s[i + 1] < 0xA0) ||
                      (c == 0xED && s[i + 1] >= 0xA0)))
      return i;
    if (need == 4 && ((c == 0xF0 && s[i + 1] < 0x90) ||
                      (c == 0xF4 && s[i + 1] >= 0x90)))
      return i;
    i += need;
  }
  return i;
}

static void send_chunk(struct ndjson_out *o, int is_err,
                       unsigned long long offset, const unsigned char *d,
                       size_t len, int valid) {
  const char *type = is_err ? "stderr" : "stdout";
  json_t *ev;
  if (len == 0)
    return;
  /* Past the per-stream bound, or when the server's request memory pool
  ** cannot hold the event (its encoded size, known before encoding),
  ** the output is counted instead. */
  if ((o->max_buffered && stream_buffered(o->s) > o->max_buffered) ||
      !stream_room(o->s, 96 + (valid ? budget_json_size((const char *)d, len)
                                     : 4 * ((len + 2) / 3)))) {
    if (o->dropped == 0)
      o->dropped_off = offset;
    o->dropped += len;
    return;
  }
  if (o->dropped) {
    ndjson_event(o->s, json_pack("{s:s, s:I, s:I}", "type", "dropped",
                                 "bytes", (json_int_t)o->dropped,
                                 "offset", (json_int_t)o->dropped_off));
    o->dropped = 0;
  }
  if (valid) {
    ev = json_pack("{s:s, s:s%, s:I}", "type", type, "data", (const char *)d,
                   len, "offset", (json_int_t)offset);
  } else {
    char *b64 = malloc(4 * ((len + 2) / 3) + 1);
    if (b64 == NULL)
      return;
    EVP_EncodeBlock((unsigned char *)b64, d, (int)len);
    ev = json_pack("{s:s, s:s, s:I}", "type", type, "b64", b64,
                   "offset", (json_int_t)offset);
    free(b64);
  }
  ndjson_event(o->s, ev);
}

void ndjson_output(struct ndjson_out *o, int is_err,
                   unsigned long long offset, const char *data, size_t len) {
  int k = is_err ? 1 : 0, tail;
  unsigned char *buf = NULL;
  const unsigned char *d = (const unsigned char *)data;
  size_t n = len, ok;

  if (o->nheld[k]) {
    /* Glue the held bytes in front of this chunk. */
    if ((buf = malloc(o->nheld[k] + len)) == NULL)
      return;
    memcpy(buf, o->held[k], o->nheld[k]);
    memcpy(buf + o->nheld[k], data, len);
    d = buf;
    n = o->nheld[k] + len;
    offset = o->held_off[k];
    o->nheld[k] = 0;
  }
  ok = valid_prefix(d, n, &tail);
  if (ok == n) {
    send_chunk(o, is_err, offset, d, n, 1);
  } else if (tail && n - ok < 4) {
    send_chunk(o, is_err, offset, d, ok, 1);
    memcpy(o->held[k], d + ok, n - ok);
    o->nheld[k] = n - ok;
    o->held_off[k] = offset + ok;
  } else {
    send_chunk(o, is_err, offset, d, n, 0);
  }
  free(buf);
}

void ndjson_flush(struct ndjson_out *o) {
  for (int k = 0; k < 2; k++)
    if (o->nheld[k]) {
      size_t n = o->nheld[k];
      o->nheld[k] = 0;
      send_chunk(o, k, o->held_off[k], o->held[k], n, 0);
    }
  /* Output counted but not yet reported: no later chunk will carry the
  ** "dropped" event, so it goes now, before the exit. */
  if (o->dropped) {
    ndjson_event(o->s, json_pack("{s:s, s:I, s:I}", "type", "dropped",
                                 "bytes", (json_int_t)o->dropped,
                                 "offset", (json_int_t)o->dropped_off));
    o->dropped = 0;
  }
}

void ndjson_dropped(struct ndjson_out *o, unsigned long long offset,
                    unsigned long long bytes) {
  ndjson_event(o->s, json_pack("{s:s, s:I, s:I}", "type", "dropped",
                               "bytes", (json_int_t)bytes,
                               "offset", (json_int_t)offset));
}
