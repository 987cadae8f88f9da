/*
** Background processes of the live sandbox: they outlive the request,
** keep a bounded output ring, take stdin and signals, can be watched from
** an offset with follow, and die with the box. The escape corpus (the
** security specs' probe) runs once more from a background process.
*/
#include "live_util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>

static uid_t base_uid;

static enum ac_code pstart(struct sbx_box *b, const char *script,
                           int with_stdin, struct sbx_proc_info *info) {
  const char *argv[] = { "sh", "-c", script, NULL };
  struct sbx_exec_request rq;
  struct ac_error e;
  enum ac_code rc;
  memset(&rq, 0, sizeof rq);
  rq.argv = argv;
  rc = sbx_proc_start(b, &rq, with_stdin, info, &e);
  if (rc)
    printf("# sbx_proc_start: %s\n", e.msg);
  return rc;
}

static enum ac_code watch(struct sbx_box *b, unsigned id,
                          unsigned long long off, int follow, struct rec *r,
                          struct sbx_task **t) {
  struct ac_error e;
  enum ac_code rc;
  rec_init(r);
  rc = sbx_proc_watch(b, id, off, follow, &rec_events, r, t, &e);
  if (rc)
    printf("# sbx_proc_watch: %s\n", e.msg);
  return rc;
}

/* Waits until the process has ended; returns its state. */
static enum sbx_proc_state wait_end(struct sbx_box *b, unsigned id,
                                    struct sbx_proc_info *out) {
  struct ac_error e;
  for (int i = 0; i < 3000; i++) {
    if (sbx_proc_get(b, id, out, &e) != AC_OK)
      return SBX_PROC_RUNNING;
    if (out->state != SBX_PROC_RUNNING)
      return out->state;
    sbx_proc_info_free(out);
    usleep(10000);
  }
  return SBX_PROC_RUNNING;
}

static void test_outlives_request(struct sbx_box *a, uid_t uid) {
  struct sbx_proc_info p, q, *v;
  size_t n;
  struct ac_error e;
  int code;
  tcase("a background process outlives the request, is listed, killed");
  REQUIRE(a != NULL, "a live box");
  REQUIRE(pstart(a, "echo serving; exec sleep 1000", 0, &p) == AC_OK,
          "a background process started");
  ok(p.id > 0 && p.state == SBX_PROC_RUNNING && p.argv &&
     strcmp(p.argv[0], "sh") == 0, "started: id %u, running", p.id);
  is_str(run_sh(a, "echo cmd", &code), "cmd\n", "commands run meanwhile");
  ok(wait_uid_procs(uid, 1, 1, 0, 2000) == 1,
     "the background process outlives the commands around it");
  {
    struct rec r;
    struct sbx_task *t;
    if (precondition(watch(a, p.id, 0, 1, &r, &t) == AC_OK, "watched")) {
      ok(rec_wait(&r, "serving\n", 10000), "its output so far");
      sbx_task_release(t);
    }
  }
  ok(sbx_proc_list(a, &v, &n, &e) == AC_OK && n >= 1 && v[n - 1].id == p.id,
     "listed, newest last");
  sbx_proc_list_free(v, n);
  ok(sbx_proc_signal(a, p.id, SIGKILL, &e) == AC_OK, "SIGKILL sent");
  ok(wait_end(a, p.id, &q) == SBX_PROC_KILLED && q.exit_code == 137,
     "killed: state KILLED, exit 137");
  ok(q.output_bytes == 8, "output counted (%llu bytes)", q.output_bytes);
  sbx_proc_info_free(&q);
  sbx_proc_info_free(&p);
  is_int(wait_uid_procs(uid, 1, 0, 0, 2000), 0, "nothing left");
  ok(sbx_proc_get(a, 999999, &q, &e) == AC_ENOTFOUND, "unknown id: "
     "ENOTFOUND");
  ok(sbx_proc_signal(a, 999999, SIGTERM, &e) == AC_ENOTFOUND,
     "signal to an unknown id: ENOTFOUND");
}

