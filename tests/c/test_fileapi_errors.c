/*
** test_fileapi_errors.c -- how the file API fails: a root server that is
** not allowed to become the session (uid 0, capabilities missing), many
** supplementary groups, a read-only filesystem, a symlink to an overlong
** name, a file renamed over a directory, a mount point removed, a host
** without /proc; and the component walk (used without openat2) giving
** the same answers as openat2 itself, case by case.
**
** Root only (the file API switches credentials only as root), in a
** private mount namespace for the mounts, against a fake box root in a
** temporary directory.
*/
#include "fileapi.h"
#include "fileapi_int.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SESSION_ID 200123
#define NGROUPS 40                  /* more than fapi_creds keeps inline */

static char base[64], rootdir[128];
static struct fapi_root R;

/* {====================================================== helpers */

static const char *H(const char *rel) {
  static char bufs[4][8192];
  static int i;
  char *b = bufs[i++ % 4];
  snprintf(b, sizeof bufs[0], "%s/%s", rootdir, rel);
  return b;
}

static int host_write(const char *host, const char *data, mode_t mode,
                      uid_t uid, gid_t gid) {
  int fd = open(host, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int ok_ = fd >= 0 && write(fd, data, strlen(data)) ==
            (ssize_t)strlen(data) && fchown(fd, uid, gid) == 0 &&
            fchmod(fd, mode) == 0;
  if (fd >= 0)
    close(fd);
  return ok_ ? 0 : -1;
}

static int host_mkdir(const char *host, mode_t mode, uid_t uid) {
  if (mkdir(host, mode) != 0 && errno != EEXIST)
    return -1;
  return chmod(host, mode) == 0 && chown(host, uid, uid) == 0 ? 0 : -1;
}

static int exists(const char *host) {
  struct stat st;
  return lstat(host, &st) == 0;
}

/* Reads a file through the API into buf. */
static enum ac_code api_read(const char *path, char *buf, size_t sz,
                             struct ac_error *e) {
  int fd;
  ssize_t n;
  enum ac_code rc = fapi_open_read(&R, path, &fd, NULL, e);
  buf[0] = '\0';
  if (rc)
    return rc;
  n = read(fd, buf, sz - 1);
  buf[n > 0 ? n : 0] = '\0';
  close(fd);
  return AC_OK;
}

static enum ac_code api_write(const char *path, const char *s,
                              struct ac_error *e) {
  struct fapi_writer *w;
  enum ac_code rc = fapi_write_begin(&R, path, 0644, &w, e);
  if (rc)
    return rc;
  if ((rc = fapi_write_data(w, s, strlen(s), e)) != AC_OK) {
    fapi_write_abort(w);
    return rc;
  }
  return fapi_write_commit(w, NULL, e);
}

/* The calling thread's effective capabilities. */
static int caps_get(uint32_t eff[2], uint32_t perm[2], uint32_t inh[2]) {
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct d[2];
  memset(d, 0, sizeof d);
  if (syscall(SYS_capget, &hdr, d) != 0)
    return -1;
  for (int i = 0; i < 2; i++) {
    eff[i] = d[i].effective;
    perm[i] = d[i].permitted;
    inh[i] = d[i].inheritable;
  }
  return 0;
}

static int caps_set_eff(const uint32_t eff[2]) {
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct d[2];
  uint32_t e[2], p[2], in[2];
  if (caps_get(e, p, in) != 0)
    return -1;
  for (int i = 0; i < 2; i++) {
    d[i].effective = eff[i];
    d[i].permitted = p[i];
    d[i].inheritable = in[i];
  }
  return (int)syscall(SYS_capset, &hdr, d);
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

/* }====================================================== */

/* {====================================================== credentials */

static void root_ids_refused(void) {
  struct fapi_root r0 = R;
  struct fapi_info fi;
  struct ac_error e;

  tcase("a root server never acts as uid 0 or gid 0 (AC_ECONFIG)");
  is_int(fapi_stat(&R, ".", &fi, &e), AC_OK, "as the session: fine "
         "(control)");
  r0.uid = 0;
  is_int(fapi_stat(&r0, ".", &fi, &e), AC_ECONFIG, "uid 0 refused");
  ok(strstr(e.msg, "must act as the session's uid and gid") != NULL,
     "says so: %s", e.msg);
  r0 = R;
  r0.gid = 0;
  is_int(fapi_stat(&r0, ".", &fi, &e), AC_ECONFIG, "gid 0 refused");
}

/* A server with more supplementary groups than fapi_creds keeps inline:
** none of them lets the session in, and all come back after the call. */
static void many_groups(void) {
  gid_t groups[NGROUPS], after[NGROUPS + 8];
  struct ac_error e;
  char buf[64];
  int n;

  tcase("%d supplementary groups: dropped for the call, all back after",
        NGROUPS);
  for (int i = 0; i < NGROUPS; i++)
    groups[i] = 300000 + (gid_t)i;
  REQUIRE(setgroups(NGROUPS, groups) == 0, "setgroups(%d)", NGROUPS);
  /* readable by the last of the server's groups only */
  REQUIRE(host_write(H("workspace/group-only"), "secret", 0640, 0,
                     groups[NGROUPS - 1]) == 0 &&
          host_write(H("workspace/session-group"), "shared", 0640, 0,
                     SESSION_ID) == 0, "two group-readable files");
  is_int(api_read("session-group", buf, sizeof buf, &e), AC_OK,
         "the session's own group reads its file (control)");
  is_str(buf, "shared", "its content");
  is_int(api_read("group-only", buf, sizeof buf, &e), AC_EACCESS,
         "the server's groups give the session nothing");
  ok(strstr(e.msg, "permission denied") != NULL, "says so: %s", e.msg);
  n = getgroups(NGROUPS + 8, after);
  is_int(n, NGROUPS, "every group is back after the call");
  ok(n == NGROUPS && memcmp(after, groups, sizeof groups) == 0,
     "the same groups, in order");
  setgroups(0, NULL);
}

/* A root server whose capabilities lack CAP_SETUID or CAP_SETGID (a
** hardened service unit): the switch fails, and the call fails with it
** instead of going on as root. */
static void missing_capabilities(void) {
  static const struct { int cap; const char *step; } t[] = {
    { CAP_SETUID, "setfsuid(200123) failed" },
    { CAP_SETGID, "file API: setgroups" },
  };
  uint32_t eff[2], perm[2], inh[2], now[2];
  struct ac_error e;

  tcase("without CAP_SETUID or CAP_SETGID nothing is done as root");
  REQUIRE(caps_get(eff, perm, inh) == 0, "capget");
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    uint32_t less[2] = { eff[0], eff[1] };
    int fsuid, fsgid, got;
    enum ac_code rc;
    less[t[i].cap / 32] &= ~(1U << (t[i].cap % 32));
    REQUIRE(caps_set_eff(less) == 0, "drop capability %d", t[i].cap);
    rc = api_write("as-root", "x", &e);
    fsuid = setfsuid((uid_t)-1);
    fsgid = setfsgid((gid_t)-1);
    got = caps_get(now, perm, inh);
    caps_set_eff(eff);
    is_int(rc, AC_ESYSTEM, "write refused without capability %d",
           t[i].cap);
    ok(strstr(e.msg, t[i].step) != NULL, "names the step: %s", e.msg);
    ok(!exists(H("workspace/as-root")), "no file written");
    ok(fsuid == 0 && fsgid == 0, "fsuid and fsgid back to 0");
    ok(got == 0 && now[0] == less[0] && now[1] == less[1],
       "the thread's capabilities as before the call");
  }
  is_int(api_write("as-root", "x", &e), AC_OK,
         "with them all, the same write works (control)");
}

/* }====================================================== */

/* {====================================================== errno cases */

/* Runs body once with openat2 and once with the component walk. */
#define BOTH_MODES(tag) \
  for (int walk_ = 0; walk_ < 2 && (fapi__force_walk(walk_), \
       tag = walk_ ? "[walk]" : "[openat2]", 1); walk_++)

static void read_only_fs(void) {
  struct fapi_info fi;
  struct ac_error e;
  const char *tag;

  tcase("a read-only filesystem is refused as such (AC_EACCESS)");
  REQUIRE(mount("tmpfs", H("tmp"), "tmpfs", MS_NOSUID | MS_NODEV,
                "size=64k,mode=1777") == 0, "a tmpfs on tmp");
  is_int(api_write("/tmp/before", "x", &e), AC_OK,
         "writable, it takes a file (control)");
  REQUIRE(mount(NULL, H("tmp"), NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID |
                MS_NODEV, NULL) == 0, "remounted read-only");
  BOTH_MODES(tag) {
    is_int(api_write("/tmp/after", "x", &e), AC_EACCESS, "%s write", tag);
    ok(strstr(e.msg, "read-only file system") != NULL, "%s says so: %s",
       tag, e.msg);
    is_int(fapi_mkdir(&R, "/tmp/d", 0, 0755, &fi, &e), AC_EACCESS,
           "%s mkdir", tag);
  }
  fapi__force_walk(0);
  ok(!exists(H("tmp/after")) && !exists(H("tmp/d")), "nothing created");
  umount2(H("tmp"), MNT_DETACH);
}

static void long_link_target(void) {
  char target[301], buf[16];
  struct ac_error e;
  const char *tag;

  tcase("a symlink to a name over 255 bytes: path too long (AC_EINVAL)");
  memset(target, 'a', 300);
  target[300] = '\0';
  REQUIRE(symlink(target, H("workspace/long")) == 0 &&
          lchown(H("workspace/long"), SESSION_ID, SESSION_ID) == 0,
          "the link");
  REQUIRE(symlink("short.txt", H("workspace/short")) == 0 &&
          host_write(H("workspace/short.txt"), "s", 0644, SESSION_ID,
                     SESSION_ID) == 0, "a link to a short name");
  BOTH_MODES(tag) {
    is_int(api_read("short", buf, sizeof buf, &e), AC_OK,
           "%s a short target reads (control)", tag);
    is_int(api_read("long", buf, sizeof buf, &e), AC_EINVAL, "%s read",
           tag);
    ok(strstr(e.msg, "path is too long") != NULL, "%s says so: %s", tag,
       e.msg);
  }
  fapi__force_walk(0);
}

static void file_over_directory(void) {
  struct fapi_info fi;
  struct ac_error e;
  struct stat st;

  tcase("a file renamed over a directory: 'Path is a directory'");
  REQUIRE(host_write(H("workspace/f.txt"), "f", 0644, SESSION_ID,
                     SESSION_ID) == 0 &&
          host_mkdir(H("workspace/dir"), 0755, SESSION_ID) == 0,
          "a file and a directory");
  is_int(fapi_rename(&R, "f.txt", "dir", 1, &fi, &e), AC_EINVAL,
         "rename with overwrite refused");
  ok(strstr(e.msg, "Path is a directory") != NULL, "says so: %s", e.msg);
  ok(lstat(H("workspace/dir"), &st) == 0 && S_ISDIR(st.st_mode) &&
     exists(H("workspace/f.txt")), "both are still there");
  is_int(fapi_rename(&R, "f.txt", "g.txt", 1, &fi, &e), AC_OK,
         "a rename to a free name works (control)");
}

static void mount_point_removed(void) {
  unsigned long long n = 0;
  struct ac_error e;

  tcase("removing a mount point fails with the system's reason");
  REQUIRE(host_mkdir(H("workspace/mnt"), 0755, SESSION_ID) == 0 &&
          mount("tmpfs", H("workspace/mnt"), "tmpfs", 0,
                "size=16k,mode=0755,uid=200123,gid=200123") == 0,
          "a mount on workspace/mnt");
  is_int(fapi_remove(&R, "mnt", 0, &n, &e), AC_ESYSTEM, "remove refused");
  ok(strstr(e.msg, "'mnt'") != NULL &&
     strstr(e.msg, strerror(EBUSY)) != NULL, "names it and why: %s",
     e.msg);
  is_int(n, 0, "nothing counted as removed");
  umount2(H("workspace/mnt"), MNT_DETACH);
  is_int(fapi_remove(&R, "mnt", 0, &n, &e), AC_OK,
         "unmounted, it goes (control)");
}

/* Recursive removal is bounded: a tree deeper than that is refused with
** the limit (ELIMIT: 507), not a stack the sandbox can grow at will. */
static int nest(const char *top, int levels) {
  char rel[2048];
  snprintf(rel, sizeof rel, "workspace/%s", top);
  for (int i = 0; i < levels; i++) {
    if (host_mkdir(H(rel), 0755, SESSION_ID) != 0)
      return -1;
    strcat(rel, "/d");
  }
  return 0;
}

static void nested_too_deep(void) {
  unsigned long long n = 0;
  struct ac_error e;

  tcase("a tree nested deeper than 256 levels is not removed: the limit "
        "is named");
  REQUIRE(nest("deep", 258) == 0, "a tree 258 levels deep");
  is_int(fapi_remove(&R, "deep", 1, &n, &e), AC_ELIMIT, "refused");
  ok(strstr(e.msg, "'deep' is nested more than 256 levels deep") != NULL,
     "says: %s", e.msg);
  ok(exists(H("workspace/deep")), "the tree is still there");
  /* control: 200 levels go */
  REQUIRE(nest("shallow", 200) == 0, "a tree 200 levels deep");
  is_int(fapi_remove(&R, "shallow", 1, &n, &e), AC_OK, "200 levels go");
  is_int(n, 200, "all of them counted");
  ok(!exists(H("workspace/shallow")), "gone");
}

/* Without /proc (some containers) the file behind an O_PATH fd cannot
** be reopened through /proc/self/fd: it is looked up once more and must
** be the same inode. */
static void without_proc(void) {
  struct fapi_entry *ents = NULL;
  struct ac_error e;
  size_t count = 0;
  int truncated, found;
  char buf[16];
  const char *tag;

  tcase("without /proc, reads and listings look the file up again");
  REQUIRE(host_write(H("workspace/p.txt"), "proc-less", 0644, SESSION_ID,
                     SESSION_ID) == 0, "a file");
  REQUIRE(mount("tmpfs", "/proc", "tmpfs", 0, "size=4k") == 0,
          "an empty tmpfs over /proc");
  ok(!exists("/proc/self/fd"), "no /proc/self/fd now");
  BOTH_MODES(tag) {
    is_int(api_read("p.txt", buf, sizeof buf, &e), AC_OK, "%s read", tag);
    is_str(buf, "proc-less", "%s the content", tag);
    is_int(fapi_list(&R, ".", 100, &ents, &count, &truncated, &e), AC_OK,
           "%s list", tag);
    found = 0;
    for (size_t i = 0; i < count; i++)
      found |= strcmp(ents[i].name, "p.txt") == 0;
    ok(found, "%s the listing has the file", tag);
    free(ents);
    ents = NULL;
  }
  fapi__force_walk(0);
  umount2("/proc", MNT_DETACH);
  ok(exists("/proc/self/fd"), "/proc is back");
}

/* }====================================================== */

/* {====================================================== walk = openat2 */

struct walk_case {
  const char *name, *path;
  int flags;
  unsigned long long resolve;
  int want;                   /* errno, or 0: opens what "same" names */
  const char *same;           /* host path (below the root) it must be */
};

/* The fd (or errno) of one lookup in one mode. */
static int lookup(const struct walk_case *c, int dirfd, int walk,
                  int *err) {
  int fd;
  fapi__force_walk(walk);
  errno = 0;
  fd = fapi__openat2(dirfd, c->path, c->flags, 0, c->resolve);
  *err = fd < 0 ? errno : 0;
  fapi__force_walk(0);
  return fd;
}

static void walk_matches_openat2(void) {
  static char longpath[5000];
  const struct walk_case t[] = {
    { "'..' above the start, BENEATH", "../x", O_PATH,
      RESOLVE_BENEATH, EXDEV, NULL },
    { "an absolute path, BENEATH", "/workspace", O_PATH,
      RESOLVE_BENEATH, EXDEV, NULL },
    { "a link to an absolute path, BENEATH", "workspace/abs", O_PATH,
      RESOLVE_BENEATH, EXDEV, NULL },
    { "a link to an absolute path, IN_ROOT", "workspace/abs", O_PATH,
      RESOLVE_IN_ROOT, 0, "workspace/w.txt" },
    { "'..' above the root, IN_ROOT", "../../workspace/w.txt", O_PATH,
      RESOLVE_IN_ROOT, 0, "workspace/w.txt" },
    { "a link with NO_SYMLINKS", "workspace/abs", O_PATH,
      RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS, ELOOP, NULL },
    { "a file as a directory", "workspace/w.txt/x", O_PATH,
      RESOLVE_IN_ROOT, ENOTDIR, NULL },
    { "O_DIRECTORY on a file", "workspace/w.txt", O_PATH | O_DIRECTORY,
      RESOLVE_IN_ROOT, ENOTDIR, NULL },
    { "a link loop", "workspace/loop", O_PATH, RESOLVE_IN_ROOT, ELOOP,
      NULL },
    { "a path over 4095 bytes", longpath, O_PATH, RESOLVE_IN_ROOT,
      ENAMETOOLONG, NULL },
    { "a file opened for reading", "workspace/w.txt", O_RDONLY,
      RESOLVE_IN_ROOT, 0, "workspace/w.txt" },
    { "'.' and '' are the start", "workspace/./.", O_PATH,
      RESOLVE_IN_ROOT, 0, "workspace" },
  };
  int dirfd = R.rootfd;

  tcase("the component walk answers as openat2 does");
  memset(longpath, 'a', sizeof longpath - 1);
  REQUIRE(host_write(H("workspace/w.txt"), "w", 0644, SESSION_ID,
                     SESSION_ID) == 0 &&
          symlink("/workspace/w.txt", H("workspace/abs")) == 0 &&
          symlink("loop", H("workspace/loop")) == 0, "the files");
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    int e1, e2, f1 = lookup(&t[i], dirfd, 0, &e1),
        f2 = lookup(&t[i], dirfd, 1, &e2);
    struct stat s1, s2, want;
    if (t[i].want) {
      ok(f1 < 0 && e1 == t[i].want, "openat2, %s: %s", t[i].name,
         strerror(e1));
      ok(f2 < 0 && e2 == t[i].want, "walk, %s: %s", t[i].name,
         strerror(e2));
    } else {
      ok(f1 >= 0 && f2 >= 0 && fstat(f1, &s1) == 0 && fstat(f2, &s2) == 0 &&
         lstat(H(t[i].same), &want) == 0 && s1.st_ino == want.st_ino &&
         s2.st_ino == want.st_ino, "both, %s: %s", t[i].name, t[i].same);
    }
    if (f1 >= 0)
      close(f1);
    if (f2 >= 0)
      close(f2);
  }
  {
    struct walk_case bad = { "a closed dirfd", "x", O_PATH,
                             RESOLVE_IN_ROOT, EBADF, NULL };
    int e1, e2, f1 = lookup(&bad, 999, 0, &e1), f2 = lookup(&bad, 999, 1,
                                                           &e2);
    ok(f1 < 0 && f2 < 0 && e1 == EBADF && e2 == EBADF,
       "both, a closed dirfd: EBADF");
  }
}

