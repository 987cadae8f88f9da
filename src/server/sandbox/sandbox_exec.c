/*
** sandbox_exec.c -- the blocking sbx_exec of sandbox.h: sbx_exec_start
** (sandbox_live.c) with buffered output, and a wait for its done event.
*/
#include "sandbox.h"
#include "sandbox_live.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct waiter {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  struct sbx_exec_result res;
  int oom;                       /* copying the result failed */
};

static char *dup_bytes(const char *p, size_t n) {
  char *q = malloc(n + 1);
  if (q) {
    memcpy(q, p, n);
    q[n] = '\0';
  }
  return q;
}

static void waiter_done(void *ud, const struct sbx_exec_result *res,
                        const struct sbx_ctx_result *ctx) {
  struct waiter *w = ud;
  (void)ctx;
  pthread_mutex_lock(&w->mu);
  w->res = *res;
  w->res.out = dup_bytes(res->out, res->out_len);
  w->res.err = dup_bytes(res->err, res->err_len);
  if (w->res.out == NULL || w->res.err == NULL)
    w->oom = 1;
  w->done = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

enum ac_code sbx_exec(struct sbx_box *box, const struct sbx_exec_request *req,
                      struct sbx_exec_result *res, struct ac_error *err) {
  static const struct sbx_task_events ev = { NULL, NULL, waiter_done };
  struct waiter w;
  struct sbx_task *t;
  enum ac_code rc;

  memset(res, 0, sizeof *res);
  memset(&w, 0, sizeof w);
  pthread_mutex_init(&w.mu, NULL);
  pthread_cond_init(&w.cv, NULL);
  rc = sbx_exec_start(box, req, &ev, &w, &t, err);
  if (rc == AC_OK) {
    pthread_mutex_lock(&w.mu);
    while (!w.done)
      pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    sbx_task_release(t);
    if (w.oom) {
      sbx_exec_result_free(&w.res);
      rc = ac_error_set(err, AC_ENOMEM, "exec: out of memory");
    } else {
      *res = w.res;
    }
  }
  pthread_mutex_destroy(&w.mu);
  pthread_cond_destroy(&w.cv);
  return rc;
}

void sbx_exec_result_free(struct sbx_exec_result *res) {
  if (res == NULL)
    return;
  free(res->out);
  free(res->err);
  res->out = res->err = NULL;
  res->out_len = res->err_len = 0;
}
