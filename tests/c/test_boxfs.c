/*
** test_boxfs.c -- a box's filesystem on its own: what creation refuses,
** an image whose mkfs fails (the message, nothing left behind), a
** published box found again after a crash, something foreign mounted
** where the box goes, damaged or foreign box records, trees that cannot
** be prepared, and a removal through deep, locked and mounted-on trees.
**
** Root only, in a private mount namespace (the mounts vanish with the
** test), below a temporary directory.
*/
#include "boxfs.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define UID 200123

static char top[64], pub[128];

static const char *P(const char *rel) {
  static char bufs[4][1024];
  static int i;
  char *b = bufs[i++ % 4];
  snprintf(b, sizeof bufs[0], "%s/%s", top, rel);
  return b;
}

static int exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

static int write_text(const char *path, const char *s, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  int ok_ = fd >= 0 && write(fd, s, strlen(s)) == (ssize_t)strlen(s);
  if (fd >= 0)
    close(fd);
  return ok_ && chmod(path, mode) == 0 ? 0 : -1;
}

/* 1 when something is mounted exactly on path. */
static int mounted(const char *path) {
  struct statx sx;
  return statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_TYPE, &sx) == 0 &&
         (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
}

static int rm_cb(const char *p, const struct stat *st, int flag,
                 struct FTW *f) {
  (void)st;
  (void)f;
  if (flag == FTW_DP)
    rmdir(p);
  else
    unlink(p);
  return 0;
}

/* {====================================================== creation */

static void refused_up_front(void) {
  struct boxfs fs;
  struct ac_error e;

  tcase("creation refuses a tiny disk, a missing mkfs, an existing dir");
  is_int(boxfs_create(P("tiny"), NULL, "tiny", 1, UID, UID, 1 << 20,
                      "/sbin/mkfs.ext4", &fs, &e), AC_EINVAL,
         "a 1 MiB disk limit");
  ok(strstr(e.msg, "below the minimum") != NULL, "says so: %s", e.msg);
  is_int(boxfs_create(P("nomkfs"), NULL, "nomkfs", 1, UID, UID, 8 << 20,
                      "", &fs, &e), AC_EUNSUPPORTED, "no mkfs.ext4");
  ok(!exists(P("tiny")) && !exists(P("nomkfs")), "no directory made");
  REQUIRE(mkdir(P("taken"), 0700) == 0, "an existing directory");
  is_int(boxfs_create(P("taken"), NULL, "taken", 1, UID, UID, 0, NULL, &fs,
                      &e), AC_EEXIST, "refused over it");
  ok(exists(P("taken")), "and left alone");
}

/* mkfs that fails, and one that cannot be run: the error says why, and
** no directory, image or mount is left. */
static void mkfs_failures(void) {
  struct boxfs fs;
  struct ac_error e;
  const char *script = P("fake-mkfs");

  tcase("an image whose mkfs fails: its message, nothing left behind");
  REQUIRE(write_text(script, "#!/bin/sh\necho 'mke2fs: Device size "
                     "reported to be zero' >&2\nexit 1\n", 0755) == 0,
          "a mkfs that fails");
  is_int(boxfs_create(P("img1"), pub, "img1", 1, UID, UID, 8 << 20, script,
                      &fs, &e), AC_ESYSTEM, "creation fails");
  ok(strstr(e.msg, "mkfs.ext4 failed (status 256)") != NULL &&
     strstr(e.msg, "Device size reported to be zero") != NULL,
     "with mkfs's own first line: %s", e.msg);
  ok(!exists(P("img1")) && !exists(P("pub/img1")),
     "no box directory, no mount point");
  is_int(boxfs_create(P("img2"), pub, "img2", 1, UID, UID, 8 << 20,
                      "/nonexistent/mkfs.ext4", &fs, &e), AC_ESYSTEM,
         "a mkfs that does not exist");
  ok(strstr(e.msg, "cannot run /nonexistent/mkfs.ext4") != NULL,
     "says so: %s", e.msg);
  ok(!exists(P("img2")), "nothing left");
}

/* }====================================================== */

/* {====================================================== reopening */

