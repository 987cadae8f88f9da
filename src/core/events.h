/*
** events.h -- one line of the local runtime's NDJSON event streams
** (docs/extensions.md): a streamed execute, a process's output, a
** streamed context run. Output chunks carry their bytes as a JSON string
** ("data") or, when they are not UTF-8, as base64 ("b64"); both decode
** here, so every stream reader sees raw bytes.
*/
#ifndef AGENTCUBE_EVENTS_H
#define AGENTCUBE_EVENTS_H

#include "internal.h"

struct ac_event {
  json_t *json;              /* the whole event; owned */
  const char *type;          /* "stdout", "stderr", "exit", "result",
                                "error", "dropped", ... (in json) */
  enum ac_stream stream;     /* stdout/stderr events only */
  const char *data;          /* their bytes (in json or raw) */
  size_t len;
  unsigned char *raw;        /* the decoded base64, owned */
};

/* Parses one event line under the reply budget. An event without a type,
** or a chunk whose base64 does not decode, is AC_EPROTO naming op. On
** success the caller frees ev with ac_event_free. */
AC_INTERNAL enum ac_code ac_event_parse(const char *op, const char *text,
                                        size_t len, struct ac_event *ev,
                                        struct ac_error *err);
AC_INTERNAL void ac_event_free(struct ac_event *ev);

/* Splits a stream body into event lines: appends data to line (bounded by
** line->max) and calls fn with each complete, non-empty line. Stops at
** the first error, fn's or its own (AC_ETOOBIG for an over-long line). */
typedef enum ac_code (*ac_event_line_fn)(void *ud, const char *text,
                                         size_t len, struct ac_error *err);
AC_INTERNAL enum ac_code ac_event_lines(struct ac_buf *line, const char *data,
                                        size_t len, ac_event_line_fn fn,
                                        void *ud, struct ac_error *err);

#endif
