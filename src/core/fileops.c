/*
** fileops.c -- the small file calls: write_file (POST api/files, JSON with
** base64 content), read_file (GET api/files/<path> into memory) and
** list_files (GET api/files?path=). Streaming upload and download are in
** files.c.
*/
#include "internal.h"

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

enum ac_code ac_session_write_file(ac_session *s, const char *remote_path,
                                   const void *data, size_t len,
                                   struct ac_error *err) {
  enum ac_code rc;
  struct ac_buf body;
  struct ac_dp_call call;
  struct ac_http_resp resp;

  if (s == NULL || remote_path == NULL || (data == NULL && len > 0))
    return ac_error_set(err, AC_EINVAL, "write file: NULL argument");
  ac_buf_init(&body, 0);
  ac_http_resp_init(&resp);
  rc = write_body(remote_path, data, len, &body, err);
  if (rc != AC_OK)
    goto out;
  memset(&call, 0, sizeof call);
  call.op = "write file";
  call.method = "POST";
  call.endpoint = "api/files";
  call.json = ac_buf_str(&body);
  call.json_len = body.len;
  call.timeout_ms = s->c->request_timeout_ms;
  call.max_body = s->c->max_response;
  rc = ac_dp_request(s, &call, &resp, err);
out:
  ac_http_resp_free(&resp);
  ac_buf_free(&body);
  return rc;
}

enum ac_code ac_session_read_file(ac_session *s, const char *remote_path,
                                  size_t max_bytes, char **data, size_t *len,
                                  struct ac_error *err) {
  enum ac_code rc;
  struct ac_buf ep;
  struct ac_dp_call call;
  struct ac_http_resp resp;

  *data = NULL;
  *len = 0;
  if (s == NULL || remote_path == NULL)
    return ac_error_set(err, AC_EINVAL, "read file: NULL argument");
  ac_buf_init(&ep, 0);
  ac_http_resp_init(&resp);
  rc = ac_url_file_endpoint(&ep, remote_path, err);
  if (rc != AC_OK)
    goto out;
  memset(&call, 0, sizeof call);
  call.op = "read file";
  call.method = "GET";
  call.endpoint = ac_buf_str(&ep);
  call.timeout_ms = s->c->request_timeout_ms;
  call.max_body = max_bytes ? max_bytes : s->c->max_response;
  rc = ac_dp_request(s, &call, &resp, err);
  if (rc != AC_OK)
    goto out;
  *data = ac_buf_steal(&resp.body, len);
  if (*data == NULL)
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
out:
  ac_http_resp_free(&resp);
  ac_buf_free(&ep);
  return rc;
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
    fi->size = json_is_integer(size) ? json_integer_value(size)
             : json_is_real(size) ? (long long)json_real_value(size) : 0;
    fi->is_dir = json_is_true(json_object_get(e, "is_dir"));
  }
  return AC_OK;
}

enum ac_code ac_session_list_files(ac_session *s, const char *path,
                                   struct ac_file_list *out,
                                   struct ac_error *err) {
  enum ac_code rc;
  struct ac_buf ep;
  struct ac_dp_call call;
  struct ac_http_resp resp;
  json_t *j = NULL, *files;
  json_error_t jerr;

  memset(out, 0, sizeof *out);
  if (s == NULL)
    return ac_error_set(err, AC_EINVAL, "list files: session is NULL");
  ac_buf_init(&ep, 0);
  ac_http_resp_init(&resp);
  if (ac_buf_addstr(&ep, "api/files?path=") != AC_OK ||
      ac_url_encode(&ep, path ? path : ".", 1) != AC_OK) {
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    goto out;
  }
  memset(&call, 0, sizeof call);
  call.op = "list files";
  call.method = "GET";
  call.endpoint = ac_buf_str(&ep);
  call.timeout_ms = s->c->request_timeout_ms;
  call.max_body = s->c->max_response;
  rc = ac_dp_request(s, &call, &resp, err);
  if (rc != AC_OK)
    goto out;
  j = json_loadb(ac_buf_str(&resp.body), resp.body.len, 0, &jerr);
  if (!json_is_object(j)) {
    rc = ac_error_set(err, AC_EPROTO, "list files: malformed JSON response");
    goto out;
  }
  files = json_object_get(j, "files");
  if (files != NULL && !json_is_null(files) && !json_is_array(files)) {
    rc = ac_error_set(err, AC_EPROTO, "list files: \"files\" is not an "
                      "array");
    goto out;
  }
  if (json_is_array(files)) {
    rc = parse_files(files, out, err);
    if (rc == AC_OK)
      out->json = json_dumps(files, JSON_COMPACT | JSON_PRESERVE_ORDER);
  } else {
    out->json = strdup("[]");
  }
  if (rc == AC_OK && out->json == NULL)
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
out:
  if (rc != AC_OK)
    ac_file_list_free(out);
  json_decref(j);
  ac_http_resp_free(&resp);
  ac_buf_free(&ep);
  return rc;
}
