/*
** The sandbox launcher against the real kernel: runtime detection, boxes
** (image and plain), commands, limits, isolation, seccomp, kills, crash
** recovery and cleanup. Runs as root (image boxes, cgroups, session uids)
** and, in a forked child, unprivileged. Skips when bwrap cannot run here.
**
** Nothing asserts on timing; every wait is generous. Everything the test
** creates (mounts, loop devices, cgroups, processes, directories) is
** removed before it exits, and the test checks that too.
*/
#include "sandbox.h"
#include "sandbox_int.h"
#include "sandbox_util.h"
#include "child_exit.h"
#include "tap.h"
#include "uid_procs.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SEC 1000000000LL
#define CANARY "hunter2-canary-7f3a"

static struct sbx_runtime *rt;
static char state[64] = "/tmp/agentcube-sbx-XXXXXX";
static uid_t base_uid;

static char *path_in(const char *dir, const char *name) {
  static char buf[4][512];
  static int slot;
  char *p = buf[slot++ % 4];
  snprintf(p, sizeof buf[0], "%s/%s", dir, name);
  return p;
}

static int contains(const char *hay, const char *needle) {
  return hay && strstr(hay, needle) != NULL;
}

/* Runs argv in the box; returns the ac_code. */
static enum ac_code runv(struct sbx_box *b, const char *const *argv,
                         const char *const *env, const char *wd,
                         long long timeout_ns, size_t max_output,
                         struct sbx_exec_result *r) {
  struct sbx_exec_request rq;
  struct ac_error e;
  enum ac_code rc;
  memset(&rq, 0, sizeof rq);
  rq.argv = argv;
  rq.env = env;
  rq.working_dir = wd;
  rq.timeout_ns = timeout_ns;
  rq.max_output = max_output;
  rc = sbx_exec(b, &rq, r, &e);
  if (rc)
    printf("# sbx_exec: %s\n", e.msg);
  return rc;
}

/* Records that a command the case needs ran at all: an sbx_exec error is
** a failure of the case, never a reason to skip its checks. */
static int ran_at(enum ac_code rc, int line) {
  return precondition(rc == AC_OK, "the command ran (line %d)", line);
}
#define ran(rc) ran_at((rc), __LINE__)

/* sh -c script with a 60 s timeout. */
static enum ac_code sh(struct sbx_box *b, const char *script,
                       struct sbx_exec_result *r) {
  const char *argv[] = { "sh", "-c", script, NULL };
  return runv(b, argv, NULL, NULL, 60 * SEC, 0, r);
}

/* Runs script and returns its stdout (static buffer) or "" on failure. */
static const char *sh_out(struct sbx_box *b, const char *script, int *code) {
  static char buf[8192];
  struct sbx_exec_result r;
  buf[0] = '\0';
  if (code)
    *code = -1;
  if (sh(b, script, &r) != AC_OK)
    return buf;
  snprintf(buf, sizeof buf, "%s", r.out);
  if (code)
    *code = r.exit_code;
  if (r.exit_code != 0 && r.err_len)
    printf("# stderr: %.300s\n", r.err);
  sbx_exec_result_free(&r);
  return buf;
}

/* 1 when path is the root of a mount (bind mounts included). */
static int is_mounted(const char *path) {
  struct statx sx;
  if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_TYPE, &sx) < 0)
    return 0;
  return (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
}

/* Where a box directory is published (its trees' root). */
static const char *pub_root(const char *dir) {
  static char buf[512];
  char *abs = realpath(dir, NULL);
  snprintf(buf, sizeof buf, "%s/box-%016llx", rt->pub,
           (unsigned long long)sbxu_hash(abs ? abs : dir));
  free(abs);
  return buf;
}

/* 1 when a mount under dir is listed, other than those whose line
** contains except. */
static int in_mountinfo_but(const char *dir, const char *except) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  char line[4096];
  int found = 0;
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof line, f))
    if (strstr(line, dir) && (except == NULL || !strstr(line, except))) {
      if (except)
        printf("# still mounted: %s", line);
      found = 1;
    }
  fclose(f);
  return found;
}

static int in_mountinfo(const char *dir) {
  return in_mountinfo_but(dir, NULL);
}

/* 1 when loop device minor still has a backing file named img. */
static int loop_busy(int minor, const char *img) {
  char p[128], buf[1024];
  FILE *f;
  size_t n;
  snprintf(p, sizeof p, "/sys/dev/block/7:%d/loop/backing_file", minor);
  f = fopen(p, "re");
  if (f == NULL)
    return 0;
  n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  return strstr(buf, img) != NULL;
}

/* How many of the box's cgroup directories exist (0 after removal). */
static int box_cgroups(const struct sbx_box *b) {
  int n = 0;
  for (int i = 0; i < rt->cg.n; i++) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", rt->cg.h[i].parent, b->cgname);
    if (access(p, F_OK) == 0)
      n++;
  }
  return n;
}

/* How many cmd-* cgroups exist below the box. */
static int cmd_cgroups(const char *cgname) {
  int n = 0;
  for (int i = 0; i < rt->cg.n; i++) {
    char p[1024];
    DIR *d;
    struct dirent *e;
    snprintf(p, sizeof p, "%s/%s", rt->cg.h[i].parent, cgname);
    d = opendir(p);
    if (d == NULL)
      continue;
    while ((e = readdir(d)) != NULL)
      if (strncmp(e->d_name, "cmd-", 4) == 0)
        n++;
    closedir(d);
  }
  return n;
}

/* After killing a process that ran sandboxes itself: its orphans come to
** us (we are a subreaper) and may take a while to exit under load. Reaps
** them while waiting up to ms for the uid to have no process left. */
static int wait_gone_reaping(uid_t uid, long ms) {
  int n = -1;
  for (long t = 0; t <= ms; t += 20) {
    while (waitpid(-1, NULL, WNOHANG) > 0)
      ;
    n = uid_procs(uid, 0);
    if (n == 0)
      return 0;
    usleep(20000);
  }
  return n;
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;
  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL)
    n += e->d_name[0] != '.';
  closedir(d);
  return n - 1;                       /* the DIR's own fd */
}

/* Children of this process, zombies included. */
static int count_children(void) {
  DIR *d = opendir("/proc");
  struct dirent *e;
  int n = 0;
  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL) {
    char path[300], buf[512], *p;
    FILE *f;
    size_t len;
    long ppid;
    if (e->d_name[0] < '0' || e->d_name[0] > '9')
      continue;
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    f = fopen(path, "re");
    if (f == NULL)
      continue;
    len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    p = strrchr(buf, ')');
    if (p && sscanf(p + 1, " %*c %ld", &ppid) == 1 && ppid == getpid())
      n++;
  }
  closedir(d);
  return n;
}

