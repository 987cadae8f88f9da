/*
** route_files.c -- PicoD's file routes: JSON and multipart uploads,
** downloads, directory listings. Uploads stream into fileapi writers;
** downloads stream from the file descriptor; neither buffers a whole file.
*/
#include "budget.h"
#include "reply.h"
#include "routes.h"
#include "sdk_script.h"
#include "stream.h"
#include "utf8.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#define LIST_MAX_ENTRIES 100000

static json_t *info_json(const struct fapi_info *fi) {
  char mode[24], mod[40];
  return json_pack("{s:s, s:I, s:s, s:s}", "path", fi->path,
                   "size", (json_int_t)fi->size,
                   "mode", fapi_mode_string(fi->mode, mode),
                   "modified", fapi_rfc3339(fi->mtime, mod));
}

/* Maps a fileapi failure to PicoD's status and body. */
static enum MHD_Result reply_fapi(struct req *r, const struct ac_error *err,
                                  const char *notfound) {
  switch (err->code) {
  case AC_ENOTFOUND:
    return reply_error(r, FAM_PICOD, 404, "%s", notfound);
  case AC_EACCESS: case AC_EINVAL:
    return reply_error(r, FAM_PICOD, 400, "%s", err->msg);
  case AC_ELIMIT:
    return reply_error(r, FAM_PICOD, 507, "%s", err->msg);
  default:
    return reply_error(r, FAM_PICOD, 500, "%s", err->msg);
  }
}

/* {====================================================== JSON upload */

