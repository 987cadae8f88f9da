/*
** test_sandbox_host.c -- the sandbox runtime on hosts that lack a piece:
** an ignored SIGCHLD and a missing state directory (refused), no
** bubblewrap, a sandbox that cannot run a program (the self-test fails,
** with bwrap's own message, and boxes are refused), a server at its pids
** limit (the init fails, leaving nothing), and a host with a
** setuid bwrap, user namespaces switched off, no pasta, no cgroups, no
** writable /run and a loop-control that is no loop device (the report
** says what is off and why; boxes are plain and in place; a networked
** or disk-quota session is refused and leaves nothing behind); the /etc
** snapshot built from an /etc of the test's making; then session uids
** and box paths a runtime refuses, and its cgroups vanishing.
**
** Root only. Each host is made in this process's private mount namespace:
** a tool is hidden by binding /dev/null over it (not executable), a
** sysctl by binding a file that says 0 over it, /run and /sys/fs/cgroup
** by an empty tmpfs. The real host is never changed.
*/
#include "cgroup.h"
#include "child_exit.h"
#include "sandbox.h"
#include "sandbox_int.h"
#include "sandbox_util.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define UID 231500

static char state[64] = "/tmp/agentcube-sbxh-XXXXXX";
static char scratch[64] = "/tmp/agentcube-sbxh-tools-XXXXXX";

static char *path_in(const char *dir, const char *name) {
  static char buf[4][512];
  static int slot;
  char *p = buf[slot++ % 4];
  snprintf(p, sizeof buf[0], "%s/%s", dir, name);
  return p;
}

static int exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

/* The report of rt in buf. */
static void report(struct sbx_runtime *rt, char *buf, size_t size) {
  FILE *mem = fmemopen(buf, size, "w");
  buf[0] = '\0';
  if (mem) {
    sbx_runtime_report(rt, mem);
    fclose(mem);
  }
}

/* 1 when the report has the line "  <name> <on|off>  <detail...>" whose
** detail starts with detail. */
static int says(const char *rep, const char *name, const char *onoff,
                const char *detail) {
  char want[512];
  snprintf(want, sizeof want, "\n  %-30s %-3s  %s", name, onoff, detail);
  if (strstr(rep, want) == NULL) {
    printf("#   no line \"%s\" in the report\n", want + 1);
    return 0;
  }
  return 1;
}

/* Hides the program at path (when there is one): /dev/null over it, which
** is not executable. 0 when hidden or absent. */
static int hide(const char *path) {
  if (access(path, F_OK) != 0)
    return 0;
  return mount("/dev/null", path, NULL, MS_BIND, NULL);
}

static void unhide(const char *path) {
  umount2(path, MNT_DETACH);
}

/* The box subdirectories of the runtime's cgroup parents. */
static int box_cgroups(const struct sbx_runtime *rt) {
  int n = 0;
  for (int i = 0; i < rt->cg.n; i++) {
    char cmd[700];
    FILE *p;
    snprintf(cmd, sizeof cmd, "find '%s' -mindepth 1 -maxdepth 1 -type d "
             "2>/dev/null", rt->cg.h[i].parent);
    p = popen(cmd, "r");
    while (p && fgets(cmd, sizeof cmd, p))
      n++;
    if (p)
      pclose(p);
  }
  return n;
}

static const char *const bwraps[] = {
  "/usr/bin/bwrap", "/usr/local/bin/bwrap", "/bin/bwrap",
};
static const char *const mkfses[] = {
  "/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4", "/usr/bin/mkfs.ext4",
};
static const char *const pastas[] = { "/usr/bin/pasta", "/usr/sbin/pasta" };
#define N(a) (sizeof a / sizeof a[0])

/* A copy of bwrap with the setuid bit, on a nosuid tmpfs (the bit shows,
** it is never honoured), bound over the real one. */
static int setuid_bwrap(void) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "cp /usr/bin/bwrap %s/bwrap && chmod 4755 "
           "%s/bwrap", scratch, scratch);
  return mount("tmpfs", scratch, "tmpfs", MS_NOSUID, "size=4m") == 0 &&
         system(cmd) == 0 &&
         mount(path_in(scratch, "bwrap"), "/usr/bin/bwrap", NULL, MS_BIND,
               NULL) == 0 ? 0 : -1;
}

