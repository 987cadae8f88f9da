/*
** async.c -- agentcube.async: every operation as a job on one libagentcube
** engine per Lua state, driven from the calling thread. README ("The Lua
** API", agentcube.async) documents the Lua side; in short:
**
**   async.submit(target, op, args) -> job
**   async.wait_any(jobs [, timeout_ms]) -> job, index | nil
**   async.poll([timeout_ms]) -> jobs finished during the call
**   async.fd() -> the engine's descriptor (readable when a job has news)
**   async.interrupt()     end every job; a wait raises EINTERRUPTED
**   async.supported(session) -> true | false, reason
**   async.now() -> seconds on a monotonic clock
**   async.configure{ threads = n } -> previous n (most jobs running)
**   job:result() job:cancel() job:state() job:times()
**
** No threads. A job is started on the engine at once (or queued while
** configure's limit of running jobs is reached); nothing moves and no
** callback runs except inside async.poll, async.wait_any and job:result,
** on the thread that calls them. That is also where a Lua auth provider
** runs, so sessions with one can run jobs too.
**
** Arguments and results are the blocking methods' own (session.c): the
** same option readers (so the same misuse messages and agentcube.Errors),
** the same result tables. The operations the Lua layer builds on the local
** runtime's extensions (spawn, contexts, file operations) are plans that
** init.lua defines (agentcube._plans): plan = op(target, args) gives
** { session =, ext =, call =, finish = fn(json) -> value [, next plan],
** catch = fn(err) -> value }; ci:spawn and friends run the same plans
** through ci:_ext.
**
** Lifetime. A job userdata owns its native half. Until it is settled (its
** outcome recorded, its session released) it is anchored in the registry,
** so a job dropped by its caller still runs to the end (a fire-and-forget
** "stop" does) and its callbacks can find their functions. A settled job
** is an ordinary value: __gc frees it. __close cancels a job still
** running. The job anchors its target session (user value 1), so the
** session (and its ac_session, which the engine borrows) outlives it; at
** lua_close jobs are finalized before the older sessions they anchor.
**
** Sessions. Jobs count on their session (aclua_native.jobs): while any is
** queued or running, a blocking method on that session raises EBUSY naming
** the job, and stop() / <close> are deferred until the last one settles.
** Several jobs may run on one session at once (the engine allows it).
*/
#include "async.h"
#include "aclua.h"

#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STATE_MT   "agentcube.async.state"
#define STATE_KEY  "agentcube.async.instance"    /* registry */
#define JOB_MT     "agentcube.async.Job"
#define ANCHOR_KEY "agentcube.async.unsettled"   /* registry: job -> ud */

#define SLICE_MS   50          /* interrupts and deadlines checked this often */

enum op { OP_EXEC, OP_RUN, OP_WRITE, OP_UPLOAD, OP_DOWNLOAD, OP_LIST,
          OP_READ, OP_STOP, OP_CREATE, OP_EXT };
static const char *const op_names[] = {
  "exec", "run_code", "write", "upload", "download", "list", "read",
  "stop", "create", NULL
};

enum jstate { J_QUEUED, J_RUNNING, J_DONE, J_CANCELLED };
static const char *const state_names[] = {
  "queued", "running", "done", "cancelled"
};

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

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct astate *get_state(lua_State *L) {
  return luaL_checkudata(L, lua_upvalueindex(1), STATE_MT);
}

static struct ljob *check_job(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, JOB_MT);
}

/* Pushes the job userdata of j (anchored while unsettled), or nil. */
static int push_job_ud(lua_State *L, const struct job *j) {
  lua_getfield(L, LUA_REGISTRYINDEX, ANCHOR_KEY);
  lua_rawgetp(L, -1, j);
  lua_remove(L, -2);
  return !lua_isnil(L, -1);
}

/* ---------------------------------------------------------------------- */
/* Engine callbacks: on the calling thread, inside ac_engine_poll.         */

/* [job ud, key, arg1 (light data or integer), arg2]: calls the callback
** anchor[key] with the chunk as a string, or (done, total). Protected. */
static int call_callback(lua_State *L) {
  const char *key = lua_tostring(L, 2);
  lua_getiuservalue(L, 1, UV_ANCHOR);
  lua_getfield(L, -1, key);
  if (strcmp(key, "on_progress") == 0) {
    lua_pushvalue(L, 3);
    lua_pushvalue(L, 4);
  } else {
    lua_pushlstring(L, lua_touserdata(L, 3), (size_t)lua_tointeger(L, 4));
  }
  lua_call(L, 2 - (strcmp(key, "on_progress") != 0), 0);
  return 0;
}

/* Keeps the error at the top (popped) as the job's failure and cancels
** it: the callback's error is the job's result. anchor.cb_error exists
** from submit on, so storing it does not allocate. */
static void callback_failed(lua_State *L, struct job *j) {
  if (push_job_ud(L, j)) {
    lua_getiuservalue(L, -1, UV_ANCHOR);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "cb_error");
    lua_pop(L, 2);
  } else {
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  j->cb_failed = 1;
  ac_job_cancel(j->aj);
}

static void deliver(struct job *j, const char *key, const void *p,
                    lua_Integer a, lua_Integer b, int progress) {
  lua_State *L = j->st->L;
  if (L == NULL || j->cb_failed || !lua_checkstack(L, 8))
    return;
  lua_pushcfunction(L, call_callback);
  if (!push_job_ud(L, j)) {
    lua_pop(L, 2);
    return;
  }
  lua_pushstring(L, key);
  if (progress) {
    lua_pushinteger(L, a);
    lua_pushinteger(L, b);
  } else {
    lua_pushlightuserdata(L, (void *)p);
    lua_pushinteger(L, a);
  }
  if (lua_pcall(L, 4, 0, 0) != LUA_OK)
    callback_failed(L, j);
}

static void on_output(void *ud, ac_job *aj, enum ac_stream stream,
                      const char *data, size_t len) {
  struct job *j = ud;
  (void)aj;
  if (stream == AC_STREAM_STDOUT ? j->has_out : j->has_err)
    deliver(j, stream == AC_STREAM_STDOUT ? "on_stdout" : "on_stderr", data,
            (lua_Integer)len, 0, 0);
}