static struct sbx_box *create_box(const char *name, uid_t uid,
                                  const struct sbx_limits *l) {
  struct sbx_box *b = NULL;
  struct ac_error e;
  if (sbx_box_create(rt, path_in(state, name), uid, l, &b, &e) != AC_OK) {
    printf("# sbx_box_create %s: %s\n", name, e.msg);
    return NULL;
  }
  return b;
}

/* ---- individual groups of tests ---- */

static void test_basics(struct sbx_box *a) {
  tcase("commands: output, stderr, exit codes, stdin, argv");
  REQUIRE(a != NULL, "the box exists");
  struct sbx_exec_result r;
  const char *argv_nf[] = { "no-such-program-xyz", NULL };
  const char *argv_e1[] = { "--bind", "/", "/x", NULL };
  const char *argv_cat[] = { "cat", NULL };
  int code;

  if (ran(sh(a, "echo hello", &r))) {
    is_str(r.out, "hello\n", "echo round trip");
    is_int(r.exit_code, 0, "exit code 0");
    is_int(r.err_len, 0, "no stderr");
    ok(!r.timed_out && !r.oom_killed && !r.out_truncated,
       "no flags on a plain run");
    ok(r.end.tv_sec > r.start.tv_sec || (r.end.tv_sec == r.start.tv_sec &&
       r.end.tv_nsec >= r.start.tv_nsec), "start <= end");
    sbx_exec_result_free(&r);
  }
  if (ran(sh(a, "echo out; echo oops >&2; exit 3", &r))) {
    is_int(r.exit_code, 3, "exit code 3");
    is_str(r.out, "out\n", "stdout kept apart");
    is_str(r.err, "oops\n", "stderr captured");
    sbx_exec_result_free(&r);
  }
  if (ran(sh(a, "kill -9 $$", &r))) {
    is_int(r.exit_code, 137, "killed by SIGKILL: 128+9");
    sbx_exec_result_free(&r);
  }
  if (ran(runv(a, argv_nf, NULL, NULL, 30 * SEC, 0, &r))) {
    is_int(r.exit_code, 1, "missing program: exit 1");
    ok(contains(r.err, "No such file"), "missing program: message");
    sbx_exec_result_free(&r);
  }
  if (ran(runv(a, argv_e1, NULL, NULL, 30 * SEC, 0, &r))) {
    ok(r.exit_code == 1 && contains(r.err, "--bind"),
       "an argv that looks like bwrap options is only a program name");
    sbx_exec_result_free(&r);
  }
  if (ran(runv(a, argv_cat, NULL, NULL, 30 * SEC, 0, &r))) {
    ok(r.exit_code == 0 && r.out_len == 0, "stdin is /dev/null");
    sbx_exec_result_free(&r);
  }
  tcase("the sandbox's view: hostname, identity, read-only /usr, no host "
        "home, tools run, own /proc only");
  REQUIRE(a != NULL, "the box exists");
  is_str(sh_out(a, "hostname", &code), "sandbox\n", "hostname");
  is_str(sh_out(a, "id", &code),
         "uid=1000(sandbox) gid=1000(sandbox) groups=1000(sandbox)\n",
         "sandbox identity from the synthesized passwd/group");
  is_str(sh_out(a, "touch /usr/x 2>/dev/null || echo ro", &code), "ro\n",
         "/usr is read-only");
  is_str(sh_out(a, "ls /root 2>/dev/null; ls /etc/shadow 2>/dev/null; "
                "ls /home", &code), "sandbox\n",
         "no host home, /root or shadow inside");
  is_str(sh_out(a, "/usr/bin/python3 -c 'print(6*7)'", &code), "42\n",
         "python3 runs");
  is_str(sh_out(a, "echo 'a b' | awk '{print $2}'", &code), "b\n",
         "awk runs (/etc/alternatives)");
  is_str(sh_out(a, "grep -c . /etc/passwd; ls /etc/shadow 2>&1 | "
                "grep -c 'No such'", &code), "3\n1\n",
         "/etc/passwd synthesized, no /etc/shadow");
  {
    /* The agent reaps what the previous command left (killed at its end)
    ** asynchronously: give those a moment to disappear from /proc. */
    const char *procs = NULL;
    for (int i = 0; i < 20; i++) {
      procs = sh_out(a, "ls -d /proc/[0-9]* | wc -l; cat /proc/1/comm",
                     &code);
      if (!strcmp(procs, "4\nagent\n"))
        break;
      usleep(50000);
    }
    is_str(procs, "4\n" "agent\n", "only the sandbox's own processes in "
           "/proc (the agent as init, sh, ls, wc)");
  }
}

static void test_env(struct sbx_box *a) {
  tcase("environment: request env, defaults, no host env canary");
  REQUIRE(a != NULL, "the box exists");
  const char *argv[] = { "sh", "-c",
    "env | sort; echo ---; tr '\\0' '\\n' < /proc/1/environ; echo ---; "
    "tr '\\0' ' ' < /proc/1/cmdline; echo; "
    "cat /proc/1/environ 2>/dev/null | wc -c",
    NULL };
  const char *env[] = { "FOO=bar baz", "EMPTY=", "LD_PRELOAD=/nope.so",
                        NULL };
  struct sbx_exec_result r;
  if (!ran(runv(a, argv, env, NULL, 30 * SEC, 0, &r)))
    return;
  ok(contains(r.out, "FOO=bar baz\n"), "request env passed");
  ok(contains(r.out, "EMPTY=\n"), "empty value passed");
  ok(contains(r.out, "HOME=/home/sandbox\n") &&
     contains(r.out, "TMPDIR=/tmp\n") && contains(r.out, "LANG=C.UTF-8\n") &&
     contains(r.out, "PATH=/usr/local/sbin:"), "default env");
  ok(!contains(r.out, CANARY) && !contains(r.err, CANARY),
     "host env canary not visible (env, /proc/1/environ)");
  ok(!contains(r.out, state), "no host paths in /proc/1/cmdline");
  ok(contains(r.out, "\n0\n"), "/proc/1/environ is empty or unreadable");
  sbx_exec_result_free(&r);
}