/* A file that says 0 bound over a sysctl. */
static int sysctl_zero(const char *path) {
  char *f = path_in(scratch, "zero");
  FILE *z = fopen(f, "we");
  if (z == NULL)
    return -1;
  fputs("0\n", z);
  fclose(z);
  return mount(f, path, NULL, MS_BIND, NULL);
}

/* {====================================================== refusals */

static void refused_up_front(void) {
  struct sbx_runtime *rt = NULL;
  struct ac_error e = { 0 };
  struct sigaction sa, old;
  char missing[128];

  tcase("a runtime refuses an ignored SIGCHLD and a missing state dir");
  signal(SIGCHLD, SIG_IGN);
  is_int(sbx_runtime_init(&rt, state, &e), AC_ECONFIG, "SIGCHLD ignored");
  ok(strstr(e.msg, "SIGCHLD is ignored") != NULL, "says so: %s", e.msg);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sa.sa_flags = SA_NOCLDWAIT;
  sigaction(SIGCHLD, &sa, &old);
  is_int(sbx_runtime_init(&rt, state, &e), AC_ECONFIG,
         "SA_NOCLDWAIT: refused the same");
  signal(SIGCHLD, SIG_DFL);
  ok(rt == NULL, "no runtime");
  snprintf(missing, sizeof missing, "%s/no-such-dir", state);
  is_int(sbx_runtime_init(&rt, missing, &e), AC_ENOTFOUND,
         "a state directory that is not there");
  ok(strstr(e.msg, "sandbox: state directory") != NULL &&
     strstr(e.msg, strerror(ENOENT)) != NULL, "says so: %s", e.msg);
}

/* }====================================================== */

/* {====================================================== no sandbox */

static void no_bwrap(void) {
  struct sbx_runtime *rt;
  struct sbx_box *b;
  struct sbx_limits l = { 0 };
  struct ac_error e = { 0 };
  char rep[8192];
  int hidden = 1;

  tcase("no bubblewrap, no mkfs.ext4, no user namespaces: said, and no box "
        "is made");
  for (size_t i = 0; i < N(bwraps); i++)
    hidden &= hide(bwraps[i]) == 0;
  for (size_t i = 0; i < N(mkfses); i++)
    hidden &= hide(mkfses[i]) == 0;
  /* (a sysctl mounted over keeps a new proc mount from being allowed,
  ** which would fail a self-test: there is none here) */
  hidden &= sysctl_zero("/proc/sys/user/max_user_namespaces") == 0;
  REQUIRE(hidden, "bwrap and mkfs.ext4 hidden, user namespaces off");
  REQUIRE(sbx_runtime_init(&rt, state, &e) == AC_OK, "a runtime: %s", e.msg);
  umount2("/proc/sys/user/max_user_namespaces", MNT_DETACH);
  unlink(path_in(scratch, "zero"));
  report(rt, rep, sizeof rep);
  ok(strncmp(rep, "sandbox: bubblewrap (missing),", 30) == 0,
     "the heading says bubblewrap is missing");
  ok(says(rep, "sandbox self-test", "off", "not run: no bwrap\n"),
     "the self-test did not run");
  ok(says(rep, "bubblewrap (not setuid)", "off", "bubblewrap not found "
          "(apt-get install bubblewrap)"), "bubblewrap: how to get it");
  ok(says(rep, "disk quota (loop image)", "off", "mkfs.ext4 not found "
          "(apt-get install e2fsprogs); plain directories, no quota"),
     "no disk quota, and how to get it");
  ok(says(rep, "user namespaces", "off", "user.max_user_namespaces is 0"),
     "user namespaces off, and why");
  is_int(sbx_box_create(rt, path_in(state, "box"), UID, &l, &b, &e),
         AC_EUNSUPPORTED, "a box is refused");
  is_str(e.msg, "sandbox: bubblewrap not found (apt-get install "
         "bubblewrap)", "with the reason");
  ok(!exists(path_in(state, "box")), "nothing made");
  sbx_runtime_free(rt);
  for (size_t i = 0; i < N(bwraps); i++)
    unhide(bwraps[i]);
  for (size_t i = 0; i < N(mkfses); i++)
    unhide(mkfses[i]);
}

