/*
** fileapi_walk.c -- the lookups of fapi__openat2 without openat2.
**
** Used only when the kernel (before Linux 5.6) or a tool such as valgrind
** answers openat2 with ENOSYS. It gives the same guarantees by walking one
** component at a time: every step is an openat() of a single name with
** O_NOFOLLOW in a directory fd, symlinks are read with readlinkat() and
** expanded by us, ".." never goes above the start directory (compared by
** device and inode), and no symlink on procfs is followed at all (stricter
** than RESOLVE_NO_MAGICLINKS, which only refuses the magic ones).
*/
#include "fileapi_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

#define MAX_LINKS 40                /* the kernel's MAXSYMLINKS */

static int force_walk;

void fapi__force_walk(int on) {
  __atomic_store_n(&force_walk, on, __ATOMIC_RELAXED);
}

int fapi__walk_forced(void) {
  return __atomic_load_n(&force_walk, __ATOMIC_RELAXED);
}

static int same_file(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Replaces *rest by target + "/" + *rest in buf (which holds the
** remaining path). Returns -1 with ENAMETOOLONG when it does not fit. */
static int expand(char *buf, size_t bufsz, const char *target, size_t tl,
                  const char *rest) {
  size_t rl = strlen(rest);

  if (tl + 1 + rl + 1 > bufsz) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memmove(buf + tl + 1, rest, rl + 1);
  memcpy(buf, target, tl);
  buf[tl] = '/';
  return 0;
}

int fapi__walk(int dirfd, const char *path, int flags, mode_t mode,
               unsigned long long resolve) {
  char buf[2 * (FAPI_PATH_MAX + 1)], target[FAPI_PATH_MAX + 1];
  struct stat top, st;
  struct statfs sfs;
  char *p = buf;
  int cur = -1, fd = -1, links = 0, saved;
  int in_root = (resolve & RESOLVE_IN_ROOT) != 0;
  int nosym = (resolve & RESOLVE_NO_SYMLINKS) != 0;

  if (strlen(path) >= sizeof buf / 2) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(buf, path, strlen(path) + 1);
  if (fstat(dirfd, &top) != 0)
    return -1;
  cur = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (cur < 0)
    return -1;
  if (*p == '/' && !in_root) {
    errno = EXDEV;
    goto fail;
  }
  for (;;) {
    char *name, *end;
    int last;
    ssize_t tl;

    while (*p == '/')
      p++;
    if (*p == '\0') {
      /* The path named the directory we are in ("", "/", "a/.."). */
      if (flags & O_PATH)
        return cur;
      fd = openat(cur, ".", flags | O_CLOEXEC | O_NOCTTY);
      saved = errno;
      close(cur);
      errno = saved;
      return fd;
    }
    name = p;
    end = strchr(p, '/');
    if (end) {
      *end = '\0';
      p = end + 1;
    } else {
      p = name + strlen(name);
    }
    last = *p == '\0' || strspn(p, "/") == strlen(p);
    if (strcmp(name, ".") == 0)
      continue;
    if (strcmp(name, "..") == 0) {
      if (fstat(cur, &st) != 0)
        goto fail;
      if (same_file(&st, &top)) {
        if (!in_root) {
          errno = EXDEV;
          goto fail;
        }
        continue;               /* ".." at the root stays there */
      }
      fd = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0)
        goto fail;
      close(cur);
      cur = fd;
      fd = -1;
      continue;
    }
    if (last && (flags & O_CREAT)) {
      /* Only our O_EXCL temporary files: O_NOFOLLOW keeps it one name. */
      fd = openat(cur, name, flags | O_NOFOLLOW | O_CLOEXEC, mode);
      goto done;
    }
    fd = openat(cur, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0)
      goto fail;
    if (S_ISLNK(st.st_mode)) {
      if (nosym || (last && (flags & O_NOFOLLOW)) || ++links > MAX_LINKS ||
          (fstatfs(fd, &sfs) == 0 && sfs.f_type == PROC_SUPER_MAGIC)) {
        errno = ELOOP;
        goto fail;
      }
      tl = readlinkat(fd, "", target, sizeof target);
      if (tl < 0)
        goto fail;
      if (tl == 0 || (size_t)tl >= sizeof target) {
        errno = tl == 0 ? ENOENT : ENAMETOOLONG;
        goto fail;
      }
      close(fd);
      fd = -1;
      if (expand(buf, sizeof buf, target, (size_t)tl, p) != 0)
        goto fail;
      p = buf;
      if (*p == '/') {
        if (!in_root) {
          errno = EXDEV;
          goto fail;
        }
        close(cur);
        cur = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
        if (cur < 0)
          goto fail;
      }
      continue;
    }
    if (!last) {
      if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        goto fail;
      }
      close(cur);
      cur = fd;
      fd = -1;
      continue;
    }
    /* The last component, not a symlink. */
    if ((flags & O_DIRECTORY) && !S_ISDIR(st.st_mode)) {
      errno = ENOTDIR;
      goto fail;
    }
    if (!(flags & O_PATH)) {
      /* Open the same name for real and make sure it is what we saw. */
      struct stat st2;
      int rfd = openat(cur, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
      if (rfd < 0)
        goto fail;
      if (fstat(rfd, &st2) != 0 || !same_file(&st, &st2)) {
        close(rfd);
        errno = ESTALE;
        goto fail;
      }
      close(fd);
      fd = rfd;
    }
    goto done;
  }
done:
  saved = errno;
  close(cur);
  errno = saved;
  return fd;
fail:
  saved = errno;
  if (fd >= 0)
    close(fd);
  if (cur >= 0)
    close(cur);
  errno = saved;
  return -1;
}
