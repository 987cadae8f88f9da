/*
** http.c -- libcurl transport: handle pool, one request with retries.
**
** Connection reuse. A client keeps up to AC_HTTP_POOL idle easy handles.
** A request takes one (or makes one), and gives it back afterwards after
** curl_easy_reset, which keeps the handle's live connections and DNS cache
** but drops every pointer into the finished request (curl_easy_cleanup may
** call callbacks, so no stale callback data may stay behind). Concurrent
** requests from several threads therefore each use their own handle.
**
** Retry policy (DESIGN section 4: only where a retry cannot repeat work the
** server may already have done):
**   - connection refused (CURLE_COULDNT_CONNECT): nothing was sent; any
**     method is retried;
**   - a send or receive error (reset) while CURLINFO_REQUEST_SIZE is still 0,
**     i.e. before the request left this machine: any method is retried;
**   - HTTP 502, 503 or 504 answers to GET and DELETE (idempotent: a repeated
**     session DELETE answers 404, which callers count as success);
**   - nothing else: never a POST after it was sent, never a timeout, never a
**     response that was cut off.
** Up to max_retries extra attempts, waiting retry_base_ms * 2^n (capped at
** retry_max_ms, plus up to 25% jitter) between them (in the engine a timer,
** which an interrupt ends with the job).
**
** Callbacks (write, header, progress) only touch this file's per-attempt
** state, the bounded response buffer, and the request's sink; they report
** failure through their return values.
*/
#include "http.h"

#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define AC_HTTP_POOL 8
#define AC_HTTP_ERROR_BODY 65536      /* bytes kept of a non-2xx body */
#define AC_HTTP_STREAM_BUFFER (512L * 1024)
#define AC_USER_AGENT "agentcube/" AC_VERSION

#ifndef CURL_WRITEFUNC_ERROR
#define CURL_WRITEFUNC_ERROR 0
#endif

struct ac_http {
  struct ac_http_policy pol;
  pthread_mutex_t mu;
  CURL *idle[AC_HTTP_POOL];
  size_t nidle;
  unsigned seed;                      /* jitter; guarded by mu */
};

long long ac_mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ac_http_resp_init(struct ac_http_resp *r) {
  r->status = 0;
  ac_buf_init(&r->body, 0);
}

void ac_http_resp_free(struct ac_http_resp *r) {
  if (r == NULL)
    return;
  ac_buf_free(&r->body);
  r->status = 0;
}