/* /usr/bin/true, which the self-test runs, cannot be executed: bwrap
** fails inside, the runtime says bwrap's own words and refuses boxes. */
static void selftest_fails(void) {
  struct sbx_runtime *rt;
  struct sbx_box *b;
  struct sbx_limits l = { 0 };
  struct ac_error e = { 0 };
  char rep[8192];

  tcase("a sandbox that cannot run a program: the self-test fails, why");
  REQUIRE(access("/usr/bin/true", X_OK) == 0 && hide("/usr/bin/true") == 0,
          "/usr/bin/true not executable");
  REQUIRE(sbx_runtime_init(&rt, state, &e) == AC_OK, "a runtime: %s", e.msg);
  unhide("/usr/bin/true");
  ok(!rt->selftest_ok, "the self-test failed");
  ok(strncmp(rt->why_selftest, "bwrap status 256: bwrap: execvp "
             "/usr/bin/true: ", 45) == 0, "with bwrap's message: %s",
     rt->why_selftest);
  report(rt, rep, sizeof rep);
  ok(says(rep, "sandbox self-test", "off", "bwrap status 256"),
     "the report says so");
  ok(says(rep, "nested user namespaces", "off", "blocked"),
     "and that what it proves is off");
  is_int(sbx_box_create(rt, path_in(state, "box"), UID, &l, &b, &e),
         AC_EUNSUPPORTED, "a box is refused");
  ok(strncmp(e.msg, "sandbox: self-test failed: bwrap status 256", 43) == 0,
     "with the reason: %s", e.msg);
  ok(!exists(path_in(state, "box")), "nothing made");
  sbx_runtime_free(rt);
}

/* A server at its pids limit (a child of the test alone in a cgroup with
** pids.max 1): the self-test cannot start bwrap, the event thread cannot
** start, and the runtime's init fails saying so, leaving nothing. */
static void out_of_pids(void) {
  struct cg_runtime cg;
  struct cg_box box;
  struct cg_cmd cmd;
  struct ac_error e = { 0 };
  char name[64], msg[AC_ERROR_SIZE + 64] = "", pub[128];
  int pfd[2], st = -1;
  ssize_t n;
  pid_t child;

  tcase("a server at its pids limit: the runtime's init fails, says why");
  snprintf(name, sizeof name, "agentcube-hosttest-%ld", (long)getpid());
  cg_runtime_init(&cg, name);
  if (!cg_has(&cg, CG_W_PIDS)) {
    ok(1, "no pids controller: %s", cg.why_pids);
    skip_case("no pids controller here");
    cg_runtime_free(&cg);
    return;
  }
  REQUIRE(cg_box_open(&cg, "box-pids", 0, 1, 0, &box, &e) == AC_OK &&
          cg_cmd_create(&cg, &box, "cmd-1", &cmd, &e) == AC_OK &&
          pipe2(pfd, O_CLOEXEC) == 0, "a cgroup with pids.max 1: %s", e.msg);
  child = fork();
  if (child == 0) {
    struct sbx_runtime *rt = NULL;
    for (int i = 0; i < cmd.njoin; i++)
      if (write(cmd.join[i], "0", 1) != 1)
        _exit(3);
    if (sbx_runtime_init(&rt, state, &e) == AC_OK)
      _exit(2);
    if (write(pfd[1], e.msg, strlen(e.msg)) < 0)
      _exit(4);
    child_exit(rt == NULL ? 0 : 1);
  }
  close(pfd[1]);
  REQUIRE(child > 0, "fork");
  n = read(pfd[0], msg, sizeof msg - 1);
  msg[n > 0 ? n : 0] = '\0';
  close(pfd[0]);
  while (waitpid(child, &st, 0) < 0 && errno == EINTR)
    ;
  is_int(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0, "the init fails, no "
         "runtime is handed out");
  is_str(msg, "sandbox: cannot start the event thread", "says why");
  {
    char *real = realpath(state, NULL);
    snprintf(pub, sizeof pub, "/run/agentcube/%016llx",
             real ? (unsigned long long)sbxu_hash(real) : 0ULL);
    free(real);
  }
  ok(!exists(pub), "nothing left under /run/agentcube");
  cg_cmd_destroy(&cg, &cmd);
  cg_box_remove(&cg, &box);
  cg_runtime_free(&cg);
}

