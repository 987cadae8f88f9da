/*
** Commands on the live sandbox: streamed output in order, cancel and
** timeout kill the whole tree (setsid and double fork included), box
** destroy leaves nothing of its uid, and a killed, impersonated or
** garbage-speaking agent costs only its own box its running commands.
** Runs as root against the real kernel; timing bounds are generous (the
** strict numbers are in the benchmarks).
*/
#include "live_util.h"
#include "agent_proto.h"
#include "sandbox_live_int.h"

#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

static uid_t base_uid;

/* A tree that escapes a process group kill: a setsid'd pair, a double
** fork, then the main process. */
static const char escapers[] =
  "(setsid sh -c 'sleep 1000 & exec sleep 1001' &); "
  "(sh -c 'sleep 1003 &'); echo started; exec sleep 1004";

static enum ac_code start(struct sbx_box *b, const char *script,
                          long long timeout, struct rec *r,
                          struct sbx_task **t) {
  const char *argv[] = { "sh", "-c", script, NULL };
  struct sbx_exec_request rq;
  struct ac_error e;
  enum ac_code rc;
  memset(&rq, 0, sizeof rq);
  rq.argv = argv;
  rq.timeout_ns = timeout;
  rec_init(r);
  rc = sbx_exec_start(b, &rq, &rec_events, r, t, &e);
  if (rc)
    printf("# sbx_exec_start: %s\n", e.msg);
  return rc;
}

static void test_streaming(struct sbx_box *a) {
  struct rec r;
  struct sbx_task *t;
  tcase("streamed output arrives in order, before the end");
  REQUIRE(a != NULL, "a live box");
  REQUIRE(start(a, "echo a; sleep 0.4; echo b >&2; sleep 0.4; echo c",
                30 * SEC, &r, &t) == AC_OK, "a streamed command started");
  ok(rec_wait(&r, NULL, 30000), "streamed command ends");
  is_str(r.out, "a\nb\nc\n", "chunks arrive in the order written");
  is_str(r.order, "oeo", "stdout, stderr, stdout");
  ok(r.offsets_ok, "offsets are contiguous across streams");
  ok(r.done_ms - r.first_ms >= 500,
     "the first chunk came before the end (%lld ms before)",
     r.done_ms - r.first_ms);
  ok(r.have_res && r.res.exit_code == 0 && r.res.out_len == 0,
     "done: exit 0, output went to the callback, not the result");
  sbx_task_release(t);
}

static void test_cancel(struct sbx_box *a, uid_t uid) {
  struct rec r;
  struct sbx_task *t;
  long long t0, gone;
  tcase("cancel kills the whole tree, setsid and double fork included");
  REQUIRE(a != NULL, "a live box");
  REQUIRE(start(a, escapers, 60 * SEC, &r, &t) == AC_OK,
          "cancel: a tree started");
  ok(rec_wait(&r, "started", 30000), "cancel: tree started");
  ok(wait_uid_procs(uid, 1, 4, 1, 10000) >= 4,
     "cancel: setsid'd and double-forked processes run");
  t0 = now_ms();
  sbx_task_cancel(t);
  is_int(wait_uid_procs(uid, 1, 0, 0, 10000), 0,
         "cancel: every process of the tree is gone");
  gone = now_ms() - t0;
  printf("# cancel to no process left: %lld ms\n", gone);
  ok(gone < 2000, "cancel: gone quickly (%lld ms; bench holds the 100 ms "
     "target)", gone);
  ok(rec_wait(&r, NULL, 10000) && !r.res.timed_out, "cancel: done");
  is_int(r.res.exit_code, 137, "cancel: exit 137");
  sbx_task_cancel(t);            /* after done: harmless */
  sbx_task_release(t);
}

static void test_timeout(struct sbx_box *a, uid_t uid) {
  const char *argv[] = { "sh", "-c", escapers, NULL };
  struct sbx_exec_request rq;
  struct sbx_exec_result res;
  struct ac_error e;
  tcase("a timeout kills the whole tree and keeps the output before it");
  REQUIRE(a != NULL, "a live box");
  memset(&rq, 0, sizeof rq);
  rq.argv = argv;
  rq.timeout_ns = SEC;
  REQUIRE(sbx_exec(a, &rq, &res, &e) == AC_OK, "timeout: sbx_exec ran");
  ok(res.timed_out && res.exit_code == 124, "timeout: 124");
  is_str(res.out, "started\n", "timeout: output before it kept");
  is_int(wait_uid_procs(uid, 1, 0, 0, 2000), 0,
         "timeout: setsid'd and double-forked processes are gone");
  sbx_exec_result_free(&res);
}

