/*
** Language contexts on the live sandbox: python, bash and lua keep their
** state between runs; python returns the repr of a final expression and
** structured errors; a run that times out is interrupted and the context
** survives where the language allows (python, lua), or is started anew
** (a bash loop of builtins); the escape corpus runs from a context too.
*/
#include "live_util.h"

#include <fcntl.h>

static uid_t base_uid;

struct cres {
  struct rec r;
  char value[4096], name[128], message[1024], traceback[4096];
  int has_value, has_err, timed_out, restarted;
  char out[8192], err[8192];
};

static void c_done(void *ud, const struct sbx_exec_result *res,
                   const struct sbx_ctx_result *cr) {
  struct cres *c = ud;
  if (cr) {
    c->has_value = cr->value != NULL;
    snprintf(c->value, sizeof c->value, "%s", cr->value ? cr->value : "");
    c->has_err = cr->err_name != NULL;
    snprintf(c->name, sizeof c->name, "%s", cr->err_name ? cr->err_name
                                                        : "");
    snprintf(c->message, sizeof c->message, "%s",
             cr->err_message ? cr->err_message : "");
    snprintf(c->traceback, sizeof c->traceback, "%s",
             cr->err_traceback ? cr->err_traceback : "");
    c->timed_out = cr->timed_out;
    c->restarted = cr->restarted;
  }
  if (res) {
    snprintf(c->out, sizeof c->out, "%s", res->out ? res->out : "");
    snprintf(c->err, sizeof c->err, "%s", res->err ? res->err : "");
  }
  rec_done(&c->r, res, cr);
}

/* Runs code (buffered output) and waits. */
static int run(struct sbx_box *b, const char *id, const char *code,
               long long timeout, struct cres *c) {
  static const struct sbx_task_events ev = { NULL, NULL, c_done };
  struct sbx_task *t;
  struct ac_error e;
  memset(c, 0, sizeof *c);
  rec_init(&c->r);
  if (sbx_ctx_run_start(b, id, code, timeout, &ev, c, NULL, &t, &e) != AC_OK) {
    printf("# run: %s\n", e.msg);
    return 0;
  }
  if (!rec_wait(&c->r, NULL, 60000)) {
    printf("# run did not end\n");
    sbx_task_release(t);
    return 0;
  }
  sbx_task_release(t);
  return 1;
}

static int create(struct sbx_box *b, const char *lang,
                  struct sbx_ctx_info *info) {
  struct ac_error e;
  if (sbx_ctx_create(b, lang, NULL, NULL, info, &e) != AC_OK) {
    printf("# create %s: %s\n", lang, e.msg);
    return 0;
  }
  return 1;
}

static void test_python(struct sbx_box *a) {
  struct sbx_ctx_info info;
  struct cres c;
  struct ac_error e;
  tcase("python: state kept, values and structured errors, survives an "
        "interrupt, restarts after exit");
  REQUIRE(a != NULL, "a live box");
  REQUIRE(create(a, "python", &info), "a python context");
  ok(strcmp(info.language, "python") == 0 && info.id[0] == 'c',
     "python: created %s", info.id);
  ok(run(a, info.id, "x = 1\nprint('hello')", 30 * SEC, &c) &&
     strcmp(c.out, "hello\n") == 0 && !c.has_value && !c.has_err,
     "python: statements run, stdout captured, no value");
  ok(run(a, info.id, "x = x + 1\nx * 10", 30 * SEC, &c) &&
     strcmp(c.value, "20") == 0, "python: state kept, final expression's "
     "value (got '%s')", c.value);
  ok(run(a, info.id, "'a' + 'b'", 30 * SEC, &c) &&
     strcmp(c.value, "'ab'") == 0, "python: the value is the repr");
  /* a result line over the 64 KiB limit is malformed as a whole, never
  ** a fragment of it read as the value; just under it comes through */
  ok(run(a, info.id, "'a' * 60000", 30 * SEC, &c) && c.has_value &&
     !c.has_err && strncmp(c.value, "'aaaa", 5) == 0,
     "python: a 60000-byte value comes back");
  ok(run(a, info.id, "'{\"value\": 1}' * 40000", 30 * SEC, &c) &&
     !c.has_value && strcmp(c.name, "ProtocolError") == 0,
     "python: a value over the limit is a malformed result (got '%s' "
     "'%.40s')", c.name, c.value);
  ok(run(a, info.id, "x", 30 * SEC, &c) && strcmp(c.value, "2") == 0 &&
     !c.has_err, "python: the next run's result is whole again");
  ok(run(a, info.id, "import sys\nprint('e', file=sys.stderr)\n1/0",
         30 * SEC, &c) && c.has_err, "python: an exception is an error");
  is_str(c.name, "ZeroDivisionError", "python: error name");
  is_str(c.message, "division by zero", "python: error message");
  ok(contains(c.traceback, "<cell>") && !contains(c.traceback, "_run"),
     "python: the traceback shows the cell, not the driver");
  is_str(c.err, "e\n", "python: stderr captured");
  ok(run(a, info.id, "def f(:", 30 * SEC, &c) && strcmp(c.name,
     "SyntaxError") == 0, "python: SyntaxError");
  ok(run(a, info.id, "import time\nprint('before', flush=True)\n"
         "time.sleep(30)", SEC, &c), "python: a long run returns");
  ok(c.timed_out && strcmp(c.name, "KeyboardInterrupt") == 0,
     "python: timeout interrupts it (KeyboardInterrupt)");
  ok(run(a, info.id, "x", 30 * SEC, &c) && strcmp(c.value, "2") == 0 &&
     !c.restarted, "python: the context survived the interrupt");
  ok(run(a, info.id, "import os\nos._exit(3)", 30 * SEC, &c) && c.has_err,
     "python: the interpreter exiting ends the run with an error");
  ok(run(a, info.id, "'x' in dir()", 30 * SEC, &c) && c.restarted &&
     strcmp(c.value, "False") == 0, "python: the next run restarts it "
     "(state gone, restarted flag)");
  ok(run(a, info.id, "open('/workspace/cell.txt','w').write('hi')\n"
         "len(__import__('os').listdir('/workspace'))", 30 * SEC, &c),
     "python: files written from a context");
  ok(sbx_ctx_delete(a, info.id, &e) == AC_OK, "python: deleted");
  {
    struct sbx_task *t;
    ok(sbx_ctx_run_start(a, info.id, "1", SEC, NULL, NULL, NULL, &t, &e) ==
       AC_ENOTFOUND, "python: a deleted context is not found");
  }
}

