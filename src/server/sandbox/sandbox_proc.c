/*
** sandbox_proc.c -- background processes of a box (sandbox_live.h).
**
** A background process is a command task started with AGP_F_KEEP (its
** tree is not killed when its main process exits, and it has no timeout
** unless asked) whose events feed the process record: output goes into a
** bounded ring (oldest chunks dropped first), the exit into the record.
** Watches are tasks of their own that replay the ring from an offset and
** then, with follow, receive new output live; all their events are
** delivered by the event thread, like every other task's.
*/
#include "sandbox_live_int.h"
#include "sandbox_util.h"
#include "agent_proto.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_RING (1u << 20)
/* Processes a box remembers (running ones are never forgotten; the
** oldest ended ones go first). */
#define MAX_PROCS 256

struct sbx_chunk {
  struct sbx_chunk *next;
  unsigned long long off;        /* combined offset of data[0] */
  enum sbx_stream stream;
  size_t len;
  char data[];
};

struct sbx_proc {
  struct sbx_proc *next;         /* box list, oldest first */
  struct sbx_box *box;
  unsigned id;
  char **argv;
  enum sbx_proc_state state;
  struct sbx_task *task;         /* the main task while it runs */
  int early_done;                /* ended before sbx_proc_start took it */
  int has_stdin;
  struct sbx_exec_result fin;    /* once ended: exit, flags, times */
  struct timespec start;
  unsigned long long total;      /* bytes produced */
  size_t kept, cap;
  struct sbx_chunk *head, *tail; /* the ring */
};

static struct sbx_live_rt *live_of(struct sbx_box *box) {
  return box->rt->live;
}

static char **dup_argv(const char *const *argv) {
  size_t n = 0;
  char **v;
  while (argv[n])
    n++;
  v = calloc(n + 1, sizeof *v);
  if (v == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    v[i] = strdup(argv[i]);
    if (v[i] == NULL) {
      for (size_t j = 0; j < i; j++)
        free(v[j]);
      free(v);
      return NULL;
    }
  }
  return v;
}

static void free_argv(char **v) {
  for (size_t i = 0; v && v[i]; i++)
    free(v[i]);
  free(v);
}

static void proc_free(struct sbx_proc *p) {
  struct sbx_chunk *c = p->head;
  while (c) {
    struct sbx_chunk *n = c->next;
    free(c);
    c = n;
  }
  free_argv(p->argv);
  free(p);
}

static unsigned long long kept_from(const struct sbx_proc *p) {
  return p->head ? p->head->off : p->total;
}

/* Adds output to the ring, dropping the oldest chunks past the cap (a
** chunk larger than the whole ring keeps only its tail). */
static void ring_add(struct sbx_proc *p, enum sbx_stream s,
                     const char *data, size_t len) {
  unsigned long long off = p->total;
  struct sbx_chunk *c;
  p->total += len;
  if (len > p->cap) {
    data += len - p->cap;
    off += len - p->cap;
    len = p->cap;
  }
  while (p->head && p->kept + len > p->cap) {
    struct sbx_chunk *h = p->head;
    size_t excess = p->kept + len - p->cap;
    if (excess < h->len) {
      /* only the oldest bytes of the oldest chunk go */
      memmove(h->data, h->data + excess, h->len - excess);
      h->len -= excess;
      h->off += excess;
      p->kept -= excess;
      break;
    }
    p->head = h->next;
    if (p->head == NULL)
      p->tail = NULL;
    p->kept -= h->len;
    free(h);
  }
  c = malloc(sizeof *c + len);
  if (c == NULL)
    return;                      /* lost: watchers see a gap as dropped */
  c->next = NULL;
  c->off = off;
  c->stream = s;
  c->len = len;
  memcpy(c->data, data, len);
  if (p->tail)
    p->tail->next = c;
  else
    p->head = c;
  p->tail = c;
  p->kept += len;
}

/* Delivers the ring from w->pos to its end (mu held; dropped around each
** callback; only the event thread changes the ring, so it stays). */
static void replay(struct sbx_live_rt *L, struct sbx_task *w) {
  struct sbx_proc *p = w->proc;
  unsigned long long from = kept_from(p);
  if (w->pos < from) {
    if (!w->released && w->ev.dropped) {
      unsigned long long pos = w->pos;
      w->cb_running = 1;
      pthread_mutex_unlock(&L->mu);
      w->ev.dropped(w->ud, pos, from - pos);
      pthread_mutex_lock(&L->mu);
      w->cb_running = 0;
      pthread_cond_broadcast(&w->cv);
    }
    w->pos = from;
  }
  for (struct sbx_chunk *c = p->head; c; c = c->next) {
    size_t skip;
    if (c->off + c->len <= w->pos)
      continue;
    if (c->off > w->pos) {       /* a chunk lost to memory pressure */
      if (!w->released && w->ev.dropped) {
        unsigned long long pos = w->pos;
        w->cb_running = 1;
        pthread_mutex_unlock(&L->mu);
        w->ev.dropped(w->ud, pos, c->off - pos);
        pthread_mutex_lock(&L->mu);
        w->cb_running = 0;
        pthread_cond_broadcast(&w->cv);
      }
      w->pos = c->off;
    }
    skip = (size_t)(w->pos - c->off);
    w->pos = c->off + c->len;
    sbx_live_output(L, w, c->stream, c->off + skip, c->data + skip,
                    c->len - skip);
  }
  if (w->pos < p->total)
    w->pos = p->total;
}

