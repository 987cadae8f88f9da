/*
** data_plane.c -- the one way every data-plane call goes out: through the
** Router to the sandbox, at <router>/v1/namespaces/{ns}/code-interpreters/
** {name}/invocations/<endpoint>.
**
** Every call carries x-agentcube-session-id; Authorization only when the
** client has a data-plane provider (the SDK never uses the service-account
** token here); Content-Type: application/json only with a JSON body.
*/
#include "job.h"

#include <stdlib.h>
#include <string.h>

enum ac_code ac_job_send_dp(ac_job *j, const struct ac_dp_call *call,
                            struct ac_error *err) {
  enum ac_code rc;
  ac_session *s = j->s;
  ac_client *c = j->c;
  struct curl_slist *headers = NULL;
  struct ac_http_req req;
  struct ac_buf url;
  char *body = NULL;

  if (s == NULL)
    return ac_error_set(err, AC_EINVAL, "session is NULL");
  if (atomic_load(&s->closed))
    return ac_error_set(err, AC_ECLOSED, "%s: session %s is closed",
                        call->op, s->id);
  ac_buf_init(&url, 0);
  if (ac_buf_addstr(&url, s->base_url) != AC_OK ||
      ac_buf_addstr(&url, call->endpoint) != AC_OK) {
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    goto fail;
  }
  rc = ac_http_add_header(&headers, "x-agentcube-session-id", s->id, err);
  if (rc == AC_OK && call->json != NULL)
    rc = ac_http_add_header(&headers, "Content-Type",
                            call->content_type ? call->content_type
                                               : "application/json", err);
  if (rc == AC_OK)
    rc = ac_http_add_header(&headers, "Expect", "", err);
  if (rc == AC_OK && call->accept != NULL)
    rc = ac_http_add_header(&headers, "Accept", call->accept, err);
  if (rc == AC_OK)
    rc = ac_auth_add_header(c->auth, &headers, err);
  if (rc != AC_OK)
    goto fail;
  if (call->json != NULL) {
    body = malloc(call->json_len + 1);
    if (body == NULL) {
      rc = ac_error_set(err, AC_ENOMEM, "out of memory");
      goto fail;
    }
    memcpy(body, call->json, call->json_len);
    body[call->json_len] = '\0';
  }
  memset(&req, 0, sizeof req);
  req.op = call->op;
  req.method = call->method;
  req.body_len = call->json_len;
  req.empty_body = call->empty_body;
  req.prepare = call->prepare;
  req.prepare_ud = call->prepare_ud;
  req.connect_timeout_ms = call->connect_timeout_ms > 0
                         ? call->connect_timeout_ms : c->connect_timeout_ms;
  req.timeout_ms = call->timeout_ms;
  req.idle_timeout_ms = call->idle_timeout_ms;
  req.max_body = call->max_body;
  req.sink = call->sink;
  req.sink_ud = call->sink_ud;
  return ac_job_send(j, &req, ac_buf_steal(&url, NULL), body, headers, err);
fail:
  curl_slist_free_all(headers);
  ac_buf_free(&url);
  free(body);
  return rc;
}
