/*
** test_boxfs.c -- a box's filesystem on its own: what creation refuses,
** an image whose mkfs fails or formats nothing, a disk larger than the
** host's filesystem holds (the message, nothing left behind: no
** directory, mount or loop device), a published box found again after a
** crash, a busy mount detached, something foreign mounted where the box
** goes, damaged or foreign box records, the sweep of crashed uploads at
** reopening, trees that cannot be prepared or are gone, and a removal
** through deep, locked and mounted-on trees, never through a symlink,
** also by an unprivileged server.
**
** Root only, in a private mount namespace (the mounts vanish with the
** test), below a temporary directory.
*/
#include "boxfs.h"
#include "child_exit.h"
#include "tap.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
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
  struct ac_error e = { 0 };

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
  struct ac_error e = { 0 };
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

/* 1 when a loop device is backed by a file below top (even deleted). */
static int loop_below_top(void) {
  DIR *d = opendir("/sys/block");
  struct dirent *de;
  int found = 0;
  while (d && !found && (de = readdir(d)) != NULL) {
    char path[300], back[4096] = "";
    FILE *f;
    if (strncmp(de->d_name, "loop", 4) != 0)
      continue;
    snprintf(path, sizeof path, "/sys/block/%s/loop/backing_file",
             de->d_name);
    f = fopen(path, "re");
    if (f == NULL)
      continue;
    if (fgets(back, sizeof back, f) && strncmp(back, top, strlen(top)) == 0)
      found = 1;
    fclose(f);
  }
  if (d)
    closedir(d);
  return found;
}

/* An image that mkfs "formatted" without writing anything, and one larger
** than the host's filesystem allows: each fails, says why, and leaves no
** directory, mount point or loop device. */
static void image_failures(void) {
  struct boxfs fs;
  struct ac_error e = { 0 };
  const char *script = P("lazy-mkfs");

  tcase("an image that will not mount, a disk the host cannot hold");
  REQUIRE(write_text(script, "#!/bin/sh\nexit 0\n", 0755) == 0,
          "a mkfs that formats nothing");
  is_int(boxfs_create(P("img3"), pub, "img3", 1, UID, UID, 8 << 20, script,
                      &fs, &e), AC_ESYSTEM, "creation fails");
  ok(strstr(e.msg, "box: mount /dev/loop") != NULL &&
     strstr(e.msg, P("pub/img3")) != NULL, "at the mount: %s", e.msg);
  ok(!exists(P("img3")) && !exists(P("pub/img3")),
     "no box directory, no mount point");
  ok(!loop_below_top(), "no loop device left on the image");
  is_int(boxfs_create(P("img4"), pub, "img4", 1, UID, UID, 1ULL << 60,
                      "/sbin/mkfs.ext4", &fs, &e), AC_ESYSTEM,
         "a 1 EiB disk limit fails");
  ok(strstr(e.msg, "box: create ") != NULL &&
     strstr(e.msg, strerror(EFBIG)) != NULL, "says so: %s", e.msg);
  ok(!exists(P("img4")), "nothing left");
  is_int(boxfs_create(P("img5"), P("gone"), "img5", 1, UID, UID, 0, NULL,
                      &fs, &e), AC_ESYSTEM,
         "a publication directory that is gone fails the box");
  ok(strstr(e.msg, "box: mkdir ") != NULL &&
     strstr(e.msg, P("gone/img5")) != NULL, "names it: %s", e.msg);
  ok(!exists(P("img5")), "nothing left");
}

/* }====================================================== */

/* {====================================================== reopening */

static void published_after_crash(void) {
  struct boxfs fs, again;
  struct ac_error e = { 0 };
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
  struct ac_error e = { 0 };
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
  REQUIRE(write_text(info, "agentcube-box 1\n", 0644) == 0,
          "a record without uid");
  is_int(boxfs_open(P("rec"), NULL, "rec", 1, UID, &again, &e),
         AC_ENOTFOUND, "damaged");
  REQUIRE(write_text(info, "agentcube-box 1\nuid 200123\ngid 200123\n",
                     0644) == 0, "a record without image");
  is_int(boxfs_open(P("rec"), NULL, "rec", 1, UID, &again, &e),
         AC_ENOTFOUND, "damaged");
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
  is_int(boxfs_purge("agentcube-no-such-box", NULL, "none", &e), AC_OK,
         "nor a relative path that is not there");
}

