/*
** The host-side file API: formatting tables, path mapping, round trips,
** listings, and the file-API attacks of docs/sandbox.md §4, against a
** fake box root in a temporary directory.
**
** As root the tree belongs to an unprivileged session uid, so the fsuid
** switch is exercised, and the test runs in a private mount namespace (for
** a small tmpfs and a /proc bind inside the root). Every filesystem test
** runs twice: with openat2 and with the component walk used without it.
*/
#include "fileapi.h"
#include "fileapi_int.h"
#include "tap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SESSION_ID 200123           /* the session's uid and gid */
#define OTHER_ID   200124           /* some other unprivileged uid */

static char base[64];               /* mkdtemp: holds root/ and canaries */
static char rootdir[128];           /* the fake box root */
static struct fapi_root R;
static int is_root, have_ns;
static const char *mode_tag = "";   /* "[openat2]" or "[walk]" */

/* {====================================================== helpers */

/* Host path of rel below the fake root (a few rotating buffers). */
static const char *H(const char *rel) {
  static char bufs[4][8192];
  static int i;
  char *b = bufs[i++ % 4];
  snprintf(b, sizeof bufs[0], "%s/%s", rootdir, rel);
  return b;
}

static void own(const char *host, uid_t uid) {
  if (is_root && lchown(host, uid, uid) != 0)
    printf("# lchown %s: %s\n", host, strerror(errno));
}

static void host_write(const char *host, const char *data, mode_t mode) {
  int fd = open(host, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    printf("# open %s: %s\n", host, strerror(errno));
    return;
  }
  if (write(fd, data, strlen(data)) != (ssize_t)strlen(data))
    printf("# short write %s\n", host);
  fchmod(fd, mode);
  close(fd);
}

