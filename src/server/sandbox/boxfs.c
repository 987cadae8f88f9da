/*
** boxfs.c -- a box's persistent filesystem: image, loop mount, publication
** under the runtime's directory, the session trees, and a removal that
** never follows links or leaves the filesystem. Layout in boxfs.h.
*/
#include "boxfs.h"
#include "fileapi.h"
#include "sandbox_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/loop.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#define BOX_INFO "box.info"
#define BOX_IMAGE "disk.img"
#define LOOP_MAJOR_NR 7
#define MIN_DISK_BYTES (2ULL << 20)

static void close_fds(struct boxfs *fs) {
  int *fds[] = { &fs->rootfd, &fs->wsfd, &fs->tmpfd, &fs->homefd };
  for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
    if (*fds[i] >= 0)
      close(*fds[i]);
    *fds[i] = -1;
  }
}

static void fs_free(struct boxfs *fs) {
  close_fds(fs);
  free(fs->dir);
  free(fs->root);
  free(fs->mnt_parent);
  fs->dir = fs->root = fs->mnt_parent = NULL;
}

/* Runs mkfs.ext4 on the image with an empty environment; its stderr goes
** to a memfd so that a failure can be reported. */
static enum ac_code run_mkfs(const char *mkfs, const char *img,
                             struct ac_error *err) {
  char *argv[] = { (char *)mkfs, "-q", "-F", "-m", "0", "-O", "^has_journal",
                   "-E", "root_owner=0:0,nodiscard", (char *)img, NULL };
  char *envp[] = { NULL };
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  sigset_t all, none;
  enum ac_code rc = AC_OK;
  int status, e, efd = memfd_create("mkfs-stderr", MFD_CLOEXEC);
  pid_t pid;

  if (efd < 0)
    return ac_error_errno(err, AC_ESYSTEM, errno, "box: memfd_create");
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, efd, 2);
  posix_spawnattr_init(&at);
  posix_spawnattr_setsigdefault(&at, &all);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF |
                           POSIX_SPAWN_SETSIGMASK);
  e = posix_spawn(&pid, mkfs, &fa, &at, argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  if (e) {
    rc = ac_error_errno(err, AC_ESYSTEM, e, "box: cannot run %s", mkfs);
    goto out;
  }
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      rc = ac_error_errno(err, AC_ESYSTEM, errno, "box: waitpid mkfs");
      goto out;
    }
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    char msg[160];
    ssize_t n = pread(efd, msg, sizeof msg - 1, 0);
    msg[n > 0 ? n : 0] = '\0';
    msg[strcspn(msg, "\n")] = '\0';
    rc = ac_error_set(err, AC_ESYSTEM, "box: mkfs.ext4 failed (status "
                      "%d): %s", status, msg);
  }
out:
  close(efd);
  return rc;
}

