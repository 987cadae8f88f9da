/*
** control_plane.c -- sessions: create (POST {wm}/v1/code-interpreter),
** attach by id, stop (DELETE {wm}/v1/code-interpreter/sessions/{id}).
** Control-plane calls carry Content-Type: application/json (the SDK sets it
** on its session, so the body-less DELETE has it too, with
** Content-Length: 0) and Authorization from the control-plane provider.
*/
#include "job.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static int bad_header_value(const char *s) {
  for (; *s != '\0'; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      return 1;
  return 0;
}

/* The data-plane base: urljoin(router, "/v1/namespaces/{ns}/
** code-interpreters/{name}/invocations/"), so the router URL's own path is
** replaced. *out malloc'd, caller frees. */
static enum ac_code base_url(ac_client *c, const char *name, const char *ns,
                             char **out, struct ac_error *err) {
  enum ac_code rc;
  struct ac_buf path;
  ac_buf_init(&path, 0);
  *out = NULL;
  if (ac_buf_addstr(&path, "/v1/namespaces/") != AC_OK ||
      ac_url_encode(&path, ns, 0) != AC_OK ||
      ac_buf_addstr(&path, "/code-interpreters/") != AC_OK ||
      ac_url_encode(&path, name, 0) != AC_OK ||
      ac_buf_addstr(&path, "/invocations/") != AC_OK)
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
  else
    rc = ac_url_with_path(c->router_url, ac_buf_str(&path), out, err);
  ac_buf_free(&path);
  return rc;
}

/* Takes ownership of base (freed on failure too). */
static enum ac_code session_new(ac_client *c, const char *id,
                                const char *name, const char *ns, char *base,
                                int owned, ac_session **out,
                                struct ac_error *err) {
  ac_session *s;
  *out = NULL;
  s = calloc(1, sizeof *s);
  if (s == NULL) {
    free(base);
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  }
  s->base_url = base;
  s->id = strdup(id);
  s->name = strdup(name);
  s->ns = strdup(ns);
  if (s->id == NULL || s->name == NULL || s->ns == NULL) {
    free(s->id);
    free(s->name);
    free(s->ns);
    free(s->base_url);
    free(s);
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  }
  atomic_init(&s->closed, 0);
  atomic_init(&s->owned, owned);
  atomic_init(&s->xfer_done, 0);
  atomic_init(&s->xfer_total, -1);
  s->c = ac_client_ref(c);
  *out = s;
  return AC_OK;
}

static enum ac_code cp_headers(ac_client *c, struct curl_slist **h,
                               struct ac_error *err) {
  enum ac_code rc;
  rc = ac_http_add_header(h, "Content-Type", "application/json", err);
  if (rc == AC_OK)
    rc = ac_http_add_header(h, "Expect", "", err);
  if (rc == AC_OK)
    rc = ac_auth_add_header(c->cp_auth, h, err);
  return rc;
}

