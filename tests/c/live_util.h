/*
** live_util.h -- helpers of the live sandbox tests (test_live_*.c): a
** runtime in a private state directory, boxes, process counting by uid,
** and a task recorder that collects streamed events.
*/
#ifndef AGENTCUBE_LIVE_UTIL_H
#define AGENTCUBE_LIVE_UTIL_H

#include "sandbox.h"
#include "sandbox_int.h"
#include "sandbox_live.h"
#include "sandbox_util.h"
#include "tap.h"
#include "uid_procs.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SEC 1000000000LL

static struct sbx_runtime *rt;
static char state[64] = "/tmp/agentcube-live-XXXXXX";

static __attribute__((unused)) int contains(const char *hay,
                                            const char *needle) {
  return hay && strstr(hay, needle) != NULL;
}

static __attribute__((unused)) long long now_ms(void) {
  return sbxu_now_ns() / 1000000;
}

/* Records what a task delivers. */
struct rec {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char out[65536];
  size_t nout;
  char order[256];             /* 'o' / 'e' per chunk */
  size_t nchunks;
  unsigned long long next_off; /* offsets must be contiguous */
  int offsets_ok;
  unsigned long long dropped_at, dropped;
  long long first_ms, done_ms;
  int done, have_res;
  struct sbx_exec_result res;
};

static __attribute__((unused)) void rec_init(struct rec *r) {
  memset(r, 0, sizeof *r);
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  r->offsets_ok = 1;
  r->next_off = (unsigned long long)-1;
}

static void rec_output(void *ud, enum sbx_stream s, unsigned long long off,
                       const char *data, size_t len) {
  struct rec *r = ud;
  pthread_mutex_lock(&r->mu);
  if (r->next_off != (unsigned long long)-1 && off != r->next_off)
    r->offsets_ok = 0;
  r->next_off = off + len;
  if (r->nchunks == 0)
    r->first_ms = now_ms();
  if (r->nchunks < sizeof r->order - 1)
    r->order[r->nchunks] = s == SBX_STDOUT ? 'o' : 'e';
  r->nchunks++;
  if (r->nout + len < sizeof r->out) {
    memcpy(r->out + r->nout, data, len);
    r->nout += len;
    r->out[r->nout] = '\0';
  }
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

static void rec_dropped(void *ud, unsigned long long off,
                        unsigned long long n) {
  struct rec *r = ud;
  pthread_mutex_lock(&r->mu);
  r->dropped_at = off;
  r->dropped += n;
  r->next_off = off + n;
  pthread_mutex_unlock(&r->mu);
}

static void rec_done(void *ud, const struct sbx_exec_result *res,
                     const struct sbx_ctx_result *ctx) {
  struct rec *r = ud;
  (void)ctx;
  pthread_mutex_lock(&r->mu);
  r->done = 1;
  r->done_ms = now_ms();
  if (res) {
    r->have_res = 1;
    r->res = *res;
    r->res.out = r->res.err = NULL;
  }
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

static const struct sbx_task_events rec_events __attribute__((unused)) = {
  rec_output, rec_dropped, rec_done
};

/* Waits until the recorder has done (1) or its output holds needle
** (needle != NULL), up to ms. Returns 1 when it happened. */
static __attribute__((unused)) int rec_wait(struct rec *r,
                                            const char *needle, long ms) {
  struct timespec ts;
  int hit;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&r->mu);
  for (;;) {
    hit = needle ? strstr(r->out, needle) != NULL : r->done;
    if (hit || pthread_cond_timedwait(&r->cv, &r->mu, &ts) != 0)
      break;
  }
  hit = needle ? strstr(r->out, needle) != NULL : r->done;
  pthread_mutex_unlock(&r->mu);
  return hit;
}

static __attribute__((unused)) struct sbx_box *
make_box(const char *name, uid_t uid, const struct sbx_limits *l) {
  struct sbx_box *b = NULL;
  struct ac_error e;
  char path[256];
  snprintf(path, sizeof path, "%s/%s", state, name);
  if (sbx_box_create(rt, path, uid, l, &b, &e) != AC_OK) {
    printf("# sbx_box_create %s: %s\n", name, e.msg);
    return NULL;
  }
  return b;
}

/* sh -c script; returns stdout (static) and the exit code. */
static __attribute__((unused)) const char *run_sh(struct sbx_box *b,
                                                  const char *script,
                                                  int *code) {
  static char buf[16384];
  const char *argv[] = { "sh", "-c", script, NULL };
  struct sbx_exec_request rq;
  struct sbx_exec_result r;
  struct ac_error e;
  memset(&rq, 0, sizeof rq);
  rq.argv = argv;
  rq.timeout_ns = 60 * SEC;
  buf[0] = '\0';
  *code = -1;
  if (sbx_exec(b, &rq, &r, &e) != AC_OK) {
    printf("# sbx_exec: %s\n", e.msg);
    return buf;
  }
  snprintf(buf, sizeof buf, "%s", r.out);
  *code = r.exit_code;
  if (r.exit_code && r.err_len)
    printf("# stderr: %.300s\n", r.err);
  sbx_exec_result_free(&r);
  return buf;
}

/* Starts the runtime in a private state directory, inside the open case:
** 1 when it runs; 0 when setup failed (the case failed); -1 when the
** sandbox cannot run on this machine (the reason in why). */
static __attribute__((unused)) int live_start(char *why, size_t whysz) {
  struct ac_error e;
  if (!precondition(mkdtemp(state) != NULL, "state directory %s", state))
    return 0;
  if (sbx_runtime_init(&rt, state, &e) != AC_OK) {
    ok(0, "sbx_runtime_init: %s", e.msg);
    rmdir(state);
    return 0;
  }
  if (!rt->selftest_ok) {
    snprintf(why, whysz, "the sandbox cannot run here: %s",
             rt->why_selftest);
    sbx_runtime_free(rt);
    rmdir(state);
    return -1;
  }
  return 1;
}

static __attribute__((unused)) void live_teardown(void) {
  sbx_runtime_free(rt);
  ok(rmdir(state) == 0, "state directory empty at the end");
}

#endif