/* Attaches the image to a free loop device that detaches itself when the
** filesystem is unmounted (LO_FLAGS_AUTOCLEAR), and mounts it nosuid,nodev
** on root. Another process may grab the same free device between
** LOOP_CTL_GET_FREE and LOOP_CONFIGURE; then we retry. */
static enum ac_code mount_image(const char *img, const char *root,
                                struct ac_error *err) {
  enum ac_code rc = AC_OK;
  int ctl = -1, ifd = -1;

  ifd = open(img, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (ifd < 0)
    return ac_error_errno(err, AC_ESYSTEM, errno, "box: open %s", img);
  ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (ctl < 0) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "box: /dev/loop-control");
    goto out;
  }
  for (int attempt = 0;; attempt++) {
    struct loop_config cfg;
    char dev[32];
    int lfd, n = ioctl(ctl, LOOP_CTL_GET_FREE);
    if (n < 0) {
      rc = ac_error_errno(err, AC_ESYSTEM, errno, "box: LOOP_CTL_GET_FREE");
      goto out;
    }
    snprintf(dev, sizeof dev, "/dev/loop%d", n);
    lfd = open(dev, O_RDWR | O_CLOEXEC);
    if (lfd < 0) {
      rc = ac_error_errno(err, AC_ESYSTEM, errno, "box: open %s", dev);
      goto out;
    }
    memset(&cfg, 0, sizeof cfg);
    cfg.fd = (unsigned)ifd;
    cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    snprintf((char *)cfg.info.lo_file_name, sizeof cfg.info.lo_file_name,
             "%s", img);
    if (ioctl(lfd, LOOP_CONFIGURE, &cfg) < 0) {
      int e = errno;
      close(lfd);
      if (e == EBUSY && attempt < 64)
        continue;
      rc = ac_error_errno(err, AC_ESYSTEM, e, "box: LOOP_CONFIGURE %s", dev);
      goto out;
    }
    if (mount(dev, root, "ext4", MS_NOSUID | MS_NODEV, "") < 0) {
      rc = ac_error_errno(err, AC_ESYSTEM, errno, "box: mount %s on %s",
                          dev, root);
      ioctl(lfd, LOOP_CLR_FD, 0);
    }
    close(lfd);          /* the mount holds the device from here on */
    break;
  }
out:
  if (ctl >= 0)
    close(ctl);
  close(ifd);
  return rc;
}

/* 1 when something is mounted on root. A bind mount from the same
** filesystem has its parent's device number, so ask statx whether root is
** the root of a mount (kernel 5.8+); compare devices on older kernels. */
static int is_mountpoint(const char *parent, const char *root, dev_t *dev) {
  struct statx sx;
  struct stat sp;
  if (statx(AT_FDCWD, root, AT_SYMLINK_NOFOLLOW, STATX_TYPE, &sx) < 0 ||
      !S_ISDIR(sx.stx_mode))
    return 0;
  *dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
  if (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)
    return (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
  return stat(parent, &sp) == 0 && sp.st_dev != *dev;
}

/* 1 when device dev is a loop device backed by img. */
static int loop_backs(dev_t dev, const char *img) {
  char path[96], back[PATH_MAX + 16];
  long n;
  if (major(dev) != LOOP_MAJOR_NR)
    return 0;
  snprintf(path, sizeof path, "/sys/dev/block/%u:%u/loop/backing_file",
           major(dev), minor(dev));
  n = sbxu_read_file(path, back, sizeof back);
  if (n <= 0)
    return 0;
  back[strcspn(back, "\n")] = '\0';
  return strcmp(back, img) == 0;
}

/* Unmounts root (lazily when busy, e.g. a file API call still holds a
** file open) and, when it was published, removes the mount point. */
static void unpublish(const struct boxfs *fs) {
  dev_t dev;
  for (int i = 0; i < 8 && is_mountpoint(fs->mnt_parent, fs->root, &dev);
       i++) {
    if (umount2(fs->root, UMOUNT_NOFOLLOW) < 0 && errno == EBUSY)
      umount2(fs->root, UMOUNT_NOFOLLOW | MNT_DETACH);
  }
  if (fs->published)
    rmdir(fs->root);
}

/* A plain box's trees at <dir>/root, bind-mounted on the published root
** nosuid,nodev. */
static enum ac_code bind_plain(const struct boxfs *fs, struct ac_error *err) {
  char *src = sbxu_join(fs->dir, "root");
  enum ac_code rc = AC_OK;
  if (src == NULL)
    return ac_error_set(err, AC_ENOMEM, "box: out of memory");
  /* type is ignored for binds and remounts ("none" keeps checkers calm) */
  if (mount(src, fs->root, "none", MS_BIND, NULL) < 0)
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "box: bind %s on %s", src,
                        fs->root);
  else if (mount("none", fs->root, "none", MS_REMOUNT | MS_BIND | MS_NOSUID |
                 MS_NODEV, NULL) < 0)
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "box: remount %s",
                        fs->root);
  free(src);
  return rc;
}