static enum ac_code create_body(const struct ac_session_opts *o,
                                const char *name, const char *ns,
                                char **body, struct ac_error *err) {
  enum ac_code rc = AC_OK;
  json_t *j = json_object(), *v, *meta = NULL;
  *body = NULL;
  if (j == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  v = json_string(name);
  if (v == NULL || json_object_set_new(j, "name", v)) {
    rc = ac_error_set(err, AC_EINVAL, "name is not valid UTF-8");
    goto out;
  }
  v = json_string(ns);
  if (v == NULL || json_object_set_new(j, "namespace", v)) {
    rc = ac_error_set(err, AC_EINVAL, "namespace is not valid UTF-8");
    goto out;
  }
  if (json_object_set_new(j, "ttl", json_integer(o && o->ttl ? o->ttl
                                                  : AC_DEFAULT_TTL))) {
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    goto out;
  }
  if (o != NULL && o->metadata_json != NULL) {
    json_error_t jerr;
    meta = json_loads(o->metadata_json, 0, &jerr);
    if (!json_is_object(meta)) {
      json_decref(meta);
      rc = ac_error_set(err, AC_EINVAL, "metadata must be a JSON object");
      goto out;
    }
  } else {
    meta = json_object();
  }
  if (meta == NULL || json_object_set_new(j, "metadata", meta)) {
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    goto out;
  }
  rc = ac_json_dump(j, body, err);
out:
  json_decref(j);
  return rc;
}

/* DELETE {wm}/v1/code-interpreter/sessions/{id} as the job's next
** transfer. limit_ms > 0 caps the connect and total timeouts and turns
** retries off (shutdown paths that must not block for long). */
static enum ac_code send_delete(ac_job *j, const char *id, long limit_ms,
                                struct ac_error *err) {
  enum ac_code rc;
  ac_client *c = j->c;
  struct curl_slist *headers = NULL;
  struct ac_http_req req;
  struct ac_buf url;

  ac_buf_init(&url, 0);
  if (ac_buf_addstr(&url, c->wm_url) != AC_OK ||
      ac_buf_addstr(&url, "/v1/code-interpreter/sessions/") != AC_OK ||
      ac_url_encode(&url, id, 0) != AC_OK) {
    ac_buf_free(&url);
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  }
  rc = cp_headers(c, &headers, err);
  if (rc != AC_OK) {
    ac_buf_free(&url);
    curl_slist_free_all(headers);
    return rc;
  }
  memset(&req, 0, sizeof req);
  req.op = "delete session";
  req.method = "DELETE";
  req.empty_body = 1;
  req.connect_timeout_ms = c->connect_timeout_ms;
  req.timeout_ms = c->request_timeout_ms;
  req.max_body = c->max_response;
  if (limit_ms > 0) {
    if (req.connect_timeout_ms > limit_ms)
      req.connect_timeout_ms = limit_ms;
    if (req.timeout_ms > limit_ms)
      req.timeout_ms = limit_ms;
    req.no_retry = 1;
  }
  return ac_job_send(j, &req, ac_buf_steal(&url, NULL), NULL, headers, err);
}

static enum ac_code stop_step(ac_job *j, enum ac_code rc,
                              struct ac_error *err) {
  if (rc == AC_EHTTP && j->resp.status == 404) {   /* already gone */
    ac_error_clear(err);
    rc = AC_OK;
  }
  return rc;
}

/* Stops s as a job. The session is closed from the start, whatever the
** outcome (like the SDK's stop()); stopping a closed session completes at
** once. */
static enum ac_code start_stop(ac_engine *e, ac_session *s, long limit_ms,
                               const struct ac_job_callbacks *cbs,
                               ac_job **out, struct ac_error *err) {
  enum ac_code rc;
  ac_job *j;
  *out = NULL;
  if (s == NULL)
    return ac_error_set(err, AC_EINVAL, "stop session: session is NULL");
  rc = ac_job_new(e, s->c, s, "delete session", cbs, &j, err);
  if (rc != AC_OK)
    return rc;
  j->step = stop_step;
  if (atomic_exchange(&s->closed, 1) != 0) {
    /* Nothing to send: done as soon as the engine is polled. */
    ac_job_complete(j, AC_OK);
    *out = j;
    return AC_OK;
  }
  rc = send_delete(j, s->id, limit_ms, err);
  if (rc != AC_OK)
    return ac_job_abandon(j, rc);
  *out = j;
  return AC_OK;
}

enum ac_code ac_start_session_stop(ac_engine *e, ac_session *s,
                                   const struct ac_job_callbacks *cbs,
                                   ac_job **out, struct ac_error *err) {
  return start_stop(e, s, 0, cbs, out, err);
}

struct create_state {
  char *name, *ns, *base;
  enum ac_code failed;                /* set while the undo DELETE runs */
  struct ac_error failed_err;
};

static void create_cleanup(ac_job *j) {
  struct create_state *st = j->st;
  if (st == NULL)
    return;
  free(st->name);
  free(st->ns);
  free(st->base);
  free(st);
  j->st = NULL;
}

static enum ac_code create_step(ac_job *j, enum ac_code rc,
                                struct ac_error *err) {
  struct create_state *st = j->st;
  json_t *js = NULL, *sid;

  if (st->failed != AC_OK) {          /* the undo DELETE ended */
    *err = st->failed_err;
    return st->failed;
  }
  if (rc != AC_OK)
    return rc;
  js = ac_json_parse(ac_buf_str(&j->resp.body), j->resp.body.len, 0,
                     "create session", err);
  if (js == NULL)
    return err != NULL ? err->code : AC_EPROTO;
  sid = json_is_object(js) ? json_object_get(js, "sessionId") : NULL;
  if (!json_is_string(sid) || json_string_length(sid) == 0) {
    rc = ac_error_set(err, AC_EPROTO, "Failed to create session: "
                      "'sessionId' missing from response");
  } else if (strlen(json_string_value(sid)) != json_string_length(sid) ||
             bad_header_value(json_string_value(sid))) {
    rc = ac_error_set(err, AC_EPROTO, "Failed to create session: "
                      "'sessionId' holds control characters");
  } else {
    rc = session_new(j->c, json_string_value(sid), st->name, st->ns,
                     st->base, 1, &j->session, err);
    st->base = NULL;
    if (rc != AC_OK) {
      /* Like the SDK: do not leak the new session when the client side
      ** cannot be set up. */
      struct ac_error ignored;
      st->failed = rc;
      st->failed_err = *err;
      if (send_delete(j, json_string_value(sid), 0, &ignored) == AC_OK)
        rc = AC_OK;                   /* finished in the next step */
    }
  }
  json_decref(js);
  return rc;
}

enum ac_code ac_start_session_create(ac_engine *e, ac_client *c,
                                     const struct ac_session_opts *opts,
                                     const struct ac_job_callbacks *cbs,
                                     ac_job **out, struct ac_error *err) {
  enum ac_code rc;
  const char *name = opts && opts->name ? opts->name : AC_DEFAULT_NAME;
  const char *ns = opts && opts->ns ? opts->ns : AC_DEFAULT_NAMESPACE;
  struct curl_slist *headers = NULL;
  struct ac_http_req req;
  struct create_state *st;
  char *body = NULL, *url = NULL;
  ac_job *j;

  *out = NULL;
  if (c == NULL)
    return ac_error_set(err, AC_EINVAL, "client is NULL");
  rc = ac_job_new(e, c, NULL, "create session", cbs, &j, err);
  if (rc != AC_OK)
    return rc;
  st = calloc(1, sizeof *st);
  if (st == NULL)
    return ac_job_abandon(j, ac_error_set(err, AC_ENOMEM, "out of memory"));
  j->st = st;
  j->cleanup = create_cleanup;
  j->step = create_step;
  st->name = strdup(name);
  st->ns = strdup(ns);
  if (st->name == NULL || st->ns == NULL)
    return ac_job_abandon(j, ac_error_set(err, AC_ENOMEM, "out of memory"));
  rc = create_body(opts, name, ns, &body, err);
  if (rc == AC_OK)
    rc = base_url(c, name, ns, &st->base, err);
  if (rc != AC_OK)
    goto fail;
  if (asprintf(&url, "%s/v1/code-interpreter", c->wm_url) < 0) {
    url = NULL;
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    goto fail;
  }
  rc = cp_headers(c, &headers, err);
  if (rc != AC_OK)
    goto fail;
  assert(body != NULL);               /* create_body's AC_OK has a body */
  memset(&req, 0, sizeof req);
  req.op = "create session";
  req.method = "POST";
  req.body_len = strlen(body);
  req.connect_timeout_ms = c->connect_timeout_ms;
  req.timeout_ms = c->request_timeout_ms;
  req.max_body = c->max_response;
  rc = ac_job_send(j, &req, url, body, headers, err);
  if (rc != AC_OK)
    return ac_job_abandon(j, rc);
  *out = j;
  return AC_OK;
fail:
  free(body);
  free(url);
  curl_slist_free_all(headers);
  return ac_job_abandon(j, rc);
}

enum ac_code ac_session_create(ac_client *c,
                               const struct ac_session_opts *opts,
                               ac_session **out, struct ac_error *err) {
  enum ac_code rc;
  ac_engine *e;
  ac_job *j;
  *out = NULL;
  if (c == NULL)
    return ac_error_set(err, AC_EINVAL, "client is NULL");
  if ((e = ac_client_engine_get(c, err)) == NULL)
    return err != NULL ? err->code : AC_ENOMEM;
  rc = ac_start_session_create(e, c, opts, NULL, &j, err);
  if (rc == AC_OK) {
    rc = ac_job_finish_blocking(j, err);
    *out = ac_job_take_session(j);
    ac_job_free(j);
  }
  ac_client_engine_put(c, e);
  return rc;
}

enum ac_code ac_session_attach(ac_client *c, const char *session_id,
                               const char *name, const char *ns,
                               ac_session **out, struct ac_error *err) {
  enum ac_code rc;
  char *base = NULL;
  *out = NULL;
  if (c == NULL)
    return ac_error_set(err, AC_EINVAL, "client is NULL");
  if (session_id == NULL || session_id[0] == '\0' ||
      bad_header_value(session_id))
    return ac_error_set(err, AC_EINVAL, "invalid session id");
  name = name ? name : AC_DEFAULT_NAME;
  ns = ns ? ns : AC_DEFAULT_NAMESPACE;
  rc = base_url(c, name, ns, &base, err);
  if (rc != AC_OK)
    return rc;
  return session_new(c, session_id, name, ns, base, 0, out, err);
}

static enum ac_code stop_blocking(ac_session *s, long limit_ms,
                                  struct ac_error *err) {
  enum ac_code rc;
  ac_engine *e;
  ac_job *j;
  if (s == NULL || atomic_load(&s->closed))
    return AC_OK;
  if ((e = ac_client_engine_get(s->c, err)) == NULL)
    return err != NULL ? err->code : AC_ENOMEM;
  rc = start_stop(e, s, limit_ms, NULL, &j, err);
  if (rc == AC_OK) {
    rc = ac_job_finish_blocking(j, err);
    ac_job_free(j);
  }
  ac_client_engine_put(s->c, e);
  return rc;
}

enum ac_code ac_session_stop(ac_session *s, struct ac_error *err) {
  return stop_blocking(s, 0, err);
}

enum ac_code ac_session_stop_within(ac_session *s, long timeout_ms,
                                    struct ac_error *err) {
  return stop_blocking(s, timeout_ms > 0 ? timeout_ms : 1, err);
}

void ac_session_free(ac_session *s) {
  if (s == NULL)
    return;
  ac_client_free(s->c);
  free(s->id);
  free(s->name);
  free(s->ns);
  free(s->base_url);
  free(s);
}

const char *ac_session_id(const ac_session *s) {
  return s->id;
}

const char *ac_session_name(const ac_session *s) {
  return s->name;
}

const char *ac_session_namespace(const ac_session *s) {
  return s->ns;
}

const char *ac_session_base_url(const ac_session *s) {
  return s->base_url;
}

int ac_session_owned(const ac_session *s) {
  return atomic_load(&s->owned);
}

void ac_session_detach(ac_session *s) {
  atomic_store(&s->owned, 0);
}

int ac_session_closed(const ac_session *s) {
  return atomic_load(&s->closed);
}