/* The ring keeps the newest bytes (4 KiB for box a); a watch from 0 is
** told what was dropped, then gets exactly what is kept. */
static void test_ring(struct sbx_box *a) {
  struct sbx_proc_info p, q;
  struct rec r;
  struct sbx_task *t;
  tcase("the output ring keeps the newest bytes; a watch is told what "
        "was dropped");
  REQUIRE(a != NULL, "a live box");
  REQUIRE(pstart(a, "i=0; while [ $i -lt 2000 ]; do echo line$i; "
                 "i=$((i+1)); done", 0, &p) == AC_OK, "ring: a writer "
          "started");
  ok(wait_end(a, p.id, &q) == SBX_PROC_EXITED && q.exit_code == 0,
     "ring: the writer exited 0");
  ok(q.output_bytes > 10000, "ring: it wrote %llu bytes", q.output_bytes);
  ok(q.output_bytes - q.kept_from == 4096, "ring: kept %llu bytes (cap 4096)",
     q.output_bytes - q.kept_from);
  if (precondition(watch(a, p.id, 0, 1, &r, &t) == AC_OK,
                   "ring: watched from 0")) {
    ok(rec_wait(&r, NULL, 10000), "ring: a watch of an ended process ends");
    ok(r.dropped_at == 0 && r.dropped == q.kept_from,
       "ring: dropped reported first (%llu bytes from 0)", r.dropped);
    is_int(r.nout, q.output_bytes - q.kept_from,
           "ring: then every kept byte");
    ok(contains(r.out, "line1999\n"), "ring: the newest output is kept");
    ok(r.offsets_ok, "ring: offsets contiguous");
    ok(r.have_res && r.res.exit_code == 0, "ring: done carries the exit");
    sbx_task_release(t);
  }
  if (precondition(watch(a, p.id, q.output_bytes - 9, 0, &r, &t) == AC_OK,
                   "ring: watched from a kept offset")) {
    ok(rec_wait(&r, NULL, 10000) && r.dropped == 0, "ring: a watch from a "
       "kept offset drops nothing");
    is_str(r.out, "line1999\n", "ring: it starts at that offset");
    sbx_task_release(t);
  }
  sbx_proc_info_free(&q);
  sbx_proc_info_free(&p);
}

static void test_stdin_follow(struct sbx_box *a) {
  struct sbx_proc_info p, q;
  struct ac_error e;
  struct rec r;
  struct sbx_task *t;
  tcase("stdin reaches a process, follow streams its output live");
  REQUIRE(a != NULL, "a live box");
  REQUIRE(pstart(a, "while read l; do echo got:$l; done; echo eof", 1,
                 &p) == AC_OK, "stdin: a reader started");
  ok(p.has_stdin, "stdin: open");
  REQUIRE(watch(a, p.id, 0, 1, &r, &t) == AC_OK, "stdin: watched");
  ok(sbx_proc_write(a, p.id, "one\n", 4, 0, &e) == AC_OK, "stdin: write");
  ok(rec_wait(&r, "got:one\n", 10000), "follow: output arrives live");
  ok(!r.done, "follow: the watch goes on while the process runs");
  ok(sbx_proc_write(a, p.id, "two\n", 4, 1, &e) == AC_OK, "stdin: write "
     "and close");
  ok(rec_wait(&r, NULL, 10000), "follow: ends with the process");
  is_str(r.out, "got:one\ngot:two\neof\n", "stdin: everything, then EOF");
  ok(sbx_proc_write(a, p.id, "x", 1, 0, &e) == AC_EBUSY,
     "stdin: closed after EOF (EBUSY)");
  ok(wait_end(a, p.id, &q) == SBX_PROC_EXITED, "stdin: exited");
  sbx_task_release(t);
  sbx_proc_info_free(&q);
  sbx_proc_info_free(&p);
  if (precondition(pstart(a, "cat", 0, &p) == AC_OK,
                   "no stdin: cat started")) {
    ok(sbx_proc_write(a, p.id, "x", 1, 0, &e) == AC_EBUSY,
       "no stdin asked: EBUSY");
    ok(wait_end(a, p.id, &q) == SBX_PROC_EXITED, "no stdin: /dev/null, "
       "cat ends");
    sbx_proc_info_free(&q);
    sbx_proc_info_free(&p);
  }
}