/* Ends a watch: done with the process's result when it has ended, NULL
** otherwise; the watch leaves the list (mu held). */
static void watch_end(struct sbx_live_rt *L, struct sbx_task *w) {
  struct sbx_proc *p = w->proc;
  for (struct sbx_task **pp = &p->box->live.watches; *pp;
       pp = &(*pp)->wnext) {
    if (*pp == w) {
      *pp = w->wnext;
      break;
    }
  }
  w->finished = 1;
  if (!w->released && w->ev.done) {
    struct sbx_exec_result res;
    int ended = p->state != SBX_PROC_RUNNING;
    if (ended) {
      res = p->fin;
      res.out = res.err = (char *)"";
      res.out_len = res.err_len = 0;
    }
    w->cb_running = 1;
    pthread_mutex_unlock(&L->mu);
    w->ev.done(w->ud, ended ? &res : NULL, NULL);
    pthread_mutex_lock(&L->mu);
    w->cb_running = 0;
    pthread_cond_broadcast(&w->cv);
  }
  sbx_live_unref(w);
}

void sbx_proc_pump(struct sbx_live_rt *L, struct sbx_box *box) {
  int again = 1;
  while (again) {
    again = 0;
    for (struct sbx_task *w = box->live.watches; w; w = w->wnext) {
      if (w->killed || (!w->live && (replay(L, w), 1) &&
                        (w->proc->state != SBX_PROC_RUNNING ||
                         !w->follow))) {
        watch_end(L, w);
        again = 1;               /* the list changed */
        break;
      }
      w->live = 1;
    }
  }
}

/* ---- the main task's events ---- */

static void on_output(void *ud, enum sbx_stream s, unsigned long long off,
                      const char *data, size_t len) {
  struct sbx_proc *p = ud;
  struct sbx_live_rt *L = live_of(p->box);
  (void)off;
  pthread_mutex_lock(&L->mu);
  ring_add(p, s, data, len);
  for (struct sbx_task *w = p->box->live.watches; w; w = w->wnext)
    if (w->proc == p && w->live && !w->killed)
      replay(L, w);
  pthread_mutex_unlock(&L->mu);
}

static void on_done(void *ud, const struct sbx_exec_result *res,
                    const struct sbx_ctx_result *ctx) {
  struct sbx_proc *p = ud;
  struct sbx_live_rt *L = live_of(p->box);
  struct sbx_task *t;
  (void)ctx;
  pthread_mutex_lock(&L->mu);
  p->fin = *res;
  p->fin.out = p->fin.err = NULL;
  p->fin.out_truncated = p->fin.err_truncated = 0;
  t = p->task;
  if (res->timed_out)
    p->state = SBX_PROC_TIMED_OUT;
  else if (t ? (t->killed || (!t->exited && !t->failed))
             : res->exit_code == 137)
    p->state = SBX_PROC_KILLED;
  else
    p->state = SBX_PROC_EXITED;  /* a start that failed too: exit 1 */
  p->has_stdin = 0;
  p->task = NULL;
  if (t == NULL)
    p->early_done = 1;           /* sbx_proc_start releases the task */
  /* live watches end now; pending ones at their replay */
  for (int again = 1; again;) {
    again = 0;
    for (struct sbx_task *w = p->box->live.watches; w; w = w->wnext) {
      if (w->proc == p && w->live) {
        watch_end(L, w);
        again = 1;
        break;
      }
    }
  }
  pthread_mutex_unlock(&L->mu);
  if (t)
    sbx_task_release(t);
}

/* ---- API ---- */

static void fill_info(const struct sbx_proc *p, struct sbx_proc_info *out,
                      char **argv) {
  memset(out, 0, sizeof *out);
  out->id = p->id;
  out->pid = p->task ? p->task->pid : 0;
  out->argv = argv;
  out->state = p->state;
  out->exit_code = p->state == SBX_PROC_RUNNING ? 0 : p->fin.exit_code;
  out->start = p->start;
  if (p->state != SBX_PROC_RUNNING)
    out->end = p->fin.end;
  out->output_bytes = p->total;
  out->kept_from = kept_from(p);
  out->has_stdin = p->has_stdin;
}

