/*
** mcp_tool_files.c -- write_file, read_file, list_files (sandbox files)
** and upload_file, download_file (host files, only inside --files-dir).
*/
#include "mcp_toolkit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_DEFAULT (1u << 20)
#define READ_MAX (32u << 20)

static const char *const write_keys[] = {
  "content", "remote_path", "session_id", "session_reuse", "encoding", NULL
};
static const char *const read_keys[] = {
  "remote_path", "session_id", "session_reuse", "max_bytes", NULL
};
static const char *const list_keys[] = {
  "path", "session_id", "session_reuse", NULL
};
static const char *const upload_keys[] = {
  "local_path", "remote_path", "session_id", "session_reuse", NULL
};
static const char *const download_keys[] = {
  "remote_path", "local_path", "session_id", "session_reuse", NULL
};

/* One file operation on session sid: fills payload (and image content in
** *extra) on success. */
typedef enum ac_code (*file_op)(const struct mcp_tools_ctx *ctx,
                                const char *sid, void *ud, json_t *payload,
                                json_t **extra, struct ac_error *err);

/* Runs op under the session rules: once more on a re-created session
** when the given one is gone. */
static json_t *with_plan(const struct mcp_tools_ctx *ctx, json_t *args,
                         file_op op, void *ud) {
  struct mcp_plan plan;
  struct ac_error err;
  json_t *payload, *extra = NULL, *res;
  enum ac_code rc;

  if ((res = mcp_plan_begin(&plan, ctx, args)) != NULL)
    return res;
  payload = json_object();
  for (;;) {
    rc = op(ctx, plan.id, ud, payload, &extra, &err);
    if (rc == AC_OK || !mcp_plan_recover(&plan, &err))
      break;
    json_object_clear(payload);
  }
  if (rc != AC_OK) {
    json_decref(payload);
    json_decref(extra);
    res = mcp_result_error(&err, plan.id);
    mcp_plan_end(&plan, NULL);
    return res;
  }
  mcp_plan_end(&plan, payload);
  return mcp_result(payload, extra, 0);
}

static json_t *invalid(const char *msg) {
  return mcp_result(json_pack("{s:s, s:s}", "error", msg, "code", "EINVAL"),
                    NULL, 1);
}

/* ---- write_file ---- */

struct write_args {
  const char *path;
  const void *data;
  size_t len;
};

static enum ac_code do_write(const struct mcp_tools_ctx *ctx,
                             const char *sid, void *ud, json_t *payload,
                             json_t **extra, struct ac_error *err) {
  struct write_args *w = ud;
  enum ac_code rc = mcp_backend_write(ctx->backend, sid, w->path, w->data,
                                      w->len, err);
  (void)extra;
  json_object_set_new(payload, "remote_path", json_string(w->path));
  json_object_set_new(payload, "status", json_string("ok"));
  json_object_set_new(payload, "bytes", json_integer((json_int_t)w->len));
  return rc;
}

json_t *mcp_tool_write_file(const struct mcp_tools_ctx *ctx, json_t *args) {
  const char *content, *encoding = "utf-8";
  struct write_args w;
  struct mcp_argerr why;
  unsigned char *bytes = NULL;
  json_t *res;

  if (!mcp_arg_known(args, write_keys, &why) ||
      !mcp_arg_string(args, "content", 1, &content, &why) ||
      !mcp_arg_string(args, "remote_path", 1, &w.path, &why) ||
      !mcp_arg_string(args, "encoding", 0, &encoding, &why))
    return mcp_result_argerr(&why);
  w.data = content;
  w.len = strlen(content);
  if (!strcmp(encoding, "base64")) {
    if (!mcp_unbase64(content, &bytes, &w.len))
      return invalid("invalid arguments: 'content' is not valid base64");
    w.data = bytes;
  } else if (strcmp(encoding, "utf-8") != 0) {
    return invalid("invalid arguments: 'encoding' must be \"utf-8\" or "
                   "\"base64\"");
  }
  res = with_plan(ctx, args, do_write, &w);
  free(bytes);
  return res;
}

/* ---- read_file ---- */

struct read_args {
  const char *path;
  size_t max;
};

static enum ac_code do_read(const struct mcp_tools_ctx *ctx,
                            const char *sid, void *ud, json_t *payload,
                            json_t **extra, struct ac_error *err) {
  struct read_args *r = ud;
  char *data = NULL;
  size_t len = 0;
  enum ac_code rc = mcp_backend_read(ctx->backend, sid, r->path, r->max,
                                     &data, &len, err);
  json_t *text;

  if (rc != AC_OK)
    return rc;
  json_object_set_new(payload, "remote_path", json_string(r->path));
  json_object_set_new(payload, "size", json_integer((json_int_t)len));
  if (mcp_is_png(data, len)) {
    /* an image the model can look at */
    json_object_set_new(payload, "encoding", json_string("image/png"));
    *extra = json_pack("[{s:s, s:o, s:s}]", "type", "image", "data",
                       mcp_base64(data, len), "mimeType", "image/png");
  } else if (memchr(data, '\0', len) == NULL &&
             (text = json_stringn(data, len)) != NULL) {
    json_object_set_new(payload, "encoding", json_string("utf-8"));
    json_object_set_new(payload, "content", text);
  } else {
    json_object_set_new(payload, "encoding", json_string("base64"));
    json_object_set_new(payload, "content", mcp_base64(data, len));
  }
  free(data);
  return AC_OK;
}