static void test_main_exit_kills_leftovers(struct sbx_box *a, uid_t uid) {
  int code;
  const char *out;
  tcase("what a command leaves behind ends with it");
  REQUIRE(a != NULL, "a live box");
  out = run_sh(a, "(setsid sleep 1000 &); sleep 1001 & echo ok", &code);
  is_str(out, "ok\n", "a command that leaves processes behind returns");
  is_int(wait_uid_procs(uid, 1, 0, 0, 2000), 0,
         "what it left behind ends with it (as in a one-shot sandbox)");
}

static void test_release_without_wait(struct sbx_box *a, uid_t uid) {
  struct rec r;
  struct sbx_task *t;
  int code;
  tcase("a released task still times out and is killed");
  REQUIRE(a != NULL, "a live box");
  REQUIRE(start(a, "sleep 1000", 2 * SEC, &r, &t) == AC_OK,
          "a command started");
  sbx_task_release(t);           /* no events any more; it still ends */
  is_int(wait_uid_procs(uid, 1, 0, 0, 15000), 0,
         "a released task still times out and is killed");
  ok(!r.done, "no event after release");
  is_str(run_sh(a, "echo next", &code), "next\n", "the box goes on");
}

/* Starts argv (buffered unless ev says otherwise); returns the code. */
static enum ac_code start_argv(struct sbx_box *b, const char *const *argv,
                               const char *const *env, const char *cwd,
                               struct rec *r, struct sbx_task **t,
                               struct ac_error *e) {
  struct sbx_exec_request rq;
  memset(&rq, 0, sizeof rq);
  rq.argv = argv;
  rq.env = env;
  rq.working_dir = cwd;
  rq.timeout_ns = 30 * SEC;
  rec_init(r);
  *t = NULL;
  return sbx_exec_start(b, &rq, &rec_events, r, t, e);
}

/* Waits for a started task and releases it: its stdout, or "" when it
** did not start. */
static const char *finish(enum ac_code rc, struct rec *r, struct sbx_task *t,
                          int *code) {
  *code = -1;
  if (rc != AC_OK)
    return "";
  if (rec_wait(r, NULL, 30000))
    *code = r->res.exit_code;
  sbx_task_release(t);
  return r->out;
}

/* What cannot be a command is refused before anything is sent to the
** sandbox; the limits of a command line hold to the entry and the byte. */
static void test_refusals(struct sbx_box *a) {
  static const char *none[] = { NULL };
  static const char *empty[] = { "", NULL };
  static const char *echo[] = { "echo", "x", NULL };
  static const char *noeq[] = { "NOEQUALS", NULL };
  static const char *noname[] = { "=value", NULL };
  enum { MAXS = 4096 };           /* argv + environment entries */
  static const char *many[MAXS + 2];
  static char big[70001];
  char want[16];
  struct sbx_task *t;
  struct ac_error e;
  struct rec r;
  enum ac_code rc;
  int code;
  tcase("requests that cannot be commands are refused before anything "
        "runs; a command line's limits hold to the entry and the byte");
  REQUIRE(a != NULL, "a live box");
  ok(start_argv(a, none, NULL, NULL, &r, &t, &e) == AC_EINVAL && t == NULL &&
     contains(e.msg, "empty command"), "no argv: EINVAL (%s)", e.msg);
  ok(start_argv(a, empty, NULL, NULL, &r, &t, &e) == AC_EINVAL &&
     t == NULL, "an empty program name: EINVAL");
  ok(start_argv(a, echo, NULL, "tmp", &r, &t, &e) == AC_EINVAL &&
     contains(e.msg, "absolute"), "a relative working_dir: EINVAL (%s)",
     e.msg);
  ok(start_argv(a, echo, noeq, NULL, &r, &t, &e) == AC_EINVAL &&
     contains(e.msg, "\"NOEQUALS\""), "an environment entry without '=': "
     "EINVAL naming it (%s)", e.msg);
  ok(start_argv(a, echo, noname, NULL, &r, &t, &e) == AC_EINVAL,
     "an environment entry without a name: EINVAL");
  /* sh -c 'echo $#' x a a ...: 4 defaults of the environment count too */
  many[0] = "sh";
  many[1] = "-c";
  many[2] = "echo $#";
  many[3] = "x";
  for (int i = 4; i < MAXS - 4; i++)
    many[i] = "a";
  snprintf(want, sizeof want, "%d\n", MAXS - 8);
  rc = start_argv(a, many, NULL, NULL, &r, &t, &e);
  is_str(finish(rc, &r, t, &code), want, "%d strings in all run (the "
         "most there may be)", MAXS);
  many[MAXS - 4] = "a";
  ok(start_argv(a, many, NULL, NULL, &r, &t, &e) == AC_ETOOBIG &&
     t == NULL && contains(e.msg, "too many"), "one more: ETOOBIG (%s)",
     e.msg);
  many[3] = big;
  many[4] = NULL;
  many[2] = "echo ${#0}";
  memset(big, 'b', 60000);
  big[60000] = '\0';
  rc = start_argv(a, many, NULL, NULL, &r, &t, &e);
  is_str(finish(rc, &r, t, &code), "60000\n", "a 60000-byte argument "
         "runs");
  memset(big, 'b', 70000);
  big[70000] = '\0';
  ok(start_argv(a, many, NULL, NULL, &r, &t, &e) == AC_ETOOBIG &&
     t == NULL && contains(e.msg, "too large"), "a 70000-byte one: "
     "ETOOBIG (%s)", e.msg);
}