/* The whole content of a host file, or NULL. */
static char *host_read(const char *host, char *buf, size_t sz) {
  int fd = open(host, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  ssize_t n;
  if (fd < 0)
    return NULL;
  n = read(fd, buf, sz - 1);
  close(fd);
  if (n < 0)
    return NULL;
  buf[n] = '\0';
  return buf;
}

static void host_mkdir(const char *host, mode_t mode, uid_t uid) {
  if (mkdir(host, mode) != 0 && errno != EEXIST)
    printf("# mkdir %s: %s\n", host, strerror(errno));
  chmod(host, mode);
  own(host, uid);
}

static void host_symlink(const char *target, const char *rel) {
  if (symlink(target, H(rel)) != 0)
    printf("# symlink %s: %s\n", rel, strerror(errno));
  own(H(rel), SESSION_ID);
}

/* Writes data through the API: begin, data, commit. */
static enum ac_code put(const char *path, const void *data, size_t len,
                        mode_t mode, struct fapi_info *fi,
                        struct ac_error *e) {
  struct fapi_writer *w;
  enum ac_code rc = fapi_write_begin(&R, path, mode, &w, e);
  if (rc)
    return rc;
  rc = fapi_write_data(w, data, len, e);
  if (rc) {
    fapi_write_abort(w);
    return rc;
  }
  return fapi_write_commit(w, fi, e);
}

static enum ac_code puts_(const char *path, const char *s, mode_t mode,
                          struct ac_error *e) {
  struct fapi_info fi = { 0 };
  return put(path, s, strlen(s), mode, &fi, e);
}

/* Reads a whole file through the API into buf (NUL-terminated). */
static enum ac_code get(const char *path, char *buf, size_t sz,
                       struct fapi_info *fi, struct ac_error *e) {
  int fd;
  ssize_t n;
  size_t got = 0;
  enum ac_code rc = fapi_open_read(&R, path, &fd, fi, e);
  if (rc)
    return rc;
  while (got + 1 < sz) {
    n = read(fd, buf + got, sz - 1 - got);
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  buf[got] = '\0';
  close(fd);
  return AC_OK;
}

/* Entries of a host directory whose names start with prefix, "." and
** ".." left out. */
static int count_entries(const char *dir, const char *prefix) {
  DIR *d = opendir(dir);
  struct dirent *de;
  int n = 0;
  if (d == NULL)
    return -1;
  for (;;) {
    de = readdir(d);
    if (de == NULL)
      break;
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
        strncmp(de->d_name, prefix, strlen(prefix)) == 0)
      n++;
  }
  closedir(d);
  return n;
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  if (d == NULL)
    return -1;
  while (readdir(d))
    n++;
  closedir(d);
  return n;
}

/* The calling thread's credentials, to check that every call restores
** them. */
struct creds {
  int fsuid, fsgid, ngroups;
  gid_t groups[64];
  uint32_t eff[2];
};

static void creds_get(struct creds *c) {
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[2];
  memset(c, 0, sizeof *c);
  memset(data, 0, sizeof data);
  c->fsuid = setfsuid((uid_t)-1);
  c->fsgid = setfsgid((gid_t)-1);
  c->ngroups = getgroups(64, c->groups);
  if (syscall(SYS_capget, &hdr, data) == 0) {
    c->eff[0] = data[0].effective;
    c->eff[1] = data[1].effective;
  }
}

static struct creds initial_creds;

static int creds_same(void) {
  struct creds now;
  creds_get(&now);
  return now.fsuid == initial_creds.fsuid &&
         now.fsgid == initial_creds.fsgid &&
         now.ngroups == initial_creds.ngroups &&
         memcmp(now.groups, initial_creds.groups,
                sizeof now.groups[0] * (size_t)(now.ngroups > 0 ?
                                                now.ngroups : 0)) == 0 &&
         now.eff[0] == initial_creds.eff[0] &&
         now.eff[1] == initial_creds.eff[1];
}

static void skip(const char *what, const char *why) {
  char name[256];
  snprintf(name, sizeof name, "%s %s", mode_tag, what);
  skip_check(name, why);
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

static void rm_rf(const char *p) {
  nftw(p, rm_cb, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
  rmdir(p);
}

/* }====================================================== */

/* {====================================================== pure tables */

static void test_mode_strings(void) {
  tcase("mode strings");
  static const struct { mode_t m; const char *s; } t[] = {
    { S_IFREG | 0644, "-rw-r--r--" },
    { S_IFREG | 0755, "-rwxr-xr-x" },
    { S_IFREG | 0, "----------" },
    { S_IFDIR | 0755, "drwxr-xr-x" },
    { S_IFDIR | S_ISVTX | 0777, "dtrwxrwxrwx" },
    { S_IFDIR | S_ISGID | 0755, "dgrwxr-xr-x" },
    { S_IFREG | S_ISUID | 0755, "urwxr-xr-x" },
    { S_IFREG | S_ISGID | 0755, "grwxr-xr-x" },
    { S_IFREG | S_ISUID | S_ISGID | S_ISVTX | 0777, "ugtrwxrwxrwx" },
    { S_IFLNK | 0777, "Lrwxrwxrwx" },
    { S_IFIFO | 0644, "prw-r--r--" },
    { S_IFSOCK | 0755, "Srwxr-xr-x" },
    { S_IFCHR | 0666, "Dcrw-rw-rw-" },
    { S_IFBLK | 0660, "Drw-rw----" },
    { S_IFCHR | S_ISUID | 0600, "Ducrw-------" },
    { 0644, "?rw-r--r--" },
  };
  char buf[24];
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    is_str(fapi_mode_string(t[i].m, buf), t[i].s, "mode string %s", t[i].s);
}

static void test_parse_mode(void) {
  tcase("mode parsing");
  static const struct { const char *s; mode_t m; } t[] = {
    { "0644", 0644 }, { "644", 0644 }, { "0755", 0755 }, { "755", 0755 },
    { "0000", 0 }, { "0", 0 }, { "0777", 0777 }, { "777", 0777 },
    { "0600", 0600 }, { "00000000000000000000000755", 0755 },
    { "", 0644 }, { "abc", 0644 }, { "0x1ff", 0644 }, { "-1", 0644 },
    { "0778", 0644 }, { "10000", 0644 }, { "1000", 0644 },
    { " 644", 0644 }, { "644 ", 0644 }, { "+644", 0644 },
    { "0o755", 0644 }, { "99999999999999999999999", 0644 },
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    is_int(fapi_parse_mode(t[i].s), t[i].m, "parse mode \"%s\"", t[i].s);
  is_int(fapi_parse_mode(NULL), 0644, "parse mode NULL");
}

static void test_rfc3339(void) {
  tcase("RFC 3339 times");
  static const struct { time_t s; long ns; const char *want; } t[] = {
    { 0, 0, "1970-01-01T00:00:00Z" },
    { 1763461800, 0, "2025-11-18T10:30:00Z" },
    { 1763461800, 123456789, "2025-11-18T10:30:00.123456789Z" },
    { 1763461800, 125589000, "2025-11-18T10:30:00.125589Z" },
    { 1763461800, 100000000, "2025-11-18T10:30:00.1Z" },
    { 1763461800, 1, "2025-11-18T10:30:00.000000001Z" },
    { 1763461800, 10, "2025-11-18T10:30:00.00000001Z" },
    { 1763461800, 500000, "2025-11-18T10:30:00.0005Z" },
    { 951782400, 0, "2000-02-29T00:00:00Z" },
    { 253402300799, 999999999, "9999-12-31T23:59:59.999999999Z" },
    { -1, 0, "1969-12-31T23:59:59Z" },
  };
  char buf[40];
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    struct timespec ts = { t[i].s, t[i].ns };
    is_str(fapi_rfc3339(ts, buf), t[i].want, "rfc3339 %s", t[i].want);
  }
}

static void test_map_path(void) {
  tcase("path mapping into the box");
  static const struct {
    const char *in, *out;
    enum ac_code rc;
  } t[] = {
    { "a.txt", "workspace/a.txt", AC_OK },
    { "", "workspace", AC_OK },
    { ".", "workspace", AC_OK },
    { "./", "workspace", AC_OK },
    { "a/b/c", "workspace/a/b/c", AC_OK },
    { "/workspace/x", "workspace/x", AC_OK },
    { "/workspace", "workspace", AC_OK },
    { "/workspace/", "workspace", AC_OK },
    { "/tmp/x", "tmp/x", AC_OK },
    { "/tmp", "tmp", AC_OK },
    { "/home/sandbox/x", "home/sandbox/x", AC_OK },
    { "/home/sandbox", "home/sandbox", AC_OK },
    { "a/../b", "workspace/b", AC_OK },
    { "a/./b/", "workspace/a/b", AC_OK },
    { "//workspace//x", "workspace/x", AC_OK },
    { "x/", "workspace/x", AC_OK },
    { "/../workspace/x", "workspace/x", AC_OK },
    { "/tmp/../workspace/a", "workspace/a", AC_OK },
    { "workspace/x", "workspace/workspace/x", AC_OK },
    { "..\\x", "workspace/..\\x", AC_OK },
    { "%2e%2e%2fetc", "workspace/%2e%2e%2fetc", AC_OK },
    { "...", "workspace/...", AC_OK },
    { "a/..b", "workspace/a/..b", AC_OK },
    { "/etc/passwd", NULL, AC_EACCESS },
    { "//etc/passwd", NULL, AC_EACCESS },
    { "/proc/self/environ", NULL, AC_EACCESS },
    { "/", NULL, AC_EACCESS },
    { "/..", NULL, AC_EACCESS },
    { "/home", NULL, AC_EACCESS },
    { "/home/other/x", NULL, AC_EACCESS },
    { "/home/sandboxx", NULL, AC_EACCESS },
    { "/tmpfoo", NULL, AC_EACCESS },
    { "/workspacex/y", NULL, AC_EACCESS },
    { "/workspace/../etc", NULL, AC_EACCESS },
    { "../x", NULL, AC_EACCESS },
    { "..", NULL, AC_EACCESS },
    { "a/../../x", NULL, AC_EACCESS },
    { "../../etc/passwd", NULL, AC_EACCESS },
    { "a/../../../../etc/passwd", NULL, AC_EACCESS },
  };
  char out[4096];
  char longp[5000], comp[300];
  struct ac_error e;

  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    enum ac_code rc = fapi_map_path(t[i].in, out, sizeof out, &e);
    is_int(rc, t[i].rc, "map \"%s\" code", t[i].in);
    if (t[i].out && rc == AC_OK)
      is_str(out, t[i].out, "map \"%s\"", t[i].in);
  }
  fapi_map_path("/etc/passwd", out, sizeof out, &e);
  is_str(e.msg, "access denied: path '/etc/passwd' is outside the "
         "session's workspace", "refusal message");
  fapi_map_path("../x", out, sizeof out, &e);
  ok(strncmp(e.msg, "access denied: ", 15) == 0, "traversal message");

  memset(comp, 'n', 255);
  comp[255] = '\0';
  is_int(fapi_map_path(comp, out, sizeof out, &e), AC_OK,
         "255-byte component accepted");
  comp[255] = 'n';
  comp[256] = '\0';
  is_int(fapi_map_path(comp, out, sizeof out, &e), AC_EINVAL,
         "256-byte component refused");
  memset(longp, 'a', sizeof longp - 1);
  longp[sizeof longp - 1] = '\0';
  for (size_t i = 100; i < sizeof longp - 1; i += 100)
    longp[i] = '/';
  is_int(fapi_map_path(longp, out, sizeof out, &e), AC_EINVAL,
         "path over 4095 bytes refused");
  longp[4095] = '\0';
  longp[4094] = 'a';
  is_int(fapi_map_path(longp, out, sizeof out, &e), AC_EINVAL,
         "4095 bytes plus workspace/ refused");
  longp[4095 - 10] = '\0';
  is_int(fapi_map_path(longp, out, sizeof out, &e), AC_OK,
         "4085 bytes plus workspace/ fit");
  is_int(strlen(out), 4095, "mapped length 4095");
  is_int(fapi_map_path("a/b", out, 5, &e), AC_EINVAL, "small buffer");
  is_int(fapi_map_path("a", out, 12, &e), AC_OK, "exact buffer");
}

/* }====================================================== */

/* {====================================================== fake root */

static int setup_tree(void) {
  snprintf(base, sizeof base, "/tmp/fapi-test.XXXXXX");
  if (mkdtemp(base) == NULL)
    return -1;
  chmod(base, 0755);
  snprintf(rootdir, sizeof rootdir, "%s/root", base);
  host_mkdir(rootdir, 0755, 0);
  host_mkdir(H("workspace"), 0755, SESSION_ID);
  host_mkdir(H("tmp"), 01777, SESSION_ID);
  host_mkdir(H("home"), 0755, 0);
  host_mkdir(H("home/sandbox"), 0755, SESSION_ID);
  R.rootfd = open(rootdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  R.uid = is_root ? SESSION_ID : getuid();
  R.gid = is_root ? SESSION_ID : getgid();
  return R.rootfd >= 0 ? 0 : -1;
}

static void teardown_tree(void) {
  char p[256];
  if (have_ns) {
    snprintf(p, sizeof p, "%s/proc", rootdir);
    umount2(p, MNT_DETACH);
    snprintf(p, sizeof p, "%s/tmp", rootdir);
    umount2(p, MNT_DETACH);
  }
  close(R.rootfd);
  rm_rf(base);
}

/* }====================================================== */

/* {====================================================== round trips */

static void test_round_trips(void) {
  tcase("%s write/read round trips", mode_tag);
  struct fapi_info fi = { 0 };
  struct ac_error e;
  char buf[256], mode[24];
  struct stat st;
  static const struct { const char *in, *host, *report; } t[] = {
    { "hello.txt", "workspace/hello.txt", "hello.txt" },
    { "/workspace/dir/a.txt", "workspace/dir/a.txt", "dir/a.txt" },
    { "/tmp/t.txt", "tmp/t.txt", "/tmp/t.txt" },
    { "/home/sandbox/h.txt", "home/sandbox/h.txt", "/home/sandbox/h.txt" },
    { "a/../b.txt", "workspace/b.txt", "b.txt" },
    { "//workspace//c.txt", "workspace/c.txt", "c.txt" },
    { "trail.txt/", "workspace/trail.txt", "trail.txt" },
  };

  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    char content[64];
    snprintf(content, sizeof content, "content %zu\n", i);
    is_int(put(t[i].in, content, strlen(content), 0644, &fi, &e), AC_OK,
           "%s write %s", mode_tag, t[i].in);
    is_str(fi.path, t[i].report, "%s reported path of %s", mode_tag,
           t[i].in);
    is_int(fi.size, strlen(content), "%s reported size", mode_tag);
    is_str(fapi_mode_string(fi.mode, mode), "-rw-r--r--",
           "%s reported mode", mode_tag);
    ok(fi.mtime.tv_sec > 1600000000, "%s reported mtime", mode_tag);
    ok(host_read(H(t[i].host), buf, sizeof buf) &&
       strcmp(buf, content) == 0, "%s host file %s", mode_tag, t[i].host);
    if (is_root)
      ok(lstat(H(t[i].host), &st) == 0 && st.st_uid == SESSION_ID &&
         st.st_gid == SESSION_ID, "%s owned by the session", mode_tag);
    memset(buf, 0, sizeof buf);
    is_int(get(t[i].in, buf, sizeof buf, &fi, &e), AC_OK, "%s read %s",
           mode_tag, t[i].in);
    is_str(buf, content, "%s read back", mode_tag);
    is_str(fi.path, t[i].report, "%s read path", mode_tag);
  }
  is_str(fi.name, "trail.txt", "%s name", mode_tag);

  /* Binary content with NULs, and an empty file. */
  {
    char bin[4096], back[4200];
    int fd;
    ssize_t n;
    for (size_t i = 0; i < sizeof bin; i++)
      bin[i] = (char)(i * 7);
    is_int(put("bin.dat", bin, sizeof bin, 0644, &fi, &e), AC_OK,
           "%s binary write", mode_tag);
    is_int(fapi_open_read(&R, "bin.dat", &fd, &fi, &e), AC_OK,
           "%s binary open", mode_tag);
    n = read(fd, back, sizeof back);
    close(fd);
    ok(n == (ssize_t)sizeof bin && memcmp(bin, back, sizeof bin) == 0,
       "%s binary round trip", mode_tag);
    ok(fcntl(fd, F_GETFD) < 0, "%s fd closed", mode_tag);
    is_int(put("empty.txt", "", 0, 0644, &fi, &e), AC_OK,
           "%s empty write", mode_tag);
    is_int(fi.size, 0, "%s empty size", mode_tag);
    is_int(get("empty.txt", buf, sizeof buf, &fi, &e), AC_OK,
           "%s empty read", mode_tag);
    is_int(strlen(buf), 0, "%s empty content", mode_tag);
  }
  /* Streaming in several chunks. */
  {
    struct fapi_writer *w;
    is_int(fapi_write_begin(&R, "chunks.txt", 0644, &w, &e), AC_OK,
           "%s chunked begin", mode_tag);
    for (int i = 0; i < 100; i++)
      fapi_write_data(w, "0123456789", 10, &e);
    is_int(fapi_write_commit(w, &fi, &e), AC_OK, "%s chunked commit",
           mode_tag);
    is_int(fi.size, 1000, "%s chunked size", mode_tag);
  }
  /* A file info read with info NULL, and a writer committed without. */
  {
    int fd;
    is_int(fapi_open_read(&R, "hello.txt", &fd, NULL, &e), AC_OK,
           "%s open with info NULL", mode_tag);
    close(fd);
  }
  ok(creds_same(), "%s credentials restored after round trips", mode_tag);
}

static void test_nested_and_modes(void) {
  tcase("%s nested directories and modes", mode_tag);
  struct fapi_info fi = { 0 };
  struct ac_error e;
  struct stat st;
  char mode[24], buf[64];
  static const struct { mode_t in; const char *want; } t[] = {
    { 0644, "-rw-r--r--" }, { 0755, "-rwxr-xr-x" }, { 0777, "-rwxr-xr-x" },
    { 0600, "-rw-------" }, { 0640, "-rw-r-----" }, { 0, "----------" },
    { 04755, "-rwxr-xr-x" }, { 0666, "-rw-r--r--" },
  };

  is_int(puts_("n1/n2/n3/f.txt", "deep", 0644, &e), AC_OK,
         "%s nested write", mode_tag);
  ok(stat(H("workspace/n1/n2/n3"), &st) == 0 && S_ISDIR(st.st_mode),
     "%s parents created", mode_tag);
  is_int(st.st_mode & 07777, 0755, "%s parent mode 0755", mode_tag);
  if (is_root)
    ok(st.st_uid == SESSION_ID, "%s parent owned by session", mode_tag);

  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    char name[32];
    snprintf(name, sizeof name, "mode%zu", i);
    is_int(put(name, "x", 1, t[i].in, &fi, &e), AC_OK, "%s write mode %04o",
           mode_tag, (unsigned)t[i].in);
    is_str(fapi_mode_string(fi.mode, mode), t[i].want,
           "%s new file mode %04o", mode_tag, (unsigned)t[i].in);
  }
  /* Overwrite keeps the existing mode, replaces the content. */
  is_int(put("keep.sh", "v1", 2, 0755, &fi, &e), AC_OK, "%s keep v1",
         mode_tag);
  is_str(fapi_mode_string(fi.mode, mode), "-rwxr-xr-x", "%s keep v1 mode",
         mode_tag);
  chmod(H("workspace/keep.sh"), 0700);
  is_int(put("keep.sh", "v2", 2, 0644, &fi, &e), AC_OK, "%s keep v2",
         mode_tag);
  is_str(fapi_mode_string(fi.mode, mode), "-rwx------",
         "%s overwrite keeps mode", mode_tag);
  ok(host_read(H("workspace/keep.sh"), buf, sizeof buf) &&
     strcmp(buf, "v2") == 0, "%s overwrite replaced content", mode_tag);
  chmod(H("workspace/keep.sh"), 04755);
  is_int(put("keep.sh", "v3", 2, 0644, &fi, &e), AC_OK, "%s keep v3",
         mode_tag);
  is_str(fapi_mode_string(fi.mode, mode), "-rwxr-xr-x",
         "%s overwrite drops setuid", mode_tag);
  /* A directory at the target. */
  host_mkdir(H("workspace/adir"), 0755, SESSION_ID);
  is_int(puts_("adir", "x", 0644, &e), AC_EINVAL, "%s write onto dir",
         mode_tag);
  is_str(e.msg, "Path is a directory, not a file", "%s dir message",
         mode_tag);
  is_int(puts_(".", "x", 0644, &e), AC_EINVAL, "%s write onto .", mode_tag);
  is_int(puts_("/tmp", "x", 0644, &e), AC_EINVAL, "%s write onto /tmp",
         mode_tag);
  is_int(puts_("/home/sandbox", "x", 0644, &e), AC_EINVAL,
         "%s write onto /home/sandbox", mode_tag);
  is_int(puts_("", "x", 0644, &e), AC_EINVAL, "%s empty path write",
         mode_tag);
  is_int(puts_("hello.txt/x", "x", 0644, &e), AC_EINVAL,
         "%s parent is a file", mode_tag);
  /* A directory appearing while the body streams: commit refuses. */
  {
    struct fapi_writer *w;
    int left;
    is_int(fapi_write_begin(&R, "late", 0644, &w, &e), AC_OK,
           "%s late begin", mode_tag);
    host_mkdir(H("workspace/late"), 0755, SESSION_ID);
    fapi_write_data(w, "x", 1, &e);
    is_int(fapi_write_commit(w, &fi, &e), AC_EINVAL,
           "%s commit onto a new dir", mode_tag);
    left = count_entries(H("workspace"), FAPI_TMP_PREFIX);
    is_int(left, 0, "%s failed commit left no temp file", mode_tag);
  }
  ok(creds_same(), "%s credentials restored after modes", mode_tag);
}

static void test_read_errors(void) {
  tcase("%s read errors", mode_tag);
  struct ac_error e;
  char buf[64];
  int fd = 12345;

  is_int(fapi_open_read(&R, "missing.txt", &fd, NULL, &e), AC_ENOTFOUND,
         "%s missing file", mode_tag);
  is_str(e.msg, "File not found", "%s missing message", mode_tag);
  is_int(fd, -1, "%s fd -1 on failure", mode_tag);
  is_int(get("n1", buf, sizeof buf, NULL, &e), AC_EINVAL, "%s read a dir",
         mode_tag);
  is_str(e.msg, "Path is a directory, not a file", "%s dir message",
         mode_tag);
  is_int(get("", buf, sizeof buf, NULL, &e), AC_EINVAL,
         "%s read the workspace", mode_tag);
  is_int(get("hello.txt/x", buf, sizeof buf, NULL, &e), AC_ENOTFOUND,
         "%s file as a directory", mode_tag);
  is_int(get("nodir/x", buf, sizeof buf, NULL, &e), AC_ENOTFOUND,
         "%s missing parent", mode_tag);
}

/* }====================================================== */

/* {====================================================== listings */

static int find(const struct fapi_entry *v, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i].name, name) == 0)
      return (int)i;
  return -1;
}

