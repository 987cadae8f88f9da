/*
** fileapi_sys.c -- acting as the session on the calling thread, openat2,
** and turning errno values into client-facing errors.
**
** Why per-thread credentials: the server is root and serves many sessions
** from several threads. Linux keeps credentials per thread; glibc's
** set*id() wrappers broadcast changes to every thread, but setfsuid and
** setfsgid do not, and raw setgroups/capset syscalls do not either. So a
** thread can act as one session on the filesystem for the length of one
** call without touching any other thread:
**   - fsuid/fsgid = the session's, so file permissions and ownership are
**     the session's and root's CAP_DAC_OVERRIDE & co. stop applying (the
**     kernel drops the filesystem capabilities when fsuid leaves 0);
**   - no supplementary groups, so root's group 0 opens no group-readable
**     file;
**   - no effective capabilities at all, so CAP_SYS_RESOURCE cannot bypass
**     disk quotas or reserved blocks. They come back from the permitted set
**     afterwards, which capset allows without any privilege.
*/
#include "fileapi_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

/* How far enter got, so that leave undoes exactly that. */
enum {
  ST_NONE, ST_GROUPS, ST_FSGID, ST_FSUID, ST_CAPS
};

static int caps_get(uint32_t eff[2], uint32_t perm[2], uint32_t inh[2]) {
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[2];

  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &hdr, data) != 0)
    return -1;
  for (int i = 0; i < 2; i++) {
    eff[i] = data[i].effective;
    perm[i] = data[i].permitted;
    inh[i] = data[i].inheritable;
  }
  return 0;
}

/* Sets this thread's effective set, keeping permitted and inheritable. */
static int caps_set_effective(const uint32_t eff[2]) {
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[2];
  uint32_t e[2], p[2], in[2];

  if (caps_get(e, p, in) != 0)
    return -1;
  for (int i = 0; i < 2; i++) {
    data[i].effective = eff[i];
    data[i].permitted = p[i];
    data[i].inheritable = in[i];
  }
  return (int)syscall(SYS_capset, &hdr, data);
}

enum ac_code fapi__creds_enter(const struct fapi_root *root,
                               struct fapi_creds *c,
                               struct ac_error *err) {
  enum ac_code rc = AC_OK;
  uint32_t perm[2], inh[2];
  static const uint32_t none[2] = { 0, 0 };
  int n;

  memset(c, 0, sizeof *c);
  c->groups = c->groups_buf;
  if (geteuid() != 0)
    goto out;                   /* nothing to give up */
  if (root->uid == 0 || root->gid == 0) {
    rc = ac_error_set(err, AC_ECONFIG, "file API: a root server must act as "
                      "the session's uid and gid, not as 0");
    goto out;
  }
  if (caps_get(c->cap_eff, perm, inh) != 0) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "file API: capget");
    goto out;
  }
  n = getgroups(0, NULL);
  if (n < 0) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "file API: getgroups");
    goto out;
  }
  if ((size_t)n > sizeof c->groups_buf / sizeof c->groups_buf[0]) {
    c->groups = malloc((size_t)n * sizeof *c->groups);
    if (c->groups == NULL) {
      c->groups = c->groups_buf;
      rc = ac_error_set(err, AC_ENOMEM, "out of memory");
      goto out;
    }
  }
  c->ngroups = getgroups(n, c->groups);
  if (c->ngroups < 0) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "file API: getgroups");
    goto out;
  }
  /* The raw syscall: glibc's setgroups() would change every thread. */
  if (syscall(SYS_setgroups, 0, NULL) != 0) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "file API: setgroups");
    goto out;
  }
  c->switched = ST_GROUPS;
  /* setfsgid/setfsuid report no errors; asking with an invalid id (-1)
  ** returns the current value, which is how we check the switch. */
  c->fsgid = setfsgid(root->gid);
  c->switched = ST_FSGID;
  if (setfsgid((gid_t)-1) != (int)root->gid) {
    rc = ac_error_set(err, AC_ESYSTEM, "file API: setfsgid(%u) failed",
                      (unsigned)root->gid);
    goto out;
  }
  c->fsuid = setfsuid(root->uid);
  c->switched = ST_FSUID;
  if (setfsuid((uid_t)-1) != (int)root->uid) {
    rc = ac_error_set(err, AC_ESYSTEM, "file API: setfsuid(%u) failed",
                      (unsigned)root->uid);
    goto out;
  }
  if (caps_set_effective(none) != 0) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "file API: capset");
    goto out;
  }
  c->switched = ST_CAPS;