/* }====================================================== */

/* {====================================================== a poor host */

/* The runtime of the poor host poor_host() makes. */
static void poor_runtime(void) {
  struct sbx_runtime *rt;
  struct sbx_box *b = NULL;
  struct sbx_limits disk = { .disk_bytes = 4 << 20 };
  struct sbx_limits net = { .network = 1 };
  struct ac_error e = { 0 };
  struct stat st;
  char rep[8192];

  REQUIRE(sbx_runtime_init(&rt, state, &e) == AC_OK, "a runtime: %s", e.msg);
  umount2("/usr/bin/bwrap", MNT_DETACH);
  report(rt, rep, sizeof rep);
  printf("# the report:\n");
  for (char *s = rep, *nl; (nl = strchr(s, '\n')) != NULL; s = nl + 1)
    printf("#   %.*s\n", (int)(nl - s), s);
  ok(says(rep, "sandbox self-test", "on", "ran /usr/bin/true"),
     "the sandbox itself works (control)");
  ok(says(rep, "bubblewrap (not setuid)", "off", "/usr/bin/bwrap is setuid; "
          "the design assumes a non-setuid bwrap"), "a setuid bwrap is off");
  ok(says(rep, "session networks", "off", "pasta not found (apt-get install "
          "passt)"), "no session networks without pasta");
  ok(says(rep, "memory limit", "off", "memory controller not available"),
     "no memory limit without cgroups");
  ok(says(rep, "cgroup whole-tree kill", "off", "no cgroup filesystem at "
          "/sys/fs/cgroup; falling back to killing bwrap (pid namespace)"),
     "no whole-tree kill");
  ok(says(rep, "private state paths", "off", "cannot create /run/agentcube"),
     "no publication under a read-only /run");
  ok(says(rep, "disk quota (loop image)", "on", "per-session ext4 image"),
     "the loop-control is there to be tried");

  /* a plain box: in place (not published), reachable through a 0711 dir */
  REQUIRE(sbx_box_create(rt, path_in(state, "plain"), UID, NULL, &b, &e) ==
          AC_OK, "a plain box: %s", e.msg);
  ok(!b->fs.published && strcmp(b->fs.root, path_in(sbx_box_dir(b),
                                                     "root")) == 0,
     "its trees in place, not published");
  ok(stat(sbx_box_dir(b), &st) == 0 && (st.st_mode & 07777) == 0711,
     "its directory 0711: the session may traverse it");
  sbx_box_close(b);
  is_int(sbx_box_open(rt, path_in(state, "plain"), UID, &net, &b, &e),
         AC_ECONFIG, "reopened with a network: refused");
  is_str(e.msg, "network: this server cannot give a session a network: "
         "pasta not found (apt-get install passt)", "with the reason");
  ok(exists(path_in(state, "plain/root/workspace")), "its files are kept");
  is_int(sbx_box_purge(rt, path_in(state, "plain"), &e), AC_OK, "purged");

  is_int(sbx_box_create(rt, path_in(state, "net"), UID, &net, &b, &e),
         AC_ECONFIG, "a networked box: refused");
  ok(!exists(path_in(state, "net")), "nothing left of it");
  is_int(sbx_box_create(rt, path_in(state, "disk"), UID, &disk, &b, &e),
         AC_ESYSTEM, "a box with a disk quota fails at the loop device");
  ok(strstr(e.msg, "box: LOOP_CTL_GET_FREE") != NULL, "says so: %s", e.msg);
  ok(!exists(path_in(state, "disk")), "nothing left of it");
  sbx_runtime_free(rt);
}