/* }====================================================== */

int main(void) {
  plan(10);
  if (geteuid() != 0)
    return skip_all("not root: the file API switches credentials only as "
                    "root, and the mounts need root");
  umask(022);
  if (unshare(CLONE_NEWNS) != 0 ||
      mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0) {
    printf("# private mount namespace: %s\n", strerror(errno));
    return done_testing();    /* every case missing: the plan fails */
  }
  snprintf(base, sizeof base, "/tmp/fapi-errors.XXXXXX");
  if (mkdtemp(base) == NULL)
    return done_testing();
  chmod(base, 0755);
  snprintf(rootdir, sizeof rootdir, "%s/root", base);
  if (host_mkdir(rootdir, 0755, 0) != 0 ||
      host_mkdir(H("workspace"), 0755, SESSION_ID) != 0 ||
      host_mkdir(H("tmp"), 01777, SESSION_ID) != 0 ||
      host_mkdir(H("home"), 0755, 0) != 0 ||
      host_mkdir(H("home/sandbox"), 0755, SESSION_ID) != 0 ||
      (R.rootfd = open(rootdir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
    printf("# the fake root: %s\n", strerror(errno));
    return done_testing();
  }
  R.uid = R.gid = SESSION_ID;

  root_ids_refused();
  many_groups();
  missing_capabilities();
  read_only_fs();
  long_link_target();
  file_over_directory();
  mount_point_removed();
  nested_too_deep();
  without_proc();
  walk_matches_openat2();

  close(R.rootfd);
  nftw(base, rm_cb, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
  rmdir(base);
  return done_testing();
}
