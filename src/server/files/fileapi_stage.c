/*
** fileapi_stage.c -- the staging directory of uploads and the sweep of
** what crashed uploads leave behind.
**
** An upload that replaces a file needs a second name for a moment: the
** new file is linked under a temporary name, then renamed over the
** target. That name lives in the box's staging directory (FAPI_STAGE_DIR
** below the box root), never next to the target: the sandbox binds only
** the session trees, so it cannot see the staging directory, and its
** parent is the server's (0700), so the session uid cannot reach it
** through the file API either (a symlink to "/.agentcube" resolves below
** the box root and stops there). The directory itself is the session's,
** so that the link and the rename run with the session's credentials and
** the quota charges the session.
**
** A server killed between the link and the rename leaves a file in the
** staging directory; the sweep at box open removes it. Earlier versions
** wrote named temporary files next to the target; the sweep removes those
** once per box too (the box layout records that it was done).
*/
#include "fileapi_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* How deep the sweep for earlier versions' leftovers goes in each tree:
** one directory fd per level. */
#define SWEEP_DEPTH 64

/* The random part of the temporary names earlier versions used. */
#define LEGACY_RANDOM_LEN 12

int fapi__open_stage(int rootfd, int flags) {
  return fapi__openat2(rootfd, FAPI_STAGE_DIR,
                       flags | O_DIRECTORY | O_CLOEXEC, 0,
                       RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                       RESOLVE_NO_XDEV);
}

/* 1 when name is FAPI_TMP_PREFIX followed by exactly 12 letters and
** digits: the names earlier versions gave their temporary files. */
static int legacy_name(const char *name) {
  size_t n = sizeof FAPI_TMP_PREFIX - 1, i;
  if (strncmp(name, FAPI_TMP_PREFIX, n) != 0)
    return 0;
  for (i = 0; name[n + i]; i++) {
    char c = name[n + i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9')))
      return 0;
  }
  return i == LEGACY_RANDOM_LEN;
}

/* Opens dir (an O_RDONLY directory fd, consumed) for reading; NULL when
** that fails (the fd is closed then). */
static DIR *open_dir_stream(int fd) {
  DIR *d = fdopendir(fd);
  if (d == NULL)
    close(fd);
  return d;
}

/* Removes every entry of the staging directory (files; directories only
** when empty: nothing but our uploads is ever there). */
static void sweep_stage(int fd, unsigned long long *removed) {
  DIR *d = open_dir_stream(fd);
  struct dirent *e;
  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (unlinkat(dirfd(d), e->d_name, 0) == 0 ||
        (errno == EISDIR &&
         unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) == 0))
      (*removed)++;
  }
  closedir(d);
}

/* Removes earlier versions' temporary files below the directory fd (an
** O_RDONLY fd, consumed): regular files with the legacy name, mode 0600
** (commit set the real mode only after the rename), a single link and
** the session's owner. Never follows a symlink or leaves the filesystem. */
static void sweep_legacy(int fd, uid_t owner, int depth,
                         unsigned long long *removed) {
  struct stat top, st;
  struct dirent *e;
  DIR *d;

  if (fstat(fd, &top) != 0) {
    close(fd);
    return;
  }
  d = open_dir_stream(fd);
  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL) {
    int sub;
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (e->d_type != DT_DIR && e->d_type != DT_REG &&
        e->d_type != DT_UNKNOWN)
      continue;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
      continue;
    if (S_ISREG(st.st_mode)) {
      if (legacy_name(e->d_name) && (st.st_mode & 07777) == 0600 &&
          st.st_nlink == 1 && st.st_uid == owner &&
          unlinkat(dirfd(d), e->d_name, 0) == 0)
        (*removed)++;
      continue;
    }
    if (!S_ISDIR(st.st_mode) || st.st_dev != top.st_dev || depth <= 1)
      continue;
    sub = fapi__openat2(dirfd(d), e->d_name,
                        O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0,
                        RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                        RESOLVE_NO_XDEV);
    if (sub >= 0)
      sweep_legacy(sub, owner, depth - 1, removed);
  }
  closedir(d);
}

enum ac_code fapi_sweep(const struct fapi_root *root, int legacy,
                        unsigned long long *removed, struct ac_error *err) {
  static const char *const trees[] = { "workspace", "tmp", "home/sandbox" };
  unsigned long long n = 0;
  struct fapi_creds cr;
  enum ac_code rc;
  int stage;

  fapi__creds_init(&cr);
  /* Opened with the server's credentials (the session cannot search the
  ** parent), emptied with the session's (its files, its quota). */
  stage = fapi__open_stage(root->rootfd, O_RDONLY);
  rc = fapi__creds_enter(root, &cr, err);
  if (rc) {
    if (stage >= 0)
      close(stage);
    goto out;
  }
  if (stage >= 0)
    sweep_stage(stage, &n);
  for (size_t i = 0; legacy && i < sizeof trees / sizeof trees[0]; i++) {
    int fd = fapi__openat2(root->rootfd, trees[i],
                           O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0,
                           RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                           RESOLVE_NO_XDEV);
    if (fd >= 0)
      sweep_legacy(fd, geteuid() == 0 ? root->uid : geteuid(), SWEEP_DEPTH,
                   &n);
  }
out:
  fapi__creds_leave(&cr);
  if (removed)
    *removed = n;
  return rc;
}
