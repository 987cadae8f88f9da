/*
** statedir.c -- the state directory is checked before anything in it is
** trusted (see statedir.h).
**
** Why: a root server reads its token there, deletes and rewrites files
** there. If another local user created the directory first (a predictable
** path under /tmp), or can write into it or into a directory above it,
** that user could plant a token the server accepts, or symlinks through
** which the server overwrites or deletes files elsewhere on the host.
*/
#include "statedir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The entries the server itself creates at the top of the directory. */
static const char *const known[] = {
  "token", "serve.json", "serve.lock", "serve.log", "sessions", "boxes",
  "uid-base", NULL,
};

/* "owned by uid 1001" / "writable by group" ...: what is wrong, or NULL. */
static const char *wrong_with(const struct stat *st, uid_t me,
                              int is_ancestor) {
  if (is_ancestor) {
    if (st->st_uid != 0 && st->st_uid != me)
      return "owned by another user";
    /* a sticky directory (/tmp) lets nobody rename our entry in it */
    if ((st->st_mode & 022) && !(st->st_mode & S_ISVTX))
      return "writable by other users";
    return NULL;
  }
  if (st->st_uid != me)
    return "owned by another user";
  if (st->st_mode & 022)
    return "writable by other users";
  return NULL;
}

static enum ac_code refuse(struct ac_error *err, const char *path,
                           const char *what, const struct stat *st) {
  return ac_error_set(err, AC_EACCESS,
                      "state directory %s is %s (owner uid %u, mode %04o); "
                      "it must belong to uid %u and be writable by it "
                      "alone", path, what, (unsigned)st->st_uid,
                      (unsigned)(st->st_mode & 07777), (unsigned)geteuid());
}

/* Every directory above dir (already resolved) must be safe too. */
static enum ac_code check_ancestors(const char *real, struct ac_error *err) {
  char buf[PATH_MAX];
  struct stat st;
  char *slash;

  snprintf(buf, sizeof buf, "%s", real);
  while ((slash = strrchr(buf, '/')) != NULL) {
    const char *why;
    if (slash == buf)
      slash[1] = '\0';
    else
      *slash = '\0';
    if (stat(buf, &st) != 0)
      return ac_error_errno(err, AC_ESYSTEM, errno, "cannot check %s", buf);
    if ((why = wrong_with(&st, geteuid(), 1)) != NULL)
      return ac_error_set(err, AC_EACCESS,
                          "state directory %s is inside %s, which is %s "
                          "(owner uid %u, mode %04o)", real, buf, why,
                          (unsigned)st.st_uid,
                          (unsigned)(st.st_mode & 07777));
    if (slash == buf)
      break;
  }
  return AC_OK;
}

/* Creates the missing directories of path: parents 0755, the last 0700. */
static enum ac_code create(const char *path, struct ac_error *err) {
  char buf[PATH_MAX];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
    return ac_error_set(err, AC_EINVAL, "state directory path too long");
  for (char *p = buf + 1; *p; p++) {
    if (*p == '/') {
      *p = '\0';
      if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return ac_error_errno(err, AC_ESYSTEM, errno, "cannot create %s",
                              buf);
      *p = '/';
    }
  }
  if (mkdir(buf, 0700) != 0 && errno != EEXIST)
    return ac_error_errno(err, AC_ESYSTEM, errno, "cannot create %s", buf);
  return AC_OK;
}

enum ac_code ac_statedir_prepare(const char *path, struct ac_error *err) {
  char real[PATH_MAX], entry[PATH_MAX + 64];
  struct stat st;
  const char *why;
  enum ac_code rc;
  size_t len = strlen(path);

  /* "dir/" would make lstat follow a symlink named dir */
  while (len > 1 && path[len - 1] == '/')
    len--;
  if (len == 0 || len >= sizeof real)
    return ac_error_set(err, AC_EINVAL, "invalid state directory '%s'",
                        path);
  memcpy(real, path, len);
  real[len] = '\0';
  if (lstat(real, &st) != 0) {
    if (errno != ENOENT)
      return ac_error_errno(err, AC_ESYSTEM, errno, "cannot check %s", real);
    if ((rc = create(real, err)) != AC_OK)
      return rc;
    if (lstat(real, &st) != 0)
      return ac_error_errno(err, AC_ESYSTEM, errno, "cannot check %s", real);
  }
  if (S_ISLNK(st.st_mode))
    return ac_error_set(err, AC_EACCESS, "state directory %s is a symbolic "
                        "link; give the real path", real);
  if (!S_ISDIR(st.st_mode))
    return ac_error_set(err, AC_EACCESS, "state directory %s is not a "
                        "directory", real);
  if ((why = wrong_with(&st, geteuid(), 0)) != NULL)
    return refuse(err, real, why, &st);
  {
    char resolved[PATH_MAX];
    if (realpath(real, resolved) == NULL)
      return ac_error_errno(err, AC_ESYSTEM, errno, "cannot resolve %s",
                            real);
    if ((rc = check_ancestors(resolved, err)) != AC_OK)
      return rc;
  }
  for (size_t i = 0; known[i]; i++) {
    snprintf(entry, sizeof entry, "%s/%s", real, known[i]);
    if (lstat(entry, &st) != 0)
      continue;
    if (S_ISLNK(st.st_mode))
      return ac_error_set(err, AC_EACCESS, "%s is a symbolic link; the "
                          "server never follows links in its state "
                          "directory: remove it", entry);
    if (st.st_uid != geteuid())
      return ac_error_set(err, AC_EACCESS, "%s is owned by uid %u, not by "
                          "the server's uid %u: remove it", entry,
                          (unsigned)st.st_uid, (unsigned)geteuid());
    if ((st.st_mode & 022) && !S_ISLNK(st.st_mode))
      return ac_error_set(err, AC_EACCESS, "%s is writable by other users "
                          "(mode %04o): remove it or chmod go-w", entry,
                          (unsigned)(st.st_mode & 07777));
  }
  return AC_OK;
}

int ac_statedir_open(const char *dir, const char *name, int flags,
                     mode_t mode) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return open(path, flags | O_NOFOLLOW | O_CLOEXEC, mode);
}