/* A real image box, closed, then reopened with a file held open in it
** (closing detaches the busy mount), and with a tmpfs where its image
** goes (refused). */
static void image_box(void) {
  struct boxfs fs, again;
  struct ac_error e = { 0 };
  const char *mkfs = access("/sbin/mkfs.ext4", X_OK) == 0
                     ? "/sbin/mkfs.ext4" : "/usr/sbin/mkfs.ext4";
  char root[512];
  int fd, minor;

  tcase("an image box: a busy mount is detached, a foreign one refused");
  REQUIRE(boxfs_create(P("img"), pub, "img", 1, UID, UID, 4 << 20, mkfs,
                       &fs, &e) == AC_OK, "an image box: %s", e.msg);
  snprintf(root, sizeof root, "%s", fs.root);
  minor = boxfs_loop_minor(&fs);
  ok(minor >= 0, "on loop device %d", minor);
  fd = openat(fs.rootfd, "workspace/held", O_WRONLY | O_CREAT | O_CLOEXEC,
              0644);
  REQUIRE(fd >= 0, "a file held open in it");
  boxfs_close(&fs);
  ok(!mounted(root) && !exists(root), "closed: detached though busy");
  ok(write(fd, "x", 1) == 1, "the open file still works");
  close(fd);
  REQUIRE(boxfs_open(P("img"), pub, "img", 1, UID, &again, &e) == AC_OK,
          "reopened: %s", e.msg);
  ok(exists(P("pub/img/workspace/held")), "the file is there");
  boxfs_close(&again);
  REQUIRE(mkdir(root, 0711) == 0 &&
          mount("tmpfs", root, "tmpfs", 0, "size=16k") == 0,
          "a tmpfs where the image goes");
  is_int(boxfs_open(P("img"), pub, "img", 1, UID, &again, &e), AC_EBUSY,
         "refused");
  ok(strstr(e.msg, "something else is mounted on") != NULL, "says so: %s",
     e.msg);
  umount2(root, MNT_DETACH);
  rmdir(root);
  /* its image file gone */
  REQUIRE(rename(P("img/disk.img"), P("img/disk.aside")) == 0,
          "the image moved away");
  is_int(boxfs_open(P("img"), pub, "img", 1, UID, &again, &e), AC_ESYSTEM,
         "reopening fails");
  ok(strstr(e.msg, "box: open ") != NULL && strstr(e.msg, "disk.img") &&
     strstr(e.msg, strerror(ENOENT)), "names the image: %s", e.msg);
  ok(!exists(root), "nothing left published");
  REQUIRE(rename(P("img/disk.aside"), P("img/disk.img")) == 0, "back");
  is_int(boxfs_purge(P("img"), pub, "img", &e), AC_OK, "purged");
  ok(!exists(P("img")) && !loop_below_top(), "no directory, no loop device");
}

/* A host whose loop-control cannot be opened (a device node on a nodev
** mount, as in some containers): an image box fails, says so, and
** leaves nothing; a plain box still works. */
static void no_loop_devices(void) {
  struct boxfs fs;
  struct ac_error e = { 0 };
  const char *mkfs = access("/sbin/mkfs.ext4", X_OK) == 0
                     ? "/sbin/mkfs.ext4" : "/usr/sbin/mkfs.ext4";
  int rc;

  tcase("a loop-control that cannot be opened, loop devices without nodes: "
        "image boxes fail, said");
  REQUIRE(mkdir(P("nodev"), 0700) == 0 &&
          mount("tmpfs", P("nodev"), "tmpfs", MS_NODEV, "size=16k") == 0 &&
          mknod(P("nodev/loop-control"), S_IFCHR | 0600, makedev(10, 237))
          == 0 && mount(P("nodev/loop-control"), "/dev/loop-control", NULL,
                        MS_BIND, NULL) == 0,
          "/dev/loop-control from a nodev mount");
  rc = boxfs_create(P("nl"), pub, "nl", 1, UID, UID, 4 << 20, mkfs, &fs, &e);
  umount2("/dev/loop-control", MNT_DETACH);
  umount2(P("nodev"), MNT_DETACH);
  rmdir(P("nodev"));
  is_int(rc, AC_ESYSTEM, "an image box fails");
  is_str(e.msg, "box: /dev/loop-control: Permission denied", "says so");
  ok(!exists(P("nl")) && !exists(P("pub/nl")), "nothing left");
  /* a /dev with loop-control but no loop device nodes (no devtmpfs) */
  REQUIRE(mount("tmpfs", "/dev", "tmpfs", MS_NOSUID, "mode=0755,size=16k")
          == 0 && mknod("/dev/null", S_IFCHR | 0666, makedev(1, 3)) == 0 &&
          mknod("/dev/loop-control", S_IFCHR | 0600, makedev(10, 237)) == 0,
          "a /dev of null and loop-control alone");
  rc = boxfs_create(P("nl"), pub, "nl", 1, UID, UID, 4 << 20, mkfs, &fs, &e);
  umount2("/dev", MNT_DETACH);
  is_int(rc, AC_ESYSTEM, "an image box fails");
  ok(strncmp(e.msg, "box: open /dev/loop", 19) == 0 &&
     strstr(e.msg, strerror(ENOENT)) != NULL, "at the device: %s", e.msg);
  ok(!exists(P("nl")) && !exists(P("pub/nl")), "nothing left");
}