static void published_after_crash(void) {
  struct boxfs fs, again;
  struct ac_error e;
  struct stat st;
  char root[512];

  tcase("a published box is found again after a crash, mount and all");
  REQUIRE(boxfs_create(P("plain"), pub, "plain", 1, UID, UID, 0, NULL, &fs,
                       &e) == AC_OK, "a published plain box: %s", e.msg);
  snprintf(root, sizeof root, "%s", fs.root);
  ok(mounted(root), "its trees are bound on %s", root);
  ok(stat(P("pub/plain/workspace"), &st) == 0 && st.st_uid == UID &&
     (st.st_mode & 0777) == 0700, "workspace 0700, the session's");
  ok(boxfs_loop_minor(&fs) == -1, "no loop device for a plain box");
  REQUIRE(write_text(P("pub/plain/workspace/kept"), "k", 0644) == 0,
          "a file in it");
  /* the server dies: fds gone, the bind mount stays */
  close(fs.rootfd);
  close(fs.wsfd);
  close(fs.tmpfd);
  close(fs.homefd);
  free(fs.dir);
  free(fs.root);
  free(fs.mnt_parent);
  is_int(boxfs_open(P("plain"), pub, "plain", 1, UID, &again, &e), AC_OK,
         "reopened: %s", e.msg);
  ok(mounted(root) && exists(P("pub/plain/workspace/kept")),
     "the same mount, the file still there");
  boxfs_close(&again);
  ok(!mounted(root) && !exists(root), "closed: unmounted, mount point gone");
  ok(exists(P("plain/root/workspace/kept")), "the files stay");
  /* something foreign on the mount point */
  REQUIRE(mkdir(root, 0711) == 0 &&
          mount("tmpfs", root, "tmpfs", 0, "size=16k") == 0,
          "a tmpfs where the box goes");
  is_int(boxfs_open(P("plain"), pub, "plain", 1, UID, &again, &e), AC_EBUSY,
         "refused");
  ok(strstr(e.msg, "something else is mounted on") != NULL, "says so: %s",
     e.msg);
  umount2(root, MNT_DETACH);
  rmdir(root);
  is_int(boxfs_open(P("plain"), pub, "plain", 1, UID, &again, &e), AC_OK,
         "free again, it opens (control)");
  is_int(boxfs_remove(&again, &e), AC_OK, "removed");
  ok(!exists(P("plain")) && !exists(root), "nothing left");
}

static void bad_records(void) {
  struct boxfs fs, again;
  struct ac_error e;
  char info[600];

  tcase("box records: missing, damaged, another uid's");
  REQUIRE(boxfs_create(P("rec"), NULL, "rec", 1, UID, UID, 0, NULL, &fs,
                       &e) == AC_OK, "a box: %s", e.msg);
  boxfs_close(&fs);
  snprintf(info, sizeof info, "%s", P("rec/box.info"));
  is_int(boxfs_open(P("rec"), NULL, "rec", 1, UID + 1, &again, &e),
         AC_EINVAL, "another uid's box refused");
  ok(strstr(e.msg, "belongs to uid 200123, not 200124") != NULL,
     "says whose: %s", e.msg);
  REQUIRE(write_text(info, "agentcube-box 1\nuid 200123\n", 0644) == 0,
          "a record without gid");
  is_int(boxfs_open(P("rec"), NULL, "rec", 1, UID, &again, &e),
         AC_ENOTFOUND, "a damaged record");
  ok(strstr(e.msg, "box.info is damaged") != NULL, "says so: %s", e.msg);
  REQUIRE(unlink(info) == 0, "no record");
  is_int(boxfs_open(P("rec"), NULL, "rec", 1, UID, &again, &e),
         AC_ENOTFOUND, "an incomplete box");
  ok(strstr(e.msg, "holds no complete box") != NULL, "says so: %s", e.msg);
  is_int(boxfs_open(P("none"), NULL, "none", 1, UID, &again, &e),
         AC_ENOTFOUND, "no directory at all");
  is_int(boxfs_purge(P("rec"), NULL, "rec", &e), AC_OK,
         "purged without a record");
  ok(!exists(P("rec")), "gone");
  is_int(boxfs_purge(P("none"), pub, "none", &e), AC_OK,
         "purging what is not there is fine");
}

