/*
** fileapi.c -- upload (streaming write), download (open for reading) and
** mkdir -p below a session's box root.
**
** Every lookup starts at the box root fd with openat2(RESOLVE_IN_ROOT |
** RESOLVE_NO_MAGICLINKS): a symlink planted by sandboxed code ("/etc",
** "../../..", "/proc/self/root/...") resolves as it would inside the box,
** never on the host. Directories are created one component at a time with
** mkdirat() in a directory fd, and files are written unnamed (O_TMPFILE)
** and then linked at the target, or, when a file is there already, linked
** under a temporary name in the box's staging directory (FAPI_STAGE_DIR,
** which the sandbox cannot see) and renamed over the target. The last
** component is never followed: a symlink at the target is replaced, not
** written through, and no temporary name ever appears in the session's
** trees.
*/
#include "fileapi_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

struct fapi_writer {
  struct fapi_root root;
  int dirfd;                  /* O_PATH fd of the target's directory */
  int stagefd;                /* O_PATH fd of the staging directory, or -1
                                 (none, or on another filesystem) */
  int tmpat;                  /* the directory fd tmpname lives in */
  int fd;                     /* the temporary file, O_RDWR */
  mode_t mode;                /* for a new file */
  int failed;                 /* a data call failed: never commit */
  int anon;                   /* fd is an O_TMPFILE: no name until commit */
  char tmpname[sizeof FAPI_TMP_PREFIX + 16];  /* "" when no name exists */
  const char *name;           /* last component, points into path.abs */
  struct fapi_path path;
};

