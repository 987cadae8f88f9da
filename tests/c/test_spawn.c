/*
** test_spawn.c -- sbx_spawn, the launch of a sandbox's first process: the
** descriptors the child gets (the plan's, moved into place, and nothing
** else of the server's), its limits, signals, session and ids, and every
** way the launch can fail, each reported with the step and the errno and
** leaving no child behind. The programs started here are plain ones
** (cat, sh, id), not bwrap: the launch is the same.
*/
#include "cgroup.h"
#include "child_exit.h"
#include "sandbox_int.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *envp[] = { "PATH=/usr/bin:/bin", NULL };

/* A plan that runs argv with stdin, stdout and stderr as given. */
static void plan_for(struct sbx_spawn_plan *p, char *const *argv, int in,
                     int out, int errfd) {
  memset(p, 0, sizeof *p);
  p->path = argv[0];
  p->argv = argv;
  p->envp = envp;
  for (int i = 0; i < SBX_NFDS; i++)
    p->fds[i] = -1;
  p->fds[0] = in;
  p->fds[1] = out;
  p->fds[2] = errfd;
  p->nfds = 3;
}

/* Reads fd to EOF into buf (NUL-terminated); returns the length. */
static size_t slurp(int fd, char *buf, size_t size) {
  size_t len = 0;
  ssize_t n;
  while (len + 1 < size && (n = read(fd, buf + len, size - 1 - len)) != 0) {
    if (n < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    len += (size_t)n;
  }
  buf[len] = '\0';
  return len;
}

/* Waits for pid; returns its exit status, or -1. */
static int reap(pid_t pid, int pidfd) {
  int st;
  if (pidfd >= 0)
    close(pidfd);
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR)
      return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* 1 when this process has a child left (a zombie counts). */
static int has_child(void) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         si.si_pid != 0;
}

/* Runs argv with stdout and stderr into one pipe (and optional extra
** plan settings); returns the exit status and the output. */
static int run(char *const *argv, struct sbx_spawn_plan *extra, char *out,
               size_t outsz, struct ac_error *err) {
  struct sbx_spawn_plan p;
  int io[2], null = open("/dev/null", O_RDONLY | O_CLOEXEC), rc;
  pid_t pid;
  int pidfd;

  out[0] = '\0';
  if (null < 0 || pipe2(io, O_CLOEXEC) < 0)
    return -2;
  if (extra) {
    p = *extra;
    p.fds[0] = null;
    p.fds[1] = p.fds[2] = io[1];
    if (p.nfds < 3)
      p.nfds = 3;
  } else {
    plan_for(&p, argv, null, io[1], io[1]);
  }
  p.path = argv[0];
  p.argv = argv;
  p.envp = envp;
  rc = sbx_spawn(&p, &pid, &pidfd, err);
  close(io[1]);
  close(null);
  if (rc != AC_OK) {
    close(io[0]);
    return -1;
  }
  slurp(io[0], out, outsz);
  close(io[0]);
  return reap(pid, pidfd);
}

/* {====================================================== the child */

static void runs_with_the_plans_fds_only(void) {
  char *argv[] = { "/bin/cat", NULL };
  struct sbx_spawn_plan p;
  struct ac_error err = { 0 };
  char path[64], buf[64];
  int in[2], out[2], leak, pidfd, n = 0;
  pid_t pid;

  tcase("the child gets the plan's fds as 0..2 and none of the server's");
  REQUIRE(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0, "pipes");
  /* a descriptor of the server without O_CLOEXEC: must not reach the
  ** child anyway */
  leak = open("/dev/null", O_RDONLY);
  REQUIRE(leak >= 0 && !(fcntl(leak, F_GETFD) & FD_CLOEXEC),
          "an inheritable fd %d open in the server", leak);
  plan_for(&p, argv, in[0], out[1], out[1]);
  REQUIRE(sbx_spawn(&p, &pid, &pidfd, &err) == AC_OK, "spawn: %s", err.msg);
  close(in[0]);
  close(out[1]);
  ok(pid > 0 && pidfd >= 0, "a pid (%d) and a pidfd (%d)", (int)pid, pidfd);
  ok(fcntl(pidfd, F_GETFD) & FD_CLOEXEC, "the pidfd is close-on-exec");
  /* sbx_spawn returns once the child has exec'd; cat echoing a line has
  ** also loaded its libraries (ld.so holds each open for a moment) */
  REQUIRE(write(in[1], "ping\n", 5) == 5, "write to the child's stdin");
  for (size_t got = 0; got < 5;) {
    ssize_t r = read(out[0], buf + got, 5 - got);
    REQUIRE(r > 0, "the child echoes");
    got += (size_t)r;
  }
  for (int fd = 0; fd < 1024; fd++) {
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)pid, fd);
    if (lstat(path, &st) == 0) {
      n++;
      if (fd > 2)
        ok(0, "fd %d is open in the child", fd);
    }
  }
  is_int(n, 3, "the child has exactly three fds open");
  close(in[1]);
  slurp(out[0], buf + 5, sizeof buf - 5);
  close(out[0]);
  is_str(buf, "ping\n", "stdin and stdout are the plan's pipes, nothing "
         "more written");
  is_int(reap(pid, pidfd), 0, "cat exits 0");
  close(leak);
}