out:
  if (rc)
    fapi__creds_leave(c);
  return rc;
}

void fapi__creds_leave(struct fapi_creds *c) {
  int saved = errno;

  /* Capabilities first: restoring groups needs CAP_SETGID back. */
  if (c->switched >= ST_CAPS)
    caps_set_effective(c->cap_eff);
  if (c->switched >= ST_FSUID)
    setfsuid((uid_t)c->fsuid);
  if (c->switched >= ST_FSGID)
    setfsgid((gid_t)c->fsgid);
  if (c->switched >= ST_GROUPS)
    syscall(SYS_setgroups, (size_t)c->ngroups, c->groups);
  c->switched = ST_NONE;
  if (c->groups != c->groups_buf)
    free(c->groups);
  c->groups = c->groups_buf;
  errno = saved;
}

int fapi__openat2(int dirfd, const char *path, int flags, mode_t mode,
                  unsigned long long resolve) {
  struct open_how how;
  long fd;

  memset(&how, 0, sizeof how);
  how.flags = (unsigned long long)(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = resolve;
  /* IN_ROOT and BENEATH lookups fail with EAGAIN when a rename races with
  ** a ".." step; the kernel asks us to retry. */
  for (int tries = 0; !fapi__walk_forced(); tries++) {
    fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    if (fd >= 0)
      return (int)fd;
    if (errno == EINTR || (errno == EAGAIN && tries < 64))
      continue;
    if (errno != ENOSYS)
      return -1;
    break;
  }
  return fapi__walk(dirfd, path, flags, mode, resolve);
}

int fapi__open_in_root(int rootfd, const char *rel, int flags) {
  return fapi__openat2(rootfd, rel, flags, 0,
                       RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
}

enum ac_code fapi__errno(struct ac_error *err, int errnum, const char *what,
                         const char *client) {
  switch (errnum) {
  case ENOENT:
  case ENOTDIR:
    return ac_error_set(err, AC_ENOTFOUND, "%s not found", what);
  case EACCES:
  case EPERM:
    return ac_error_set(err, AC_EACCESS, "access denied: permission denied "
                        "for '%s'", client);
  case EXDEV:
    return ac_error_set(err, AC_EACCESS, "access denied: path '%s' is "
                        "outside the session's workspace", client);
  case ELOOP:
    return ac_error_set(err, AC_EACCESS, "access denied: path '%s' has too "
                        "many levels of symbolic links or a /proc magic "
                        "link", client);
  case EROFS:
    return ac_error_set(err, AC_EACCESS, "access denied: '%s' is on a "
                        "read-only file system", client);
  case ENAMETOOLONG:
    return ac_error_set(err, AC_EINVAL, "path is too long");
  case EISDIR:
    return ac_error_set(err, AC_EINVAL, "Path is a directory, not a file");
  case ENOSPC:
    return ac_error_set(err, AC_ELIMIT, "no space left: the session's disk "
                        "is full");
  case EDQUOT:
    return ac_error_set(err, AC_ELIMIT, "disk quota exceeded: the session's "
                        "disk is full");
  case EFBIG:
    return ac_error_set(err, AC_ELIMIT, "file too large for the session's "
                        "file size limit");
  case EMLINK:
    return ac_error_set(err, AC_ELIMIT, "too many links or subdirectories "
                        "in a directory of '%s'", client);
  case ESTALE:
    return ac_error_set(err, AC_EBUSY, "'%s' changed while it was being "
                        "opened; try again", client);
  case ENOMEM:
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  default:
    return ac_error_errno(err, AC_ESYSTEM, errnum, "file operation on '%s' "
                          "failed", client);
  }
}