static void on_progress(void *ud, ac_job *aj, long long done,
                        long long total) {
  struct job *j = ud;
  (void)aj;
  if (j->has_progress)
    deliver(j, "on_progress", NULL, (lua_Integer)done,
            (lua_Integer)(total < 0 ? 0 : total), 1);
}

/* ---------------------------------------------------------------------- */
/* Auth providers: a Lua provider runs inside engine calls, on this thread */

#define MAX_PROVIDERS 16

struct providers {
  int count;
  struct aclua_authcb *cb[MAX_PROVIDERS];
  struct aclua_authcb saved[MAX_PROVIDERS];
};

/* Gives n's provider this thread and two stack slots (fn, error). */
static void provider_add(lua_State *L, struct providers *pv,
                         const struct aclua_native *n) {
  int i;
  if (n == NULL || n->cb == NULL || pv->count == MAX_PROVIDERS ||
      !lua_checkstack(L, 3))
    return;
  for (i = 0; i < pv->count; i++)
    if (pv->cb[i] == n->cb)
      return;
  pv->cb[pv->count] = n->cb;
  pv->saved[pv->count] = *n->cb;
  lua_rawgeti(L, LUA_REGISTRYINDEX, n->provider_ref);
  lua_pushnil(L);
  n->cb->L = L;
  n->cb->fn_idx = lua_gettop(L) - 1;
  n->cb->err_idx = lua_gettop(L);
  pv->count++;
}

static void providers_running(lua_State *L, struct astate *st,
                              struct providers *pv) {
  pv->count = 0;
  for (struct job *j = st->head; j != NULL; j = j->next)
    if (j->state == J_RUNNING)
      provider_add(L, pv, j->n);
}

/* Restores the providers; a job that failed for want of a token gets the
** provider's own error (as the blocking call raises it). */
static void providers_end(lua_State *L, struct astate *st,
                          struct providers *pv, struct job *starting) {
  for (int i = pv->count - 1; i >= 0; i--) {
    struct aclua_authcb *cb = pv->cb[i];
    int slot = cb->err_idx;
    if (!lua_isnil(L, slot) && starting != NULL &&
        starting->rc == AC_EAUTH) {   /* failed to start for want of it */
      lua_pushvalue(L, slot);
      callback_failed(L, starting);
    } else if (!lua_isnil(L, slot)) {
      for (struct job *j = st->head; j != NULL; j = j->next)
        if (j->n != NULL && j->n->cb == cb && j->aj != NULL &&
            ac_job_done(j->aj) && !j->cb_failed &&
            ac_job_result(j->aj, NULL) == AC_EAUTH) {
          lua_pushvalue(L, slot);
          callback_failed(L, j);
        }
    }
    *cb = pv->saved[i];
    lua_settop(L, slot - 2);
  }
  pv->count = 0;
}

/* ---------------------------------------------------------------------- */
/* Starting and settling                                                   */

static enum ac_code start_native(struct job *j, struct ac_error *err) {
  struct ac_job_callbacks cbs;
  ac_engine *e = j->st->e;
  ac_session *s = j->n != NULL ? j->n->s : NULL;
  memset(&cbs, 0, sizeof cbs);
  if (j->has_out || j->has_err)       /* else the plain answer */
    cbs.on_output = on_output;
  if (j->has_progress)
    cbs.on_progress = on_progress;
  cbs.ud = j;
  switch (j->op) {
  case OP_EXEC:
    j->o.check = j->check;
    if (j->line != NULL)
      return ac_start_exec_line(e, s, j->line, &j->o, &cbs, &j->aj, err);
    return ac_start_exec(e, s, j->argv, j->argc, &j->o, &cbs, &j->aj, err);
  case OP_RUN:
    return ac_start_run_code(e, s, j->a, j->data, j->len, &j->o, &cbs,
                             &j->aj, err);
  case OP_WRITE:
    return ac_start_write_file(e, s, j->a, j->data, j->len, &cbs, &j->aj,
                               err);
  case OP_UPLOAD:
    return ac_start_upload_file(e, s, j->a, j->b, &cbs, &j->aj, err);
  case OP_DOWNLOAD:
    return ac_start_download_file(e, s, j->a, j->b, &cbs, &j->aj, err);
  case OP_LIST:
    return ac_start_list_files(e, s, j->a, &cbs, &j->aj, err);
  case OP_READ:
    return ac_start_read_file(e, s, j->a, 0, &cbs, &j->aj, err);
  case OP_STOP:
    return ac_start_session_stop(e, s, &cbs, &j->aj, err);
  case OP_CREATE:
    return ac_start_session_create(e, j->client, &j->so, &cbs, &j->aj, err);
  case OP_EXT:
    return ac_start_ext(e, s, &j->ext, &cbs, &j->aj, err);
  }
  return ac_error_set(err, AC_EINVAL, "unknown operation");
}

static void unlink_job(struct job *j) {
  struct astate *st = j->st;
  if (j->prev != NULL)
    j->prev->next = j->next;
  else if (st->head == j)
    st->head = j->next;
  if (j->next != NULL)
    j->next->prev = j->prev;
  else if (st->tail == j)
    st->tail = j->prev;
  j->prev = j->next = NULL;
}

/* Gives the session back: jobs count down; once the last is over, a
** stop() or <close> deferred meanwhile runs (session.c). */
static void release_session(lua_State *L, struct job *j, int ud_idx) {
  if (!j->counted || j->n == NULL)
    return;
  j->counted = 0;
  j->n->jobs--;
  if (L == NULL || !lua_checkstack(L, 4))
    return;
  lua_getiuservalue(L, ud_idx, UV_TARGET);
  aclua_session_settle(L, lua_gettop(L));
  lua_pop(L, 1);
}