static void test_list(void) {
  tcase("%s listing", mode_tag);
  /* every entry, a name that looks like an upload temporary too: the
  ** sandbox must not be able to hide a file from the agent */
  static const char *want[] = {
    FAPI_TMP_PREFIX "abc123", ".dot", "B", "_x", "a", "b", "d", "lnk",
    "\xc3\xa9"
  };
  struct fapi_entry *v = NULL;
  struct ac_error e;
  size_t n;
  int tr, i;
  char mode[24], name[32];

  host_mkdir(H("workspace/ls"), 0755, SESSION_ID);
  host_write(H("workspace/ls/b"), "bb", 0644);
  host_write(H("workspace/ls/a"), "a", 0600);
  host_write(H("workspace/ls/B"), "BBB", 0755);
  host_write(H("workspace/ls/_x"), "", 0644);
  host_write(H("workspace/ls/.dot"), "dot", 0644);
  host_write(H("workspace/ls/\xc3\xa9"), "e", 0644);
  host_write(H("workspace/ls/" FAPI_TMP_PREFIX "abc123"), "tmp", 0600);
  host_mkdir(H("workspace/ls/d"), 0755, SESSION_ID);
  host_symlink("a", "workspace/ls/lnk");

  is_int(fapi_list(&R, "ls", 100, &v, &n, &tr, &e), AC_OK, "%s list",
         mode_tag);
  is_int(n, 9, "%s list count", mode_tag);
  is_int(tr, 0, "%s not truncated", mode_tag);
  for (size_t k = 0; k < n && k < 9; k++)
    is_str(v[k].name, want[k], "%s sorted entry %zu", mode_tag, k);
  i = find(v, n, "B");
  ok(i >= 0 && v[i].size == 3, "%s size of B", mode_tag);
  is_str(i >= 0 ? fapi_mode_string(v[i].mode, mode) : "", "-rwxr-xr-x",
         "%s mode of B", mode_tag);
  i = find(v, n, "d");
  ok(i >= 0 && S_ISDIR(v[i].mode), "%s d is a dir", mode_tag);
  i = v != NULL ? find(v, n, "lnk") : -1;
  is_str(i >= 0 ? fapi_mode_string(v[i].mode, mode) : "", "Lrwxrwxrwx",
         "%s symlink not followed", mode_tag);
  ok(i >= 0 && v[i].size == 1, "%s symlink size is its length", mode_tag);
  ok(i >= 0 && v[i].mtime.tv_sec > 1600000000, "%s mtime", mode_tag);
  free(v);

  /* Our own in-progress upload has no name (O_TMPFILE): nothing to list,
  ** and abort leaves nothing. */
  {
    struct fapi_writer *w;
    struct stat st;
    is_int(fapi_write_begin(&R, "ls/inprogress", 0644, &w, &e), AC_OK,
           "%s begin in ls", mode_tag);
    fapi_write_data(w, "x", 1, &e);
    is_int(fapi_list(&R, "/workspace/ls", 100, &v, &n, &tr, &e), AC_OK,
           "%s list during upload", mode_tag);
    is_int(n, 9, "%s upload in progress invisible", mode_tag);
    free(v);
    fapi_write_abort(w);
    ok(lstat(H("workspace/ls/inprogress"), &st) != 0,
       "%s abort created nothing", mode_tag);
    fapi_write_abort(NULL);
    ok(1, "%s abort(NULL) is a no-op", mode_tag);
  }
  /* Empty directory. */
  host_mkdir(H("workspace/emptydir"), 0755, SESSION_ID);
  v = NULL;
  is_int(fapi_list(&R, "emptydir", 100, &v, &n, &tr, &e), AC_OK,
         "%s list empty", mode_tag);
  if (!(v != NULL && n == 0 && tr == 0))
    printf("# v=%p n=%zu tr=%d first=%s\n", (void *)v, n, tr,
           v && n ? v[0].name : "");
  ok(v != NULL && n == 0 && tr == 0, "%s empty: non-NULL, 0 entries",
     mode_tag);
  free(v);
  /* The cap keeps the first names in sorted order. */
  host_mkdir(H("workspace/many"), 0755, SESSION_ID);
  for (int k = 199; k >= 0; k--) {
    snprintf(name, sizeof name, "workspace/many/f%03d", (k * 37) % 200);
    host_write(H(name), "x", 0644);
  }
  is_int(fapi_list(&R, "many", 50, &v, &n, &tr, &e), AC_OK,
         "%s list capped", mode_tag);
  is_int(n, 50, "%s capped count", mode_tag);
  is_int(tr, 1, "%s truncated", mode_tag);
  {
    int good = 1;
    for (size_t k = 0; k < n; k++) {
      snprintf(name, sizeof name, "f%03zu", k);
      if (strcmp(v[k].name, name) != 0)
        good = 0;
    }
    ok(good, "%s capped listing is the sorted prefix", mode_tag);
  }
  free(v);
  is_int(fapi_list(&R, "many", 200, &v, &n, &tr, &e), AC_OK,
         "%s list exact cap", mode_tag);
  ok(n == 200 && tr == 0, "%s exact cap not truncated", mode_tag);
  free(v);
  is_int(fapi_list(&R, "many", 0, &v, &n, &tr, &e), AC_OK,
         "%s list cap 0", mode_tag);
  ok(n == 0 && tr == 1, "%s cap 0: nothing, truncated", mode_tag);
  free(v);
  /* Workspace aliases, errors. */
  {
    size_t n1, n2;
    is_int(fapi_list(&R, ".", 1000, &v, &n1, &tr, &e), AC_OK,
           "%s list .", mode_tag);
    free(v);
    is_int(fapi_list(&R, "", 1000, &v, &n2, &tr, &e), AC_OK,
           "%s list \"\"", mode_tag);
    ok(n1 == n2 && find(v, n2, "hello.txt") >= 0, "%s \"\" is /workspace",
       mode_tag);
    free(v);
  }
  is_int(fapi_list(&R, "nodir", 10, &v, &n, &tr, &e), AC_ENOTFOUND,
         "%s list missing", mode_tag);
  is_str(e.msg, "Directory not found", "%s list missing message", mode_tag);
  ok(v == NULL && n == 0, "%s nothing returned on failure", mode_tag);
  is_int(fapi_list(&R, "hello.txt", 10, &v, &n, &tr, &e), AC_EINVAL,
         "%s list a file", mode_tag);
  is_int(fapi_list(&R, "/etc", 10, &v, &n, &tr, &e), AC_EACCESS,
         "%s list /etc refused", mode_tag);
  is_int(fapi_list(&R, "/tmp", 1000, &v, &n, &tr, &e), AC_OK,
         "%s list /tmp", mode_tag);
  ok(find(v, n, "t.txt") >= 0, "%s /tmp content", mode_tag);
  free(v);
  ok(creds_same(), "%s credentials restored after listings", mode_tag);
}

