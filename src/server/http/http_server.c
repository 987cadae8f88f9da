/*
** http_server.c -- libmicrohttpd front end: routing, authentication,
** request bodies, the hand-off of blocking work to the worker pool, the
** connection budgets and the access log.
*/
#include "http_server.h"
#include "budget.h"
#include "conns.h"
#include "live.h"
#include "reply.h"
#include "routes.h"
#include "sandbox_live.h"
#include "stream.h"
#include "token.h"
#include "workers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define SESSION_HEADER "x-agentcube-session-id"
#define REFUSAL_MARGIN 64   /* connections over the cap that are accepted
                               only to be refused with an answer */


/* {====================================================== routing */

/* Splits url into r->args_buf and sets the route. Paths are already
** percent-decoded by libmicrohttpd. */
static void route_request(struct req *r, const char *method,
                          const char *url) {
  int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
  int del = !strcmp(method, "DELETE");
  char *p, *seg[6];
  size_t n = 0;

  r->route = R_NOT_FOUND;
  if (get && !strcmp(url, "/health")) {
    r->route = R_HEALTH;
    return;
  }
  if (get && !strcmp(url, "/health/live")) {
    r->route = R_LIVE;
    return;
  }
  if (get && !strcmp(url, "/health/ready")) {
    r->route = R_READY;
    return;
  }
  if (post && !strcmp(url, "/v1/code-interpreter")) {
    r->route = R_CREATE;
    return;
  }
  if (post && !strcmp(url, "/v1/agent-runtime")) {
    r->route = R_CREATE_AGENT;
    return;
  }
  if (get && (!strcmp(url, "/v1/code-interpreter/sessions") ||
              !strcmp(url, "/v1/code-interpreter/sessions/"))) {
    r->route = R_LIST;
    return;
  }
  snprintf(r->args_buf, sizeof r->args_buf, "%s", url);
  if (!strncmp(url, "/v1/code-interpreter/sessions/", 30) ||
      !strncmp(url, "/v1/agent-runtime/sessions/", 27)) {
    r->id = strrchr(r->args_buf, '/') + 1;
    if (*r->id && strlen(r->args_buf) == strlen(url) &&
        !strchr(url + (url[4] == 'c' ? 30 : 27), '/')) {
      if (del)
        r->route = R_DELETE;
      else if (get && url[4] == 'c')
        r->route = R_INFO;
    }
    return;
  }
  /* /v1/namespaces/{ns}/code-interpreters/{name}/invocations/<path> */
  if (strncmp(url, "/v1/namespaces/", 15) != 0 || !(get || post))
    return;
  p = r->args_buf + 15;
  while (n < 4 && p) {
    seg[n++] = p;
    p = strchr(p, '/');
    if (p)
      *p++ = '\0';
  }
  if (n < 4 || strcmp(seg[3], "invocations") || !*seg[0] || !*seg[2])
    return;
  if (strcmp(seg[1], "code-interpreters") != 0)
    return;                   /* agent runtimes are not served locally */
  if (p == NULL) {
    r->route = R_INVOKE;      /* ".../invocations" redirects */
    r->subpath = NULL;
  } else {
    r->route = R_INVOKE;
    r->subpath = p;
  }
  r->ns = seg[0];
  r->name = seg[2];
}

/* Checks the bearer token. Returns 1 when the request may go on; otherwise
** a 401 in the route's error family is queued. */
static int authorized(struct req *r, enum MHD_Result *ret) {
  const char *h, *tok;
  int wm = r->route != R_INVOKE;

  if (!r->srv->auth)
    return 1;
  h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                  MHD_HTTP_HEADER_AUTHORIZATION);
  if (h == NULL || *h == '\0') {
    *ret = wm ? reply_error(r, FAM_WM, 401, "Missing authorization header")
              : reply_router_code(r, 401, "UNAUTHORIZED",
                                  "missing authorization header");
    return 0;
  }
  if (strncasecmp(h, "Bearer ", 7) != 0 || strchr(h + 7, ' ') ||
      h[7] == '\0') {
    *ret = wm ? reply_error(r, FAM_WM, 401,
                            "Invalid authorization header format")
              : reply_router_code(r, 401, "UNAUTHORIZED",
                                  "invalid authorization header format");
    return 0;
  }
  tok = h + 7;
  if (!ac_token_equal(r->srv->token, tok, strlen(tok))) {
    *ret = wm ? reply_error(r, FAM_WM, 401, "Invalid or expired token")
              : reply_router_code(r, 401, "UNAUTHORIZED",
                                  "invalid or expired token");
    return 0;
  }
  return 1;
}