/* A request's environment replaces the defaults and its own earlier
** entries of the same name. */
static void test_env_override(struct sbx_box *a) {
  static const char *argv[] = { "sh", "-c", "echo $HOME $A $PATH $LANG",
                                NULL };
  static const char *env[] = { "HOME=/tmp/h", "A=1", "A=2", "PATH=/bin",
                               NULL };
  struct sbx_task *t;
  struct ac_error e;
  struct rec r;
  enum ac_code rc;
  int code;
  tcase("a request's environment overrides the defaults and itself");
  REQUIRE(a != NULL, "a live box");
  rc = start_argv(a, argv, env, NULL, &r, &t, &e);
  is_str(finish(rc, &r, t, &code), "/tmp/h 2 /bin C.UTF-8\n",
         "HOME, PATH replaced; the later A wins; LANG kept");
}

/* A timeout of zero has expired before the command could start: it
** never runs. */
static void test_timeout_zero(struct sbx_box *a) {
  static const char *argv[] = { "sh", "-c", "echo ran > /workspace/zero",
                                NULL };
  struct sbx_exec_request rq;
  struct sbx_task *t;
  struct ac_error e;
  struct rec r;
  int code;
  tcase("a zero timeout ends the command before it runs");
  REQUIRE(a != NULL, "a live box");
  memset(&rq, 0, sizeof rq);
  rq.argv = argv;
  rq.timeout_ns = 0;
  rec_init(&r);
  REQUIRE(sbx_exec_start(a, &rq, &rec_events, &r, &t, &e) == AC_OK,
          "started");
  ok(rec_wait(&r, NULL, 10000) && r.res.timed_out && r.res.exit_code == 124,
     "it ends timed out (124)");
  is_int(r.nchunks, 0, "without output");
  sbx_task_release(t);
  is_str(run_sh(a, "cat /workspace/zero 2>/dev/null || echo absent", &code),
         "absent\n", "it never ran");
}

/* A pool of memory the buffered output is charged to (as the server's
** request memory budget is); the runtime calls it under its lock. */
static size_t pool_left, pool_held;

static int pool_take(size_t n) {
  if (n > pool_left)
    return 0;
  pool_left -= n;
  pool_held += n;
  return 1;
}

static void pool_give(size_t n) {
  pool_left += n;
  pool_held -= n;
}

static const struct sbx_mem_pool counted_pool = { pool_take, pool_give };

/* Runs script buffered with the pool at size; the result in r. */
static int pooled_run(struct sbx_box *a, const char *script, size_t size,
                      size_t max_output, struct rec *r) {
  static const struct sbx_task_events buffered = { NULL, NULL, rec_done };
  const char *argv[] = { "sh", "-c", script, NULL };
  struct sbx_exec_request rq;
  struct sbx_task *t;
  struct ac_error e;
  int done;
  memset(&rq, 0, sizeof rq);
  rq.argv = argv;
  rq.timeout_ns = 30 * SEC;
  rq.pool = &counted_pool;
  rq.max_output = max_output;
  pool_left = size;
  pool_held = 0;
  rec_init(r);
  if (sbx_exec_start(a, &rq, &buffered, r, &t, &e) != AC_OK)
    return 0;
  done = rec_wait(r, NULL, 30000);
  sbx_task_release(t);
  return done;
}

