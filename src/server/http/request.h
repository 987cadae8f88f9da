/*
** request.h -- the state of the server and of one request, which the
** dispatcher, the route handlers and the reply helpers all read.
**
** libmicrohttpd runs one event loop (epoll) for every connection, so a
** handler must never block there. Work that blocks (mounting a session's
** image, file I/O, a blocking sandbox call) runs on the worker pool while
** the connection is suspended; the handler's reply is then kept in the
** request (reply.h stashes it) and queued by the event loop when the
** worker resumes the connection. Each request gets a struct req that lives
** from its first callback to the "completed" notification, which writes
** the access-log line and releases everything the request still holds.
*/
#ifndef AGENTCUBE_HTTP_REQUEST_H
#define AGENTCUBE_HTTP_REQUEST_H

#include "ac_error.h"
#include "config.h"
#include "fileapi.h"
#include "store.h"

#include <microhttpd.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

/* The error body families of docs/protocol.md §1.1. */
enum err_family {
  FAM_WM,       /* {"message": ...} */
  FAM_ROUTER,   /* {"error": ..., "code": "STRING"} or {"error": ...} */
  FAM_PICOD     /* {"error": ..., "code": <status>} */
};

struct ac_server {
  struct MHD_Daemon *daemon;
  struct ac_store *store;
  const struct ac_config *cfg;
  int auth;                      /* require the bearer token */
  char token[72];
  char endpoint[300];            /* "127.0.0.1:8080", for entryPoints */
  atomic_int inflight;           /* data-plane requests being served */
  atomic_int suspended;          /* connections suspended now: the daemon
                                    may stop only when none is */
  FILE *access_log;              /* NULL: no access log */
  struct workers *workers;       /* blocking work */
  struct conns *conns;           /* connection records and budgets */
};

enum route {
  R_NONE, R_HEALTH, R_LIVE, R_READY, R_CREATE, R_CREATE_AGENT, R_DELETE,
  R_LIST, R_INFO, R_INVOKE, R_NOT_FOUND
};

enum data_op { OP_NONE, OP_EXECUTE, OP_UPLOAD_JSON, OP_UPLOAD_MULTIPART,
               OP_DOWNLOAD, OP_LIST, OP_FS_REMOVE, OP_FS_MKDIR, OP_FS_STAT,
               OP_FS_RENAME, OP_PROC_START, OP_PROC_LIST, OP_PROC_GET,
               OP_PROC_OUTPUT, OP_PROC_STDIN, OP_PROC_SIGNAL, OP_PROC_WAIT,
               OP_CTX_CREATE, OP_CTX_LIST, OP_CTX_RUN, OP_CTX_DELETE };

struct req {
  struct ac_server *srv;
  struct MHD_Connection *conn;
  struct timespec t0;
  char method[12];
  char url[512];                 /* for the access log, truncated */
  enum route route;
  enum data_op op;
  int responded;                 /* a response is queued */
  unsigned status;               /* for the access log */
  int counted;                   /* holds an inflight slot */

  /* buffered JSON body */
  char *body;
  size_t len, cap, limit;
  int too_big;
  int no_memory;                 /* the server-wide pool refused */
  size_t reserved;               /* bytes held from the pool */

  /* route arguments, pointing into args_buf */
  char args_buf[4096];
  const char *ns, *name, *subpath, *id;

  /* data plane */
  struct srv_session *sess;       /* holds a reference */
  char sid[37];                  /* for the header and the log */

  /* multipart upload */
  struct fapi_root up_root;      /* where it goes (set by begin) */
  struct MHD_PostProcessor *pp;
  struct fapi_writer *writer;
  char *up_path;
  char *up_mode;
  int saw_file;
  unsigned long long up_bytes;
  enum ac_code up_rc;
  struct ac_error up_err;
  unsigned up_status;

  /* the connection and the blocking work done for it */
  struct conn *k;                /* NULL when unknown */
  pthread_mutex_t mu;            /* guards suspended and work_done */
  int suspended;                 /* the event loop does not serve it */
  int work_done;                 /* a job ended; the loop takes over */
  int deferred;                  /* a job runs the handler: stash replies */
  void (*job)(struct req *);     /* what the worker runs */
  enum MHD_Result (*after)(struct req *);  /* the loop's next step then */
  struct MHD_Response *pending;  /* a stashed reply and its status */
  unsigned pending_status;
  int close_conn;                /* answer with "Connection: close" */
  atomic_int gone;               /* client hung up or session deleted */
  char *chunk;                   /* a multipart chunk for the worker */
  size_t chunk_len;

  /* a task of the live sandbox (route_live*.c) */
  struct sbx_task *task;         /* released when the request completes */
  int async;                     /* the job's answer comes with the task */
  int async_done;                /* guarded by mu */
  int job_running;               /* guarded by mu */
  struct stream *stream;         /* the producer's hold on a streamed body */
  struct live_state *live;       /* what the task's events need */
  char live_id[24];              /* {id} of api/processes/{id}/..., of
                                    api/contexts/{id}/... */
};

/* The answer of an asynchronous job (r->async set by the job) is ready:
** the event loop takes over. Any thread. */
void req_async_done(struct req *r);

/* Runs job(r) on the worker pool with the connection suspended, watching
** for the client's hang-up meanwhile; the event loop resumes the request
** when it ends and queues the reply the job stashed. Called from the
** access handler. */
enum MHD_Result req_defer(struct req *r, void (*job)(struct req *));

#endif