/* }====================================================== */

/* {====================================================== attacks */

/* A read that must fail, or at least never return host content. */
static void no_host(const char *path, enum ac_code want, const char *what) {
  struct ac_error e;
  char buf[4096];
  enum ac_code rc = get(path, buf, sizeof buf, NULL, &e);
  is_int(rc, want, "%s %s: %s", mode_tag, what, path);
  /* a read that should have succeeded must not show host content */
  if (want == AC_OK)
    ok(strstr(buf, "root:") == NULL, "%s %s: no host content", mode_tag,
       what);
}

static void test_traversal(void) {
  tcase("%s A1-A3 traversal refused", mode_tag);
  /* A1, A2, A3: refused lexically, or literal names that do not exist. */
  no_host("../../etc/passwd", AC_EACCESS, "A1 traversal");
  no_host("a/../../../../etc/passwd", AC_EACCESS, "A1 traversal");
  no_host("/etc/passwd", AC_EACCESS, "A2 absolute");
  no_host("//etc/passwd", AC_EACCESS, "A2 absolute");
  no_host("/proc/self/environ", AC_EACCESS, "A2 absolute");
  no_host("/workspace/../../etc/passwd", AC_EACCESS, "A2 absolute");
  no_host("%2e%2e%2fetc%2fpasswd", AC_ENOTFOUND, "A3 encoded");
  no_host("..%2fetc%2fpasswd", AC_ENOTFOUND, "A3 encoded");
  no_host("..\\..\\etc\\passwd", AC_ENOTFOUND, "A3 backslash");
  no_host("\xef\xbc\x8e\xef\xbc\x8e\xef\xbc\x8f" "etc", AC_ENOTFOUND,
          "A3 fullwidth");
  no_host("\xc0\xae\xc0\xae/etc/passwd", AC_ENOTFOUND, "A3 overlong");
  {
    /* A C string ends at the NUL: only "ok.txt" is ever seen. */
    struct ac_error e;
    char buf[64];
    puts_("ok.txt", "fine", 0644, &e);
    is_int(get("ok.txt\0/../../etc/passwd", buf, sizeof buf, NULL, &e),
           AC_OK, "%s A3 NUL byte ends the path", mode_tag);
    is_str(buf, "fine", "%s A3 NUL: the workspace file", mode_tag);
  }
  {
    char comp[300], deep[4200];
    struct ac_error e;
    struct fapi_info fi = { 0 };
    char buf[64];
    memset(comp, 'L', 256);
    comp[256] = '\0';
    is_int(puts_(comp, "x", 0644, &e), AC_EINVAL,
           "%s A3 256-byte name write", mode_tag);
    is_int(get(comp, buf, sizeof buf, NULL, &e), AC_EINVAL,
           "%s A3 256-byte name read", mode_tag);
    comp[255] = '\0';
    is_int(put(comp, "long", 4, 0644, &fi, &e), AC_OK,
           "%s 255-byte name write", mode_tag);
    is_int(get(comp, buf, sizeof buf, &fi, &e), AC_OK,
           "%s 255-byte name read", mode_tag);
    is_int(strlen(fi.name), 255, "%s 255-byte name reported", mode_tag);
    /* 1000 nested directories, 2000 bytes. */
    deep[0] = '\0';
    for (int i = 0; i < 1000; i++)
      memcpy(deep + 2 * i, "d/", 3);
    is_int(fapi_mkdirs(&R, deep, &e), AC_OK, "%s A10 1000-deep mkdirs",
           mode_tag);
    memcpy(deep + 2000, "f.txt", 6);
    is_int(puts_(deep, "deep", 0644, &e), AC_OK, "%s A10 1000-deep write",
           mode_tag);
    is_int(get(deep, buf, sizeof buf, NULL, &e), AC_OK,
           "%s A10 1000-deep read", mode_tag);
    memset(deep, 'p', 4150);
    deep[4150] = '\0';
    is_int(get(deep, buf, sizeof buf, NULL, &e), AC_EINVAL,
           "%s A3 path over PATH_MAX", mode_tag);
  }
}

