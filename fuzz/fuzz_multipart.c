/*
** fuzz_multipart.c -- multipart uploads the way the server takes them.
**
** A real libmicrohttpd daemon (no listening socket, run by MHD_run on this
** thread) reads a POST from one end of a socketpair; its post processor
** parses the body and hands the parts to the server's own upload code
** (upload_multipart_start, the part callback, route_upload_multipart_done),
** which streams the file through the file API into a scratch box root,
** with its staging directory. Nothing of the upload path is replaced.
**
** Input: the first line is the Content-Type header's value, the rest the
** body. Invariants: no crash, no leak, and the daemon answers every
** request (the client end reads to the end of the connection).
*/
#include "fileapi.h"
#include "fuzz_noagent.h"
#include "request.h"
#include "routes.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define SESSION_ID 65534          /* the files' owner when run as root */
#define MAX_TURNS 2000            /* MHD_run rounds per input */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct MHD_Daemon *daemon_;
static struct fapi_root root_;
static char base_[64];
static unsigned long runs_;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  struct req *r = *con_cls;
  (void)cls; (void)url; (void)method; (void)version;
  if (r == NULL) {
    if ((r = calloc(1, sizeof *r)) == NULL)
      return MHD_NO;
    *con_cls = r;
    r->conn = conn;
    r->up_root = root_;
    r->limit = 1 << 20;
    return upload_multipart_start(r);
  }
  if (r->responded) {
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (*upload_data_size > 0) {
    /* what the server's worker does with each chunk (http_server.c) */
    if (MHD_post_process(r->pp, upload_data, *upload_data_size) != MHD_YES &&
        r->up_rc == AC_OK)
      ac_error_set(&r->up_err, r->up_rc = AC_EINVAL,
                   "malformed multipart body");
    r->up_bytes += *upload_data_size;
    *upload_data_size = 0;
    return MHD_YES;
  }
  return route_upload_multipart_done(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **con_cls, enum MHD_RequestTerminationCode toe) {
  struct req *r = *con_cls;
  (void)cls; (void)conn; (void)toe;
  if (r == NULL)
    return;
  if (r->pp)
    MHD_destroy_post_processor(r->pp);
  fapi_write_abort(r->writer);
  free(r->up_path);
  free(r->up_mode);
  free(r);
  *con_cls = NULL;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st; (void)flag;
  if (ftw->level > 0)
    remove(path);
  return 0;
}

static int rm_all(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw) {
  (void)st; (void)flag; (void)ftw;
  remove(path);
  return 0;
}

/* At exit: the daemon, and the scratch root with everything in it. */
static void teardown(void) {
  if (daemon_)
    MHD_stop_daemon(daemon_);
  daemon_ = NULL;
  nftw(base_, rm_all, 16, FTW_DEPTH | FTW_PHYS);
}

/* Empties a tree of the scratch root (uploads pile up otherwise). */
static void empty_tree(const char *rel) {
  char path[128];
  snprintf(path, sizeof path, "%s/%s", base_, rel);
  nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void mkdir_owned(const char *rel, mode_t mode, int owned) {
  char path[128];
  snprintf(path, sizeof path, "%s/%s", base_, rel);
  mkdir(path, mode);
  chmod(path, mode);
  if (owned && geteuid() == 0 && chown(path, SESSION_ID, SESSION_ID) != 0)
    abort();
}

static void setup(void) {
  snprintf(base_, sizeof base_, "/tmp/fuzz-multipart.XXXXXX");
  if (mkdtemp(base_) == NULL)
    abort();
  mkdir_owned("workspace", 0700, 1);
  mkdir_owned("tmp", 01777, 1);
  mkdir_owned("home", 0711, 0);
  mkdir_owned("home/sandbox", 0700, 1);
  mkdir_owned(FAPI_STAGE_PARENT, 0700, 0);
  mkdir_owned(FAPI_STAGE_DIR, 0700, 1);
  root_.rootfd = open(base_, O_PATH | O_DIRECTORY | O_CLOEXEC);
  root_.uid = geteuid() == 0 ? SESSION_ID : geteuid();
  root_.gid = geteuid() == 0 ? SESSION_ID : getegid();
  if (root_.rootfd < 0)
    abort();
  daemon_ = MHD_start_daemon(MHD_USE_NO_LISTEN_SOCKET, 0, NULL, NULL,
                             on_request, NULL,
                             MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                             MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                             (size_t)(1 << 20),
                             MHD_OPTION_END);
  if (daemon_ == NULL)
    abort();
  atexit(teardown);
}

/* Sends the request on one end of a socketpair while the daemon serves
** the other, and reads the answer to the end. */
static void serve_one(const char *head, size_t hlen, const uint8_t *body,
                      size_t blen) {
  struct sockaddr_in addr;
  int sv[2];
  size_t sent = 0, total = hlen + blen;
  char buf[4096];

  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                 sv) != 0)
    abort();
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (MHD_add_connection(daemon_, sv[1], (struct sockaddr *)&addr,
                         sizeof addr) != MHD_YES) {
    close(sv[0]);
    close(sv[1]);
    return;
  }
  for (int turn = 0; turn < MAX_TURNS; turn++) {
    ssize_t n;
    while (sent < total) {
      const char *p = sent < hlen ? head + sent
                                  : (const char *)body + (sent - hlen);
      size_t left = sent < hlen ? hlen - sent : total - sent;
      n = write(sv[0], p, left);
      if (n <= 0)
        break;
      sent += (size_t)n;
    }
    if (sent == total)
      shutdown(sv[0], SHUT_WR);
    MHD_run(daemon_);
    n = read(sv[0], buf, sizeof buf);
    if (n == 0)
      break;                     /* answered and closed */
  }
  close(sv[0]);
  MHD_run(daemon_);              /* let it see the close */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nl = memchr(data, '\n', size);
  size_t ctlen = nl ? (size_t)(nl - data) : size;
  const uint8_t *body = nl ? nl + 1 : data + size;
  size_t blen = (size_t)(data + size - body);
  char head[512];
  int hlen;

  if (daemon_ == NULL)
    setup();
  if (ctlen > 200 || memchr(data, '\r', ctlen) != NULL)
    return 0;                    /* one header line, no injection */
  hlen = snprintf(head, sizeof head, "POST /api/files HTTP/1.1\r\n"
                  "Host: fuzz\r\nContent-Type: %.*s\r\n"
                  "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                  (int)ctlen, (const char *)data, blen);
  serve_one(head, (size_t)hlen, body, blen);
  if (++runs_ % 512 == 0) {
    empty_tree("workspace");
    empty_tree("tmp");
    empty_tree("home/sandbox");
  }
  return 0;
}