/* Decodes base64 content chunk by chunk straight into the writer. CR and LF
** are skipped, as Go's decoder does. */
static enum ac_code write_base64(struct fapi_writer *w, const char *b64,
                                 size_t len, struct ac_error *err) {
  EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
  unsigned char out[49152 + 64];
  enum ac_code rc = AC_OK;
  int n = 0;

  if (ctx == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  EVP_DecodeInit(ctx);
  for (size_t off = 0; off < len; off += 65536) {
    size_t chunk = len - off < 65536 ? len - off : 65536;
    for (size_t i = off; i < off + chunk; i++) {
      unsigned char c = (unsigned char)b64[i];
      if (!(c == '\r' || c == '\n' || c == '=' || c == '+' || c == '/' ||
            (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
            (c >= '0' && c <= '9'))) {
        rc = ac_error_set(err, AC_EINVAL, "Invalid base64 content: illegal "
                          "base64 data at input byte %zu", i);
        goto out;
      }
    }
    if (EVP_DecodeUpdate(ctx, out, &n, (const unsigned char *)b64 + off,
                         (int)chunk) < 0) {
      rc = ac_error_set(err, AC_EINVAL, "Invalid base64 content: illegal "
                        "base64 data near input byte %zu", off);
      goto out;
    }
    if (n > 0 && (rc = fapi_write_data(w, out, (size_t)n, err)) != AC_OK)
      goto out;
  }
  if (EVP_DecodeFinal(ctx, out, &n) < 0) {
    rc = ac_error_set(err, AC_EINVAL, "Invalid base64 content: illegal "
                      "base64 data at input byte %zu", len);
    goto out;
  }
  if (n > 0)
    rc = fapi_write_data(w, out, (size_t)n, err);
out:
  EVP_ENCODE_CTX_free(ctx);
  return rc;
}

enum MHD_Result route_upload_json(struct req *r) {
  json_error_t jerr;
  const char *why;
  json_t *body = budget_json_load(r->srv->cfg, r->body, r->len, &jerr, &why);
  json_t *path, *content, *mode;
  struct fapi_root root;
  struct fapi_writer *w = NULL;
  struct fapi_info fi;
  struct ac_error err;
  enum MHD_Result ret;

  path = json_object_get(body, "path");
  content = json_object_get(body, "content");
  mode = json_object_get(body, "mode");
  if (!json_is_object(body)) {
    ret = reply_error(r, FAM_PICOD, 400, "request body must be a JSON "
                      "object with path and content%s%s",
                      why ? ": " : "", why ? why : "");
    goto out;
  }
  if (!json_is_string(path) || !*json_string_value(path)) {
    ret = reply_error(r, FAM_PICOD, 400, "path is required and must be a "
                      "non-empty string");
    goto out;
  }
  if (!json_is_string(content)) {
    ret = reply_error(r, FAM_PICOD, 400, "content is required and must be "
                      "a base64 string");
    goto out;
  }
  if (mode && !json_is_null(mode) && !json_is_string(mode)) {
    ret = reply_error(r, FAM_PICOD, 400, "mode must be a string such as "
                      "\"0644\"");
    goto out;
  }
  req_fapi_root(r, &root);
  if (fapi_write_begin(&root, json_string_value(path),
                       fapi_parse_mode(json_string_value(mode)), &w,
                       &err) != AC_OK) {
    ret = reply_fapi(r, &err, "File not found");
    goto out;
  }
  if (write_base64(w, json_string_value(content),
                   json_string_length(content), &err) != AC_OK) {
    fapi_write_abort(w);
    ret = reply_fapi(r, &err, "File not found");
    goto out;
  }
  if (fapi_write_commit(w, &fi, &err) != AC_OK) {   /* frees w */
    ret = reply_fapi(r, &err, "File not found");
    goto out;
  }
  sdk_script_written(r, json_string_value(path), &fi);
  ret = reply_json(r, 200, info_json(&fi));
out:
  json_decref(body);
  return ret;
}

/* }====================================================== */

/* {====================================================== multipart */

static int append_str(char **dst, const char *data, size_t size) {
  size_t old = *dst ? strlen(*dst) : 0;
  char *grown;
  if (old + size > 8192)
    return -1;
  if ((grown = realloc(*dst, old + size + 1)) == NULL)
    return -1;
  if (size > 0)
    memcpy(grown + old, data, size);
  grown[old + size] = '\0';
  *dst = grown;
  return 0;
}

static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind,
                               const char *key, const char *filename,
                               const char *content_type,
                               const char *transfer_encoding,
                               const char *data, uint64_t off, size_t size) {
  struct req *r = cls;

  (void)kind; (void)filename; (void)content_type; (void)transfer_encoding;
  (void)off;
  if (r->up_rc != AC_OK)
    return MHD_NO;
  /* A part without a name (libmicrohttpd then passes NULL) is skipped, as
  ** Go's multipart reader does; it used to crash the server. */
  if (key == NULL)
    return MHD_YES;
  if (!strcmp(key, "path")) {
    if (append_str(&r->up_path, data, size) != 0)
      ac_error_set(&r->up_err, r->up_rc = AC_EINVAL, "path is too long");
  } else if (!strcmp(key, "mode")) {
    if (append_str(&r->up_mode, data, size) != 0)
      ac_error_set(&r->up_err, r->up_rc = AC_EINVAL, "mode is too long");
  } else if (!strcmp(key, "file")) {
    if (!r->saw_file) {
      r->saw_file = 1;
      if (r->up_path == NULL || *r->up_path == '\0') {
        /* The destination must be known before the bytes arrive, so
        ** that they stream straight to it. */
        r->up_status = 400;
        ac_error_set(&r->up_err, r->up_rc = AC_EINVAL,
                     "the 'path' field must come before the 'file' part");
        return MHD_NO;
      }
      r->up_rc = fapi_write_begin(&r->up_root, r->up_path,
                                  fapi_parse_mode(r->up_mode), &r->writer,
                                  &r->up_err);
      if (r->up_rc != AC_OK)
        return MHD_NO;
    }
    if (r->up_bytes > r->limit) {
      r->up_status = 413;
      ac_error_set(&r->up_err, r->up_rc = AC_ETOOBIG,
                   "request body too large");
      return MHD_NO;
    }
    if (size > 0 &&
        (r->up_rc = fapi_write_data(r->writer, data, size, &r->up_err)))
      return MHD_NO;
  }
  return MHD_YES;   /* other fields are ignored, like PicoD */
}

/* What a streamed upload holds at most, whatever its size: libmicrohttpd's
** post processor buffer and the copy of one chunk of the body (no larger
** than the connection's memory limit, 1 MiB) handed to a worker. */
#define UPLOAD_PP_BUFFER 65536
#define UPLOAD_MEMORY (2 * UPLOAD_PP_BUFFER + (1 << 20))

enum MHD_Result upload_multipart_begin(struct req *r) {
  req_fapi_root(r, &r->up_root);
  return upload_multipart_start(r);
}

enum MHD_Result upload_multipart_start(struct req *r) {
  if (!req_reserve(r, UPLOAD_MEMORY))
    return reply_pool_busy(r, "another upload");
  r->pp = MHD_create_post_processor(r->conn, UPLOAD_PP_BUFFER, on_part, r);
  if (r->pp == NULL)
    return reply_error(r, FAM_PICOD, 400, "malformed multipart request");
  return MHD_YES;
}

enum MHD_Result route_upload_multipart_done(struct req *r) {
  struct fapi_info fi;
  struct ac_error err;

  if (r->pp) {
    if (MHD_destroy_post_processor(r->pp) != MHD_YES && r->up_rc == AC_OK)
      ac_error_set(&r->up_err, r->up_rc = AC_EINVAL,
                   "malformed multipart body");
    r->pp = NULL;
  }
  if (r->up_path == NULL || *r->up_path == '\0') {
    /* a path too long to keep, a malformed body: say so, not that the
    ** path is missing (a file part before any path is, as in PicoD) */
    if (r->up_rc != AC_OK && r->up_status != 400)
      return reply_fapi(r, &r->up_err, "File not found");
    return reply_error(r, FAM_PICOD, 400, "Missing 'path' field");
  }
  if (r->up_rc != AC_OK) {
    if (r->up_status == 413)
      return reply_json(r, 413, json_pack("{s:s, s:s}", "error",
                                          "request body too large", "detail",
                                          "the upload exceeds the server's "
                                          "maxUploadBytes"));
    return reply_fapi(r, &r->up_err, "File not found");
  }
  if (!r->saw_file)
    return reply_error(r, FAM_PICOD, 400,
                       "Failed to get file: http: no such file");
  if (r->writer == NULL) {
    /* an empty file part: nothing was streamed, create it now */
    if (fapi_write_begin(&r->up_root, r->up_path, fapi_parse_mode(r->up_mode),
                         &r->writer, &err) != AC_OK)
      return reply_fapi(r, &err, "File not found");
  }
  if (fapi_write_commit(r->writer, &fi, &err) != AC_OK) {
    r->writer = NULL;
    return reply_fapi(r, &err, "File not found");
  }
  r->writer = NULL;
  return reply_json(r, 200, info_json(&fi));
}

/* }====================================================== */

/* {====================================================== download, list */

static const char *mime_type(const char *name) {
  static const struct { const char *ext, *type; } types[] = {
    { ".txt", "text/plain; charset=utf-8" }, { ".csv", "text/csv" },
    { ".json", "application/json" }, { ".html", "text/html" },
    { ".htm", "text/html" }, { ".xml", "text/xml" },
    { ".js", "text/javascript" }, { ".css", "text/css" },
    { ".py", "text/x-python" }, { ".sh", "text/x-sh" },
    { ".md", "text/markdown" }, { ".png", "image/png" },
    { ".jpg", "image/jpeg" }, { ".jpeg", "image/jpeg" },
    { ".gif", "image/gif" }, { ".svg", "image/svg+xml" },
    { ".pdf", "application/pdf" }, { ".zip", "application/zip" },
    { ".gz", "application/gzip" }, { ".tar", "application/x-tar" },
  };
  const char *dot = strrchr(name, '.');
  for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
    if (strcasecmp(dot, types[i].ext) == 0)
      return types[i].type;
  return "application/octet-stream";
}

/* The SDK strips every leading '/' of a download path, so that
** "/workspace/summary.csv" arrives as "workspace/summary.csv". A path whose
** first component names one of the session's trees is therefore read as
** that absolute path; any other path is workspace-relative. */
static const char *download_path(const char *p, char *buf, size_t len) {
  static const char *const trees[] = { "workspace", "tmp", "home" };
  for (size_t i = 0; i < sizeof trees / sizeof trees[0]; i++) {
    size_t n = strlen(trees[i]);
    if (strncmp(p, trees[i], n) == 0 && (p[n] == '/' || p[n] == '\0')) {
      snprintf(buf, len, "/%s", p);
      return buf;
    }
  }
  return p;
}

#define DOWNLOAD_CHUNK (1 << 20)
/* What a download holds at most, whatever the file: its read buffer, the
** stream's copy and libmicrohttpd's 64 KiB block. */
#define DOWNLOAD_MEMORY (2 * DOWNLOAD_CHUNK + (64 << 10))

/* A download read on workers, one chunk whenever the client has taken
** the previous one: the event loop never reads the file, and memory stays
** one chunk whatever the file's size. */
struct download {
  int fd;
  uint64_t off, size;
  char *buf;
};

static void download_refill(void *ud, struct stream *s) {
  struct download *d = ud;
  size_t want = d->size - d->off < DOWNLOAD_CHUNK
    ? (size_t)(d->size - d->off) : DOWNLOAD_CHUNK;
  ssize_t n;

  if (want == 0) {
    stream_end(s, 0);
    return;
  }
  if (d->buf == NULL && (d->buf = malloc(DOWNLOAD_CHUNK)) == NULL) {
    stream_end(s, 1);
    return;
  }
  n = pread(d->fd, d->buf, want, (off_t)d->off);
  /* A file that shrank under us (the sandbox may change it while it is
  ** downloaded) ends the answer cut short: Content-Length promised more,
  ** so the client sees the failure. It never spins. */
  if (n <= 0 || stream_write(s, d->buf, (size_t)n) != 0) {
    stream_end(s, 1);
    return;
  }
  d->off += (uint64_t)n;
}

static void download_free(void *ud) {
  struct download *d = ud;
  close(d->fd);
  free(d->buf);
  free(d);
}

enum MHD_Result route_download(struct req *r) {
  char path[4200];
  struct fapi_root root;
  struct fapi_info fi;
  struct ac_error err;
  struct MHD_Response *resp;
  char disp[400], date[64];
  struct tm tm;
  int fd;

  req_fapi_root(r, &root);
  if (*r->subpath == '\0')
    return reply_error(r, FAM_PICOD, 400, "Path is a directory, not a file");
  if (!req_reserve(r, DOWNLOAD_MEMORY))
    return reply_pool_busy(r, "another download");
  if (fapi_open_read(&root, download_path(r->subpath, path, sizeof path),
                     &fd, &fi, &err) != AC_OK)
    return reply_fapi(r, &err, "File not found");
  {
    struct download *d = calloc(1, sizeof *d);
    struct stream *s = d ? stream_new(r) : NULL;
    if (s == NULL) {
      free(d);
      close(fd);
      return MHD_NO;
    }
    d->fd = fd;
    d->size = (uint64_t)fi.size;
    stream_set_refill(s, download_refill, d, download_free);
    resp = stream_response(s, (uint64_t)fi.size);
    stream_detach(s);
    if (resp == NULL)
      return MHD_NO;
  }
  snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", fi.name);
  gmtime_r(&fi.mtime.tv_sec, &tm);
  strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                          mime_type(fi.name));
  MHD_add_response_header(resp, "Content-Disposition", disp);
  MHD_add_response_header(resp, "Content-Description", "File Transfer");
  MHD_add_response_header(resp, "Content-Transfer-Encoding", "binary");
  MHD_add_response_header(resp, MHD_HTTP_HEADER_LAST_MODIFIED, date);
  return reply_response(r, 200, resp);
}