static void test_symlinks(void) {
  tcase("%s symlinks stay inside", mode_tag);
  struct ac_error e;
  struct fapi_entry *v;
  struct fapi_info fi = { 0 };
  size_t n;
  int tr;
  char buf[256], canary[256], canpath[256];
  struct stat st;

  /* A4: links planted by the sandbox toward the host. */
  host_symlink("/etc", "workspace/etc");
  host_symlink("../../../../../../../..", "workspace/up");
  host_symlink("../../../../../../../../etc/passwd", "workspace/rel");
  host_symlink("/etc/passwd", "workspace/pw");
  host_symlink("/proc/self/root/etc/passwd", "workspace/magic");
  host_symlink("loop2", "workspace/loop1");
  host_symlink("loop1", "workspace/loop2");
  no_host("etc/passwd", AC_ENOTFOUND, "A4 link to /etc");
  no_host("etc/shadow", AC_ENOTFOUND, "A4 link to /etc");
  no_host("up/etc/passwd", AC_ENOTFOUND, "A4 link up");
  no_host("rel", AC_ENOTFOUND, "A4 relative link out");
  no_host("pw", AC_ENOTFOUND, "A4 absolute link");
  no_host("magic", AC_ENOTFOUND, "A5 magic link (no /proc in root)");
  no_host("loop1", AC_EACCESS, "symlink loop");
  is_int(fapi_list(&R, "etc", 10, &v, &n, &tr, &e), AC_ENOTFOUND,
         "%s A4 list link to /etc", mode_tag);
  /* "up" resolves to the box root, never the host root. */
  is_int(fapi_list(&R, "up", 100, &v, &n, &tr, &e), AC_OK,
         "%s A4 list link up", mode_tag);
  ok(find(v, n, "workspace") >= 0 && find(v, n, "usr") < 0 &&
     find(v, n, "etc") < 0 && find(v, n, "fapi-test") < 0,
     "%s A4 link up shows the box root, not the host", mode_tag);
  free(v);
  /* Writes through links that leave the tree. */
  is_int(puts_("etc/evil.txt", "x", 0644, &e), AC_EINVAL,
         "%s A4 write below link to /etc", mode_tag);
  ok(lstat("/etc/evil.txt", &st) != 0 && lstat(H("etc"), &st) != 0,
     "%s A4 nothing created on the host or in the root", mode_tag);
  if (is_root) {
    is_int(puts_("up/evil.txt", "x", 0644, &e), AC_EACCESS,
           "%s A4 write into the box root refused (fsuid)", mode_tag);
    ok(lstat(H("evil.txt"), &st) != 0, "%s A4 box root untouched",
       mode_tag);
  } else {
    skip("A4 write into the box root", "not root");
    skip("A4 box root untouched", "not root");
  }
  is_int(fapi_mkdirs(&R, "etc/sub", &e), AC_EINVAL,
         "%s mkdirs below dangling link", mode_tag);

  /* In-tree links work, also across trees, and report the target. */
  host_mkdir(H("workspace/data"), 0755, SESSION_ID);
  host_write(H("workspace/data/real.csv"), "a,b\n", 0644);
  own(H("workspace/data/real.csv"), SESSION_ID);
  host_symlink("data/real.csv", "workspace/link.csv");
  host_symlink("/tmp/t.txt", "workspace/tlink");
  host_symlink("/tmp", "workspace/tdir");
  is_int(get("link.csv", buf, sizeof buf, &fi, &e), AC_OK,
         "%s in-tree link", mode_tag);
  is_str(buf, "a,b\n", "%s in-tree link content", mode_tag);
  is_str(fi.name, "real.csv", "%s download name is the target's",
         mode_tag);
  is_str(fi.path, "data/real.csv", "%s resolved path", mode_tag);
  is_int(get("tlink", buf, sizeof buf, &fi, &e), AC_OK,
         "%s absolute in-tree link", mode_tag);
  is_str(fi.path, "/tmp/t.txt", "%s link into /tmp reported", mode_tag);
  is_int(puts_("tdir/via.txt", "via", 0644, &e), AC_OK,
         "%s write through a dir link into /tmp", mode_tag);
  ok(host_read(H("tmp/via.txt"), buf, sizeof buf) &&
     strcmp(buf, "via") == 0, "%s landed in /tmp", mode_tag);

  /* A6: write-through. out.txt points at a host canary that the session
  ** uid could write; the upload must replace the link instead. */
  snprintf(canpath, sizeof canpath, "%s/canary.txt", base);
  host_write(canpath, "HOST-CANARY", 0666);
  host_symlink(canpath, "workspace/out.txt");
  {
    char rel[300];
    snprintf(rel, sizeof rel, "../../%s", "canary.txt");
    host_symlink(rel, "workspace/out2.txt");
  }
  is_int(puts_("out.txt", "PWNED", 0644, &e), AC_OK,
         "%s A6 upload onto absolute link", mode_tag);
  is_int(puts_("out2.txt", "PWNED", 0644, &e), AC_OK,
         "%s A6 upload onto relative link", mode_tag);
  ok(host_read(canpath, canary, sizeof canary) &&
     strcmp(canary, "HOST-CANARY") == 0, "%s A6 host canary unchanged",
     mode_tag);
  ok(lstat(H("workspace/out.txt"), &st) == 0 && S_ISREG(st.st_mode),
     "%s A6 the link was replaced by a file", mode_tag);
  ok(host_read(H("workspace/out.txt"), buf, sizeof buf) &&
     strcmp(buf, "PWNED") == 0, "%s A6 file has the upload", mode_tag);
  /* Download through a link to the canary: resolves in the root. */
  host_symlink(canpath, "workspace/canlink");
  no_host("canlink", AC_ENOTFOUND, "A6 read link to host file");
  ok(creds_same(), "%s credentials restored after symlinks", mode_tag);
}

