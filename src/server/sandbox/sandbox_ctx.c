/*
** sandbox_ctx.c -- language contexts (sandbox_live.h): an interpreter
** process of the box, kept between runs, driven by our driver
** (ctx_drivers.c) over its stdin; its stdout/stderr carry the code's
** output and, at the end of each run, a marker line with the result.
**
** The interpreter is an ordinary command task of the box (AGP_F_KEEP |
** AGP_F_STDIN), so it is killed with the box and counts against its
** limits. A run is a task of its own whose events the interpreter's output
** feeds. A run's timeout sends SIGINT (a Jupyter-style interrupt); if the
** run has not ended INTERRUPT_GRACE_NS later, the interpreter is killed
** and the next run starts a new one (restarted).
*/
#include "ctx_drivers.h"
#include "sandbox_live_int.h"
#include "sandbox_util.h"
#include "agent_proto.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INTERRUPT_GRACE_NS (2LL * 1000000000LL)
#define MAX_CONTEXTS 16
#define MAX_PAYLOAD 65536
#define DEFAULT_MAX_OUTPUT (16u << 20)

struct sbx_ctx {
  struct sbx_ctx *next;
  struct sbx_box *box;
  char id[16], language[16];
  char **env;                    /* the request's, for restarts */
  char *cwd;
  struct sbx_task *proc;         /* the interpreter, NULL when dead */
  int died;                      /* the interpreter died since the last
                                    run (the next result says restarted) */
  char mark[48];                 /* "\036" + marker + " " */
  struct sbx_task *run;          /* the run in progress */
  /* per stream: what may be the start of the marker (held back), and
  ** after the marker the payload line */
  char carry[2][48];
  size_t ncarry[2];
  int seen[2];
  char *payload;
  size_t npayload;
  int payload_over;              /* the line outgrew MAX_PAYLOAD: the rest
                                    of it is dropped, the result malformed */
  int deleting;
};

static struct sbx_live_rt *live_of(struct sbx_box *box) {
  return box->rt->live;
}

static void free_strv(char **v) {
  for (size_t i = 0; v && v[i]; i++)
    free(v[i]);
  free(v);
}

static char **dup_strv(const char *const *v) {
  size_t n = 0;
  char **d;
  while (v && v[n])
    n++;
  d = calloc(n + 1, sizeof *d);
  for (size_t i = 0; d && i < n; i++)
    if ((d[i] = strdup(v[i])) == NULL) {
      free_strv(d);
      return NULL;
    }
  return d;
}

static void ctx_free(struct sbx_ctx *c);

/* ---- ending a run ---- */

static void run_finish(struct sbx_live_rt *L, struct sbx_ctx *c,
                       const char *name, const char *message) {
  struct sbx_task *t = c->run;
  struct sbx_exec_result res;
  struct sbx_ctx_result cr;
  json_t *j = NULL, *err;
  int keep = t->ev.output == NULL;
  c->run = NULL;
  t->finished = 1;
  memset(&res, 0, sizeof res);
  memset(&cr, 0, sizeof cr);
  res.start = t->start;
  clock_gettime(CLOCK_REALTIME, &res.end);
  res.timed_out = cr.timed_out = t->timed_out;
  cr.restarted = t->failed;      /* set when this run began anew */
  if (c->payload) {
    c->payload[c->npayload] = '\0';
    j = json_loads(c->payload, 0, NULL);
  }
  if (name) {
    cr.err_name = name;
    cr.err_message = message;
    cr.err_traceback = "";
  } else if (!json_is_object(j)) {
    cr.err_name = "ProtocolError";
    cr.err_message = "the context's interpreter sent a malformed result";
    cr.err_traceback = "";
  } else {
    cr.value = json_string_value(json_object_get(j, "value"));
    err = json_object_get(j, "error");
    if (json_is_object(err)) {
      cr.err_name = json_string_value(json_object_get(err, "name"));
      cr.err_message = json_string_value(json_object_get(err, "message"));
      cr.err_traceback = json_string_value(json_object_get(err,
                                                           "traceback"));
      if (cr.err_name == NULL)
        cr.err_name = "Error";
      if (cr.err_message == NULL)
        cr.err_message = "";
      if (cr.err_traceback == NULL)
        cr.err_traceback = "";
    }
  }
  res.exit_code = cr.err_name ? 1 : 0;
  if (t->timed_out)
    res.exit_code = 124;
  res.out = keep && t->out.p ? t->out.p : (char *)"";
  res.err = keep && t->err.p ? t->err.p : (char *)"";
  if (keep && t->out.p)
    t->out.p[t->out.len] = '\0';
  if (keep && t->err.p)
    t->err.p[t->err.len] = '\0';
  res.out_len = keep ? t->out.len : 0;
  res.err_len = keep ? t->err.len : 0;
  res.out_truncated = t->out.truncated;
  res.err_truncated = t->err.truncated;
  res.pool_refused = t->out.refused || t->err.refused;
  if (!t->released && t->ev.done) {
    t->cb_running = 1;
    pthread_mutex_unlock(&L->mu);
    t->ev.done(t->ud, &res, &cr);
    pthread_mutex_lock(&L->mu);
    t->cb_running = 0;
    pthread_cond_broadcast(&t->cv);
  }
  json_decref(j);
  free(c->payload);
  c->payload = NULL;
  c->npayload = 0;
  c->payload_over = 0;
  sbx_live_unref(t);
}

