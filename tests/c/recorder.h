/*
** recorder.h -- a recording HTTP server for the client tests, built on
** libmicrohttpd inside the test process.
**
** It records every request (method, raw path+query, headers as received,
** the first REC_BODY_KEEP bytes of the body plus its total size and hash,
** and the parts of a multipart form) and answers from a script of replies,
** in order, then with a fallback reply. A reply can be delayed, can close
** the connection without answering, can be cut off in the middle of its
** body, or can stream a large generated body in constant memory.
**
**   struct recorder r;
**   rec_start(&r);                       r.base is "http://127.0.0.1:PORT"
**   rec_push(&r, 200, "{\"sessionId\":\"s1\"}");
**   ... client calls ...
**   const struct rec_req *q = rec_get(&r, 0);
**   rec_stop(&r);
*/
#ifndef AGENTCUBE_TESTS_RECORDER_H
#define AGENTCUBE_TESTS_RECORDER_H

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REC_MAX_REQ 256
#define REC_MAX_SCRIPT 64
#define REC_MAX_PARTS 8
#define REC_BODY_KEEP (1024 * 1024)

enum rec_mode {
  REC_NORMAL,        /* answer status + body */
  REC_DROP,          /* close the connection without any answer */
  REC_CUT,           /* announce more bytes than sent, then close */
  REC_STREAM         /* a generated body of stream_size bytes */
};

struct rec_reply {
  int status;
  char *body;                         /* owned copy */
  size_t body_len;
  char *content_type;                 /* owned; NULL: application/json */
  char *hname, *hvalue;               /* one extra header, owned */
  int delay_ms;
  enum rec_mode mode;
  uint64_t stream_size;
  uint64_t seed;
};

struct rec_part {
  char name[64];
  char filename[256];
  char content_type[128];
  uint64_t size;
  uint64_t hash;
  char head[256];                     /* first bytes of the value */
  size_t head_len;
};

struct rec_req {
  unsigned short peer_port;           /* the client's TCP port */
  char method[16];
  char uri[4096];                     /* raw path and query */
  char headers[16384];                /* "Name: value\n", as received */
  char *body;                         /* first REC_BODY_KEEP bytes, + NUL */
  size_t body_len;
  uint64_t body_total;
  uint64_t body_hash;
  struct rec_part parts[REC_MAX_PARTS];
  int nparts;
};

struct recorder {
  struct MHD_Daemon *d;
  unsigned short port;
  char base[64];
  pthread_mutex_t mu;
  struct rec_req *reqs;
  int nreq;
  struct rec_reply script[REC_MAX_SCRIPT];
  int nscript, next;
  struct rec_reply fallback;
  volatile int stopping;
};

/* Per-request state, created by the URI log callback. */
struct rec_conn {
  struct recorder *r;
  struct rec_req q;
  int started;
  struct MHD_PostProcessor *pp;
};

struct rec_stream {
  uint64_t seed;
  char *prefix;                       /* REC_CUT: the bytes sent (copy) */
  size_t prefix_len;
};

/* FNV-1a, 64 bit, continued from h (start with REC_FNV_INIT). */
#define REC_FNV_INIT 14695981039346656037ULL
__attribute__((unused))
static uint64_t rec_fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 1099511628211ULL;
  }
  return h;
}

/* The generated stream: byte i of the stream with a given seed. Filling
** whole 8-byte words keeps it fast. */
static uint64_t rec_mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

__attribute__((unused))
static void rec_fill(uint64_t seed, uint64_t pos, char *buf, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint64_t off = pos + i;
    uint64_t w = rec_mix(seed ^ (off >> 3));
    buf[i] = (char)(w >> ((off & 7) * 8));
  }
}

