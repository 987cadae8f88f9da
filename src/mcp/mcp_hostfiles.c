/*
** mcp_hostfiles.c -- host files for upload_file/download_file, only inside
** the directory given with --files-dir.
**
** Every path is resolved by the kernel with openat2(RESOLVE_BENEATH |
** RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) from a descriptor of that
** directory, so "..", symlinks and absolute paths cannot lead out of it
** (the same confinement the server's file API gives sandbox paths). An
** absolute path is accepted when it names something inside the directory.
*/
#include "mcp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CONFINE (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | \
                 RESOLVE_NO_MAGICLINKS)

struct mcp_hostdir {
  int fd;
  char *real;                 /* realpath of the directory */
};

static int openat2_(int dirfd, const char *path, int flags, mode_t mode) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (unsigned long long)flags | O_CLOEXEC;
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = CONFINE;
  return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

enum ac_code mcp_hostdir_open(const char *dir, struct mcp_hostdir **out,
                              struct ac_error *err) {
  struct mcp_hostdir *d = calloc(1, sizeof *d);
  if (d == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  d->real = realpath(dir, NULL);
  d->fd = d->real ? open(d->real, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
  if (d->fd < 0) {
    enum ac_code rc = ac_error_errno(err, AC_ENOTFOUND, errno,
                                     "--files-dir %s", dir);
    free(d->real);
    free(d);
    return rc;
  }
  *out = d;
  return AC_OK;
}

void mcp_hostdir_close(struct mcp_hostdir *d) {
  if (d == NULL)
    return;
  close(d->fd);
  free(d->real);
  free(d);
}

/* The path relative to the directory, or NULL when an absolute path lies
** outside it. */
static const char *relative(struct mcp_hostdir *d, const char *path) {
  size_t n = strlen(d->real);
  if (path[0] != '/')
    return path;
  if (!strcmp(d->real, "/"))
    return path + 1;
  if (strncmp(path, d->real, n) != 0 || (path[n] != '/' && path[n] != '\0'))
    return NULL;
  path += n;
  while (*path == '/')
    path++;
  return *path ? path : ".";
}

/* The most of a path an error message shows: what went wrong must fit in
** the message after it. */
#define SHOWN 120

static enum ac_code refuse(struct ac_error *err, int e, const char *path) {
  if (e == EXDEV || e == ELOOP)
    return ac_error_set(err, AC_EACCESS, "%.*s: outside the files directory "
                        "(or through a symlink)", SHOWN, path);
  if (e == ENOENT)
    return ac_error_set(err, AC_ENOTFOUND, "%.*s: no such file in the files "
                        "directory", SHOWN, path);
  return ac_error_errno(err, AC_EIO, e, "%.*s", SHOWN, path);
}

int mcp_hostdir_open_read(struct mcp_hostdir *d, const char *path,
                          struct ac_error *err) {
  const char *rel = relative(d, path);
  struct stat st;
  int fd;

  if (rel == NULL) {
    refuse(err, EXDEV, path);
    return -1;
  }
  fd = openat2_(d->fd, rel, O_RDONLY | O_NOCTTY | O_NONBLOCK, 0);
  if (fd < 0) {
    refuse(err, errno, path);
    return -1;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ac_error_set(err, AC_EINVAL, "%.*s: not a regular file", SHOWN, path);
    close(fd);
    return -1;
  }
  return fd;
}

int mcp_hostdir_open_parent(struct mcp_hostdir *d, const char *path,
                            char *name, size_t size, struct ac_error *err) {
  const char *rel = relative(d, path), *slash;
  char *dir = NULL, *p, *next;
  int fd, sub;

  if (rel == NULL) {
    refuse(err, EXDEV, path);
    return -1;
  }
  slash = strrchr(rel, '/');
  if (snprintf(name, size, "%s", slash ? slash + 1 : rel) >= (int)size ||
      !*name || !strcmp(name, ".") || !strcmp(name, "..")) {
    ac_error_set(err, AC_EINVAL, "%.*s: not a file name", SHOWN, path);
    return -1;
  }
  fd = openat2_(d->fd, ".", O_PATH | O_DIRECTORY, 0);
  if (fd < 0 || slash == NULL)
    return fd < 0 ? (refuse(err, errno, path), -1) : fd;
  dir = strndup(rel, (size_t)(slash - rel));
  if (dir == NULL) {
    close(fd);
    ac_error_set(err, AC_ENOMEM, "out of memory");
    return -1;
  }
  /* One component at a time, creating what is missing, each step
  ** confined to the previous directory. */
  for (p = dir; p != NULL; p = next) {
    next = strchr(p, '/');
    if (next != NULL)
      *next++ = '\0';
    if (!*p || !strcmp(p, "."))
      continue;
    if (!strcmp(p, "..")) {
      errno = EXDEV;
      goto fail;
    }
    if (mkdirat(fd, p, 0755) != 0 && errno != EEXIST)
      goto fail;
    sub = openat2_(fd, p, O_PATH | O_DIRECTORY, 0);
    if (sub < 0)
      goto fail;
    close(fd);
    fd = sub;
  }
  free(dir);
  return fd;
fail:
  refuse(err, errno, path);
  close(fd);
  free(dir);
  return -1;
}
