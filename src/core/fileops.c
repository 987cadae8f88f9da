/*
** fileops.c -- the small file calls: write_file (POST api/files, JSON with
** base64 content), read_file (GET api/files/<path> into memory) and
** list_files (GET api/files?path=). Streaming upload and download are in
** files.c.
*/
#include "job.h"

#include <math.h>
#include <stdio.h>

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* {"path": <path>, "content": "<base64>", "mode": "0644"}, built directly
** so that a large content is encoded once, without an extra copy. */
static enum ac_code write_body(const char *path, const unsigned char *data,
                               size_t len, struct ac_buf *b,
                               struct ac_error *err) {
  enum ac_code rc;
  unsigned char out[4 * 16384 + 1];
  rc = ac_buf_addstr(b, "{\"path\": ");
  if (rc == AC_OK)
    rc = ac_json_add_string(b, path, strlen(path), err);
  else
    ac_error_set(err, rc, "out of memory");
  if (rc != AC_OK)
    return rc;
  rc = ac_buf_addstr(b, ", \"content\": \"");
  for (size_t off = 0; off < len && rc == AC_OK; off += 3 * 16384) {
    size_t n = len - off < 3 * 16384 ? len - off : 3 * 16384;
    int w = EVP_EncodeBlock(out, data + off, (int)n);
    rc = ac_buf_add(b, out, (size_t)w);
  }
  if (rc == AC_OK)
    rc = ac_buf_addstr(b, "\", \"mode\": \"0644\"}");
  if (rc != AC_OK)
    return ac_error_set(err, rc, "write file: out of memory");
  return AC_OK;
}

/* Every file error names the remote path and the session:
** "download file /x (session 1f3a...): HTTP 404: File not found". */
enum ac_code ac_job_file_error(ac_job *j, const char *path, enum ac_code rc,
                               struct ac_error *err) {
  char msg[3 * AC_ERROR_SIZE];
  const char *rest;
  size_t oplen;
  if (rc == AC_OK || err == NULL)
    return rc;
  oplen = strlen(j->op);
  rest = err->msg;
  if (strncmp(rest, j->op, oplen) == 0 && rest[oplen] == ':' &&
      rest[oplen + 1] == ' ')
    rest += oplen + 2;
  snprintf(msg, sizeof msg, "%s %s (session %s): %s", j->op, path,
           j->s != NULL ? j->s->id : "?", rest);
  memcpy(err->msg, msg, sizeof err->msg - 1);
  err->msg[sizeof err->msg - 1] = '\0';
  err->code = rc;
  return rc;
}

struct path_state {
  char *path;                         /* the remote path, for messages */
};

static void path_cleanup(ac_job *j) {
  struct path_state *st = j->st;
  if (st != NULL)
    free(st->path);
  free(st);
  j->st = NULL;
}

/* A job on session s whose messages name path. */
static enum ac_code file_job(ac_engine *e, ac_session *s, const char *op,
                             const char *path,
                             const struct ac_job_callbacks *cbs,
                             ac_job **out, struct ac_error *err) {
  enum ac_code rc;
  struct path_state *st;
  *out = NULL;
  rc = ac_job_new(e, s->c, s, op, cbs, out, err);
  if (rc != AC_OK)
    return rc;
  st = calloc(1, sizeof *st);
  if (st == NULL || (st->path = strdup(path)) == NULL) {
    free(st);
    return ac_job_abandon(*out, ac_error_set(err, AC_ENOMEM,
                                             "out of memory"));
  }
  (*out)->st = st;
  (*out)->cleanup = path_cleanup;
  return AC_OK;
}

static const char *job_path(const ac_job *j) {
  const struct path_state *st = j->st;
  return st != NULL ? st->path : "?";
}

enum ac_code ac_job_send_write_file(ac_job *j, const char *remote_path,
                                    const void *data, size_t len,
                                    struct ac_error *err) {
  enum ac_code rc;
  struct ac_buf body;
  struct ac_dp_call call;
  ac_buf_init(&body, 0);
  rc = write_body(remote_path, data, len, &body, err);
  if (rc != AC_OK) {
    ac_buf_free(&body);
    return rc;
  }
  memset(&call, 0, sizeof call);
  call.op = "write file";
  call.method = "POST";
  call.endpoint = "api/files";
  call.json = ac_buf_str(&body);
  call.json_len = body.len;
  call.timeout_ms = j->c->request_timeout_ms;
  call.max_body = j->c->max_response;
  rc = ac_job_send_dp(j, &call, err);
  ac_buf_free(&body);
  return rc;
}

static enum ac_code write_step(ac_job *j, enum ac_code rc,
                               struct ac_error *err) {
  return ac_job_file_error(j, job_path(j), rc, err);
}

