/*
** live.h -- what the routes of the live sandbox share (route_live_exec.c,
** route_processes.c, route_contexts.c): the state their task's events
** need, the sandbox errors as HTTP statuses, and the NDJSON stream of a
** request.
**
** A task's events arrive on the sandbox's event thread. A buffered answer
** is built there and handed to the event loop with req_async_done; a
** streamed answer is a stream (stream.h) the events write to. When the
** request ends first (the client went away), the request's completion
** cancels and releases the task, after which no event arrives.
*/
#ifndef AGENTCUBE_HTTP_LIVE_H
#define AGENTCUBE_HTTP_LIVE_H

#include "ndjson.h"
#include "request.h"
#include "sandbox_live.h"

struct live_state {
  struct req *r;
  struct ndjson_out nd;         /* nd.s is NULL for a buffered answer */
  size_t max_output;
  unsigned proc_id;             /* the process of an output watch */
  pthread_mutex_t mu;           /* wait: done or timed out */
  pthread_cond_t cv;
  int done;
  int has_sync;
};

/* New state for r (r->live owns it). NULL when out of memory. */
struct live_state *live_state_new(struct req *r);
void live_state_free(struct live_state *ls);

/* Opens r's event stream (200, application/x-ndjson, chunked): the
** response is queued, and events written to ls->nd.s reach the client as
** they are written. Returns 0, or -1 with an error reply queued. */
int live_stream_open(struct req *r, struct live_state *ls);

/* Stores the task of r, cancelling it at once if the client is already
** gone. */
void live_set_task(struct req *r, struct sbx_task *t);

/* The status of a sandbox error: 400, 404, 409, 413, 429, 503 or 500. */
unsigned live_status(enum ac_code code);

/* 1 when the client asked for an event stream (Accept). */
int live_wants_stream(struct req *r);

/* The output and dropped events of a streamed task (ud: its live_state):
** each writes the NDJSON event to the request's stream. */
void live_on_output(void *ud, enum sbx_stream st, unsigned long long off,
                    const char *data, size_t len);
void live_on_dropped(void *ud, unsigned long long off,
                     unsigned long long bytes);

/* The "exit" event (or its fields) of a command's result. */
json_t *live_exit_json(const struct sbx_exec_result *res);

#endif