/* ---- the interpreter's events ---- */

/* Delivers run output (mu held). */
static void run_output(struct sbx_live_rt *L, struct sbx_ctx *c,
                       enum sbx_stream s, const char *data, size_t len) {
  struct sbx_task *t = c->run;
  struct sbx_obuf *b;
  size_t kept;
  if (t == NULL || len == 0)
    return;
  b = s == SBX_STDOUT ? &t->out : &t->err;
  /* buffered: kept (and charged to the request's pool) for the answer;
  ** streamed: counted and handed on */
  kept = sbx_obuf_add(b, data, len, t->ev.output == NULL);
  if (t->ev.output == NULL)
    return;
  t->offset += kept;
  if (kept)
    sbx_live_output(L, t, s, t->offset - kept, data, kept);
}

/* Drops the payload line read so far and the rest of it: the run's
** result is then malformed, never a fragment of the line. */
static void payload_drop(struct sbx_ctx *c) {
  free(c->payload);
  c->payload = NULL;
  c->npayload = 0;
  c->payload_over = 1;
}

/* Splits one chunk of a stream into run output and the result line. */
static void feed(struct sbx_live_rt *L, struct sbx_ctx *c, enum sbx_stream s,
                 const char *data, size_t len) {
  int k = s == SBX_STDOUT ? 0 : 1;
  size_t mlen = strlen(c->mark);
  while (len > 0) {
    if (c->seen[k] == 2) {
      run_output(L, c, s, data, len);   /* past its marker line */
      return;
    }
    if (c->seen[k]) {
      /* after the marker: the payload line (read from stdout only) */
      const char *nl = memchr(data, '\n', len);
      size_t take = nl ? (size_t)(nl - data) : len;
      if (k == 0 && !c->payload_over) {
        if (c->npayload + take >= MAX_PAYLOAD) {
          payload_drop(c);       /* too big: the result is malformed */
        } else {
          char *np = realloc(c->payload, c->npayload + take + 1);
          if (np) {
            memcpy(np + c->npayload, data, take);
            c->payload = np;
            c->npayload += take;
          } else {
            payload_drop(c);     /* a gap would corrupt it */
          }
        }
      }
      if (nl == NULL)
        return;
      len -= (size_t)(nl + 1 - data);
      data = nl + 1;
      c->seen[k] = 2;            /* line complete */
      if (c->seen[0] == 2 && c->seen[1] == 2) {
        c->seen[0] = c->seen[1] = 0;
        if (c->run)
          run_finish(L, c, NULL, NULL);
      }
      continue;
    }
    {
      /* look for the marker in carry + data */
      char buf[48 + 4096];
      size_t n = c->ncarry[k], take = len < 4096 ? len : 4096, i;
      memcpy(buf, c->carry[k], n);
      memcpy(buf + n, data, take);
      n += take;
      data += take;
      len -= take;
      for (i = 0; i < n; i++) {
        size_t m = n - i < mlen ? n - i : mlen;
        if (memcmp(buf + i, c->mark, m) == 0)
          break;
      }
      /* buf[0..i) is output; buf[i..] is the marker or its start */
      run_output(L, c, s, buf, i);
      if (n - i >= mlen) {
        c->ncarry[k] = 0;
        c->seen[k] = 1;
        /* the rest goes round the loop again as payload */
        if (n - i > mlen) {
          size_t rest = n - i - mlen;
          /* re-feed: put it before the remaining data */
          char *tmp = malloc(rest + len);
          if (tmp == NULL)
            return;
          memcpy(tmp, buf + i + mlen, rest);
          memcpy(tmp + rest, data, len);
          feed(L, c, s, tmp, rest + len);
          free(tmp);
          return;
        }
      } else {
        c->ncarry[k] = n - i;
        memcpy(c->carry[k], buf + i, n - i);
      }
    }
  }
}

