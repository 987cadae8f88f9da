/*
** files.c -- streaming upload (multipart) and download (temp file renamed
** into place), both in constant memory.
*/
#include "internal.h"

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
  return (size_t)n;
}

static int upload_seek(void *ud, curl_off_t offset, int origin) {
  struct upload *u = ud;
  if (origin != SEEK_SET || offset < 0)
    return CURL_SEEKFUNC_CANTSEEK;
  u->off = offset;
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

enum ac_code ac_session_upload_file(ac_session *s, const char *local_path,
                                    const char *remote_path,
                                    struct ac_error *err) {
  enum ac_code rc;
  struct upload u;
  struct stat st;
  struct ac_dp_call call;
  struct ac_http_resp resp;
  const char *slash;

  if (s == NULL || local_path == NULL || remote_path == NULL)
    return ac_error_set(err, AC_EINVAL, "upload file: NULL argument");
  if (atomic_load(&s->closed))
    return ac_error_set(err, AC_ECLOSED, "upload file: session %s is "
                        "closed", s->id);
  memset(&u, 0, sizeof u);
  u.fd = open(local_path, O_RDONLY | O_CLOEXEC);
  if (u.fd < 0) {
    if (errno == ENOENT)
      return ac_error_set(err, AC_ENOTFOUND, "Local file not found: %s",
                          local_path);
    return ac_error_errno(err, AC_EIO, errno, "upload file: %s",
                          local_path);
  }
  ac_http_resp_init(&resp);
  if (fstat(u.fd, &st) != 0) {
    rc = ac_error_errno(err, AC_EIO, errno, "upload file: %s", local_path);
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    rc = ac_error_set(err, AC_EINVAL, "upload file: %s is not a regular "
                      "file", local_path);
    goto out;
  }
  slash = strrchr(local_path, '/');
  u.filename = slash ? slash + 1 : local_path;
  u.size = (curl_off_t)st.st_size;
  u.remote = remote_path;

  memset(&call, 0, sizeof call);
  call.op = "upload file";
  call.method = "POST";
  call.endpoint = "api/files";
  call.prepare = upload_prepare;
  call.prepare_ud = &u;
  /* The SDK passes a scalar timeout of 120 s: connect and read alike. */
  call.connect_timeout_ms = s->c->upload_timeout_ms;
  call.idle_timeout_ms = s->c->upload_timeout_ms;
  call.max_body = s->c->max_response;
  rc = ac_dp_request(s, &call, &resp, err);
out:
  curl_mime_free(u.mime);
  ac_http_resp_free(&resp);
  close(u.fd);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Download                                                                */

struct download {
  const char *dst;
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

enum ac_code ac_session_download_file(ac_session *s, const char *remote_path,
                                      const char *local_path,
                                      struct ac_error *err) {
  enum ac_code rc;
  struct download d;
  struct ac_buf ep;
  struct ac_dp_call call;
  struct ac_http_resp resp;
  const char *slash;

  if (s == NULL || remote_path == NULL || local_path == NULL)
    return ac_error_set(err, AC_EINVAL, "download file: NULL argument");
  memset(&d, 0, sizeof d);
  d.fd = -1;
  d.dst = local_path;
  ac_buf_init(&ep, 0);
  ac_http_resp_init(&resp);
  slash = strrchr(local_path, '/');
  d.base = slash ? slash + 1 : local_path;
  if (d.base[0] == '\0') {
    rc = ac_error_set(err, AC_EINVAL, "download file: %s names a directory",
                      local_path);
    goto out;
  }
  d.dir = slash == local_path ? strdup("/")
        : slash ? strndup(local_path, (size_t)(slash - local_path))
        : strdup(".");
  if (d.dir == NULL) {
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    goto out;
  }
  rc = ac_url_file_endpoint(&ep, remote_path, err);
  if (rc != AC_OK)
    goto out;

  memset(&call, 0, sizeof call);
  call.op = "download file";
  call.method = "GET";
  call.endpoint = ac_buf_str(&ep);
  call.idle_timeout_ms = s->c->request_timeout_ms;
  call.max_body = s->c->max_response;
  call.sink = download_sink;
  call.sink_ud = &d;
  rc = ac_dp_request(s, &call, &resp, err);
  if (rc == AC_OK && d.fd < 0)        /* an empty file */
    rc = open_temp(&d, err);
  /* No fsync before the rename: like the SDK and the curl tool, a
  ** download is as durable as the page cache makes it; forcing it to disk
  ** made a 1 GiB download disk-bound (about 2.5x slower than curl here).
  ** The rename still means no half-written file ever has the final name. */
  if (d.fd >= 0 && close(d.fd) != 0 && rc == AC_OK)
    rc = ac_error_errno(err, AC_EIO, errno, "download file: %s", d.tmp);
  d.fd = -1;
  if (rc == AC_OK && rename(d.tmp, local_path) != 0)
    rc = ac_error_errno(err, AC_EIO, errno, "download file: cannot rename "
                        "into %s", local_path);
  if (rc != AC_OK && d.tmp[0] != '\0')
    unlink(d.tmp);
out:
  if (d.fd >= 0)
    close(d.fd);
  ac_http_resp_free(&resp);
  ac_buf_free(&ep);
  free(d.dir);
  return rc;
}
