/*
** reply.c -- queueing answers (see reply.h).
*/
#include "reply.h"
#include "budget.h"
#include "sandbox.h"

#include "agentcube.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_CT "application/json; charset=utf-8"
#define SESSION_HEADER "x-agentcube-session-id"
#define RUNTIME_HEADER "X-AgentCube-Runtime"
#define RUNTIME_VALUE "local/" AC_VERSION

/* {====================================================== replies */

enum MHD_Result reply_response(struct req *r, unsigned status,
                               struct MHD_Response *resp) {
  enum MHD_Result ret;
  if (resp == NULL)
    return MHD_NO;
  /* Every data-plane answer that reached the sandbox carries the session
  ** id, like the Router's proxied responses. */
  if (r->sid[0] && r->route == R_INVOKE && r->op != OP_NONE)
    MHD_add_response_header(resp, SESSION_HEADER, r->sid);
  /* Every answer says it comes from the local runtime (a cluster never
  ** does), so that a client given explicit URLs may use what only this
  ** runtime understands (docs/extensions.md, "Runtime identification"). */
  MHD_add_response_header(resp, RUNTIME_HEADER, RUNTIME_VALUE);
  if (r->close_conn)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
  if (r->deferred) {
    /* On a worker: the event loop queues it when the request resumes. */
    if (r->pending)
      MHD_destroy_response(r->pending);
    r->pending = resp;
    r->pending_status = status;
    r->responded = 1;
    r->status = status;
    return MHD_YES;
  }
  ret = MHD_queue_response(r->conn, status, resp);
  MHD_destroy_response(resp);
  r->responded = 1;
  r->status = status;
  return ret;
}

enum MHD_Result reply_json(struct req *r, unsigned status, json_t *json) {
  char *text = json ? json_dumps(json, JSON_COMPACT) : NULL;
  struct MHD_Response *resp;
  json_decref(json);
  if (text == NULL)
    return MHD_NO;
  resp = MHD_create_response_from_buffer(strlen(text), text,
                                         MHD_RESPMEM_MUST_FREE);
  if (resp == NULL) {
    free(text);
    return MHD_NO;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, JSON_CT);
  return reply_response(r, status, resp);
}

enum MHD_Result reply_error(struct req *r, enum err_family fam,
                            unsigned status, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  json_t *o;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  switch (fam) {
  case FAM_WM:
    o = json_pack("{s:s}", "message", msg);
    break;
  case FAM_ROUTER:
    o = json_pack("{s:s}", "error", msg);
    break;
  case FAM_PICOD:
    o = json_pack("{s:s, s:i}", "error", msg, "code", (int)status);
    break;
  default:
    o = NULL;
  }
  return reply_json(r, status, o);
}

enum MHD_Result reply_router_code(struct req *r, unsigned status,
                                  const char *code, const char *msg) {
  return reply_json(r, status,
                    json_pack("{s:s, s:s}", "error", msg, "code", code));
}

enum MHD_Result reply_text(struct req *r, unsigned status, const char *text) {
  struct MHD_Response *resp = MHD_create_response_from_buffer(
    strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
  if (resp == NULL)
    return MHD_NO;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                          "text/plain");
  return reply_response(r, status, resp);
}

char *rfc3339_secs(time_t t, char *buf) {
  struct timespec ts = { t, 0 };
  return fapi_rfc3339(ts, buf);
}

int req_reserve(struct req *r, size_t n) {
  if (!budget_pool_take(n))
    return 0;
  r->reserved += n;
  return 1;
}

const struct sbx_mem_pool req_output_pool = {
  budget_pool_take, budget_pool_give
};

enum MHD_Result reply_pool_busy(struct req *r, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "server busy: the memory budget of requests "
           "in flight (maxRequestMemory) cannot hold %s now; try again "
           "later", what);
  return reply_json(r, 503, json_pack("{s:s, s:i}", "error", msg, "code",
                                      503));
}

void req_fapi_root(const struct req *r, struct fapi_root *root) {
  root->rootfd = sbx_box_rootfd(r->sess->box);
  root->uid = sbx_box_uid(r->sess->box);
  root->gid = sbx_box_gid(r->sess->box);
}

/* }====================================================== */