static void test_bash(struct sbx_box *a) {
  struct sbx_ctx_info info;
  struct cres c;
  struct ac_error e;
  tcase("bash: variables, cwd and functions kept; timeouts interrupt, "
        "a restart when SIGINT is ignored");
  REQUIRE(a != NULL, "a live box");
  REQUIRE(create(a, "bash", &info), "a bash context");
  ok(run(a, info.id, "X=41; cd /tmp; f() { echo f$1; }", 30 * SEC, &c) &&
     !c.has_err, "bash: variables, cwd, functions set");
  ok(run(a, info.id, "echo $((X+1)) $(pwd); f 2", 30 * SEC, &c) &&
     strcmp(c.out, "42 /tmp\nf2\n") == 0, "bash: all kept (got '%s')",
     c.out);
  ok(run(a, info.id, "false", 30 * SEC, &c) && c.has_err &&
     strcmp(c.name, "NonZeroExit") == 0, "bash: a failing status is an "
     "error");
  ok(run(a, info.id, "sleep 30; echo not-reached", SEC, &c) && c.timed_out &&
     !contains(c.out, "not-reached"), "bash: timeout interrupts sleep and "
     "the rest of the run");
  ok(run(a, info.id, "echo $X", 30 * SEC, &c) && strcmp(c.out, "41\n") == 0
     && !c.restarted, "bash: the context survived");
  ok(run(a, info.id, "while :; do :; done", SEC, &c) && c.timed_out,
     "bash: a builtin loop is interrupted too");
  ok(run(a, info.id, "echo ${X:-unset}", 30 * SEC, &c) && !c.restarted &&
     strcmp(c.out, "41\n") == 0, "bash: the context survived that too");
  ok(run(a, info.id, "trap '' INT; while :; do :; done", SEC, &c) &&
     c.timed_out, "bash: code that ignores SIGINT still ends at the "
     "timeout");
  ok(run(a, info.id, "echo ${X:-unset}", 30 * SEC, &c) && c.restarted &&
     strcmp(c.out, "unset\n") == 0, "bash: ... by a restart (restarted "
     "flag, state gone)");
  sbx_ctx_delete(a, info.id, &e);
}