/* A filesystem out of inodes or of blocks (tiny tmpfs instances): the
** box fails at the step that needed the space, says so, leaves nothing. */
static void disk_full(void) {
  static const struct { const char *opts; const char *step; } cases[] = {
    { "nr_inodes=2", "box: creating " },     /* the box dir, not root/ */
    { "nr_inodes=3", "box: preparing " },    /* root/, not its trees */
  };
  struct boxfs fs;
  struct ac_error e = { 0 };
  char big[4096];
  int fd;

  tcase("a full disk: out of inodes or of space, each step says so");
  REQUIRE(mkdir(P("full"), 0700) == 0, "a mount point");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    REQUIRE(mount("tmpfs", P("full"), "tmpfs", 0, cases[i].opts) == 0,
            "a tmpfs with %s", cases[i].opts);
    is_int(boxfs_create(P("full/box"), NULL, "box", 1, UID, UID, 0, NULL,
                        &fs, &e), AC_ESYSTEM, "%s: the box fails",
           cases[i].opts);
    ok(strstr(e.msg, cases[i].step) != NULL &&
       strstr(e.msg, strerror(ENOSPC)) != NULL, "at the step: %s", e.msg);
    ok(!exists(P("full/box")), "nothing left");
    umount2(P("full"), MNT_DETACH);
  }
  /* blocks: the record is the first file with content */
  REQUIRE(mount("tmpfs", P("full"), "tmpfs", 0, "size=64k") == 0,
          "a 64 KiB tmpfs");
  fd = open(P("full/filler"), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  memset(big, 'x', sizeof big);
  while (fd >= 0 && write(fd, big, sizeof big) > 0)
    ;
  REQUIRE(fd >= 0 && errno == ENOSPC, "filled up");
  close(fd);
  is_int(boxfs_create(P("full/box"), NULL, "box", 1, UID, UID, 0, NULL, &fs,
                      &e), AC_ESYSTEM, "no space: the box fails");
  ok(strstr(e.msg, "box.info.tmp") != NULL &&
     strstr(e.msg, strerror(ENOSPC)) != NULL, "at its record: %s", e.msg);
  ok(!exists(P("full/box")), "nothing left");
  REQUIRE(unlink(P("full/filler")) == 0, "space again");
  is_int(boxfs_create(P("full/box"), NULL, "box", 1, UID, UID, 0, NULL, &fs,
                      &e), AC_OK, "the box is made (control): %s", e.msg);
  boxfs_remove(&fs, &e);
  umount2(P("full"), MNT_DETACH);
  rmdir(P("full"));
}