/* [plan] -> value, next plan: plan.finish(json) or plan.catch(err),
** run protected by the caller. Upvalue-free: the arguments say which. */
static int call_finish(lua_State *L) {
  /* plan, ok, json-or-error */
  lua_getfield(L, 1, lua_toboolean(L, 2) ? "finish" : "catch");
  lua_pushvalue(L, 3);
  lua_call(L, 1, 2);
  return 2;
}

/* [job ud, plan]: reads the plan's session and call into j (protected). */
static int read_plan(lua_State *L) {
  struct ljob *lj = lua_touserdata(L, 1);
  struct job *j = lj->j;
  struct aclua_native *n;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_getfield(L, 2, "session");
  n = aclua_session_usable(L, lua_gettop(L), 0);
  if (j->n != NULL && j->n != n)
    return luaL_error(L, "agentcube.async: a plan moved to another "
                      "session");
  lua_pop(L, 1);
  lua_getiuservalue(L, 1, UV_ANCHOR);
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "plan");                  /* anchors the call */
  lua_getfield(L, 2, "ext");
  lua_getfield(L, 2, "call");
  aclua_ext_call_read(L, -2, -1, &j->ext);
  j->n = n;
  return 0;
}

/* Calls agentcube.<hook>(value at idx, or nothing when idx is 0),
** protected: the module's bookkeeping of live clients (init.lua's GC
** pressure) must not fail a job. */
static void module_hook(lua_State *L, const char *hook, int idx) {
  int top = lua_gettop(L);
  if (!lua_checkstack(L, 4))
    return;
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "agentcube") == LUA_TTABLE &&
      lua_getfield(L, -1, hook) == LUA_TFUNCTION) {
    if (idx != 0)
      lua_pushvalue(L, idx);
    lua_pcall(L, idx != 0, 0, 0);     /* an error is dropped */
  }
  lua_settop(L, top);
}

static void settle(lua_State *L, struct job *j, int ud_idx);

/* An extension job ended: its plan's finish (or catch) makes the value,
** or gives the next plan, started here. Returns 1 when a next request
** runs. */
static int finish_plan(lua_State *L, struct job *j, int ud_idx) {
  int ok = j->rc == AC_OK, top = lua_gettop(L);
  luaL_checkstack(L, 8, NULL);
  lua_getiuservalue(L, ud_idx, UV_ANCHOR);
  lua_getfield(L, -1, "plan");                  /* anchor, plan */
  if (!ok && lua_getfield(L, -1, "catch") == LUA_TNIL) {
    lua_settop(L, top);
    return 0;                                   /* the error stands */
  }
  if (!ok)
    lua_pop(L, 1);
  lua_pushcfunction(L, call_finish);
  lua_pushvalue(L, -2);
  lua_pushboolean(L, ok);
  if (ok) {
    const char *json = ac_job_json(j->aj);
    lua_pushstring(L, json != NULL ? json : "null");
  } else {
    aclua_push_error(L, &j->err);
  }
  if (lua_pcall(L, 3, 2, 0) != LUA_OK) {       /* anchor, plan, err */
    lua_setfield(L, top + 1, "cb_error");
    j->cb_failed = 1;
    lua_settop(L, top);
    return 0;
  }                                             /* anchor, plan, v, nxt */
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_setfield(L, top + 1, "value");
    j->rc = AC_OK;
    lua_settop(L, top);
    return 0;
  }
  /* the next request of the operation */
  lua_pushcfunction(L, read_plan);
  lua_pushvalue(L, ud_idx);
  lua_pushvalue(L, -3);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    lua_setfield(L, top + 1, "cb_error");
    j->cb_failed = 1;
    lua_settop(L, top);
    return 0;
  }
  lua_settop(L, top);
  ac_job_free(j->aj);
  j->aj = NULL;
  {
    struct providers pv;
    pv.count = 0;
    provider_add(L, &pv, j->n);
    j->rc = start_native(j, &j->err);
    providers_end(L, j->st, &pv, j);
  }
  return j->rc == AC_OK;
}

/* Records the outcome of a job whose engine job is done (or that never
** started), releases its session and slot, and unanchors it. ud_idx: the
** job userdata. Runs Lua (plans, a deferred close), all protected. */
static void settle(lua_State *L, struct job *j, int ud_idx) {
  struct astate *st = j->st;
  if (j->state == J_DONE || j->state == J_CANCELLED)
    return;
  if (j->aj != NULL) {
    j->rc = ac_job_result(j->aj, &j->err);
    if (j->op == OP_EXT && !j->cb_failed && !j->cancelled &&
        finish_plan(L, j, ud_idx))
      return;                                   /* still running */
    if (j->op == OP_CREATE) {
      ac_session *s = ac_job_take_session(j->aj);
      if (s != NULL) {
        lua_getiuservalue(L, ud_idx, UV_ANCHOR);
        lua_getfield(L, -1, "session");
        aclua_session_adopt(L, lua_gettop(L), s);
        module_hook(L, "_track", lua_gettop(L));
        lua_pop(L, 2);
      }
    }
    if (j->op == OP_EXEC || j->op == OP_RUN)
      ac_job_take_exec(j->aj, &j->exec);
    else if (j->op == OP_LIST)
      ac_job_take_files(j->aj, &j->files);
    else if (j->op == OP_READ)
      j->bytes = ac_job_take_data(j->aj, &j->nbytes);
    /* everything is taken: the transfer's leftovers (a download's
    ** temporary file) go now, not when the collector gets to the job */
    ac_job_free(j->aj);
    j->aj = NULL;
  }
  if (j->slot) {
    j->slot = 0;
    st->running--;
  }
  if (j->cancel_code != AC_OK) {
    j->rc = j->cancel_code;
    ac_error_set(&j->err, j->cancel_code, "%s: cancelled", j->name);
  }
  if (j->rc == AC_EINTERRUPTED)
    j->cancelled = 1;                 /* ended by an interrupt */
  j->state = j->cancelled ? J_CANCELLED : J_DONE;
  j->t_finished = now();
  st->settled++;
  unlink_job(j);
  if (j->op == OP_STOP && j->n != NULL && j->n->s != NULL &&
      ac_session_closed(j->n->s) && j->n->close_pending == ACLUA_CLOSE_NONE)
    /* the object closes (no HTTP: the session is deleted) once the last
    ** job on it is over */
    j->n->close_pending = ACLUA_CLOSE_STOP;
  release_session(L, j, ud_idx);
  lua_getfield(L, LUA_REGISTRYINDEX, ANCHOR_KEY);
  lua_pushnil(L);
  lua_rawsetp(L, -2, j);
  lua_pop(L, 1);
}