/* Sources numbered like other targets: 3 <- fd 4 and 4 <- fd 3. */
static void moves_crossed_fds(void) {
  char *argv[] = { "/bin/sh", "-c", "echo three >&3; echo four >&4", NULL };
  struct sbx_spawn_plan p;
  struct ac_error err = { 0 };
  int p3[2], p4[2], null, pidfd;
  char b3[32], b4[32];
  pid_t pid;

  tcase("fds are moved into place even when sources and targets cross");
  REQUIRE(pipe2(p3, O_CLOEXEC) == 0 && pipe2(p4, O_CLOEXEC) == 0, "pipes");
  /* the pipes above 20, so that 3 and 4 can be placed by hand */
  for (int i = 0; i < 2; i++) {
    int a = fcntl(p3[i], F_DUPFD_CLOEXEC, 20), b = fcntl(p4[i],
                                                         F_DUPFD_CLOEXEC, 20);
    close(p3[i]);
    close(p4[i]);
    p3[i] = a;
    p4[i] = b;
  }
  REQUIRE(p3[0] >= 20 && p3[1] >= 20 && p4[0] >= 20 && p4[1] >= 20,
          "the pipes moved above 20");
  REQUIRE(fcntl(3, F_GETFD) < 0 && fcntl(4, F_GETFD) < 0,
          "fds 3 and 4 are free in this process");
  /* this process's fd 3 is the write end for "four", fd 4 for "three" */
  REQUIRE(dup3(p4[1], 3, O_CLOEXEC) == 3 && dup3(p3[1], 4, O_CLOEXEC) == 4,
          "crossed write ends at fds 3 and 4");
  close(p3[1]);
  close(p4[1]);
  null = open("/dev/null", O_RDWR | O_CLOEXEC);
  plan_for(&p, argv, null, null, null);
  p.fds[3] = 4;
  p.fds[4] = 3;
  p.nfds = 5;
  REQUIRE(sbx_spawn(&p, &pid, &pidfd, &err) == AC_OK, "spawn: %s", err.msg);
  close(3);
  close(4);
  close(null);
  is_int(reap(pid, pidfd), 0, "the shell exits 0");
  slurp(p3[0], b3, sizeof b3);
  slurp(p4[0], b4, sizeof b4);
  close(p3[0]);
  close(p4[0]);
  is_str(b3, "three\n", "the child's fd 3 is the plan's fds[3]");
  is_str(b4, "four\n", "the child's fd 4 is the plan's fds[4]");
}

static void sets_the_plans_limits(void) {
  char *argv[] = { "/bin/sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c",
                   NULL };
  struct sbx_spawn_plan p;
  struct ac_error err = { 0 };
  struct rlimit mine;
  char out[128];

  tcase("the child runs under the plan's rlimits");
  REQUIRE(getrlimit(RLIMIT_NOFILE, &mine) == 0, "getrlimit");
  ok(mine.rlim_cur != 77 && mine.rlim_max != 77,
     "this process's limit is not 77 (control)");
  plan_for(&p, argv, -1, -1, -1);
  p.rl[0].resource = RLIMIT_NOFILE;
  p.rl[0].lim.rlim_cur = p.rl[0].lim.rlim_max = 77;
  p.rl[1].resource = RLIMIT_CORE;
  p.rl[1].lim.rlim_cur = p.rl[1].lim.rlim_max = 0;
  p.nrl = 2;
  is_int(run(argv, &p, out, sizeof out, &err), 0, "the shell exits 0");
  is_str(out, "77\n77\n0\n", "soft and hard NOFILE 77, no core files");
}