/* workspace replaced by a file while the server was down */
static void tree_cannot_be_prepared(void) {
  struct boxfs fs, again;
  struct ac_error e;

  tcase("a tree that is a file: reopening fails, and says where");
  REQUIRE(boxfs_create(P("tree"), pub, "tree", 1, UID, UID, 0, NULL, &fs,
                       &e) == AC_OK, "a published box: %s", e.msg);
  boxfs_close(&fs);
  REQUIRE(rmdir(P("tree/root/workspace")) == 0 &&
          write_text(P("tree/root/workspace"), "not a dir", 0644) == 0,
          "workspace is now a file");
  is_int(boxfs_open(P("tree"), pub, "tree", 1, UID, &again, &e), AC_ESYSTEM,
         "reopening fails");
  ok(strstr(e.msg, "box: preparing") != NULL &&
     strstr(e.msg, strerror(ENOTDIR)) != NULL, "says so: %s", e.msg);
  ok(!mounted(P("pub/tree")) && !exists(P("pub/tree")),
     "nothing left published");
  is_int(boxfs_purge(P("tree"), pub, "tree", &e), AC_OK, "purged");
  ok(!exists(P("tree")), "gone");
}

/* }====================================================== */

/* {====================================================== removal */

static void removal(void) {
  struct boxfs fs;
  struct ac_error e;
  char path[4096];
  size_t len;

  tcase("removal goes through deep and locked trees, not across mounts");
  REQUIRE(boxfs_create(P("rm"), NULL, "rm", 1, UID, UID, 0, NULL, &fs,
                       &e) == AC_OK, "a box: %s", e.msg);
  /* 40 levels: more than the walk's first stack holds */
  len = (size_t)snprintf(path, sizeof path, "%s", P("rm/root/workspace"));
  for (int i = 0; i < 40; i++) {
    len += (size_t)snprintf(path + len, sizeof path - len, "/d%d", i);
    REQUIRE(mkdir(path, 0755) == 0, "level %d", i);
  }
  REQUIRE(write_text(P("rm/root/workspace/d0/f"), "f", 0644) == 0,
          "a file");
  /* a directory nobody may enter, with something inside */
  REQUIRE(mkdir(P("rm/root/tmp/locked"), 0700) == 0 &&
          write_text(P("rm/root/tmp/locked/x"), "x", 0644) == 0 &&
          chmod(P("rm/root/tmp/locked"), 0) == 0, "a locked directory");
  /* a mount inside: another filesystem, never entered */
  REQUIRE(mkdir(P("rm/root/home/sandbox/m"), 0755) == 0 &&
          mount("tmpfs", P("rm/root/home/sandbox/m"), "tmpfs", 0,
                "size=16k") == 0 &&
          write_text(P("rm/root/home/sandbox/m/keep"), "k", 0644) == 0,
          "a tmpfs inside the box, with a file");
  is_int(boxfs_remove(&fs, &e), AC_ESYSTEM, "removal stops at the mount");
  ok(strstr(e.msg, "box: removing") != NULL, "says so: %s", e.msg);
  ok(exists(P("rm/root/home/sandbox/m/keep")), "the mounted file is kept");
  ok(!exists(P("rm/root/workspace/d0")), "the deep tree is gone");
  ok(!exists(P("rm/root/tmp/locked")), "the locked directory is gone");
  umount2(P("rm/root/home/sandbox/m"), MNT_DETACH);
  is_int(boxfs_rmtree(P("rm"), &e), AC_OK, "unmounted, the rest goes");
  ok(!exists(P("rm")), "nothing left");
  is_int(boxfs_rmtree(P("rm"), &e), AC_OK, "a missing tree is fine");
}

/* }====================================================== */

int main(void) {
  plan(6);
  if (geteuid() != 0)
    return skip_all("not root: boxes are chowned, mounted and published "
                    "by root");
  if (unshare(CLONE_NEWNS) != 0 ||
      mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0) {
    printf("# private mount namespace: %s\n", strerror(errno));
    return done_testing();
  }
  snprintf(top, sizeof top, "/tmp/agentcube-boxfs.XXXXXX");
  if (mkdtemp(top) == NULL)
    return done_testing();
  snprintf(pub, sizeof pub, "%s/pub", top);
  if (mkdir(pub, 0711) != 0)
    return done_testing();
  refused_up_front();
  mkfs_failures();
  published_after_crash();
  bad_records();
  tree_cannot_be_prepared();
  removal();
  umount2(P("pub/plain"), MNT_DETACH);
  nftw(top, rm_cb, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
  rmdir(top);
  return done_testing();
}
