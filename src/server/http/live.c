/*
** live.c -- shared plumbing of the live sandbox's routes (see live.h).
*/
#include "live.h"
#include "reply.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define STREAM_MAX_BUFFERED (16u << 20)   /* output waiting for a slow
                                             client, per stream */
/* What a stream of events takes from the request memory pool when it
** opens: its first events and libmicrohttpd's 64 KiB block. Output past
** it is charged as the buffer grows. */
#define STREAM_PREPAID (128u << 10)

struct live_state *live_state_new(struct req *r) {
  struct live_state *ls = calloc(1, sizeof *ls);
  if (ls == NULL)
    return NULL;
  ls->r = r;
  ls->max_output = r->sess->tpl->max_output;
  r->live = ls;
  return ls;
}

void live_state_free(struct live_state *ls) {
  if (ls == NULL)
    return;
  if (ls->has_sync) {
    pthread_mutex_destroy(&ls->mu);
    pthread_cond_destroy(&ls->cv);
  }
  free(ls);
}

int live_stream_open(struct req *r, struct live_state *ls) {
  struct MHD_Response *resp;
  if ((r->stream = stream_new(r)) == NULL) {
    reply_error(r, FAM_PICOD, 500, "out of memory");
    return -1;
  }
  if (stream_use_pool(r->stream, STREAM_PREPAID) != 0) {
    reply_pool_busy(r, "another stream of events");
    return -1;
  }
  if ((resp = stream_response(r->stream, MHD_SIZE_UNKNOWN)) == NULL) {
    reply_error(r, FAM_PICOD, 500, "out of memory");
    return -1;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                          "application/x-ndjson");
  /* A proxy must not hold events back. */
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
  MHD_add_response_header(resp, "X-Accel-Buffering", "no");
  reply_response(r, 200, resp);
  ls->nd.s = r->stream;
  ls->nd.max_buffered = STREAM_MAX_BUFFERED;
  return 0;
}

void live_set_task(struct req *r, struct sbx_task *t) {
  __atomic_store_n(&r->task, t, __ATOMIC_SEQ_CST);
  if (atomic_load(&r->gone))
    sbx_task_cancel(t);
}

unsigned live_status(enum ac_code code) {
  switch (code) {
  case AC_EINVAL: return 400;
  case AC_ENOTFOUND: return 404;
  case AC_EBUSY: case AC_EEXIST: return 409;
  case AC_ETOOBIG: return 413;     /* a command line the sandbox cannot
                                     take: the client's to shorten */
  case AC_ELIMIT: return 429;
  case AC_ECLOSED: case AC_EUNSUPPORTED: return 503;
  default: return 500;
  }
}

int live_wants_stream(struct req *r) {
  const char *a = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                              MHD_HTTP_HEADER_ACCEPT);
  return a && strcasestr(a, "application/x-ndjson") != NULL;
}

static double seconds(struct timespec a, struct timespec b) {
  return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
}

json_t *live_exit_json(const struct sbx_exec_result *res) {
  char t0[40], t1[40];
  return json_pack("{s:s, s:i, s:f, s:s, s:s, s:b, s:b, s:b, s:b}",
                   "type", "exit", "exit_code", res->exit_code,
                   "duration", seconds(res->start, res->end),
                   "start_time", fapi_rfc3339(res->start, t0),
                   "end_time", fapi_rfc3339(res->end, t1),
                   "timed_out", res->timed_out, "oom_killed", res->oom_killed,
                   "stdout_truncated", res->out_truncated,
                   "stderr_truncated", res->err_truncated);
}

void live_on_output(void *ud, enum sbx_stream st, unsigned long long off,
                    const char *data, size_t len) {
  struct live_state *ls = ud;
  ndjson_output(&ls->nd, st == SBX_STDERR, off, data, len);
}

void live_on_dropped(void *ud, unsigned long long off,
                     unsigned long long bytes) {
  struct live_state *ls = ud;
  ndjson_dropped(&ls->nd, off, bytes);
}
