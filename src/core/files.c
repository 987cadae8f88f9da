/*
** files.c -- streaming upload (multipart) and download (temp file renamed
** into place), both in constant memory.
*/
#include "job.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------------- */
/* Upload                                                                  */

struct upload {
  ac_session *s;                      /* its transfer counters */
  int fd;
  curl_off_t size;
  curl_off_t off;
  const char *remote;
  const char *filename;
  curl_mime *mime;                    /* rebuilt for each attempt */
};

static size_t upload_read(char *buf, size_t size, size_t nitems, void *ud) {
  struct upload *u = ud;
  size_t want = size * nitems;
  ssize_t n;
  if (u->off >= u->size)
    return 0;
  if ((curl_off_t)want > u->size - u->off)
    want = (size_t)(u->size - u->off);  /* never more than announced */
  do
    n = pread(u->fd, buf, want, (off_t)u->off);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return CURL_READFUNC_ABORT;
  u->off += n;
  atomic_store(&u->s->xfer_done, (long long)u->off);
  return (size_t)n;
}

static int upload_seek(void *ud, curl_off_t offset, int origin) {
  struct upload *u = ud;
  if (origin != SEEK_SET || offset < 0)
    return CURL_SEEKFUNC_CANTSEEK;
  u->off = offset;
  atomic_store(&u->s->xfer_done, (long long)offset);
  return CURL_SEEKFUNC_OK;
}

/* Adds a text part name=value. */
static CURLcode text_part(curl_mime *mime, const char *name,
                          const char *value) {
  curl_mimepart *p = curl_mime_addpart(mime);
  CURLcode cc;
  if (p == NULL)
    return CURLE_OUT_OF_MEMORY;
  cc = curl_mime_name(p, name);
  if (cc == CURLE_OK)
    cc = curl_mime_data(p, value, CURL_ZERO_TERMINATED);
  return cc;
}