static void test_pool(struct sbx_box *a) {
  struct rec r;
  const char *script = "head -c 1000000 /dev/zero | tr '\\0' x; echo end";
  tcase("buffered output is charged to the pool; a refusal keeps "
        "nothing more, the command still runs to its end");
  REQUIRE(a != NULL, "a live box");
  ok(pooled_run(a, script, 4 << 20, 0, &r) && r.res.exit_code == 0 &&
     r.res.out_len == 1000004 && !r.res.pool_refused &&
     !r.res.out_truncated, "control: a pool of 4 MiB holds 1 MB");
  is_int(pool_held, 0, "control: everything given back after release");
  ok(pooled_run(a, script, 100000, 0, &r) && r.res.exit_code == 0,
     "a pool of 100 kB: the command runs to its end");
  ok(r.res.pool_refused && r.res.out_truncated && r.res.out_len <= 100000,
     "... its output refused past what the pool gave (%zu bytes kept)",
     r.res.out_len);
  is_int(pool_held, 0, "... and every byte given back");
  ok(pooled_run(a, "printf 0123456789abcdef", 4 << 20, 10, &r) &&
     r.res.out_len == 10 && r.res.out_truncated && !r.res.pool_refused,
     "max_output cuts to the byte");
}

/* The agent cannot start a command (the session is out of processes):
** the command fails with exit 1 and says why, buffered or streamed. */
static void test_spawn_failed(uid_t uid) {
  struct sbx_limits l = { .pids = 12 };
  static const char *argv[] = { "echo", "never", NULL };
  struct sbx_exec_request rq;
  struct sbx_exec_result res;
  struct sbx_proc_info p, q;
  struct sbx_box *d;
  struct ac_error e;
  struct rec r;
  struct sbx_task *t;
  unsigned last = 0;
  int full = 0;
  tcase("a command the sandbox cannot start fails with exit 1 and why");
  d = make_box("pids", uid, &l);
  REQUIRE(d != NULL, "a box of 12 processes");
  memset(&rq, 0, sizeof rq);
  rq.argv = (const char *const *)(const char *[]){ "sleep", "1000", NULL };
  /* background sleeps until the sandbox cannot start one more: that one
  ** ends at once, exit 1 */
  for (int n = 0; n < 20 && !full; n++) {
    if (sbx_proc_start(d, &rq, 0, &p, &e) != AC_OK)
      break;
    for (int i = 0; i < 1000; i++) {
      int settled = 0;
      if (sbx_proc_get(d, p.id, &q, &e) == AC_OK) {
        settled = q.pid > 0 || q.state != SBX_PROC_RUNNING;
        full = q.state != SBX_PROC_RUNNING;
        sbx_proc_info_free(&q);
      }
      if (settled)
        break;
      usleep(2000);
    }
    last = p.id;
    sbx_proc_info_free(&p);
  }
  REQUIRE(full, "background processes fill it until one cannot start");
  if (ok(sbx_proc_get(d, last, &q, &e) == AC_OK, "that one is listed")) {
    ok(q.state == SBX_PROC_EXITED && q.exit_code == 1, "as exited, exit 1 "
       "(not killed: nothing killed it)");
    sbx_proc_info_free(&q);
  }
  rec_init(&r);
  if (ok(sbx_proc_watch(d, last, 0, 0, &rec_events, &r, &t, &e) == AC_OK,
         "its output watched")) {
    ok(rec_wait(&r, NULL, 10000) && contains(r.out, "agent: spawn: fork: "),
       "its output says why");
    sbx_task_release(t);
  }
  rq.argv = argv;
  rq.timeout_ns = 30 * SEC;
  if (ok(sbx_exec(d, &rq, &res, &e) == AC_OK, "buffered: it returns")) {
    is_int(res.exit_code, 1, "buffered: exit 1");
    if (!ok(contains(res.err, "agent: spawn: fork: "), "buffered: stderr "
            "says why"))
      printf("#   stderr: %s\n", res.err);
    is_int(res.out_len, 0, "buffered: nothing on stdout");
    sbx_exec_result_free(&res);
  }
  rec_init(&r);
  if (ok(sbx_exec_start(d, &rq, &rec_events, &r, &t, &e) == AC_OK,
         "streamed: started")) {
    ok(rec_wait(&r, NULL, 30000) && r.res.exit_code == 1,
       "streamed: exit 1");
    if (!ok(contains(r.out, "agent: spawn: fork: ") &&
            strcmp(r.order, "e") == 0, "streamed: why, as one stderr chunk"))
      printf("#   output: %s\n", r.out);
    sbx_task_release(t);
  }
  sbx_box_destroy(d);
  is_int(uid_procs(uid, 0), 0, "closed: nothing of its uid runs");
}

