/* The lifetimes of jobs and engines, as a host can get them wrong: a
** result asked for while the job runs, an engine freed under running
** jobs, running jobs freed in any order, a created session never taken,
** an interrupt raised before anyone polls, and jobs started without an
** engine. */
#include "agentcube.h"
#include "rec_client.h"
#include "tap.h"

#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static struct recorder rec;
static int ready;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static ac_client *mk(void) {
  return rec_client(&rec, NULL);
}

static ac_session *attach(ac_client *c) {
  return rec_attach(c, "sid-l");
}

static void test_engine_freed(void) {
  ac_client *c;
  ac_session *s;
  ac_engine *e = NULL;
  ac_job *j = NULL;
  struct ac_error err;
  long long t0;

  tcase("a job outlives its engine: still running, then cancelled by the "
        "engine's end");
  REQUIRE(ready, "the library and the recording server");
  REQUIRE(ac_engine_new(&e, &err) == AC_OK, "an engine");
  c = mk();
  s = attach(c);
  rec_reset(&rec);
  rec_push_mode(&rec, 200, "{\"exit_code\":0}", REC_NORMAL, 3000);
  is_int(ac_start_exec_line(e, s, "sleep 3", NULL, NULL, &j, &err), AC_OK,
         "started");
  ac_engine_poll(e, 50);
  ok(!ac_job_done(j), "running");
  is_int(ac_job_result(j, &err), AC_EBUSY, "its result: EBUSY");
  is_str(err.msg, "execute: still running", "says so");
  t0 = now_ms();
  ac_engine_free(e);
  ok(ac_job_done(j), "the engine's end ends it");
  ok(now_ms() - t0 < 2000, "at once (%lld ms)", now_ms() - t0);
  is_int(ac_job_result(j, &err), AC_ECANCELED, "cancelled");
  is_str(err.msg, "execute: engine freed", "says why");
  ok(ac_job_wait(j, 1000) == 1, "a wait on it returns at once");
  ac_job_cancel(j);
  is_int(ac_job_result(j, &err), AC_ECANCELED, "cancelling a done job "
         "changes nothing");
  ac_job_free(j);
  ac_job_free(NULL);
  ac_job_cancel(NULL);
  ac_engine_free(NULL);
  ac_session_free(s);
  ac_client_free(c);
}

static void test_free_order(void) {
  ac_client *c;
  ac_session *s;
  ac_engine *e = NULL;
  ac_job *a = NULL, *b = NULL, *x = NULL, *cr = NULL;
  struct ac_exec_result r;
  struct ac_error err;

  tcase("running jobs freed in any order; the engine goes on; a created "
        "session that is never taken");
  REQUIRE(ready, "the library and the recording server");
  REQUIRE(ac_engine_new(&e, &err) == AC_OK, "an engine");
  c = mk();
  s = attach(c);
  rec_reset(&rec);
  rec_push_mode(&rec, 200, "{\"exit_code\":0}", REC_NORMAL, 3000);
  rec_push_mode(&rec, 200, "{\"exit_code\":0}", REC_NORMAL, 3000);
  is_int(ac_start_exec_line(e, s, "a", NULL, NULL, &a, &err), AC_OK,
         "job a");
  is_int(ac_start_exec_line(e, s, "b", NULL, NULL, &b, &err), AC_OK,
         "job b");
  {
    long long deadline = now_ms() + 10000;
    while (rec_count(&rec) < 2 && now_ms() < deadline)
      ac_engine_poll(e, 20);
  }
  is_int(rec_count(&rec), 2, "both requests arrived");
  ac_job_free(b);                     /* the newer first, */
  ac_job_free(a);                     /* then the older */
  /* the delayed answers were owed to a and b: this one comes third */
  rec_push(&rec, 200, "{\"stdout\":\"after\",\"exit_code\":0}");
  is_int(ac_start_exec_line(e, s, "c", NULL, NULL, &x, &err), AC_OK,
         "a third job on the same engine");
  ok(ac_job_wait(x, 10000) == 1, "completes");
  is_int(ac_job_result(x, &err), AC_OK, "with success");
  ac_job_take_exec(x, &r);
  is_str(r.out, "after", "and its own answer");
  ac_exec_result_free(&r);
  ac_job_free(x);

  rec_reset(&rec);
  rec_push(&rec, 200, "{\"sessionId\":\"s-new\"}");
  is_int(ac_start_session_create(e, c, NULL, NULL, &cr, &err), AC_OK,
         "a create job");
  ok(ac_job_wait(cr, 10000) == 1, "completes");
  is_int(ac_job_result(cr, &err), AC_OK, "with success");
  ac_job_free(cr);                    /* the session was never taken */
  cr = NULL;
  rec_reset(&rec);
  rec_push(&rec, 200, "{\"sessionId\":\"s-2\"}");
  ac_start_session_create(e, c, NULL, NULL, &cr, &err);
  ac_job_wait(cr, 10000);
  {
    ac_session *got = ac_job_take_session(cr);
    is_str(got ? ac_session_id(got) : "(none)", "s-2", "taken once");
    ok(ac_job_take_session(cr) == NULL, "not twice");
    ac_session_free(got);
  }
  ac_job_free(cr);
  ac_engine_free(e);
  ac_session_free(s);
  ac_client_free(c);
}