static void resets_signals(void) {
  char *argv[] = { "/bin/grep", "-E", "^Sig(Ign|Blk):",
                   "/proc/self/status", NULL };
  struct sigaction ign = { .sa_handler = SIG_IGN }, old;
  sigset_t usr1, oldmask;
  struct ac_error err = { 0 };
  char out[256], mine[4096];
  int fd;
  ssize_t n;

  tcase("the child starts with no signal ignored or blocked");
  sigaction(SIGPIPE, &ign, &old);
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, &oldmask);
  fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  n = fd >= 0 ? read(fd, mine, sizeof mine - 1) : -1;
  mine[n > 0 ? n : 0] = '\0';
  if (fd >= 0)
    close(fd);
  ok(strstr(mine, "SigIgn:\t0000000000000000") == NULL &&
     strstr(mine, "SigBlk:\t0000000000000000") == NULL,
     "this process ignores SIGPIPE and blocks SIGUSR1 (control)");
  is_int(run(argv, NULL, out, sizeof out, &err), 0, "grep exits 0");
  pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
  sigaction(SIGPIPE, &old, NULL);
  if (!ok(strstr(out, "SigIgn:\t0000000000000000\n") != NULL,
          "nothing ignored in the child")) {
    out[strcspn(out, "\n")] = ' ';
    printf("#   the child's %s", out);
  }
  ok(strstr(out, "SigBlk:\t0000000000000000\n") != NULL,
     "nothing blocked in the child");
}

static void leads_its_own_session(void) {
  char *argv[] = { "/bin/sh", "-c", "echo $$ $(cut -d' ' -f6 /proc/$$/stat)",
                   NULL };
  struct ac_error err = { 0 };
  char out[128];
  long pid = 0, sid = -1;
  int n;

  tcase("the child leads a new session, away from the server's");
  is_int(run(argv, NULL, out, sizeof out, &err), 0, "the shell exits 0");
  n = sscanf(out, "%ld %ld", &pid, &sid);
  ok(n == 2 && pid == sid && pid > 0, "its session id is its pid (%ld, %ld)",
     pid, sid);
  ok(sid != (long)getsid(0), "not this process's session (%ld)",
     (long)getsid(0));
}

static void switches_ids(void) {
  char *argv[] = { "/usr/bin/id", NULL };
  struct sbx_spawn_plan p;
  struct ac_error err = { 0 };
  char out[256];

  tcase("with set_ids the child runs as the plan's uid and gid alone");
  if (geteuid() != 0) {
    ok(1, "not root");
    skip_case("not root: cannot switch ids");
    return;
  }
  is_int(run(argv, NULL, out, sizeof out, &err), 0, "id as this process");
  ok(strstr(out, "uid=0(") != NULL, "without set_ids: root (control)");
  plan_for(&p, argv, -1, -1, -1);
  p.set_ids = 1;
  p.uid = 200123;
  p.gid = 200124;
  is_int(run(argv, &p, out, sizeof out, &err), 0, "id exits 0");
  is_str(out, "uid=200123 gid=200124 groups=200124\n",
         "the plan's ids, no supplementary group");
}

/* }====================================================== */

/* {====================================================== failures */

/* Spawns the plan, expecting a failure at step `what` with errno e. */
static void fails_at(struct sbx_spawn_plan *p, const char *what, int e) {
  struct ac_error err = { 0 };
  char want[160];
  pid_t pid = 12345;
  int pidfd = 12345;

  is_int(sbx_spawn(p, &pid, &pidfd, &err), AC_ESYSTEM, "spawn fails");
  snprintf(want, sizeof want, "sandbox launch: %s", what);
  ok(strstr(err.msg, want) != NULL, "the message names the step: %s",
     err.msg);
  ok(strstr(err.msg, strerror(e)) != NULL, "and the errno (%s)",
     strerror(e));
  ok(pid == -1 && pidfd == -1, "no pid or pidfd handed out");
  ok(!has_child(), "no child left behind, not even a zombie");
}

static void exec_failure(void) {
  char *argv[] = { "/nonexistent/agentcube-bwrap", NULL };
  struct sbx_spawn_plan p;
  tcase("a missing executable fails at execve with ENOENT");
  plan_for(&p, argv, -1, -1, -1);
  fails_at(&p, "execve", ENOENT);
}

static void join_failure(void) {
  char *argv[] = { "/bin/true", NULL };
  struct sbx_spawn_plan p;
  int ro = open("/dev/null", O_RDONLY | O_CLOEXEC);
  tcase("a cgroup.procs fd that cannot be written fails the launch");
  REQUIRE(ro >= 0, "a read-only fd");
  plan_for(&p, argv, -1, -1, -1);
  p.join = &ro;
  p.njoin = 1;
  fails_at(&p, "joining the command's cgroups", EBADF);
  close(ro);
}