/* 1 when the published root is a bind mount of <dir>/root. */
static int binds_plain(const struct boxfs *fs) {
  char *src = sbxu_join(fs->dir, "root");
  struct stat a, b;
  int same = src && stat(src, &a) == 0 && stat(fs->root, &b) == 0 &&
             a.st_dev == b.st_dev && a.st_ino == b.st_ino;
  free(src);
  return same;
}

/* Makes the trees reachable at fs->root: reuses what a killed server left
** mounted there, or mounts the image / binds the plain trees. */
static enum ac_code publish(struct boxfs *fs, struct ac_error *err) {
  enum ac_code rc = AC_OK;
  char *img = NULL;
  dev_t dev;

  if (!fs->published && !fs->image)
    return AC_OK;                        /* trees used in place */
  img = sbxu_join(fs->dir, BOX_IMAGE);
  if (img == NULL)
    return ac_error_set(err, AC_ENOMEM, "box: out of memory");
  if (fs->published && mkdir(fs->root, 0711) < 0 && errno != EEXIST) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "box: mkdir %s", fs->root);
    goto out;
  }
  if (is_mountpoint(fs->mnt_parent, fs->root, &dev)) {
    if (fs->image ? loop_backs(dev, img) : binds_plain(fs))
      goto out;                          /* still there after a crash */
    rc = ac_error_set(err, AC_EBUSY, "box: something else is mounted on "
                      "%s", fs->root);
    goto out;
  }
  if (fs->image)
    rc = mount_image(img, fs->root, err);
  else
    rc = bind_plain(fs, err);
out:
  free(img);
  return rc;
}

/* mkdirat that tolerates an existing directory (never a symlink). */
static int ensure_dir(int at, const char *name, mode_t mode, int chown_ids,
                      uid_t uid, gid_t gid) {
  struct stat st;
  if (mkdirat(at, name, mode) == 0) {
    if (fchmodat(at, name, mode, 0) < 0)
      return -1;
    if (chown_ids && fchownat(at, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
      return -1;
    return 0;
  }
  if (errno != EEXIST)
    return -1;
  if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return -1;
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return -1;
  }
  return 0;
}

/* Creates the session trees in root (idempotent). */
static enum ac_code prepare_tree(const char *root, int chown_ids, uid_t uid,
                                 gid_t gid, struct ac_error *err) {
  enum ac_code rc = AC_OK;
  int fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return ac_error_errno(err, AC_ESYSTEM, errno, "box: open %s", root);
  /* The tree root is reachable from the host (published under /run): only
  ** root and the session's group may traverse it, so no other host user
  ** reaches the session's tmp (1777 inside) or anything else in it. */
  if ((chown_ids ? fchown(fd, 0, gid) : 0) < 0 ||
      fchmod(fd, chown_ids ? 0710 : 0700) < 0 ||
      ensure_dir(fd, "workspace", 0700, chown_ids, uid, gid) < 0 ||
      ensure_dir(fd, "tmp", 01777, chown_ids, uid, gid) < 0 ||
      ensure_dir(fd, "home", 0711, 0, uid, gid) < 0 ||
      ensure_dir(fd, "home/sandbox", 0700, chown_ids, uid, gid) < 0 ||
      ensure_dir(fd, FAPI_STAGE_PARENT, 0700, 0, uid, gid) < 0 ||
      ensure_dir(fd, FAPI_STAGE_DIR, 0700, chown_ids, uid, gid) < 0)
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "box: preparing %s", root);
  close(fd);
  return rc;
}

