/*
** reply.h -- queueing answers to a request: JSON bodies, the error body
** families of the three AgentCube servers, plain text, and small helpers
** the handlers share. Used by the dispatcher and by every route handler, so
** neither has to call into the other for them.
*/
#ifndef AGENTCUBE_HTTP_REPLY_H
#define AGENTCUBE_HTTP_REPLY_H

#include "request.h"

/* Replies. Each queues one response and records its status; all return
** MHD_YES or MHD_NO as the access handler must. The body of json is stolen
** (decref'd). */
enum MHD_Result reply_json(struct req *r, unsigned status, json_t *json);
enum MHD_Result reply_error(struct req *r, enum err_family fam,
                            unsigned status, const char *fmt, ...)
  __attribute__((format(printf, 4, 5)));
enum MHD_Result reply_router_code(struct req *r, unsigned status,
                                  const char *code, const char *msg);
enum MHD_Result reply_text(struct req *r, unsigned status, const char *text);
enum MHD_Result reply_response(struct req *r, unsigned status,
                               struct MHD_Response *resp);

/* Takes n bytes from the server-wide request memory pool (budget.h) for
** the life of the request (given back when it completes): 1 when taken. */
int req_reserve(struct req *r, size_t n);

/* 503 in PicoD's family: the request memory pool cannot hold what this
** request needs (what: "the download", ...). */
enum MHD_Result reply_pool_busy(struct req *r, const char *what);

/* The same pool as the sandbox's output buffers see it: a buffered
** command's or context run's output grows against it (sandbox.h). */
struct sbx_mem_pool;
extern const struct sbx_mem_pool req_output_pool;

/* What a buffered execute or context run takes from the pool before it
** starts: the first blocks of its output buffers and the answer's fixed
** part. The buffers take the rest as they grow. */
#define REQ_OUTPUT_ADMISSION (64u << 10)

/* The session's file root (fileapi.h) */
void req_fapi_root(const struct req *r, struct fapi_root *root);

/* RFC 3339 of a time_t, "Z". buf holds 40 bytes. */
char *rfc3339_secs(time_t t, char *buf);

#endif
