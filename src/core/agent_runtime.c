/*
** agent_runtime.c -- agent runtimes, as the SDK's AgentRuntimeClient
** reaches them: everything goes through the Router at
** {router}/v1/namespaces/{ns}/agent-runtimes/{name}/invocations/.
**
** There is no control-plane call. Without a session id the client sends
** one GET to the base URL without x-agentcube-session-id; the Router makes
** a session for it, forwards the GET to the agent and puts the session id
** in that header of the answer, whatever the agent's status (so an answer
** of 404 or 500 carrying the header still gives the session, and only an
** answer without it fails). Each invocation is a POST of the JSON payload
** with that header. Closing only drops the connections: the Router reaps
** idle sessions.
**
** Both requests wait as requests' (connect, read) timeouts do: the read
** timeout is how long an answer may stay silent, not a total.
**
** The bootstrap GET is never retried: each attempt that reaches the
** Router may make a sandbox. A 404 that does not come from the agent (no
** session header) is classified: the plain "404 page not found" of a
** server without the route (the local runtime; a Router without agent
** runtimes) is AC_EUNSUPPORTED, the Router's JSON 404 (no such agent
** runtime, no such session) AC_ENOTFOUND; both keep http_status 404.
*/
#include "agent_runtime.h"
#include "job.h"
#include "pyjson.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIMEOUT_S 120.0
#define DEFAULT_CONNECT_S 5.0

void ac_agent_runtime_config_init(struct ac_agent_runtime_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->timeout = DEFAULT_TIMEOUT_S;
  cfg->connect_timeout = DEFAULT_CONNECT_S;
}

void ac_agent_reply_free(struct ac_agent_reply *r) {
  if (r == NULL)
    return;
  free(r->body);
  free(r->content_type);
  free(r->session_id);
  memset(r, 0, sizeof *r);
}

void ac_agent_runtime_free(ac_agent_runtime *rt) {
  if (rt == NULL)
    return;
  ac_client_free(rt->c);
  free(rt->name);
  free(rt->ns);
  free(rt->session_id);
  free(rt->base_url);
  free(rt->what);
  free(rt);
}

const char *ac_agent_runtime_session_id(const ac_agent_runtime *rt) {
  return rt->session_id;
}

const char *ac_agent_runtime_name(const ac_agent_runtime *rt) {
  return rt->name;
}

const char *ac_agent_runtime_namespace(const ac_agent_runtime *rt) {
  return rt->ns;
}

const char *ac_agent_runtime_base_url(const ac_agent_runtime *rt) {
  return rt->base_url;
}

const char *ac_agent_runtime_router_url(const ac_agent_runtime *rt) {
  return rt->c->router_url;
}

/* Seconds (> 0, finite) as whole milliseconds, rounded up. */
static enum ac_code seconds_ms(double s, double dflt, const char *what,
                               long *ms, struct ac_error *err) {
  if (s == 0)
    s = dflt;
  if (!(s > 0) || !isfinite(s) || s > 1e6)
    return ac_error_set(err, AC_EINVAL, "%s must be a positive number of "
                        "seconds", what);
  *ms = (long)ceil(s * 1000.0);
  return AC_OK;
}

