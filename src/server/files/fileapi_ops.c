/*
** fileapi_ops.c -- stat, remove, mkdir and rename below a session's box
** root (the local runtime's file operations).
**
** The same rules as uploads: the parent directory is looked up with
** openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) from the box root, as
** the session, and the last component is acted on in that directory fd
** without ever being followed (a symlink is stat'ed, removed or renamed
** itself, never what it points to). A recursive remove descends with
** O_NOFOLLOW directory fds, so a symlink planted in the tree is unlinked,
** not entered. The trees themselves (/workspace, /tmp, /home/sandbox) can
** be stat'ed but never removed, renamed or replaced.
*/
#include "fileapi_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define REMOVE_MAX_DEPTH 256

/* An entry: its parent directory (O_PATH, as the session) and its name. */
struct entry {
  struct fapi_path p;
  int dirfd;
  const char *name;           /* into p.abs; NULL for a tree itself */
};

static void entry_close(struct entry *e) {
  if (e->dirfd >= 0)
    close(e->dirfd);
  e->dirfd = -1;
}

/* Parses client and opens its parent directory. Call with the session's
** credentials in force. */
static enum ac_code entry_open(const struct fapi_root *root,
                               const char *client, struct entry *e,
                               struct ac_error *err) {
  enum ac_code rc;
  char *slash;
  char rel[FAPI_PATH_MAX + 1];

  e->dirfd = -1;
  e->name = NULL;
  if ((rc = fapi__path_parse(client, &e->p, err)) != AC_OK)
    return rc;
  if (e->p.abs[1 + e->p.treelen] == '\0') {
    /* The tree itself: its own fd stands for "the entry". */
    e->dirfd = fapi__open_in_root(root->rootfd, e->p.abs + 1,
                                  O_PATH | O_DIRECTORY);
    return e->dirfd < 0 ? fapi__errno(err, errno, "Directory", client)
                        : AC_OK;
  }
  snprintf(rel, sizeof rel, "%s", e->p.abs + 1);
  slash = strrchr(rel, '/');
  *slash = '\0';
  e->name = strrchr(e->p.abs, '/') + 1;
  e->dirfd = fapi__open_in_root(root->rootfd, rel, O_PATH | O_DIRECTORY);
  if (e->dirfd < 0)
    return fapi__errno(err, errno, "File", client);
  return AC_OK;
}

static int entry_stat(const struct entry *e, struct stat *st) {
  return e->name ? fstatat(e->dirfd, e->name, st, AT_SYMLINK_NOFOLLOW)
                 : fstatat(e->dirfd, "", st, AT_EMPTY_PATH);
}

enum ac_code fapi_stat(const struct fapi_root *root, const char *path,
                       struct fapi_info *info, struct ac_error *err) {
  struct fapi_creds cr;
  struct entry e = { .dirfd = -1 };
  struct stat st;
  enum ac_code rc;

  fapi__creds_init(&cr);
  if ((rc = fapi__creds_enter(root, &cr, err)) != AC_OK)
    goto out;
  if ((rc = entry_open(root, path, &e, err)) != AC_OK)
    goto out;
  if (entry_stat(&e, &st) != 0) {
    rc = fapi__errno(err, errno, "File", path);
    goto out;
  }
  fapi__info_fill(info, e.p.abs, &st);
out:
  entry_close(&e);
  fapi__creds_leave(&cr);
  return rc;
}

/* Removes what directory fd dfd holds, then counts it; recursion bounded
** by depth. */
static int remove_children(int dfd, unsigned depth, unsigned long long *n) {
  DIR *d;
  struct dirent *de;
  int ret = 0;

  if (depth > REMOVE_MAX_DEPTH) {
    errno = EMLINK;
    return -1;
  }
  if ((d = fdopendir(dfd)) == NULL) {
    close(dfd);
    return -1;
  }
  while (ret == 0 && (errno = 0, de = readdir(d)) != NULL) {
    struct stat st;
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
      continue;
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT)
        continue;
      ret = -1;
      break;
    }
    if (S_ISDIR(st.st_mode)) {
      int sub = openat(dirfd(d), de->d_name,
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0 || remove_children(sub, depth + 1, n) != 0 ||
          unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) != 0)
        ret = -1;
    } else if (unlinkat(dirfd(d), de->d_name, 0) != 0) {
      ret = errno == ENOENT ? 0 : -1;
      continue;
    }
    if (ret == 0) {
      (*n)++;
      /* The directory changed under us: start its listing again. */
      rewinddir(d);
    }
  }
  if (ret == 0 && errno != 0)
    ret = -1;
  {
    int e = errno;
    closedir(d);
    errno = e;
  }
  return ret;
}