/* }====================================================== */

/* {====================================================== data plane */

static int is_multipart(struct req *r) {
  const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                               MHD_HTTP_HEADER_CONTENT_TYPE);
  return ct && strncasecmp(ct, "multipart/form-data", 19) == 0;
}

/* api/processes[/{id}[/verb]] and api/contexts[/{id}/verb]; {id} goes to
** r->live_id. */
static enum data_op live_op(struct req *r, const char *p, int get) {
  static const struct { const char *verb; int get; enum data_op op; }
  verbs[] = {
    { "output", 1, OP_PROC_OUTPUT }, { "stdin", 0, OP_PROC_STDIN },
    { "signal", 0, OP_PROC_SIGNAL }, { "wait", 0, OP_PROC_WAIT },
  };
  const char *id, *slash;
  size_t idlen;

  int proc;

  if (!strcmp(p, "api/processes"))
    return get ? OP_PROC_LIST : OP_PROC_START;
  if (!strcmp(p, "api/contexts"))
    return get ? OP_CTX_LIST : OP_CTX_CREATE;
  if (!strncmp(p, "api/processes/", 14))
    proc = 1, id = p + 14;
  else if (!strncmp(p, "api/contexts/", 13))
    proc = 0, id = p + 13;
  else
    return OP_NONE;
  slash = strchr(id, '/');
  idlen = slash ? (size_t)(slash - id) : strlen(id);
  if (idlen == 0 || idlen >= sizeof r->live_id)
    return OP_NONE;
  snprintf(r->live_id, sizeof r->live_id, "%.*s", (int)idlen, id);
  if (!proc)
    return slash == NULL || get ? OP_NONE
         : !strcmp(slash + 1, "run") ? OP_CTX_RUN
         : !strcmp(slash + 1, "delete") ? OP_CTX_DELETE : OP_NONE;
  if (slash == NULL)
    return get ? OP_PROC_GET : OP_NONE;
  for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
    if (!strcmp(slash + 1, verbs[i].verb))
      return verbs[i].get == get ? verbs[i].op : OP_NONE;
  return OP_NONE;
}

/* Picks the sandbox operation from the path below ".../invocations/". */
static enum data_op data_op(struct req *r, const char *method) {
  const char *p = r->subpath;
  int get = !strcmp(method, "GET");
  while (*p == '/')
    p++;
  if (!strcmp(p, "api/execute"))
    return get ? OP_NONE : OP_EXECUTE;
  if (!strcmp(p, "api/files"))
    return get ? OP_LIST : is_multipart(r) ? OP_UPLOAD_MULTIPART
                                           : OP_UPLOAD_JSON;
  if (!strncmp(p, "api/files/", 10) && get) {
    r->subpath = p + 10;
    return OP_DOWNLOAD;
  }
  if (!strcmp(p, "api/fs/stat"))
    return get ? OP_FS_STAT : OP_NONE;
  if (!strcmp(p, "api/fs/remove"))
    return get ? OP_NONE : OP_FS_REMOVE;
  if (!strcmp(p, "api/fs/mkdir"))
    return get ? OP_NONE : OP_FS_MKDIR;
  if (!strcmp(p, "api/fs/rename"))
    return get ? OP_NONE : OP_FS_RENAME;
  return live_op(r, p, get);
}