static void settle_job(lua_State *L, struct job *j) {
  if (push_job_ud(L, j))
    settle(L, j, lua_gettop(L));
  lua_pop(L, 1);
}

/* Starts queued jobs while the limit allows (a stop always may: it is
** how a caller ends the jobs that fill the slots). */
static void start_queued(lua_State *L, struct astate *st) {
  struct job *j, *next;
  for (j = st->head; j != NULL; j = next) {
    next = j->next;
    if (j->state != J_QUEUED)
      continue;
    if (st->running >= st->max_running && j->op != OP_STOP)
      continue;
    {
      struct providers pv;
      pv.count = 0;
      provider_add(L, &pv, j->n);
      j->state = J_RUNNING;
      j->t_started = now();
      j->slot = 1;
      st->running++;
      if (j->stop_limit > 0)
        j->deadline = j->t_started + j->stop_limit;
      j->rc = start_native(j, &j->err);
      providers_end(L, st, &pv, j);
    }
    if (j->rc != AC_OK) {
      ac_job_free(j->aj);
      j->aj = NULL;
      settle_job(L, j);               /* failed before any request */
    }
    next = st->head;                  /* the list may have changed */
    while (next != NULL && next->state != J_QUEUED)
      next = next->next;
  }
}

/* Settles every job whose engine job is done; ends stops past their
** limit. Returns how many settled. */
static int settle_done(lua_State *L, struct astate *st) {
  int before = st->settled, again = 1;
  double t = now();
  while (again) {
    again = 0;
    for (struct job *j = st->head; j != NULL; j = j->next) {
      if (j->state != J_RUNNING || j->aj == NULL)
        continue;
      if (!ac_job_done(j->aj) && j->deadline > 0 && t >= j->deadline) {
        ac_job_cancel(j->aj);
        ac_error_set(&j->err, AC_ETIMEOUT, "stop: no answer within %g s",
                     j->stop_limit);
      }
      if (ac_job_done(j->aj)) {
        int timed_out = j->deadline > 0 && j->err.code == AC_ETIMEOUT;
        struct ac_error keep = j->err;
        settle_job(L, j);
        if (timed_out) {
          j->rc = AC_ETIMEOUT;
          j->err = keep;
        }
        again = 1;
        break;
      }
    }
  }
  return st->settled - before;
}

/* One step: starts what may start, moves every transfer forward for up
** to ms (callbacks run here), settles what ended. Returns the number of
** jobs settled. */
static int drive(lua_State *L, struct astate *st, long ms) {
  struct providers pv;
  int n;
  start_queued(L, st);
  n = settle_done(L, st);
  if (n > 0)
    ms = 0;
  /* with no job running this only waits (and drains the descriptor) */
  providers_running(L, st, &pv);
  st->L = L;
  st->polling = 1;
  ac_engine_set_interrupt_flag(st->e, aclua_sigint_flag());
  ac_engine_poll(st->e, ms);
  ac_engine_set_interrupt_flag(st->e, NULL);
  st->polling = 0;
  st->L = NULL;
  providers_end(L, st, &pv, NULL);
  n += settle_done(L, st);
  start_queued(L, st);
  return n;
}

/* Cancels a job, queued or running (with code and why). */
static void cancel_job(lua_State *L, struct job *j, enum ac_code code,
                       const char *why) {
  if (j->state == J_DONE || j->state == J_CANCELLED)
    return;
  j->cancelled = 1;
  if (j->aj != NULL)
    ac_job_cancel(j->aj);
  if (j->st->polling && j->aj != NULL) {
    /* from a callback: settled after the engine call, which may still
    ** be delivering to this very job */
    j->cancel_code = code;
    return;
  }
  settle_job(L, j);
  j->rc = code;
  ac_error_set(&j->err, code, "%s: %s", j->name, why);
}

/* A Ctrl-C caught during a wait, or async.interrupt(): every job ends
** (running ones with EINTERRUPTED, their transfers closed), then the
** wait raises EINTERRUPTED. Returns 0 when there was no interrupt. */
static int take_interrupt(lua_State *L, struct astate *st) {
  if (!st->interrupt && !*aclua_sigint_flag())
    return 0;
  st->interrupt = 0;
  aclua_sigint_clear();
  for (struct job *j = st->head; j != NULL; j = st->head)
    cancel_job(L, j, AC_EINTERRUPTED, "interrupted");
  return 1;
}

static int raise_interrupt(lua_State *L) {
  return aclua_raisef(L, AC_EINTERRUPTED, "interrupted: every "
                      "agentcube.async job was cancelled");
}

