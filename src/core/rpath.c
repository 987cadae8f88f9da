/*
** rpath.c -- what a remote path names, one rule for every operation
** (write, read, upload, download, list and the file extensions):
**
**   - a relative path is relative to /workspace;
**   - an absolute path inside the session's files (/workspace, /tmp,
**     /home/sandbox: what the local runtime's file API serves) is that
**     path;
**   - anything else, and a relative path whose ".." climbs out of
**     /workspace, is refused here, before a request is sent, with one
**     error (AC_EACCESS) that the caller prefixes with the operation, the
**     path and the session.
**
** The rule is checked on the lexically cleaned path (Go's path.Clean,
** as the local runtime and PicoD clean it). What is sent stays what the
** SDK sends: this only decides whether to send.
*/
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const trees[] = { "/workspace", "/tmp", "/home/sandbox" };

#define WORKSPACE "/workspace"

/* Go's path.Clean of in, written to out (strlen(in) + 2 bytes). A
** relative result keeps the ".." components that climb above its start. */
static void clean(const char *in, char *out) {
  size_t n = strlen(in), r = 0, w = 0, floor = 0;
  int rooted = in[0] == '/';
  if (rooted) {
    out[w++] = '/';
    r = floor = 1;
  }
  while (r < n) {
    if (in[r] == '/') {
      r++;
    } else if (in[r] == '.' && (r + 1 == n || in[r + 1] == '/')) {
      r++;
    } else if (in[r] == '.' && in[r + 1] == '.' &&
               (r + 2 == n || in[r + 2] == '/')) {
      r += 2;
      if (w > floor) {                /* drop the last component */
        w--;
        while (w > floor && out[w] != '/')
          w--;
      } else if (!rooted) {           /* nothing to cancel: it climbs */
        if (w > 0)
          out[w++] = '/';
        out[w++] = '.';
        out[w++] = '.';
        floor = w;
      }                               /* rooted: ".." of "/" is "/" */
    } else {
      if (w != (size_t)rooted)
        out[w++] = '/';
      while (r < n && in[r] != '/')
        out[w++] = in[r++];
    }
  }
  if (w == 0)
    out[w++] = '.';
  out[w] = '\0';
}

static int in_trees(const char *abs) {
  for (size_t i = 0; i < sizeof trees / sizeof trees[0]; i++) {
    size_t tl = strlen(trees[i]);
    if (strncmp(abs, trees[i], tl) == 0 &&
        (abs[tl] == '\0' || abs[tl] == '/'))
      return 1;
  }
  return 0;
}

enum ac_code ac_rpath_resolve(const char *path, char **abs,
                              struct ac_error *err) {
  size_t n;
  char *tmp, *out;
  if (abs != NULL)
    *abs = NULL;
  if (path == NULL || path[0] == '\0')
    return ac_error_set(err, AC_EINVAL, "the path is empty");
  n = strlen(path);
  tmp = malloc(n + 2);
  out = tmp ? malloc(n + sizeof WORKSPACE + 2) : NULL;
  if (out == NULL) {
    free(tmp);
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  }
  clean(path, tmp);
  if (tmp[0] == '/')
    memcpy(out, tmp, strlen(tmp) + 1);
  else if (strcmp(tmp, ".") == 0)
    memcpy(out, WORKSPACE, sizeof WORKSPACE);
  else if (strcmp(tmp, "..") == 0 || strncmp(tmp, "../", 3) == 0)
    out[0] = '\0';                    /* climbs out of /workspace */
  else
    snprintf(out, n + sizeof WORKSPACE + 2, WORKSPACE "/%s", tmp);
  free(tmp);
  if (out[0] == '\0' || !in_trees(out)) {
    free(out);
    return ac_error_set(err, AC_EACCESS, "access denied: the path is "
                        "outside the session's files (relative paths are "
                        "under /workspace; absolute ones must be in "
                        "/workspace, /tmp or /home/sandbox)");
  }
  if (abs != NULL)
    *abs = out;
  else
    free(out);
  return AC_OK;
}

/* Whether the local runtime would read the SDK's form of a relative path
** ("api/files/<rel>") as an absolute one: it takes a first component
** "workspace", "tmp" or "home" as the tree of that name, because the SDK
** drops the '/' of "/workspace/x". rel is the cleaned path. */
static int ambiguous_in_url(const char *rel) {
  static const char *const names[] = { "workspace", "tmp", "home" };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    size_t k = strlen(names[i]);
    if (strncmp(rel, names[i], k) == 0 && (rel[k] == '/' || rel[k] == '\0'))
      return 1;
  }
  return 0;
}

enum ac_code ac_url_file_endpoint(struct ac_buf *b, const char *path,
                                  int local, struct ac_error *err) {
  char *abs = NULL;
  enum ac_code rc = ac_rpath_resolve(path, &abs, err);
  if (rc != AC_OK || abs == NULL)     /* AC_OK always gives abs */
    return rc != AC_OK ? rc : ac_error_set(err, AC_ENOMEM, "out of memory");
  if (ac_buf_addstr(b, "api/files/") != AC_OK) {
    free(abs);
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  }
  /* To the local runtime the absolute path after a second '/' says what
  ** is meant; a cluster, and a server not known to be local, get the
  ** SDK's bytes. */
  if (local && path[0] != '/' && strlen(abs) > sizeof WORKSPACE &&
      ambiguous_in_url(abs + sizeof WORKSPACE)) {
    rc = ac_buf_addstr(b, "/") == AC_OK ? AC_OK
       : ac_error_set(err, AC_ENOMEM, "out of memory");
    if (rc == AC_OK)
      rc = ac_url_remote_path(b, abs, err);
  } else {
    rc = ac_url_remote_path(b, path, err);
  }
  free(abs);
  return rc;
}
