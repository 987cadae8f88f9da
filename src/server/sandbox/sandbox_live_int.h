/*
** sandbox_live_int.h -- what sandbox_live.c (the live sandbox, its event
** thread, commands) shares with sandbox_proc.c (background processes).
** Not a public header.
*/
#ifndef AGENTCUBE_SANDBOX_LIVE_INT_H
#define AGENTCUBE_SANDBOX_LIVE_INT_H

#include "sandbox_int.h"
#include "sandbox_live.h"
#include "agent_proto.h"

#include <pthread.h>

struct sbx_proc;

struct sbx_task {
  struct sbx_box *box;
  struct sbx_task *next;         /* in box->live.tasks while in flight */
  unsigned id;
  struct sbx_task_events ev;
  void *ud;
  int refs;                      /* the caller's handle + in flight */
  int released, finished, cb_running;
  int started, exited, killed, timed_out, never, failed, oom;
  int keep;                      /* a background process's main task */
  int pid;                       /* inside the sandbox, once started */
  int pending_sig;               /* signalled before it started: sent
                                    when the agent reports the start */
  int interrupting;              /* a context run: SIGINT sent */
  int status;
  long long deadline, kill_at;   /* CLOCK_MONOTONIC ns; 0: none */
  long long timeout_ns;
  struct sbx_obuf out, err;      /* buffered mode and caps */
  unsigned long long offset;     /* combined output delivered */
  struct timespec start;
  pthread_cond_t cv;             /* release waits for a running callback */
  /* a process watch (not a command): */
  struct sbx_proc *proc;         /* the watched process, or NULL */
  struct sbx_task *wnext;        /* in proc->watches */
  unsigned long long pos;        /* next offset to deliver */
  int follow, live;              /* live: caught up, gets new output */
};

/* The boxes with a live sandbox, a launch request, watches or contexts:
** the ones the event loop looks at. */
struct boxset {
  struct sbx_box **v;
  size_t n, cap;
};

struct sbx_live_rt {
  struct sbx_runtime *rt;
  pthread_mutex_t mu;
  pthread_cond_t cv;             /* launches, downs, epochs */
  pthread_t thread;
  int epfd, wakefd;
  int stop;
  unsigned long long epoch;      /* turns of the loop completed */
  struct sbx_box **want;         /* boxes waiting for a launch */
  size_t nwant, capwant;
  struct { struct sbx_box *box; unsigned id; } *graves;  /* c<id> to rmdir */
  size_t ngraves, capgraves;
  struct boxset active;
  char rbuf[AGP_MAX_MSG + 1];    /* one agent message */
};


/* Starts a command task (flags: AGP_F_*); see sbx_exec_start. */
enum ac_code sbx_live_task_start(struct sbx_box *box,
                                 const struct sbx_exec_request *req,
                                 unsigned flags,
                                 const struct sbx_task_events *ev, void *ud,
                                 struct sbx_task **out, struct ac_error *err);

/* Makes the event thread look at the box (its tasks and watches) even
** while its sandbox is down (mu held). */
void sbx_live_activate(struct sbx_box *box);

/* Wakes the event thread. */
void sbx_live_wake(struct sbx_live_rt *L);

/* Calls fn(ud...) for task t with L->mu dropped, marking the callback as
** running so that sbx_task_release waits for it (mu held on entry and
** return). */
void sbx_live_output(struct sbx_live_rt *L, struct sbx_task *t,
                     enum sbx_stream s, unsigned long long off,
                     const char *data, size_t len);
void sbx_live_done(struct sbx_live_rt *L, struct sbx_task *t,
                   const struct sbx_exec_result *res);
void sbx_live_unref(struct sbx_task *t);

/* Signals a command's process group through the agent; SIGKILL kills its
** whole tree (mu held). */
void sbx_live_signal(struct sbx_task *t, int sig);

/* Sends stdin data to a command (no lock held; the box's send lock is
** taken). Returns 0 or -1. */
int sbx_live_stdin(struct sbx_box *box, unsigned id, const void *data,
                   size_t len, int eof);

/* ---- sandbox_proc.c ---- */

/* Delivers what new watches are owed (event thread, mu held). */
void sbx_proc_pump(struct sbx_live_rt *L, struct sbx_box *box);
/* Frees the box's processes (box free, nothing runs any more). */
void sbx_proc_free_all(struct sbx_box *box);

/* ---- sandbox_ctx.c ---- */

/* Context run timeouts and interrupts (event thread, mu held); returns
** the nearest deadline. */
long long sbx_ctx_tick(struct sbx_live_rt *L, struct sbx_box *box,
                       long long now);
/* Frees the box's contexts (box free). */
void sbx_ctx_free_all(struct sbx_box *box);

#endif
