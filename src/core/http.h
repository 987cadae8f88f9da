/*
** http.h -- the HTTP transport of libagentcube: a pool of libcurl easy
** handles (connection reuse), bounded response bodies, timeouts, the retry
** policy and verbose logging. Internal to the library.
*/
#ifndef AGENTCUBE_CORE_HTTP_H
#define AGENTCUBE_CORE_HTTP_H

#include "buf.h"
#include "agentcube.h"

#include <curl/curl.h>
#include <signal.h>

struct ac_http_policy {
  int verbose;
  ac_log_fn log;                      /* NULL: stderr */
  void *log_ud;
  int max_retries;                    /* <= 0: never retry */
  long retry_base_ms;
  long retry_max_ms;
};

struct ac_http;

/* *out is owned by the caller: release with ac_http_free. */
AC_INTERNAL enum ac_code ac_http_new(const struct ac_http_policy *pol,
                                     struct ac_http **out,
                                     struct ac_error *err);
AC_INTERNAL void ac_http_free(struct ac_http *h);

/* Receives 2xx response bodies of a streaming request, in order. Runs
** inside a libcurl write callback: it must only do plain I/O. */
typedef enum ac_code (*ac_http_sink_fn)(void *ud, const char *data,
                                        size_t len, struct ac_error *err);

/* Called with the easy handle before each attempt, after the common options
** are set, to add request-specific ones (CURLOPT_MIMEPOST). */
typedef enum ac_code (*ac_http_prepare_fn)(void *ud, CURL *easy,
                                           struct ac_error *err);

/* One request. Every pointer is borrowed for the duration of ac_http_do. */
struct ac_http_req {
  const char *op;                     /* "create session": message prefix */
  const char *method;                 /* "GET", "POST" or "DELETE" */
  const char *url;
  struct curl_slist *headers;
  const char *body;                   /* POSTFIELDS, or NULL */
  size_t body_len;
  int empty_body;                     /* send Content-Length: 0 */
  ac_http_prepare_fn prepare;
  void *prepare_ud;
  long connect_timeout_ms;
  long timeout_ms;                    /* whole transfer; 0: none */
  long idle_timeout_ms;               /* no byte moved this long; 0: none */
  size_t max_body;                    /* in-memory body cap; 0: none */
  ac_http_sink_fn sink;               /* 2xx bodies go here, if set */
  void *sink_ud;
  int no_retry;                       /* one attempt, whatever the policy */
};

struct ac_http_resp {
  long status;                        /* last HTTP status, 0 if none */
  struct ac_buf body;                 /* the body (non-2xx only with sink) */
};

/* Per-attempt state shared with libcurl's callbacks (write, header,
** progress). The engine keeps one per running job. */
enum ac_http_abort { ABORT_NONE, ABORT_IDLE };

typedef void (*ac_http_progress_fn)(void *ud, curl_off_t dlnow,
                                    curl_off_t dltotal, curl_off_t ulnow,
                                    curl_off_t ultotal);

struct ac_http_xfer {
  const struct ac_http_req *req;
  struct ac_http_resp *resp;
  CURL *easy;
  int sinking;                        /* -1: not decided for this response */
  int error_body;                     /* non-2xx: keep only the first bytes */
  enum ac_code cb_rc;                 /* why a write callback failed */
  struct ac_error cb_err;
  enum ac_http_abort abort;
  curl_off_t last_dl, last_ul;
  long long last_move_ms;
  ac_http_progress_fn progress;       /* plain bookkeeping only */
  void *progress_ud;
};

AC_INTERNAL void ac_http_resp_init(struct ac_http_resp *r);
AC_INTERNAL void ac_http_resp_free(struct ac_http_resp *r);

/* Performs req on the calling thread, outside any engine (the OAuth token
** POST), retrying as the policy allows; req->prepare is the engine's only
** (not called here), and nothing interrupts the call but its timeouts.
** Returns AC_OK for a 2xx
** answer; AC_EHTTP (err->http_status set, the server's message in err->msg)
** for any other status; a transport error code otherwise. resp->status and
** resp->body are filled in every case where an answer arrived. */
AC_INTERNAL enum ac_code ac_http_do(struct ac_http *h,
                                    const struct ac_http_req *req,
                                    struct ac_http_resp *resp,
                                    struct ac_error *err);

/* The pieces of ac_http_do, shared with the job engine (engine.c). */
AC_INTERNAL CURLcode ac_http_set_options(CURL *easy, struct ac_http_xfer *x,
                                         char *errbuf);
AC_INTERNAL enum ac_code ac_http_map_curl(const struct ac_http_req *req,
                                          CURLcode cc,
                                          struct ac_http_xfer *x,
                                          const char *errbuf,
                                          struct ac_error *err);
AC_INTERNAL int ac_http_may_retry(const struct ac_http_req *req, CURLcode cc,
                                  long status, long request_size);
AC_INTERNAL long ac_http_backoff_ms(struct ac_http *h, int attempt);
AC_INTERNAL void ac_http_log(const struct ac_http *h, const char *fmt, ...)
  __attribute__((format(printf, 2, 3)));
/* AC_EHTTP for a non-2xx answer, with the server's message. */
AC_INTERNAL enum ac_code ac_http_status_error(const struct ac_http_req *req,
                                              const struct ac_http_resp *resp,
                                              struct ac_error *err);
/* The policy's retry limit. */
AC_INTERNAL int ac_http_max_retries(const struct ac_http *h);

/* The human part of an error body: WM {"message"}, Router/PicoD {"error"}
** (+ "detail"), else the first line of the text. Writes "" for an empty
** body. */
AC_INTERNAL void ac_http_server_message(const char *body, size_t len,
                                        char *out, size_t size);

/* Appends "Name: value" to *list (which may start NULL). AC_ENOMEM on
** failure, *list left as it was. */
AC_INTERNAL enum ac_code ac_http_add_header(struct curl_slist **list,
                                            const char *name,
                                            const char *value,
                                            struct ac_error *err);

/* Milliseconds on CLOCK_MONOTONIC. */
AC_INTERNAL long long ac_mono_ms(void);

#endif