/* A box of an earlier version (no "staged 1" in its record) with a
** temporary file its uploads left, and a crashed upload in the staging
** directory: reopening removes both and records that it did. */
static void sweep_on_open(void) {
  int rc;
  struct boxfs fs, again;
  struct ac_error e = { 0 };
  char legacy[600], staged[600], text[256] = "";
  FILE *f;

  tcase("reopening sweeps crashed uploads and records it once");
  REQUIRE(boxfs_create(P("sw"), NULL, "sw", 1, UID, UID, 0, NULL, &fs,
                       &e) == AC_OK, "a box: %s", e.msg);
  boxfs_close(&fs);
  REQUIRE(write_text(P("sw/box.info"), "agentcube-box 1\nuid 200123\n"
                     "gid 200123\nimage 0\n", 0644) == 0,
          "an earlier version's record");
  snprintf(legacy, sizeof legacy, "%s",
           P("sw/root/workspace/.agentcube-upload-abcDEF123456"));
  snprintf(staged, sizeof staged, "%s", P("sw/root/.agentcube/uploads/x"));
  REQUIRE(write_text(legacy, "half", 0600) == 0 &&
          chown(legacy, UID, UID) == 0 && write_text(staged, "half", 0600) ==
          0 && chown(staged, UID, UID) == 0, "what two crashes left");
  REQUIRE(write_text(P("sw/root/workspace/.agentcube-upload-keep"), "k",
                     0600) == 0, "a file of the session's own");
  /* the record cannot be rewritten: said, not fatal */
  REQUIRE(mkdir(P("sw/box.info.tmp"), 0755) == 0, "box.info.tmp in the way");
  is_int(boxfs_open(P("sw"), NULL, "sw", 1, UID, &again, &e), AC_OK,
         "reopened all the same: %s", e.msg);
  boxfs_close(&again);
  f = fopen(P("sw/box.info"), "re");
  if (f) {
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
  }
  ok(strstr(text, "staged") == NULL, "the record is as it was");
  REQUIRE(rmdir(P("sw/box.info.tmp")) == 0 &&
          write_text(legacy, "half", 0600) == 0 &&
          chown(legacy, UID, UID) == 0, "out of the way; a leftover again");
  is_int(boxfs_open(P("sw"), NULL, "sw", 1, UID, &again, &e), AC_OK,
         "reopened: %s", e.msg);
  ok(!exists(legacy) && !exists(staged), "both leftovers are gone");
  ok(exists(P("sw/root/workspace/.agentcube-upload-keep")),
     "the session's own file stays");
  f = fopen(P("sw/box.info"), "re");
  if (f) {
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
  }
  ok(strstr(text, "staged 1\n") != NULL, "the record says it was done");
  boxfs_close(&again);
  is_int(boxfs_purge(P("sw"), NULL, "sw", &e), AC_OK, "purged");
  /* a sweep that cannot act as the session (a record of uid 0): said,
  ** and the box opens all the same */
  REQUIRE(boxfs_create(P("sw0"), NULL, "sw0", 1, 0, 0, 0, NULL, &fs, &e) ==
          AC_OK, "a box of uid 0: %s", e.msg);
  boxfs_close(&fs);
  {
    int saved = dup(2), mem = memfd_create("stderr", MFD_CLOEXEC);
    char said[512] = "";
    ssize_t n;
    REQUIRE(saved >= 0 && mem >= 0 && dup2(mem, 2) == 2, "stderr caught");
    rc = boxfs_open(P("sw0"), NULL, "sw0", 1, 0, &again, &e);
    dup2(saved, 2);
    close(saved);
    n = pread(mem, said, sizeof said - 1, 0);
    said[n > 0 ? n : 0] = '\0';
    said[strcspn(said, "\n")] = '\0';
    close(mem);
    is_int(rc, AC_OK, "reopened though its sweep fails");
    ok(strstr(said, "sweeping crashed uploads: file API: a root server must "
              "act as the session's uid and gid") != NULL,
       "the failure is said on stderr: %s", said);
  }
  boxfs_close(&again);
  is_int(boxfs_purge(P("sw0"), NULL, "sw0", &e), AC_OK, "purged");
}