enum ac_code ac_http_add_header(struct curl_slist **list, const char *name,
                                const char *value, struct ac_error *err) {
  size_t nl = strlen(name), vl = strlen(value);
  char *line = malloc(nl + vl + 3);
  struct curl_slist *n;
  if (line == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  /* "Name: value", or "Name:" which tells curl to drop that header. */
  memcpy(line, name, nl);
  line[nl] = ':';
  if (vl > 0) {
    line[nl + 1] = ' ';
    memcpy(line + nl + 2, value, vl + 1);
  } else {
    line[nl + 1] = '\0';
  }
  n = curl_slist_append(*list, line);
  free(line);
  if (n == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  *list = n;
  return AC_OK;
}

void ac_http_log(const struct ac_http *h, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  if (!h->pol.verbose)
    return;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (h->pol.log)
    h->pol.log(h->pol.log_ud, line);
  else
    fprintf(stderr, "agentcube: %s\n", line);
}

enum ac_code ac_http_new(const struct ac_http_policy *pol,
                         struct ac_http **out, struct ac_error *err) {
  struct ac_http *h;
  *out = NULL;
  h = calloc(1, sizeof *h);
  if (h == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  h->pol = *pol;
  if (pthread_mutex_init(&h->mu, NULL) != 0) {
    free(h);
    return ac_error_set(err, AC_ESYSTEM, "pthread_mutex_init failed");
  }
  h->seed = (unsigned)ac_mono_ms() ^ (unsigned)(size_t)h;
  *out = h;
  return AC_OK;
}

void ac_http_free(struct ac_http *h) {
  if (h == NULL)
    return;
  while (h->nidle > 0)
    curl_easy_cleanup(h->idle[--h->nidle]);
  pthread_mutex_destroy(&h->mu);
  free(h);
}

static CURL *pool_get(struct ac_http *h) {
  CURL *easy = NULL;
  pthread_mutex_lock(&h->mu);
  if (h->nidle > 0)
    easy = h->idle[--h->nidle];
  pthread_mutex_unlock(&h->mu);
  if (easy == NULL)
    easy = curl_easy_init();
  return easy;
}

static void pool_put(struct ac_http *h, CURL *easy) {
  if (easy == NULL)
    return;
  curl_easy_reset(easy);              /* forget callbacks and their data */
  pthread_mutex_lock(&h->mu);
  if (h->nidle < AC_HTTP_POOL) {
    h->idle[h->nidle++] = easy;
    easy = NULL;
  }
  pthread_mutex_unlock(&h->mu);
  if (easy != NULL)
    curl_easy_cleanup(easy);
}

/* A new response starts with its status line: decide again where its body
** goes, and forget the body of an earlier (interim or redirect) response. */
static size_t header_cb(char *data, size_t size, size_t nmemb, void *ud) {
  struct ac_http_xfer *x = ud;
  size_t n = size * nmemb;
  if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
    x->sinking = -1;
    ac_buf_reset(&x->resp->body);
  }
  return n;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud) {
  struct ac_http_xfer *x = ud;
  size_t n = size * nmemb;
  enum ac_code rc;
  if (x->sinking < 0) {
    long code = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    x->error_body = code < 200 || code > 299;
    x->sinking = x->req->sink != NULL && !x->error_body;
  }
  if (x->error_body) {
    /* Only a message is wanted from an error body: keep its start. */
    size_t keep = AC_HTTP_ERROR_BODY;
    size_t room;
    if (x->resp->body.max != 0 && x->resp->body.max < keep)
      keep = x->resp->body.max;
    room = x->resp->body.len < keep ? keep - x->resp->body.len : 0;
    if (room > 0 && ac_buf_add(&x->resp->body, data, n < room ? n : room)
        != AC_OK) {
      x->cb_rc = AC_ENOMEM;
      return CURL_WRITEFUNC_ERROR;
    }
    return n;
  }
  if (x->sinking) {
    rc = x->req->sink(x->req->sink_ud, data, n, &x->cb_err);
    if (rc != AC_OK) {
      x->cb_rc = rc;
      return CURL_WRITEFUNC_ERROR;
    }
    return n;
  }
  rc = ac_buf_add(&x->resp->body, data, n);
  if (rc != AC_OK) {
    x->cb_rc = rc;
    return CURL_WRITEFUNC_ERROR;
  }
  return n;
}

static int xferinfo_cb(void *ud, curl_off_t dltotal, curl_off_t dlnow,
                       curl_off_t ultotal, curl_off_t ulnow) {
  struct ac_http_xfer *x = ud;
  long long now;
  if (x->progress != NULL)
    x->progress(x->progress_ud, dlnow, dltotal, ulnow, ultotal);
  if (x->req->idle_timeout_ms <= 0)
    return 0;
  now = ac_mono_ms();
  if (dlnow != x->last_dl || ulnow != x->last_ul) {
    x->last_dl = dlnow;
    x->last_ul = ulnow;
    x->last_move_ms = now;
  } else if (now - x->last_move_ms > x->req->idle_timeout_ms) {
    x->abort = ABORT_IDLE;
    return 1;
  }
  return 0;
}

#define SETOPT(opt, val) do {                                            \
    if (cc == CURLE_OK)                                                  \
      cc = curl_easy_setopt(easy, opt, val);                             \
  } while (0)

CURLcode ac_http_set_options(CURL *easy, struct ac_http_xfer *x,
                             char *errbuf) {
  const struct ac_http_req *req = x->req;
  CURLcode cc = CURLE_OK;
  SETOPT(CURLOPT_URL, req->url);
  SETOPT(CURLOPT_NOSIGNAL, 1L);
  SETOPT(CURLOPT_ERRORBUFFER, errbuf);
  SETOPT(CURLOPT_USERAGENT, AC_USER_AGENT);
#if LIBCURL_VERSION_NUM >= 0x075500
  SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
  SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  SETOPT(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
  SETOPT(CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  /* The API never redirects. Following one would send the command, its
  ** env, file contents or a client secret to wherever a Location header
  ** points, so a 3xx is an error answer like any other non-2xx. */
  SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
  SETOPT(CURLOPT_MAXREDIRS, 0L);
  SETOPT(CURLOPT_ACCEPT_ENCODING, "");          /* gzip etc., decoded */
  SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
  SETOPT(CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
  SETOPT(CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 0L);
  SETOPT(CURLOPT_HTTPHEADER, req->headers);
  SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
  SETOPT(CURLOPT_WRITEDATA, x);
  SETOPT(CURLOPT_HEADERFUNCTION, header_cb);
  SETOPT(CURLOPT_HEADERDATA, x);
  SETOPT(CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
  SETOPT(CURLOPT_XFERINFODATA, x);
  SETOPT(CURLOPT_NOPROGRESS, 0L);
  /* Streamed bodies (downloads) move in larger reads: fewer system calls
  ** per byte than libcurl's 16 KiB default (the curl tool uses 100 KiB). */
  if (req->sink != NULL)
    SETOPT(CURLOPT_BUFFERSIZE, AC_HTTP_STREAM_BUFFER);
  if (strcmp(req->method, "GET") == 0) {
    SETOPT(CURLOPT_HTTPGET, 1L);
  } else {
    if (strcmp(req->method, "POST") != 0)
      SETOPT(CURLOPT_CUSTOMREQUEST, req->method);
    if (req->body != NULL || req->empty_body) {
      SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
      SETOPT(CURLOPT_POSTFIELDS, req->body != NULL ? req->body : "");
    }
  }
  return cc;
}

#undef SETOPT

void ac_http_server_message(const char *body, size_t len, char *out,
                            size_t size) {
  json_t *j = NULL, *m;
  size_t i, o = 0;
  out[0] = '\0';
  if (size == 0 || body == NULL || len == 0)
    return;
  j = json_loadb(body, len, JSON_DISABLE_EOF_CHECK, NULL);
  if (json_is_object(j)) {
    m = json_object_get(j, "message");
    if (!json_is_string(m))
      m = json_object_get(j, "error");
    if (json_is_string(m)) {
      json_t *d = json_object_get(j, "detail");
      if (json_is_string(d) && json_string_length(d) > 0)
        snprintf(out, size, "%s (%s)", json_string_value(m),
                 json_string_value(d));
      else
        snprintf(out, size, "%s", json_string_value(m));
      json_decref(j);
      return;
    }
  }
  json_decref(j);
  /* Plain text: the first non-blank line, control characters dropped. */
  for (i = 0; i < len && (body[i] == ' ' || body[i] == '\n' ||
                          body[i] == '\r' || body[i] == '\t'); i++)
    ;
  for (; i < len && body[i] != '\n' && body[i] != '\r' && o + 1 < size; i++)
    if ((unsigned char)body[i] >= 0x20 && body[i] != 0x7f)
      out[o++] = body[i];
  while (o > 0 && out[o - 1] == ' ')
    o--;
  out[o] = '\0';
}

enum ac_code ac_http_map_curl(const struct ac_http_req *req, CURLcode cc,
                             struct ac_http_xfer *x, const char *errbuf,
                             struct ac_error *err) {
  const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(cc);
  enum ac_code rc;
  switch (cc) {
  case CURLE_COULDNT_CONNECT:
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
    rc = AC_ECONNECT;
    break;
  case CURLE_OPERATION_TIMEDOUT:
    rc = AC_ETIMEOUT;
    break;
  case CURLE_ABORTED_BY_CALLBACK:     /* the idle limit (xferinfo_cb) */
    return ac_error_set(err, AC_ETIMEOUT,
                        "%s: no data moved for %ld ms", req->op,
                        req->idle_timeout_ms);
  case CURLE_WRITE_ERROR:
    /* A sink says why it refused (an event too long, a download over its
    ** limit, a bad event), often naming the operation already. */
    if (x->cb_rc != AC_OK && x->cb_err.msg[0] != '\0') {
      size_t n = strlen(req->op);
      if (strncmp(x->cb_err.msg, req->op, n) == 0 &&
          strncmp(x->cb_err.msg + n, ": ", 2) == 0)
        return ac_error_set(err, x->cb_rc, "%s", x->cb_err.msg);
      return ac_error_set(err, x->cb_rc, "%s: %s", req->op, x->cb_err.msg);
    }
    if (x->cb_rc == AC_ETOOBIG)
      return ac_error_set(err, AC_ETOOBIG,
                          "%s: response larger than %zu bytes", req->op,
                          req->max_body);
    if (x->cb_rc == AC_ENOMEM)
      return ac_error_set(err, AC_ENOMEM, "%s: out of memory", req->op);
    rc = AC_EIO;
    break;
  case CURLE_OUT_OF_MEMORY:
    rc = AC_ENOMEM;
    break;
  case CURLE_URL_MALFORMAT:
  case CURLE_UNSUPPORTED_PROTOCOL:
    rc = AC_ECONFIG;
    break;
  case CURLE_TOO_MANY_REDIRECTS:
    rc = AC_EPROTO;
    break;
  default:
    rc = AC_EIO;
    break;
  }
  return ac_error_set(err, rc, "%s: %s", req->op, detail);
}

static int is_idempotent(const char *method) {
  return strcmp(method, "GET") == 0 || strcmp(method, "DELETE") == 0;
}

/* Whether a failed attempt may be repeated; see the policy at the top. */
int ac_http_may_retry(const struct ac_http_req *req, CURLcode cc, long status,
                     long request_size) {
  if (cc == CURLE_COULDNT_CONNECT)
    return 1;
  if ((cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR) &&
      request_size == 0)
    return 1;
  if (cc == CURLE_OK && is_idempotent(req->method) &&
      (status == 502 || status == 503 || status == 504))
    return 1;
  return 0;
}

long ac_http_backoff_ms(struct ac_http *h, int attempt) {
  long d = h->pol.retry_base_ms > 0 ? h->pol.retry_base_ms : 1;
  long cap = h->pol.retry_max_ms > 0 ? h->pol.retry_max_ms : d;
  unsigned r;
  for (int i = 0; i < attempt && d < cap; i++)
    d *= 2;
  if (d > cap)
    d = cap;
  pthread_mutex_lock(&h->mu);
  h->seed = h->seed * 1103515245u + 12345u;
  r = (h->seed >> 16) & 0x7fff;
  pthread_mutex_unlock(&h->mu);
  return d + (long)((long long)d * r / 0x7fff / 4);
}

static void nap(long ms) {
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

enum ac_code ac_http_status_error(const struct ac_http_req *req,
                                  const struct ac_http_resp *resp,
                                  struct ac_error *err) {
  enum ac_code rc;
  char msg[200];
  ac_http_server_message(resp->body.data, resp->body.len, msg, sizeof msg);
  if (msg[0])
    rc = ac_error_set(err, AC_EHTTP, "%s: HTTP %ld: %s", req->op,
                      resp->status, msg);
  else
    rc = ac_error_set(err, AC_EHTTP, "%s: HTTP %ld", req->op, resp->status);
  if (err != NULL)
    err->http_status = resp->status;
  return rc;
}

enum ac_code ac_http_do(struct ac_http *h, const struct ac_http_req *req,
                        struct ac_http_resp *resp, struct ac_error *err) {
  enum ac_code rc = AC_OK;
  CURL *easy = NULL;
  char errbuf[CURL_ERROR_SIZE];
  int attempt = 0;

  assert(req->prepare == NULL);       /* see http.h */
  resp->status = 0;
  resp->body.max = req->max_body;
  easy = pool_get(h);
  if (easy == NULL) {
    rc = ac_error_set(err, AC_ENOMEM, "%s: curl_easy_init failed", req->op);
    goto out;
  }
  for (;;) {
    struct ac_http_xfer x;
    CURLcode cc;
    long status = 0, reqsize = 0;
    long long t0;

    memset(&x, 0, sizeof x);
    x.req = req;
    x.resp = resp;
    x.easy = easy;
    x.sinking = -1;
    x.last_move_ms = ac_mono_ms();
    ac_error_clear(&x.cb_err);
    errbuf[0] = '\0';
    ac_buf_reset(&resp->body);
    resp->status = 0;

    curl_easy_reset(easy);
    cc = ac_http_set_options(easy, &x, errbuf);
    if (cc != CURLE_OK) {
      rc = ac_error_set(err, cc == CURLE_OUT_OF_MEMORY ? AC_ENOMEM : AC_EIO,
                        "%s: %s", req->op, curl_easy_strerror(cc));
      goto out;
    }

    ac_http_log(h, "> %s %s", req->method, req->url);
    t0 = ac_mono_ms();
    cc = curl_easy_perform(easy);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &reqsize);
    resp->status = status;

    if (cc == CURLE_OK)
      ac_http_log(h, "< %ld %s %s (%lld ms)", status, req->method, req->url,
            ac_mono_ms() - t0);
    else
      ac_http_log(h, "! %s %s: %s", req->method, req->url,
            errbuf[0] ? errbuf : curl_easy_strerror(cc));

    if (!req->no_retry && attempt < h->pol.max_retries &&
        x.abort == ABORT_NONE &&
        ac_http_may_retry(req, cc, status, reqsize)) {
      long wait = ac_http_backoff_ms(h, attempt);
      attempt++;
      ac_http_log(h, "retrying %s %s in %ld ms (attempt %d of %d)", req->method,
            req->url, wait, attempt + 1, h->pol.max_retries + 1);
      nap(wait);
      continue;
    }

    if (cc != CURLE_OK) {
      rc = ac_http_map_curl(req, cc, &x, errbuf, err);
      goto out;
    }
    if (status < 200 || status > 299) {
      rc = ac_http_status_error(req, resp, err);
      goto out;
    }
    rc = AC_OK;
    break;
  }
out:
  pool_put(h, easy);
  return rc;
}

int ac_http_max_retries(const struct ac_http *h) {
  return h->pol.max_retries;
}
