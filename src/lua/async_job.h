/*
** async_job.h -- what the files of agentcube.async share (private to the
** Lua binding): a job and the per-state engine it runs on.
**
**   async.c       the Lua API: submit, waits, job methods, the module
**   async_job.c   jobs on the engine: callbacks, auth providers, starting,
**                 settling, driving, cancelling, interrupts
**   async_args.c  submit's arguments, read into a job with the blocking
**                 methods' own readers
*/
#ifndef AGENTCUBE_ASYNC_JOB_H
#define AGENTCUBE_ASYNC_JOB_H

#include "aclua.h"

#define JOB_MT     "agentcube.async.Job"
#define ANCHOR_KEY "agentcube.async.unsettled"   /* registry: job -> ud */
#define SLICE_MS   50          /* interrupts and deadlines checked this often */

enum op { OP_EXEC, OP_RUN, OP_WRITE, OP_UPLOAD, OP_DOWNLOAD, OP_LIST,
          OP_READ, OP_STOP, OP_CREATE, OP_EXT };

enum jstate { J_QUEUED, J_RUNNING, J_DONE, J_CANCELLED };

/* User values of a job. */
#define UV_TARGET 1            /* the session it runs on (anchors it) */
#define UV_ANCHOR 2            /* table: arguments, callbacks, results */

struct astate;

struct job {
  struct astate *st;
  struct job *prev, *next;            /* st's list of unsettled jobs */
  enum op op;
  const char *name;                   /* op name (static or anchored) */
  enum jstate state;
  ac_job *aj;                         /* the engine's job once started */
  struct aclua_native *n;             /* the session's native half */
  int counted;                        /* counts in n->jobs */
  int slot;                           /* counts in st->running */
  int cancelled;                      /* by job:cancel / interrupt */
  enum ac_code cancel_code;           /* cancelled from a callback */
  /* arguments: pointers into values the anchor table holds */
  const char *line;
  const char *const *argv;
  size_t argc;
  struct ac_exec_opts o;
  int check;
  const char *a, *b, *data;
  size_t len;
  struct ac_ext_call ext;
  double stop_limit;                  /* stop: seconds, 0: none */
  double deadline;                    /* async.now() the stop must end by */
  ac_client *client;                  /* create: borrowed, anchored */
  struct ac_session_opts so;
  int has_out, has_err, has_progress;
  int cb_failed;                      /* anchor.cb_error holds an error */
  /* outcome */
  enum ac_code rc;
  struct ac_error err;
  struct ac_exec_result exec;
  struct ac_file_list files;
  char *bytes;
  size_t nbytes;
  double t_queued, t_started, t_finished;
};

struct astate {
  ac_engine *e;
  lua_State *L;                       /* while the engine runs callbacks */
  int polling;                        /* no nested drive from a callback */
  struct job *head, *tail;            /* unsettled jobs, oldest first */
  int running, max_running;
  int settled;                        /* jobs settled (a counter) */
  volatile sig_atomic_t interrupt;    /* async.interrupt() */
};

struct ljob {
  struct job *j;                      /* owned; NULL once released */
};

/* async_job.c */

/* seconds on CLOCK_MONOTONIC (async.now) */
ACLUA_API double acasync_now(void);

/* Pushes the job userdata of j (anchored while unsettled), or nil;
** returns whether it was found. [-0, +1] */
ACLUA_API int acasync_push_job_ud(lua_State *L, const struct job *j);

/* [job ud, plan]: reads a plan's session and extension call into the job
** and anchors the plan (a lua_CFunction: call it protected or raising). */
ACLUA_API int acasync_read_plan(lua_State *L);

/* Calls agentcube.<hook>(value at idx, or nothing when idx is 0),
** protected (init.lua's GC pressure bookkeeping). */
ACLUA_API void acasync_module_hook(lua_State *L, const char *hook, int idx);

/* Starts queued jobs while configure's limit allows. */
ACLUA_API void acasync_start_queued(lua_State *L, struct astate *st);

/* One step: starts what may start, moves every transfer for up to ms
** (callbacks run here), settles what ended. Returns jobs settled. */
ACLUA_API int acasync_drive(lua_State *L, struct astate *st, long ms);

/* Cancels a queued or running job, which then ends with code. */
ACLUA_API void acasync_cancel_job(lua_State *L, struct job *j,
                                  enum ac_code code, const char *why);

/* A Ctrl-C caught during a wait, or async.interrupt(): every job ends;
** returns 1 when there was one (the wait then raises). */
ACLUA_API int acasync_take_interrupt(lua_State *L, struct astate *st);
ACLUA_API int acasync_raise_interrupt(lua_State *L);

/* Raises when called from inside a job callback (no nested waits). */
ACLUA_API int acasync_check_not_polling(lua_State *L, struct astate *st);

/* Takes an unsettled job off the state's list, and gives its session
** back (L NULL: without running a deferred close), for __gc. */
ACLUA_API void acasync_unlink_job(struct job *j);
ACLUA_API void acasync_release_session(lua_State *L, struct job *j,
                                       int ud_idx);

/* async_args.c */

/* Reads the arguments of a native op from args (a private copy) into j;
** scratch values are left on the stack for the caller to anchor. Raises
** for misuse, like the blocking methods. */
ACLUA_API void acasync_read_args(lua_State *L, int args, int anchor,
                                 struct job *j);

/* Stores the callback at stack index idx (0: none) as anchor[key]. */
ACLUA_API void acasync_keep_fn(lua_State *L, int anchor, int idx,
                               const char *key, int *flag);

/* Pushes the plan builder of the Lua op named at idx (agentcube._plans);
** 0 with nothing pushed when there is none. */
ACLUA_API int acasync_push_lua_op(lua_State *L, int idx);

#endif