static void test_persistence(struct sbx_box *a) {
  tcase("files persist across commands; working_dir");
  REQUIRE(a != NULL, "the box exists");
  int code;
  struct sbx_exec_result r;
  const char *argv_pwd[] = { "pwd", NULL };
  sh_out(a, "echo a > /workspace/a; echo b > /tmp/b; echo c > ~/c; "
         "mkdir -p /workspace/sub", &code);
  is_int(code, 0, "write to /workspace, /tmp, ~");
  is_str(sh_out(a, "cat /workspace/a /tmp/b /home/sandbox/c", &code),
         "a\nb\nc\n", "files persist across commands");
  if (ran(runv(a, argv_pwd, NULL, "/workspace/sub", 30 * SEC, 0, &r))) {
    is_str(r.out, "/workspace/sub\n", "working_dir");
    sbx_exec_result_free(&r);
  }
  is_str(sh_out(a, "pwd", &code), "/workspace\n", "default cwd /workspace");
  if (ran(runv(a, argv_pwd, NULL, "/nonexistent", 30 * SEC, 0, &r))) {
    ok(r.exit_code == 1 && contains(r.err, "chdir"),
       "a missing working_dir fails to start (exit 1)");
    sbx_exec_result_free(&r);
  }
}

static void test_output(struct sbx_box *a) {
  tcase("output: max_output cap and 8 MiB in full");
  REQUIRE(a != NULL, "the box exists");
  const char *big[] = { "head", "-c", "8388608", "/dev/zero", NULL };
  const char *capped[] = { "sh", "-c",
    "head -c 100000 /dev/zero | tr '\\0' a; echo done >&2", NULL };
  struct sbx_exec_result r;
  if (ran(runv(a, capped, NULL, NULL, 60 * SEC, 1000, &r))) {
    size_t as = 0;
    for (size_t i = 0; i < r.out_len; i++)
      as += r.out[i] == 'a';
    is_int(r.out_len, 1000, "output capped at max_output");
    ok(as == 1000 && r.out[1000] == '\0', "capped output is the prefix");
    ok(r.out_truncated && !r.err_truncated, "truncation flag");
    is_int(r.exit_code, 0, "the writer was drained, not killed");
    is_str(r.err, "done\n", "stderr after stdout overflow");
    sbx_exec_result_free(&r);
  }
  if (ran(runv(a, big, NULL, NULL, 60 * SEC, 0, &r))) {
    size_t nz = 0;
    for (size_t i = 0; i < r.out_len; i++)
      nz += r.out[i] != 0;
    ok(r.out_len == 8388608 && nz == 0 && !r.out_truncated,
       "8 MiB of output in full under the default cap");
    sbx_exec_result_free(&r);
  }
}

static void test_timeout(struct sbx_box *a, uid_t uid) {
  tcase("timeout kills the whole tree (setsid, nohup, double fork)");
  REQUIRE(a != NULL, "the box exists");
  const char *daemons[] = { "sh", "-c",
    "(setsid sh -c 'sleep 1000 & exec sleep 1001' &); "
    "(nohup sleep 1002 >/dev/null 2>&1 &); "
    "sh -c 'sleep 1003 &'; echo started; exec sleep 1004", NULL };
  const char *touch[] = { "touch", "/workspace/ran0", NULL };
  const char *sleep5[] = { "sleep", "5", NULL };
  struct sbx_exec_result r;
  int code;

  if (ran(runv(a, daemons, NULL, NULL, 1500000000LL, 0, &r))) {
    ok(r.timed_out, "timeout fires");
    is_int(r.exit_code, 124, "timeout exit code 124");
    is_str(r.out, "started\n", "output before the timeout is kept");
    ok(r.err_len >= 1 && contains(r.err,
       "\nCommand timed out after 2 seconds"),
       "timeout message (1.5 s rounds to 2)");
    is_int(wait_uid_procs(uid, 1, 0, 0, 2000), 0, "setsid'd, nohup'd, "
           "double-forked processes are all gone");
    is_int(cmd_cgroups(a->cgname), 0, "the command's cgroups are gone");
    sbx_exec_result_free(&r);
  }
  tcase("timeout 0 and negative timeouts never run the command; "
        "rounding of the message");
  REQUIRE(a != NULL, "the box exists");
  if (ran(runv(a, touch, NULL, NULL, 0, 0, &r))) {
    ok(r.timed_out && r.exit_code == 124, "timeout 0: 124 at once");
    is_str(r.err, "\nCommand timed out after 0 seconds",
           "timeout 0 message");
    sbx_exec_result_free(&r);
    is_str(sh_out(a, "ls /workspace/ran0 2>&1 >/dev/null | wc -l", &code),
           "1\n", "timeout 0: the command never ran");
  }
  if (ran(runv(a, sleep5, NULL, NULL, 500000000LL, 0, &r))) {
    ok(r.timed_out && contains(r.err, "after 0 seconds"),
       "0.5 s rounds half to even: 0 seconds");
    sbx_exec_result_free(&r);
  }
  if (ran(runv(a, sleep5, NULL, NULL, -1, 0, &r))) {
    ok(r.timed_out && r.exit_code == 124, "negative timeout: never runs");
    sbx_exec_result_free(&r);
  }
}

struct conc {
  struct sbx_box *box;
  const char *script;
  long long timeout;
  struct sbx_exec_result r;
  enum ac_code rc;
};

static void *conc_run(void *arg) {
  struct conc *c = arg;
  const char *argv[] = { "sh", "-c", c->script, NULL };
  c->rc = runv(c->box, argv, NULL, NULL, c->timeout, 0, &c->r);
  return NULL;
}

static void test_concurrent(struct sbx_box *a) {
  tcase("two commands in one box: a timeout kills only its own");
  REQUIRE(a != NULL, "the box exists");
  struct conc c1 = { a, "sleep 30", 1 * SEC, { 0 }, AC_OK };
  struct conc c2 = { a, "sleep 2; echo ok", 60 * SEC, { 0 }, AC_OK };
  pthread_t t1, t2;
  pthread_create(&t1, NULL, conc_run, &c1);
  pthread_create(&t2, NULL, conc_run, &c2);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  ok(c1.rc == AC_OK && c1.r.timed_out, "concurrent: the first times out");
  ok(c2.rc == AC_OK && !c2.r.timed_out && c2.r.exit_code == 0 &&
     c2.r.out && strcmp(c2.r.out, "ok\n") == 0,
     "concurrent: the other command of the box is not killed with it");
  sbx_exec_result_free(&c1.r);
  sbx_exec_result_free(&c2.r);
}