static void test_interrupt_before_poll(void) {
  ac_client *c;
  ac_session *s;
  ac_engine *e = NULL;
  ac_job *j = NULL;
  struct ac_error err;
  long long t0;

  tcase("an interrupt raised before anyone polls ends what runs, and only "
        "that");
  REQUIRE(ready, "the library and the recording server");
  REQUIRE(ac_engine_new(&e, &err) == AC_OK, "an engine");
  c = mk();
  s = attach(c);
  rec_reset(&rec);
  rec_push_mode(&rec, 200, "{\"exit_code\":0}", REC_NORMAL, 3000);
  is_int(ac_start_exec_line(e, s, "sleep 3", NULL, NULL, &j, &err), AC_OK,
         "started");
  ac_engine_interrupt(e);
  t0 = now_ms();
  ok(ac_job_wait(j, 10000) == 1, "the wait returns");
  ok(now_ms() - t0 < 2000, "at once (%lld ms)", now_ms() - t0);
  is_int(ac_job_result(j, &err), AC_EINTERRUPTED, "interrupted");
  ac_job_free(j);
  j = NULL;
  rec_reset(&rec);
  rec_push(&rec, 200, "{\"exit_code\":0}");
  is_int(ac_start_exec_line(e, s, "true", NULL, NULL, &j, &err), AC_OK,
         "the next job starts");
  ok(ac_job_wait(j, 10000) == 1, "and completes");
  is_int(ac_job_result(j, &err), AC_OK, "unharmed by the old interrupt");
  ac_job_free(j);
  j = (ac_job *)&j;
  is_int(ac_start_exec_line(NULL, s, "true", NULL, NULL, &j, &err),
         AC_EINVAL, "no engine: EINVAL");
  ok(strstr(err.msg, "NULL engine") != NULL, "says so: %s", err.msg);
  ok(j == NULL, "no job");
  ac_engine_free(e);
  ac_session_free(s);
  ac_client_free(c);
}

struct canceller {
  int calls;
};

static void cancel_on_progress(void *ud, ac_job *j, long long done,
                               long long total) {
  struct canceller *k = ud;
  (void)done;
  (void)total;
  k->calls++;
  ac_job_cancel(j);
}