/* workspace replaced by a file while the server was down */
static void tree_cannot_be_prepared(void) {
  struct boxfs fs, again;
  struct ac_error e = { 0 };

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
  /* a plain box whose trees were deleted altogether */
  REQUIRE(boxfs_create(P("tree"), NULL, "tree", 1, UID, UID, 0, NULL, &fs,
                       &e) == AC_OK, "a box in place: %s", e.msg);
  boxfs_close(&fs);
  REQUIRE(boxfs_rmtree(P("tree/root"), &e) == AC_OK, "its trees deleted");
  is_int(boxfs_open(P("tree"), NULL, "tree", 1, UID, &again, &e),
         AC_ESYSTEM, "reopening fails");
  ok(strstr(e.msg, "box: open ") != NULL &&
     strstr(e.msg, P("tree/root")) != NULL, "names it: %s", e.msg);
  is_int(boxfs_purge(P("tree"), NULL, "tree", &e), AC_OK, "purged");
  /* published: the bind of its trees fails */
  REQUIRE(boxfs_create(P("tree"), pub, "tree", 1, UID, UID, 0, NULL, &fs,
                       &e) == AC_OK, "a published box: %s", e.msg);
  boxfs_close(&fs);
  REQUIRE(boxfs_rmtree(P("tree/root"), &e) == AC_OK, "its trees deleted");
  is_int(boxfs_open(P("tree"), pub, "tree", 1, UID, &again, &e),
         AC_ESYSTEM, "reopening fails");
  ok(strstr(e.msg, "box: bind ") != NULL &&
     strstr(e.msg, strerror(ENOENT)) != NULL, "at the bind: %s", e.msg);
  ok(!exists(P("pub/tree")), "nothing left published");
  is_int(boxfs_purge(P("tree"), pub, "tree", &e), AC_OK, "purged");
  /* a path through a file */
  REQUIRE(write_text(P("afile"), "x", 0644) == 0, "a file");
  is_int(boxfs_purge(P("afile/box"), NULL, "box", &e), AC_ESYSTEM,
         "purging a path through a file: refused");
  ok(strstr(e.msg, strerror(ENOTDIR)) != NULL, "says so: %s", e.msg);
  unlink(P("afile"));
}

/* }====================================================== */

/* {====================================================== removal */

static void removal(void) {
  struct boxfs fs;
  struct ac_error e = { 0 };
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
  is_int(boxfs_remove(&fs, &e), AC_OK, "removing a removed box is fine");
  /* a symlink in place of the tree: never followed */
  REQUIRE(mkdir(P("target"), 0755) == 0 &&
          write_text(P("target/keep"), "k", 0644) == 0 &&
          symlink(P("target"), P("link")) == 0, "a symlink to a directory");
  is_int(boxfs_rmtree(P("link"), &e), AC_ESYSTEM, "refused");
  ok(strstr(e.msg, "box: open ") != NULL, "says so: %s", e.msg);
  ok(exists(P("target/keep")), "its target is untouched");
}

/* An unprivileged server (the session's uid) removes a tree in which the
** session locked a directory (mode 0): it unlocks it first. */
static void removal_unprivileged(void) {
  int st;
  pid_t pid;

  tcase("an unprivileged server removes a tree the session locked");
  REQUIRE(chmod(top, 0711) == 0 && mkdir(P("u"), 0755) == 0 &&
          chown(P("u"), UID, UID) == 0, "a directory of the session's uid");
  pid = fork();
  if (pid == 0) {
    struct ac_error e = { 0 };
    if (setgroups(0, NULL) < 0 || setresgid(UID, UID, UID) < 0 ||
        setresuid(UID, UID, 0) < 0)             /* see child_exit.h */
      _exit(2);
    if (mkdir(P("u/box"), 0755) < 0 || mkdir(P("u/box/a"), 0755) < 0 ||
        mkdir(P("u/box/a/locked"), 0755) < 0 ||
        write_text(P("u/box/a/locked/f"), "f", 0644) < 0 ||
        chmod(P("u/box/a/locked"), 0) < 0 || chmod(P("u/box/a"), 0555) < 0)
      _exit(3);
    /* the control: a plain unlink inside fails */
    if (unlink(P("u/box/a/locked/f")) == 0 || errno != EACCES)
      _exit(4);
    child_exit(boxfs_rmtree(P("u/box"), &e) == AC_OK &&
               !exists(P("u/box")) ? 0 : 5);
  }
  REQUIRE(pid > 0 && waitpid(pid, &st, 0) == pid, "the server's child");
  is_int(WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st), 0,
         "the whole tree is removed (1 setup, 4 not locked, 5 left)");
  ok(!exists(P("u/box")), "gone");
  rmdir(P("u"));
  chmod(top, 0700);
}

/* }====================================================== */

int main(void) {
  plan(12);
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
  image_failures();
  no_loop_devices();
  disk_full();
  published_after_crash();
  image_box();
  bad_records();
  sweep_on_open();
  tree_cannot_be_prepared();
  removal();
  removal_unprivileged();
  umount2(P("pub/plain"), MNT_DETACH);
  nftw(top, rm_cb, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
  rmdir(top);
  return done_testing();
}
