/*
** stream.h -- a response body made off the event loop: a download read
** from its file on a worker, or the events of a command as they happen.
**
** libmicrohttpd pulls the body through a callback response. When the
** stream has bytes, the callback copies them; when it has none, it
** suspends the connection (the event loop then ignores it) and, for a pull
** stream, asks a worker for more. A producer (a worker, the sandbox's
** event thread) appends bytes or ends the stream from any thread and
** resumes the connection. Memory is bounded by the caller: a pull stream
** refills only when empty; a push producer checks stream_buffered.
**
** Lifetime: the response holds the stream, and so does its producer until
** stream_detach; the last one frees it (and calls free_ud). A pull
** stream's creator detaches right after stream_response: refills run only
** while the response lives. After the connection is gone writes are
** accepted and dropped, so a producer never touches a freed connection.
*/
#ifndef AGENTCUBE_HTTP_STREAM_H
#define AGENTCUBE_HTTP_STREAM_H

#include "request.h"

#include <stddef.h>
#include <stdint.h>

struct stream;

/* A push stream for r. Returns NULL when out of memory. */
struct stream *stream_new(struct req *r);

/* Makes it a pull stream: refill(ud, s) runs on a worker whenever the
** stream is empty and not ended; it appends (stream_write) or ends it. */
void stream_set_refill(struct stream *s,
                       void (*refill)(void *ud, struct stream *s), void *ud,
                       void (*free_ud)(void *ud));

/* The response that sends the stream: size bytes, or MHD_SIZE_UNKNOWN for
** a chunked body. Takes the response's hold. NULL when out of memory. */
struct MHD_Response *stream_response(struct stream *s, uint64_t size);

/* Producer side, from any thread. write returns -1 when out of memory. */
int stream_write(struct stream *s, const void *data, size_t len);
/* Ends it: the body ends after what was written (error: the connection is
** closed instead, so the client sees a cut body). */
void stream_end(struct stream *s, int error);
size_t stream_buffered(struct stream *s);

/* Charges the stream's buffer to the server-wide request memory pool
** (budget.h): takes prepaid bytes now (-1 when the pool cannot give them,
** nothing changed), and from then on stream_room takes what the buffer
** grows past that. All is given back when the stream is freed. */
int stream_use_pool(struct stream *s, size_t prepaid);
/* Makes room for len more bytes without growing past what the pool
** gives: 1 when a write of len bytes will not need more memory, 0 when
** the pool refused (then drop the data, or count it). A stream without
** the pool always has room. stream_write itself never asks the pool, so
** that small control events (an exit, a count of dropped bytes) always
** get through. */
int stream_room(struct stream *s, size_t len);

/* The producer lets go of the stream. NULL is allowed. */
void stream_detach(struct stream *s);

#endif