static char *rec_dup(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d != NULL) {
    memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

static void *rec_uri_cb(void *cls, const char *uri,
                        struct MHD_Connection *con) {
  struct rec_conn *c = calloc(1, sizeof *c);
  (void)con;
  if (c == NULL)
    return NULL;
  c->r = cls;
  snprintf(c->q.uri, sizeof c->q.uri, "%s", uri);
  c->q.body_hash = REC_FNV_INIT;
  return c;
}

static size_t rec_unescape_cb(void *cls, struct MHD_Connection *c, char *s) {
  (void)cls;
  (void)c;
  return strlen(s);                   /* keep everything raw */
}

static enum MHD_Result rec_header_cb(void *cls, enum MHD_ValueKind kind,
                                     const char *key, const char *value) {
  struct rec_req *q = cls;
  size_t len = strlen(q->headers);
  (void)kind;
  snprintf(q->headers + len, sizeof q->headers - len, "%s: %s\n", key,
           value ? value : "");
  return MHD_YES;
}

static enum MHD_Result rec_post_cb(void *cls, enum MHD_ValueKind kind,
                                   const char *key, const char *filename,
                                   const char *content_type,
                                   const char *transfer_encoding,
                                   const char *data, uint64_t off,
                                   size_t size) {
  struct rec_req *q = cls;
  struct rec_part *p;
  (void)kind;
  (void)transfer_encoding;
  if (off == 0 || q->nparts == 0) {
    if (q->nparts == REC_MAX_PARTS)
      return MHD_YES;
    p = &q->parts[q->nparts++];
    snprintf(p->name, sizeof p->name, "%s", key ? key : "");
    snprintf(p->filename, sizeof p->filename, "%s", filename ? filename : "");
    snprintf(p->content_type, sizeof p->content_type, "%s",
             content_type ? content_type : "");
    p->hash = REC_FNV_INIT;
  }
  p = &q->parts[q->nparts - 1];
  p->size += size;
  p->hash = rec_fnv(p->hash, data, size);
  if (p->head_len < sizeof p->head - 1) {
    size_t n = sizeof p->head - 1 - p->head_len;
    n = n < size ? n : size;
    memcpy(p->head + p->head_len, data, n);
    p->head_len += n;
    p->head[p->head_len] = '\0';
  }
  return MHD_YES;
}

static ssize_t rec_stream_cb(void *cls, uint64_t pos, char *buf, size_t max) {
  struct rec_stream *s = cls;
  if (s->prefix != NULL) {            /* REC_CUT */
    size_t n;
    if (pos >= s->prefix_len)
      return MHD_CONTENT_READER_END_WITH_ERROR;
    n = s->prefix_len - (size_t)pos;
    n = n < max ? n : max;
    memcpy(buf, s->prefix + pos, n);
    return (ssize_t)n;
  }
  rec_fill(s->seed, pos, buf, max);
  return (ssize_t)max;
}

static void rec_stream_free(void *cls) {
  struct rec_stream *s = cls;
  free(s->prefix);
  free(s);
}

static void rec_nap(struct recorder *r, int ms) {
  while (ms > 0 && !r->stopping) {
    struct timespec ts = { 0, 10 * 1000000L };
    nanosleep(&ts, NULL);
    ms -= 10;
  }
}

static enum MHD_Result rec_answer(struct recorder *r,
                                  struct MHD_Connection *con,
                                  const struct rec_reply *reply);
static void rec_reply_free(struct rec_reply *rp);

static enum MHD_Result rec_handler(void *cls, struct MHD_Connection *con,
                                   const char *url, const char *method,
                                   const char *version,
                                   const char *upload_data,
                                   size_t *upload_data_size, void **con_cls) {
  struct recorder *r = cls;
  struct rec_conn *c = *con_cls;
  struct rec_reply rp;
  enum MHD_Result ret;
  (void)url;
  (void)version;
  if (c == NULL)
    return MHD_NO;
  if (!c->started) {
    const union MHD_ConnectionInfo *ci;
    const char *ct;
    c->started = 1;
    ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci != NULL && ci->client_addr != NULL &&
        ci->client_addr->sa_family == AF_INET)
      c->q.peer_port =
        ntohs(((const struct sockaddr_in *)ci->client_addr)->sin_port);
    snprintf(c->q.method, sizeof c->q.method, "%s", method);
    MHD_get_connection_values(con, MHD_HEADER_KIND, rec_header_cb, &c->q);
    ct = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Type");
    if (ct != NULL && strncasecmp(ct, "multipart/form-data", 19) == 0)
      c->pp = MHD_create_post_processor(con, 65536, rec_post_cb, &c->q);
    return MHD_YES;
  }
  if (*upload_data_size > 0) {
    size_t n = *upload_data_size;
    if (c->q.body == NULL)
      c->q.body = calloc(1, REC_BODY_KEEP + 1);
    if (c->q.body != NULL && c->q.body_len < REC_BODY_KEEP) {
      size_t k = REC_BODY_KEEP - c->q.body_len;
      k = k < n ? k : n;
      memcpy(c->q.body + c->q.body_len, upload_data, k);
      c->q.body_len += k;
    }
    c->q.body_total += n;
    c->q.body_hash = rec_fnv(c->q.body_hash, upload_data, n);
    if (c->pp != NULL)
      MHD_post_process(c->pp, upload_data, n);
    *upload_data_size = 0;
    return MHD_YES;
  }

  /* The request is complete: record it, pick the reply. */
  pthread_mutex_lock(&r->mu);
  if (r->nreq < REC_MAX_REQ) {
    r->reqs[r->nreq++] = c->q;
    c->q.body = NULL;                 /* moved */
  }
  /* A private copy: the script may be reset while this reply is delayed. */
  rp = r->next < r->nscript ? r->script[r->next++] : r->fallback;
  rp.body = rec_dup(rp.body ? rp.body : "", rp.body_len);
  rp.content_type = rp.content_type ? strdup(rp.content_type) : NULL;
  rp.hname = rp.hname ? strdup(rp.hname) : NULL;
  rp.hvalue = rp.hvalue ? strdup(rp.hvalue) : NULL;
  pthread_mutex_unlock(&r->mu);
  ret = rec_answer(r, con, &rp);
  rec_reply_free(&rp);
  return ret;
}

