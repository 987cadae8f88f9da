/*
** route_fs.c -- the local runtime's file operations: POST api/fs/remove,
** POST api/fs/mkdir, GET api/fs/stat, POST api/fs/rename (the wire
** contract is docs/extensions.md). They run on a worker, as the session,
** through fileapi's confinement.
*/
#include "reply.h"
#include "routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static enum MHD_Result reply_fs_error(struct req *r,
                                      const struct ac_error *err) {
  unsigned status;
  switch (err->code) {
  case AC_ENOTFOUND: status = 404; break;
  case AC_EEXIST: status = 409; break;
  case AC_EACCESS: case AC_EINVAL: status = 400; break;
  case AC_ELIMIT: status = 507; break;
  case AC_EBUSY: status = 503; break;
  default: status = 500; break;
  }
  return reply_error(r, FAM_PICOD, status, "%s", err->msg);
}

static const char *type_name(mode_t m) {
  return S_ISREG(m) ? "file" : S_ISDIR(m) ? "dir" : S_ISLNK(m) ? "symlink"
                                                               : "other";
}

static json_t *file_info(const struct fapi_info *fi) {
  char mode[24], mod[40];
  return json_pack("{s:s, s:I, s:s, s:s}", "path", fi->path,
                   "size", (json_int_t)fi->size,
                   "mode", fapi_mode_string(fi->mode, mode),
                   "modified", fapi_rfc3339(fi->mtime, mod));
}

/* The JSON object body, or NULL with a 400 queued. */
static json_t *object_body(struct req *r, enum MHD_Result *ret) {
  json_error_t jerr;
  json_t *body = r->body ? json_loadb(r->body, r->len, 0, &jerr) : NULL;
  if (!json_is_object(body)) {
    json_decref(body);
    *ret = r->body ? reply_error(r, FAM_PICOD, 400, "request body must be "
                                 "a JSON object")
                   : reply_error(r, FAM_PICOD, 400, "a JSON body is "
                                 "required");
    return NULL;
  }
  return body;
}

/* A string field that must be present and non-empty. */
static const char *want_path(json_t *body, const char *key) {
  json_t *v = json_object_get(body, key);
  return json_is_string(v) && *json_string_value(v) ? json_string_value(v)
                                                    : NULL;
}

/* A boolean field (absent or null: dflt); -1 when it is not a boolean. */
static int want_bool(json_t *body, const char *key, int dflt) {
  json_t *v = json_object_get(body, key);
  if (v == NULL || json_is_null(v))
    return dflt;
  return json_is_boolean(v) ? json_is_true(v) : -1;
}

static enum MHD_Result fs_remove(struct req *r) {
  enum MHD_Result ret;
  json_t *body = object_body(r, &ret);
  struct fapi_root root;
  struct ac_error err;
  unsigned long long n = 0;
  const char *path;
  int rec;

  if (body == NULL)
    return ret;
  path = want_path(body, "path");
  rec = want_bool(body, "recursive", 0);
  if (path == NULL)
    ret = reply_error(r, FAM_PICOD, 400, "path is required and must be a "
                      "non-empty string");
  else if (rec < 0)
    ret = reply_error(r, FAM_PICOD, 400, "recursive must be a boolean");
  else {
    req_fapi_root(r, &root);
    ret = fapi_remove(&root, path, rec, &n, &err) != AC_OK
      ? reply_fs_error(r, &err)
      : reply_json(r, 200, json_pack("{s:I}", "removed", (json_int_t)n));
  }
  json_decref(body);
  return ret;
}

static enum MHD_Result fs_mkdir(struct req *r) {
  enum MHD_Result ret;
  json_t *body = object_body(r, &ret), *mode;
  struct fapi_root root;
  struct fapi_info fi;
  struct ac_error err;
  const char *path;
  mode_t m = 0755;
  int parents;

  if (body == NULL)
    return ret;
  path = want_path(body, "path");
  parents = want_bool(body, "parents", 0);
  mode = json_object_get(body, "mode");
  if (json_is_string(mode) && *json_string_value(mode)) {
    char *end;
    unsigned long v = strtoul(json_string_value(mode), &end, 8);
    if (*end || v > 0777 || json_string_value(mode)[0] == '-')
      mode = json_true();   /* marks it invalid below */
    else
      m = (mode_t)v;
  }
  if (path == NULL)
    ret = reply_error(r, FAM_PICOD, 400, "path is required and must be a "
                      "non-empty string");
  else if (parents < 0)
    ret = reply_error(r, FAM_PICOD, 400, "parents must be a boolean");
  else if (mode && !json_is_null(mode) && !json_is_string(mode))
    ret = reply_error(r, FAM_PICOD, 400, "mode must be an octal string "
                      "such as \"0755\"");
  else {
    req_fapi_root(r, &root);
    ret = fapi_mkdir(&root, path, parents, m, &fi, &err) != AC_OK
      ? reply_fs_error(r, &err) : reply_json(r, 200, file_info(&fi));
  }
  json_decref(body);
  return ret;
}

static enum MHD_Result fs_rename(struct req *r) {
  enum MHD_Result ret;
  json_t *body = object_body(r, &ret);
  struct fapi_root root;
  struct fapi_info fi;
  struct ac_error err;
  const char *from, *to;
  int overwrite;

  if (body == NULL)
    return ret;
  from = want_path(body, "from");
  to = want_path(body, "to");
  overwrite = want_bool(body, "overwrite", 0);
  if (from == NULL || to == NULL)
    ret = reply_error(r, FAM_PICOD, 400, "from and to are required and "
                      "must be non-empty strings");
  else if (overwrite < 0)
    ret = reply_error(r, FAM_PICOD, 400, "overwrite must be a boolean");
  else {
    req_fapi_root(r, &root);
    ret = fapi_rename(&root, from, to, overwrite, &fi, &err) != AC_OK
      ? reply_fs_error(r, &err) : reply_json(r, 200, file_info(&fi));
  }
  json_decref(body);
  return ret;
}

static enum MHD_Result fs_stat(struct req *r) {
  const char *path = MHD_lookup_connection_value(r->conn,
                                                 MHD_GET_ARGUMENT_KIND,
                                                 "path");
  struct fapi_root root;
  struct fapi_info fi;
  struct ac_error err;
  char mode[24], mod[40];

  if (path == NULL || *path == '\0')
    return reply_error(r, FAM_PICOD, 400, "Missing 'path' query parameter");
  req_fapi_root(r, &root);
  if (fapi_stat(&root, path, &fi, &err) != AC_OK)
    return reply_fs_error(r, &err);
  return reply_json(r, 200, json_pack(
    "{s:s, s:s, s:I, s:s, s:s, s:s, s:b}", "path", fi.path, "name", fi.name,
    "size", (json_int_t)fi.size, "mode", fapi_mode_string(fi.mode, mode),
    "modified", fapi_rfc3339(fi.mtime, mod), "type", type_name(fi.mode),
    "is_dir", S_ISDIR(fi.mode)));
}

enum MHD_Result route_fs(struct req *r) {
  switch (r->op) {
  case OP_FS_REMOVE: return fs_remove(r);
  case OP_FS_MKDIR: return fs_mkdir(r);
  case OP_FS_RENAME: return fs_rename(r);
  case OP_FS_STAT: return fs_stat(r);
  default: break;
  }
  return reply_text(r, 404, "404 page not found");
}