/* The agent as PID 1 ignores signals from inside; code that tries to kill
** it or reach its socket gets nothing. */
static void test_inside_attacks(struct sbx_box *a) {
  int code;
  const char *out;
  tcase("code inside cannot kill the agent or reach its fds and socket");
  REQUIRE(a != NULL, "a live box");
  out = run_sh(a, "kill -9 1; echo rc=$?; sleep 0.2; echo alive", &code);
  ok(contains(out, "alive"), "kill -9 1 from inside: the command goes on");
  is_str(run_sh(a, "echo after", &code), "after\n",
         "kill -9 1 from inside: the next command works");
  out = run_sh(a, "ls /proc/1/fd >/dev/null 2>&1 && echo open || echo "
               "closed; ls /proc/self/fd >/dev/null 2>&1 && echo own", &code);
  is_str(out, "closed\nown\n", "the agent's fds are closed to sandboxed "
         "code (its own are not)");
  out = run_sh(a, "cat /proc/1/environ >/dev/null 2>&1 && echo open || "
               "echo closed; grep -c agent /proc/1/cmdline", &code);
  is_str(out, "closed\n1\n", "the agent is not dumpable; pid 1 is the "
         "agent");
  out = run_sh(a, "ls -l /proc/self/fd | grep -c socket", &code);
  is_str(out, "0\n", "a command inherits no socket from the agent");
}

/* Another box's commands are not touched by what happens to this one. */
struct bystander {
  struct rec r;
  struct sbx_task *t;
};

static int bystander_start(struct sbx_box *b, struct bystander *by) {
  return start(b, "sleep 3; echo survived", 60 * SEC, &by->r, &by->t) ==
         AC_OK;
}

static void bystander_check(struct bystander *by, const char *what) {
  ok(rec_wait(&by->r, NULL, 30000) && by->r.res.exit_code == 0 &&
     contains(by->r.out, "survived"), "%s: another box's command is "
     "untouched", what);
  sbx_task_release(by->t);
}

static void test_agent_killed(struct sbx_box *a, struct sbx_box *b,
                              uid_t uid) {
  struct bystander by;
  struct rec r;
  struct sbx_task *t;
  pid_t ap = agent_pid(uid);
  int code;
  tcase("a killed agent costs only its own box its running command");
  REQUIRE(a != NULL && b != NULL, "two live boxes");
  REQUIRE(bystander_start(b, &by), "a command in the other box");
  REQUIRE(start(a, "echo running; sleep 1000", 60 * SEC, &r, &t) == AC_OK,
          "agent kill: a command started");
  ok(rec_wait(&r, "running", 30000), "agent kill: a command runs");
  ok(ap > 0 && kill(ap, SIGKILL) == 0, "the agent is killed (pid %d)",
     (int)ap);
  ok(rec_wait(&r, NULL, 10000) && r.res.exit_code == 137,
     "the command in flight ends with 137");
  sbx_task_release(t);
  is_int(wait_uid_procs(uid, 0, 0, 0, 5000), 0,
         "the dead sandbox left no process");
  is_str(run_sh(a, "cat /workspace/keep", &code), "kept\n",
         "the next command starts a new sandbox; files stay");
  ok(agent_pid(uid) > 0 && agent_pid(uid) != ap, "a new agent runs");
  bystander_check(&by, "agent kill");
}

/* A copy of the agent's socket, taken with pidfd_getfd (root; sandboxed
** code cannot: the agent is not dumpable and ptrace is filtered). */
static int agent_socket(pid_t ap) {
  int pfd = ap > 0 ? (int)syscall(SYS_pidfd_open, ap, 0) : -1, sock = -1;
  /* the agent keeps its socket at a low fd: find it */
  for (int fd = 3; pfd >= 0 && fd < 64 && sock < 0; fd++) {
    int s = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
    int type = 0;
    socklen_t len = sizeof type;
    if (s < 0)
      continue;
    if (getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
        type == SOCK_SEQPACKET)
      sock = s;
    else
      close(s);
  }
  if (pfd >= 0)
    close(pfd);
  return sock;
}