static int check_not_polling(lua_State *L, struct astate *st) {
  if (st->polling)
    return luaL_error(L, "agentcube.async: waiting from inside a job "
                      "callback is not allowed");
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Submitting                                                              */

/* A string field of args (required, or NULL when absent). Anchored by
** the args copy. */
static const char *field_str(lua_State *L, int args, const char *k,
                             int required, size_t *len) {
  int t = lua_getfield(L, args, k);
  const char *s;
  size_t l;
  if (t == LUA_TNIL && !required) {
    lua_pop(L, 1);
    return NULL;
  }
  if (t != LUA_TSTRING && t != LUA_TNUMBER)
    luaL_error(L, "bad argument '%s' (string expected, got %s)", k,
               luaL_typename(L, -1));
  s = lua_tolstring(L, -1, &l);
  if (len != NULL)
    *len = l;
  else if (strlen(s) != l)
    luaL_error(L, "bad argument '%s' (string without NUL expected)", k);
  lua_setfield(L, args, k);           /* a number stays as its string */
  lua_getfield(L, args, k);
  s = lua_tolstring(L, -1, len);
  lua_pop(L, 1);
  return s;
}

/* Moves the callbacks found by the option readers into the anchor. */
static void keep_fn(lua_State *L, int anchor, int idx, const char *key,
                    int *flag) {
  if (idx == 0)
    return;
  lua_pushvalue(L, idx);
  lua_setfield(L, anchor, key);
  *flag = 1;
}

/* Reads the arguments of a native op from args (a private copy) into j;
** scratch values are left on the stack for the caller to anchor. */
static void read_args(lua_State *L, int args, int anchor, struct job *j) {
  static const char *const k_exec[] = { "command", "check", NULL };
  static const char *const k_run[] = { "language", "code", "check", NULL };
  static const char *const k_write[] = { "content", "path", NULL };
  static const char *const k_move[] = { "from", "to", "on_progress", NULL };
  static const char *const k_path[] = { "path", NULL };
  static const char *const k_stop[] = { "timeout", NULL };
  struct aclua_stream_fns fns;
  int t;
  memset(&fns, 0, sizeof fns);
  switch (j->op) {
  case OP_EXEC:
    t = lua_getfield(L, args, "command");
    if (t == LUA_TTABLE) {
      j->argv = aclua_argv_copy(L, lua_gettop(L), &j->argc);
    } else if (t == LUA_TSTRING) {
      j->line = lua_tostring(L, -1);
    } else {
      luaL_error(L, "bad argument 'command' (string or table expected, "
                 "got %s)", luaL_typename(L, -1));
    }
    aclua_exec_options(L, args, &j->o, 1, k_exec, &fns);
    break;
  case OP_RUN:
    j->a = field_str(L, args, "language", 1, NULL);
    j->data = field_str(L, args, "code", 1, &j->len);
    aclua_exec_options(L, args, &j->o, 0, k_run, &fns);
    break;
  case OP_WRITE:
    aclua_check_keys(L, args, k_write, "unknown option");
    j->data = field_str(L, args, "content", 1, &j->len);
    j->a = field_str(L, args, "path", 1, NULL);
    break;
  case OP_UPLOAD:
  case OP_DOWNLOAD:
    /* upload_file(local, remote) and download_file(remote, local) both
    ** take from, then to */
    aclua_check_keys(L, args, k_move, "unknown option");
    j->a = field_str(L, args, "from", 1, NULL);
    j->b = field_str(L, args, "to", 1, NULL);
    if (lua_getfield(L, args, "on_progress") != LUA_TNIL) {
      if (lua_type(L, -1) != LUA_TFUNCTION)
        luaL_error(L, "bad option 'on_progress' (function expected, got "
                   "%s)", luaL_typename(L, -1));
      keep_fn(L, anchor, lua_gettop(L), "on_progress", &j->has_progress);
    }
    lua_pop(L, 1);
    break;
  case OP_LIST:
  case OP_READ:
    aclua_check_keys(L, args, k_path, "unknown option");
    j->a = field_str(L, args, "path", j->op == OP_READ, NULL);
    if (j->a == NULL)
      j->a = ".";
    break;
  case OP_STOP:
    aclua_check_keys(L, args, k_stop, "unknown option");
    if (lua_getfield(L, args, "timeout") != LUA_TNIL) {
      int isnum;
      lua_Number v = lua_tonumberx(L, -1, &isnum);
      if (!isnum || !(v > 0) || v > 1e6)
        luaL_error(L, "bad option 'timeout' (seconds expected)");
      j->stop_limit = (double)v;
    }
    lua_pop(L, 1);
    break;
  case OP_CREATE:
  case OP_EXT:
    break;
  }
  if (j->op == OP_EXEC || j->op == OP_RUN) {
    lua_getfield(L, args, "check");
    j->check = lua_toboolean(L, -1);
    lua_pop(L, 1);
    keep_fn(L, anchor, fns.out, "on_stdout", &j->has_out);
    keep_fn(L, anchor, fns.err, "on_stderr", &j->has_err);
    j->o.stream = j->has_out || j->has_err;
  }
}

/* The plan builder of the Lua op named at idx is pushed: the agentcube
** module's _plans[name] (init.lua), the module required when needed. */
static int push_lua_op(lua_State *L, int idx) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "agentcube");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  if (lua_getfield(L, -1, "_plans") != LUA_TTABLE) {
    lua_pop(L, 2);
    return 0;
  }
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) != LUA_TFUNCTION) {
    lua_pop(L, 3);
    return 0;
  }
  lua_replace(L, -3);
  lua_pop(L, 1);
  return 1;
}