static void test_limits(struct sbx_box *a, uid_t uid) {
  tcase("memory limit: OOM kill reported, rest killed");
  REQUIRE(a != NULL, "the box exists");
  const char *oom[] = { "sh", "-c",
    "python3 -c 'l=[]\nwhile True: l.append(b\"x\"*(16<<20))'; "
    "echo after; sleep 100", NULL };
  const char *forks[] = { "python3", "-c",
    "import os,time\n"
    "n=0\n"
    "try:\n"
    "  while n<500:\n"
    "    if os.fork()==0:\n"
    "      time.sleep(60); os._exit(0)\n"
    "    n+=1\n"
    "except OSError as e: print(n, e.errno)\n", NULL };
  const char *bomb[] = { "bash", "-c",
    ":(){ :|:& };: 2>/dev/null; exec sleep 30", NULL };
  struct sbx_exec_result r;
  int code;

  if (ran(runv(a, oom, NULL, NULL, 60 * SEC, 0, &r))) {
    ok(r.oom_killed, "memory limit: OOM kill reported");
    is_int(r.exit_code, 137, "memory limit: exit 137");
    ok(!r.timed_out, "memory limit: the rest of the command was killed "
       "(no wait for the timeout)");
    sbx_exec_result_free(&r);
  }
  tcase("pids limit: fork fails with EAGAIN; a fork bomb is contained and "
        "killed");
  REQUIRE(a != NULL, "the box exists");
  if (ran(runv(a, forks, NULL, NULL, 60 * SEC, 0, &r))) {
    long n = strtol(r.out, NULL, 10);
    ok(n > 0 && n < 64 && contains(r.out, " 11\n"),
       "pids limit: fork fails with EAGAIN below pids.max (%ld forks)", n);
    sbx_exec_result_free(&r);
  }
  is_int(wait_uid_procs(uid, 1, 0, 0, 10000), 0,
         "pids test left no process");
  if (ran(runv(a, bomb, NULL, NULL, 2 * SEC, 0, &r))) {
    ok(r.timed_out, "fork bomb contained until the timeout");
    sbx_exec_result_free(&r);
  }
  is_int(wait_uid_procs(uid, 1, 0, 0, 2000), 0, "fork bomb: every process "
         "killed");
  tcase("disk quota: ENOSPC in /workspace and /tmp, space comes back");
  REQUIRE(a != NULL, "the box exists");
  is_str(sh_out(a, "dd if=/dev/zero of=/workspace/big bs=1M count=100 "
                "2>&1 | grep -c 'No space left'; rm -f /workspace/big",
                &code), "1\n", "disk quota: ENOSPC in /workspace");
  is_str(sh_out(a, "dd if=/dev/zero of=/tmp/big bs=1M count=100 2>&1 | "
                "grep -c 'No space left'; rm -f /tmp/big; echo x > "
                "/workspace/after && echo writable", &code),
         "1\nwritable\n", "disk quota shared by /tmp; space comes back");
}

static void test_plain_limits(struct sbx_box *b) {
  tcase("rlimits: nofile, core, fsize");
  REQUIRE(b != NULL, "the box exists");
  int code;
  is_str(sh_out(b, "ulimit -n", &code), "64\n", "RLIMIT_NOFILE applied");
  is_str(sh_out(b, "ulimit -c", &code), "0\n", "RLIMIT_CORE 0");
  is_str(sh_out(b, "head -c 2000000 /dev/zero > /tmp/f; echo $?; "
                "stat -c %s /tmp/f", &code), "153\n1048576\n",
         "RLIMIT_FSIZE: SIGXFSZ, file stops at the limit");
}

static void test_isolation(struct sbx_box *a, struct sbx_box *netbox,
                           uid_t uid) {
  tcase("network: host listener unreachable, with network=1 too (its own "
        "namespace)");
  REQUIRE(a != NULL, "the box exists");
  REQUIRE(netbox != NULL, "the plain box with network exists");
  char script[256], secret[64];
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  struct stat st;
  int code, fd, ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 ||
      listen(ls, 8) < 0 ||
      getsockname(ls, (struct sockaddr *)&sa, &len) < 0) {
    ok(0, "listener: %s", strerror(errno));
    return;
  }
  snprintf(script, sizeof script, "bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d"
           " && echo connected' 2>/dev/null; echo rc=$?",
           ntohs(sa.sin_port));
  ok(!contains(sh_out(a, script, &code), "connected"),
     "no network: host 127.0.0.1 listener unreachable");
  ok(!contains(sh_out(netbox, script, &code), "connected"),
     "network=1: the host's loopback stays unreachable");
  ok(contains(sh_out(netbox, "cat /proc/net/dev", &code), "eth0:") &&
     !contains(sh_out(a, "cat /proc/net/dev", &code), "eth0:"),
     "network=1: an interface of its own, none without (control)");
  is_str(sh_out(a, "cat /sys/class/net/*/operstate 2>/dev/null | wc -l; "
                "ls /sys 2>/dev/null | wc -l", &code), "0\n0\n",
         "no /sys inside");
  close(ls);

  tcase("identity and kernel surface: uid map, host file ownership, "
        "0600 root file, seccomp, no userns, minimal /dev, no leaked fd");
  /* uid: unprivileged on the host (file ownership below), 1000 inside.
  ** --disable-userns nests one more user namespace, so /proc/self/uid_map
  ** shows the inner 1000 -> 1000 step only. */
  is_str(sh_out(a, "awk '{print $1, $3}' /proc/self/uid_map", &code),
         "1000 1\n", "only uid 1000 is mapped inside");
  if (fstatat(sbx_box_rootfd(a), "workspace/a", &st, 0) == 0)
    ok(st.st_uid == uid && st.st_gid == (gid_t)uid,
       "files are owned by the session uid on the host");
  else
    ok(0, "stat workspace/a: %s", strerror(errno));
  /* A root-owned 0600 file inside a bind is not readable. */
  fd = openat(sbx_box_rootfd(a), "workspace/secret",
              O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  snprintf(secret, sizeof secret, "TOPSECRET\n");
  if (fd >= 0) {
    ok(write(fd, secret, strlen(secret)) > 0, "planted a 0600 root file");
    close(fd);
  }
  is_str(sh_out(a, "cat /workspace/secret 2>&1 | grep -c 'Permission "
                "denied'; echo x >> /workspace/secret 2>/dev/null || "
                "echo denied", &code), "1\ndenied\n",
         "the sandbox cannot read or write a root-owned 0600 file");
  unlinkat(sbx_box_rootfd(a), "workspace/secret", 0);
  is_str(sh_out(a, "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status | "
                "tr -d '\\t '", &code), "NoNewPrivs:1\nSeccomp:2\n",
         "seccomp filter loaded, no_new_privs");
  is_str(sh_out(a, "unshare -U true 2>/dev/null; echo $?", &code), "1\n",
         "no nested user namespace");
  is_str(sh_out(a, "ls /dev | tr '\\n' ' '", &code),
         "core fd full null ptmx pts random shm stderr stdin stdout tty "
         "urandom zero ", "minimal /dev");
  is_str(sh_out(a, "ls /proc/self/fd | tr '\\n' ' '", &code), "0 1 2 3 ",
         "no fd of the server or of bwrap reaches the sandbox");
  is_str(sh_out(a, "stat -c %a /dev/shm; df -k /dev/shm | tail -1 | "
                "awk '{print $2}'", &code), "1777\n65536\n",
         "sized /dev/shm tmpfs");
}

