/*
** mcp_http.c -- the Streamable HTTP transport (libmicrohttpd): one
** endpoint, /mcp.
**
**   POST    one JSON-RPC message. initialize (without Mcp-Session-Id)
**           opens an MCP session and answers with its id in the
**           Mcp-Session-Id header; every later message carries it.
**           Notifications and responses: 202. Requests: the response as
**           application/json, or, for tools/call when the client accepts
**           it, a text/event-stream with the progress notifications and
**           then the response.
**   DELETE  ends the MCP session: its calls are cancelled and the sandbox
**           sessions it created are deleted (unless --keep).
**   GET     405: this server sends nothing unsolicited.
**
** An MCP session idle longer than --idle-timeout ends the same way, so a
** client that vanished without DELETE leaves nothing behind. Requests
** with a foreign Origin get 403 (DNS rebinding); bind to loopback unless
** you mean otherwise.
*/
#include "mcp.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <uuid/uuid.h>

#define BODY_MAX (64u << 20)

struct hsess {
  struct hsess *next;
  char id[37];
  struct mcp_conn *conn;
  int refs;                   /* the table's + requests using it */
  int gone;                   /* removed from the table */
  time_t used;
};

struct hserver {
  pthread_mutex_t mu;
  struct hsess *list;
  const struct mcp_options *o;
  struct mcp_backend *backend;
  struct mcp_hostdir *hostdir;
};

/* ---- the stream of one request: what the connection sends for it ---- */

struct msg {
  struct msg *next;
  char *text;
  size_t len, off;
};

struct hstream {
  struct mcp_sink sink;       /* first: the sink is the stream */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int refs, done;
  struct msg *head, *tail;
  char *final;                /* the response, kept for JSON replies */
};

static void st_send(struct mcp_sink *s, const char *text, int final) {
  struct hstream *st = (struct hstream *)s;
  struct msg *m = NULL;
  pthread_mutex_lock(&st->mu);
  if (text != NULL && (m = calloc(1, sizeof *m)) != NULL) {
    m->len = strlen(text);
    m->text = strdup(text);
    if (m->text == NULL) {
      free(m);
      m = NULL;
    }
  }
  if (m != NULL) {
    if (st->tail)
      st->tail->next = m;
    else
      st->head = m;
    st->tail = m;
    if (final && st->final == NULL)
      st->final = strdup(text);
  }
  if (final)
    st->done = 1;
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&st->mu);
}

static void st_ref(struct mcp_sink *s) {
  struct hstream *st = (struct hstream *)s;
  pthread_mutex_lock(&st->mu);
  st->refs++;
  pthread_mutex_unlock(&st->mu);
}

static void st_unref(struct mcp_sink *s) {
  struct hstream *st = (struct hstream *)s;
  int last;
  pthread_mutex_lock(&st->mu);
  last = --st->refs == 0;
  pthread_mutex_unlock(&st->mu);
  if (!last)
    return;
  while (st->head) {
    struct msg *m = st->head;
    st->head = m->next;
    free(m->text);
    free(m);
  }
  free(st->final);
  pthread_cond_destroy(&st->cv);
  pthread_mutex_destroy(&st->mu);
  free(st);
}

static struct hstream *st_new(void) {
  struct hstream *st = calloc(1, sizeof *st);
  if (st == NULL)
    return NULL;
  st->sink.send = st_send;
  st->sink.ref = st_ref;
  st->sink.unref = st_unref;
  st->refs = 1;
  pthread_mutex_init(&st->mu, NULL);
  pthread_cond_init(&st->cv, NULL);
  return st;
}

/* SSE: "event: message\ndata: <json>\n\n" per message, blocking until the
** next one (thread-per-connection mode allows it). */
static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
  struct hstream *st = cls;
  size_t n = 0;
  (void)pos;
  pthread_mutex_lock(&st->mu);
  while (st->head == NULL && !st->done)
    pthread_cond_wait(&st->cv, &st->mu);
  if (st->head == NULL) {
    pthread_mutex_unlock(&st->mu);
    return MHD_CONTENT_READER_END_OF_STREAM;
  }
  {
    struct msg *m = st->head;
    /* framing, once per message: the text holds no newline (compact) */
    if (m->off == 0 && max >= 20) {
      memcpy(buf, "event: message\ndata: ", 21);
      n = 21;
      m->off = 1;
    }
    if (m->off >= 1) {
      size_t left = m->len - (m->off - 1), take = max - n;
      if (take > left)
        take = left;
      memcpy(buf + n, m->text + (m->off - 1), take);
      n += take;
      m->off += take;
      if (m->off - 1 == m->len && max - n >= 2) {
        memcpy(buf + n, "\n\n", 2);
        n += 2;
        st->head = m->next;
        if (st->head == NULL)
          st->tail = NULL;
        free(m->text);
        free(m);
      }
    }
  }
  pthread_mutex_unlock(&st->mu);
  return (ssize_t)n;
}