/* The Router's auto-create, on a worker (it mounts an image). */
static void job_autocreate(struct req *r) {
  struct ac_server *srv = r->srv;
  const struct ac_template *tpl = ac_config_find(srv->cfg, r->ns, r->name);
  struct ac_error err;

  if (tpl == NULL) {
    reply_error(r, FAM_ROUTER, 404,
                "codeinterpreters.agentcube.volcano.sh \"%s/%s\" not found",
                r->ns, r->name);
    return;
  }
  if (ac_store_create(srv->store, tpl, r->ns, r->name, 0, &r->sess, &err)) {
    fprintf(stderr, "agentcube: auto-create: %s\n", err.msg);
    if (err.code == AC_ELIMIT || err.code == AC_ETOOBIG)
      reply_error(r, FAM_ROUTER, err.code == AC_ELIMIT ? 503 : 507, "%s",
                  err.msg);
    else
      reply_error(r, FAM_ROUTER, 500, "internal server error");
    return;
  }
  snprintf(r->sid, sizeof r->sid, "%s", r->sess->id);
}

/* The rest of a data-plane request's first callback, once its session is
** known. */
static enum MHD_Result invoke_ready(struct req *r) {
  conns_set_key(r->srv->conns, r->k, r->sess);
  if (r->op == OP_NONE)
    return reply_text(r, 404, "404 page not found");
  if (r->op == OP_UPLOAD_MULTIPART)
    return upload_multipart_begin(r);
  return MHD_YES;
}

/* 413 in PicoD's shape (which has no "code"). */
static enum MHD_Result reply_too_big(struct req *r) {
  char detail[96];
  snprintf(detail, sizeof detail, "maximum allowed size is %zu bytes",
           r->limit);
  r->op = OP_NONE;
  return reply_json(r, 413, json_pack("{s:s, s:s}", "error",
                                      "request body too large",
                                      "detail", detail));
}

/* The server-wide request memory pool is spent: come back later. */
static enum MHD_Result reply_busy_memory(struct req *r) {
  r->op = OP_NONE;
  return reply_json(r, 503, json_pack(
    "{s:s, s:s}", "error", "server busy: the memory budget of requests in "
    "flight (maxRequestMemory) is spent; try again later", "code",
    "SERVER_MEMORY_BUDGET"));
}

/* First callback of a data-plane request: limits, session, operation. */
static enum MHD_Result invoke_begin(struct req *r, const char *method,
                                    const char *url) {
  struct ac_server *srv = r->srv;
  const char *cl, *sid;

  if (r->subpath == NULL) {
    /* gin redirects ".../invocations" to ".../invocations/" */
    char loc[4200];
    struct MHD_Response *resp =
      MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    snprintf(loc, sizeof loc, "%s/", url);
    if (resp)
      MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc);
    return reply_response(r, strcmp(method, "GET") ? 307 : 301, resp);
  }
  if (atomic_fetch_add(&srv->inflight, 1) >= (int)srv->cfg->max_inflight) {
    atomic_fetch_sub(&srv->inflight, 1);
    return reply_router_code(r, 429, "SERVER_OVERLOADED",
                             "server overloaded, please try again later");
  }
  r->counted = 1;
  r->op = data_op(r, method);
  cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                   MHD_HTTP_HEADER_CONTENT_LENGTH);
  /* each route its own body limit */
  r->limit = r->op == OP_UPLOAD_MULTIPART ? srv->cfg->max_upload_bytes
           : r->op == OP_UPLOAD_JSON      ? srv->cfg->max_json_bytes
           : r->op == OP_EXECUTE || r->op == OP_PROC_START ||
             r->op == OP_PROC_STDIN || r->op == OP_CTX_RUN
                                          ? srv->cfg->max_execute_bytes
                                          : srv->cfg->max_control_bytes;
  if (cl && strtoull(cl, NULL, 10) > r->limit)
    return reply_too_big(r);
  sid = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                    SESSION_HEADER);
  if (sid == NULL || *sid == '\0') {
    r->after = invoke_ready;
    return req_defer(r, job_autocreate);
  }
  r->sess = ac_store_get(srv->store, sid, 1);
  /* A session answers only under the namespace and name it was created
  ** for: another URL is as unknown as a wrong id, so it reveals nothing. */
  if (r->sess && (strcmp(r->sess->namespace_, r->ns) != 0 ||
                  strcmp(r->sess->name, r->name) != 0)) {
    ac_store_release(srv->store, r->sess);
    r->sess = NULL;
  }
  if (r->sess == NULL)
    return reply_error(r, FAM_ROUTER, 404,
                       "sessions.agentcube.volcano.sh \"%s\" not found", sid);
  snprintf(r->sid, sizeof r->sid, "%s", r->sess->id);
  return invoke_ready(r);
}