static void test_magic_proc(void) {
  tcase("%s A5 magic links through /proc", mode_tag);
  char p[256];

  if (!have_ns) {
    skip("A5 magic link through /proc in the root", "no mount namespace");
    skip("A5 magic link through /proc in the root", "no mount namespace");
    return;
  }
  snprintf(p, sizeof p, "%s/proc", rootdir);
  mkdir(p, 0755);
  if (mount("/proc", p, "none", MS_BIND | MS_REC, NULL) != 0) {
    skip("A5 magic link through /proc in the root", strerror(errno));
    skip("A5 magic link through /proc in the root", "no bind");
    return;
  }
  host_symlink("/proc/self/cwd/etc/passwd", "workspace/mcwd");
  no_host("magic", AC_EACCESS, "A5 magic link (/proc in root)");
  no_host("mcwd", AC_EACCESS, "A5 /proc/self/cwd link");
  {
    struct fapi_entry *v = NULL;
    struct ac_error e;
    size_t n;
    int tr;
    host_symlink("/proc/self/root", "workspace/mroot");
    is_int(fapi_list(&R, "mroot", 10, &v, &n, &tr, &e), AC_EACCESS,
           "%s A5 list a magic root link", mode_tag);
    is_int(puts_("mroot/etc/x", "x", 0644, &e), AC_EACCESS,
           "%s A5 write below a magic link", mode_tag);
  }
  umount2(p, MNT_DETACH);
  rmdir(p);
}

static void test_special_files(void) {
  tcase("%s A9 special files", mode_tag);
  struct ac_error e;
  struct fapi_entry *v;
  struct timespec t0, t1;
  struct stat st;
  char buf[64], mode[24];
  size_t n;
  int tr, i;

  /* A9: a FIFO named result.txt must not block the download. */
  if (mkfifo(H("workspace/result.txt"), 0644) != 0)
    printf("# mkfifo: %s\n", strerror(errno));
  own(H("workspace/result.txt"), SESSION_ID);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  is_int(get("result.txt", buf, sizeof buf, NULL, &e), AC_EINVAL,
         "%s A9 FIFO refused", mode_tag);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  ok(t1.tv_sec - t0.tv_sec < 2, "%s A9 FIFO did not block", mode_tag);
  is_int(fapi_list(&R, "result.txt", 10, &v, &n, &tr, &e), AC_EINVAL,
         "%s A9 list a FIFO", mode_tag);
  /* A socket. */
  {
    struct sockaddr_un sa;
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", H("workspace/sock"));
    if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof sa) != 0)
      printf("# bind: %s\n", strerror(errno));
    if (s >= 0)
      close(s);
    is_int(get("sock", buf, sizeof buf, NULL, &e), AC_EINVAL,
           "%s A9 socket refused", mode_tag);
  }
  /* A character device (as root only). */
  if (is_root && mknod(H("workspace/null"), S_IFCHR | 0666,
                       makedev(1, 3)) == 0) {
    chmod(H("workspace/null"), 0666);
    is_int(get("null", buf, sizeof buf, NULL, &e), AC_EINVAL,
           "%s A9 char device refused", mode_tag);
  } else {
    skip("A9 char device refused", "mknod needs root");
  }
  is_int(fapi_list(&R, ".", 1000, &v, &n, &tr, &e), AC_OK,
         "%s list with special files", mode_tag);
  i = find(v, n, "result.txt");
  is_str(i >= 0 ? fapi_mode_string(v[i].mode, mode) : "", "prw-r--r--",
         "%s FIFO mode string", mode_tag);
  i = find(v, n, "sock");
  ok(i >= 0 && fapi_mode_string(v[i].mode, mode)[0] == 'S',
     "%s socket mode string", mode_tag);
  i = find(v, n, "null");
  if (is_root)
    is_str(i >= 0 ? fapi_mode_string(v[i].mode, mode) : "", "Dcrw-rw-rw-",
           "%s device mode string", mode_tag);
  else
    skip("device mode string", "not root");
  free(v);
  /* Uploading onto a FIFO replaces it rather than blocking on it. */
  is_int(puts_("result.txt", "done", 0644, &e), AC_OK,
         "%s A9 upload onto a FIFO", mode_tag);
  ok(lstat(H("workspace/result.txt"), &st) == 0 && S_ISREG(st.st_mode),
     "%s A9 FIFO replaced by a file", mode_tag);
}