static void test_signals(struct sbx_box *a, uid_t uid) {
  struct sbx_proc_info p, q;
  struct ac_error e;
  struct rec r;
  struct sbx_task *t;
  tcase("signals reach the process; SIGKILL takes the whole tree");
  REQUIRE(a != NULL, "a live box");
  REQUIRE(pstart(a, "trap 'echo term; exit 3' TERM; echo ready; "
                 "while :; do sleep 0.05; done", 0, &p) == AC_OK,
          "signal: a trapping process started");
  REQUIRE(watch(a, p.id, 0, 1, &r, &t) == AC_OK, "signal: watched");
  ok(rec_wait(&r, "ready", 10000), "signal: ready");
  ok(sbx_proc_signal(a, p.id, SIGTERM, &e) == AC_OK, "SIGTERM sent");
  ok(rec_wait(&r, NULL, 10000) && contains(r.out, "term"),
     "the trap ran");
  ok(wait_end(a, p.id, &q) == SBX_PROC_EXITED && q.exit_code == 3,
     "exit 3 from the trap");
  sbx_task_release(t);
  sbx_proc_info_free(&q);
  sbx_proc_info_free(&p);
  ok(sbx_proc_signal(a, p.id, 0, &e) == AC_EINVAL, "signal 0: EINVAL");
  /* SIGKILL takes the whole tree, setsid'd members included */
  REQUIRE(pstart(a, "(setsid sh -c 'sleep 1000 & exec sleep 1001' &); "
                 "(sh -c 'sleep 1003 &'); exec sleep 1004", 0, &p) == AC_OK,
          "a tree started");
  ok(wait_uid_procs(uid, 1, 4, 1, 10000) >= 4, "tree started");
  sbx_proc_signal(a, p.id, SIGKILL, &e);
  is_int(wait_uid_procs(uid, 1, 0, 0, 2000), 0, "SIGKILL: the whole tree "
         "is gone");
  ok(wait_end(a, p.id, &q) == SBX_PROC_KILLED, "SIGKILL: KILLED");
  sbx_proc_info_free(&q);
  sbx_proc_info_free(&p);
}

static void test_timeout_and_cancel_watch(struct sbx_box *a) {
  const char *argv[] = { "sleep", "1000", NULL };
  struct sbx_exec_request rq;
  struct sbx_proc_info p, q;
  struct ac_error e;
  struct rec r;
  struct sbx_task *t;
  tcase("a process's own timeout; a cancelled watch leaves it running");
  REQUIRE(a != NULL, "a live box");
  memset(&rq, 0, sizeof rq);
  rq.argv = argv;
  rq.timeout_ns = SEC / 2;
  if (sbx_proc_start(a, &rq, 0, &p, &e) != AC_OK) {
    ok(0, "proc with timeout: %s", e.msg);
    return;
  }
  if (precondition(watch(a, p.id, 0, 1, &r, &t) == AC_OK, "watched")) {
    sbx_task_cancel(t);
    ok(rec_wait(&r, NULL, 5000) && !r.have_res,
       "a cancelled watch ends (res NULL: the process still runs)");
    sbx_task_release(t);
  }
  ok(wait_end(a, p.id, &q) == SBX_PROC_TIMED_OUT && q.exit_code == 124,
     "the process's own timeout: TIMED_OUT, 124");
  sbx_proc_info_free(&q);
  sbx_proc_info_free(&p);
}