static int bad_header_value(const char *s) {
  for (; *s != '\0'; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      return 1;
  return 0;
}

/* The value of a response header of the job's last answer, or NULL. */
static const char *answer_header(ac_job *j, const char *name) {
  struct curl_header *h = NULL;
  if (j->easy == NULL ||
      curl_easy_header(j->easy, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
    return NULL;
  return h->value;
}

/* A failed answer that names no session came from the Router or from a
** server without the route, not from the agent: say which. */
static enum ac_code classify(ac_job *j, const ac_agent_runtime *rt,
                             enum ac_code rc, struct ac_error *err) {
  char msg[200];
  json_t *js;
  if (rc != AC_EHTTP || j->resp.status != 404 ||
      answer_header(j, AC_AGENT_SESSION_HEADER) != NULL)
    return rc;
  ac_http_server_message(j->resp.body.data, j->resp.body.len, msg,
                         sizeof msg);
  js = json_loadb(ac_buf_str(&j->resp.body), j->resp.body.len, 0, NULL);
  if (!json_is_object(js))
    rc = ac_error_set(err, AC_EUNSUPPORTED, "%s: the server at %s does not "
                      "serve agent runtimes (HTTP 404%s%s); the local "
                      "runtime never does, an AgentCube Router does",
                      rt->what, rt->c->router_url, msg[0] ? ": " : "", msg);
  else
    rc = ac_error_set(err, AC_ENOTFOUND, "%s: not found at %s: %s",
                      rt->what, rt->c->router_url, msg[0] ? msg : "HTTP 404");
  json_decref(js);
  if (err != NULL)
    err->http_status = 404;
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Construction: the client, and the bootstrap GET                        */

struct open_state {
  ac_agent_runtime *rt;               /* owned until taken */
};

static void open_cleanup(ac_job *j) {
  struct open_state *st = j->st;
  if (st == NULL)
    return;
  ac_agent_runtime_free(st->rt);
  free(st);
  j->st = NULL;
}

static enum ac_code open_step(ac_job *j, enum ac_code rc,
                              struct ac_error *err) {
  struct open_state *st = j->st;
  ac_agent_runtime *rt = st->rt;
  const char *sid = answer_header(j, AC_AGENT_SESSION_HEADER);
  const char *ct, *cl;

  /* An answer that arrived whole names the session whatever its status;
  ** one cut off or refused on our side does not count. */
  if (sid != NULL && sid[0] != '\0' && (rc == AC_OK || rc == AC_EHTTP)) {
    if (bad_header_value(sid))
      return ac_error_set(err, AC_EPROTO, "%s: the session id from %s "
                          "holds control characters", rt->what,
                          rt->c->router_url);
    rt->session_id = strdup(sid);
    if (rt->session_id == NULL)
      return ac_error_set(err, AC_ENOMEM, "out of memory");
    ac_error_clear(err);
    return AC_OK;
  }
  if (rc != AC_OK)
    return classify(j, rt, rc, err);
  ct = answer_header(j, "Content-Type");
  cl = answer_header(j, "Content-Length");
  rc = ac_error_set(err, AC_EPROTO, "%s: the answer of %s (status %ld, "
                    "content-type %s, content-length %s) has no %s header, "
                    "so no session was made", rt->what, rt->c->router_url,
                    j->resp.status, ct ? ct : "none", cl ? cl : "none",
                    AC_AGENT_SESSION_HEADER);
  if (err != NULL)
    err->http_status = j->resp.status;
  return rc;
}

/* The runtime object and its client, before any HTTP. */
static enum ac_code runtime_make(const struct ac_agent_runtime_config *cfg,
                                 ac_agent_runtime **out,
                                 struct ac_error *err) {
  struct ac_client_config cc;
  ac_agent_runtime *rt;
  const char *router = cfg->router_url;
  const char *ns = cfg->ns ? cfg->ns : AC_DEFAULT_NAMESPACE;
  struct ac_buf path;
  enum ac_code rc;

  *out = NULL;
  if (cfg->agent_name == NULL || cfg->agent_name[0] == '\0')
    return ac_error_set(err, AC_EINVAL, "agent runtime: agent_name is "
                        "required");
  if (router == NULL || router[0] == '\0')
    router = getenv("ROUTER_URL");
  if (router == NULL || router[0] == '\0')
    return ac_error_set(err, AC_ECONFIG, "agent runtime %s/%s: no Router "
                        "URL: pass router_url or set ROUTER_URL (the local "
                        "runtime does not serve agent runtimes)", ns,
                        cfg->agent_name);
  if (cfg->session_id != NULL && bad_header_value(cfg->session_id))
    return ac_error_set(err, AC_EINVAL, "invalid session id");
  rt = calloc(1, sizeof *rt);
  if (rt == NULL) {
    ac_error_set(err, AC_ENOMEM, "out of memory");
    return AC_ENOMEM;
  }
  rc = seconds_ms(cfg->timeout, DEFAULT_TIMEOUT_S, "timeout",
                  &rt->timeout_ms, err);
  if (rc == AC_OK)
    rc = seconds_ms(cfg->connect_timeout, DEFAULT_CONNECT_S,
                    "connect_timeout", &rt->connect_timeout_ms, err);
  if (rc != AC_OK)
    goto fail;

  /* A client for the Router alone: no local runtime, no service-account
  ** token (the SDK sends a token to the Router only when given one). */
  ac_client_config_init(&cc);
  cc.workload_manager_url = router;
  cc.router_url = router;
  cc.auth = cfg->auth;
  cc.auth_token = cfg->auth_token;
  cc.sa_token_path = "";
  cc.local_default = NULL;
  cc.verbose = cfg->verbose;
  cc.log = cfg->log;
  cc.log_ud = cfg->log_ud;
  cc.connect_timeout_ms = rt->connect_timeout_ms;
  if (cfg->max_response > 0)
    cc.max_response = cfg->max_response;
  if (cfg->max_retries != 0)
    cc.max_retries = cfg->max_retries;
  cc.interrupt = cfg->interrupt;
  rc = ac_client_new(&cc, &rt->c, err);
  if (rc != AC_OK)
    goto fail;

  rt->name = strdup(cfg->agent_name);
  rt->ns = strdup(ns);
  if (cfg->session_id != NULL && cfg->session_id[0] != '\0')
    rt->session_id = strdup(cfg->session_id);
  if (rt->name == NULL || rt->ns == NULL ||
      asprintf(&rt->what, "agent runtime %s/%s", ns, cfg->agent_name) < 0 ||
      (cfg->session_id != NULL && cfg->session_id[0] != '\0' &&
       rt->session_id == NULL)) {
    rt->what = NULL;
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    goto fail;
  }
  /* urljoin(router, "/v1/..."): the Router URL's own path is replaced */
  ac_buf_init(&path, 0);
  if (ac_buf_addstr(&path, "/v1/namespaces/") != AC_OK ||
      ac_url_encode(&path, ns, 0) != AC_OK ||
      ac_buf_addstr(&path, "/agent-runtimes/") != AC_OK ||
      ac_url_encode(&path, cfg->agent_name, 0) != AC_OK ||
      ac_buf_addstr(&path, "/invocations/") != AC_OK)
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
  else
    rc = ac_url_with_path(rt->c->router_url, ac_buf_str(&path),
                          &rt->base_url, err);
  ac_buf_free(&path);
  if (rc != AC_OK)
    goto fail;
  *out = rt;
  return AC_OK;
fail:
  ac_agent_runtime_free(rt);
  return rc;
}

enum ac_code ac_start_agent_runtime_new(
    ac_engine *e, const struct ac_agent_runtime_config *cfg,
    const struct ac_job_callbacks *cbs, ac_job **out, struct ac_error *err) {
  struct curl_slist *headers = NULL;
  struct ac_http_req req;
  struct open_state *st;
  ac_agent_runtime *rt;
  enum ac_code rc;
  char *url;
  ac_job *j;

  *out = NULL;
  if (cfg == NULL)
    return ac_error_set(err, AC_EINVAL, "agent runtime: config is NULL");
  rc = runtime_make(cfg, &rt, err);
  if (rc != AC_OK)
    return rc;
  assert(rt != NULL);                 /* runtime_make's AC_OK has one */
  rc = ac_job_new(e, rt->c, NULL, rt->what, cbs, &j, err);
  if (rc != AC_OK) {
    ac_agent_runtime_free(rt);
    return rc;
  }
  st = calloc(1, sizeof *st);
  if (st == NULL) {
    ac_job_free(j);
    ac_agent_runtime_free(rt);
    ac_error_set(err, AC_ENOMEM, "out of memory");
    return AC_ENOMEM;
  }
  st->rt = rt;                        /* the job owns rt from here */
  j->st = st;
  j->cleanup = open_cleanup;
  j->step = open_step;
  if (rt->session_id != NULL) {       /* reuse: nothing to send */
    ac_job_complete(j, AC_OK);
    *out = j;
    return AC_OK;
  }
  url = strdup(rt->base_url);
  if (url == NULL)
    return ac_job_abandon(j, ac_error_set(err, AC_ENOMEM, "out of memory"));
  rc = ac_auth_add_header(rt->c->auth, &headers, err);
  if (rc != AC_OK) {
    free(url);
    return ac_job_abandon(j, rc);
  }
  memset(&req, 0, sizeof req);
  req.op = rt->what;
  req.method = "GET";
  req.connect_timeout_ms = rt->connect_timeout_ms;
  req.idle_timeout_ms = rt->timeout_ms;
  req.max_body = rt->c->max_response;
  req.no_retry = 1;                   /* each attempt may make a sandbox */
  rc = ac_job_send(j, &req, url, NULL, headers, err);
  if (rc != AC_OK)
    return ac_job_abandon(j, rc);
  *out = j;
  return AC_OK;
}

ac_agent_runtime *ac_job_take_agent_runtime(ac_job *j) {
  struct open_state *st;
  ac_agent_runtime *rt;
  if (j == NULL || j->cleanup != open_cleanup || !j->done || j->rc != AC_OK)
    return NULL;
  st = j->st;
  rt = st->rt;
  st->rt = NULL;
  return rt;
}

enum ac_code ac_agent_runtime_new(const struct ac_agent_runtime_config *cfg,
                                  ac_agent_runtime **out,
                                  struct ac_error *err) {
  enum ac_code rc;
  ac_engine *e;
  ac_job *j;
  *out = NULL;
  /* An engine of its own: the client exists only inside the job. */
  rc = ac_engine_new(&e, err);
  if (rc != AC_OK)
    return rc;
  if (cfg != NULL)
    ac_engine_set_interrupt_flag(e, cfg->interrupt);
  rc = ac_start_agent_runtime_new(e, cfg, NULL, &j, err);
  if (rc == AC_OK) {
    rc = ac_job_finish_blocking(j, err);
    *out = ac_job_take_agent_runtime(j);
    ac_job_free(j);
  }
  ac_engine_free(e);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Invocations                                                             */

struct invoke_state {
  ac_agent_runtime *rt;               /* borrowed: outlives the job */
  struct ac_agent_reply reply;
};

static void invoke_cleanup(ac_job *j) {
  struct invoke_state *st = j->st;
  if (st == NULL)
    return;
  ac_agent_reply_free(&st->reply);
  free(st);
  j->st = NULL;
}

static enum ac_code invoke_step(ac_job *j, enum ac_code rc,
                                struct ac_error *err) {
  struct invoke_state *st = j->st;
  const char *ct = NULL, *sid;
  if (rc != AC_OK && rc != AC_EHTTP)
    return rc;
  /* The answer, also of a failure (the agent's own error body). */
  curl_easy_getinfo(j->easy, CURLINFO_CONTENT_TYPE, &ct);
  sid = answer_header(j, AC_AGENT_SESSION_HEADER);
  st->reply.status = j->resp.status;
  st->reply.content_type = strdup(ct ? ct : "");
  st->reply.session_id = strdup(sid ? sid : "");
  if (st->reply.content_type == NULL || st->reply.session_id == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  rc = classify(j, st->rt, rc, err);
  st->reply.body = ac_buf_steal(&j->resp.body, &st->reply.len);
  if (st->reply.body == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  return rc;
}

enum ac_code ac_start_agent_invoke(ac_engine *e, ac_agent_runtime *rt,
                                   const char *payload_json, const char *path,
                                   double timeout,
                                   const struct ac_job_callbacks *cbs,
                                   ac_job **out, struct ac_error *err) {
  struct curl_slist *headers = NULL;
  struct invoke_state *st;
  struct ac_http_req req;
  struct ac_buf body;
  char *url = NULL, *text = NULL;
  size_t len = 0;
  long read_ms;
  enum ac_code rc;
  ac_job *j;

  *out = NULL;
  if (rt == NULL)
    return ac_error_set(err, AC_EINVAL, "invoke: agent runtime is NULL");
  if (rt->session_id == NULL)
    return ac_error_set(err, AC_EINVAL, "%s: no session", rt->what);
  read_ms = rt->timeout_ms;             /* timeout 0: the client's */
  if (timeout != 0 &&
      (rc = seconds_ms(timeout, 0, "timeout", &read_ms, err)) != AC_OK)
    return rc;
  rc = ac_agent_url(rt->base_url, path ? path : "", &url, err);
  if (rc != AC_OK)
    return rc;
  ac_buf_init(&body, rt->c->max_response);
  if (payload_json != NULL) {
    /* json=payload: the value re-written exactly as json.dumps does */
    json_error_t jerr;
    json_t *v = json_loads(payload_json, JSON_DECODE_ANY | JSON_ALLOW_NUL,
                           &jerr);
    if (v == NULL)
      rc = ac_error_set(err, AC_EINVAL, "%s: the payload is not JSON: %s",
                        rt->what, jerr.text);
    else
      rc = ac_pyjson_dump(v, &body, err);
    json_decref(v);
    if (rc == AC_OK && (text = ac_buf_steal(&body, &len)) == NULL)
      rc = ac_error_set(err, AC_ENOMEM, "out of memory");
  }
  ac_buf_free(&body);
  if (rc == AC_OK)
    rc = ac_http_add_header(&headers, AC_AGENT_SESSION_HEADER,
                            rt->session_id, err);
  if (rc == AC_OK)
    rc = ac_http_add_header(&headers, "Content-Type", "application/json",
                            err);
  if (rc == AC_OK)
    rc = ac_http_add_header(&headers, "Expect", "", err);
  if (rc == AC_OK)
    rc = ac_auth_add_header(rt->c->auth, &headers, err);
  if (rc == AC_OK)
    rc = ac_job_new(e, rt->c, NULL, rt->what, cbs, &j, err);
  st = rc == AC_OK ? calloc(1, sizeof *st) : NULL;
  if (st == NULL) {
    if (rc == AC_OK) {
      ac_job_free(j);
      rc = AC_ENOMEM;
      ac_error_set(err, rc, "out of memory");
    }
    free(url);
    free(text);
    curl_slist_free_all(headers);
    return rc;
  }
  st->rt = rt;
  j->st = st;
  j->cleanup = invoke_cleanup;
  j->step = invoke_step;
  memset(&req, 0, sizeof req);
  req.op = rt->what;
  req.method = "POST";
  req.body_len = len;
  req.empty_body = text == NULL;      /* json=None: Content-Length: 0 */
  req.connect_timeout_ms = rt->connect_timeout_ms;
  req.idle_timeout_ms = read_ms;
  req.max_body = rt->c->max_response;
  rc = ac_job_send(j, &req, url, text, headers, err);
  if (rc != AC_OK)
    return ac_job_abandon(j, rc);
  *out = j;
  return AC_OK;
}

void ac_job_take_agent_reply(ac_job *j, struct ac_agent_reply *out) {
  struct invoke_state *st;
  memset(out, 0, sizeof *out);
  if (j == NULL || j->cleanup != invoke_cleanup)
    return;
  st = j->st;
  *out = st->reply;
  memset(&st->reply, 0, sizeof st->reply);
}

enum ac_code ac_agent_runtime_invoke(ac_agent_runtime *rt,
                                     const char *payload_json,
                                     const char *path, double timeout,
                                     struct ac_agent_reply *reply,
                                     struct ac_error *err) {
  enum ac_code rc;
  ac_engine *e;
  ac_job *j;
  if (reply != NULL)
    memset(reply, 0, sizeof *reply);
  if (rt == NULL)
    return ac_error_set(err, AC_EINVAL, "invoke: agent runtime is NULL");
  if ((e = ac_client_engine_get(rt->c, err)) == NULL)
    return err != NULL ? err->code : AC_ENOMEM;
  rc = ac_start_agent_invoke(e, rt, payload_json, path, timeout, NULL, &j,
                             err);
  if (rc == AC_OK) {
    rc = ac_job_finish_blocking(j, err);
    if (reply != NULL)
      ac_job_take_agent_reply(j, reply);
    ac_job_free(j);
  }
  ac_client_engine_put(rt->c, e);
  return rc;
}