static void test_lua(struct sbx_box *a) {
  struct sbx_ctx_info info;
  struct cres c;
  struct ac_error e;
  tcase("lua: state kept, structured errors, a busy loop interrupted");
  REQUIRE(a != NULL, "a live box");
  REQUIRE(create(a, "lua", &info), "a lua context");
  ok(run(a, info.id, "x = 20", 30 * SEC, &c) && !c.has_err,
     "lua: a statement");
  ok(run(a, info.id, "x + 1", 30 * SEC, &c) && strcmp(c.value, "21") == 0,
     "lua: state kept, expression value (got '%s')", c.value);
  ok(run(a, info.id, "print('p'); error('boom')", 30 * SEC, &c) &&
     c.has_err && contains(c.message, "boom") && strcmp(c.out, "p\n") == 0,
     "lua: errors are structured, output kept");
  ok(run(a, info.id, "while true do end", SEC, &c) && c.timed_out &&
     contains(c.message, "interrupted"), "lua: timeout interrupts a busy "
     "loop");
  ok(run(a, info.id, "x", 30 * SEC, &c) && strcmp(c.value, "20") == 0 &&
     !c.restarted, "lua: the context survived");
  sbx_ctx_delete(a, info.id, &e);
}

static void test_misc(struct sbx_box *a) {
  struct sbx_ctx_info info, *v;
  struct ac_error e;
  size_t n;
  tcase("contexts: unknown language refused, listed with a pid, one run "
        "at a time");
  REQUIRE(a != NULL, "a live box");
  ok(sbx_ctx_create(a, "cobol", NULL, NULL, &info, &e) == AC_EINVAL,
     "an unknown language: EINVAL");
  REQUIRE(create(a, "python", &info), "a python context");
  {
    struct cres c;
    run(a, info.id, "1", 30 * SEC, &c);
  }
  ok(sbx_ctx_list(a, &v, &n, &e) == AC_OK && n == 1 &&
     strcmp(v[0].id, info.id) == 0 && v[0].pid > 0, "listed with its pid");
  free(v);
  {
    /* one run at a time */
    static const struct sbx_task_events ev = { NULL, NULL, rec_done };
    struct rec r;
    struct sbx_task *t, *t2;
    rec_init(&r);
    if (precondition(sbx_ctx_run_start(a, info.id,
                                       "import time; time.sleep(1)",
                                       30 * SEC, &ev, &r, NULL, &t, &e) == AC_OK,
                     "a long run started")) {
      ok(sbx_ctx_run_start(a, info.id, "1", SEC, &ev, &r, NULL, &t2, &e) ==
         AC_EBUSY, "a busy context: EBUSY");
      sbx_task_cancel(t);
      ok(rec_wait(&r, NULL, 10000), "a cancelled run ends");
      sbx_task_release(t);
    }
  }
  sbx_ctx_delete(a, info.id, &e);
}

/* What cannot be a context is refused before an interpreter starts; a
** box holds at most 16 contexts. */
static void test_refusals_and_limit(struct sbx_box *a) {
  static const char *bad_env[] = { "NOEQUALS", NULL };
  struct sbx_ctx_info info, *v;
  struct ac_error e;
  char ids[16][16];
  size_t n = 0;
  int made = 0, deleted = 0;
  tcase("contexts: malformed creates refused, at most 16 per box");
  REQUIRE(a != NULL, "a live box");
  ok(sbx_ctx_create(a, NULL, NULL, NULL, &info, &e) == AC_EINVAL,
     "no language: EINVAL");
  ok(sbx_ctx_create(a, "bash", NULL, "tmp", &info, &e) == AC_EINVAL &&
     contains(e.msg, "absolute"), "a relative working_dir: EINVAL (%s)",
     e.msg);
  ok(sbx_ctx_create(a, "bash", bad_env, NULL, &info, &e) == AC_EINVAL &&
     contains(e.msg, "NOEQUALS"), "an environment entry without '=': "
     "EINVAL (%s)", e.msg);
  ok(sbx_ctx_list(a, &v, &n, &e) == AC_OK && n == 0, "none was made");
  free(v);
  ok(sbx_ctx_delete(a, "c424242", &e) == AC_ENOTFOUND, "deleting an "
     "unknown one: ENOTFOUND");
  for (int i = 0; i < 16; i++) {
    if (sbx_ctx_create(a, "lua", NULL, NULL, &info, &e) != AC_OK) {
      printf("# create %d: %s\n", i, e.msg);
      break;
    }
    snprintf(ids[made++], sizeof ids[0], "%s", info.id);
  }
  is_int(made, 16, "16 contexts made");
  ok(sbx_ctx_create(a, "lua", NULL, NULL, &info, &e) == AC_ELIMIT &&
     contains(e.msg, "16"), "a 17th: ELIMIT (%s)", e.msg);
  for (int i = 0; i < made; i++)
    deleted += sbx_ctx_delete(a, ids[i], &e) == AC_OK;
  is_int(deleted, made, "all deleted");
  ok(sbx_ctx_list(a, &v, &n, &e) == AC_OK && n == 0, "none listed");
  free(v);
  if (ok(create(a, "lua", &info), "room again after the deletes")) {
    struct cres c;
    ok(run(a, info.id, "1 + 1", 30 * SEC, &c) && strcmp(c.value, "2") == 0,
       "and it runs");
    sbx_ctx_delete(a, info.id, &e);
  }
  /* deleted at once after their start: the kill must not miss them */
  is_int(wait_uid_procs(base_uid, 1, 0, 0, 10000), 0,
         "every deleted interpreter is gone");
}