json_t *mcp_tool_read_file(const struct mcp_tools_ctx *ctx, json_t *args) {
  struct read_args r;
  struct mcp_argerr why;
  double max = READ_DEFAULT;

  if (!mcp_arg_known(args, read_keys, &why) ||
      !mcp_arg_string(args, "remote_path", 1, &r.path, &why) ||
      !mcp_arg_number(args, "max_bytes", 1, READ_MAX, &max, &why))
    return mcp_result_argerr(&why);
  r.max = (size_t)max;
  return with_plan(ctx, args, do_read, &r);
}

/* ---- list_files ---- */

static enum ac_code do_list(const struct mcp_tools_ctx *ctx,
                            const char *sid, void *ud, json_t *payload,
                            json_t **extra, struct ac_error *err) {
  const char *path = ud;
  json_t *files;
  enum ac_code rc = mcp_backend_list(ctx->backend, sid, path, &files, err);
  (void)extra;
  if (rc != AC_OK)
    return rc;
  json_object_set_new(payload, "path", json_string(path));
  json_object_set_new(payload, "entries", files);
  return AC_OK;
}

json_t *mcp_tool_list_files(const struct mcp_tools_ctx *ctx, json_t *args) {
  const char *path = ".";
  struct mcp_argerr why;
  if (!mcp_arg_known(args, list_keys, &why) ||
      !mcp_arg_string(args, "path", 0, &path, &why))
    return mcp_result_argerr(&why);
  return with_plan(ctx, args, do_list, (void *)path);
}

/* ---- host files ---- */

struct host_args {
  const char *local, *remote;
  char proc[320];             /* /proc/self/fd/N[/name]: the confined file */
};

static json_t *host_off(void) {
  return mcp_result(json_pack("{s:s, s:s}", "error", "host file access is "
    "off: start the server with --files-dir DIR to upload and download "
    "files inside DIR", "code", "EACCESS"), NULL, 1);
}

static enum ac_code do_upload(const struct mcp_tools_ctx *ctx,
                              const char *sid, void *ud, json_t *payload,
                              json_t **extra, struct ac_error *err) {
  struct host_args *h = ud;
  (void)extra;
  json_object_set_new(payload, "local_path", json_string(h->local));
  json_object_set_new(payload, "remote_path", json_string(h->remote));
  json_object_set_new(payload, "status", json_string("ok"));
  return mcp_backend_upload(ctx->backend, sid, h->proc, h->remote, err);
}

json_t *mcp_tool_upload_file(const struct mcp_tools_ctx *ctx, json_t *args) {
  struct host_args h;
  struct mcp_argerr why;
  struct ac_error err;
  json_t *res;
  int fd;

  if (ctx->hostdir == NULL)
    return host_off();
  if (!mcp_arg_known(args, upload_keys, &why) ||
      !mcp_arg_string(args, "local_path", 1, &h.local, &why) ||
      !mcp_arg_string(args, "remote_path", 1, &h.remote, &why))
    return mcp_result_argerr(&why);
  /* Opened confined once; the upload reads that very file through its
  ** descriptor, so nothing can be swapped in between. */
  fd = mcp_hostdir_open_read(ctx->hostdir, h.local, &err);
  if (fd < 0)
    return mcp_result_error(&err, NULL);
  snprintf(h.proc, sizeof h.proc, "/proc/self/fd/%d", fd);
  res = with_plan(ctx, args, do_upload, &h);
  close(fd);
  return res;
}

static enum ac_code do_download(const struct mcp_tools_ctx *ctx,
                                const char *sid, void *ud, json_t *payload,
                                json_t **extra, struct ac_error *err) {
  struct host_args *h = ud;
  (void)extra;
  json_object_set_new(payload, "remote_path", json_string(h->remote));
  json_object_set_new(payload, "local_path", json_string(h->local));
  json_object_set_new(payload, "status", json_string("ok"));
  return mcp_backend_download(ctx->backend, sid, h->remote, h->proc, err);
}

json_t *mcp_tool_download_file(const struct mcp_tools_ctx *ctx,
                               json_t *args) {
  struct host_args h;
  struct mcp_argerr why;
  struct ac_error err;
  char name[256];
  json_t *res;
  int dfd;

  if (ctx->hostdir == NULL)
    return host_off();
  if (!mcp_arg_known(args, download_keys, &why) ||
      !mcp_arg_string(args, "remote_path", 1, &h.remote, &why) ||
      !mcp_arg_string(args, "local_path", 1, &h.local, &why))
    return mcp_result_argerr(&why);
  /* The library writes a temporary file in the (confined) directory and
  ** renames it over the name, so a symlink there is replaced, not
  ** followed, and a failed download leaves nothing. */
  dfd = mcp_hostdir_open_parent(ctx->hostdir, h.local, name, sizeof name,
                                &err);
  if (dfd < 0)
    return mcp_result_error(&err, NULL);
  /* fits: a name longer than 255 bytes was refused as no file name */
  snprintf(h.proc, sizeof h.proc, "/proc/self/fd/%d/%s", dfd, name);
  res = with_plan(ctx, args, do_download, &h);
  close(dfd);
  return res;
}