static void test_seccomp(struct sbx_box *a) {
  tcase("seccomp: refused syscalls and socket families, fork works");
  REQUIRE(a != NULL, "the box exists");
  const char *probe[] = { "python3", "-c",
    "import ctypes, socket, os\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "libc.syscall.restype = ctypes.c_long\n"
    "def sc(*a):\n"
    "  ctypes.set_errno(0)\n"
    "  r = libc.syscall(*[ctypes.c_long(x) for x in a])\n"
    "  return 0 if r >= 0 else ctypes.get_errno()\n"
    "def sock(f, t=socket.SOCK_RAW):\n"
    "  try:\n"
    "    socket.socket(f, t).close(); return 0\n"
    "  except OSError as e: return e.errno\n"
    "b = ctypes.create_string_buffer(b'x')\n"
    "r = [('unshare', sc(272, 0x10000000)), ('setns', sc(308, 0, 0)),\n"
    "  ('mount', sc(165, 0, 0, 0, 0, 0)), ('ptrace', sc(101, 16, 1, 0, 0)),\n"
    "  ('keyctl', sc(250, 0, 0, 0, 0, 0)), ('bpf', sc(321, 0, 0, 0)),\n"
    "  ('perf', sc(298, 0, 0, -1, -1, 0)), ('uffd', sc(323, 0)),\n"
    "  ('uring', sc(425, 1, 0)), ('clone3', sc(435, 0, 0)),\n"
    "  ('clone_newuser', sc(56, 0x10000000 | 17, 0, 0, 0, 0)),\n"
    "  ('clone_newnet', sc(56, 0x40000000 | 17, 0, 0, 0, 0)),\n"
    "  ('tiocsti', sc(16, 0, 0x5412, ctypes.addressof(b))),\n"
    "  ('tiocsti_hi', sc(16, 0, 0x5412 | (1 << 32), ctypes.addressof(b))),\n"
    "  ('netlink', sock(16)), ('packet', sock(17)), ('vsock', sock(40,\n"
    "   socket.SOCK_STREAM)), ('alg', sock(38, socket.SOCK_SEQPACKET)),\n"
    "  ('netlink_hi', sc(41, 16 | (1 << 32), 3, 0)),\n"
    "  ('unix', sock(1, socket.SOCK_STREAM)),\n"
    "  ('inet', sock(2, socket.SOCK_STREAM)),\n"
    "  ('inet6', sock(10, socket.SOCK_STREAM))]\n"
    "pid = os.fork()\n"
    "if pid == 0: os._exit(7)\n"
    "r.append(('fork', os.waitpid(pid, 0)[1] >> 8))\n"
    "print(' '.join('%s=%d' % x for x in r))\n", NULL };
  struct sbx_exec_result r;
  if (!ran(runv(a, probe, NULL, NULL, 60 * SEC, 0, &r)))
    return;
  is_str(r.out, "unshare=1 setns=1 mount=1 ptrace=1 keyctl=1 bpf=1 perf=1 "
         "uffd=1 uring=1 clone3=38 clone_newuser=1 clone_newnet=1 "
         "tiocsti=1 tiocsti_hi=1 netlink=97 packet=97 vsock=97 alg=97 "
         "netlink_hi=97 unix=0 inet=0 inet6=0 fork=7\n",
         "seccomp: EPERM list, clone3 ENOSYS, CLONE_NEW* EPERM, TIOCSTI "
         "masked, socket families EAFNOSUPPORT, fork works");
  if (r.err_len)
    printf("# stderr: %.400s\n", r.err);
  sbx_exec_result_free(&r);
}

/* A server killed with -9 while a command runs: the command dies with it
** (bwrap --die-with-parent), the image stays mounted, and a new runtime
** re-attaches to the box and cleans the stale command cgroup. */
static void test_crash(uid_t uid) {
  tcase("a server killed with -9: command dies, box re-opens with its data");
  char dir[256];
  struct sbx_box *b = NULL;
  struct ac_error e;
  struct sbx_limits l = { .disk_bytes = 16 << 20, .memory_bytes = 128 << 20,
                          .pids = 32 };
  pid_t child;
  int code, p[2];
  char proot[512];

  snprintf(dir, sizeof dir, "%s/crash", state);
  REQUIRE(pipe(p) == 0, "a pipe");
  child = fork();
  if (child == 0) {
    struct sbx_runtime *crt;
    struct sbx_exec_result r;
    char c = 'x';
    close(p[0]);
    if (sbx_runtime_init(&crt, state, &e) ||
        sbx_box_create(crt, dir, uid, &l, &b, &e)) {
      _exit(2);
    }
    if (write(p[1], &c, 1) != 1)
      _exit(3);
    sh(b, "echo data > /workspace/marker; exec sleep 1000", &r);
    _exit(4);
  }
  close(p[1]);
  {
    char c;
    ok(read(p[0], &c, 1) == 1, "crash: child created its box");
    close(p[0]);
  }
  ok(wait_uid_procs(uid, 0, 1, 1, 60000) >= 1,
     "crash: the command is running");
  {
    /* the command has written its file (a loaded host may take long
    ** between its start and the write) */
    char marker[600];
    struct stat st;
    snprintf(marker, sizeof marker, "%s/workspace/marker", pub_root(dir));
    for (int i = 0; i < 6000 && stat(marker, &st) != 0; i++)
      usleep(10000);
    precondition(stat(marker, &st) == 0, "crash: the file is written");
  }
  kill(child, SIGKILL);
  waitpid(child, &code, 0);
  is_int(wait_gone_reaping(uid, 60000), 0,
         "crash: the command died with the server (die-with-parent)");
  snprintf(proot, sizeof proot, "%s", pub_root(dir));
  ok(is_mounted(proot), "crash: the image is still mounted");
  if (sbx_box_open(rt, dir, uid, &l, &b, &e) != AC_OK) {
    ok(0, "crash: reopen: %s", e.msg);
    return;
  }
  ok(1, "crash: box re-opened while its image was still mounted");
  is_int(cmd_cgroups(b->cgname), 0, "crash: stale command cgroup removed");
  is_str(sh_out(b, "cat /workspace/marker", &code), "data\n",
         "crash: data written before the crash is there");
  sbx_box_destroy(b);
  ok(access(dir, F_OK) < 0 && in_mountinfo(proot) == 0 &&
     access(proot, F_OK) < 0, "crash: box destroyed");
}