/* }====================================================== */

/* {====================================================== the handler */

/* Appends a chunk of a buffered (JSON) body, up to the limit. */
static void body_append(struct req *r, const char *data, size_t size) {
  if (r->too_big || r->no_memory || size == 0)
    return;
  if (r->len + size > r->limit) {
    r->too_big = 1;
    return;
  }
  if (r->len + size + 1 > r->cap) {
    size_t ncap = r->cap ? r->cap : 4096;
    char *grown;
    while (ncap < r->len + size + 1)
      ncap *= 2;
    if (!budget_pool_take(ncap - r->cap)) {
      r->no_memory = 1;
      return;
    }
    r->reserved += ncap - r->cap;
    if ((grown = realloc(r->body, ncap)) == NULL) {
      r->too_big = 1;
      return;
    }
    r->body = grown;
    r->cap = ncap;
  }
  memcpy(r->body + r->len, data, size);
  r->len += size;
  r->body[r->len] = '\0';
}

/* The handler of a request whose body is in, on a worker. */
static void job_finish(struct req *r) {
  if (r->route != R_INVOKE) {
    route_control(r);
    return;
  }
  /* The Router touches the session before and after every request. */
  ac_store_touch(r->srv->store, r->sess);
  switch (r->op) {
  case OP_EXECUTE: route_execute(r); return;
  case OP_UPLOAD_JSON: route_upload_json(r); return;
  case OP_UPLOAD_MULTIPART: route_upload_multipart_done(r); return;
  case OP_DOWNLOAD: route_download(r); return;
  case OP_LIST: route_list(r); return;
  case OP_FS_REMOVE: case OP_FS_MKDIR: case OP_FS_STAT: case OP_FS_RENAME:
    route_fs(r);
    return;
  case OP_PROC_START: case OP_PROC_LIST: case OP_PROC_GET:
  case OP_PROC_OUTPUT: case OP_PROC_STDIN: case OP_PROC_SIGNAL:
  case OP_PROC_WAIT:
    route_processes(r);
    return;
  case OP_CTX_CREATE: case OP_CTX_LIST: case OP_CTX_RUN: case OP_CTX_DELETE:
    route_contexts(r);
    return;
  case OP_NONE: break;
  }
  reply_text(r, 404, "404 page not found");
}

/* One chunk of a multipart upload, written on a worker. */
static void job_chunk(struct req *r) {
  if (MHD_post_process(r->pp, r->chunk, r->chunk_len) != MHD_YES &&
      r->up_rc == AC_OK)
    ac_error_set(&r->up_err, r->up_rc = AC_EINVAL,
                 "malformed multipart body");
  r->up_bytes += r->chunk_len;
  free(r->chunk);
  r->chunk = NULL;
}

static enum MHD_Result finish(struct req *r) {
  if (r->no_memory)
    return reply_busy_memory(r);
  if (r->route != R_INVOKE) {
    /* Creating and deleting sessions mount and unmount images. */
    if (r->route == R_CREATE || r->route == R_DELETE)
      return req_defer(r, job_finish);
    return route_control(r);
  }
  if (r->too_big)
    return reply_too_big(r);
  return req_defer(r, job_finish);
}

/* }====================================================== */

/* {====================================================== deferred work */

static void on_gone(void *ud) {
  struct req *r = ud;
  /* The client went away or the session is being deleted: what runs for
  ** the request is killed (commands: their whole tree). */
  struct sbx_task *t;
  atomic_store(&r->gone, 1);      /* first: see live_set_task */
  t = __atomic_load_n(&r->task, __ATOMIC_SEQ_CST);
  if (t)
    sbx_task_cancel(t);
}