/* What cannot start is refused before anything runs, and leaves no
** record; what names no process is ENOTFOUND on every call. */
static void test_refusals(struct sbx_box *a) {
  const char *sh[] = { "sh", "-c", "echo never >> /workspace/never", NULL };
  const char *bad_env[] = { "NOEQUALS", NULL };
  struct sbx_exec_request rq;
  struct sbx_proc_info p, *v;
  struct sbx_task *t = NULL;
  struct ac_error e;
  size_t before = 0, after = 0;
  struct rec r;
  int code;
  tcase("a process that cannot start leaves no record; unknown ids are "
        "ENOTFOUND on every call");
  REQUIRE(a != NULL, "a live box");
  REQUIRE(sbx_proc_list(a, &v, &before, &e) == AC_OK, "listed before");
  sbx_proc_list_free(v, before);
  memset(&rq, 0, sizeof rq);
  ok(sbx_proc_start(a, &rq, 0, &p, &e) == AC_EINVAL &&
     contains(e.msg, "empty command"), "no command: EINVAL (%s)", e.msg);
  rq.argv = sh;
  rq.working_dir = "workspace";
  ok(sbx_proc_start(a, &rq, 0, &p, &e) == AC_EINVAL &&
     contains(e.msg, "absolute path"), "a relative working_dir: EINVAL "
     "(%s)", e.msg);
  rq.working_dir = NULL;
  rq.env = bad_env;
  ok(sbx_proc_start(a, &rq, 1, &p, &e) == AC_EINVAL &&
     contains(e.msg, "NOEQUALS"), "an environment entry without '=': "
     "EINVAL naming it (%s)", e.msg);
  REQUIRE(sbx_proc_list(a, &v, &after, &e) == AC_OK, "listed after");
  sbx_proc_list_free(v, after);
  is_int(after, before, "refused starts left no record");
  is_str(run_sh(a, "cat /workspace/never 2>/dev/null || echo none", &code),
         "none\n", "nothing ran");
  ok(sbx_proc_watch(a, 999999, 0, 1, &rec_events, &r, &t, &e) ==
     AC_ENOTFOUND && t == NULL, "watch of an unknown id: ENOTFOUND");
  ok(sbx_proc_write(a, 999999, "x", 1, 0, &e) == AC_ENOTFOUND,
     "stdin of an unknown id: ENOTFOUND");
  ok(sbx_proc_signal(a, 1, 65, &e) == AC_EINVAL, "signal 65: EINVAL");
  /* control: the same request, well formed, starts */
  rq.env = NULL;
  if (ok(sbx_proc_start(a, &rq, 0, &p, &e) == AC_OK, "control: it starts")) {
    struct sbx_proc_info q;
    ok(wait_end(a, p.id, &q) == SBX_PROC_EXITED, "control: it ran");
    sbx_proc_info_free(&q);
    sbx_proc_info_free(&p);
  }
}

/* The ring is byte-exact: a chunk that overflows it pushes out only the
** oldest bytes of the chunk before. */
static void test_ring_trims_inside_a_chunk(struct sbx_box *a) {
  struct sbx_proc_info p, q;
  struct rec r;
  struct sbx_task *t;
  char want[4097];
  tcase("the ring trims the oldest chunk to the byte");
  REQUIRE(a != NULL, "a live box");
  /* 3000 a's, then (another chunk) 3000 b's into a 4096-byte ring */
  REQUIRE(pstart(a, "head -c 3000 /dev/zero | tr '\\0' a; sleep 0.1; "
                 "head -c 3000 /dev/zero | tr '\\0' b", 0, &p) == AC_OK,
          "a writer of two chunks");
  ok(wait_end(a, p.id, &q) == SBX_PROC_EXITED, "it exited");
  is_int(q.output_bytes, 6000, "6000 bytes written");
  is_int(q.kept_from, 6000 - 4096, "the newest 4096 kept");
  REQUIRE(watch(a, p.id, 0, 0, &r, &t) == AC_OK, "watched from 0");
  ok(rec_wait(&r, NULL, 10000), "the watch ends");
  ok(r.dropped_at == 0 && r.dropped == 1904, "dropped: %llu bytes from %llu",
     r.dropped, r.dropped_at);
  memset(want, 'a', 1096);
  memset(want + 1096, 'b', 3000);
  want[4096] = '\0';
  ok(r.nout == 4096 && strcmp(r.out, want) == 0, "then the last 1096 a's "
     "and the 3000 b's (%zu bytes)", r.nout);
  ok(r.offsets_ok, "offsets contiguous");
  sbx_task_release(t);
  sbx_proc_info_free(&q);
  sbx_proc_info_free(&p);
}