/***
** async.submit(target, op, args) -> job
** Starts op (or queues it while async.configure's limit of running jobs
** is reached). Raises for misuse (a string), ECLOSED (a stopped session)
** and EBUSY (a blocking call on the session is still running); every
** other failure is the job's result.
*/
static int mod_submit(lua_State *L) {
  struct astate *st = get_state(L);
  const char *opname = luaL_checkstring(L, 2);
  struct ljob *lj;
  struct job *j;
  int op = OP_EXT, ud, anchor, args, base;

  for (int i = 0; op_names[i] != NULL; i++)
    if (strcmp(op_names[i], opname) == 0)
      op = i;
  if (lua_isnoneornil(L, 3)) {
    lua_settop(L, 2);
    lua_newtable(L);
  }
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  aclua_safe_point(L);
  if (op == OP_EXT && !push_lua_op(L, 2))
    return luaL_error(L, "agentcube.async: unknown operation '%s'", opname);
  if (op == OP_EXT) {
    /* the plan: the blocking method's own argument checks */
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 3);
    lua_call(L, 2, 1);                             /* t, op, args, plan */
  } else if (op != OP_CREATE) {
    aclua_session_usable(L, 1, 0);
  }

  /* closed first, then acquire (rule 8) */
  lj = lua_newuserdatauv(L, sizeof *lj, 2);
  ud = lua_gettop(L);
  lj->j = NULL;
  luaL_setmetatable(L, JOB_MT);
  lua_createtable(L, 0, 8);
  anchor = lua_gettop(L);
  lua_pushvalue(L, anchor);
  lua_setiuservalue(L, ud, UV_ANCHOR);
  lua_pushboolean(L, 0);
  lua_setfield(L, anchor, "cb_error");  /* exists: set without allocating */
  lua_pushvalue(L, 2);
  lua_setfield(L, anchor, "name");
  /* a private copy of args: the caller may change its table */
  lua_newtable(L);
  args = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, 3) != 0) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, args);
  }
  lua_pushvalue(L, args);
  lua_setfield(L, anchor, "args");
  j = calloc(1, sizeof *j);
  if (j == NULL)
    return luaL_error(L, "not enough memory");
  lj->j = j;
  j->st = st;
  j->op = (enum op)op;
  j->name = op == OP_EXT ? lua_tostring(L, 2) : op_names[op];
  j->exec.exit_code = -1;
  j->exec.duration = -1;
  base = lua_gettop(L);
  if (op == OP_CREATE) {
    const char *attach_id;
    int s_idx;
    module_hook(L, "_pressure", 0);
    s_idx = aclua_session_prepare(L, args, &j->so, &attach_id, &j->client);
    lua_pushvalue(L, s_idx);
    lua_setfield(L, anchor, "session");
    j->n = aclua_session_native(L, s_idx);    /* its provider, if any */
    if (attach_id != NULL) {                  /* no HTTP: done at once */
      ac_session *s = NULL;
      j->rc = ac_session_attach(j->client, attach_id, j->so.name, j->so.ns,
                                &s, &j->err);
      if (s != NULL)
        aclua_session_adopt(L, s_idx, s);
      j->state = J_DONE;
      j->t_queued = j->t_started = j->t_finished = now();
      lua_settop(L, ud);
      return 1;
    }
  } else if (op == OP_EXT) {
    lua_pushcfunction(L, read_plan);
    lua_pushvalue(L, ud);
    lua_pushvalue(L, 4);                      /* the plan */
    lua_call(L, 2, 0);
    lua_getfield(L, 4, "session");
    lua_setiuservalue(L, ud, UV_TARGET);
    {
      struct aclua_stream_fns fns = { 0, 0 };
      if (lua_getfield(L, args, "on_stdout") == LUA_TFUNCTION)
        fns.out = lua_gettop(L);
      if (lua_getfield(L, args, "on_stderr") == LUA_TFUNCTION)
        fns.err = lua_gettop(L);
      keep_fn(L, anchor, fns.out, "on_stdout", &j->has_out);
      keep_fn(L, anchor, fns.err, "on_stderr", &j->has_err);
    }
  } else {
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, ud, UV_TARGET);
    read_args(L, args, anchor, j);
    j->n = aclua_session_native(L, 1);
  }
  /* scratch the readers left (argv and env blocks, strings) */
  for (int i = base + 1; i <= lua_gettop(L); i++) {
    lua_pushvalue(L, i);
    lua_rawseti(L, anchor, (lua_Integer)(i - base));
  }
  lua_settop(L, ud);
  /* from here nothing raises: the job is registered and owns its slot */
  lua_getfield(L, LUA_REGISTRYINDEX, ANCHOR_KEY);
  lua_pushvalue(L, ud);
  lua_rawsetp(L, -2, j);
  lua_pop(L, 1);
  if (op != OP_CREATE) {
    j->counted = 1;
    j->n->jobs++;
    j->n->job_op = j->name;
  }
  j->state = J_QUEUED;
  j->t_queued = now();
  j->prev = st->tail;
  if (st->tail != NULL)
    st->tail->next = j;
  else
    st->head = j;
  st->tail = j;
  start_queued(L, st);
  lua_settop(L, ud);
  return 1;
}

/* ---------------------------------------------------------------------- */
/* Waiting                                                                 */

static int finished(const struct job *j) {
  return j != NULL && (j->state == J_DONE || j->state == J_CANCELLED);
}

/***
** async.wait_any(jobs [, timeout_ms]) -> job, index | nil
** Drives every job (their callbacks run here) until one of the array is
** finished (done or cancelled), at most timeout_ms (0: just look; an
** empty array just waits). Ctrl-C or async.interrupt() cancels every job
** and raises EINTERRUPTED.
*/
static int mod_wait_any(lua_State *L) {
  struct astate *st = get_state(L);
  lua_Integer ms;
  size_t n, i, found = 0;
  double end;
  int intr = 0;

  luaL_checktype(L, 1, LUA_TTABLE);
  ms = luaL_optinteger(L, 2, 0);
  luaL_argcheck(L, ms >= 0, 2, "not a duration");
  lua_settop(L, 2);
  check_not_polling(L, st);
  n = (size_t)lua_rawlen(L, 1);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, (lua_Integer)i);
    check_job(L, -1);
    lua_pop(L, 1);
  }
  end = now() + (double)ms / 1000.0;
  aclua_sigint_catch();
  for (;;) {
    for (i = 1; i <= n && !found; i++) {
      struct ljob *lj;
      lua_rawgeti(L, 1, (lua_Integer)i);
      lj = lua_touserdata(L, -1);
      if (finished(lj->j))
        found = i;
      lua_pop(L, 1);
    }
    if ((intr = take_interrupt(L, st)) != 0 || found)
      break;
    {
      double left = (end - now()) * 1000.0;
      if (left <= 0)
        break;
      drive(L, st, left < SLICE_MS ? (long)ceil(left) : SLICE_MS);
    }
  }
  aclua_sigint_release();
  if (intr)
    return raise_interrupt(L);
  if (!found)
    return 0;
  lua_rawgeti(L, 1, (lua_Integer)found);
  lua_pushinteger(L, (lua_Integer)found);
  return 2;
}