static void rlimit_failure(void) {
  char *argv[] = { "/bin/true", NULL };
  struct sbx_spawn_plan p;
  tcase("an impossible rlimit (soft above hard) fails at setrlimit");
  plan_for(&p, argv, -1, -1, -1);
  p.rl[0].resource = RLIMIT_NOFILE;
  p.rl[0].lim.rlim_cur = 64;
  p.rl[0].lim.rlim_max = 32;
  p.nrl = 1;
  fails_at(&p, "setrlimit", EINVAL);
}

static void fd_failure(void) {
  char *argv[] = { "/bin/true", NULL };
  struct sbx_spawn_plan p;
  tcase("a plan fd that is not open fails at arranging the fds");
  plan_for(&p, argv, -1, -1, -1);
  p.fds[1] = 1000;
  REQUIRE(fcntl(1000, F_GETFD) < 0, "fd 1000 is not open");
  fails_at(&p, "arranging file descriptors", EBADF);
}

/* An unprivileged server (here a child of the test that dropped to
** nobody) asked to switch ids: refused at setgroups. */
static void id_failure(void) {
  char *argv[] = { "/bin/true", NULL };
  struct sbx_spawn_plan p;
  char msg[sizeof ((struct ac_error *)0)->msg + 16];
  int pfd[2], st = -1;
  pid_t child;

  tcase("set_ids without the privilege fails at setgroups (EPERM)");
  REQUIRE(pipe2(pfd, O_CLOEXEC) == 0, "a pipe");
  child = fork();
  if (child == 0) {
    struct ac_error err = { 0 };
    pid_t pid;
    int pidfd, rc;
    if (geteuid() == 0 &&
        (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
         setresuid(65534, 65534, 0) < 0))      /* see child_exit.h */
      _exit(3);
    plan_for(&p, argv, -1, -1, -1);
    p.set_ids = 1;
    p.uid = p.gid = 200123;
    rc = sbx_spawn(&p, &pid, &pidfd, &err);
    if (rc == AC_OK)
      _exit(2);
    if (write(pfd[1], err.msg, strlen(err.msg)) < 0)
      _exit(4);
    child_exit(pid == -1 && pidfd == -1 && !has_child() ? 0 : 1);
  }
  close(pfd[1]);
  REQUIRE(child > 0, "fork");
  slurp(pfd[0], msg, sizeof msg);
  close(pfd[0]);
  while (waitpid(child, &st, 0) < 0 && errno == EINTR)
    ;
  is_int(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0,
         "spawn fails, hands out no pid and leaves no child");
  ok(strstr(msg, "sandbox launch: setgroups") != NULL &&
     strstr(msg, strerror(EPERM)) != NULL, "says so: %s", msg);
}

static void netns_failure(void) {
  char *argv[] = { "/bin/true", NULL };
  struct sbx_spawn_plan p;
  int notns = open("/dev/null", O_RDONLY | O_CLOEXEC);
  tcase("a network namespace fd that is none fails at joining it");
  REQUIRE(notns > 0, "an fd of /dev/null");
  plan_for(&p, argv, -1, -1, -1);
  p.netns = notns;
  fails_at(&p, "joining the session's network namespace", EINVAL);
  close(notns);
}