/* The root fd and the fds of the three session trees. Opened by us below
** root, which the session uid cannot change. */
static enum ac_code open_rootfd(struct boxfs *fs, struct ac_error *err) {
  const int fl = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  fs->rootfd = open(fs->root, fl);
  if (fs->rootfd < 0)
    return ac_error_errno(err, AC_ESYSTEM, errno, "box: open %s", fs->root);
  fs->wsfd = openat(fs->rootfd, "workspace", fl);
  fs->tmpfd = openat(fs->rootfd, "tmp", fl);
  fs->homefd = openat(fs->rootfd, "home/sandbox", fl);
  if (fs->wsfd < 0 || fs->tmpfd < 0 || fs->homefd < 0)
    return ac_error_errno(err, AC_ESYSTEM, errno, "box: open the trees "
                          "in %s", fs->root);
  return AC_OK;
}

static enum ac_code write_info(const struct boxfs *fs, struct ac_error *err) {
  char text[128], *tmp = sbxu_join(fs->dir, BOX_INFO ".tmp");
  char *final = sbxu_join(fs->dir, BOX_INFO);
  enum ac_code rc = AC_OK;
  int fd, len;

  if (tmp == NULL || final == NULL) {
    rc = ac_error_set(err, AC_ENOMEM, "box: out of memory");
    goto out;
  }
  /* "staged 1": uploads stage in FAPI_STAGE_DIR, so the trees hold no
  ** temporary files of earlier versions (any there were swept). */
  len = snprintf(text, sizeof text, "agentcube-box 1\nuid %lu\ngid %lu\n"
                 "image %d\nstaged 1\n", (unsigned long)fs->uid,
                 (unsigned long)fs->gid, fs->image);
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
            0644);
  if (fd < 0) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "box: create %s", tmp);
    goto out;
  }
  if (write(fd, text, (size_t)len) != len || fsync(fd) < 0) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "box: write %s", tmp);
    close(fd);
    goto out;
  }
  close(fd);
  if (rename(tmp, final) < 0)
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "box: rename %s", tmp);
out:
  free(tmp);
  free(final);
  return rc;
}

/* dir, root and mnt_parent for a box in dir (which must exist unless
** may_miss, then an absolute dir is taken as is) published as
** <pub>/<name> (pub NULL: in place). */
static enum ac_code set_paths(struct boxfs *fs, const char *dir,
                              const char *pub, const char *name,
                              int may_miss, struct ac_error *err) {
  fs->rootfd = fs->wsfd = fs->tmpfd = fs->homefd = -1;
  fs->dir = realpath(dir, NULL);
  if (fs->dir == NULL && may_miss && errno == ENOENT && dir[0] == '/')
    fs->dir = strdup(dir);
  if (fs->dir == NULL)
    return ac_error_errno(err, errno == ENOENT ? AC_ENOTFOUND : AC_ESYSTEM,
                          errno, "box: %s", dir);
  fs->published = pub != NULL;
  fs->mnt_parent = strdup(pub ? pub : fs->dir);
  fs->root = pub ? sbxu_join(pub, name) : sbxu_join(fs->dir, "root");
  if (fs->root == NULL || fs->mnt_parent == NULL)
    return ac_error_set(err, AC_ENOMEM, "box: out of memory");
  return AC_OK;
}