enum ac_code ac_start_write_file(ac_engine *e, ac_session *s,
                                 const char *remote_path, const void *data,
                                 size_t len,
                                 const struct ac_job_callbacks *cbs,
                                 ac_job **out, struct ac_error *err) {
  enum ac_code rc;
  ac_job *j;
  *out = NULL;
  if (s == NULL || remote_path == NULL || (data == NULL && len > 0))
    return ac_error_set(err, AC_EINVAL, "write file: NULL argument");
  rc = file_job(e, s, "write file", remote_path, cbs, &j, err);
  if (rc != AC_OK)
    return rc;
  j->step = write_step;
  rc = ac_rpath_resolve(remote_path, NULL, err);
  if (rc == AC_OK)
    rc = ac_job_send_write_file(j, remote_path, data, len, err);
  if (rc != AC_OK)
    return ac_job_abandon(j, ac_job_file_error(j, remote_path, rc, err));
  *out = j;
  return AC_OK;
}

static enum ac_code read_step(ac_job *j, enum ac_code rc,
                              struct ac_error *err) {
  if (rc == AC_OK) {
    j->data = ac_buf_steal(&j->resp.body, &j->data_len);
    if (j->data == NULL)
      rc = ac_error_set(err, AC_ENOMEM, "out of memory");
  }
  return ac_job_file_error(j, job_path(j), rc, err);
}

enum ac_code ac_start_read_file(ac_engine *e, ac_session *s,
                                const char *remote_path, size_t max_bytes,
                                const struct ac_job_callbacks *cbs,
                                ac_job **out, struct ac_error *err) {
  enum ac_code rc;
  struct ac_buf ep;
  struct ac_dp_call call;
  ac_job *j;
  *out = NULL;
  if (s == NULL || remote_path == NULL)
    return ac_error_set(err, AC_EINVAL, "read file: NULL argument");
  rc = file_job(e, s, "read file", remote_path, cbs, &j, err);
  if (rc != AC_OK)
    return rc;
  j->step = read_step;
  ac_buf_init(&ep, 0);
  rc = ac_url_file_endpoint(&ep, remote_path, ac_client_is_local(s->c), err);
  if (rc == AC_OK) {
    memset(&call, 0, sizeof call);
    call.op = "read file";
    call.method = "GET";
    call.endpoint = ac_buf_str(&ep);
    call.timeout_ms = j->c->request_timeout_ms;
    call.max_body = max_bytes ? max_bytes : j->c->max_response;
    rc = ac_job_send_dp(j, &call, err);
  }
  ac_buf_free(&ep);
  if (rc != AC_OK)
    return ac_job_abandon(j, ac_job_file_error(j, remote_path, rc, err));
  *out = j;
  return AC_OK;
}

void ac_file_list_free(struct ac_file_list *l) {
  if (l == NULL)
    return;
  for (size_t i = 0; i < l->count; i++) {
    free(l->items[i].name);
    free(l->items[i].modified);
    free(l->items[i].mode);
  }
  free(l->items);
  free(l->json);
  memset(l, 0, sizeof *l);
}

static char *dup_field(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  return strdup(json_is_string(v) ? json_string_value(v) : "");
}