static void test_cancel_from_progress(void) {
  ac_client *c;
  ac_session *s;
  ac_engine *e = NULL;
  ac_job *j = NULL;
  struct ac_error err;
  struct canceller k = { 0 };
  struct ac_job_callbacks cb = { NULL, cancel_on_progress, NULL, &k };
  char dir[] = "/tmp/ac-life-XXXXXX", dst[64];

  tcase("a progress callback that cancels a download leaves no file, "
        "however fast the transfer was");
  REQUIRE(ready, "the library and the recording server");
  REQUIRE(ac_engine_new(&e, &err) == AC_OK, "an engine");
  REQUIRE(mkdtemp(dir) != NULL, "a directory");
  c = mk();
  s = attach(c);
  snprintf(dst, sizeof dst, "%s/got.txt", dir);
  rec_reset(&rec);
  rec_push(&rec, 200, "a small file, in one piece");
  is_int(ac_start_download_file(e, s, "f.txt", dst, &cb, &j, &err), AC_OK,
         "started");
  ok(j != NULL && ac_job_wait(j, 10000) == 1, "done");
  ok(k.calls >= 1, "the callback ran (%d times)", k.calls);
  is_int(ac_job_result(j, &err), AC_ECANCELED, "cancelled, not completed");
  ok(access(dst, F_OK) != 0, "no file at the destination");
  ac_job_free(j);
  j = NULL;
  {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s')\"", dir);
    ok(system(cmd) == 0, "once freed, nothing at all left in the "
       "directory");
  }
  /* the positive control: the same download without the callback */
  rec_reset(&rec);
  rec_push(&rec, 200, "a small file, in one piece");
  is_int(ac_start_download_file(e, s, "f.txt", dst, NULL, &j, &err), AC_OK,
         "started without it");
  ok(j != NULL && ac_job_wait(j, 10000) == 1, "done");
  is_int(ac_job_result(j, &err), AC_OK, "completed");
  ok(access(dst, F_OK) == 0, "the file is there");
  ac_job_free(j);
  unlink(dst);
  rmdir(dir);
  ac_engine_free(e);
  ac_session_free(s);
  ac_client_free(c);
}

static void test_interrupted_engine_refuses(void) {
  ac_client *c;
  ac_session *s;
  ac_engine *e = NULL;
  ac_job *j = NULL;
  struct ac_error err;
  struct ac_ext_call call;
  struct ac_agent_runtime_config rc_cfg;
  char path[] = "/tmp/ac-life-up-XXXXXX";
  int fd;

  tcase("an interrupt pending on an engine refuses every new job until "
        "the engine is polled");
  REQUIRE(ready, "the library and the recording server");
  REQUIRE(ac_engine_new(&e, &err) == AC_OK, "an engine");
  fd = mkstemp(path);
  REQUIRE(fd >= 0, "a local file to upload");
  close(fd);
  c = mk();
  s = attach(c);
  memset(&call, 0, sizeof call);
  call.op = AC_EXT_PROCESS_LIST;
  ac_agent_runtime_config_init(&rc_cfg);
  rc_cfg.agent_name = "agent";
  rc_cfg.router_url = rec.base;
  rec_reset(&rec);
  ac_engine_interrupt(e);
  is_int(ac_start_exec_line(e, s, "true", NULL, NULL, &j, &err),
         AC_EINTERRUPTED, "execute");
  is_str(err.msg, "execute: interrupted", "says so");
  is_int(ac_start_upload_file(e, s, path, "up.txt", NULL, &j, &err),
         AC_EINTERRUPTED, "upload");
  ok(strstr(err.msg, "upload file up.txt (session sid-l)") != NULL,
     "names the file and the session: %s", err.msg);
  is_int(ac_start_download_file(e, s, "up.txt", "/tmp/ac-life-never", NULL,
                                &j, &err), AC_EINTERRUPTED, "download");
  is_int(ac_start_write_file(e, s, "w.txt", "x", 1, NULL, &j, &err),
         AC_EINTERRUPTED, "write");
  is_int(ac_start_list_files(e, s, ".", NULL, &j, &err), AC_EINTERRUPTED,
         "list files");
  is_int(ac_start_ext(e, s, &call, NULL, &j, &err), AC_EINTERRUPTED,
         "an extension");
  is_int(ac_start_session_create(e, c, NULL, NULL, &j, &err),
         AC_EINTERRUPTED, "create");
  is_int(ac_start_session_list(e, c, NULL, &j, &err), AC_EINTERRUPTED,
         "list sessions");
  is_int(ac_start_agent_runtime_new(e, &rc_cfg, NULL, &j, &err),
         AC_EINTERRUPTED, "an agent runtime's bootstrap");
  is_int(ac_start_session_stop(e, s, NULL, &j, &err), AC_EINTERRUPTED,
         "stop");
  ok(j == NULL, "no job made");
  is_int(rec_count(&rec), 0, "nothing sent");
  ok(access("/tmp/ac-life-never", F_OK) != 0, "no file downloaded");

  ok(ac_session_closed(s), "the stop closed the session all the same");

  /* polled once, the interrupt is spent: jobs start again */
  ac_engine_poll(e, 0);
  ac_session_free(s);
  s = attach(c);
  rec_push(&rec, 200, "{\"exit_code\":0}");
  is_int(ac_start_exec_line(e, s, "true", NULL, NULL, &j, &err), AC_OK,
         "after a poll a job starts");
  ok(j != NULL && ac_job_wait(j, 10000) == 1, "and completes");
  is_int(ac_job_result(j, &err), AC_OK, "with success");
  ac_job_free(j);
  unlink(path);
  ac_engine_free(e);
  ac_session_free(s);
  ac_client_free(c);
}