/***
** async.poll([timeout_ms]) -> n
** Drives every job once, waiting up to timeout_ms (default 0) for one to
** finish; callbacks run here. Returns how many jobs finished.
*/
static int mod_poll(lua_State *L) {
  struct astate *st = get_state(L);
  lua_Integer ms = luaL_optinteger(L, 1, 0);
  double end;
  int n = 0, intr = 0;
  luaL_argcheck(L, ms >= 0, 1, "not a duration");
  check_not_polling(L, st);
  end = now() + (double)ms / 1000.0;
  aclua_sigint_catch();
  for (;;) {
    double left = (end - now()) * 1000.0;
    n += drive(L, st, left <= 0 ? 0 : left < SLICE_MS ? (long)ceil(left)
                                                      : SLICE_MS);
    if ((intr = take_interrupt(L, st)) != 0 || n > 0 || now() >= end)
      break;
  }
  aclua_sigint_release();
  if (intr)
    return raise_interrupt(L);
  lua_pushinteger(L, n);
  return 1;
}

/***
** async.fd() -> integer
** The engine's descriptor: readable when a job has news. A host loop
** polls it and calls async.poll(0) when it is readable (or once a frame).
*/
static int mod_fd(lua_State *L) {
  lua_pushinteger(L, ac_engine_fd(get_state(L)->e));
  return 1;
}

/***
** async.interrupt()
** Every job ends: running ones with EINTERRUPTED (their transfers are
** closed, which ends commands on the local runtime), queued ones never
** start; the wait in progress, or the next one, raises EINTERRUPTED.
*/
static int mod_interrupt(lua_State *L) {
  struct astate *st = get_state(L);
  st->interrupt = 1;
  ac_engine_interrupt(st->e);
  return 0;
}

/***
** async.supported(session) -> true | false, reason
** Whether jobs can be submitted on session now.
*/
static int mod_supported(lua_State *L) {
  struct aclua_native *n = aclua_session_native(L, 1);
  const char *why = NULL;
  if (n == NULL || n->s == NULL)
    why = "the session was stopped";
  else if (n->busy)
    why = "a blocking call on the session has not returned yet";
  lua_pushboolean(L, why == NULL);
  if (why == NULL)
    return 1;
  lua_pushstring(L, why);
  return 2;
}

/***
** async.now() -> seconds on a monotonic clock
*/
static int mod_now(lua_State *L) {
  lua_pushnumber(L, (lua_Number)now());
  return 1;
}

/***
** async.configure{ threads = n } -> previous n
** The most jobs that run at once (1..ACASYNC_MAX_THREADS); more wait in
** the queue, in submission order. "stop" jobs are never held back. The
** name is kept from the thread pool this replaced; no thread is started.
*/
static int mod_configure(lua_State *L) {
  struct astate *st = get_state(L);
  static const char *const keys[] = { "threads", NULL };
  lua_Integer t;
  int prev = st->max_running;
  luaL_checktype(L, 1, LUA_TTABLE);
  aclua_check_keys(L, 1, keys, "unknown option");
  if (lua_getfield(L, 1, "threads") != LUA_TNIL) {
    t = luaL_checkinteger(L, -1);
    luaL_argcheck(L, t >= 1 && t <= ACASYNC_MAX_THREADS, 1,
                  "threads out of range");
    st->max_running = (int)t;
    start_queued(L, st);
  }
  lua_pushinteger(L, prev);
  return 1;
}

/* ---------------------------------------------------------------------- */
/* Job methods                                                             */