/* Hands the request back to the event loop; called with r->mu held. */
static void take_back(struct req *r) {
  r->work_done = 1;
  if (r->suspended) {
    r->suspended = 0;
    MHD_resume_connection(r->conn);
    atomic_fetch_sub(&r->srv->suspended, 1);
  }
}

static void run_job(void *arg) {
  struct req *r = arg;
  pthread_mutex_lock(&r->mu);
  r->job_running = 1;
  pthread_mutex_unlock(&r->mu);
  r->job(r);
  /* An asynchronous job keeps the hang-up watch until the request ends:
  ** a client that goes away cancels its task. */
  if (r->k && !r->async && r->task == NULL)
    conns_unwatch(r->srv->conns, r->k);
  pthread_mutex_lock(&r->mu);
  r->job_running = 0;
  if (!r->async || r->async_done)
    take_back(r);
  pthread_mutex_unlock(&r->mu);
}

void req_async_done(struct req *r) {
  pthread_mutex_lock(&r->mu);
  r->async_done = 1;
  if (!r->job_running)
    take_back(r);
  pthread_mutex_unlock(&r->mu);
}

enum MHD_Result req_defer(struct req *r, void (*job)(struct req *)) {
  r->job = job;
  r->deferred = 1;
  pthread_mutex_lock(&r->mu);
  atomic_fetch_add(&r->srv->suspended, 1);
  MHD_suspend_connection(r->conn);
  r->suspended = 1;
  pthread_mutex_unlock(&r->mu);
  if (r->k)
    conns_watch(r->srv->conns, r->k, on_gone, r);
  if (workers_submit(r->srv->workers, run_job, r) != 0) {
    if (r->k)
      conns_unwatch(r->srv->conns, r->k);
    pthread_mutex_lock(&r->mu);
    r->suspended = 0;
    MHD_resume_connection(r->conn);
    atomic_fetch_sub(&r->srv->suspended, 1);
    pthread_mutex_unlock(&r->mu);
    r->deferred = 0;
    return MHD_NO;
  }
  return MHD_YES;
}

/* Called when a job has ended and the connection is served again: queues
** what the job answered. Returns 1 when the callback is over (*ret set). */
static int take_over(struct req *r, enum MHD_Result *ret) {
  pthread_mutex_lock(&r->mu);
  if (!r->work_done) {
    pthread_mutex_unlock(&r->mu);
    return 0;
  }
  r->work_done = 0;
  pthread_mutex_unlock(&r->mu);
  r->deferred = 0;
  if (r->pending) {
    struct MHD_Response *resp = r->pending;
    r->pending = NULL;
    *ret = MHD_queue_response(r->conn, r->pending_status, resp);
    MHD_destroy_response(resp);
    return 1;
  }
  if (r->after) {
    /* A job of the first callback: libmicrohttpd calls it again as such
    ** (no body yet), so this call only finishes the setup. */
    enum MHD_Result (*after)(struct req *) = r->after;
    r->after = NULL;
    *ret = after(r);
    return 1;
  }
  return 0;
}

/* }====================================================== */

/* {====================================================== connections */

static void on_connection(void *cls, struct MHD_Connection *conn,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
  struct ac_server *srv = cls;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *fd =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    const union MHD_ConnectionInfo *addr =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    *socket_context = fd ? conns_open(srv->conns, fd->connect_fd,
                                      addr ? addr->client_addr : NULL)
                         : NULL;
  } else {
    conns_close(srv->conns, *socket_context);
    *socket_context = NULL;
  }
}

/* A clear refusal for a connection over a cap. */
static enum MHD_Result refuse(struct req *r, enum conn_refusal why) {
  const struct ac_config *cfg = r->srv->cfg;
  char msg[200];
  r->close_conn = 1;
  if (why == CONN_OVER_ADDR) {
    snprintf(msg, sizeof msg, "too many connections from %s (the server "
             "allows %u per address)", conn_addr(r->k),
             cfg->max_connections_per_addr);
    return reply_router_code(r, 429, "TOO_MANY_CONNECTIONS", msg);
  }
  snprintf(msg, sizeof msg, "the server has reached its limit of %u "
           "connections, please try again later", cfg->max_connections);
  return reply_router_code(r, 503, "CONNECTION_LIMIT", msg);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  struct ac_server *srv = cls;
  struct req *r = *con_cls;
  enum MHD_Result ret = MHD_YES;