static void test_no_engine(void) {
  ac_client *c;
  ac_session *s;
  ac_job *j = NULL;
  struct ac_error err;
  struct ac_ext_call call;
  struct ac_agent_runtime_config rc_cfg;
  int refused = 0, named = 0;
  enum ac_code rc[11];

  tcase("every start function refuses a NULL engine, before any request");
  REQUIRE(ready, "the library and the recording server");
  c = mk();
  s = attach(c);
  memset(&call, 0, sizeof call);
  call.op = AC_EXT_PROCESS_LIST;
  ac_agent_runtime_config_init(&rc_cfg);
  rc_cfg.agent_name = "agent";
  rc_cfg.router_url = rec.base;
  rc_cfg.session_id = "given";        /* no bootstrap GET */
  rec_reset(&rec);
  rc[0] = ac_start_exec_line(NULL, s, "true", NULL, NULL, &j, &err);
  named += strstr(err.msg, "NULL engine") != NULL;
  rc[1] = ac_start_run_code(NULL, s, "bash", "true", 4, NULL, NULL, &j,
                            &err);
  named += strstr(err.msg, "NULL engine") != NULL;
  rc[2] = ac_start_write_file(NULL, s, "a", "x", 1, NULL, &j, &err);
  named += strstr(err.msg, "NULL engine") != NULL;
  rc[3] = ac_start_read_file(NULL, s, "a", 0, NULL, &j, &err);
  named += strstr(err.msg, "NULL engine") != NULL;
  rc[4] = ac_start_list_files(NULL, s, ".", NULL, &j, &err);
  named += strstr(err.msg, "NULL engine") != NULL;
  rc[5] = ac_start_upload_file(NULL, s, "/etc/hostname", "a", NULL, &j,
                               &err);
  named += strstr(err.msg, "NULL engine") != NULL;
  rc[6] = ac_start_download_file(NULL, s, "a", "/tmp/ac-never", NULL, &j,
                                 &err);
  named += strstr(err.msg, "NULL engine") != NULL;
  rc[7] = ac_start_ext(NULL, s, &call, NULL, &j, &err);
  named += strstr(err.msg, "NULL engine") != NULL;
  rc[8] = ac_start_session_create(NULL, c, NULL, NULL, &j, &err);
  named += strstr(err.msg, "NULL engine") != NULL;
  rc[9] = ac_start_session_list(NULL, c, NULL, &j, &err);
  named += strstr(err.msg, "NULL engine") != NULL;
  rc[10] = ac_start_agent_runtime_new(NULL, &rc_cfg, NULL, &j, &err);
  named += strstr(err.msg, "NULL engine") != NULL;
  for (int i = 0; i < 11; i++)
    refused += rc[i] == AC_EINVAL;
  is_int(refused, 11, "all eleven: EINVAL");
  is_int(named, 11, "each saying the engine is missing");
  ok(j == NULL, "no job");
  is_int(ac_start_session_stop(NULL, s, NULL, &j, &err), AC_EINVAL,
         "stop too");
  ok(!ac_session_closed(s), "and the session stays open");
  is_int(rec_count(&rec), 0, "nothing was sent");
  ac_session_free(s);
  ac_client_free(c);
}

int main(void) {
  plan(6);
  ready = ac_global_init(NULL) == AC_OK && rec_start(&rec) == 0;
  if (!ready)
    printf("# setup failed: every case fails its precondition\n");
  signal(SIGPIPE, SIG_IGN);
  unsetenv("WORKLOAD_MANAGER_URL");
  unsetenv("ROUTER_URL");
  test_engine_freed();
  test_free_order();
  test_interrupt_before_poll();
  test_cancel_from_progress();
  test_interrupted_engine_refuses();
  test_no_engine();
  if (ready)
    rec_stop(&rec);
  return done_testing();
}