enum ac_code boxfs_create(const char *dir, const char *pub, const char *name,
                          int chown_ids, uid_t uid, gid_t gid,
                          unsigned long long disk_bytes, const char *mkfs,
                          struct boxfs *out, struct ac_error *err) {
  enum ac_code rc = AC_OK;
  char *img = NULL, *plain = NULL;

  memset(out, 0, sizeof *out);
  out->rootfd = out->wsfd = out->tmpfd = out->homefd = -1;
  out->uid = chown_ids ? uid : getuid();
  out->gid = chown_ids ? gid : getgid();
  out->image = disk_bytes > 0;
  if (out->image && disk_bytes < MIN_DISK_BYTES)
    return ac_error_set(err, AC_EINVAL, "box: disk limit %llu is below "
                        "the minimum of %llu bytes", disk_bytes,
                        MIN_DISK_BYTES);
  if (out->image && (mkfs == NULL || mkfs[0] == '\0'))
    return ac_error_set(err, AC_EUNSUPPORTED, "box: no mkfs.ext4 for the "
                        "disk quota");
  if (mkdir(dir, 0700) < 0)
    return ac_error_errno(err, errno == EEXIST ? AC_EEXIST : AC_ESYSTEM,
                          errno, "box: mkdir %s", dir);
  rc = set_paths(out, dir, pub, name, 0, err);
  if (rc)
    goto out;
  /* Without publication the session uid must traverse dir itself. */
  if (chmod(out->dir, pub ? 0700 : 0711) < 0) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "box: chmod %s", out->dir);
    goto out;
  }
  if (!out->image || !pub) {
    plain = sbxu_join(out->dir, "root");
    if (plain == NULL || mkdir(plain, 0711) < 0) {
      rc = ac_error_errno(err, plain ? AC_ESYSTEM : AC_ENOMEM,
                          plain ? errno : ENOMEM, "box: creating %s/root",
                          out->dir);
      goto out;
    }
  }
  if (out->image) {
    int fd;
    img = sbxu_join(out->dir, BOX_IMAGE);
    if (img == NULL) {
      rc = ac_error_set(err, AC_ENOMEM, "box: out of memory");
      goto out;
    }
    fd = open(img, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
              0600);
    if (fd < 0 || ftruncate(fd, (off_t)disk_bytes) < 0) {
      rc = ac_error_errno(err, AC_ESYSTEM, errno, "box: create %s", img);
      if (fd >= 0)
        close(fd);
      goto out;
    }
    close(fd);
    rc = run_mkfs(mkfs, img, err);
    if (rc)
      goto out;
  } else {
    rc = prepare_tree(plain, chown_ids, out->uid, out->gid, err);
    if (rc)
      goto out;
  }
  rc = publish(out, err);
  if (rc == AC_OK)
    rc = prepare_tree(out->root, chown_ids, out->uid, out->gid, err);
  if (rc == AC_OK)
    rc = open_rootfd(out, err);
  if (rc == AC_OK)
    rc = write_info(out, err);
out:
  free(img);
  free(plain);
  if (rc) {
    if (out->dir) {
      boxfs_remove(out, NULL);
    } else {
      rmdir(dir);
      fs_free(out);
    }
  }
  return rc;
}

/* Removes what crashed uploads left in the box (see fapi_sweep): the
** staging directory every time, the temporary files of earlier versions
** in the trees once (then box.info says "staged 1"). A failure is
** reported, never fatal: the box is usable either way. */
static void sweep_uploads(struct boxfs *fs, int staged) {
  struct fapi_root r = { fs->rootfd, fs->uid, fs->gid };
  struct ac_error e;
  unsigned long long n = 0;

  ac_error_clear(&e);
  if (fapi_sweep(&r, !staged, &n, &e) != AC_OK) {
    fprintf(stderr, "agentcube: %s: sweeping crashed uploads: %s\n",
            fs->dir, e.msg);
    return;
  }
  if (n > 0)
    fprintf(stderr, "agentcube: %s: removed %llu file%s of uploads a "
            "crash cut short\n", fs->dir, n, n == 1 ? "" : "s");
  if (!staged && write_info(fs, &e) != AC_OK)
    fprintf(stderr, "agentcube: %s\n", e.msg);
}