static enum ac_code parse_files(json_t *files, struct ac_file_list *out,
                                struct ac_error *err) {
  size_t n = json_array_size(files);
  if (n > 0) {
    out->items = calloc(n, sizeof *out->items);
    if (out->items == NULL)
      return ac_error_set(err, AC_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(files, i), *size;
    struct ac_file_info *fi = &out->items[i];
    if (!json_is_object(e))
      return ac_error_set(err, AC_EPROTO,
                          "list files: entry %zu is not an object", i);
    out->count = i + 1;
    fi->name = dup_field(e, "name");
    fi->modified = dup_field(e, "modified");
    fi->mode = dup_field(e, "mode");
    if (fi->name == NULL || fi->modified == NULL || fi->mode == NULL)
      return ac_error_set(err, AC_ENOMEM, "out of memory");
    size = json_object_get(e, "size");
    if (json_is_integer(size)) {
      fi->size = json_integer_value(size);
    } else if (json_is_real(size)) {
      double d = json_real_value(size);
      /* a cast of 1e300 to an integer is undefined: refuse it */
      if (!(d >= 0 && d < 9.2e18))
        return ac_error_set(err, AC_EPROTO,
                            "list files: entry %zu has size %g", i, d);
      fi->size = (long long)d;
    } else {
      fi->size = 0;
    }
    fi->is_dir = json_is_true(json_object_get(e, "is_dir"));
  }
  return AC_OK;
}

static enum ac_code list_step(ac_job *j, enum ac_code rc,
                              struct ac_error *err) {
  json_t *js, *files;
  if (rc != AC_OK)
    return ac_job_file_error(j, job_path(j), rc, err);
  js = ac_json_parse(ac_buf_str(&j->resp.body), j->resp.body.len, 0,
                     "list files", err);
  if (js == NULL)
    return err->code;
  if (!json_is_object(js)) {
    json_decref(js);
    return ac_error_set(err, AC_EPROTO, "list files: malformed JSON "
                        "response");
  }
  files = json_object_get(js, "files");
  if (files != NULL && !json_is_null(files) && !json_is_array(files)) {
    rc = ac_error_set(err, AC_EPROTO, "list files: \"files\" is not an "
                      "array");
  } else if (json_is_array(files)) {
    rc = parse_files(files, &j->files, err);
    if (rc == AC_OK)
      j->files.json = json_dumps(files, JSON_COMPACT | JSON_PRESERVE_ORDER);
  } else {
    j->files.json = strdup("[]");
  }
  if (rc == AC_OK && j->files.json == NULL)
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
  if (rc != AC_OK)
    ac_file_list_free(&j->files);
  json_decref(js);
  return rc;
}

enum ac_code ac_start_list_files(ac_engine *e, ac_session *s,
                                 const char *path,
                                 const struct ac_job_callbacks *cbs,
                                 ac_job **out, struct ac_error *err) {
  enum ac_code rc;
  struct ac_buf ep;
  struct ac_dp_call call;
  ac_job *j;
  *out = NULL;
  if (s == NULL)
    return ac_error_set(err, AC_EINVAL, "list files: session is NULL");
  rc = file_job(e, s, "list files", path ? path : ".", cbs, &j, err);
  if (rc != AC_OK)
    return rc;
  j->step = list_step;
  ac_buf_init(&ep, 0);
  rc = ac_rpath_resolve(path ? path : ".", NULL, err);
  if (rc != AC_OK) {
    /* err says why */
  } else if (ac_buf_addstr(&ep, "api/files?path=") != AC_OK ||
             ac_url_encode(&ep, path ? path : ".", 1) != AC_OK) {
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
  } else {
    memset(&call, 0, sizeof call);
    call.op = "list files";
    call.method = "GET";
    call.endpoint = ac_buf_str(&ep);
    call.timeout_ms = j->c->request_timeout_ms;
    call.max_body = j->c->max_response;
    rc = ac_job_send_dp(j, &call, err);
  }
  ac_buf_free(&ep);
  if (rc != AC_OK)
    return ac_job_abandon(j, ac_job_file_error(j, job_path(j), rc, err));
  *out = j;
  return AC_OK;
}

/* ---------------------------------------------------------------------- */
/* The blocking forms                                                      */

#define BLOCKING(s, start_call, take)                                     \
  do {                                                                    \
    ac_engine *e_;                                                        \
    ac_job *j = NULL;                                                     \
    enum ac_code rc_;                                                     \
    if ((e_ = ac_client_engine_get((s)->c, err)) == NULL)                 \
      return err != NULL ? err->code : AC_ENOMEM;                         \
    rc_ = start_call;                                                     \
    if (rc_ == AC_OK) {                                                   \
      rc_ = ac_job_finish_blocking(j, err);                               \
      take;                                                               \
      ac_job_free(j);                                                     \
    }                                                                     \
    ac_client_engine_put((s)->c, e_);                                     \
    return rc_;                                                           \
  } while (0)

enum ac_code ac_session_write_file(ac_session *s, const char *remote_path,
                                   const void *data, size_t len,
                                   struct ac_error *err) {
  if (s == NULL)
    return ac_error_set(err, AC_EINVAL, "write file: NULL argument");
  BLOCKING(s, ac_start_write_file(e_, s, remote_path, data, len, NULL, &j,
                                  err), (void)0);
}

enum ac_code ac_session_read_file(ac_session *s, const char *remote_path,
                                  size_t max_bytes, char **data, size_t *len,
                                  struct ac_error *err) {
  *data = NULL;
  *len = 0;
  if (s == NULL)
    return ac_error_set(err, AC_EINVAL, "read file: NULL argument");
  BLOCKING(s, ac_start_read_file(e_, s, remote_path, max_bytes, NULL, &j,
                                 err),
           if (rc_ == AC_OK) *data = ac_job_take_data(j, len));
}

enum ac_code ac_session_list_files(ac_session *s, const char *path,
                                   struct ac_file_list *out,
                                   struct ac_error *err) {
  memset(out, 0, sizeof *out);
  if (s == NULL)
    return ac_error_set(err, AC_EINVAL, "list files: session is NULL");
  BLOCKING(s, ac_start_list_files(e_, s, path, NULL, &j, err),
           if (rc_ == AC_OK) ac_job_take_files(j, out));
}

enum ac_code ac_session_upload_file(ac_session *s, const char *local_path,
                                    const char *remote_path,
                                    struct ac_error *err) {
  if (s == NULL)
    return ac_error_set(err, AC_EINVAL, "upload file: NULL argument");
  BLOCKING(s, ac_start_upload_file(e_, s, local_path, remote_path, NULL,
                                   &j, err), (void)0);
}

enum ac_code ac_session_download_file(ac_session *s, const char *remote_path,
                                      const char *local_path,
                                      struct ac_error *err) {
  if (s == NULL)
    return ac_error_set(err, AC_EINVAL, "download file: NULL argument");
  BLOCKING(s, ac_start_download_file(e_, s, remote_path, local_path, NULL,
                                     &j, err), (void)0);
}

enum ac_code ac_session_ext(ac_session *s, const struct ac_ext_call *call,
                            char **json, struct ac_error *err) {
  *json = NULL;
  if (s == NULL)
    return ac_error_set(err, AC_EINVAL, "session is NULL");
  BLOCKING(s, ac_start_ext(e_, s, call, NULL, &j, err),
           if (ac_job_json(j) != NULL) *json = strdup(ac_job_json(j)));
}