/* A server whose own cgroup is at its pids limit: clone fails, and says
** so (in a child of the test, alone in a cgroup with pids.max 1). */
static void out_of_pids(void) {
  char *argv[] = { "/bin/true", NULL };
  char name[64], msg[sizeof ((struct ac_error *)0)->msg + 16];
  struct cg_runtime cg;
  struct cg_box box;
  struct cg_cmd cmd;
  struct ac_error err = { 0 };
  int pfd[2], st = -1;
  pid_t child;

  tcase("at the server's pids limit the launch fails at clone (EAGAIN)");
  snprintf(name, sizeof name, "agentcube-spawntest-%ld", (long)getpid());
  cg_runtime_init(&cg, name);
  if (!cg_has(&cg, CG_W_PIDS)) {
    ok(1, "no pids controller: %s", cg.why_pids);
    skip_case("no pids controller here");
    cg_runtime_free(&cg);
    return;
  }
  REQUIRE(cg_box_open(&cg, "box-pids", 0, 1, 0, &box, &err) == AC_OK &&
          cg_cmd_create(&cg, &box, "cmd-1", &cmd, &err) == AC_OK,
          "a cgroup with pids.max 1: %s", err.msg);
  REQUIRE(pipe2(pfd, O_CLOEXEC) == 0, "a pipe");
  child = fork();
  if (child == 0) {
    struct sbx_spawn_plan p;
    pid_t pid;
    int pidfd;
    for (int i = 0; i < cmd.njoin; i++)
      if (write(cmd.join[i], "0", 1) != 1)
        _exit(3);
    plan_for(&p, argv, -1, -1, -1);
    if (sbx_spawn(&p, &pid, &pidfd, &err) == AC_OK)
      _exit(2);
    if (write(pfd[1], err.msg, strlen(err.msg)) < 0)
      _exit(4);
    child_exit(pid == -1 && pidfd == -1 && !has_child() ? 0 : 1);
  }
  close(pfd[1]);
  REQUIRE(child > 0, "fork");
  slurp(pfd[0], msg, sizeof msg);
  close(pfd[0]);
  while (waitpid(child, &st, 0) < 0 && errno == EINTR)
    ;
  is_int(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0,
         "spawn fails, hands out no pid and leaves no child");
  ok(strstr(msg, "sandbox: clone") != NULL &&
     strstr(msg, strerror(EAGAIN)) != NULL, "says so: %s", msg);
  cg_cmd_destroy(&cg, &cmd);
  cg_box_remove(&cg, &box);
  cg_runtime_free(&cg);
}

/* The server out of descriptors: the launch fails before any child. */
static void out_of_fds(void) {
  char *argv[] = { "/bin/true", NULL };
  struct sbx_spawn_plan p;
  struct rlimit old, low;
  struct ac_error err = { 0 };
  pid_t pid;
  int pidfd, fill[64], nfill = 0, first;
  enum ac_code rc;

  tcase("out of descriptors (EMFILE): at pipe2, or in the child");
  REQUIRE(getrlimit(RLIMIT_NOFILE, &old) == 0, "getrlimit");
  /* every fd below the new soft limit taken */
  first = open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(first >= 0, "an fd");
  close(first);
  while (nfill < 64) {
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      break;
    fill[nfill++] = fd;
    if (fd == first + 1)
      break;
  }
  low = old;
  low.rlim_cur = (rlim_t)first + 2;
  REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0, "soft limit %d",
          first + 2);
  plan_for(&p, argv, -1, -1, -1);
  rc = sbx_spawn(&p, &pid, &pidfd, &err);
  setrlimit(RLIMIT_NOFILE, &old);
  while (nfill > 0)
    close(fill[--nfill]);
  is_int(rc, AC_ESYSTEM, "spawn fails");
  ok(strstr(err.msg, "sandbox: pipe2") && strstr(err.msg, strerror(EMFILE)),
     "says so: %s", err.msg);
  ok(!has_child(), "no child");
  /* two descriptors free: the pipe opens, the child has none left to
  ** move its error pipe to */
  REQUIRE(getrlimit(RLIMIT_NOFILE, &old) == 0, "getrlimit");
  while (nfill < 64) {
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      break;
    fill[nfill++] = fd;
    if (fd == first + 1)
      break;
  }
  low.rlim_cur = (rlim_t)first + 4;
  REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0, "soft limit %d",
          first + 4);
  rc = sbx_spawn(&p, &pid, &pidfd, &err);
  setrlimit(RLIMIT_NOFILE, &old);
  while (nfill > 0)
    close(fill[--nfill]);
  is_int(rc, AC_ESYSTEM, "with two fds free, spawn fails in the child");
  ok(strstr(err.msg, "sandbox launch: arranging file descriptors") &&
     strstr(err.msg, strerror(EMFILE)), "says so: %s", err.msg);
  ok(!has_child(), "no child left");
  /* control: with the descriptors back, the same plan runs */
  rc = sbx_spawn(&p, &pid, &pidfd, &err);
  REQUIRE(rc == AC_OK, "spawn: %s", rc ? err.msg : "ok");
  is_int(reap(pid, pidfd), 0, "the same plan runs with fds free (control)");
}

/* }====================================================== */

int main(void) {
  plan(14);
  runs_with_the_plans_fds_only();
  moves_crossed_fds();
  sets_the_plans_limits();
  resets_signals();
  leads_its_own_session();
  switches_ids();
  exec_failure();
  join_failure();
  rlimit_failure();
  fd_failure();
  id_failure();
  netns_failure();
  out_of_pids();
  out_of_fds();
  return done_testing();
}