static enum MHD_Result rec_answer(struct recorder *r,
                                  struct MHD_Connection *con,
                                  const struct rec_reply *reply) {
  struct rec_reply rp = *reply;
  struct MHD_Response *resp;
  enum MHD_Result ret;

  if (rp.delay_ms > 0)
    rec_nap(r, rp.delay_ms);
  if (rp.mode == REC_DROP)
    return MHD_NO;
  if (rp.mode == REC_CUT || rp.mode == REC_STREAM) {
    struct rec_stream *s = calloc(1, sizeof *s);
    if (s == NULL)
      return MHD_NO;
    s->seed = rp.seed;
    if (rp.mode == REC_CUT) {
      s->prefix = rec_dup(rp.body, rp.body_len);
      s->prefix_len = rp.body_len;
      if (s->prefix == NULL) {
        free(s);
        return MHD_NO;
      }
    }
    resp = MHD_create_response_from_callback(
      rp.mode == REC_CUT ? rp.body_len + 1000 : rp.stream_size, 65536,
      rec_stream_cb, s, rec_stream_free);
  } else {
    resp = MHD_create_response_from_buffer(rp.body_len, rp.body,
                                           MHD_RESPMEM_MUST_COPY);
  }
  if (resp == NULL)
    return MHD_NO;
  MHD_add_response_header(resp, "Content-Type", rp.content_type
                          ? rp.content_type : "application/json");
  if (rp.hname != NULL)
    MHD_add_response_header(resp, rp.hname, rp.hvalue);
  ret = MHD_queue_response(con, (unsigned)rp.status, resp);
  MHD_destroy_response(resp);
  return ret;
}

static void rec_completed_cb(void *cls, struct MHD_Connection *con,
                             void **con_cls,
                             enum MHD_RequestTerminationCode toe) {
  struct rec_conn *c = *con_cls;
  (void)cls;
  (void)con;
  (void)toe;
  if (c == NULL)
    return;
  if (c->pp != NULL)
    MHD_destroy_post_processor(c->pp);
  free(c->q.body);
  free(c);
  *con_cls = NULL;
}

static void rec_reply_free(struct rec_reply *rp) {
  free(rp->body);
  free(rp->content_type);
  free(rp->hname);
  free(rp->hvalue);
  memset(rp, 0, sizeof *rp);
}

/* Appends a full reply to the script; strings are copied. */
__attribute__((unused))
static void rec_push_reply(struct recorder *r, const struct rec_reply *in) {
  struct rec_reply rp = *in;
  const char *b = in->body ? in->body : "";
  rp.body_len = in->body_len ? in->body_len : strlen(b);
  rp.body = rec_dup(b, rp.body_len);
  rp.content_type = in->content_type ? strdup(in->content_type) : NULL;
  rp.hname = in->hname ? strdup(in->hname) : NULL;
  rp.hvalue = in->hvalue ? strdup(in->hvalue) : NULL;
  pthread_mutex_lock(&r->mu);
  if (r->nscript < REC_MAX_SCRIPT)
    r->script[r->nscript++] = rp;
  else
    rec_reply_free(&rp);
  pthread_mutex_unlock(&r->mu);
}

__attribute__((unused))
static void rec_push(struct recorder *r, int status, const char *body) {
  struct rec_reply rp;
  memset(&rp, 0, sizeof rp);
  rp.status = status;
  rp.body = (char *)body;
  rec_push_reply(r, &rp);
}