static void test_permissions(void) {
  tcase("%s permissions through the fsuid, A8 hard links", mode_tag);
  struct ac_error e;
  struct fapi_entry *v;
  struct fapi_info fi = { 0 };
  struct stat st;
  char buf[64], secret[256], hl[256];
  size_t n;
  int tr;

  if (!is_root) {
    for (int i = 0; i < 9; i++)
      skip("permission checks through the fsuid", "not root");
    return;
  }
  /* A directory of another uid, 0500: not writable through the API. */
  host_mkdir(H("workspace/ro"), 0755, OTHER_ID);
  host_write(H("workspace/ro/f"), "ro", 0644);
  chmod(H("workspace/ro"), 0500);
  is_int(puts_("ro/x.txt", "x", 0644, &e), AC_EACCESS,
         "%s read-only dir: write refused", mode_tag);
  ok(lstat(H("workspace/ro/x.txt"), &st) != 0, "%s nothing written",
     mode_tag);
  is_int(fapi_mkdirs(&R, "ro/sub", &e), AC_EACCESS,
         "%s read-only dir: mkdirs refused", mode_tag);
  is_int(fapi_list(&R, "ro", 10, &v, &n, &tr, &e), AC_EACCESS,
         "%s other uid's 0500 dir: list refused", mode_tag);
  is_int(get("ro/f", buf, sizeof buf, NULL, &e), AC_EACCESS,
         "%s other uid's 0500 dir: read refused", mode_tag);
  /* A 0600 file of another uid. */
  host_write(H("workspace/private"), "private", 0600);
  own(H("workspace/private"), OTHER_ID);
  is_int(get("private", buf, sizeof buf, NULL, &e), AC_EACCESS,
         "%s other uid's 0600 file refused", mode_tag);
  /* A8: hard links to root-only host files (same filesystem here). */
  snprintf(secret, sizeof secret, "%s/secret", base);
  host_write(secret, "ROOT-SECRET", 0600);
  snprintf(hl, sizeof hl, "%s/secret", H("workspace"));
  if (link(secret, hl) == 0) {
    is_int(get("secret", buf, sizeof buf, NULL, &e), AC_EACCESS,
           "%s A8 hard link to a 0600 root file refused", mode_tag);
  } else {
    skip("A8 hard link", strerror(errno));
  }
  /* Group 0 must not help: root's groups are dropped. */
  snprintf(secret, sizeof secret, "%s/gsecret", base);
  host_write(secret, "ROOT-GROUP", 0640);
  snprintf(hl, sizeof hl, "%s/gsecret", H("workspace"));
  if (link(secret, hl) == 0)
    is_int(get("gsecret", buf, sizeof buf, NULL, &e), AC_EACCESS,
           "%s A8 0640 root:root file refused (groups dropped)", mode_tag);
  else
    skip("A8 group hard link", strerror(errno));
  /* Overwriting a root-owned read-only file in the session's dir replaces
  ** it with a session-owned file, as the sandbox itself could. */
  host_write(H("workspace/rootfile"), "r", 0444);
  is_int(put("rootfile", "new", 3, 0644, &fi, &e), AC_OK,
         "%s replace a root-owned file", mode_tag);
  ok(lstat(H("workspace/rootfile"), &st) == 0 && st.st_uid == SESSION_ID &&
     (st.st_mode & 0777) == 0444, "%s replaced: session-owned, mode kept",
     mode_tag);
  chmod(H("workspace/ro"), 0755);
  ok(creds_same(), "%s credentials restored after refusals", mode_tag);
}

static void test_limits(void) {
  tcase("%s limits: ENOSPC, sizes", mode_tag);
  struct ac_error e;
  struct fapi_writer *w;
  static char big[256 * 1024];
  char p[256];
  struct rlimit old, lim;
  struct sigaction sa, oldsa;
  struct stat st;
  enum ac_code rc1, rc2 = AC_OK;
  int left;

  /* ENOSPC on a 64 KiB tmpfs mounted over the root's tmp. */
  snprintf(p, sizeof p, "%s/tmp", rootdir);
  if (!have_ns) {
    skip("ENOSPC gives AC_ELIMIT", "no mount namespace (needs root)");
  } else if (mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV,
                   is_root ? "size=64k,mode=1777,uid=200123,gid=200123"
                           : "size=64k") != 0) {
    skip("ENOSPC gives AC_ELIMIT", strerror(errno));
  } else {
    memset(big, 'z', sizeof big);
    is_int(fapi_write_begin(&R, "/tmp/big", 0644, &w, &e), AC_OK,
           "%s begin on a small tmpfs", mode_tag);
    is_int(fapi_write_data(w, big, sizeof big, &e), AC_ELIMIT,
           "%s ENOSPC gives AC_ELIMIT", mode_tag);
    printf("# %s\n", e.msg);
    ok(strstr(e.msg, "no space") != NULL, "%s ENOSPC message", mode_tag);
    /* Misuse after the failure: no more data, and never a partial file
    ** in place of the target. commit frees w and removes the temp. */
    is_int(fapi_write_data(w, "x", 1, &e), AC_EINVAL,
           "%s data after a failure refused", mode_tag);
    is_int(fapi_write_commit(w, NULL, &e), AC_EINVAL,
           "%s commit after a failure refused", mode_tag);
    /* Anything at all: the upload was the only writer there. */
    left = count_entries(p, "");
    is_int(left, 0, "%s no partial file, no temp file", mode_tag);
    umount2(p, MNT_DETACH);
  }
  /* EFBIG from RLIMIT_FSIZE, with SIGXFSZ ignored as a server must. The
  ** limit also applies to our TAP output if it goes to a file: report
  ** only once it is lifted again. */
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_IGN;
  sigaction(SIGXFSZ, &sa, &oldsa);
  getrlimit(RLIMIT_FSIZE, &old);
  lim = old;
  lim.rlim_cur = 4096;
  fflush(stdout);
  setrlimit(RLIMIT_FSIZE, &lim);
  rc1 = fapi_write_begin(&R, "fbig", 0644, &w, &e);
  if (rc1 == AC_OK) {
    rc2 = fapi_write_data(w, big, 8192, &e);
    fapi_write_abort(w);
  }
  setrlimit(RLIMIT_FSIZE, &old);
  sigaction(SIGXFSZ, &oldsa, NULL);
  is_int(rc1, AC_OK, "%s begin under RLIMIT_FSIZE", mode_tag);
  is_int(rc2, AC_ELIMIT, "%s EFBIG gives AC_ELIMIT", mode_tag);
  printf("# %s\n", e.msg);
  ok(lstat(H("workspace/fbig"), &st) != 0, "%s nothing left after EFBIG",
     mode_tag);
}

static void test_mkdirs(void) {
  tcase("%s mkdirs", mode_tag);
  struct ac_error e;
  struct stat st;

  is_int(fapi_mkdirs(&R, "", &e), AC_OK, "%s mkdirs workspace", mode_tag);
  is_int(fapi_mkdirs(&R, "w/x/y", &e), AC_OK, "%s mkdirs w/x/y", mode_tag);
  ok(stat(H("workspace/w/x/y"), &st) == 0 && S_ISDIR(st.st_mode),
     "%s mkdirs created", mode_tag);
  is_int(fapi_mkdirs(&R, "w/x/y", &e), AC_OK, "%s mkdirs again", mode_tag);
  is_int(fapi_mkdirs(&R, "/tmp/wd", &e), AC_OK, "%s mkdirs /tmp/wd",
         mode_tag);
  is_int(fapi_mkdirs(&R, "hello.txt", &e), AC_EINVAL,
         "%s mkdirs on a file", mode_tag);
  is_int(fapi_mkdirs(&R, "hello.txt/sub", &e), AC_EINVAL,
         "%s mkdirs below a file", mode_tag);
  is_int(fapi_mkdirs(&R, "../", &e), AC_EACCESS, "%s mkdirs ../",
         mode_tag);
  is_int(fapi_mkdirs(&R, "/etc", &e), AC_EACCESS, "%s mkdirs /etc",
         mode_tag);
}