enum MHD_Result route_list(struct req *r) {
  const char *path = MHD_lookup_connection_value(r->conn,
                                                 MHD_GET_ARGUMENT_KIND,
                                                 "path");
  struct fapi_root root;
  struct fapi_entry *ents = NULL;
  size_t n = 0;
  int truncated = 0;
  struct ac_error err;
  json_t *files, *o;

  if (path == NULL || *path == '\0')
    return reply_error(r, FAM_PICOD, 400,
                       "Missing 'path' query parameter");
  req_fapi_root(r, &root);
  if (fapi_list(&root, path, LIST_MAX_ENTRIES, &ents, &n, &truncated,
                &err) != AC_OK)
    return reply_fapi(r, &err, "Directory not found");
  files = json_array();
  for (size_t i = 0; files && i < n; i++) {
    char mode[24], mod[40];
    size_t len = strlen(ents[i].name);
    /* A name that is not UTF-8 cannot be a JSON string: it is listed in
    ** an escaped form with a flag, never dropped. */
    int raw = utf8_valid(ents[i].name, len);
    char *name = raw ? ents[i].name : utf8_escape_name(ents[i].name, len);
    json_t *e = name ? json_pack(
      "{s:s, s:I, s:s, s:s, s:b}", "name", name,
      "size", (json_int_t)ents[i].size, "modified",
      fapi_rfc3339(ents[i].mtime, mod), "mode",
      fapi_mode_string(ents[i].mode, mode), "is_dir",
      S_ISDIR(ents[i].mode)) : NULL;
    if (e && !raw)
      json_object_set_new(e, "name_escaped", json_true());
    if (!raw)
      free(name);
    if (e == NULL || json_array_append_new(files, e) != 0) {
      json_decref(files);
      files = NULL;
    }
  }
  free(ents);
  if (files == NULL)
    return reply_error(r, FAM_PICOD, 500, "out of memory");
  o = json_pack("{s:o}", "files", files);
  if (o && truncated)
    json_object_set_new(o, "truncated", json_true());
  return reply_json(r, 200, o);
}

/* }====================================================== */