/* Watches of one process are independent: ending one leaves the other
** following. */
static void test_two_watches(struct sbx_box *a) {
  struct sbx_proc_info p, q;
  struct ac_error e;
  struct rec r1, r2;
  struct sbx_task *t1, *t2;
  tcase("two watches of a process: cancelling one leaves the other");
  REQUIRE(a != NULL, "a live box");
  REQUIRE(pstart(a, "echo first; read l; echo got:$l", 1, &p) == AC_OK,
          "a reader started");
  REQUIRE(watch(a, p.id, 0, 1, &r1, &t1) == AC_OK, "the first watch");
  if (!precondition(watch(a, p.id, 0, 1, &r2, &t2) == AC_OK,
                    "the second watch")) {
    sbx_task_release(t1);
    return;
  }
  ok(rec_wait(&r1, "first", 10000) && rec_wait(&r2, "first", 10000),
     "both see the output so far");
  sbx_task_cancel(t1);
  ok(rec_wait(&r1, NULL, 10000) && !r1.have_res, "the cancelled watch ends "
     "without a result (the process runs)");
  ok(!r2.done, "the other goes on");
  ok(sbx_proc_write(a, p.id, "x\n", 2, 1, &e) == AC_OK, "input sent");
  ok(rec_wait(&r2, NULL, 10000) && r2.have_res && r2.res.exit_code == 0,
     "the other ends with the process's exit");
  is_str(r2.out, "first\ngot:x\n", "... after all of its output");
  is_str(r1.out, "first\n", "the cancelled one got nothing more");
  sbx_task_release(t1);
  sbx_task_release(t2);
  wait_end(a, p.id, &q);
  sbx_proc_info_free(&q);
  sbx_proc_info_free(&p);
}

struct closer {
  struct sbx_box *box;
  pthread_t th;
};

static void *close_box(void *arg) {
  struct closer *c = arg;
  sbx_box_destroy(c->box);
  return NULL;
}

/* A box being closed refuses new commands, processes and watches, and
** its close waits for the handles still held. */
static void test_closing_box(uid_t uid) {
  const char *argv[] = { "sleep", "1000", NULL };
  struct sbx_limits l = { 0 };
  struct sbx_exec_request rq;
  struct sbx_proc_info p;
  struct closer c;
  struct ac_error e;
  struct rec r, rw;
  struct sbx_task *t, *t2 = NULL;
  int closing = 0;
  tcase("a closing box refuses new commands, processes and watches");
  c.box = make_box("closing", uid, &l);
  REQUIRE(c.box != NULL, "a box");
  memset(&rq, 0, sizeof rq);
  rq.argv = argv;
  rq.timeout_ns = 60 * SEC;
  rec_init(&r);
  if (!precondition(sbx_exec_start(c.box, &rq, &rec_events, &r, &t, &e) ==
                    AC_OK, "a command held") ||
      !precondition(pstart(c.box, "exec sleep 1001", 0, &p) == AC_OK,
                    "a process")) {
    sbx_box_destroy(c.box);
    return;
  }
  REQUIRE(pthread_create(&c.th, NULL, close_box, &c) == 0, "closing");
  for (int i = 0; i < 2000 && !closing; i++) {
    pthread_mutex_lock(&c.box->mu);
    closing = c.box->closing;
    pthread_mutex_unlock(&c.box->mu);
    if (!closing)
      usleep(5000);
  }
  ok(closing, "the box is closing (its close waits for our handle)");
  ok(rec_wait(&r, NULL, 10000) && r.res.exit_code == 137, "the command in "
     "flight ended (137)");
  ok(sbx_exec_start(c.box, &rq, &rec_events, &r, &t2, &e) == AC_ECLOSED &&
     t2 == NULL, "a new command: ECLOSED (%s)", e.msg);
  {
    struct sbx_proc_info p2;
    ok(pstart(c.box, "true", 0, &p2) == AC_ECLOSED, "a new process: "
       "ECLOSED");
  }
  rec_init(&rw);
  ok(sbx_proc_watch(c.box, p.id, 0, 1, &rec_events, &rw, &t2, &e) ==
     AC_ECLOSED && t2 == NULL, "a watch: ECLOSED (%s)", e.msg);
  sbx_proc_info_free(&p);
  sbx_task_release(t);
  pthread_join(c.th, NULL);
  is_int(uid_procs(uid, 0), 0, "closed: nothing of its uid runs");
}