/* One directory component below dirfd, no symlink followed, no "..". */
static int open_child_dir(int dirfd, const char *name) {
  return fapi__openat2(dirfd, name, O_PATH | O_DIRECTORY, 0,
                       RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
}

/* Opens (O_PATH) the directory rel[0..end) below the root, creating what
** is missing like mkdir -p. The tree itself (workspace, tmp, home/sandbox)
** is never created. Existing symlinks on the way are followed the way the
** sandbox would see them (IN_ROOT from the box root); components we create
** are opened without following anything, so a symlink swapped in by a
** racing sandbox is not used either. */
static enum ac_code open_dirs(const struct fapi_root *root,
                              const struct fapi_path *p, size_t end,
                              const char *client, int *out,
                              struct ac_error *err) {
  enum ac_code rc = AC_OK;
  char buf[FAPI_PATH_MAX + 1];
  size_t pos;
  int cur = -1, next = -1;

  *out = -1;
  memcpy(buf, p->abs + 1, end);
  buf[end] = '\0';
  /* The common case: everything exists already. */
  cur = fapi__open_in_root(root->rootfd, buf, O_PATH | O_DIRECTORY);
  if (cur >= 0)
    goto out;
  if (errno != ENOENT)
    goto fail;
  buf[p->treelen] = '\0';
  cur = fapi__open_in_root(root->rootfd, buf, O_PATH | O_DIRECTORY);
  if (cur < 0)
    goto fail;
  /* buf is rel[0..end) with a '\0' where the walk is; each step puts the
  ** '/' back and cuts after the next component. */
  for (pos = p->treelen; pos < end;) {
    size_t start = pos + 1;
    int tries;

    buf[pos] = '/';
    for (pos = start; pos < end && buf[pos] != '/'; pos++)
      ;
    buf[pos] = '\0';
    for (tries = 0; tries < 8; tries++) {
      next = open_child_dir(cur, buf + start);
      if (next >= 0)
        break;
      if (errno == ELOOP) {
        /* An existing symlink: resolve the prefix up to and including it
        ** from the box root, as the sandbox would. */
        next = fapi__open_in_root(root->rootfd, buf, O_PATH | O_DIRECTORY);
        if (next < 0 && errno == ENOENT) {
          rc = ac_error_set(err, AC_EINVAL, "Failed to create directory: "
                            "a symbolic link in '%s' points nowhere",
                            client);
          goto out;
        }
        break;
      }
      if (errno != ENOENT)
        break;
      /* Missing: create it. EEXIST means a racing creator won; look it
      ** up again either way. The mode is 0755 less the process umask,
      ** as with PicoD's os.MkdirAll. */
      if (mkdirat(cur, buf + start, 0755) != 0 && errno != EEXIST)
        break;
    }
    if (next < 0) {
      if (tries == 8)
        errno = ESTALE;
      goto fail;
    }
    close(cur);
    cur = next;
  }
  goto out;
fail:
  if (errno == ENOTDIR)
    rc = ac_error_set(err, AC_EINVAL, "Failed to create directory: a "
                      "component of '%s' is not a directory", client);
  else if (errno == ENOENT)
    rc = ac_error_set(err, AC_ENOTFOUND, "Directory not found");
  else
    rc = fapi__errno(err, errno, "Directory", client);
out:
  if (rc && cur >= 0) {
    close(cur);
    cur = -1;
  }
  *out = cur;
  return rc;
}

/* Re-opens the file behind an O_PATH fd for real I/O. Going through
** /proc/self/fd opens exactly the inode we checked, so nothing can be
** swapped in between the check and the open. Without /proc, the path is
** looked up again and must lead to the same inode. The permission check
** happens here, with the calling thread's (session) credentials. */
static int reopen(int rootfd, const char *rel, int pathfd,
                  const struct stat *st, int flags) {
  char proc[40];
  struct stat st2;
  int fd;

  snprintf(proc, sizeof proc, "/proc/self/fd/%d", pathfd);
  do {
    fd = open(proc, flags | O_CLOEXEC | O_NOCTTY);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0 && errno == ENOENT)
    fd = fapi__open_in_root(rootfd, rel, flags | O_NOCTTY);
  if (fd < 0)
    return -1;
  if (fstat(fd, &st2) != 0 || st2.st_dev != st->st_dev ||
      st2.st_ino != st->st_ino) {
    close(fd);
    errno = ESTALE;
    return -1;
  }
  return fd;
}

/* The sandbox path of what fd really is (after symlinks), for FileInfo:
** PicoD reports the resolved file. Falls back to the requested path when
** the kernel's name for fd is not below the box root in a session tree
** (deleted, moved, or in the root's own directories). */
static void resolved_abs(int rootfd, int fd, const struct stat *st,
                         const char *req, char *abs, size_t abssz) {
  char proc[40], rp[FAPI_PATH_MAX + 1], fp[2 * FAPI_PATH_MAX + 2];
  ssize_t rl, fl;
  const char *sub = NULL;
  size_t n = strlen(req);

  if (n >= abssz)
    n = abssz - 1;
  memcpy(abs, req, n);
  abs[n] = '\0';
  if (st->st_nlink == 0)
    return;
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", rootfd);
  rl = readlink(proc, rp, sizeof rp);
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  fl = readlink(proc, fp, sizeof fp - 1);
  if (rl <= 0 || (size_t)rl >= sizeof rp || fl <= 0 ||
      (size_t)fl >= sizeof fp - 1)
    return;
  fp[fl] = '\0';
  if (rl == 1 && rp[0] == '/')
    sub = fp;
  else if (fl > rl && memcmp(fp, rp, (size_t)rl) == 0 && fp[rl] == '/')
    sub = fp + rl;
  if (sub && fapi__path_in_tree(sub, NULL) && strlen(sub) < abssz)
    memcpy(abs, sub, strlen(sub) + 1);
}

enum ac_code fapi_open_read(const struct fapi_root *root, const char *path,
                            int *fd, struct fapi_info *info,
                            struct ac_error *err) {
  enum ac_code rc = AC_OK;
  struct fapi_creds cr;
  struct fapi_path p;
  struct stat st;
  char abs[sizeof p.abs];
  int pfd = -1, rfd = -1, fl;

  *fd = -1;
  fapi__creds_init(&cr);
  rc = fapi__path_parse(path, &p, err);
  if (rc)
    goto out;
  rc = fapi__creds_enter(root, &cr, err);
  if (rc)
    goto out;
  /* O_PATH: a FIFO, socket or device is looked at, never opened. */
  pfd = fapi__open_in_root(root->rootfd, p.abs + 1, O_PATH);
  if (pfd < 0 || fstat(pfd, &st) != 0) {
    rc = fapi__errno(err, errno, "File", path);
    goto out;
  }
  if (S_ISDIR(st.st_mode)) {
    rc = ac_error_set(err, AC_EINVAL, "Path is a directory, not a file");
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    rc = ac_error_set(err, AC_EINVAL, "Path is not a regular file (a FIFO, "
                      "socket or device cannot be downloaded)");
    goto out;
  }
  rfd = reopen(root->rootfd, p.abs + 1, pfd, &st, O_RDONLY | O_NONBLOCK);
  if (rfd < 0) {
    rc = fapi__errno(err, errno, "File", path);
    goto out;
  }
  /* O_NONBLOCK means nothing for a regular file; drop it so that the
  ** caller gets the plain O_RDONLY fd the header promises. */
  fl = fcntl(rfd, F_GETFL);
  if (fl < 0 || fcntl(rfd, F_SETFL, fl & ~O_NONBLOCK) != 0 ||
      fstat(rfd, &st) != 0) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "Failed to open '%s'", path);
    goto out;
  }
  if (info) {
    resolved_abs(root->rootfd, rfd, &st, p.abs, abs, sizeof abs);
    fapi__info_fill(info, abs, &st);
  }
  *fd = rfd;
  rfd = -1;