static void sse_free(void *cls) {
  st_unref(cls);
}

/* ---- MCP sessions ---- */

static struct hsess *hs_find(struct hserver *h, const char *id) {
  struct hsess *s;
  pthread_mutex_lock(&h->mu);
  for (s = h->list; s != NULL; s = s->next)
    if (!strcmp(s->id, id)) {
      s->refs++;
      s->used = time(NULL);
      break;
    }
  pthread_mutex_unlock(&h->mu);
  return s;
}

static void hs_unref(struct hserver *h, struct hsess *s) {
  int last;
  pthread_mutex_lock(&h->mu);
  last = --s->refs == 0;
  s->used = time(NULL);
  pthread_mutex_unlock(&h->mu);
  if (last) {
    mcp_conn_close(s->conn);
    free(s);
  }
}

/* Takes s out of the table and drops the caller's reference, both under
** one lock: the table's reference and the caller's go together, so the
** last user (here or a request still running) closes it exactly once. */
static void hs_remove_unref(struct hserver *h, struct hsess *s) {
  int last;
  pthread_mutex_lock(&h->mu);
  if (!s->gone) {
    for (struct hsess **p = &h->list; *p != NULL; p = &(*p)->next)
      if (*p == s) {
        *p = s->next;
        break;
      }
    s->gone = 1;
    s->refs--;                  /* the table's */
  }
  assert(s->refs > 0);          /* the caller's is still held */
  last = --s->refs == 0;
  pthread_mutex_unlock(&h->mu);
  if (last) {
    mcp_conn_close(s->conn);
    free(s);
  }
}

static struct hsess *hs_new(struct hserver *h) {
  struct hsess *s = calloc(1, sizeof *s);
  uuid_t u;
  if (s == NULL)
    return NULL;
  s->conn = mcp_conn_new(h->backend, h->hostdir);
  if (s->conn == NULL) {
    free(s);
    return NULL;
  }
  uuid_generate_random(u);
  uuid_unparse_lower(u, s->id);
  s->refs = 2;                /* the table's and the caller's */
  s->used = time(NULL);
  pthread_mutex_lock(&h->mu);
  s->next = h->list;
  h->list = s;
  pthread_mutex_unlock(&h->mu);
  return s;
}

/* ---- requests ---- */

struct req {
  char *body;
  size_t len, cap;            /* cap: the bytes body can hold */
  int too_big;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
                             const char *type, const char *body,
                             const char *session) {
  struct MHD_Response *r = MHD_create_response_from_buffer(
    body ? strlen(body) : 0, (void *)(body ? body : ""),
    MHD_RESPMEM_MUST_COPY);
  enum MHD_Result ret;
  if (type)
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  if (session)
    MHD_add_response_header(r, "Mcp-Session-Id", session);
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
    MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "POST, DELETE");
  ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

/* A JSON-RPC error as an HTTP answer (for failures before dispatch). */
static enum MHD_Result reply_rpc_error(struct MHD_Connection *c,
                                       unsigned status, int code,
                                       const char *why) {
  json_t *e = mcp_rpc_error(NULL, code, why);
  char *t = json_dumps(e, JSON_COMPACT);
  enum MHD_Result ret = reply(c, status, "application/json", t, NULL);
  free(t);
  json_decref(e);
  return ret;
}