enum ac_code fapi_remove(const struct fapi_root *root, const char *path,
                         int recursive, unsigned long long *removed,
                         struct ac_error *err) {
  struct fapi_creds cr;
  struct entry e = { .dirfd = -1 };
  struct stat st;
  enum ac_code rc;

  *removed = 0;
  fapi__creds_init(&cr);
  if ((rc = fapi__creds_enter(root, &cr, err)) != AC_OK)
    goto out;
  if ((rc = entry_open(root, path, &e, err)) != AC_OK)
    goto out;
  if (e.name == NULL) {
    rc = ac_error_set(err, AC_EACCESS, "access denied: '%s' is one of the "
                      "session's trees and cannot be removed", path);
    goto out;
  }
  if (fstatat(e.dirfd, e.name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    rc = fapi__errno(err, errno, "File", path);
    goto out;
  }
  if (S_ISDIR(st.st_mode)) {
    if (unlinkat(e.dirfd, e.name, AT_REMOVEDIR) == 0) {
      *removed = 1;
      goto out;
    }
    if (errno != ENOTEMPTY && errno != EEXIST) {
      rc = fapi__errno(err, errno, "Directory", path);
      goto out;
    }
    if (!recursive) {
      rc = ac_error_set(err, AC_EEXIST, "directory '%s' is not empty "
                        "(remove it with recursive)", path);
      goto out;
    }
    {
      /* The entry's fd is O_PATH: open the directory itself to read. */
      int dfd = openat(e.dirfd, e.name,
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (dfd < 0 || remove_children(dfd, 1, removed) != 0 ||
          unlinkat(e.dirfd, e.name, AT_REMOVEDIR) != 0) {
        rc = errno == EMLINK
          ? ac_error_set(err, AC_ELIMIT, "'%s' is nested more than %d "
                         "levels deep", path, REMOVE_MAX_DEPTH)
          : fapi__errno(err, errno, "File", path);
        goto out;
      }
      (*removed)++;
    }
  } else if (unlinkat(e.dirfd, e.name, 0) != 0) {
    rc = fapi__errno(err, errno, "File", path);
  } else {
    *removed = 1;
  }
out:
  entry_close(&e);
  fapi__creds_leave(&cr);
  return rc;
}

enum ac_code fapi_mkdir(const struct fapi_root *root, const char *path,
                        int parents, mode_t mode, struct fapi_info *info,
                        struct ac_error *err) {
  struct fapi_creds cr;
  struct entry e = { .dirfd = -1 };
  struct stat st;
  enum ac_code rc;

  fapi__creds_init(&cr);
  if (parents) {
    /* The parents only: the last component is judged below (an existing
    ** non-directory there is a conflict, not a bad path). */
    struct fapi_path p;
    if ((rc = fapi__path_parse(path, &p, err)) != AC_OK)
      return rc;
    if (p.abs[1 + p.treelen] != '\0') {
      *strrchr(p.abs, '/') = '\0';
      if ((rc = fapi_mkdirs(root, p.abs, err)) != AC_OK)
        return rc;
    }
  }
  if ((rc = fapi__creds_enter(root, &cr, err)) != AC_OK)
    goto out;
  if ((rc = entry_open(root, path, &e, err)) != AC_OK) {
    if (rc == AC_ENOTFOUND)
      ac_error_set(err, AC_ENOTFOUND, "Directory not found: a parent of "
                   "'%s' is missing (use parents)", path);
    goto out;
  }
  if (e.name == NULL || mkdirat(e.dirfd, e.name, mode & 0777) != 0) {
    if (e.name && errno != EEXIST) {
      rc = fapi__errno(err, errno, "Directory", path);
      goto out;
    }
    if (!parents) {
      rc = ac_error_set(err, AC_EEXIST, "'%s' already exists", path);
      goto out;
    }
  }
  if (entry_stat(&e, &st) != 0) {
    rc = fapi__errno(err, errno, "Directory", path);
    goto out;
  }
  if (!S_ISDIR(st.st_mode)) {
    rc = ac_error_set(err, AC_EEXIST, "'%s' exists and is not a directory",
                      path);
    goto out;
  }
  fapi__info_fill(info, e.p.abs, &st);
out:
  entry_close(&e);
  fapi__creds_leave(&cr);
  return rc;
}

enum ac_code fapi_rename(const struct fapi_root *root, const char *from,
                         const char *to, int overwrite,
                         struct fapi_info *info, struct ac_error *err) {
  struct fapi_creds cr;
  struct entry a = { .dirfd = -1 }, b = { .dirfd = -1 };
  struct stat st;
  enum ac_code rc;
  int r;

  fapi__creds_init(&cr);
  if ((rc = fapi__creds_enter(root, &cr, err)) != AC_OK)
    goto out;
  if ((rc = entry_open(root, from, &a, err)) != AC_OK ||
      (rc = entry_open(root, to, &b, err)) != AC_OK)
    goto out;
  if (a.name == NULL || b.name == NULL) {
    rc = ac_error_set(err, AC_EACCESS, "access denied: the session's trees "
                      "cannot be renamed or replaced");
    goto out;
  }
  if (fstatat(a.dirfd, a.name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    rc = fapi__errno(err, errno, "File", from);
    goto out;
  }
  /* Both last components in their directory fds: neither is followed. */
  r = renameat2(a.dirfd, a.name, b.dirfd, b.name,
                overwrite ? 0 : RENAME_NOREPLACE);
  if (r != 0) {
    if (errno == EEXIST || errno == ENOTEMPTY)
      rc = ac_error_set(err, AC_EEXIST, overwrite
                        ? "'%s' is a non-empty directory" :
                        "'%s' already exists (rename with overwrite)", to);
    else if (errno == EINVAL)
      rc = ac_error_set(err, AC_EINVAL, "cannot move '%s' into itself",
                        from);
    else
      rc = fapi__errno(err, errno, "File", to);
    goto out;
  }
  if (fstatat(b.dirfd, b.name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    rc = fapi__errno(err, errno, "File", to);
    goto out;
  }
  fapi__info_fill(info, b.p.abs, &st);
out:
  entry_close(&a);
  entry_close(&b);
  fapi__creds_leave(&cr);
  return rc;
}