static struct sbx_proc *find_proc(struct sbx_box *box, unsigned id) {
  for (struct sbx_proc *p = box->live.procs; p; p = p->next)
    if (p->id == id)
      return p;
  return NULL;
}

/* Forgets the oldest ended processes past MAX_PROCS (mu held). */
static void prune(struct sbx_box *box) {
  size_t n = 0;
  for (struct sbx_proc *p = box->live.procs; p; p = p->next)
    n++;
  for (struct sbx_proc **pp = &box->live.procs; *pp && n >= MAX_PROCS;) {
    struct sbx_proc *p = *pp;
    int watched = 0;
    for (struct sbx_task *w = box->live.watches; w; w = w->wnext)
      watched |= w->proc == p;
    if (p->state != SBX_PROC_RUNNING && !watched) {
      *pp = p->next;
      proc_free(p);
      n--;
    } else {
      pp = &p->next;
    }
  }
}

enum ac_code sbx_proc_start(struct sbx_box *box,
                            const struct sbx_exec_request *req,
                            int with_stdin, struct sbx_proc_info *out,
                            struct ac_error *err) {
  static const struct sbx_task_events ev = { on_output, NULL, on_done };
  struct sbx_live_rt *L = live_of(box);
  struct sbx_proc *p;
  struct sbx_task *t;
  enum ac_code rc;
  char **argv;

  memset(out, 0, sizeof *out);
  if (req->argv == NULL || req->argv[0] == NULL)
    return ac_error_set(err, AC_EINVAL, "process: empty command");
  p = calloc(1, sizeof *p);
  if (p == NULL || (p->argv = dup_argv(req->argv)) == NULL ||
      (argv = dup_argv(req->argv)) == NULL) {
    if (p)
      free_argv(p->argv);
    free(p);
    return ac_error_set(err, AC_ENOMEM, "process: out of memory");
  }
  p->box = box;
  p->cap = box->limits.proc_output_bytes ? box->limits.proc_output_bytes
                                         : DEFAULT_RING;
  p->state = SBX_PROC_RUNNING;
  p->has_stdin = with_stdin != 0;
  clock_gettime(CLOCK_REALTIME, &p->start);
  pthread_mutex_lock(&L->mu);
  prune(box);
  pthread_mutex_unlock(&L->mu);
  rc = sbx_live_task_start(box, req, AGP_F_KEEP |
                           (with_stdin ? AGP_F_STDIN : 0u), &ev, p, &t, err);
  if (rc) {
    free_argv(argv);
    proc_free(p);
    return rc;
  }
  pthread_mutex_lock(&L->mu);
  p->id = ++box->live.next_proc;
  if (!p->early_done)
    p->task = t;
  /* appended, so the list stays oldest first */
  {
    struct sbx_proc **pp = &box->live.procs;
    while (*pp)
      pp = &(*pp)->next;
    *pp = p;
  }
  fill_info(p, out, argv);
  pthread_mutex_unlock(&L->mu);
  if (p->early_done)
    sbx_task_release(t);         /* it ended before we knew it */
  return AC_OK;
}

enum ac_code sbx_proc_list(struct sbx_box *box, struct sbx_proc_info **v,
                           size_t *n, struct ac_error *err) {
  struct sbx_live_rt *L = live_of(box);
  size_t k = 0, i = 0;
  *v = NULL;
  *n = 0;
  pthread_mutex_lock(&L->mu);
  for (struct sbx_proc *p = box->live.procs; p; p = p->next)
    k++;
  if (k) {
    *v = calloc(k, sizeof **v);
    if (*v == NULL) {
      pthread_mutex_unlock(&L->mu);
      return ac_error_set(err, AC_ENOMEM, "process: out of memory");
    }
  }
  for (struct sbx_proc *p = box->live.procs; p; p = p->next, i++) {
    char **argv = dup_argv((const char *const *)p->argv);
    if (argv == NULL) {
      pthread_mutex_unlock(&L->mu);
      sbx_proc_list_free(*v, i);
      *v = NULL;
      return ac_error_set(err, AC_ENOMEM, "process: out of memory");
    }
    fill_info(p, &(*v)[i], argv);
  }
  *n = k;
  pthread_mutex_unlock(&L->mu);
  return AC_OK;
}