  (void)version;
  if (r == NULL) {
    const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if ((r = calloc(1, sizeof *r)) == NULL)
      return MHD_NO;
    *con_cls = r;
    pthread_mutex_init(&r->mu, NULL);
    r->srv = srv;
    r->conn = conn;
    r->k = ci ? ci->socket_context : NULL;
    clock_gettime(CLOCK_MONOTONIC, &r->t0);
    r->limit = srv->cfg->max_control_bytes;
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->url, sizeof r->url, "%s", url);
    if (r->k) {
      conns_request_begin(srv->conns, r->k);
      conns_on_abort(srv->conns, r->k, on_gone, r);
      if (conn_refusal(r->k) != CONN_OK)
        return refuse(r, conn_refusal(r->k));
    }
    route_request(r, method, url);
    if (r->route == R_NOT_FOUND)
      return reply_text(r, 404, "404 page not found");
    if (r->route >= R_CREATE && !authorized(r, &ret))
      return ret;
    if (r->route == R_INVOKE)
      return invoke_begin(r, method, url);
    return MHD_YES;
  }
  if (take_over(r, &ret))
    return ret;
  /* A job of this request is still queued or running. libmicrohttpd may
  ** call again before it resumes the connection (with the next piece of a
  ** chunked body already in its buffer): leave that data where it is, it
  ** comes again once the job is done. Taking it started a second job on
  ** the same request, and the first one's chunk was lost (a crash). */
  if (r->deferred)
    return MHD_YES;
  if (r->responded) {
    *upload_data_size = 0;  /* an early answer: drop the rest of the body */
    return MHD_YES;
  }
  if (*upload_data_size > 0) {
    if (r->pp) {
      /* The chunk is written on a worker; the connection reads no more
      ** until it is. */
      if ((r->chunk = malloc(*upload_data_size)) == NULL)
        return MHD_NO;
      memcpy(r->chunk, upload_data, *upload_data_size);
      r->chunk_len = *upload_data_size;
      *upload_data_size = 0;
      return req_defer(r, job_chunk);
    } else {
      body_append(r, upload_data, *upload_data_size);
    }
    *upload_data_size = 0;
    return MHD_YES;
  }
  return finish(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **con_cls, enum MHD_RequestTerminationCode toe) {
  struct ac_server *srv = cls;
  struct req *r = *con_cls;
  struct timespec t1;
  double ms;

  (void)conn;
  if (r == NULL)
    return;
  /* No hang-up or abort callback can see r after this. */
  if (r->k)
    conns_request_end(srv->conns, r->k);
  if (r->task) {
    /* A request that ends before its command (the client went away)
    ** takes the command with it. */
    sbx_task_cancel(r->task);
    sbx_task_release(r->task);
  }
  stream_detach(r->stream);
  live_state_free(r->live);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  ms = (double)(t1.tv_sec - r->t0.tv_sec) * 1e3 +
       (double)(t1.tv_nsec - r->t0.tv_nsec) / 1e6;
  if (srv->access_log) {
    char when[40];
    fprintf(srv->access_log, "%s %s %s %u %.1fms%s%s%s\n",
            rfc3339_secs(time(NULL), when), r->method, r->url, r->status,
            ms, r->sid[0] ? " session=" : "", r->sid,
            toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted");
    fflush(srv->access_log);
  }
  if (r->pp)
    MHD_destroy_post_processor(r->pp);
  if (r->writer)
    fapi_write_abort(r->writer);
  if (r->sess) {
    ac_store_touch(srv->store, r->sess);
    ac_store_release(srv->store, r->sess);
  }
  if (r->counted)
    atomic_fetch_sub(&srv->inflight, 1);
  if (r->pending)
    MHD_destroy_response(r->pending);
  free(r->chunk);
  budget_pool_give(r->reserved);
  free(r->up_path);
  free(r->up_mode);
  free(r->body);
  /* A worker hands the request back (take_back) with r->mu held and
  ** unlocks it after: the loop may see the client gone and end the
  ** request in between, so wait for that unlock before the mutex and r
  ** go (freeing them under the worker corrupted the heap). */
  pthread_mutex_lock(&r->mu);
  pthread_mutex_unlock(&r->mu);
  pthread_mutex_destroy(&r->mu);
  free(r);
  *con_cls = NULL;
}

/* }====================================================== */

/* {====================================================== start and stop */

/* Parses "ADDR:PORT" or "[ADDR]:PORT" and binds a listening socket. */
static enum ac_code listen_on(const char *spec, int *fd_out, char *endpoint,
                              size_t epsz, struct ac_error *err) {
  char host[256], port[16];
  const char *colon;
  struct addrinfo hints, *ai = NULL;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  int fd = -1, one = 1, rc;

  if (spec[0] == '[') {
    const char *close = strchr(spec, ']');
    if (!close || close[1] != ':')
      return ac_error_set(err, AC_EINVAL,
                          "--listen %s: expected [ADDR]:PORT", spec);
    snprintf(host, sizeof host, "%.*s", (int)(close - spec - 1), spec + 1);
    colon = close + 1;
  } else {
    colon = strrchr(spec, ':');
    if (colon == NULL)
      return ac_error_set(err, AC_EINVAL,
                          "--listen %s: expected ADDR:PORT", spec);
    snprintf(host, sizeof host, "%.*s", (int)(colon - spec), spec);
  }
  /* getaddrinfo takes any number and keeps its low 16 bits: 99999 would
  ** listen on 34463 */
  {
    char *end;
    unsigned long pn = strtoul(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end || pn > 65535)
      return ac_error_set(err, AC_EINVAL, "--listen %s: the port must be a "
                          "number from 0 to 65535", spec);
  }
  snprintf(port, sizeof port, "%s", colon + 1);
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  memset(&ss, 0, sizeof ss);    /* getsockname fills it below */
  rc = getaddrinfo(*host ? host : NULL, port, &hints, &ai);
  if (rc != 0)
    return ac_error_set(err, AC_EINVAL, "--listen %s: %s", spec,
                        gai_strerror(rc));
  fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 512) != 0 ||
      getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
    int e = errno;
    if (fd >= 0)
      close(fd);
    freeaddrinfo(ai);
    return ac_error_errno(err, AC_ESYSTEM, e, "cannot listen on %s", spec);
  }
  freeaddrinfo(ai);
  if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    char txt[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &a->sin6_addr, txt, sizeof txt);
    snprintf(endpoint, epsz, "[%s]:%u", txt, ntohs(a->sin6_port));
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    char txt[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a->sin_addr, txt, sizeof txt);
    snprintf(endpoint, epsz, "%s:%u", txt, ntohs(a->sin_port));
  }
  *fd_out = fd;
  return AC_OK;
}