/* Two threads overwrite one file: a reader only ever sees a whole one. */
struct writer_arg {
  char c;
  int failures;
};

static void *writer_thread(void *p) {
  struct writer_arg *a = p;
  static char data[2][65536];
  struct ac_error e;
  struct fapi_info fi = { 0 };
  char *d = data[a->c == 'A' ? 0 : 1];
  memset(d, a->c, sizeof data[0]);
  for (int i = 0; i < 25; i++)
    if (put("race.bin", d, sizeof data[0], 0644, &fi, &e) != AC_OK)
      a->failures++;
  return NULL;
}

static void test_threads(void) {
  tcase("%s concurrent operations", mode_tag);
  pthread_t t1, t2;
  struct writer_arg a = { 'A', 0 }, b = { 'B', 0 };
  static char buf[70000];
  struct ac_error e;
  int torn = 0, bad_creds = 0;

  pthread_create(&t1, NULL, writer_thread, &a);
  pthread_create(&t2, NULL, writer_thread, &b);
  for (int i = 0; i < 50; i++) {
    struct fapi_info fi = { 0 };
    if (!creds_same())
      bad_creds++;
    if (get("race.bin", buf, sizeof buf, &fi, &e) == AC_OK) {
      size_t n = strlen(buf);
      if (n != 65536 || buf[0] != buf[n - 1] ||
          memchr(buf, buf[0] == 'A' ? 'B' : 'A', n))
        torn++;
    }
  }
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  is_int(a.failures + b.failures, 0, "%s concurrent writers succeed",
         mode_tag);
  is_int(torn, 0, "%s readers never see a torn file", mode_tag);
  is_int(bad_creds, 0, "%s other threads' credentials untouched",
         mode_tag);
}

/* {====================================================== staging */

/* With the box's staging directory: an overwrite shows no temporary name
** in the target's directory at any point, leaves nothing staged, and the
** sweep removes what a crash left (staged files; earlier versions' named
** temporaries, once) and nothing else. */
static void test_staging(void) {
  tcase("%s staging directory and the crash sweep", mode_tag);
  struct fapi_info fi;
  struct ac_error e;
  struct fapi_writer *w;
  unsigned long long n = 99;
  char buf[64];

  host_mkdir(H(FAPI_STAGE_PARENT), 0700, 0);
  host_mkdir(H(FAPI_STAGE_DIR), 0700, SESSION_ID);
  is_int(puts_("stage.txt", "one", 0644, &e), AC_OK, "%s first write",
         mode_tag);
  is_int(fapi_write_begin(&R, "stage.txt", 0644, &w, &e), AC_OK,
         "%s overwrite begins", mode_tag);
  is_int(fapi_write_data(w, "two", 3, &e), AC_OK, "%s overwrite data",
         mode_tag);
  is_int(count_entries(H("workspace"), FAPI_TMP_PREFIX), 0,
         "%s no temporary name while it streams", mode_tag);
  is_int(fapi_write_commit(w, &fi, &e), AC_OK, "%s overwrite commits",
         mode_tag);
  ok(host_read(H("workspace/stage.txt"), buf, sizeof buf) &&
     strcmp(buf, "two") == 0, "%s overwritten whole", mode_tag);
  is_int(count_entries(H("workspace"), FAPI_TMP_PREFIX), 0,
         "%s no temporary name after", mode_tag);
  is_int(count_entries(H(FAPI_STAGE_DIR), ""), 0, "%s nothing left staged",
         mode_tag);

  /* what crashes left: a staged file; an earlier version's temporary */
  host_write(H(FAPI_STAGE_DIR "/" FAPI_TMP_PREFIX "x"), "cut", 0600);
  own(H(FAPI_STAGE_DIR "/" FAPI_TMP_PREFIX "x"), SESSION_ID);
  host_mkdir(H("workspace/old"), 0755, SESSION_ID);
  host_write(H("workspace/old/" FAPI_TMP_PREFIX "Ab3dE6gH9jK1"), "x", 0600);
  own(H("workspace/old/" FAPI_TMP_PREFIX "Ab3dE6gH9jK1"), SESSION_ID);
  /* the sandbox's own files with look-alike names (controls) */
  host_write(H("workspace/old/" FAPI_TMP_PREFIX "Ab3dE6gH9jK2"), "k", 0644);
  own(H("workspace/old/" FAPI_TMP_PREFIX "Ab3dE6gH9jK2"), SESSION_ID);
  host_write(H("workspace/old/" FAPI_TMP_PREFIX "short"), "k", 0600);
  own(H("workspace/old/" FAPI_TMP_PREFIX "short"), SESSION_ID);

  is_int(fapi_sweep(&R, 0, &n, &e), AC_OK, "%s sweep, staging only",
         mode_tag);
  is_int((int)n, 1, "%s one staged file removed", mode_tag);
  is_int(count_entries(H("workspace/old"), FAPI_TMP_PREFIX), 3,
         "%s the trees untouched without legacy", mode_tag);
  is_int(fapi_sweep(&R, 1, &n, &e), AC_OK, "%s sweep with legacy",
         mode_tag);
  is_int((int)n, 1, "%s one earlier temporary removed", mode_tag);
  is_int(count_entries(H("workspace/old"), FAPI_TMP_PREFIX), 2,
         "%s look-alikes kept", mode_tag);
  ok(access(H("workspace/old/" FAPI_TMP_PREFIX "Ab3dE6gH9jK1"), F_OK) != 0,
     "%s the 0600 one is gone", mode_tag);
  ok(creds_same(), "%s credentials restored after the sweep", mode_tag);
}

/* }====================================================== */

static void fs_suite(void) {
  if (setup_tree() != 0) {
    ok(0, "%s set up the fake root: %s", mode_tag, strerror(errno));
    return;
  }
  test_round_trips();
  test_nested_and_modes();
  test_read_errors();
  test_list();
  test_traversal();
  test_symlinks();
  test_magic_proc();
  test_special_files();
  test_permissions();
  test_mkdirs();
  test_limits();
  test_threads();
  test_staging();
  tcase("%s the fake root is removed", mode_tag);
  teardown_tree();
  {
    struct stat st;
    ok(lstat(base, &st) != 0, "%s fake root removed", mode_tag);
  }
}

int main(void) {
  int fds0, fds1;

  plan(33);
  /* A hanging FIFO open must fail the test, not wedge the run. */
  alarm(300);
  umask(022);
  is_root = geteuid() == 0;
  if (is_root) {
    /* Give ourselves supplementary groups, as a server started from a
    ** login shell has, so that dropping them is put to the test. */
    gid_t groups[2] = { 0, OTHER_ID };
    if (setgroups(2, groups) != 0)
      printf("# setgroups: %s\n", strerror(errno));
  }
  creds_get(&initial_creds);
  /* A private mount namespace: our tmpfs and /proc bind vanish with us
  ** and never show on the host. Single-threaded here, as unshare needs. */
  if (is_root && unshare(CLONE_NEWNS) == 0 &&
      mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) == 0)
    have_ns = 1;
  fds0 = count_fds();

  test_mode_strings();
  test_parse_mode();
  test_rfc3339();
  test_map_path();

  mode_tag = "[openat2]";
  fapi__force_walk(0);
  fs_suite();
  mode_tag = "[walk]";
  fapi__force_walk(1);
  fs_suite();
  fapi__force_walk(0);

  tcase("no file descriptor leaked, credentials as at the start");
  fds1 = count_fds();
  is_int(fds1, fds0, "no file descriptor leaked");
  ok(creds_same(), "credentials as at the start");
  return done_testing();
}
