/*
** session_list.c -- GET {wm}/v1/code-interpreter/sessions: the sessions a
** server holds. The local runtime serves it (docs/protocol.md, "Extra
** routes"); the official SDK has no such call, and a server without the
** route (an AgentCube cluster's workload manager) answers 404: that is
** AC_EUNSUPPORTED, naming the server.
*/
#include "job.h"

#include <stdlib.h>
#include <string.h>

static enum ac_code list_step(ac_job *j, enum ac_code rc,
                              struct ac_error *err) {
  json_t *js;
  if (rc == AC_EHTTP && j->resp.status == 404)
    return ac_error_set(err, AC_EUNSUPPORTED, "list sessions: not offered "
                        "by this server (%s)", j->c->wm_url);
  if (rc != AC_OK)
    return rc;
  js = ac_json_parse(ac_buf_str(&j->resp.body), j->resp.body.len, 0,
                     j->op, err);
  if (js == NULL)
    return err != NULL ? err->code : AC_EPROTO;
  if (!json_is_array(json_object_get(js, "sessions"))) {
    json_decref(js);
    return ac_error_set(err, AC_EPROTO, "list sessions: the answer of %s "
                        "has no \"sessions\" array", j->c->wm_url);
  }
  j->json = json_dumps(js, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(js);
  return j->json != NULL ? AC_OK
                         : ac_error_set(err, AC_ENOMEM, "out of memory");
}

enum ac_code ac_start_session_list(ac_engine *e, ac_client *c,
                                   const struct ac_job_callbacks *cbs,
                                   ac_job **out, struct ac_error *err) {
  enum ac_code rc;
  struct curl_slist *headers = NULL;
  struct ac_http_req req;
  char *url = NULL;
  ac_job *j;

  *out = NULL;
  if (c == NULL)
    return ac_error_set(err, AC_EINVAL, "client is NULL");
  rc = ac_job_new(e, c, NULL, "list sessions", cbs, &j, err);
  if (rc != AC_OK)
    return rc;
  j->step = list_step;
  if (asprintf(&url, "%s/v1/code-interpreter/sessions", c->wm_url) < 0)
    return ac_job_abandon(j, ac_error_set(err, AC_ENOMEM, "out of memory"));
  rc = ac_auth_add_header(c->cp_auth, &headers, err);
  if (rc != AC_OK) {
    free(url);
    return ac_job_abandon(j, rc);
  }
  memset(&req, 0, sizeof req);
  req.op = "list sessions";
  req.method = "GET";
  req.connect_timeout_ms = c->connect_timeout_ms;
  req.timeout_ms = c->request_timeout_ms;
  req.max_body = c->max_response;
  rc = ac_job_send(j, &req, url, NULL, headers, err);
  if (rc != AC_OK)
    return ac_job_abandon(j, rc);
  *out = j;
  return AC_OK;
}

enum ac_code ac_session_list(ac_client *c, char **json,
                             struct ac_error *err) {
  enum ac_code rc;
  ac_engine *e;
  ac_job *j;
  *json = NULL;
  if (c == NULL)
    return ac_error_set(err, AC_EINVAL, "client is NULL");
  if ((e = ac_client_engine_get(c, err)) == NULL)
    return err != NULL ? err->code : AC_ENOMEM;
  rc = ac_start_session_list(e, c, NULL, &j, err);
  if (rc == AC_OK) {
    rc = ac_job_finish_blocking(j, err);
    if (rc == AC_OK && (*json = strdup(ac_job_json(j))) == NULL)
      rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    ac_job_free(j);
  }
  ac_client_engine_put(c, e);
  return rc;
}