enum ac_code ac_server_start(const struct ac_server_options *opt,
                             const struct ac_config *cfg,
                             struct ac_store *store, struct ac_server **out,
                             char *url, size_t urlsz, struct ac_error *err) {
  struct ac_server *srv = calloc(1, sizeof *srv);
  struct conns_limits lim;
  enum ac_code rc;
  int fd = -1;

  *out = NULL;
  if (srv == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  srv->cfg = cfg;
  srv->store = store;
  budget_pool_init(cfg->max_request_memory);
  srv->access_log = opt->access_log;
  if (opt->token) {
    srv->auth = 1;
    snprintf(srv->token, sizeof srv->token, "%s", opt->token);
  }
  lim.max_total = cfg->max_connections;
  lim.max_per_addr = cfg->max_connections_per_addr;
  lim.header_timeout_ms = cfg->header_timeout_ms;
  srv->conns = conns_start(&lim);
  srv->workers = workers_start(cfg->worker_threads, cfg->max_inflight + 8);
  if (srv->conns == NULL || srv->workers == NULL) {
    conns_stop(srv->conns);
    workers_stop(srv->workers);
    free(srv);
    return ac_error_set(err, AC_ESYSTEM, "cannot start the HTTP server's "
                        "threads");
  }
  rc = listen_on(opt->listen, &fd, srv->endpoint, sizeof srv->endpoint, err);
  if (rc != AC_OK) {
    conns_stop(srv->conns);
    workers_stop(srv->workers);
    free(srv);
    return rc;
  }
  /* One event loop (epoll) serves every connection; over-cap connections
  ** still get in (up to a margin) so that they can be refused clearly. */
  srv->daemon = MHD_start_daemon(
    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
    MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
    0, NULL, NULL, on_request, srv,
    MHD_OPTION_LISTEN_SOCKET, fd,
    MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
    MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
    MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout_s,
    MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections + REFUSAL_MARGIN,
    /* a larger read buffer per connection: uploads then arrive in big
    ** chunks instead of 16 KiB ones (memory stays bounded per request) */
    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(1 << 20),
    MHD_OPTION_END);
  if (srv->daemon == NULL) {
    close(fd);
    conns_stop(srv->conns);
    workers_stop(srv->workers);
    free(srv);
    return ac_error_set(err, AC_ESYSTEM, "cannot start the HTTP server");
  }
  snprintf(url, urlsz, "http://%s", srv->endpoint);
  *out = srv;
  return AC_OK;
}

void ac_server_report_budgets(const struct ac_config *cfg, FILE *out) {
  fprintf(out, "HTTP budgets (configuration keys):\n");
  fprintf(out, "  %-28s %u (503 beyond)\n", "maxConnections",
          cfg->max_connections);
  if (cfg->max_connections_per_addr)
    fprintf(out, "  %-28s %u (429 beyond)\n", "maxConnectionsPerAddress",
            cfg->max_connections_per_addr);
  else
    fprintf(out, "  %-28s off\n", "maxConnectionsPerAddress");
  fprintf(out, "  %-28s %.3gs\n", "headerTimeout",
          cfg->header_timeout_ms / 1000.0);
  fprintf(out, "  %-28s %us\n", "idleTimeout", cfg->idle_timeout_s);
  fprintf(out, "  %-28s %u (429 beyond)\n", "maxInflight",
          cfg->max_inflight);
  fprintf(out, "  %-28s %llu bytes\n", "maxJsonBytes",
          cfg->max_json_bytes);
  fprintf(out, "  %-28s %llu bytes\n", "maxUploadBytes",
          cfg->max_upload_bytes);
  fprintf(out, "  %-28s %u kept, more while all are busy\n",
          "workerThreads", cfg->worker_threads);
}

void ac_server_quiesce(struct ac_server *srv) {
  if (srv && srv->daemon) {
    MHD_socket fd = MHD_quiesce_daemon(srv->daemon);
    if (fd != MHD_INVALID_SOCKET)
      close(fd);
  }
}

void ac_server_stop(struct ac_server *srv) {
  if (srv == NULL)
    return;
  /* Jobs end first (the store has killed their commands): each resumes
  ** its connection, and the daemon must not stop with one suspended. */
  workers_stop(srv->workers);
  /* Commands killed by the store end through the sandbox's event thread,
  ** which resumes their connections: wait for that (libmicrohttpd aborts
  ** when stopped with a connection suspended). */
  for (int i = 0; i < 2000 && atomic_load(&srv->suspended) > 0; i++)
    usleep(5000);
  if (srv->daemon && atomic_load(&srv->suspended) > 0) {
    /* The process is about to exit: leave the daemon (and what its
    ** connections point to) to the exit rather than abort. */
    fprintf(stderr, "agentcube serve: %d connection(s) still waiting; "
            "exiting without closing them\n", atomic_load(&srv->suspended));
    return;
  }
  if (srv->daemon)
    MHD_stop_daemon(srv->daemon);
  conns_stop(srv->conns);
  free(srv);
}

/* }====================================================== */