/* A process killed before the sandbox reported its start is killed all
** the same (the kill must not fall between its fork and its cgroup): a
** burst of starts keeps the agent busy forking while the kills come. */
static void test_killed_at_once(struct sbx_box *a, uid_t uid) {
  struct sbx_proc_info p[12], q;
  struct ac_error e;
  int n = 0, killed = 0;
  tcase("processes SIGKILLed right after their start are gone");
  REQUIRE(a != NULL, "a live box");
  while (n < 12 && pstart(a, "exec sleep 1000", 0, &p[n]) == AC_OK)
    n++;
  for (int i = 0; i < n; i++)
    sbx_proc_signal(a, p[i].id, SIGKILL, &e);
  for (int i = 0; i < n; i++) {
    if (wait_end(a, p[i].id, &q) == SBX_PROC_KILLED) {
      killed++;
      sbx_proc_info_free(&q);
    }
    sbx_proc_info_free(&p[i]);
  }
  is_int(killed, 12, "12 started and killed at once: KILLED");
  is_int(wait_uid_procs(uid, 1, 0, 0, 5000), 0, "none of them runs");
}

/* The escape corpus, from a background process: the same probe and the
** same safe outcomes as the foreground specs. */
static void test_corpus(struct sbx_box *a, const char *probe) {
  static const char *const runs[] = { "syscalls", "sockets",
                                      "connect 127.0.0.1 1", "fork" };
  char path[256];
  int fd, wr;
  tcase("the escape corpus from a background process: the same safe "
        "outcomes");
  REQUIRE(a != NULL, "a live box");
  if (probe == NULL) {
    ok(0, "corpus: tests/security/probe.py not found");
    return;
  }
  fd = openat(sbx_box_rootfd(a), "workspace/probe.py",
              O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  wr = fd >= 0 && write(fd, probe, strlen(probe)) == (ssize_t)strlen(probe);
  if (fd >= 0) {
    fchown(fd, sbx_box_uid(a), sbx_box_gid(a));
    close(fd);
  }
  ok(wr, "corpus: probe planted");
  for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
    struct sbx_proc_info p, q;
    struct rec r;
    struct sbx_task *t;
    snprintf(path, sizeof path, "python3 /workspace/probe.py %s", runs[i]);
    if (!precondition(pstart(a, path, 0, &p) == AC_OK, "corpus %s: started",
                      runs[i]))
      continue;
    if (precondition(watch(a, p.id, 0, 1, &r, &t) == AC_OK,
                     "corpus %s: watched", runs[i])) {
      ok(rec_wait(&r, NULL, 30000) && r.res.exit_code == 0,
         "corpus %s: probe ran", runs[i]);
      if (i == 0)
        ok(!contains(r.out, "ALLOWED") && contains(r.out, "mount: EPERM"),
           "B8/B9/B10/B7 from a background process: every attack denied");
      else if (i == 1)
        ok(contains(r.out, "netlink: EAFNOSUPPORT") &&
           contains(r.out, "unix: ALLOWED") &&
           !contains(r.out, "packet: ALLOWED") &&
           !contains(r.out, "vsock: ALLOWED"),
           "C5: socket families denied (unix allowed: control)");
      else if (i == 2)
        ok(!contains(r.out, "connect: ALLOWED") &&
           !contains(r.out, "dns: ALLOWED") &&
           !contains(r.out, "abstract: ALLOWED"),
           "C1/C2: no network, no host abstract sockets");
      else
        ok(contains(r.out, "fork: 7"), "control: fork works");
      if (!r.done || r.res.exit_code)
        printf("# %s\n", r.out);
      sbx_task_release(t);
    }
    wait_end(a, p.id, &q);
    sbx_proc_info_free(&q);
    sbx_proc_info_free(&p);
  }
  {
    struct sbx_proc_info p, q;
    struct rec r;
    struct sbx_task *t;
    if (precondition(pstart(a, "cat /root/x /etc/shadow 2>&1; ls /sys "
                            "/home 2>&1; kill -9 -1 2>/dev/null; echo "
                            "B15-survived; id -u; echo x > /usr/x 2>&1 || "
                            "echo ro", 0, &p) == AC_OK &&
                     watch(a, p.id, 0, 1, &r, &t) == AC_OK,
                     "host files, kill -9 -1, /usr: started and watched")) {
      rec_wait(&r, NULL, 30000);
      ok(contains(r.out, "No such file") && !contains(r.out, "root:"),
         "B1: host files absent");
      if (!contains(r.out, "B15-survived\n1000\n"))
        printf("# %s\n", r.out);
      ok(contains(r.out, "B15-survived\n1000\n"), "B15/B2: kill -9 -1 "
         "harms only the sandbox; unprivileged uid");
      ok(contains(r.out, "ro\n"), "B5: /usr read-only");
      sbx_task_release(t);
      wait_end(a, p.id, &q);
      sbx_proc_info_free(&q);
      sbx_proc_info_free(&p);
    }
  }
}

