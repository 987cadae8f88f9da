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
**
** This file is the Lua API; the jobs on the engine are async_job.c, the
** arguments async_args.c.
*/
#include "async.h"
#include "async_job.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STATE_MT   "agentcube.async.state"
#define STATE_KEY  "agentcube.async.instance"    /* registry */

static const char *const op_names[] = {
  "exec", "run_code", "write", "upload", "download", "list", "read",
  "stop", "create", NULL
};

static const char *const state_names[] = {
  "queued", "running", "done", "cancelled"
};

static struct astate *get_state(lua_State *L) {
  return luaL_checkudata(L, lua_upvalueindex(1), STATE_MT);
}

static struct ljob *check_job(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, JOB_MT);
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
  if (op == OP_EXT && !acasync_push_lua_op(L, 2))
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
    acasync_module_hook(L, "_pressure", 0);
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
      j->t_queued = j->t_started = j->t_finished = acasync_now();
      lua_settop(L, ud);
      return 1;
    }
  } else if (op == OP_EXT) {
    lua_pushcfunction(L, acasync_read_plan);
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
      acasync_keep_fn(L, anchor, fns.out, "on_stdout", &j->has_out);
      acasync_keep_fn(L, anchor, fns.err, "on_stderr", &j->has_err);
    }
  } else {
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, ud, UV_TARGET);
    acasync_read_args(L, args, anchor, j);
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
  j->t_queued = acasync_now();
  j->prev = st->tail;
  if (st->tail != NULL)
    st->tail->next = j;
  else
    st->head = j;
  st->tail = j;
  acasync_start_queued(L, st);
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
  acasync_check_not_polling(L, st);
  n = (size_t)lua_rawlen(L, 1);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, (lua_Integer)i);
    check_job(L, -1);
    lua_pop(L, 1);
  }
  end = acasync_now() + (double)ms / 1000.0;
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
    if ((intr = acasync_take_interrupt(L, st)) != 0 || found)
      break;
    {
      double left = (end - acasync_now()) * 1000.0;
      if (left <= 0)
        break;
      acasync_drive(L, st, left < SLICE_MS ? (long)ceil(left) : SLICE_MS);
    }
  }
  aclua_sigint_release();
  if (intr)
    return acasync_raise_interrupt(L);
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
  acasync_check_not_polling(L, st);
  end = acasync_now() + (double)ms / 1000.0;
  aclua_sigint_catch();
  for (;;) {
    double left = (end - acasync_now()) * 1000.0;
    n += acasync_drive(L, st, left <= 0 ? 0 : left < SLICE_MS ? (long)ceil(left)
                                                      : SLICE_MS);
    if ((intr = acasync_take_interrupt(L, st)) != 0 || n > 0 ||
        acasync_now() >= end)
      break;
  }
  aclua_sigint_release();
  if (intr)
    return acasync_raise_interrupt(L);
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
  lua_pushnumber(L, (lua_Number)acasync_now());
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
    acasync_start_queued(L, st);
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
    acasync_check_not_polling(L, st);
    aclua_sigint_catch();
    while ((intr = acasync_take_interrupt(L, st)) == 0 && !finished(j))
      acasync_drive(L, st, SLICE_MS);
    aclua_sigint_release();
    if (intr)
      return acasync_raise_interrupt(L);
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
  acasync_cancel_job(L, j, AC_ECANCELED, "cancelled");
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
    acasync_unlink_job(j);
    acasync_release_session(NULL, j, 0);
  }
  job_free(j);
  return 0;
}

/* __close (`local job <close> = async.submit(...)`): cancels a job still
** queued or running at scope exit; the object stays usable. */
static int job_close(lua_State *L) {
  struct ljob *lj = luaL_testudata(L, 1, JOB_MT);
  if (lj != NULL && lj->j != NULL && !finished(lj->j))
    acasync_cancel_job(L, lj->j, AC_ECANCELED, "cancelled at scope exit");
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