/* The SDK's form: path, mode, then the file part named "file" whose
** filename is the local basename, its data read from the open file as curl
** sends it (and re-read from the start if curl must resend). */
static enum ac_code upload_prepare(void *ud, CURL *easy,
                                   struct ac_error *err) {
  struct upload *u = ud;
  curl_mimepart *p;
  CURLcode cc;
  curl_mime_free(u->mime);
  u->off = 0;
  u->mime = curl_mime_init(easy);
  if (u->mime == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  cc = text_part(u->mime, "path", u->remote);
  if (cc == CURLE_OK)
    cc = text_part(u->mime, "mode", "0644");
  p = cc == CURLE_OK ? curl_mime_addpart(u->mime) : NULL;
  if (cc == CURLE_OK && p == NULL)
    cc = CURLE_OUT_OF_MEMORY;
  if (cc == CURLE_OK)
    cc = curl_mime_name(p, "file");
  if (cc == CURLE_OK)
    cc = curl_mime_filename(p, u->filename);
  if (cc == CURLE_OK)
    cc = curl_mime_data_cb(p, u->size, upload_read, upload_seek, NULL, u);
  if (cc == CURLE_OK)
    cc = curl_easy_setopt(easy, CURLOPT_MIMEPOST, u->mime);
  /* larger writes than libcurl's 64 KiB default: fewer system calls */
  if (cc == CURLE_OK)
    cc = curl_easy_setopt(easy, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
  if (cc != CURLE_OK)
    return ac_error_set(err, cc == CURLE_OUT_OF_MEMORY ? AC_ENOMEM : AC_EIO,
                        "upload file: building the form: %s",
                        curl_easy_strerror(cc));
  return AC_OK;
}

struct upload_state {
  struct upload u;                    /* first: the path_state shape is not
                                      ** used here */
  char *remote, *filename;
};

static void upload_cleanup(ac_job *j) {
  struct upload_state *st = j->st;
  if (st == NULL)
    return;
  curl_mime_free(st->u.mime);
  if (st->u.fd >= 0)
    close(st->u.fd);
  free(st->remote);
  free(st->filename);
  free(st);
  j->st = NULL;
}

static enum ac_code upload_step(ac_job *j, enum ac_code rc,
                                struct ac_error *err) {
  struct upload_state *st = j->st;
  return ac_job_file_error(j, st->remote, rc, err);
}

enum ac_code ac_start_upload_file(ac_engine *e, ac_session *s,
                                  const char *local_path,
                                  const char *remote_path,
                                  const struct ac_job_callbacks *cbs,
                                  ac_job **out, struct ac_error *err) {
  enum ac_code rc;
  struct upload_state *st;
  struct stat st_buf;
  struct ac_dp_call call;
  const char *slash;
  ac_job *j;

  *out = NULL;
  if (s == NULL || local_path == NULL || remote_path == NULL)
    return ac_error_set(err, AC_EINVAL, "upload file: NULL argument");
  if (atomic_load(&s->closed))
    return ac_error_set(err, AC_ECLOSED, "upload file: session %s is "
                        "closed", s->id);
  rc = ac_job_new(e, s->c, s, "upload file", cbs, &j, err);
  if (rc != AC_OK)
    return rc;
  rc = ac_rpath_resolve(remote_path, NULL, err);
  if (rc != AC_OK)
    return ac_job_abandon(j, ac_job_file_error(j, remote_path, rc, err));
  st = calloc(1, sizeof *st);
  if (st == NULL)
    return ac_job_abandon(j, ac_error_set(err, AC_ENOMEM, "out of memory"));
  st->u.fd = -1;
  j->st = st;
  j->cleanup = upload_cleanup;
  j->step = upload_step;
  slash = strrchr(local_path, '/');
  st->remote = strdup(remote_path);
  st->filename = strdup(slash ? slash + 1 : local_path);
  if (st->remote == NULL || st->filename == NULL)
    return ac_job_abandon(j, ac_error_set(err, AC_ENOMEM, "out of memory"));
  st->u.fd = open(local_path, O_RDONLY | O_CLOEXEC);
  if (st->u.fd < 0) {
    if (errno == ENOENT)
      return ac_job_abandon(j, ac_error_set(err, AC_ENOTFOUND,
                                            "Local file not found: %s",
                                            local_path));
    return ac_job_abandon(j, ac_error_errno(err, AC_EIO, errno,
                                            "upload file: %s", local_path));
  }
  if (fstat(st->u.fd, &st_buf) != 0)
    return ac_job_abandon(j, ac_error_errno(err, AC_EIO, errno,
                                            "upload file: %s", local_path));
  if (!S_ISREG(st_buf.st_mode))
    return ac_job_abandon(j, ac_error_set(err, AC_EINVAL, "upload file: %s "
                                          "is not a regular file",
                                          local_path));
  st->u.filename = st->filename;
  st->u.size = (curl_off_t)st_buf.st_size;
  st->u.s = s;
  atomic_store(&s->xfer_done, 0);
  atomic_store(&s->xfer_total, (long long)st_buf.st_size);
  st->u.remote = st->remote;

  memset(&call, 0, sizeof call);
  call.op = "upload file";
  call.method = "POST";
  call.endpoint = "api/files";
  call.prepare = upload_prepare;
  call.prepare_ud = &st->u;
  /* The SDK passes a scalar timeout of 120 s: connect and read alike. */
  call.connect_timeout_ms = s->c->upload_timeout_ms;
  call.idle_timeout_ms = s->c->upload_timeout_ms;
  call.max_body = s->c->max_response;
  rc = ac_job_send_dp(j, &call, err);
  if (rc != AC_OK)
    return ac_job_abandon(j, ac_job_file_error(j, remote_path, rc, err));
  *out = j;
  return AC_OK;
}

/* ---------------------------------------------------------------------- */
/* Download                                                                */

struct download {
  const char *dst;                    /* owned by the job's state */
  char *dir;                          /* dirname(dst), "." when none */
  const char *base;
  char tmp[4096];
  int fd;
};

/* mkdir -p dir (mode 0777 before umask, like os.makedirs). */
static int make_dirs(const char *dir) {
  char path[4096];
  size_t n = strlen(dir);
  struct stat st;
  if (n >= sizeof path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(path, dir, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (path[i] != '/' && path[i] != '\0')
      continue;
    path[i] = '\0';
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
      return -1;
    if (i < n)
      path[i] = '/';
  }
  if (stat(dir, &st) != 0)
    return -1;
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return -1;
  }
  return 0;
}

/* Creates "<dir>/.<base>.<random>.part" exclusively, mode 0666 & ~umask
** (what open(dst, "wb") would give the final file). */
static enum ac_code open_temp(struct download *d, struct ac_error *err) {
  if (make_dirs(d->dir) != 0)
    return ac_error_errno(err, AC_EIO, errno, "cannot create directory %s",
                          d->dir);
  for (int tries = 0; tries < 16; tries++) {
    unsigned char r[6];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
      return ac_error_errno(err, AC_ESYSTEM, errno, "getrandom");
    snprintf(d->tmp, sizeof d->tmp, "%s/.%.100s.%02x%02x%02x%02x%02x%02x.part",
             d->dir, d->base, r[0], r[1], r[2], r[3], r[4], r[5]);
    d->fd = open(d->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (d->fd >= 0)
      return AC_OK;
    if (errno != EEXIST)
      break;
  }
  d->tmp[0] = '\0';
  return ac_error_errno(err, AC_EIO, errno, "cannot create a file in %s",
                        d->dir);
}

static enum ac_code download_sink(void *ud, const char *data, size_t len,
                                  struct ac_error *err) {
  struct download *d = ud;
  enum ac_code rc;
  if (d->fd < 0) {
    rc = open_temp(d, err);
    if (rc != AC_OK)
      return rc;
  }
  while (len > 0) {
    ssize_t n = write(d->fd, data, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return ac_error_errno(err, AC_EIO, errno, "writing %s", d->tmp);
    data += n;
    len -= (size_t)n;
  }
  return AC_OK;
}

struct download_state {
  struct download d;
  char *remote;
  unsigned long long got, limit;      /* limit 0: none */
};

static void download_cleanup(ac_job *j) {
  struct download_state *st = j->st;
  if (st == NULL)
    return;
  if (st->d.fd >= 0)
    close(st->d.fd);
  if (st->d.tmp[0] != '\0')
    unlink(st->d.tmp);                /* never a half-written file */
  free(st->d.dir);
  free((char *)st->d.dst);
  free(st->remote);
  free(st);
  j->st = NULL;
}

static enum ac_code download_limited_sink(void *ud, const char *data,
                                          size_t len, struct ac_error *err) {
  struct download_state *st = ud;
  st->got += len;
  if (st->limit > 0 && st->got > st->limit)
    return ac_error_set(err, AC_ETOOBIG, "file larger than the download "
                        "limit of %llu bytes", st->limit);
  return download_sink(&st->d, data, len, err);
}

/* The file takes its name only when the job's completion is delivered:
** a progress callback that cancels on the last event leaves no file. */
static enum ac_code download_commit(ac_job *j, enum ac_code rc,
                                    struct ac_error *err) {
  struct download_state *st = j->st;
  struct download *d = &st->d;
  if (rc != AC_OK)
    return rc;                        /* cancelled: cleanup unlinks tmp */
  if (rename(d->tmp, d->dst) != 0)
    return ac_job_file_error(j, st->remote, ac_error_errno(err, AC_EIO,
                             errno, "download file: cannot rename into %s",
                             d->dst), err);
  d->tmp[0] = '\0';                   /* renamed: nothing to clean up */
  return AC_OK;
}

static enum ac_code download_step(ac_job *j, enum ac_code rc,
                                  struct ac_error *err) {
  struct download_state *st = j->st;
  struct download *d = &st->d;
  if (rc == AC_OK && d->fd < 0)       /* an empty file */
    rc = open_temp(d, err);
  /* No fsync before the rename: like the SDK and the curl tool, a
  ** download is as durable as the page cache makes it; forcing it to disk
  ** made a 1 GiB download disk-bound (about 2.5x slower than curl here).
  ** The rename still means no half-written file ever has the final name. */
  if (d->fd >= 0 && close(d->fd) != 0 && rc == AC_OK)
    rc = ac_error_errno(err, AC_EIO, errno, "download file: %s", d->tmp);
  d->fd = -1;
  if (rc == AC_OK)
    j->commit = download_commit;      /* renamed once delivered */
  return ac_job_file_error(j, st->remote, rc, err);
}

enum ac_code ac_start_download_file(ac_engine *e, ac_session *s,
                                    const char *remote_path,
                                    const char *local_path,
                                    const struct ac_job_callbacks *cbs,
                                    ac_job **out, struct ac_error *err) {
  enum ac_code rc;
  struct download_state *st;
  struct download *d;
  struct ac_buf ep;
  struct ac_dp_call call;
  const char *slash;
  ac_job *j;

  *out = NULL;
  if (s == NULL || remote_path == NULL || local_path == NULL)
    return ac_error_set(err, AC_EINVAL, "download file: NULL argument");
  rc = ac_job_new(e, s->c, s, "download file", cbs, &j, err);
  if (rc != AC_OK)
    return rc;
  st = calloc(1, sizeof *st);
  if (st == NULL)
    return ac_job_abandon(j, ac_error_set(err, AC_ENOMEM, "out of memory"));
  d = &st->d;
  d->fd = -1;
  j->st = st;
  j->cleanup = download_cleanup;
  j->step = download_step;
  st->limit = s->c->max_download;
  st->remote = strdup(remote_path);
  d->dst = strdup(local_path);
  if (st->remote == NULL || d->dst == NULL)
    return ac_job_abandon(j, ac_error_set(err, AC_ENOMEM, "out of memory"));
  slash = strrchr(d->dst, '/');
  d->base = slash ? slash + 1 : d->dst;
  if (d->base[0] == '\0')
    return ac_job_abandon(j, ac_error_set(err, AC_EINVAL, "download file: "
                                          "%s names a directory",
                                          local_path));
  d->dir = slash == d->dst ? strdup("/")
         : slash ? strndup(d->dst, (size_t)(slash - d->dst))
         : strdup(".");
  if (d->dir == NULL)
    return ac_job_abandon(j, ac_error_set(err, AC_ENOMEM, "out of memory"));
  ac_buf_init(&ep, 0);
  rc = ac_url_file_endpoint(&ep, remote_path, ac_client_is_local(s->c), err);
  if (rc == AC_OK) {
    memset(&call, 0, sizeof call);
    call.op = "download file";
    call.method = "GET";
    call.endpoint = ac_buf_str(&ep);
    call.idle_timeout_ms = s->c->request_timeout_ms;
    /* An overall deadline too: a server dripping one byte a second
    ** would otherwise keep the idle timer happy for ever. */
    call.timeout_ms = s->c->download_timeout_ms;
    call.max_body = s->c->max_response;
    call.sink = download_limited_sink;
    call.sink_ud = st;
    rc = ac_job_send_dp(j, &call, err);
  }
  ac_buf_free(&ep);
  if (rc != AC_OK)
    return ac_job_abandon(j, ac_job_file_error(j, remote_path, rc, err));
  *out = j;
  return AC_OK;
}

/* The engine's progress callback keeps the counters (engine.c); this is
** their snapshot for a thread that watches a transfer it did not start. */
void ac_session_transfer(const ac_session *s, long long *done,
                         long long *total) {
  ac_session *m = (ac_session *)s;  /* atomics: loads do not change it */
  if (done != NULL)
    *done = s ? atomic_load(&m->xfer_done) : 0;
  if (total != NULL)
    *total = s ? atomic_load(&m->xfer_total) : -1;
}