enum ac_code sbx_proc_get(struct sbx_box *box, unsigned id,
                          struct sbx_proc_info *out, struct ac_error *err) {
  struct sbx_live_rt *L = live_of(box);
  struct sbx_proc *p;
  char **argv;
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&L->mu);
  p = find_proc(box, id);
  if (p == NULL) {
    pthread_mutex_unlock(&L->mu);
    return ac_error_set(err, AC_ENOTFOUND, "process %u: no such process",
                        id);
  }
  argv = dup_argv((const char *const *)p->argv);
  if (argv == NULL) {
    pthread_mutex_unlock(&L->mu);
    return ac_error_set(err, AC_ENOMEM, "process: out of memory");
  }
  fill_info(p, out, argv);
  pthread_mutex_unlock(&L->mu);
  return AC_OK;
}

void sbx_proc_info_free(struct sbx_proc_info *p) {
  if (p == NULL)
    return;
  free_argv(p->argv);
  p->argv = NULL;
}

void sbx_proc_list_free(struct sbx_proc_info *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    sbx_proc_info_free(&v[i]);
  free(v);
}

enum ac_code sbx_proc_signal(struct sbx_box *box, unsigned id, int sig,
                             struct ac_error *err) {
  struct sbx_live_rt *L = live_of(box);
  struct sbx_proc *p;
  if (sig <= 0 || sig >= 65)
    return ac_error_set(err, AC_EINVAL, "process %u: bad signal %d", id,
                        sig);
  pthread_mutex_lock(&L->mu);
  p = find_proc(box, id);
  if (p == NULL) {
    pthread_mutex_unlock(&L->mu);
    return ac_error_set(err, AC_ENOTFOUND, "process %u: no such process",
                        id);
  }
  if (p->task)
    sbx_live_signal(p->task, sig);
  pthread_mutex_unlock(&L->mu);
  sbx_live_wake(L);
  return AC_OK;
}

enum ac_code sbx_proc_write(struct sbx_box *box, unsigned id,
                            const void *data, size_t len, int eof,
                            struct ac_error *err) {
  struct sbx_live_rt *L = live_of(box);
  struct sbx_proc *p;
  unsigned tid;
  pthread_mutex_lock(&L->mu);
  p = find_proc(box, id);
  if (p == NULL) {
    pthread_mutex_unlock(&L->mu);
    return ac_error_set(err, AC_ENOTFOUND, "process %u: no such process",
                        id);
  }
  if (!p->has_stdin || p->task == NULL) {
    pthread_mutex_unlock(&L->mu);
    return ac_error_set(err, AC_EBUSY, "process %u: stdin is closed", id);
  }
  tid = p->task->id;
  if (eof)
    p->has_stdin = 0;
  pthread_mutex_unlock(&L->mu);
  if (sbx_live_stdin(box, tid, data, len, eof) < 0)
    return ac_error_set(err, AC_ECLOSED, "process %u: the sandbox does "
                        "not take input", id);
  return AC_OK;
}

enum ac_code sbx_proc_watch(struct sbx_box *box, unsigned id,
                            unsigned long long offset, int follow,
                            const struct sbx_task_events *ev, void *ud,
                            struct sbx_task **out, struct ac_error *err) {
  struct sbx_live_rt *L = live_of(box);
  struct sbx_proc *p;
  struct sbx_task *w;
  *out = NULL;
  w = calloc(1, sizeof *w);
  if (w == NULL)
    return ac_error_set(err, AC_ENOMEM, "process: out of memory");
  pthread_cond_init(&w->cv, NULL);
  w->box = box;
  if (ev)
    w->ev = *ev;
  w->ud = ud;
  w->refs = 2;
  w->pos = offset;
  w->follow = follow != 0;
  pthread_mutex_lock(&box->mu);
  if (box->closing) {
    pthread_mutex_unlock(&box->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
    return ac_error_set(err, AC_ECLOSED, "process: the box is closing");
  }
  box->running++;
  pthread_mutex_unlock(&box->mu);
  pthread_mutex_lock(&L->mu);
  p = find_proc(box, id);
  if (p == NULL) {
    pthread_mutex_unlock(&L->mu);
    pthread_mutex_lock(&box->mu);
    if (--box->running == 0)
      pthread_cond_broadcast(&box->cv);
    pthread_mutex_unlock(&box->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
    return ac_error_set(err, AC_ENOTFOUND, "process %u: no such process",
                        id);
  }
  w->proc = p;
  w->wnext = box->live.watches;
  box->live.watches = w;
  sbx_live_activate(box);
  pthread_mutex_unlock(&L->mu);
  sbx_live_wake(L);
  *out = w;
  return AC_OK;
}

void sbx_proc_free_all(struct sbx_box *box) {
  struct sbx_proc *p = box->live.procs;
  while (p) {
    struct sbx_proc *n = p->next;
    proc_free(p);
    p = n;
  }
  box->live.procs = NULL;
}
