/*
** ndjson.h -- the event lines of a streamed answer (docs/extensions.md,
** "Event streams"): one JSON object per line.
*/
#ifndef AGENTCUBE_HTTP_NDJSON_H
#define AGENTCUBE_HTTP_NDJSON_H

#include "stream.h"

#include <jansson.h>
#include <stddef.h>

/* Output of one process, turned into stdout/stderr events. A chunk never
** ends inside a UTF-8 sequence: an incomplete sequence at the end of a
** chunk is held (per stream) until the next chunk of that stream
** completes it, or flushed when the stream ends. Chunks that are not
** valid UTF-8 go out as "b64". Past max_buffered bytes waiting for the
** client, output is counted and reported as one "dropped" event instead
** of growing without bound. */
struct ndjson_out {
  struct stream *s;
  size_t max_buffered;
  unsigned char held[2][4];    /* the incomplete tail of stdout, stderr */
  size_t nheld[2];
  unsigned long long held_off[2];
  unsigned long long dropped, dropped_off;
};

void ndjson_output(struct ndjson_out *o, int is_err,
                   unsigned long long offset, const char *data, size_t len);
/* Sends what is held, and the count of output dropped since the last
** chunk that went out (at the end of the process). */
void ndjson_flush(struct ndjson_out *o);
/* A "dropped" event for output lost before it reached us (ring). */
void ndjson_dropped(struct ndjson_out *o, unsigned long long offset,
                    unsigned long long bytes);
/* Sends obj (stolen) as one line; -1 when out of memory. */
int ndjson_event(struct stream *s, json_t *obj);

#endif