/* Impersonation: a process other than the agent writes to the agent's
** socket (taken here with pidfd_getfd, which sandboxed code cannot do: it
** is not dumpable and ptrace is filtered). A forged exit of a running
** command, and garbage, each take only that box's sandbox down. */
static void test_impersonation(struct sbx_box *a, struct sbx_box *b,
                               uid_t uid, int garbage) {
  const char *what = garbage ? "garbage" : "forged exit";
  struct bystander by;
  struct rec r;
  struct sbx_task *t;
  pid_t ap;
  int sock = -1, code;
  tcase("%s on the agent's socket costs only its own box its running "
        "command", what);
  REQUIRE(a != NULL && b != NULL, "two live boxes");
  REQUIRE(bystander_start(b, &by), "a command in the other box");
  REQUIRE(start(a, "echo running; sleep 1000", 60 * SEC, &r, &t) == AC_OK,
          "%s: a command started", what);
  ok(rec_wait(&r, "running", 30000), "%s: a command runs", what);
  ap = agent_pid(uid);
  sock = agent_socket(ap);
  ok(sock >= 0, "%s: a copy of the agent's socket", what);
  if (sock >= 0) {
    if (garbage) {
      char junk[300];
      for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 37 + 11);
      ok(send(sock, junk, sizeof junk, 0) == (ssize_t)sizeof junk,
         "garbage sent");
    } else {
      /* ids are 1, 2, ... per sandbox: forge exits for the first few,
      ** in one write (the server takes the box down on the first, so
      ** writes one by one could meet a closed socket) */
      struct agp_hdr h[7];
      ssize_t n;
      for (unsigned id = 1; id < 8; id++) {
        struct agp_hdr one = { sizeof one, AGP_VERSION, AGP_EXIT, id,
                               42u << 8 };
        h[id - 1] = one;
      }
      n = send(sock, h, sizeof h, 0);
      if (!ok(n == (ssize_t)sizeof h, "forged exits sent"))
        printf("#   %zd of %zu bytes sent: %s\n", n, sizeof h,
               n < 0 ? strerror(errno) : "short");
    }
    close(sock);
  }
  ok(rec_wait(&r, NULL, 10000), "%s: the command ends", what);
  is_int(r.res.exit_code, 137, "%s: with 137, not with what was forged",
         what);
  sbx_task_release(t);
  is_str(run_sh(a, "echo fine", &code), "fine\n",
         "%s: the next command works", what);
  bystander_check(&by, what);
}

/* How many descriptors of this process refer to fd's pipe. */
static int open_copies(int fd) {
  struct stat want, st;
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;
  if (d == NULL || fstat(fd, &want) < 0) {
    if (d)
      closedir(d);
    return -1;
  }
  while ((e = readdir(d)) != NULL) {
    int f = atoi(e->d_name);
    if (e->d_name[0] != '.' && f != dirfd(d) && fstat(f, &st) == 0 &&
        st.st_dev == want.st_dev && st.st_ino == want.st_ino)
      n++;
  }
  closedir(d);
  return n;
}