/* The code shares the interpreter, so it can print the result line
** itself: the run ends with what it sent, made well formed. */
static void test_forged_result(struct sbx_box *a) {
  struct sbx_ctx_info info;
  struct cres c;
  struct ac_error e;
  tcase("a result line the code prints itself ends its run, well formed");
  REQUIRE(a != NULL, "a live box");
  REQUIRE(create(a, "bash", &info), "a bash context");
  ok(run(a, info.id, "echo before; "
         "printf '\\036%s {\"error\":{}}\\n' \"$__ac_m\"; "
         "printf '\\036%s {}\\n' \"$__ac_m\" >&2", 30 * SEC, &c),
     "the run returns");
  ok(c.has_err && strcmp(c.name, "Error") == 0 && c.message[0] == '\0' &&
     c.traceback[0] == '\0', "an error without fields: name \"Error\", "
     "empty message and traceback (got '%s')", c.name);
  /* (the interpreter's own line follows: whether it lands in this run's
  ** output depends on which stream is read first) */
  ok(strncmp(c.out, "before\n", 7) == 0, "the output before it belongs "
     "to the run");
  ok(!c.has_value, "no value");
  sbx_ctx_delete(a, info.id, &e);
}

static void test_corpus(struct sbx_box *a) {
  struct sbx_ctx_info info;
  struct cres c;
  struct ac_error e;
  FILE *f;
  char buf[16384];
  size_t n;
  int fd;

  tcase("the escape corpus from a context: every attack denied, no network, "
        "unprivileged");
  REQUIRE(a != NULL, "a live box");
  f = fopen("tests/security/probe.py", "re");
  n = f ? fread(buf, 1, sizeof buf, f) : 0;
  if (f)
    fclose(f);
  fd = openat(sbx_box_rootfd(a), "workspace/probe.py",
              O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ok(n > 0 && fd >= 0 && write(fd, buf, n) == (ssize_t)n, "corpus: probe "
     "planted");
  if (fd >= 0)
    close(fd);
  REQUIRE(create(a, "python", &info), "a python context");
  ok(run(a, info.id, "import runpy, sys\nsys.argv = ['probe', 'syscalls']\n"
         "runpy.run_path('/workspace/probe.py', run_name='__main__')",
         60 * SEC, &c) && !contains(c.out, "ALLOWED") &&
     contains(c.out, "mount: EPERM"), "B7-B10 from a context: every attack "
     "denied");
  ok(run(a, info.id, "sys.argv = ['probe', 'connect', '127.0.0.1', '1']\n"
         "runpy.run_path('/workspace/probe.py', run_name='__main__')",
         60 * SEC, &c) && !contains(c.out, "connect: ALLOWED") &&
     !contains(c.out, "dns: ALLOWED"), "C1/C2 from a context: no network");
  ok(run(a, info.id, "import os\n(os.getuid(), os.path.exists('/root/x'), "
         "open('/proc/1/environ','rb').read() if os.access('/proc/1/environ'"
         ", os.R_OK) else b'')", 30 * SEC, &c) &&
     strcmp(c.value, "(1000, False, b'')") == 0,
     "B1/B2/E2 from a context: unprivileged, no host files, nothing in "
     "pid 1's environment (got %s)", c.value);
  sbx_ctx_delete(a, info.id, &e);
}

int main(void) {
  struct sbx_limits la = { .memory_bytes = 512 << 20, .pids = 128 };
  struct sbx_box *a;
  char why[600];

  plan(9);
  if (geteuid() != 0)
    return skip_all("needs root (session uids, cgroups)");
  tcase("a live box is created");
  switch (live_start(why, sizeof why)) {
  case 0:
    return done_testing();
  case -1:
    skip_case(why);
    return skip_all(why);
  }
  base_uid = 255000 + (uid_t)(getpid() % 1000) * 2;
  a = make_box("a", base_uid, &la);
  ok(a != NULL, "box created");
  test_python(a);
  test_bash(a);
  test_lua(a);
  test_misc(a);
  test_refusals_and_limit(a);
  test_forged_result(a);
  test_corpus(a);
  tcase("a closed box leaves no interpreter, the state directory empty");
  sbx_box_destroy(a);
  is_int(uid_procs(base_uid, 0), 0, "closed box: no interpreter left");
  live_teardown();
  return done_testing();
}
