/*
** request.h -- the state of the server and of one request, which the
** dispatcher, the route handlers and the reply helpers all read.
**
** libmicrohttpd runs one thread per connection, so a handler may block (an
** execute waits for its command) without holding up other requests. Each
** request gets a struct req that lives from its first callback to the
** "completed" notification, which writes the access-log line and releases
** everything the request still holds.
*/
#ifndef AGENTCUBE_HTTP_REQUEST_H
#define AGENTCUBE_HTTP_REQUEST_H

#include "ac_error.h"
#include "config.h"
#include "fileapi.h"
#include "store.h"

#include <microhttpd.h>
#include <jansson.h>
#include <stdatomic.h>
#include <time.h>

/* The error body families of PROTOCOL.md 1.1. */
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
  FILE *access_log;              /* NULL: no access log */
};

enum route {
  R_NONE, R_HEALTH, R_LIVE, R_READY, R_CREATE, R_CREATE_AGENT, R_DELETE,
  R_LIST, R_INFO, R_INVOKE, R_NOT_FOUND
};

enum data_op { OP_NONE, OP_EXECUTE, OP_UPLOAD_JSON, OP_UPLOAD_MULTIPART,
               OP_DOWNLOAD, OP_LIST };

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
  struct MHD_PostProcessor *pp;
  struct fapi_writer *writer;
  char *up_path;
  char *up_mode;
  int saw_file;
  unsigned long long up_bytes;
  enum ac_code up_rc;
  struct ac_error up_err;
  unsigned up_status;
};

#endif