static void on_output(void *ud, enum sbx_stream s, unsigned long long off,
                      const char *data, size_t len) {
  struct sbx_ctx *c = ud;
  struct sbx_live_rt *L = live_of(c->box);
  (void)off;
  pthread_mutex_lock(&L->mu);
  feed(L, c, s, data, len);
  pthread_mutex_unlock(&L->mu);
}

static void on_done(void *ud, const struct sbx_exec_result *res,
                    const struct sbx_ctx_result *cr) {
  struct sbx_ctx *c = ud;
  struct sbx_live_rt *L = live_of(c->box);
  struct sbx_task *t;
  (void)res;
  (void)cr;
  pthread_mutex_lock(&L->mu);
  t = c->proc;
  c->proc = NULL;
  c->died = 1;
  c->seen[0] = c->seen[1] = 0;
  c->ncarry[0] = c->ncarry[1] = 0;
  if (c->run)
    run_finish(L, c, c->run->timed_out ? "KeyboardInterrupt"
                                       : "ContextDied",
               c->run->timed_out ? "the run timed out and did not stop "
               "when interrupted: the interpreter was restarted"
               : "the context's interpreter exited; the next run starts "
               "a new one");
  if (c->deleting) {
    /* deleted: nothing refers to it any more */
    for (struct sbx_ctx **pp = &c->box->live.ctx_graveyard; *pp;
         pp = &(*pp)->next) {
      if (*pp == c) {
        *pp = c->next;
        ctx_free(c);
        break;
      }
    }
  }
  pthread_mutex_unlock(&L->mu);
  if (t)
    sbx_task_release(t);
}