/* The whole lifecycle of an image box: close (unmount), re-open (mount
** again), destroy (everything gone). */
static void test_lifecycle(struct sbx_box **pa, const char *dir,
                           uid_t uid, const struct sbx_limits *l) {
  tcase("image box lifecycle: close unmounts, open remounts, destroy frees mount, loop device, cgroups");
  struct sbx_box *a = *pa;
  struct ac_error e;
  char cgname[32], img[512], proot[512];
  int code, minor;
  struct stat st;

  REQUIRE(a != NULL, "the image box exists");
  snprintf(cgname, sizeof cgname, "%s", a->cgname);
  snprintf(proot, sizeof proot, "%s", a->fs.root);
  sbx_box_close(a);
  *pa = NULL;
  ok(!is_mounted(proot) && access(proot, F_OK) < 0,
     "close unmounts and unpublishes the image");
  ok(access(path_in(dir, "box.info"), F_OK) == 0, "close keeps the files");
  if (sbx_box_open(rt, dir, uid + 1, l, &a, &e) == AC_OK) {
    ok(0, "open with another uid must fail");
    sbx_box_close(a);
  } else {
    is_int(e.code, AC_EINVAL, "open with another uid: EINVAL");
  }
  if (sbx_box_open(rt, path_in(state, "nope"), uid, l, &a, &e) == AC_OK)
    sbx_box_close(a);
  is_int(e.code, AC_ENOTFOUND, "open of a missing box: ENOTFOUND");
  {
    char slashed[600];
    snprintf(slashed, sizeof slashed, "%s/", dir);
    if (sbx_box_open(rt, slashed, uid, l, &a, &e) == AC_OK) {
      ok(strcmp(a->fs.root, proot) == 0, "a trailing slash names the same "
         "box");
      sbx_box_close(a);
    } else {
      ok(0, "open with a trailing slash: %s", e.msg);
    }
  }
  if (sbx_box_open(rt, dir, uid, l, &a, &e) != AC_OK) {
    ok(0, "re-open: %s", e.msg);
    return;
  }
  *pa = a;
  ok(is_mounted(proot), "open mounts the image again");
  is_str(sh_out(a, "cat /workspace/a /tmp/b ~/c", &code), "a\nb\nc\n",
         "data survives close/open");
  minor = -1;
  if (stat(proot, &st) == 0 && major(st.st_dev) == 7)
    minor = (int)minor(st.st_dev);
  ok(minor >= 0, "image is on loop device %d", minor);
  snprintf(img, sizeof img, "%s/disk.img", dir);
  ok(sbx_box_rootfd(a) >= 0 && sbx_box_uid(a) == uid &&
     sbx_box_gid(a) == (gid_t)uid && strcmp(sbx_box_dir(a), dir) == 0,
     "accessors");
  sbx_box_destroy(a);
  *pa = NULL;
  ok(access(dir, F_OK) < 0 && access(proot, F_OK) < 0,
     "destroy removes the directory and the published mount point");
  is_int(in_mountinfo(proot), 0, "destroy unmounts");
  {
    int busy = 1;
    for (int t = 0; t < 250 && busy; t++) {
      busy = minor >= 0 && loop_busy(minor, img);
      if (busy)
        usleep(20000);
    }
    ok(!busy, "the loop device was released");
  }
  {
    struct sbx_box fake;
    memset(&fake, 0, sizeof fake);
    snprintf(fake.cgname, sizeof fake.cgname, "%s", cgname);
    is_int(box_cgroups(&fake), 0, "destroy removes the box cgroups");
  }
}

struct bg {
  struct sbx_box *box;
  struct sbx_exec_result r;
  enum ac_code rc;
};

static void *bg_run(void *arg) {
  struct bg *g = arg;
  const char *argv[] = { "sh", "-c", "sleep 100", NULL };
  g->rc = runv(g->box, argv, NULL, NULL, 60 * SEC, 0, &g->r);
  return NULL;
}

/* sbx_box_kill: the running command dies at once, the box stays usable. */
static void test_kill_running(struct sbx_box *a, uid_t uid) {
  tcase("sbx_box_kill kills the running command, the box stays usable");
  REQUIRE(a != NULL, "the box exists");
  struct bg g;
  pthread_t t;
  int code;
  memset(&g, 0, sizeof g);
  g.box = a;
  pthread_create(&t, NULL, bg_run, &g);
  ok(wait_uid_procs(uid, 1, 1, 1, 60000) >= 1, "box_kill: command started");
  sbx_box_kill(a);
  pthread_join(t, NULL);
  ok(g.rc == AC_OK && !g.r.timed_out && g.r.exit_code == 137,
     "box_kill: the running command is killed (exit %d)", g.r.exit_code);
  sbx_exec_result_free(&g.r);
  is_int(wait_uid_procs(uid, 1, 0, 0, 2000), 0, "box_kill: nothing left");
  is_str(sh_out(a, "echo still", &code), "still\n",
         "box_kill: the box still runs commands");
  sbx_box_kill(NULL);
}

static void test_destroy_running(uid_t uid) {
  tcase("destroy kills a running command and removes the box");
  struct sbx_limits l = { 0 };
  struct bg g;
  pthread_t t;
  char dir[256];
  memset(&g, 0, sizeof g);
  g.box = create_box("running", uid, &l);
  if (g.box == NULL) {
    ok(0, "create box 'running'");
    return;
  }
  snprintf(dir, sizeof dir, "%s", sbx_box_dir(g.box));
  pthread_create(&t, NULL, bg_run, &g);
  ok(wait_uid_procs(uid, 1, 1, 1, 60000) >= 1,
     "destroy-running: command started");
  sbx_box_destroy(g.box);
  pthread_join(t, NULL);
  ok(g.rc == AC_OK && !g.r.timed_out && g.r.exit_code == 137,
     "destroy kills a running command, whose sbx_exec returns");
  is_int(uid_procs(uid, 0), 0, "destroy-running: nothing left");
  ok(access(dir, F_OK) < 0, "destroy-running: plain box removed");
  sbx_exec_result_free(&g.r);
}

