/*
** job.h -- one operation in flight on an engine (engine.c): its current
** HTTP transfer, the step that runs when that transfer ends, its results
** and the callbacks waiting to be delivered. Private to libagentcube.
**
** An operation is a short chain of requests (run_code: write the script,
** execute it; create: POST, and DELETE when the client side cannot be set
** up). Its start function fills the job, sends the first request with
** ac_job_send and sets step; when a transfer ends, the engine calls step
** with the transfer's outcome. step either sends the next request (and
** returns AC_OK with j->sent set again) or returns the job's final code.
*/
#ifndef AGENTCUBE_CORE_JOB_H
#define AGENTCUBE_CORE_JOB_H

#include "internal.h"

typedef enum ac_code (*ac_job_step_fn)(ac_job *j, enum ac_code rc,
                                       struct ac_error *err);

/* A chunk of output waiting for delivery on the polling thread. */
struct ac_job_chunk {
  struct ac_job_chunk *next;
  enum ac_stream stream;
  size_t len;
  char data[];
};

struct ac_job {
  ac_engine *eng;                     /* NULL once the engine is gone */
  ac_job *prev, *next;                /* the engine's list of jobs */
  ac_client *c;                       /* holds a reference */
  ac_session *s;                      /* borrowed: outlives the job */
  const char *op;                     /* "execute": message prefix */
  struct ac_job_callbacks cb;

  /* The current transfer. */
  CURL *easy;
  struct ac_http_req req;             /* points into the owned fields */
  char *url;
  char *body;
  struct curl_slist *headers;
  struct ac_http_resp resp;
  struct ac_http_xfer x;
  char errbuf[CURL_ERROR_SIZE];
  int attempt;
  long long retry_at;                 /* > 0: re-send at this time */
  long long started_ms;
  int in_multi;
  int sent;                           /* step sent another request */

  ac_job_step_fn step;
  /* The last action of a job that succeeded (a download's rename), run
  ** when its completion is delivered: after its last output and progress
  ** events, so that a callback cancelling on the last event still cancels
  ** it (commit then sees AC_ECANCELED). Set by step; run once. */
  ac_job_step_fn commit;
  void (*cleanup)(ac_job *j);         /* frees st */
  void *st;                           /* the operation's own state */

  int done;
  int done_pending;                   /* on_done not delivered yet */
  enum ac_code rc;
  struct ac_error err;

  /* Deliveries. */
  struct ac_job_chunk *chunks, **chunks_tail;
  long long prog_done, prog_total;
  int prog_pending;

  /* Results. */
  struct ac_exec_result exec;
  ac_session *session;
  char *data;
  size_t data_len;
  struct ac_file_list files;
  char *json;
};

/* A new job of engine e on client c (a reference is taken), not yet
** running. */
AC_INTERNAL enum ac_code ac_job_new(ac_engine *e, ac_client *c,
                                    ac_session *s, const char *op,
                                    const struct ac_job_callbacks *cbs,
                                    ac_job **out, struct ac_error *err);

/* Sends req as the job's next transfer. The job takes url, body and
** headers (malloc'd / curl_slist; NULL allowed) whatever the outcome;
** every other pointer of req must stay valid until the transfer ends. */
AC_INTERNAL enum ac_code ac_job_send(ac_job *j, struct ac_http_req *req,
                                     char *url, char *body,
                                     struct curl_slist *headers,
                                     struct ac_error *err);

/* The data-plane form: ac_dp_call's URL and headers (data_plane.c). The
** call's json is copied. */
AC_INTERNAL enum ac_code ac_job_send_dp(ac_job *j,
                                        const struct ac_dp_call *call,
                                        struct ac_error *err);

/* POST api/files with the JSON body of write_file as the job's next
** transfer (fileops.c; run_code writes its script with it). */
AC_INTERNAL enum ac_code ac_job_send_write_file(ac_job *j,
                                                const char *remote_path,
                                                const void *data, size_t len,
                                                struct ac_error *err);

/* Rewrites a failed file operation's message to name the remote path and
** the session; returns rc. */
AC_INTERNAL enum ac_code ac_job_file_error(ac_job *j, const char *path,
                                           enum ac_code rc,
                                           struct ac_error *err);

/* Ends a job that failed before its first transfer: the start function
** returns rc and frees the job. */
AC_INTERNAL enum ac_code ac_job_abandon(ac_job *j, enum ac_code rc);

/* Completes the job now, without a transfer (nothing to send); on_done is
** delivered at the next poll. */
AC_INTERNAL void ac_job_complete(ac_job *j, enum ac_code rc);

/* Queues output for delivery (from a sink, inside libcurl). */
AC_INTERNAL enum ac_code ac_job_queue_output(ac_job *j, enum ac_stream st,
                                             const char *data, size_t len);

/* Runs a started job to completion on its engine (the blocking forms):
** returns the job's code and copies its error. */
AC_INTERNAL enum ac_code ac_job_finish_blocking(ac_job *j,
                                                struct ac_error *err);

/* An engine from the client's pool (or a new one) for a blocking call,
** with the client's interrupt flag; given back by ac_client_engine_put. */
AC_INTERNAL ac_engine *ac_client_engine_get(ac_client *c,
                                            struct ac_error *err);
AC_INTERNAL void ac_client_engine_put(ac_client *c, ac_engine *e);


#endif