static const char *header(struct MHD_Connection *c, const char *name) {
  return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* Browsers send Origin; only pages served from this machine may talk to
** us (a foreign page could otherwise reach a loopback server through DNS
** rebinding). Clients that are not browsers send none. */
static int origin_ok(const char *origin) {
  static const char *const local[] = {
    "http://localhost", "http://127.0.0.1", "http://[::1]",
    "https://localhost", "https://127.0.0.1", "https://[::1]", NULL
  };
  if (origin == NULL)
    return 1;
  for (int i = 0; local[i] != NULL; i++) {
    size_t n = strlen(local[i]);
    if (!strncmp(origin, local[i], n) &&
        (origin[n] == '\0' || origin[n] == ':'))
      return 1;
  }
  return 0;
}

static int version_ok(const char *v) {
  if (v == NULL)
    return 1;                 /* then 2025-03-26 is assumed, which we speak */
  for (int i = 0; mcp_protocol_versions[i] != NULL; i++)
    if (!strcmp(v, mcp_protocol_versions[i]))
      return 1;
  return 0;
}

static enum MHD_Result post(struct hserver *h, struct MHD_Connection *c,
                            struct req *r) {
  json_t *msg = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
  json_t *method = json_object_get(msg, "method");
  int is_init = json_is_string(method) &&
                !strcmp(json_string_value(method), "initialize");
  int is_call = json_is_string(method) &&
                !strcmp(json_string_value(method), "tools/call");
  int is_request = json_is_string(method) &&
                   json_object_get(msg, "id") != NULL;
  const char *sid = header(c, "Mcp-Session-Id");
  const char *accept = header(c, MHD_HTTP_HEADER_ACCEPT);
  struct hsess *s;
  struct hstream *st;
  enum MHD_Result ret;
  int parsed = msg != NULL;

  json_decref(msg);
  if (!version_ok(header(c, "MCP-Protocol-Version")))
    return reply_rpc_error(c, MHD_HTTP_BAD_REQUEST, MCP_INVALID_REQUEST,
                           "Bad Request: unsupported MCP-Protocol-Version");
  if (sid == NULL && is_init && is_request) {
    s = hs_new(h);
    if (s == NULL)
      return reply_rpc_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             MCP_INTERNAL_ERROR, "out of memory");
  } else if (sid == NULL) {
    /* a parse error, a bad message or a request without a session */
    if (!parsed)
      return reply_rpc_error(c, MHD_HTTP_BAD_REQUEST, MCP_PARSE_ERROR,
                             "Parse error: the body is not JSON");
    return reply_rpc_error(c, MHD_HTTP_BAD_REQUEST, MCP_INVALID_REQUEST,
                           "Bad Request: Mcp-Session-Id header is required "
                           "(send initialize first)");
  } else if ((s = hs_find(h, sid)) == NULL) {
    return reply_rpc_error(c, MHD_HTTP_NOT_FOUND, MCP_INVALID_REQUEST,
                           "Session not found");
  }
  st = st_new();
  if (st == NULL) {
    hs_unref(h, s);
    return reply_rpc_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           MCP_INTERNAL_ERROR, "out of memory");
  }
  if (!mcp_conn_handle(s->conn, r->body ? r->body : "", r->len,
                       &st->sink)) {
    hs_unref(h, s);
    st_unref(&st->sink);
    return reply(c, MHD_HTTP_ACCEPTED, NULL, NULL, NULL);
  }
  if (is_call && accept != NULL && strstr(accept, "text/event-stream")) {
    struct MHD_Response *resp = MHD_create_response_from_callback(
      MHD_SIZE_UNKNOWN, 64 * 1024, sse_read, st, sse_free);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                            "no-cache");
    ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    hs_unref(h, s);
    return ret;
  }
  /* JSON: wait for the response, drop progress on the way */
  pthread_mutex_lock(&st->mu);
  while (!st->done)
    pthread_cond_wait(&st->cv, &st->mu);
  pthread_mutex_unlock(&st->mu);
  if (st->final == NULL)
    ret = reply(c, MHD_HTTP_ACCEPTED, NULL, NULL, NULL);
  else
    ret = reply(c, MHD_HTTP_OK, "application/json", st->final,
                is_init ? s->id : NULL);
  /* initialize that failed: no session to keep */
  if (is_init && sid == NULL && mcp_conn_version(s->conn) == NULL)
    hs_remove_unref(h, s);
  else
    hs_unref(h, s);
  st_unref(&st->sink);
  return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version,
                                  const char *upload, size_t *upload_size,
                                  void **con_cls) {
  struct hserver *h = cls;
  struct req *r = *con_cls;
  (void)version;

  if (r == NULL) {
    if ((r = calloc(1, sizeof *r)) == NULL)
      return MHD_NO;
    *con_cls = r;
    return MHD_YES;
  }
  if (*upload_size > 0) {
    if (!r->too_big && r->len + *upload_size <= BODY_MAX) {
      size_t need = r->len + *upload_size + 1;
      if (need > r->cap) {
        /* doubling: a large body arrives in many small pieces, and
        ** growing by each piece would copy it over and over */
        size_t cap = r->cap ? r->cap : 4096;
        char *grown;
        while (cap < need)
          cap *= 2;
        grown = realloc(r->body, cap);
        if (grown == NULL) {
          r->too_big = 1;
        } else {
          r->body = grown;
          r->cap = cap;
        }
      }
      if (!r->too_big) {
        memcpy(r->body + r->len, upload, *upload_size);
        r->len += *upload_size;
        r->body[r->len] = '\0';
      }
    } else {
      r->too_big = 1;
    }
    *upload_size = 0;
    return MHD_YES;
  }
  if (strcmp(url, "/mcp") != 0)
    return reply(c, MHD_HTTP_NOT_FOUND, "text/plain", "not found: the MCP "
                 "endpoint is /mcp\n", NULL);
  if (!origin_ok(header(c, "Origin")))
    return reply_rpc_error(c, MHD_HTTP_FORBIDDEN, MCP_INVALID_REQUEST,
                           "Forbidden: foreign Origin");
  if (!strcmp(method, "POST")) {
    if (r->too_big)
      return reply_rpc_error(c, 413,
                             MCP_INVALID_REQUEST, "message too large");
    return post(h, c, r);
  }
  if (!strcmp(method, "DELETE")) {
    const char *sid = header(c, "Mcp-Session-Id");
    struct hsess *s = sid ? hs_find(h, sid) : NULL;
    if (s == NULL)
      return reply_rpc_error(c, sid ? MHD_HTTP_NOT_FOUND
                                    : MHD_HTTP_BAD_REQUEST,
                             MCP_INVALID_REQUEST, sid ? "Session not found"
                             : "Bad Request: Mcp-Session-Id header is "
                               "required");
    hs_remove_unref(h, s);    /* the last one closes it, here or later */
    return reply(c, MHD_HTTP_OK, NULL, NULL, NULL);
  }
  return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, NULL, NULL, NULL);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  struct req *r = *con_cls;
  (void)cls;
  (void)c;
  (void)toe;
  if (r != NULL) {
    free(r->body);
    free(r);
    *con_cls = NULL;
  }
}