static void poor_host(void) {
  int hidden = 1;

  tcase("a poor host: what is off and why; plain boxes in place; "
        "networked and disk-quota sessions refused, nothing left");
  for (size_t i = 0; i < N(pastas); i++)
    hidden &= hide(pastas[i]) == 0;
  if (precondition(setuid_bwrap() == 0, "a setuid bwrap") &&
      precondition(hidden, "no pasta") &&
      precondition(mount("ramfs", "/sys/fs/cgroup", "ramfs", 0, NULL) == 0,
                   "no cgroups") &&
      precondition(mount("tmpfs", "/run", "tmpfs", MS_RDONLY, "size=4k") ==
                   0, "a read-only /run") &&
      precondition(mount("/dev/null", "/dev/loop-control", NULL, MS_BIND,
                         NULL) == 0, "a loop-control that is no loop "
                   "device") &&
      precondition(chmod(state, 0711) == 0, "a state directory sessions can "
                   "reach"))
    poor_runtime();
  umount2("/dev/loop-control", MNT_DETACH);
  umount2("/run", MNT_DETACH);
  umount2("/sys/fs/cgroup", MNT_DETACH);
  umount2("/usr/bin/bwrap", MNT_DETACH);
  for (size_t i = 0; i < N(pastas); i++)
    unhide(pastas[i]);
  umount2(scratch, MNT_DETACH);
  chmod(state, 0700);
}

/* }====================================================== */

/* {====================================================== /etc */

static int put(const char *path, const char *text, mode_t mode) {
  FILE *f = fopen(path, "we");
  int rc = f && fputs(text, f) >= 0 ? 0 : -1;
  if (f && fclose(f) != 0)
    rc = -1;
  return rc == 0 ? chmod(path, mode) : -1;
}

static const char *slurp(const char *path) {
  static char buf[1024];
  FILE *f = fopen(path, "re");
  size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
  if (f)
    fclose(f);
  buf[n] = '\0';
  return f ? buf : "(none)";
}