/***
** job:result() -> true, result | nil, agentcube.Error
** Waits for the job (driving every job meanwhile) and converts its
** outcome on this thread. exec, run_code: {stdout, stderr, exit_code,
** duration} (a non-zero exit is data unless check = true); read:
** {content =}; list: the entries as list_files gives them; create: the
** session; the extension ops: what the matching method returns; write,
** upload, download, stop: {}. A cancelled job gives ECANCELED (or
** EINTERRUPTED); a callback's error is given as it was raised.
*/
static int job_result(lua_State *L) {
  struct ljob *lj = check_job(L, 1);
  struct job *j = lj->j;
  struct astate *st;
  struct ac_error err;
  int intr = 0;
  luaL_argcheck(L, j != NULL, 1, "job released");
  lua_settop(L, 1);
  st = j->st;
  if (!finished(j)) {
    check_not_polling(L, st);
    aclua_sigint_catch();
    while ((intr = take_interrupt(L, st)) == 0 && !finished(j))
      drive(L, st, SLICE_MS);
    aclua_sigint_release();
    if (intr)
      return raise_interrupt(L);
  }
  lua_getiuservalue(L, 1, UV_ANCHOR);                /* job, anchor */
  if (j->cb_failed) {
    lua_pushnil(L);
    lua_getfield(L, 2, "cb_error");
    return 2;
  }
  if (j->rc == AC_ECOMMAND && (j->op == OP_EXEC || j->op == OP_RUN)) {
    if (!j->check) {
      lua_pushboolean(L, 1);
      aclua_push_exec_result(L, &j->exec);
      return 2;
    }
    if (j->op == OP_EXEC) {
      lua_getfield(L, 2, "args");
      lua_getfield(L, -1, "command");
    } else {
      lua_pushstring(L, j->exec.command ? j->exec.command : "");
    }
    aclua_push_command_error(L, &j->exec, lua_gettop(L));
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  if (j->rc != AC_OK) {
    lua_pushnil(L);
    aclua_push_error(L, &j->err);
    return 2;
  }
  lua_pushboolean(L, 1);
  switch (j->op) {
  case OP_EXEC:
  case OP_RUN:
    aclua_push_exec_result(L, &j->exec);
    break;
  case OP_LIST: {
    /* the box (to-be-closed) owns the parsed JSON meanwhile */
    struct aclua_box *box = aclua_box_new(L, ACLUA_BOX_JSON);
    const char *json = j->files.json ? j->files.json : "[]";
    if (aclua_push_json(L, box, json, strlen(json), &err) != AC_OK) {
      lua_pushnil(L);
      aclua_push_error(L, &err);
      return 2;
    }
    lua_pushboolean(L, 1);            /* box, true, list: the box */
    lua_insert(L, -2);                /* closes at return */
    break;
  }
  case OP_READ:
    lua_createtable(L, 0, 1);
    lua_pushlstring(L, j->bytes ? j->bytes : "", j->nbytes);
    lua_setfield(L, -2, "content");
    break;
  case OP_CREATE:
    lua_getfield(L, 2, "session");
    break;
  case OP_EXT:
    lua_getfield(L, 2, "value");
    break;
  default:
    lua_newtable(L);
    break;
  }
  return 2;
}

/***
** job:cancel() -> boolean
** Aborts a queued or running job at once (a running transfer is closed,
** which ends its command on the local runtime); its result is then
** nil, agentcube.Error{code = "ECANCELED"}. false when it was over.
*/
static int job_cancel(lua_State *L) {
  struct ljob *lj = check_job(L, 1);
  struct job *j = lj->j;
  int was;
  luaL_argcheck(L, j != NULL, 1, "job released");
  was = !finished(j);
  cancel_job(L, j, AC_ECANCELED, "cancelled");
  lua_pushboolean(L, was);
  return 1;
}

/***
** job:state() -> "queued" | "running" | "done" | "cancelled"
*/
static int job_state(lua_State *L) {
  struct ljob *lj = check_job(L, 1);
  luaL_argcheck(L, lj->j != NULL, 1, "job released");
  lua_pushstring(L, state_names[lj->j->state]);
  return 1;
}

/***
** job:times() -> queued, started, finished (nil for what did not happen)
*/
static int job_times(lua_State *L) {
  struct ljob *lj = check_job(L, 1);
  struct job *j = lj->j;
  double t[3];
  luaL_argcheck(L, j != NULL, 1, "job released");
  t[0] = j->t_queued;
  t[1] = j->t_started;
  t[2] = j->t_finished;
  for (int i = 0; i < 3; i++) {
    if (t[i] > 0)
      lua_pushnumber(L, (lua_Number)t[i]);
    else
      lua_pushnil(L);
  }
  return 3;
}

static void job_free(struct job *j) {
  ac_job_free(j->aj);
  ac_exec_result_free(&j->exec);
  ac_file_list_free(&j->files);
  free(j->bytes);
  free(j);
}

/*
** __gc: idempotent, never raises, never does network I/O. Only settled
** jobs are collected, except when the Lua state closes: then a job still
** running is cancelled (its transfer closed) and its session released
** without running Lua.
*/
static int job_gc(lua_State *L) {
  struct ljob *lj = luaL_testudata(L, 1, JOB_MT);
  struct job *j;
  if (lj == NULL || lj->j == NULL)
    return 0;
  j = lj->j;
  lj->j = NULL;                       /* released first */
  if (!finished(j)) {
    if (j->slot)
      j->st->running--;
    unlink_job(j);
    release_session(NULL, j, 0);
  }
  job_free(j);
  return 0;
}

/* __close (`local job <close> = async.submit(...)`): cancels a job still
** queued or running at scope exit; the object stays usable. */
static int job_close(lua_State *L) {
  struct ljob *lj = luaL_testudata(L, 1, JOB_MT);
  if (lj != NULL && lj->j != NULL && !finished(lj->j))
    cancel_job(L, lj->j, AC_ECANCELED, "cancelled at scope exit");
  return 0;
}

static int job_tostring(lua_State *L) {
  struct ljob *lj = check_job(L, 1);
  if (lj->j == NULL)
    lua_pushliteral(L, "agentcube.async.Job (released)");
  else
    lua_pushfstring(L, "agentcube.async.Job (%s, %s, %p)", lj->j->name,
                    state_names[lj->j->state], (void *)lj->j);
  return 1;
}

/* ---------------------------------------------------------------------- */
/* The state userdata                                                      */

/* __gc: runs after every job's (the state was created first). */
static int state_gc(lua_State *L) {
  struct astate *st = luaL_testudata(L, 1, STATE_MT);
  if (st != NULL && st->e != NULL) {
    ac_engine_free(st->e);
    st->e = NULL;
  }
  return 0;
}

int luaopen_agentcube_async(lua_State *L) {
  static const luaL_Reg fns[] = {
    { "submit", mod_submit },
    { "wait_any", mod_wait_any },
    { "poll", mod_poll },
    { "fd", mod_fd },
    { "interrupt", mod_interrupt },
    { "supported", mod_supported },
    { "now", mod_now },
    { "configure", mod_configure },
    { NULL, NULL }
  };
  static const luaL_Reg methods[] = {
    { "result", job_result },
    { "cancel", job_cancel },
    { "state", job_state },
    { "times", job_times },
    { NULL, NULL }
  };
  static const luaL_Reg job_mt[] = {
    { "__gc", job_gc },
    { "__close", job_close },
    { "__tostring", job_tostring },
    { NULL, NULL }
  };
  struct astate *st;
  struct ac_error err;

  luaL_checkversion(L);
  if (luaL_newmetatable(L, JOB_MT)) {
    luaL_setfuncs(L, job_mt, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, STATE_MT)) {
    lua_pushcfunction(L, state_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (lua_getfield(L, LUA_REGISTRYINDEX, ANCHOR_KEY) != LUA_TTABLE) {
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, ANCHOR_KEY);
  }
  lua_pop(L, 1);
  /* One engine per state; created closed, then acquired (rule 8). */
  if (lua_getfield(L, LUA_REGISTRYINDEX, STATE_KEY) == LUA_TNIL) {
    lua_pop(L, 1);
    st = lua_newuserdatauv(L, sizeof *st, 0);
    memset(st, 0, sizeof *st);
    luaL_setmetatable(L, STATE_MT);
    st->max_running = ACASYNC_THREADS;
    if (ac_engine_new(&st->e, &err) != AC_OK)
      return aclua_raise(L, &err);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, STATE_KEY);
  }                                                /* state */
  luaL_newlibtable(L, fns);                        /* state, M */
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, fns, 1);           /* every function: state upvalue */
  return 1;
}