/* ---- the server ---- */

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) {
  stop_signal = sig;
}

static int parse_listen(const char *s, struct sockaddr_in *sa) {
  const char *colon = strrchr(s, ':');
  char host[64];
  char *end;
  long port;
  if (colon == NULL || (size_t)(colon - s) >= sizeof host)
    return 0;
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = '\0';
  port = strtol(colon + 1, &end, 10);
  if (*end || port < 0 || port > 65535 || colon[1] == '\0')
    return 0;
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_port = htons((uint16_t)port);
  if (!strcmp(host, "localhost"))
    snprintf(host, sizeof host, "127.0.0.1");
  return inet_pton(AF_INET, host, &sa->sin_addr) == 1;
}

/* Ends MCP sessions idle longer than the timeout (none in use). */
static void reap(struct hserver *h, long idle) {
  for (;;) {
    struct hsess *s, *victim = NULL;
    time_t now = time(NULL);
    pthread_mutex_lock(&h->mu);
    for (s = h->list; s != NULL && victim == NULL; s = s->next)
      if (s->refs == 1 && now - s->used >= idle) {
        victim = s;
        victim->refs++;
      }
    pthread_mutex_unlock(&h->mu);
    if (victim == NULL)
      return;
    hs_remove_unref(h, victim);
  }
}

int mcp_http_run(const struct mcp_options *o, struct mcp_backend *b,
                 struct mcp_hostdir *hostdir) {
  struct hserver h;
  struct sockaddr_in sa;
  struct MHD_Daemon *d;
  const union MHD_DaemonInfo *info;
  struct sigaction sig;
  char addr[INET_ADDRSTRLEN];

  if (!parse_listen(o->listen, &sa)) {
    fprintf(stderr, "agentcube mcp: --listen needs IPV4:PORT, not '%s'\n",
            o->listen);
    return 2;
  }
  memset(&h, 0, sizeof h);
  pthread_mutex_init(&h.mu, NULL);
  h.o = o;
  h.backend = b;
  h.hostdir = hostdir;
  d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION |
                       MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
                       0, NULL, NULL, on_request, &h,
                       MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                       MHD_OPTION_NOTIFY_COMPLETED, on_completed, &h,
                       MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)0,
                       MHD_OPTION_END);
  if (d == NULL) {
    fprintf(stderr, "agentcube mcp: cannot listen on %s: %s\n", o->listen,
            strerror(errno));
    pthread_mutex_destroy(&h.mu);
    return 1;
  }
  info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  inet_ntop(AF_INET, &sa.sin_addr, addr, sizeof addr);
  /* the address, for whoever started us with port 0 */
  printf("http://%s:%u/mcp\n", addr, info ? info->port : 0);
  fflush(stdout);

  memset(&sig, 0, sizeof sig);
  sig.sa_handler = on_signal;
  sigemptyset(&sig.sa_mask);
  sigaction(SIGTERM, &sig, NULL);
  sigaction(SIGINT, &sig, NULL);
  sigaction(SIGHUP, &sig, NULL);
  signal(SIGPIPE, SIG_IGN);
  while (!stop_signal) {
    sleep(1);
    reap(&h, o->idle_timeout);
  }
  /* Stop taking connections, end every MCP session (their calls finish
  ** their streams), then stop. */
  MHD_quiesce_daemon(d);
  for (;;) {
    struct hsess *s;
    pthread_mutex_lock(&h.mu);
    s = h.list;
    if (s != NULL)
      s->refs++;
    pthread_mutex_unlock(&h.mu);
    if (s == NULL)
      break;
    hs_remove_unref(&h, s);
  }
  MHD_stop_daemon(d);
  pthread_mutex_destroy(&h.mu);
  return 0;
}