out:
  fapi__creds_leave(&cr);
  if (pfd >= 0)
    close(pfd);
  if (rfd >= 0)
    close(rfd);
  return rc;
}

enum ac_code fapi_mkdirs(const struct fapi_root *root, const char *path,
                         struct ac_error *err) {
  enum ac_code rc = AC_OK;
  struct fapi_creds cr;
  struct fapi_path p;
  int dfd = -1;

  fapi__creds_init(&cr);
  rc = fapi__path_parse(path, &p, err);
  if (rc)
    goto out;
  rc = fapi__creds_enter(root, &cr, err);
  if (rc)
    goto out;
  rc = open_dirs(root, &p, p.len - 1, path ? path : "", &dfd, err);
out:
  fapi__creds_leave(&cr);
  if (dfd >= 0)
    close(dfd);
  return rc;
}

/* 1 when the directories behind the fds a and b are on one filesystem. */
static int same_fs(int a, int b) {
  struct stat sa, sb;
  return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev;
}

/* A fresh name for the temporary file. Uniqueness comes from O_EXCL; the
** randomness only makes collisions (and guessing) unlikely. */
static void tmp_name(char *buf, size_t bufsz) {
  static const char abc[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  unsigned char rnd[12];
  size_t n = sizeof FAPI_TMP_PREFIX - 1;

  if (getrandom(rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd) {
    struct timespec ts;
    unsigned long long x;
    static unsigned long long counter;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    x = ((unsigned long long)ts.tv_nsec * 0x9E3779B97F4A7C15ULL) ^
        ((unsigned long long)getpid() << 32) ^
        __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
    for (size_t i = 0; i < sizeof rnd; i++)
      rnd[i] = (unsigned char)(x >> (i % 8 * 8));
  }
  memcpy(buf, FAPI_TMP_PREFIX, n);
  for (size_t i = 0; i < sizeof rnd && n + 1 < bufsz; i++)
    buf[n++] = abc[rnd[i] % (sizeof abc - 1)];
  buf[n] = '\0';
}

enum ac_code fapi_write_begin(const struct fapi_root *root, const char *path,
                              mode_t mode, struct fapi_writer **w,
                              struct ac_error *err) {
  enum ac_code rc = AC_OK;
  struct fapi_creds cr;
  struct fapi_writer *wr = NULL;
  struct stat st;
  char *slash;

  *w = NULL;
  fapi__creds_init(&cr);
  if (path == NULL || path[0] == '\0') {
    rc = ac_error_set(err, AC_EINVAL, "path is required");
    goto out;
  }
  wr = calloc(1, sizeof *wr);
  if (wr == NULL) {
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    goto out;
  }
  wr->root = *root;
  wr->dirfd = wr->stagefd = wr->tmpat = wr->fd = -1;
  /* Like a umask of 022, whatever the server's own umask is. */
  wr->mode = mode & 0777 & ~(mode_t)022;
  rc = fapi__path_parse(path, &wr->path, err);
  if (rc)
    goto out;
  if (wr->path.len - 1 == wr->path.treelen) {
    rc = ac_error_set(err, AC_EINVAL, "Path is a directory, not a file");
    goto out;
  }
  slash = strrchr(wr->path.abs, '/');
  wr->name = slash + 1;
  /* With the server's own credentials: the session cannot search the
  ** staging directory's parent, and that is what hides it. */
  wr->stagefd = fapi__open_stage(root->rootfd, O_PATH);
  rc = fapi__creds_enter(root, &cr, err);
  if (rc)
    goto out;
  rc = open_dirs(root, &wr->path, (size_t)(slash - wr->path.abs) - 1, path,
                 &wr->dirfd, err);
  if (rc)
    goto out;
  /* Fail early, before the caller streams a body, when the target is a
  ** directory. commit checks again. */
  if (fstatat(wr->dirfd, wr->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISDIR(st.st_mode)) {
      rc = ac_error_set(err, AC_EINVAL, "Path is a directory, not a file");
      goto out;
    }
  } else if (errno != ENOENT) {
    rc = fapi__errno(err, errno, "Directory", path);
    goto out;
  }
  /* A rename never crosses filesystems: a staging directory elsewhere
  ** (a test's tmpfs over a tree) is no use for this target. */
  if (wr->stagefd >= 0 && !same_fs(wr->stagefd, wr->dirfd)) {
    close(wr->stagefd);
    wr->stagefd = -1;
  }
  wr->tmpat = wr->stagefd >= 0 ? wr->stagefd : wr->dirfd;
  /* An unnamed file first: sandboxed code can neither see nor forge it,
  ** and a server killed mid-upload leaves nothing behind (the kernel
  ** frees it). Named temporary files only where O_TMPFILE is missing,
  ** and then in the staging directory when there is one. */
  wr->fd = fapi__openat2(wr->dirfd, ".", O_RDWR | O_TMPFILE, 0600,
                         RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
  if (wr->fd >= 0) {
    wr->anon = 1;
    *w = wr;
    wr = NULL;
    goto out;
  }
  for (int tries = 0; tries < 16; tries++) {
    tmp_name(wr->tmpname, sizeof wr->tmpname);
    /* O_EXCL never follows a symlink; 0600 until commit sets the mode. */
    wr->fd = fapi__openat2(wr->tmpat, wr->tmpname,
                           O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0600,
                           RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
    if (wr->fd >= 0 || errno != EEXIST)
      break;
  }
  if (wr->fd < 0) {
    rc = fapi__errno(err, errno, "Directory", path);
    goto out;
  }
  *w = wr;
  wr = NULL;
out:
  fapi__creds_leave(&cr);
  if (wr) {
    if (wr->dirfd >= 0)
      close(wr->dirfd);
    if (wr->stagefd >= 0)
      close(wr->stagefd);
    free(wr);
  }
  return rc;
}

enum ac_code fapi_write_data(struct fapi_writer *w, const void *data,
                             size_t len, struct ac_error *err) {
  enum ac_code rc = AC_OK;
  struct fapi_creds cr;
  const char *p = data;

  fapi__creds_init(&cr);
  if (w->failed) {
    rc = ac_error_set(err, AC_EINVAL, "upload already failed");
    goto out;
  }
  /* Writing to an open fd checks no permission, but the disk quota is
  ** charged now, and root's CAP_SYS_RESOURCE would bypass it. */
  rc = fapi__creds_enter(&w->root, &cr, err);
  if (rc)
    goto out;
  while (len > 0) {
    ssize_t n = write(w->fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = fapi__errno(err, errno, "File", w->path.abs);
      goto out;
    }
    if (n == 0) {
      rc = fapi__errno(err, ENOSPC, "File", w->path.abs);
      goto out;
    }
    p += n;
    len -= (size_t)n;
  }
out:
  if (rc)
    w->failed = 1;
  fapi__creds_leave(&cr);
  return rc;
}

/* Links the unnamed file w->fd under a fresh temporary name in the
** directory fd at; the name goes to w->tmpname, at to w->tmpat. */
static int anon_link_tmp(struct fapi_writer *w, const char *proc, int at) {
  for (int tries = 0; tries < 16; tries++) {
    tmp_name(w->tmpname, sizeof w->tmpname);
    if (linkat(AT_FDCWD, proc, at, w->tmpname, AT_SYMLINK_FOLLOW) == 0) {
      w->tmpat = at;
      return 0;
    }
    if (errno != EEXIST)
      break;
  }
  w->tmpname[0] = '\0';
  return -1;
}

/* Gives the unnamed file w->fd a name: name itself in its directory when
** it is free (*done = 1), else a fresh temporary name (w->tmpname in
** w->tmpat) that the caller renames over the target (*done = 0). The
** temporary name is in the staging directory, which the sandbox cannot
** see; only without one (or when a mount in between makes the link
** cross filesystems) is it next to the target, for the length of two
** calls. */
static enum ac_code anon_link(struct fapi_writer *w, const char *name,
                              int *done, struct ac_error *err) {
  char proc[40];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", w->fd);
  *done = 0;
  if (linkat(AT_FDCWD, proc, w->dirfd, name, AT_SYMLINK_FOLLOW) == 0) {
    *done = 1;
    return AC_OK;
  }
  if (errno != EEXIST)
    return fapi__errno(err, errno, "File", w->path.abs);
  if (w->stagefd >= 0) {
    if (anon_link_tmp(w, proc, w->stagefd) == 0)
      return AC_OK;
    if (errno != EXDEV)
      return fapi__errno(err, errno, "File", w->path.abs);
  }
  if (anon_link_tmp(w, proc, w->dirfd) == 0)
    return AC_OK;
  return fapi__errno(err, errno, "File", w->path.abs);
}

/* Closes and frees w; removes the temporary file unless keep. */
static void writer_free(struct fapi_writer *w, int keep) {
  if (!keep && w->tmpat >= 0 && w->tmpname[0])
    unlinkat(w->tmpat, w->tmpname, 0);
  if (w->fd >= 0)
    close(w->fd);
  if (w->dirfd >= 0)
    close(w->dirfd);
  if (w->stagefd >= 0)
    close(w->stagefd);
  free(w);
}

enum ac_code fapi_write_commit(struct fapi_writer *w, struct fapi_info *info,
                               struct ac_error *err) {
  enum ac_code rc = AC_OK;
  struct fapi_creds cr;
  struct stat st;
  mode_t mode = w->mode;
  int renamed = 0;

  rc = fapi__creds_enter(&w->root, &cr, err);
  if (rc)
    goto out;
  if (w->failed) {
    /* A partial file must never replace the target. */
    rc = ac_error_set(err, AC_EINVAL, "upload already failed");
    goto out;
  }
  if (fstatat(w->dirfd, w->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISDIR(st.st_mode)) {
      rc = ac_error_set(err, AC_EINVAL, "Path is a directory, not a file");
      goto out;
    }
    /* Overwriting keeps the file's permissions, as PicoD's truncating
    ** write does. setuid/setgid are not carried over: the kernel clears
    ** them on such a write too. A symlink or special file is replaced
    ** by a new file with the requested mode. */
    if (S_ISREG(st.st_mode))
      mode = st.st_mode & 01777;
  }
  if (fchmod(w->fd, mode) != 0) {
    rc = fapi__errno(err, errno, "File", w->path.abs);
    goto out;
  }
  if (w->anon) {
    /* A new target gets the file's first name directly; an existing one
    ** is replaced through a temporary name in the staging directory. */
    rc = anon_link(w, w->name, &renamed, err);
    if (rc || renamed)
      goto linked;
  }
  /* The target's last component is replaced, never followed (a symlink
  ** there is replaced itself). */
  if (renameat(w->tmpat, w->tmpname, w->dirfd, w->name) != 0) {
    if (errno == EISDIR || errno == ENOTEMPTY || errno == EEXIST)
      rc = ac_error_set(err, AC_EINVAL, "Path is a directory, not a file");
    else
      rc = fapi__errno(err, errno, "File", w->path.abs);
    goto out;
  }
  renamed = 1;
linked:
  if (rc)
    goto out;
  if (info) {
    if (fstat(w->fd, &st) != 0) {
      rc = ac_error_errno(err, AC_ESYSTEM, errno, "fstat");
      goto out;
    }
    fapi__info_fill(info, w->path.abs, &st);
  }
out:
  /* The temporary file goes away as the session: leave after unlinking. */
  writer_free(w, renamed);
  fapi__creds_leave(&cr);
  return rc;
}

void fapi_write_abort(struct fapi_writer *w) {
  struct fapi_creds cr;

  if (w == NULL)
    return;
  /* If switching fails we still remove our own temporary name: a
  ** single-component unlink in a directory fd we hold is safe as root. */
  fapi__creds_enter(&w->root, &cr, NULL);
  writer_free(w, 0);
  fapi__creds_leave(&cr);
}
