/*
** async_job.c -- agentcube.async's jobs on the engine (async_job.h): the
** callbacks the engine delivers, a Lua auth provider's stack slots around
** engine calls, starting jobs (or queueing them behind configure's limit),
** settling them (results taken, plans finished, sessions given back),
** driving the engine, cancelling and interrupts. Everything here runs on
** the thread that calls into agentcube.async.
*/
#include "async_job.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double acasync_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int acasync_push_job_ud(lua_State *L, const struct job *j) {
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
  if (acasync_push_job_ud(L, j)) {
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
  if (!acasync_push_job_ud(L, j)) {
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

void acasync_unlink_job(struct job *j) {
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
void acasync_release_session(lua_State *L, struct job *j, int ud_idx) {
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
int acasync_read_plan(lua_State *L) {
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
void acasync_module_hook(lua_State *L, const char *hook, int idx) {
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
  lua_pushcfunction(L, acasync_read_plan);
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
        acasync_module_hook(L, "_track", lua_gettop(L));
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
    ** temporary file) go acasync_now, not when the collector gets to the job */
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
  j->t_finished = acasync_now();
  st->settled++;
  acasync_unlink_job(j);
  if (j->op == OP_STOP && j->n != NULL && j->n->s != NULL &&
      ac_session_closed(j->n->s) && j->n->close_pending == ACLUA_CLOSE_NONE)
    /* the object closes (no HTTP: the session is deleted) once the last
    ** job on it is over */
    j->n->close_pending = ACLUA_CLOSE_STOP;
  acasync_release_session(L, j, ud_idx);
  lua_getfield(L, LUA_REGISTRYINDEX, ANCHOR_KEY);
  lua_pushnil(L);
  lua_rawsetp(L, -2, j);
  lua_pop(L, 1);
}

static void settle_job(lua_State *L, struct job *j) {
  if (acasync_push_job_ud(L, j))
    settle(L, j, lua_gettop(L));
  lua_pop(L, 1);
}

/* Starts queued jobs while the limit allows (a stop always may: it is
** how a caller ends the jobs that fill the slots). */
void acasync_start_queued(lua_State *L, struct astate *st) {
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
      j->t_started = acasync_now();
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
  double t = acasync_now();
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
int acasync_drive(lua_State *L, struct astate *st, long ms) {
  struct providers pv;
  int n;
  acasync_start_queued(L, st);
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
  acasync_start_queued(L, st);
  return n;
}

/* Cancels a job, queued or running (with code and why). */
void acasync_cancel_job(lua_State *L, struct job *j, enum ac_code code,
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
int acasync_take_interrupt(lua_State *L, struct astate *st) {
  if (!st->interrupt && !*aclua_sigint_flag())
    return 0;
  st->interrupt = 0;
  aclua_sigint_clear();
  for (struct job *j = st->head; j != NULL; j = st->head)
    acasync_cancel_job(L, j, AC_EINTERRUPTED, "interrupted");
  return 1;
}

int acasync_raise_interrupt(lua_State *L) {
  return aclua_raisef(L, AC_EINTERRUPTED, "interrupted: every "
                      "agentcube.async job was cancelled");
}

int acasync_check_not_polling(lua_State *L, struct astate *st) {
  if (st->polling)
    return luaL_error(L, "agentcube.async: waiting from inside a job "
                      "callback is not allowed");
  return 0;
}
