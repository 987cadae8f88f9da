/*
** http_server.c -- libmicrohttpd front end: routing, authentication,
** request bodies, replies and the access log.
*/
#include "http_server.h"
#include "budget.h"
#include "reply.h"
#include "routes.h"
#include "token.h"

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
  return OP_NONE;
}

/* Finds the session named by the header, or creates one when there is
** none (the Router's auto-create). Returns 1 when r->sess is set. */
static int resolve_session(struct req *r, enum MHD_Result *ret) {
  struct ac_server *srv = r->srv;
  const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                              SESSION_HEADER);
  const struct ac_template *tpl;
  struct ac_error err;

  if (h && *h) {
    r->sess = ac_store_get(srv->store, h, 1);
    /* A session answers only under the namespace and name it was created
    ** for: another URL is as unknown as a wrong id, so it reveals
    ** nothing. */
    if (r->sess && (strcmp(r->sess->namespace_, r->ns) != 0 ||
                    strcmp(r->sess->name, r->name) != 0)) {
      ac_store_release(srv->store, r->sess);
      r->sess = NULL;
    }
    if (r->sess == NULL) {
      *ret = reply_error(r, FAM_ROUTER, 404,
                         "sessions.agentcube.volcano.sh \"%s\" not found", h);
      return 0;
    }
    snprintf(r->sid, sizeof r->sid, "%s", r->sess->id);
    return 1;
  }
  tpl = ac_config_find(srv->cfg, r->ns, r->name);
  if (tpl == NULL) {
    *ret = reply_error(r, FAM_ROUTER, 404,
                       "codeinterpreters.agentcube.volcano.sh \"%s/%s\" "
                       "not found", r->ns, r->name);
    return 0;
  }
  if (ac_store_create(srv->store, tpl, r->ns, r->name, 0, &r->sess, &err)) {
    fprintf(stderr, "agentcube: auto-create: %s\n", err.msg);
    *ret = err.code == AC_ELIMIT || err.code == AC_ETOOBIG
      ? reply_error(r, FAM_ROUTER, err.code == AC_ELIMIT ? 503 : 507, "%s",
                    err.msg)
      : reply_error(r, FAM_ROUTER, 500, "internal server error");
    return 0;
  }
  snprintf(r->sid, sizeof r->sid, "%s", r->sess->id);
  return 1;
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
  enum MHD_Result ret = MHD_YES;
  const char *cl;

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
           : r->op == OP_EXECUTE          ? srv->cfg->max_execute_bytes
                                          : srv->cfg->max_control_bytes;
  if (cl && strtoull(cl, NULL, 10) > r->limit)
    return reply_too_big(r);
  if (!resolve_session(r, &ret))
    return ret;
  if (r->op == OP_NONE)
    return reply_text(r, 404, "404 page not found");
  if (r->op == OP_UPLOAD_MULTIPART)
    return upload_multipart_begin(r);
  return MHD_YES;
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

static enum MHD_Result finish(struct req *r) {
  if (r->no_memory)
    return reply_busy_memory(r);
  if (r->route != R_INVOKE)
    return route_control(r);
  if (r->too_big)
    return reply_too_big(r);
  /* The Router touches the session before and after every request. */
  ac_store_touch(r->srv->store, r->sess);
  switch (r->op) {
  case OP_EXECUTE: return route_execute(r);
  case OP_UPLOAD_JSON: return route_upload_json(r);
  case OP_UPLOAD_MULTIPART: return route_upload_multipart_done(r);
  case OP_DOWNLOAD: return route_download(r);
  case OP_LIST: return route_list(r);
  case OP_NONE: break;
  }
  return reply_text(r, 404, "404 page not found");
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
    if ((r = calloc(1, sizeof *r)) == NULL)
      return MHD_NO;
    *con_cls = r;
    r->srv = srv;
    r->conn = conn;
    clock_gettime(CLOCK_MONOTONIC, &r->t0);
    r->limit = srv->cfg->max_control_bytes;
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->url, sizeof r->url, "%s", url);
    route_request(r, method, url);
    if (r->route == R_NOT_FOUND)
      return reply_text(r, 404, "404 page not found");
    if (r->route >= R_CREATE && !authorized(r, &ret))
      return ret;
    if (r->route == R_INVOKE)
      return invoke_begin(r, method, url);
    return MHD_YES;
  }
  if (r->responded) {
    *upload_data_size = 0;  /* an early answer: drop the rest of the body */
    return MHD_YES;
  }
  if (*upload_data_size > 0) {
    if (r->pp) {
      if (MHD_post_process(r->pp, upload_data, *upload_data_size) != MHD_YES
          && r->up_rc == AC_OK)
        ac_error_set(&r->up_err, r->up_rc = AC_EINVAL,
                     "malformed multipart body");
      r->up_bytes += *upload_data_size;
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
  budget_pool_give(r->reserved);
  free(r->up_path);
  free(r->up_mode);
  free(r->body);
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
  snprintf(port, sizeof port, "%s", colon + 1);
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
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
  rc = listen_on(opt->listen, &fd, srv->endpoint, sizeof srv->endpoint, err);
  if (rc != AC_OK) {
    free(srv);
    return rc;
  }
  srv->daemon = MHD_start_daemon(
    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
    MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG,
    0, NULL, NULL, on_request, srv,
    MHD_OPTION_LISTEN_SOCKET, fd,
    MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
    MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096,
    /* a larger read buffer per connection: uploads then arrive in big
    ** chunks instead of 16 KiB ones (memory stays bounded per request) */
    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(1 << 20),
    MHD_OPTION_END);
  if (srv->daemon == NULL) {
    close(fd);
    free(srv);
    return ac_error_set(err, AC_ESYSTEM, "cannot start the HTTP server");
  }
  snprintf(url, urlsz, "http://%s", srv->endpoint);
  *out = srv;
  return AC_OK;
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
  if (srv->daemon)
    MHD_stop_daemon(srv->daemon);
  free(srv);
}

/* }====================================================== */