enum ac_code boxfs_open(const char *dir, const char *pub, const char *name,
                        int chown_ids, uid_t uid, struct boxfs *out,
                        struct ac_error *err) {
  enum ac_code rc;
  char text[256], *info = NULL;
  unsigned long long v;
  int staged;

  memset(out, 0, sizeof *out);
  rc = set_paths(out, dir, pub, name, 0, err);
  if (rc)
    goto out;
  info = sbxu_join(out->dir, BOX_INFO);
  if (info == NULL) {
    rc = ac_error_set(err, AC_ENOMEM, "box: out of memory");
    goto out;
  }
  if (sbxu_read_file(info, text, sizeof text) < 0 ||
      strncmp(text, "agentcube-box 1\n", 16) != 0) {
    rc = ac_error_set(err, AC_ENOTFOUND, "box: %s holds no complete box",
                      out->dir);
    goto out;
  }
  if (sbxu_find_counter(text, "uid", &v) < 0)
    goto bad;
  out->uid = (uid_t)v;
  if (sbxu_find_counter(text, "gid", &v) < 0)
    goto bad;
  out->gid = (gid_t)v;
  if (sbxu_find_counter(text, "image", &v) < 0)
    goto bad;
  out->image = v != 0;
  staged = sbxu_find_counter(text, "staged", &v) == 0 && v == 1;
  if (chown_ids && out->uid != uid) {
    rc = ac_error_set(err, AC_EINVAL, "box: %s belongs to uid %lu, not %lu",
                      out->dir, (unsigned long)out->uid,
                      (unsigned long)uid);
    goto out;
  }
  rc = publish(out, err);
  if (rc == AC_OK)
    rc = prepare_tree(out->root, chown_ids, out->uid, out->gid, err);
  if (rc == AC_OK)
    rc = open_rootfd(out, err);
  if (rc == AC_OK)
    sweep_uploads(out, staged);
  goto out;
bad:
  rc = ac_error_set(err, AC_ENOTFOUND, "box: %s/" BOX_INFO " is damaged",
                    out->dir);
out:
  free(info);
  if (rc) {
    if (out->dir && out->root)
      unpublish(out);
    fs_free(out);
  }
  return rc;
}

void boxfs_close(struct boxfs *fs) {
  close_fds(fs);
  if (fs->dir && fs->root)
    unpublish(fs);
  fs_free(fs);
}

int boxfs_loop_minor(const struct boxfs *fs) {
  dev_t dev;
  if (fs->image && is_mountpoint(fs->mnt_parent, fs->root, &dev) &&
      major(dev) == LOOP_MAJOR_NR)
    return (int)minor(dev);
  return -1;
}

/* ---- removal ---- */

struct level {
  char **names;         /* subdirectories still to empty and remove */
  size_t n, i;
  char *self;           /* this directory's name in its parent */
};

/* Unlinks every non-directory in dfd and returns the names of its
** subdirectories (malloc'd array of malloc'd strings). */
static int scan_dir(int dfd, char ***names, size_t *n) {
  int fd = dup(dfd);
  DIR *d;
  struct dirent *e;
  size_t cap = 0;
  *names = NULL;
  *n = 0;
  if (fd < 0)
    return -1;
  d = fdopendir(fd);
  if (d == NULL) {
    close(fd);
    return -1;
  }
  while ((e = readdir(d)) != NULL) {
    int isdir = e->d_type == DT_DIR;
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st;
      isdir = fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
              S_ISDIR(st.st_mode);
    }
    if (!isdir) {
      unlinkat(dfd, e->d_name, 0);
      continue;
    }
    if (*n == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      char **p = realloc(*names, ncap * sizeof *p);
      if (p == NULL)
        break;
      *names = p;
      cap = ncap;
    }
    (*names)[*n] = strdup(e->d_name);
    if ((*names)[*n] != NULL)
      (*n)++;
  }
  closedir(d);
  return 0;
}

static void free_level(struct level *l) {
  for (size_t i = 0; i < l->n; i++)
    free(l->names[i]);
  free(l->names);
  free(l->self);
}