/* A host /etc of our own making (a tmpfs over /etc while the snapshot is
** built): what is copied, what never is, and what it replaces. */
static int make_etc(void) {
  char deep[512] = "/etc/terminfo";
  size_t len = strlen(deep);
  int fd, ok_ = 1;
  if (mount("tmpfs", "/etc", "tmpfs", 0, "size=32m,mode=0755") != 0)
    return -1;
  ok_ &= put("/etc/passwd", "root:x:0:0::/root:/bin/bash\nhost:x:5:5::/:\n",
             0644) == 0;
  ok_ &= put("/etc/nsswitch.conf", "hosts: files dns\n", 0644) == 0;
  ok_ &= put("/etc/host.conf", "secret host config\n", 0600) == 0;
  ok_ &= mkdir("/etc/ssl", 0755) == 0 && mkdir("/etc/ssl/private", 0700) == 0
         && mkdir("/etc/ssl/certs", 0755) == 0;
  ok_ &= put("/etc/ssl/openssl.cnf", "[openssl]\n", 0644) == 0;
  ok_ &= put("/etc/ssl/private/key.pem", "KEY\n", 0644) == 0;
  ok_ &= put("/etc/ssl/certs/ca.pem", "CA\n", 0644) == 0;
  ok_ &= symlink("/usr/share/zoneinfo/UTC", "/etc/localtime") == 0;
  ok_ &= mkdir("/etc/python3.11", 0755) == 0 &&
         put("/etc/python3.11/sitecustomize.py", "# site\n", 0644) == 0;
  ok_ &= mkdir("/etc/vim9", 0755) == 0 && mkdir("/etc/java-17-openjdk", 0755)
         == 0 && mkdir("/etc/python3x", 0755) == 0 &&
         mkdir("/etc/Rprofile.d", 0755) == 0;
  ok_ &= mkdir("/etc/fonts", 0750) == 0 &&
         put("/etc/fonts/fonts.conf", "<fontconfig/>\n", 0644) == 0;
  ok_ &= mkfifo("/etc/services", 0644) == 0;
  fd = open("/etc/magic", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ok_ &= fd >= 0 && ftruncate(fd, 9 << 20) == 0;
  if (fd >= 0)
    close(fd);
  /* 20 levels: the copy stops at 16 */
  ok_ &= mkdir(deep, 0755) == 0;
  for (int i = 1; ok_ && i <= 20; i++) {
    len += (size_t)snprintf(deep + len, sizeof deep - len, "/d%d", i);
    ok_ &= mkdir(deep, 0755) == 0;
  }
  return ok_ ? 0 : -1;
}

static void etc_snapshot(void) {
  struct sbx_runtime rt;
  struct ac_error e = { 0 };
  char dead[128], live[128], odd[128], mine[128], path[700], base[80];
  pid_t pid;
  int built;

  tcase("the /etc snapshot: what any user may read, nothing else; stale "
        "snapshots of dead servers swept");
  /* a server that died (its pid reaped: no such process), one alive
  ** (pid 1), a name that is no snapshot, and a reused pid's leftover */
  pid = fork();
  if (pid == 0)
    _exit(0);
  REQUIRE(pid > 0 && waitpid(pid, NULL, 0) == pid, "a pid that is gone");
  snprintf(base, sizeof base, "%s", state);
  snprintf(dead, sizeof dead, "%s/etc.%ld", base, (long)pid);
  snprintf(live, sizeof live, "%s/etc.1", base);
  snprintf(odd, sizeof odd, "%s/etc.x1", base);
  snprintf(mine, sizeof mine, "%s/etc.%ld", base, (long)getpid());
  REQUIRE(mkdir(dead, 0755) == 0 && put(path_in(dead, "passwd"), "x", 0644)
          == 0 && mkdir(live, 0755) == 0 && mkdir(odd, 0755) == 0 &&
          mkdir(mine, 0755) == 0 && put(path_in(mine, "old"), "x", 0644) == 0,
          "snapshots left in the state directory");
  memset(&rt, 0, sizeof rt);
  rt.etcfd = -1;
  rt.state_dir = base;
  /* a symlink where the snapshot goes: never followed */
  REQUIRE(rename(mine, path_in(base, "aside")) == 0 &&
          symlink(path_in(base, "aside"), mine) == 0,
          "etc.<pid> is a symlink to a directory");
  is_int(sbx_etc_build(&rt, &e), AC_ESYSTEM, "the build fails");
  ok(strstr(e.msg, mine) != NULL, "names it: %s", e.msg);
  ok(exists(path_in(base, "aside/old")), "the link's target is untouched");
  free(rt.etc);
  rt.etc = NULL;
  REQUIRE(unlink(mine) == 0 && rename(path_in(base, "aside"), mine) == 0,
          "the leftover back in place");
  REQUIRE(make_etc() == 0, "a host /etc of our own");
  built = sbx_etc_build(&rt, &e) == AC_OK;
  umount2("/etc", MNT_DETACH);
  REQUIRE(built, "the snapshot is built: %s", e.msg);
  is_str(rt.etc, mine, "at etc.<pid> in the state directory");
  ok(!exists(dead), "a dead server's snapshot is swept");
  ok(exists(live) && exists(odd), "a live server's and other names stay");
  ok(!exists(path_in(mine, "old")), "a reused pid's leftover is replaced");
  is_str(slurp(path_in(rt.etc, "passwd")), sbx_passwd,
         "passwd is the sandbox's, not the host's");
  is_str(slurp(path_in(rt.etc, "hosts")), sbx_hosts, "hosts synthesized");
  is_str(slurp(path_in(rt.etc, "resolv.conf")), "",
         "resolv.conf: an empty mount point");
  is_str(slurp(path_in(rt.etc, "nsswitch.conf")), "hosts: files dns\n",
         "a public entry is copied");
  ok(!exists(path_in(rt.etc, "host.conf")),
     "a wanted entry only root may read is not");
  ok(exists(path_in(rt.etc, "ssl/openssl.cnf")) &&
     !exists(path_in(rt.etc, "ssl/private")), "ssl/ without ssl/private");
  ok(exists(path_in(rt.etc, "ssl/certs")) &&
     !exists(path_in(rt.etc, "ssl/certs/ca.pem")),
     "ssl/certs: an empty directory for the host's to be bound on");
  {
    char target[128] = "";
    ssize_t n = readlink(path_in(rt.etc, "localtime"), target,
                         sizeof target - 1);
    target[n > 0 ? n : 0] = '\0';
    is_str(target, "/usr/share/zoneinfo/UTC", "a symlink stays a symlink");
  }
  ok(exists(path_in(rt.etc, "python3.11/sitecustomize.py")) &&
     exists(path_in(rt.etc, "vim9")) &&
     exists(path_in(rt.etc, "java-17-openjdk")),
     "interpreter directories by prefix: python3.11, vim9, java-17-openjdk");
  ok(!exists(path_in(rt.etc, "python3x")) &&
     !exists(path_in(rt.etc, "Rprofile.d")),
     "but not python3x or Rprofile.d");
  ok(!exists(path_in(rt.etc, "fonts")),
     "a directory other users cannot list is not copied");
  ok(!exists(path_in(rt.etc, "services")), "a FIFO is skipped, never read");
  ok(!exists(path_in(rt.etc, "magic")), "a file over 8 MiB is not copied");
  snprintf(path, sizeof path, "%s/terminfo/d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/"
           "d11/d12/d13/d14/d15", rt.etc);
  ok(exists(path), "a deep tree is copied to 16 levels");
  ok(!exists(path_in(path, "d16")), "and no deeper");
  sbx_etc_remove(&rt);
  ok(!exists(mine) && rt.etc == NULL && rt.etcfd == -1,
     "removed, with its mount");
  ok(exists(live) && exists(odd), "the others stay");
  rmdir(live);
  rmdir(odd);
  /* a host whose /etc/ssl is a file: no ssl/certs to bind the host's on */
  REQUIRE(mount("tmpfs", "/etc", "tmpfs", 0, "size=1m,mode=0755") == 0 &&
          put("/etc/ssl", "not a directory\n", 0644) == 0,
          "an /etc whose ssl is a file");
  built = sbx_etc_build(&rt, &e) == AC_OK;
  umount2("/etc", MNT_DETACH);
  ok(!built, "the snapshot fails");
  snprintf(path, sizeof path, "sandbox: mkdir %s/ssl/certs: %s", mine,
           strerror(ENOTDIR));
  is_str(e.msg, path, "and says where");
  sbx_etc_remove(&rt);
  ok(!exists(mine), "nothing left");
}

/* }====================================================== */

/* {====================================================== paths, uids */

static void refused_boxes(void) {
  struct sbx_runtime *rt;
  struct sbx_box *b = NULL;
  struct ac_error e = { 0 };
  char cwd[512], dir[600];

  tcase("session uids and box paths a runtime refuses or resolves");
  REQUIRE(sbx_runtime_init(&rt, state, &e) == AC_OK && rt->selftest_ok,
          "a runtime: %s", e.msg);
  is_int(sbx_box_create(rt, path_in(state, "u0"), 0, NULL, &b, &e),
         AC_EINVAL, "uid 0 refused");
  is_str(e.msg, "sandbox: session uid must not be 0", "says so");
  is_int(sbx_box_open(rt, path_in(state, "u0"), (uid_t)-1, NULL, &b, &e),
         AC_EINVAL, "uid -1 refused");
  is_str(e.msg, "sandbox: session uid must not be -1", "says so");
  ok(!exists(path_in(state, "u0")), "nothing made");

  /* relative paths: a name in the working directory */
  REQUIRE(getcwd(cwd, sizeof cwd) != NULL && chdir(state) == 0,
          "in the state directory");
  is_int(sbx_box_create(rt, "rel", UID, NULL, &b, &e), AC_OK,
         "a box named relative to the working directory: %s", e.msg);
  snprintf(dir, sizeof dir, "%s/rel", rt->state_dir);
  ok(b && strcmp(sbx_box_dir(b), dir) == 0, "at %s", dir);
  if (b)
    sbx_box_destroy(b);
  is_int(sbx_box_create(rt, "no/such/box", UID, NULL, &b, &e), AC_ESYSTEM,
         "a relative path whose parent is not there: refused");
  ok(strstr(e.msg, "sandbox: no/such/box") != NULL, "names it: %s", e.msg);
  is_int(sbx_box_open(rt, "no/such/box", UID, NULL, &b, &e), AC_ENOTFOUND,
         "opening it: not found");
  is_int(sbx_box_purge(rt, "no/such/box", &e), AC_OK,
         "purging it: nothing to do");
  ok(!exists("no"), "nothing made");
  REQUIRE(chdir(cwd) == 0, "back");
  /* an absolute path whose parent is not there */
  snprintf(dir, sizeof dir, "%s/none/box", state);
  is_int(sbx_box_create(rt, dir, UID, NULL, &b, &e), AC_ESYSTEM,
         "an absolute path whose parent is not there: refused");
  ok(strstr(e.msg, "box: mkdir") != NULL && strstr(e.msg, dir) != NULL,
     "names it: %s", e.msg);
  is_int(box_cgroups(rt), 0, "no box cgroups left by the refusals");

  /* a template whose image root is gone */
  {
    struct sbx_limits img = { .image_root = "/nonexistent/agentcube-image" };
    is_int(sbx_box_create(rt, path_in(state, "img"), UID, &img, &b, &e),
           AC_ENOTFOUND, "an image root that is gone: refused");
    ok(strstr(e.msg, "sandbox: image /nonexistent/agentcube-image") != NULL,
       "names it: %s", e.msg);
    ok(!exists(path_in(state, "img")), "nothing left");
  }
  /* a box whose devpts mount point is a file */
  {
    struct sbx_limits pts = { .ptys = 4 };
    REQUIRE(sbx_box_create(rt, path_in(state, "pts"), UID, NULL, &b, &e) ==
            AC_OK, "a box: %s", e.msg);
    sbx_box_close(b);
    REQUIRE(put(path_in(state, "pts/root/devpts"), "", 0644) == 0,
            "its devpts is a file now");
    is_int(sbx_box_open(rt, path_in(state, "pts"), UID, &pts, &b, &e),
           AC_ESYSTEM, "reopened with its own ptys: fails");
    ok(strstr(e.msg, "devpts is not a directory") != NULL, "says so: %s",
       e.msg);
    ok(exists(path_in(state, "pts/root/workspace")), "the box is kept");
    is_int(sbx_box_purge(rt, path_in(state, "pts"), &e), AC_OK, "purged");
  }
  /* a tiny memory limit still gets a 1 MiB /dev/shm */
  {
    static const char want[] = "--size\0" "1048576\0" "--tmpfs\0/dev/shm";
    struct sbx_limits tiny = { .memory_bytes = 2 << 20 };
    REQUIRE(sbx_box_create(rt, path_in(state, "tiny"), UID, &tiny, &b, &e) ==
            AC_OK, "a box with 2 MiB: %s", e.msg);
    ok(memmem(b->prefix, b->prefix_len, want, sizeof want) != NULL,
       "its /dev/shm is 1 MiB");
    sbx_box_destroy(b);
  }
  /* the runtime's cgroups vanish (a host's cleanup): boxes fail, said */
  {
    char parents[CG_MAX_HIER][512];
    int n = rt->cg.n, gone = 1;
    for (int i = 0; i < n; i++) {
      snprintf(parents[i], sizeof parents[i], "%s", rt->cg.h[i].parent);
      gone &= rmdir(parents[i]) == 0;
    }
    if (precondition(n > 0 && gone, "the runtime's cgroups removed")) {
      is_int(sbx_box_create(rt, path_in(state, "cg"), UID, NULL, &b, &e),
             AC_ESYSTEM, "a box fails");
      ok(strncmp(e.msg, "cgroup: mkdir ", 14) == 0, "says so: %s", e.msg);
      ok(!exists(path_in(state, "cg")), "nothing left");
    }
    for (int i = 0; i < n; i++)
      mkdir(parents[i], 0755);
  }
  sbx_runtime_free(rt);
}

/* }====================================================== */

int main(void) {
  plan(8);
  if (geteuid() != 0)
    return skip_all("not root: hosts are made with mounts");
  if (mkdtemp(state) == NULL || mkdtemp(scratch) == NULL) {
    printf("# temporary directories: %s\n", strerror(errno));
    return done_testing();
  }
  if (unshare(CLONE_NEWNS) != 0 ||
      mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0) {
    printf("# private mount namespace: %s\n", strerror(errno));
    return done_testing();
  }
  refused_up_front();
  no_bwrap();
  selftest_fails();
  out_of_pids();
  poor_host();
  etc_snapshot();
  refused_boxes();
  tcase("nothing left: mounts, the state directory");
  {
    char line[4096];
    int left = 0;
    FILE *mi = fopen("/proc/self/mountinfo", "re");
    while (mi && fgets(line, sizeof line, mi))
      left += strstr(line, state) != NULL || strstr(line, scratch) != NULL;
    if (mi)
      fclose(mi);
    is_int(left, 0, "no mount under the state or scratch directories");
  }
  ok(rmdir(scratch) == 0, "the scratch directory is empty");
  ok(rmdir(state) == 0, "the state directory is empty");
  return done_testing();
}