static void test_box_end(uid_t uid) {
  struct sbx_limits l = { 0 };
  struct sbx_box *c;
  struct sbx_proc_info p;
  struct rec r;
  struct sbx_task *t = NULL;
  tcase("background daemons die with their box");
  c = make_box("c", uid, &l);
  REQUIRE(c != NULL, "box c");
  if (precondition(pstart(c, "(setsid sh -c 'sleep 1000 & exec sleep "
                          "1001' &); echo up; exec sleep 1002", 0, &p) ==
                   AC_OK && watch(c, p.id, 0, 1, &r, &t) == AC_OK,
                   "box end: daemons started and watched")) {
    ok(rec_wait(&r, "up", 10000), "box end: daemons running");
    wait_uid_procs(uid, 1, 3, 1, 5000);
    sbx_task_release(t);
    sbx_proc_info_free(&p);
  }
  sbx_box_destroy(c);
  is_int(uid_procs(uid, 0), 0, "box end: no process of its uid remains");
}

static char *read_probe(void) {
  static const char *const where[] = { "tests/security/probe.py",
                                       "../tests/security/probe.py" };
  for (size_t i = 0; i < 2; i++) {
    FILE *f = fopen(where[i], "re");
    char *buf;
    size_t n;
    if (f == NULL)
      continue;
    buf = calloc(1, 65536);
    n = buf ? fread(buf, 1, 65535, f) : 0;
    fclose(f);
    if (buf && n > 0)
      return buf;
    free(buf);
  }
  return NULL;
}

int main(void) {
  struct sbx_limits la = { .memory_bytes = 512 << 20, .pids = 128,
                           .proc_output_bytes = 4096 };
  struct sbx_box *a;
  char *probe;
  char why[600];

  plan(15);
  if (geteuid() != 0)
    return skip_all("needs root (session uids, cgroups)");
  probe = read_probe();
  tcase("a live box is created");
  switch (live_start(why, sizeof why)) {
  case 0:
    free(probe);
    return done_testing();
  case -1:
    free(probe);
    skip_case(why);
    return skip_all(why);
  }
  base_uid = 250000 + (uid_t)(getpid() % 1000) * 4;
  a = make_box("a", base_uid, &la);
  ok(a != NULL, "box created");
  test_outlives_request(a, base_uid);
  test_ring(a);
  test_stdin_follow(a);
  test_signals(a, base_uid);
  test_timeout_and_cancel_watch(a);
  test_refusals(a);
  test_ring_trims_inside_a_chunk(a);
  test_two_watches(a);
  test_killed_at_once(a, base_uid);
  test_corpus(a, probe);
  tcase("a closed box leaves no process");
  sbx_box_destroy(a);
  is_int(uid_procs(base_uid, 0), 0, "closed box leaves no process");
  test_box_end(base_uid + 1);
  test_closing_box(base_uid + 2);
  free(probe);
  tcase("the closed runtime leaves its state directory empty");
  live_teardown();
  return done_testing();
}