/* The fallback kills without cgroup.kill (kernels before 5.14): freeze,
** SIGKILL every member, thaw -- on the v2 tree (cgroup.freeze) and on the
** v1 freezer. A process tree with setsid'd members must die completely. */
static void test_fallback_kill(unsigned flags, const char *what, uid_t uid) {
  tcase("kill without cgroup.kill (%s) kills a setsid'd tree", what);
  struct cg_runtime cg;
  struct cg_box box;
  struct cg_cmd cmd;
  struct ac_error e;
  char name[64], boxdir[1024];
  pid_t pid;
  int st;

  snprintf(name, sizeof name, "agentcube-test-%ld", (long)getpid());
  cg_runtime_init_ex(&cg, name, flags);
  ok(cg_has(&cg, CG_W_FREEZE) && !cg_has(&cg, CG_W_KILL),
     "%s: fallback selected", what);
  if (cg_box_open(&cg, "box-t", 0, 0, 0, &box, &e) != AC_OK ||
      cg_cmd_create(&cg, &box, "cmd-0", &cmd, &e) != AC_OK) {
    ok(0, "%s: cgroups: %s", what, e.msg);
    cg_runtime_free(&cg);
    return;
  }
  snprintf(boxdir, sizeof boxdir, "%s", box.dir[0]);
  pid = fork();
  if (pid == 0) {
    for (int i = 0; i < cmd.njoin; i++)
      if (write(cmd.join[i], "0", 1) != 1)
        _exit(2);
    if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 ||
        setresuid(uid, uid, uid) < 0)
      _exit(3);
    execl("/bin/sh", "sh", "-c", "(setsid sleep 1000 &); (sleep 1001 &); "
          "exec sleep 1002", (char *)NULL);
    _exit(4);
  }
  ok(wait_uid_procs(uid, 0, 3, 1, 60000) >= 3, "%s: tree started", what);
  ok(cg_cmd_populated(&cg, &cmd), "%s: cgroup populated", what);
  cg_cmd_kill(&cg, &cmd);
  waitpid(pid, &st, 0);
  ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "%s: main process "
     "SIGKILLed", what);
  is_int(wait_gone_reaping(uid, 60000), 0, "%s: every process is gone",
         what);                         /* setsid'd ones came to us */
  cg_cmd_destroy(&cg, &cmd);
  cg_box_remove(&cg, &box);
  ok(access(boxdir, F_OK) < 0, "%s: cgroups removed", what);
  {
    char parents[CG_MAX_HIER][512];
    int n = cg.n, left = 0;
    for (int i = 0; i < n; i++)
      snprintf(parents[i], sizeof parents[i], "%s", cg.h[i].parent);
    cg_runtime_free(&cg);
    for (int i = 0; i < n; i++)
      left += access(parents[i], F_OK) == 0;
    is_int(left, 0, "%s: runtime cgroups removed", what);
  }
}

/* The same runtime unprivileged, in a child that drops to another uid.
** Results come back as TAP-like lines through a pipe. */
static void test_unprivileged(uid_t uid) {
  tcase("unprivileged runtime: report, uid 1000 inside, timeout without cgroups");
  char dir[256] = "/tmp/agentcube-sbxu-XXXXXX", line[512];
  FILE *f;
  int p[2], status;
  pid_t child;

  if (mkdtemp(dir) == NULL || chown(dir, uid, uid) < 0 || pipe(p) < 0) {
    ok(0, "unprivileged setup: %s", strerror(errno));
    return;
  }
  child = fork();
  if (child == 0) {
    struct sbx_runtime *urt;
    struct sbx_box *b;
    struct sbx_exec_result r;
    struct ac_error e;
    struct sbx_limits l = { .memory_bytes = 64 << 20, .disk_bytes = 1 << 30,
                            .nofile = 100 };
    const char *argv[] = { "sh", "-c", "id -u; echo x > /workspace/f; "
                           "ulimit -n", NULL };
    const char *slp[] = { "sh", "-c", "(setsid sleep 1000 &); "
                          "exec sleep 1001", NULL };
    struct sbx_exec_request rq = { .argv = argv, .timeout_ns = 30 * SEC };
    char rep[4096];
    FILE *mem, *o = fdopen(p[1], "w");
    int off;
    close(p[0]);
    /* no capability left; 0 stays the saved uid only for child_exit */
    if (o == NULL || setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 ||
        setresuid(uid, uid, 0) < 0)
      _exit(2);
#define UOK(c, name) fprintf(o, "%s|%s\n", (c) ? "ok" : "not ok", name)
    if (sbx_runtime_init(&urt, dir, &e)) {
      fprintf(o, "not ok|runtime init: %s\n", e.msg);
      fclose(o);
      _exit(0);
    }
    UOK(!sbx_runtime_switches_uid(urt), "unprivileged: no uid switching");
    mem = fmemopen(rep, sizeof rep, "w");
    off = sbx_runtime_report(urt, mem);
    fclose(mem);
    UOK(off > 0, "unprivileged: the report lists protections that are off");
    UOK(strstr(rep, "uid switching") && strstr(rep, "not root"),
        "unprivileged: report says why uid switching is off");
    UOK(strstr(rep, "disk quota (loop image)        off"),
        "unprivileged: report says there is no disk quota");
    UOK(strstr(rep, "memory limit                   off"),
        "unprivileged: report says there is no memory limit");
    UOK(strstr(rep, "sandbox self-test              on"),
        "unprivileged: the self-test passed");
    if (sbx_box_create(urt, path_in(dir, "box"), 0, &l, &b, &e)) {
      fprintf(o, "not ok|unprivileged box create: %s\n", e.msg);
      fclose(o);
      _exit(0);
    }
    UOK(access(path_in(dir, "box/disk.img"), F_OK) < 0,
        "unprivileged: a plain directory, no image");
    if (sbx_exec(b, &rq, &r, &e) == AC_OK) {
      char want[64];
      struct stat st;
      snprintf(want, sizeof want, "1000\n100\n");
      UOK(strcmp(r.out, want) == 0 && r.exit_code == 0,
          "unprivileged: runs as uid 1000 inside, rlimits applied");
      UOK(fstatat(sbx_box_rootfd(b), "workspace/f", &st, 0) == 0 &&
          st.st_uid == uid, "unprivileged: files owned by the server's uid");
      sbx_exec_result_free(&r);
    } else {
      fprintf(o, "not ok|unprivileged exec: %s\n", e.msg);
    }
    rq.argv = slp;
    rq.timeout_ns = SEC;
    if (sbx_exec(b, &rq, &r, &e) == AC_OK) {
      UOK(r.timed_out && r.exit_code == 124,
          "unprivileged: timeout without cgroups");
      sbx_exec_result_free(&r);
    } else {
      fprintf(o, "not ok|unprivileged exec with a timeout: %s\n", e.msg);
    }
    UOK(wait_uid_procs(uid, 0, 1, 0, 10000) == 1,
        "unprivileged: the timed-out tree is gone (only this process)");
    sbx_box_destroy(b);
    UOK(access(path_in(dir, "box"), F_OK) < 0,
        "unprivileged: box destroyed");
    sbx_runtime_free(urt);
    fclose(o);
    child_exit(0);
  }
  close(p[1]);
  f = fdopen(p[0], "r");
  while (f && fgets(line, sizeof line, f)) {
    char *bar = strchr(line, '|');
    line[strcspn(line, "\n")] = '\0';
    if (bar) {
      *bar = '\0';
      ok(strcmp(line, "ok") == 0, "%s", bar + 1);
    }
  }
  if (f)
    fclose(f);
  waitpid(child, &status, 0);
  ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
     "unprivileged child exited cleanly (status %d)", status);
  is_int(wait_uid_procs(uid, 0, 0, 0, 10000), 0,
         "unprivileged: no process left");
  rmdir(dir);
}