/* Sends one message on the agent's socket in the agent's name (root may
** put any pid in its credentials), with a descriptor when fd >= 0. */
static int send_as_agent(int sock, pid_t ap, struct sbx_box *b,
                         uint16_t type, unsigned id, uint32_t arg,
                         size_t plen, int fd) {
  struct agp_hdr h = { (uint32_t)(sizeof h + plen), AGP_VERSION, type, id,
                       arg };
  char pl[16] = "abcdefghijklmno";
  struct iovec iov[2] = { { &h, sizeof h }, { pl, plen } };
  union {
    char c[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl;
  struct ucred uc = { ap, sbx_box_uid(b), sbx_box_gid(b) };
  struct msghdr m;
  struct cmsghdr *cm;
  memset(&m, 0, sizeof m);
  memset(&ctl, 0, sizeof ctl);
  m.msg_iov = iov;
  m.msg_iovlen = plen ? 2 : 1;
  m.msg_control = ctl.c;
  m.msg_controllen = CMSG_SPACE(sizeof uc) +
                     (fd >= 0 ? CMSG_SPACE(sizeof(int)) : 0);
  cm = CMSG_FIRSTHDR(&m);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_CREDENTIALS;
  cm->cmsg_len = CMSG_LEN(sizeof uc);
  memcpy(CMSG_DATA(cm), &uc, sizeof uc);
  if (fd >= 0) {
    cm = CMSG_NXTHDR(&m, cm);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  }
  return sendmsg(sock, &m, MSG_NOSIGNAL) == (ssize_t)(sizeof h + plen) ? 0
                                                                      : -1;
}

/* The agent runs as the session uid, like the code it starts: what it
** sends is checked. Each breach of the protocol, in the agent's own name,
** takes the box's sandbox down (its running command ends with 137, the
** next starts a new one); a late message about a command the server has
** ended is expected and changes nothing. */
static void test_protocol_breaches(struct sbx_box *a, uid_t uid) {
  enum { RUNNING, NEVER_GIVEN, ENDED };
  static const struct {
    const char *what;
    uint16_t type;
    int which;
    uint32_t arg;
    size_t plen;
    int with_fd, fatal;
  } cases[] = {
    { "a second HELLO", AGP_HELLO, RUNNING, AGP_VERSION, 0, 0, 1 },
    { "a start reported twice", AGP_STARTED, RUNNING, 7, 0, 0, 1 },
    { "output on stream 3", AGP_OUTPUT, RUNNING, 3, 4, 0, 1 },
    { "an exit with a payload", AGP_EXIT, RUNNING, 0, 4, 0, 1 },
    { "a failure after the start", AGP_FAILED, RUNNING, 2, 4, 0, 1 },
    { "a message type of its own", 99, RUNNING, 0, 0, 0, 1 },
    { "news of a command never given", AGP_EXIT, NEVER_GIVEN, 0, 0, 0, 1 },
    { "a descriptor passed along", AGP_OUTPUT, RUNNING, 1, 4, 1, 1 },
    { "a late exit of an ended command", AGP_EXIT, ENDED, 0, 0, 0, 0 },
  };
  tcase("an agent that breaks the protocol costs its box only its "
        "sandbox; late news of an ended command changes nothing");
  REQUIRE(a != NULL, "a live box");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *what = cases[i].what;
    struct sbx_task *t;
    struct rec r;
    unsigned id;
    pid_t ap;
    int sock, code, fds[2] = { -1, -1 };
    run_sh(a, "true", &code);    /* an ended command in this sandbox */
    if (!precondition(start(a, "echo running; exec sleep 1000", 60 * SEC,
                            &r, &t) == AC_OK, "%s: a command", what))
      continue;
    rec_wait(&r, "running", 30000);
    ap = agent_pid(uid);
    sock = agent_socket(ap);
    id = cases[i].which == RUNNING ? t->id
       : cases[i].which == ENDED ? t->id - 1 : t->id + 1000;
    if (cases[i].with_fd && pipe(fds) < 0)
      fds[0] = -1;
    ok(sock >= 0 && send_as_agent(sock, ap, a, cases[i].type, id,
                                  cases[i].arg, cases[i].plen,
                                  fds[0]) == 0,
       "%s: sent in the agent's name", what);
    if (sock >= 0)
      close(sock);
    if (cases[i].fatal) {
      ok(rec_wait(&r, NULL, 10000) && r.res.exit_code == 137,
         "%s: the sandbox went down, its command with it (137)", what);
      is_str(run_sh(a, "echo next", &code), "next\n", "%s: the next "
             "command starts a new sandbox", what);
      ok(agent_pid(uid) != ap, "%s: with a new agent", what);
    } else {
      is_str(run_sh(a, "echo next", &code), "next\n", "%s: the next "
             "command runs", what);
      ok(agent_pid(uid) == ap && !r.done, "%s: in the same sandbox, the "
         "running command untouched", what);
      sbx_task_cancel(t);
      rec_wait(&r, NULL, 10000);
    }
    sbx_task_release(t);
    if (fds[0] >= 0) {
      /* the server runs in this process: it kept no copy of the pipe */
      is_int(open_copies(fds[0]), 2, "%s: no copy kept by the server",
             what);
      close(fds[0]);
      close(fds[1]);
    }
  }
}

static void test_destroy(uid_t uid) {
  struct sbx_limits l = { 0 };
  struct sbx_box *c;
  struct rec r;
  struct sbx_task *t;
  long long t0;
  tcase("destroying a box with a running tree leaves nothing of its uid");
  c = make_box("c", uid, &l);
  REQUIRE(c != NULL, "box c");
  if (!precondition(start(c, escapers, 60 * SEC, &r, &t) == AC_OK,
                    "destroy: a tree started")) {
    sbx_box_destroy(c);
    return;
  }
  ok(rec_wait(&r, "started", 30000), "destroy: tree started");
  wait_uid_procs(uid, 1, 4, 1, 10000);
  t0 = now_ms();
  sbx_task_release(t);
  sbx_box_destroy(c);
  printf("# destroy with a running tree: %lld ms\n", now_ms() - t0);
  is_int(uid_procs(uid, 0), 0, "destroy: nothing runs as the box's uid "
         "(agent and bwrap included)");
}

/* The sandbox cannot be launched (bwrap went missing while the server
** runs): a command, a process and a context fail at once and say why;
** once bwrap is back the box starts again. */
static void test_launch_fails(uid_t uid) {
  static const char *argv[] = { "echo", "back", NULL };
  struct sbx_limits l = { 0 };
  struct sbx_exec_request rq;
  struct sbx_proc_info p;
  struct sbx_ctx_info c;
  struct sbx_box *d;
  struct ac_error e;
  struct rec r;
  struct sbx_task *t = NULL;
  char saved[sizeof rt->bwrap];
  pid_t ap;
  int code;
  tcase("a sandbox that cannot be launched fails commands with why; the "
        "box recovers");
  d = make_box("nolaunch", uid, &l);
  REQUIRE(d != NULL, "a box");
  is_str(run_sh(d, "echo up", &code), "up\n", "it runs");
  ap = agent_pid(uid);
  pthread_mutex_lock(&rt->live->mu);
  snprintf(saved, sizeof saved, "%s", rt->bwrap);
  snprintf(rt->bwrap, sizeof rt->bwrap, "/nonexistent/bwrap");
  pthread_mutex_unlock(&rt->live->mu);
  /* its sandbox dies: the next command must launch a new one */
  ok(ap > 0 && kill(ap, SIGKILL) == 0, "its agent killed");
  is_int(wait_uid_procs(uid, 0, 0, 0, 5000), 0, "its sandbox is gone");
  memset(&rq, 0, sizeof rq);
  rq.argv = argv;
  rq.timeout_ns = 30 * SEC;
  rec_init(&r);
  ok(sbx_exec_start(d, &rq, &rec_events, &r, &t, &e) == AC_ESYSTEM &&
     t == NULL && contains(e.msg, "sandbox: cannot start") &&
     contains(e.msg, "No such file"), "a command: ESYSTEM, saying why (%s)",
     e.msg);
  ok(sbx_proc_start(d, &rq, 0, &p, &e) == AC_ESYSTEM, "a process: ESYSTEM");
  ok(sbx_ctx_create(d, "bash", NULL, NULL, &c, &e) == AC_ESYSTEM,
     "a context: ESYSTEM");
  pthread_mutex_lock(&rt->live->mu);
  snprintf(rt->bwrap, sizeof rt->bwrap, "%s", saved);
  pthread_mutex_unlock(&rt->live->mu);
  is_str(run_sh(d, "echo back", &code), "back\n", "bwrap back: the box "
         "starts again");
  sbx_box_destroy(d);
  is_int(uid_procs(uid, 0), 0, "closed: nothing of its uid runs");
}

int main(void) {
  struct sbx_limits la = { .memory_bytes = 512 << 20, .pids = 128 };
  struct sbx_limits lb = { 0 };
  struct sbx_box *a, *b;
  int code;
  char why[600];

  plan(20);
  if (geteuid() != 0)
    return skip_all("needs root (session uids, cgroups)");
  tcase("live boxes run before the first command");
  switch (live_start(why, sizeof why)) {
  case 0:
    return done_testing();
  case -1:
    skip_case(why);
    return skip_all(why);
  }
  base_uid = 240000 + (uid_t)(getpid() % 1000) * 4;
  a = make_box("a", base_uid, &la);
  b = make_box("b", base_uid + 1, &lb);
  ok(a && b, "boxes created");
  if (a && b) {
    ok(wait_uid_procs(base_uid, 0, 2, 0, 10000) == 2,
       "the live sandbox runs before the first command (bwrap + agent)");
    is_str(run_sh(a, "echo kept > /workspace/keep; cat /workspace/keep",
                  &code), "kept\n", "a first command");
  }
  test_streaming(a);
  test_cancel(a, base_uid);
  test_timeout(a, base_uid);
  test_main_exit_kills_leftovers(a, base_uid);
  test_release_without_wait(a, base_uid);
  test_refusals(a);
  test_env_override(a);
  test_timeout_zero(a);
  test_pool(a);
  test_inside_attacks(a);
  test_agent_killed(a, b, base_uid);
  test_impersonation(a, b, base_uid, 0);
  test_impersonation(a, b, base_uid, 1);
  test_protocol_breaches(a, base_uid);
  tcase("closed boxes leave no process");
  sbx_box_destroy(a);
  sbx_box_destroy(b);
  is_int(uid_procs(base_uid, 0) + uid_procs(base_uid + 1, 0), 0,
         "closed boxes leave no process");
  test_destroy(base_uid + 2);
  test_spawn_failed(base_uid + 3);
  test_launch_fails(base_uid + 2);
  tcase("the closed runtime leaves its state directory empty");
  live_teardown();
  return done_testing();
}