__attribute__((unused))
static void rec_push_mode(struct recorder *r, int status, const char *body,
                          enum rec_mode mode, int delay_ms) {
  struct rec_reply rp;
  memset(&rp, 0, sizeof rp);
  rp.status = status;
  rp.body = (char *)body;
  rp.mode = mode;
  rp.delay_ms = delay_ms;
  rec_push_reply(r, &rp);
}

/* Forgets recorded requests and the script (the fallback stays). */
__attribute__((unused))
static void rec_reset(struct recorder *r) {
  pthread_mutex_lock(&r->mu);
  for (int i = 0; i < r->nreq; i++)
    free(r->reqs[i].body);
  r->nreq = 0;
  for (int i = 0; i < r->nscript; i++)
    rec_reply_free(&r->script[i]);
  r->nscript = r->next = 0;
  pthread_mutex_unlock(&r->mu);
}

__attribute__((unused))
static int rec_count(struct recorder *r) {
  int n;
  pthread_mutex_lock(&r->mu);
  n = r->nreq;
  pthread_mutex_unlock(&r->mu);
  return n;
}

/* The i-th recorded request; stable until rec_reset/rec_stop. Returns a
** zeroed request when there is none, so that tests fail, not crash. */
__attribute__((unused))
static const struct rec_req *rec_get(struct recorder *r, int i) {
  static struct rec_req none;
  const struct rec_req *q = &none;
  pthread_mutex_lock(&r->mu);
  if (i >= 0 && i < r->nreq)
    q = &r->reqs[i];
  pthread_mutex_unlock(&r->mu);
  return q;
}

/* Value of header name (case-insensitive) copied into buf, or NULL. */
__attribute__((unused))
static const char *rec_header(const struct rec_req *q, const char *name,
                              char *buf, size_t size) {
  size_t nl = strlen(name);
  const char *p = q->headers;
  while (p != NULL && *p != '\0') {
    const char *eol = strchr(p, '\n');
    size_t len = eol ? (size_t)(eol - p) : strlen(p);
    if (len > nl + 1 && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
      size_t vl = len - nl - 2;
      if (vl >= size)
        vl = size - 1;
      memcpy(buf, p + nl + 2, vl);
      buf[vl] = '\0';
      return buf;
    }
    p += len + (eol ? 1 : 0);
  }
  return NULL;
}

__attribute__((unused))
static const struct rec_part *rec_part(const struct rec_req *q,
                                       const char *name) {
  for (int i = 0; i < q->nparts; i++)
    if (strcmp(q->parts[i].name, name) == 0)
      return &q->parts[i];
  return NULL;
}

/* Starts the server on 127.0.0.1 and an ephemeral port. Returns 0. */
__attribute__((unused))
static int rec_start(struct recorder *r) {
  struct sockaddr_in sa;
  const union MHD_DaemonInfo *info;
  memset(r, 0, sizeof *r);
  pthread_mutex_init(&r->mu, NULL);
  r->reqs = calloc(REC_MAX_REQ, sizeof *r->reqs);
  r->fallback.status = 200;
  r->fallback.body = rec_dup("{}", 2);
  r->fallback.body_len = 2;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  r->d = MHD_start_daemon(
    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
    NULL, NULL, rec_handler, r,
    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
    MHD_OPTION_URI_LOG_CALLBACK, rec_uri_cb, r,
    MHD_OPTION_UNESCAPE_CALLBACK, rec_unescape_cb, NULL,
    MHD_OPTION_NOTIFY_COMPLETED, rec_completed_cb, r,
    MHD_OPTION_END);
  if (r->d == NULL || r->reqs == NULL)
    return -1;
  info = MHD_get_daemon_info(r->d, MHD_DAEMON_INFO_BIND_PORT);
  r->port = info ? info->port : 0;
  snprintf(r->base, sizeof r->base, "http://127.0.0.1:%u", r->port);
  return r->port ? 0 : -1;
}

__attribute__((unused))
static void rec_stop(struct recorder *r) {
  r->stopping = 1;
  if (r->d != NULL)
    MHD_stop_daemon(r->d);
  r->d = NULL;
  rec_reset(r);
  rec_reply_free(&r->fallback);
  free(r->reqs);
  r->reqs = NULL;
  pthread_mutex_destroy(&r->mu);
}

/* A local port with nothing listening (bound, then closed). */
__attribute__((unused))
static unsigned short rec_dead_port(void) {
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  unsigned short port = 0;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
      getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
    port = ntohs(sa.sin_port);
  if (fd >= 0)
    close(fd);
  return port;
}

#endif