int main(void) {
  struct ac_error e;
  struct sbx_limits la = { .memory_bytes = 256 << 20, .disk_bytes = 64 << 20,
                           .pids = 64, .cpu_millis = 2000 };
  struct sbx_limits lb = { .network = 1, .nofile = 64,
                           .fsize_bytes = 1 << 20 };
  struct sbx_box *a = NULL, *b = NULL;
  char adir[256] = "";
  FILE *mem;
  char rep[4096];
  int off, fds0;

  plan(25);
  if (geteuid() != 0)
    return skip_all("needs root (image boxes, cgroups, session uids)");
  setenv("SBX_CANARY", CANARY, 1);
  base_uid = 230000 + (uid_t)(getpid() % 1000) * 8;
  tcase("runtime: init, self-test, --check report, per-session uids");
  /* mkdtemp makes it 0700: sandboxes must not need to reach it by path. */
  if (!ok(mkdtemp(state) != NULL, "state directory %s created", state))
    return done_testing();
  if (sbx_runtime_init(&rt, state, &e) != AC_OK) {
    ok(0, "sbx_runtime_init: %s", e.msg);
    rmdir(state);
    return done_testing();
  }
  mem = fmemopen(rep, sizeof rep, "w");
  off = sbx_runtime_report(rt, mem);
  fclose(mem);
  printf("# --check report:\n");
  for (char *s = rep, *nl; *s; s = nl + 1) {
    nl = strchr(s, '\n');
    if (nl == NULL)
      break;
    printf("#   %.*s\n", (int)(nl - s), s);
  }
  if (!rt->selftest_ok) {
    char why[512];
    snprintf(why, sizeof why, "the sandbox cannot run here: %s",
             rt->why_selftest);
    skip_case(why);
    sbx_runtime_free(rt);
    rmdir(state);
    return skip_all(why);
  }
  ok(off >= 0, "report returns the number of protections off (%d)", off);
  ok(sbx_runtime_switches_uid(rt), "root: per-session uids");
  ok(strstr(rep, "seccomp filter                 on") != NULL,
     "report: seccomp on");
  fds0 = count_fds();

  tcase("boxes: image box loop-mounted and published, plain box "
        "bind-mounted, private state, cgroups, EEXIST");
  a = create_box("a", base_uid, &la);
  b = create_box("b", base_uid + 1, &lb);
  ok(a && b, "boxes created (image and plain)");
  if (a && b) {
    struct stat st1, st2;
    snprintf(adir, sizeof adir, "%s", sbx_box_dir(a));
    ok(is_mounted(a->fs.root) && stat(a->fs.root, &st1) == 0 &&
       major(st1.st_dev) == 7, "image box is loop-mounted at %s",
       a->fs.root);
    ok(strcmp(a->fs.root, pub_root(adir)) == 0 &&
       strncmp(a->fs.root, "/run/agentcube/", 15) == 0,
       "published under /run/agentcube");
    ok(access(path_in(sbx_box_dir(b), "disk.img"), F_OK) < 0 &&
       stat(b->fs.root, &st1) == 0 && stat(state, &st2) == 0 &&
       st1.st_dev == st2.st_dev && is_mounted(b->fs.root),
       "disk 0: plain directory, bind-mounted where it is published");
    {
      struct stat sd;
      ok(stat(state, &sd) == 0 && (sd.st_mode & 07777) == 0700,
         "the state directory is private (0700)");
    }
    is_int(box_cgroups(a), rt->cg.n, "box cgroups exist");
    {
      struct sbx_box *dup;
      if (sbx_box_create(rt, adir, base_uid, &la, &dup, &e) == AC_OK)
        sbx_box_destroy(dup);
      is_int(e.code, AC_EEXIST, "create over an existing box: EEXIST");
    }
  }
  test_basics(a);
  test_env(a);
  test_persistence(a);
  test_output(a);
  test_timeout(a, base_uid);
  test_concurrent(a);
  test_limits(a, base_uid);
  test_plain_limits(b);
  test_isolation(a, b, base_uid);
  test_seccomp(a);
  test_kill_running(a, base_uid);
  test_lifecycle(&a, adir, base_uid, &la);
  sbx_box_destroy(a);
  sbx_box_destroy(b);
  test_destroy_running(base_uid + 2);
  test_crash(base_uid + 3);
  test_unprivileged(base_uid + 4);
  test_fallback_kill(CG_INIT_NO_KILL, "v2 cgroup.freeze", base_uid + 5);
  test_fallback_kill(CG_INIT_NO_KILL | CG_INIT_NO_V2_FREEZE, "v1 freezer",
                     base_uid + 6);

  /* Nothing of ours may be left. */
  tcase("nothing left: fds, children, processes, mounts, cgroups, "
        "publication and state directories");
  is_int(count_fds(), fds0, "no file descriptor leaked");
  is_int(count_children(), 0, "no child process or zombie left");
  for (uid_t u = base_uid; u < base_uid + 7; u++)
    is_int(uid_procs(u, 0), 0, "no process of uid %u left", (unsigned)u);
  {
    const char *names[] = { "a", "b", "running", "crash" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
      sbx_box_purge(rt, path_in(state, names[i]), NULL);
  }
  {
    /* /etc snapshots (ours, and the crashed child's until the sweep that
    ** sbx_runtime_free does) are the runtime's: checked after it below */
    char etcs[600];
    snprintf(etcs, sizeof etcs, "%s/etc.", rt->pub);
    ok(in_mountinfo(state) == 0 && in_mountinfo_but(rt->pub, etcs) == 0,
       "no mount left under the state dir or /run/agentcube");
  }
  {
    char pub[512];
    snprintf(pub, sizeof pub, "%s", rt->pub);
    char parents[CG_MAX_HIER][512];
    int n = rt->cg.n, left = 0;
    for (int i = 0; i < n; i++)
      snprintf(parents[i], sizeof parents[i], "%s", rt->cg.h[i].parent);
    sbx_runtime_free(rt);
    for (int i = 0; i < n; i++)
      left += access(parents[i], F_OK) == 0;
    is_int(left, 0, "the runtime's cgroup parents are removed");
    ok(access(pub, F_OK) < 0, "the publication directory is removed");
    is_int(in_mountinfo(pub), 0, "the /etc snapshot's mount goes with it");
  }
  ok(rmdir(state) == 0, "state dir empty at the end");
  return done_testing();
}