/* Starts (or restarts) the interpreter (no lock held). */
static enum ac_code start_interp(struct sbx_ctx *c, struct ac_error *err) {
  static const struct sbx_task_events ev = { on_output, NULL, on_done };
  const char *argv[5];
  const char **env;
  struct sbx_exec_request rq;
  struct sbx_task *t;
  char marker[40], envmark[64];
  size_t n = 0;
  enum ac_code rc;
  unsigned char rnd[8];
  FILE *f = fopen("/dev/urandom", "re");
  if (f == NULL || fread(rnd, 1, sizeof rnd, f) != sizeof rnd) {
    if (f)
      fclose(f);
    return ac_error_set(err, AC_ESYSTEM, "context: no random marker");
  }
  fclose(f);
  snprintf(marker, sizeof marker, "ac%02x%02x%02x%02x%02x%02x%02x%02x",
           rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
  snprintf(envmark, sizeof envmark, "AGENTCUBE_CTX=%s", marker);
  ctx_driver_argv(c->language, argv);
  while (c->env && c->env[n])
    n++;
  env = calloc(n + 2, sizeof *env);
  if (env == NULL)
    return ac_error_set(err, AC_ENOMEM, "context: out of memory");
  for (size_t i = 0; i < n; i++)
    env[i] = c->env[i];
  env[n] = envmark;
  memset(&rq, 0, sizeof rq);
  rq.argv = argv;
  rq.env = env;
  rq.working_dir = c->cwd;
  rq.timeout_ns = 0;             /* lives until deleted */
  snprintf(c->mark, sizeof c->mark, "\036%s ", marker);
  rc = sbx_live_task_start(c->box, &rq, AGP_F_KEEP | AGP_F_STDIN, &ev, c, &t,
                           err);
  free(env);
  if (rc)
    return rc;
  pthread_mutex_lock(&live_of(c->box)->mu);
  if (t->finished) {
    pthread_mutex_unlock(&live_of(c->box)->mu);
    sbx_task_release(t);
    return ac_error_set(err, AC_ESYSTEM, "context: the %s interpreter "
                        "could not start", c->language);
  }
  c->proc = t;
  pthread_mutex_unlock(&live_of(c->box)->mu);
  return AC_OK;
}

/* ---- timeouts (event thread) ---- */

long long sbx_ctx_tick(struct sbx_live_rt *L, struct sbx_box *box,
                       long long now) {
  long long best = now + 3600LL * 1000000000LL;
  (void)L;
  for (struct sbx_ctx *c = box->live.ctxs; c; c = c->next) {
    struct sbx_task *t = c->run;
    if (t == NULL)
      continue;
    if (!t->timed_out && t->deadline && now >= t->deadline) {
      t->timed_out = 1;
      t->kill_at = now + INTERRUPT_GRACE_NS;
      if (c->proc)
        sbx_live_signal(c->proc, SIGINT);
    } else if (t->timed_out && now >= t->kill_at && c->proc &&
               !c->proc->killed) {
      sbx_live_signal(c->proc, SIGKILL);   /* on_done ends the run */
    } else if (t->killed && !t->interrupting && c->proc &&
               !c->proc->killed) {
      sbx_live_signal(c->proc, SIGINT);    /* cancel: interrupt */
      t->interrupting = 1;
      t->kill_at = now + INTERRUPT_GRACE_NS;
    } else if (t->interrupting && now >= t->kill_at && c->proc &&
               !c->proc->killed) {
      sbx_live_signal(c->proc, SIGKILL);
    }
    if (t->timed_out || t->interrupting) {
      /* the kill still to come; once sent, the interpreter's end is an
      ** event of its own (no waking up for it meanwhile) */
      if (t->kill_at > now && t->kill_at < best)
        best = t->kill_at;
    } else if (t->deadline && t->deadline < best) {
      best = t->deadline;
    }
  }
  return best;
}

/* ---- API ---- */

static struct sbx_ctx *find_ctx(struct sbx_box *box, const char *id) {
  for (struct sbx_ctx *c = box->live.ctxs; c; c = c->next)
    if (strcmp(c->id, id) == 0)
      return c;
  return NULL;
}

static void fill(const struct sbx_ctx *c, struct sbx_ctx_info *out) {
  memset(out, 0, sizeof *out);
  snprintf(out->id, sizeof out->id, "%s", c->id);
  snprintf(out->language, sizeof out->language, "%s", c->language);
  out->pid = c->proc ? c->proc->pid : 0;
  out->busy = c->run != NULL;
}

static void ctx_free(struct sbx_ctx *c) {
  free_strv(c->env);
  free(c->cwd);
  free(c->payload);
  free(c);
}

enum ac_code sbx_ctx_create(struct sbx_box *box, const char *language,
                            const char *const *env, const char *working_dir,
                            struct sbx_ctx_info *out, struct ac_error *err) {
  struct sbx_live_rt *L = live_of(box);
  const char *argv[5];
  struct sbx_ctx *c;
  enum ac_code rc;
  size_t n = 0;
  memset(out, 0, sizeof *out);
  if (language == NULL || ctx_driver_argv(language, argv) < 0)
    return ac_error_set(err, AC_EINVAL, "context: unknown language '%s' "
                        "(python, bash or lua)", language ? language : "");
  pthread_mutex_lock(&L->mu);
  for (struct sbx_ctx *x = box->live.ctxs; x; x = x->next)
    n++;
  pthread_mutex_unlock(&L->mu);
  if (n >= MAX_CONTEXTS)
    return ac_error_set(err, AC_ELIMIT, "context: at most %d contexts per "
                        "session", MAX_CONTEXTS);
  c = calloc(1, sizeof *c);
  if (c == NULL)
    return ac_error_set(err, AC_ENOMEM, "context: out of memory");
  c->box = box;
  snprintf(c->language, sizeof c->language, "%s", language);
  c->env = dup_strv(env);
  c->cwd = working_dir ? strdup(working_dir) : NULL;
  if (c->env == NULL || (working_dir && c->cwd == NULL)) {
    ctx_free(c);
    return ac_error_set(err, AC_ENOMEM, "context: out of memory");
  }
  rc = start_interp(c, err);
  if (rc) {
    ctx_free(c);
    return rc;
  }
  pthread_mutex_lock(&L->mu);
  snprintf(c->id, sizeof c->id, "c%u", ++box->live.next_ctx);
  c->next = box->live.ctxs;
  box->live.ctxs = c;
  fill(c, out);
  pthread_mutex_unlock(&L->mu);
  return AC_OK;
}

enum ac_code sbx_ctx_list(struct sbx_box *box, struct sbx_ctx_info **v,
                          size_t *n, struct ac_error *err) {
  struct sbx_live_rt *L = live_of(box);
  size_t k = 0, i = 0;
  *v = NULL;
  *n = 0;
  pthread_mutex_lock(&L->mu);
  for (struct sbx_ctx *c = box->live.ctxs; c; c = c->next)
    k++;
  if (k && (*v = calloc(k, sizeof **v)) == NULL) {
    pthread_mutex_unlock(&L->mu);
    return ac_error_set(err, AC_ENOMEM, "context: out of memory");
  }
  /* oldest first: the list is newest first */
  for (struct sbx_ctx *c = box->live.ctxs; c; c = c->next, i++)
    fill(c, &(*v)[k - 1 - i]);
  *n = k;
  pthread_mutex_unlock(&L->mu);
  return AC_OK;
}

enum ac_code sbx_ctx_delete(struct sbx_box *box, const char *id,
                            struct ac_error *err) {
  struct sbx_live_rt *L = live_of(box);
  struct sbx_ctx *c = NULL;
  pthread_mutex_lock(&L->mu);
  for (struct sbx_ctx **pp = &box->live.ctxs; *pp; pp = &(*pp)->next) {
    if (strcmp((*pp)->id, id) == 0) {
      c = *pp;
      *pp = c->next;
      break;
    }
  }
  if (c == NULL) {
    pthread_mutex_unlock(&L->mu);
    return ac_error_set(err, AC_ENOTFOUND, "context %s: no such context",
                        id);
  }
  c->deleting = 1;
  if (c->run)
    run_finish(L, c, "ContextDeleted", "the context was deleted");
  if (c->proc)
    sbx_live_signal(c->proc, SIGKILL);
  /* on_done still refers to c: park it until the interpreter is gone */
  c->next = box->live.ctx_graveyard;
  box->live.ctx_graveyard = c;
  pthread_mutex_unlock(&L->mu);
  sbx_live_wake(L);
  return AC_OK;
}

enum ac_code sbx_ctx_run_start(struct sbx_box *box, const char *id,
                               const char *code, long long timeout_ns,
                               const struct sbx_task_events *ev, void *ud,
                               const struct sbx_mem_pool *pool,
                               struct sbx_task **out, struct ac_error *err) {
  struct sbx_live_rt *L = live_of(box);
  struct sbx_ctx *c;
  struct sbx_task *t;
  char head[32];
  size_t len = code ? strlen(code) : 0;
  unsigned pid_task;
  int restarted = 0, hl;
  *out = NULL;
  pthread_mutex_lock(&L->mu);
  c = find_ctx(box, id);
  if (c == NULL) {
    pthread_mutex_unlock(&L->mu);
    return ac_error_set(err, AC_ENOTFOUND, "context %s: no such context",
                        id);
  }
  if (c->run) {
    pthread_mutex_unlock(&L->mu);
    return ac_error_set(err, AC_EBUSY, "context %s: a run is in progress",
                        id);
  }
  if (c->proc == NULL) {
    enum ac_code rc;
    pthread_mutex_unlock(&L->mu);
    rc = start_interp(c, err);
    if (rc)
      return rc;
    pthread_mutex_lock(&L->mu);
    restarted = 1;
  }
  restarted |= c->died;
  c->died = 0;
  t = calloc(1, sizeof *t);
  if (t == NULL) {
    pthread_mutex_unlock(&L->mu);
    return ac_error_set(err, AC_ENOMEM, "context: out of memory");
  }
  pthread_cond_init(&t->cv, NULL);
  t->box = box;
  if (ev)
    t->ev = *ev;
  t->ud = ud;
  t->refs = 2;
  t->failed = restarted;         /* reported as restarted */
  t->out.max = t->err.max = DEFAULT_MAX_OUTPUT;
  t->out.pool = t->err.pool = pool;
  t->timeout_ns = timeout_ns;
  t->deadline = timeout_ns > 0 ? sbxu_now_ns() + timeout_ns : 0;
  clock_gettime(CLOCK_REALTIME, &t->start);
  c->run = t;
  c->payload = NULL;
  c->npayload = 0;
  c->payload_over = 0;
  pid_task = c->proc ? c->proc->id : 0;
  sbx_live_activate(box);
  pthread_mutex_unlock(&L->mu);
  pthread_mutex_lock(&box->mu);
  box->running++;
  pthread_mutex_unlock(&box->mu);
  hl = snprintf(head, sizeof head, "%zu\n", len);
  if (pid_task == 0 ||
      sbx_live_stdin(box, pid_task, head, (size_t)hl, 0) < 0 ||
      (len && sbx_live_stdin(box, pid_task, code, len, 0) < 0)) {
    pthread_mutex_lock(&L->mu);
    if (c->proc)
      sbx_live_signal(c->proc, SIGKILL);   /* on_done ends the run */
    pthread_mutex_unlock(&L->mu);
  }
  sbx_live_wake(L);
  *out = t;
  return AC_OK;
}

void sbx_ctx_free_all(struct sbx_box *box) {
  struct sbx_ctx *lists[2] = { box->live.ctxs, box->live.ctx_graveyard };
  for (int i = 0; i < 2; i++) {
    struct sbx_ctx *c = lists[i];
    while (c) {
      struct sbx_ctx *n = c->next;
      ctx_free(c);
      c = n;
    }
  }
  box->live.ctxs = box->live.ctx_graveyard = NULL;
}