/* Empties the directory top (without removing it). Walks down with one
** directory fd at a time and comes back up through "..", so that a very
** deep tree costs memory for names, not file descriptors. Subdirectories
** on another device are left alone. All sandbox processes are dead by the
** time this runs, so nothing renames entries underneath us. */
static int empty_tree(int top) {
  struct level *stack = NULL;
  size_t depth = 0, cap = 0;
  struct stat st;
  int cur, failed = 0;

  if (fstat(top, &st) < 0)
    return -1;
  cur = dup(top);
  if (cur < 0)
    return -1;
  stack = calloc(16, sizeof *stack);
  if (stack == NULL) {
    close(cur);
    return -1;
  }
  cap = 16;
  scan_dir(cur, &stack[0].names, &stack[0].n);
  depth = 1;
  while (depth > 0) {
    struct level *l = &stack[depth - 1];
    if (l->i < l->n) {
      const char *name = l->names[l->i++];
      struct stat sst;
      int sub = openat(cur, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                       O_CLOEXEC);
      if (sub < 0 && errno == EACCES &&
          fchmodat(cur, name, 0700, AT_SYMLINK_NOFOLLOW) == 0)
        sub = openat(cur, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                     O_CLOEXEC);
      if (sub < 0) {
        failed = 1;
        continue;
      }
      if (fstat(sub, &sst) < 0 || sst.st_dev != st.st_dev) {
        close(sub);
        failed = 1;
        continue;
      }
      fchmod(sub, 0700);         /* unprivileged: make entries deletable */
      if (depth == cap) {
        struct level *p = realloc(stack, cap * 2 * sizeof *p);
        if (p == NULL) {
          close(sub);
          failed = 1;
          break;
        }
        stack = p;
        cap *= 2;
        l = &stack[depth - 1];
      }
      close(cur);
      cur = sub;
      memset(&stack[depth], 0, sizeof stack[depth]);
      stack[depth].self = strdup(l->names[l->i - 1]);
      scan_dir(cur, &stack[depth].names, &stack[depth].n);
      depth++;
      continue;
    }
    if (depth == 1) {
      free_level(l);
      depth = 0;
      break;
    }
    {
      int parent = openat(cur, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (parent < 0) {
        failed = 1;
        break;
      }
      close(cur);
      cur = parent;
      if (l->self == NULL || unlinkat(cur, l->self, AT_REMOVEDIR) < 0)
        failed = 1;
      free_level(l);
      depth--;
    }
  }
  while (depth > 0)
    free_level(&stack[--depth]);
  free(stack);
  close(cur);
  return failed ? -1 : 0;
}

/* Deletes dir and everything below it on dir's filesystem. */
static enum ac_code remove_dir(const char *dir, struct ac_error *err) {
  enum ac_code rc = AC_OK;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT)
      rc = ac_error_errno(err, AC_ESYSTEM, errno, "box: open %s", dir);
    return rc;
  }
  if (empty_tree(fd) < 0 || rmdir(dir) < 0)
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "box: removing %s", dir);
  close(fd);
  return rc;
}

enum ac_code boxfs_remove(struct boxfs *fs, struct ac_error *err) {
  enum ac_code rc = AC_OK;
  dev_t dev;

  close_fds(fs);
  if (fs->dir == NULL || fs->root == NULL) {
    fs_free(fs);
    return AC_OK;
  }
  unpublish(fs);
  if (is_mountpoint(fs->mnt_parent, fs->root, &dev))
    rc = ac_error_set(err, AC_EBUSY, "box: cannot unmount %s", fs->root);
  else
    rc = remove_dir(fs->dir, err);
  fs_free(fs);
  return rc;
}

enum ac_code boxfs_purge(const char *dir, const char *pub, const char *name,
                         struct ac_error *err) {
  struct boxfs fs;
  enum ac_code rc;
  memset(&fs, 0, sizeof fs);
  rc = set_paths(&fs, dir, pub, name, 1, err);
  if (rc) {
    fs_free(&fs);
    if (rc == AC_ENOTFOUND) {
      ac_error_clear(err);
      return AC_OK;
    }
    return rc;
  }
  return boxfs_remove(&fs, err);
}

enum ac_code boxfs_rmtree(const char *dir, struct ac_error *err) {
  return remove_dir(dir, err);
}
