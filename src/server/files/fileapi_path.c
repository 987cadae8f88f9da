/*
** fileapi_path.c -- lexical cleaning and mapping of client paths.
**
** Nothing here touches the filesystem. The result only says which name
** below the box root to look up; the lookup itself (openat2 IN_ROOT) is
** what keeps symlinks inside the session.
*/
#include "fileapi_int.h"

#include <string.h>

/* The session trees, as sandbox paths; the box root holds them at the
** same names without the leading '/'. */
static const char *const trees[] = { "/workspace", "/tmp", "/home/sandbox" };

/* Go's path.Clean, written into out (which must hold strlen(in) + 2).
** A relative result may start with ".." components: the caller decides
** what that means. Sets *longname when a component exceeds NAME_MAX.
** Returns the length of out. */
static size_t clean(const char *in, char *out, int *longname) {
  size_t n = strlen(in), r = 0, w = 0, dotdot = 0;
  int rooted = n > 0 && in[0] == '/';

  *longname = 0;
  if (rooted) {
    out[w++] = '/';
    r = dotdot = 1;
  }
  while (r < n) {
    if (in[r] == '/') {
      r++;
    } else if (in[r] == '.' && (r + 1 == n || in[r + 1] == '/')) {
      r++;
    } else if (in[r] == '.' && in[r + 1] == '.' &&
               (r + 2 == n || in[r + 2] == '/')) {
      r += 2;
      if (w > dotdot) {
        /* Drop the last component we wrote. */
        w--;
        while (w > dotdot && out[w] != '/')
          w--;
      } else if (!rooted) {
        /* Nothing left to cancel: keep the ".." (it escapes). */
        if (w > 0)
          out[w++] = '/';
        out[w++] = '.';
        out[w++] = '.';
        dotdot = w;
      }
      /* Rooted: ".." at the root stays at the root, like Go. */
    } else {
      size_t start;
      if ((rooted && w != 1) || (!rooted && w != 0))
        out[w++] = '/';
      start = r;
      while (r < n && in[r] != '/')
        out[w++] = in[r++];
      if (r - start > FAPI_NAME_MAX)
        *longname = 1;
    }
  }
  if (w == 0)
    out[w++] = '.';
  out[w] = '\0';
  return w;
}

int fapi__path_in_tree(const char *abs, size_t *treelen) {
  for (size_t i = 0; i < sizeof trees / sizeof trees[0]; i++) {
    size_t tl = strlen(trees[i]);
    if (strncmp(abs, trees[i], tl) == 0 &&
        (abs[tl] == '\0' || abs[tl] == '/')) {
      if (treelen)
        *treelen = tl - 1;
      return 1;
    }
  }
  return 0;
}

enum ac_code fapi__path_parse(const char *client, struct fapi_path *p,
                              struct ac_error *err) {
  enum ac_code rc = AC_OK;
  /* Cleaning never lengthens a path by more than the leading '/'. */
  char tmp[FAPI_PATH_MAX + 2];
  size_t n;
  int longname;

  /* a failed parse leaves an empty path, never stale bytes */
  p->abs[0] = '\0';
  p->len = p->treelen = 0;
  if (client == NULL)
    client = "";
  if (strlen(client) > FAPI_PATH_MAX) {
    rc = ac_error_set(err, AC_EINVAL, "path is too long (over %d bytes)",
                      FAPI_PATH_MAX);
    goto out;
  }
  n = clean(client, tmp, &longname);
  if (longname) {
    rc = ac_error_set(err, AC_EINVAL,
                      "path has a component longer than %d bytes",
                      FAPI_NAME_MAX);
    goto out;
  }
  if (tmp[0] == '/') {
    memcpy(p->abs, tmp, n + 1);
    p->len = n;
  } else if (strcmp(tmp, "..") == 0 || strncmp(tmp, "../", 3) == 0) {
    rc = ac_error_set(err, AC_EACCESS, "access denied: path '%s' is "
                      "outside the session's workspace", client);
    goto out;
  } else if (strcmp(tmp, ".") == 0) {
    memcpy(p->abs, "/workspace", sizeof "/workspace");
    p->len = sizeof "/workspace" - 1;
  } else {
    /* "/workspace/" + tmp must still fit what the kernel accepts. */
    if (n + sizeof "/workspace/" - 1 > FAPI_PATH_MAX + 1) {
      rc = ac_error_set(err, AC_EINVAL, "path is too long (over %d bytes)",
                        FAPI_PATH_MAX);
      goto out;
    }
    memcpy(p->abs, "/workspace/", sizeof "/workspace/" - 1);
    memcpy(p->abs + sizeof "/workspace/" - 1, tmp, n + 1);
    p->len = n + sizeof "/workspace/" - 1;
  }
  if (!fapi__path_in_tree(p->abs, &p->treelen)) {
    rc = ac_error_set(err, AC_EACCESS, "access denied: path '%s' is "
                      "outside the session's workspace", client);
    goto out;
  }
out:
  return rc;
}

enum ac_code fapi_map_path(const char *client_path, char *out, size_t outsz,
                           struct ac_error *err) {
  enum ac_code rc = AC_OK;
  struct fapi_path p;

  rc = fapi__path_parse(client_path, &p, err);
  if (rc)
    goto out;
  if (out == NULL || p.len > outsz) {
    rc = ac_error_set(err, AC_EINVAL, "path is too long for the buffer");
    goto out;
  }
  memcpy(out, p.abs + 1, p.len);      /* len - 1 bytes and the NUL */
out:
  return rc;
}

int fapi__path_report(const char *abs, char *out, size_t outsz) {
  const char *src = abs;
  size_t n;

  if (strcmp(abs, "/workspace") == 0)
    src = ".";
  else if (strncmp(abs, "/workspace/", sizeof "/workspace/" - 1) == 0)
    src = abs + sizeof "/workspace/" - 1;
  n = strlen(src);
  if (n >= outsz)
    return -1;
  memcpy(out, src, n + 1);
  return 0;
}

void fapi__info_fill(struct fapi_info *info, const char *abs,
                     const struct stat *st) {
  const char *base = strrchr(abs, '/');
  size_t n;

  base = base ? base + 1 : abs;
  if (fapi__path_report(abs, info->path, sizeof info->path) != 0)
    info->path[0] = '\0';
  n = strlen(base);
  if (n >= sizeof info->name)
    n = sizeof info->name - 1;
  memcpy(info->name, base, n);
  info->name[n] = '\0';
  info->size = (long long)st->st_size;
  info->mode = st->st_mode;
  info->mtime = st->st_mtim;
}
