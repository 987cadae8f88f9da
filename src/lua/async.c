/*
** async.c -- agentcube.async: libagentcube calls on worker threads.
**
**   async.submit(session, op, args) -> job
**       op: "exec"      { command = "line" | {argv...}, env =, working_dir =,
**                         timeout =, check = }
**           "run_code"  { language =, code =, env =, timeout =, check = }
**           "write"     { content =, path = }
**           "upload"    { from = local, to = remote }
**           "download"  { from = remote, to = local }
**           "list"      { path = }                  (default ".")
**           "read"      { path = }
**           "stop"      { timeout = }    delete the session now, even
**                                        while other jobs run on it
**       Raises agentcube.Error (ECLOSED, EBUSY, EUNSUPPORTED) or a string
**       for misuse (unknown op or key, wrong type).
**   async.wait_any(jobs, timeout_ms) -> job, index | nil
**       The first job of the array that is finished (done or cancelled),
**       waiting up to timeout_ms for one (an empty array just sleeps).
**   async.supported(session) -> true | false, reason
**   async.now() -> seconds on a monotonic clock (a float)
**   async.configure{ threads = n }   most jobs at once (1..64)
**   job:result() -> true, result | nil, agentcube.Error
**       exec, run_code: { stdout =, stderr =, exit_code =, duration = }
**       (a non-zero exit is data unless check = true); read:
**       { content = }; list: the file entries as list_files gives them;
**       write, upload, download: {}. Raises when the job is not finished.
**   job:cancel() -> true when the job will not run (it was queued), false
**       when it already runs (its result is then kept, best effort) or
**       is over
**   job:state() -> "queued" | "running" | "done" | "cancelled"
**   job:times() -> queued, started, finished (async.now() values or nil)
**
** Threads. A pool of workers per Lua state (a userdata in the registry,
** never C statics) started on demand; workers block every signal, so
** SIGINT reaches the main thread. A worker only calls libagentcube, whose
** session functions may run concurrently (agentcube.h, "Threads"), with
** arguments copied into the job before it was queued; it never touches a
** lua_State. Results are converted by the thread that calls result().
**
** Sessions. While jobs run, their session is marked busy, exactly as
** session.c marks it during its own calls: a method called on it then
** raises EBUSY, and stop() or a scope close is deferred until the last
** job is over (then carried out by result() or wait_any(); a job
** collected leaves it to the session). One job at a time per session,
** except "stop", which may join running jobs: the library allows a
** DELETE concurrent with other calls, and the server then ends the
** command a job waits for (the way to interrupt a run). The job anchors
** the session userdata as its user value, so the session cannot be
** collected (and its ac_session freed) while a worker uses it; and a job
** is always finalized before the session it anchors, since it was
** created later (lua_close and each GC cycle call finalizers in reverse
** order of creation). A session whose
** client has a Lua auth provider cannot run jobs: the provider must run
** on the calling thread.
**
** Lifetime. The job's native half is owned by the job userdata. Its
** __gc/__close (idempotent, never raises) unqueues a job that has not
** started and waits for one that runs: its session must not be freed
** under the worker. That wait is bounded by the library's own timeouts;
** callers that must stop quickly stop the session first (the server then
** ends the command). The pool's __gc, which runs after every job's,
** stops and joins the workers.
*/
#include "async.h"
#include "aclua.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POOL_MT   "agentcube.async.pool"
#define JOB_MT    "agentcube.async.Job"

enum op { OP_EXEC, OP_RUN, OP_WRITE, OP_UPLOAD, OP_DOWNLOAD, OP_LIST,
          OP_READ, OP_STOP };
static const char *const op_names[] = {
  "exec", "run_code", "write", "upload", "download", "list", "read",
  "stop", NULL
};

enum jstate { J_NEW, J_QUEUED, J_RUNNING, J_DONE, J_CANCELLED };

struct pool;

/* The native half of a job. Fields above "guarded" are written by the
** main thread before the job is queued and only read by the worker;
** state, cancel and the times are guarded by the pool mutex; the results
** are written by the worker before state becomes J_DONE and read by the
** main thread after it saw J_DONE under the mutex. */
struct job {
  struct pool *pool;                  /* borrowed: outlives every job */
  enum op op;
  struct aclua_native *n;             /* borrowed while busy is held */
  long stop_ms;                       /* stop: the DELETE's bound */
  ac_session *s;
  int busy_held;                      /* this job set n->busy */
  int check;
  char *line;                         /* exec: a command line */
  char **argv;                        /* exec: argv block */
  size_t argc;
  char *a, *b;                        /* paths, language */
  char *data;                         /* code, content */
  size_t len;
  struct ac_kv *env;                  /* env block */
  size_t nenv;
  char *working_dir;
  struct ac_exec_opts o;
  /* guarded */
  enum jstate state;
  int cancel;
  double t_queued, t_started, t_finished;
  struct job *next;
  /* results */
  enum ac_code rc;
  struct ac_error err;
  struct ac_exec_result exec;
  struct ac_file_list list;
  char *bytes;
  size_t nbytes;
};

/* How many jobs hold a session busy (main thread only). */
struct hold {
  struct aclua_native *n;
  int count;
  struct hold *next;
};

struct pool {
  struct hold *holds;                 /* owned list, main thread only */
  pthread_mutex_t mu;
  pthread_cond_t work;                /* queued a job, or shutdown */
  pthread_cond_t done;                /* a job finished */
  int live;                           /* mu and conds initialised */
  struct job *head, *tail;
  size_t queued;
  pthread_t threads[ACASYNC_MAX_THREADS];
  int nthreads, idle, max_threads;
  int running;                        /* jobs on workers right now */
  int shutdown;
};

struct ljob {
  struct job *j;                      /* owned; NULL once released */
};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------------- */
/* Sessions (session.c)                                                    */

/* The native half of the agentcube.Session at idx (NULL once stopped):
** session.c's accessor (aclua.h). Raises when idx is not a session. */
static struct aclua_native *session_native(lua_State *L, int idx) {
  return aclua_session_native(L, idx);
}

/* session.c's close_pending values (its enum close_kind). */
#define PENDING_STOP   1
#define PENDING_SCOPE  2

/* Gives the session back after a job: clears busy and, when allowed,
** carries out a stop() or scope close that arrived meanwhile, through
** the session's own methods and protected. ud_idx: the job userdata.
** Never raises. */
static void session_settle(lua_State *L, struct job *j, int ud_idx,
                           int run_pending) {
  struct hold **hp, *h;
  int pending;
  if (!j->busy_held)
    return;
  j->busy_held = 0;
  for (hp = &j->pool->holds; *hp != NULL && (*hp)->n != j->n;
       hp = &(*hp)->next)
    ;
  h = *hp;
  if (h != NULL && --h->count > 0)
    return;                           /* another job still runs on it */
  if (h != NULL) {
    *hp = h->next;
    free(h);
  }
  j->n->busy = 0;
  pending = j->n->close_pending;
  if (!run_pending || pending == 0 || !lua_checkstack(L, 4))
    return;
  lua_getiuservalue(L, ud_idx, 1);                 /* ci */
  if (pending == PENDING_STOP) {
    lua_getfield(L, LUA_REGISTRYINDEX, AC_SESSION_MT);
    lua_getfield(L, -1, "__index");                /* ci, mt, index */
    lua_remove(L, -2);
    lua_pushvalue(L, -2);
    lua_pushliteral(L, "stop");
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {         /* ci, stop */
      lua_pop(L, 2);
      return;
    }
  } else if (pending != PENDING_SCOPE ||
             luaL_getmetafield(L, -1, "__close") == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }                                                /* ci, fn */
  lua_insert(L, -2);                               /* fn, ci */
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    lua_warning(L, "agentcube.async: deferred close failed: ", 1);
    lua_warning(L, luaL_tolstring(L, -1, NULL), 0);
    lua_pop(L, 2);
  }
}

/* ---------------------------------------------------------------------- */
/* Jobs: native half                                                       */

static void job_free(struct job *j) {
  if (j == NULL)
    return;
  free(j->line);
  free(j->argv);
  free(j->a);
  free(j->b);
  free(j->data);
  free(j->env);
  free(j->working_dir);
  ac_exec_result_free(&j->exec);
  ac_file_list_free(&j->list);
  free(j->bytes);
  free(j);
}

/* Runs on a worker: libagentcube only. */
static void job_run(struct job *j) {
  switch (j->op) {
  case OP_EXEC:
    j->o.check = j->check;
    if (j->line != NULL)
      j->rc = ac_session_exec_line(j->s, j->line, &j->o, &j->exec, &j->err);
    else
      j->rc = ac_session_exec(j->s, (const char *const *)j->argv, j->argc,
                              &j->o, &j->exec, &j->err);
    break;
  case OP_RUN:
    j->rc = ac_session_run_code(j->s, j->a, j->data, j->len, &j->o,
                                &j->exec, &j->err);
    break;
  case OP_WRITE:
    j->rc = ac_session_write_file(j->s, j->a, j->data, j->len, &j->err);
    break;
  case OP_UPLOAD:
    j->rc = ac_session_upload_file(j->s, j->a, j->b, &j->err);
    break;
  case OP_DOWNLOAD:
    j->rc = ac_session_download_file(j->s, j->a, j->b, &j->err);
    break;
  case OP_LIST:
    j->rc = ac_session_list_files(j->s, j->a, &j->list, &j->err);
    break;
  case OP_READ:
    j->rc = ac_session_read_file(j->s, j->a, 0, &j->bytes, &j->nbytes,
                                 &j->err);
    break;
  case OP_STOP:
    if (j->stop_ms > 0)
      j->rc = ac_session_stop_within(j->s, j->stop_ms, &j->err);
    else
      j->rc = ac_session_stop(j->s, &j->err);
    break;
  }
}

static void *worker(void *arg) {
  struct pool *p = arg;
  struct job *j;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    /* max_threads bounds the jobs that run at once, whatever the
    ** number of workers started earlier; a stop (queued first) is not
    ** held back: it is how a caller ends the jobs that fill the pool */
    while ((p->head == NULL || (p->running >= p->max_threads &&
                                p->head->op != OP_STOP)) &&
           !p->shutdown) {
      p->idle++;
      pthread_cond_wait(&p->work, &p->mu);
      p->idle--;
    }
    if (p->shutdown)
      break;
    j = p->head;
    p->head = j->next;
    if (p->head == NULL)
      p->tail = NULL;
    p->queued--;
    j->next = NULL;
    j->state = J_RUNNING;
    j->t_started = now();
    p->running++;
    pthread_mutex_unlock(&p->mu);
    job_run(j);
    pthread_mutex_lock(&p->mu);
    p->running--;
    j->t_finished = now();
    j->state = J_DONE;
    pthread_cond_broadcast(&p->done);
    if (p->head != NULL)
      pthread_cond_signal(&p->work);  /* a queued job may go now */
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* Removes a queued job from the queue. Called with the mutex held. */
static void unqueue(struct pool *p, struct job *j) {
  struct job **pp;
  for (pp = &p->head; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == j) {
      *pp = j->next;
      break;
    }
  }
  p->tail = NULL;
  for (struct job *k = p->head; k != NULL; k = k->next)
    p->tail = k;
  p->queued--;
  j->next = NULL;
  j->state = J_CANCELLED;
  j->t_finished = now();
}

/* Starts one more worker when every worker is taken (urgent: even past
** max_threads, for a stop). Signals are blocked in the new thread (it
** inherits the mask set around pthread_create). Called with the mutex
** held; 0 when no worker exists nor could start. */
static int maybe_spawn(struct pool *p, int urgent) {
  sigset_t all, old;
  int rc;
  if ((size_t)p->idle > p->queued || p->nthreads >= ACASYNC_MAX_THREADS ||
      (p->nthreads >= p->max_threads && !urgent))
    return p->nthreads > 0;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  rc = pthread_create(&p->threads[p->nthreads], NULL, worker, p);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc == 0)
    p->nthreads++;
  return p->nthreads > 0;
}

/* ---------------------------------------------------------------------- */
/* The pool userdata                                                       */

/* __gc: stops and joins the workers. Runs after every job's __gc (the
** pool was created first), so no worker holds a job any more. */
static int pool_gc(lua_State *L) {
  struct pool *p = luaL_testudata(L, 1, POOL_MT);
  int i;
  if (p == NULL || !p->live)
    return 0;
  pthread_mutex_lock(&p->mu);
  p->shutdown = 1;
  while (p->head != NULL)
    unqueue(p, p->head);
  pthread_cond_broadcast(&p->work);
  pthread_cond_broadcast(&p->done);
  pthread_mutex_unlock(&p->mu);
  for (i = 0; i < p->nthreads; i++)
    pthread_join(p->threads[i], NULL);
  p->nthreads = 0;
  while (p->holds != NULL) {
    struct hold *h = p->holds;
    p->holds = h->next;
    free(h);
  }
  pthread_cond_destroy(&p->work);
  pthread_cond_destroy(&p->done);
  pthread_mutex_destroy(&p->mu);
  p->live = 0;
  return 0;
}

static struct pool *get_pool(lua_State *L) {
  return luaL_checkudata(L, lua_upvalueindex(1), POOL_MT);
}

/* ---------------------------------------------------------------------- */
/* Arguments (main thread, before the job is queued)                       */

/* A malloc'd copy of the string field k of args, or NULL when absent
** (required: raise). The job owns the copy as soon as it is stored. */
static char *opt_string(lua_State *L, int args, const char *k, int required,
                        size_t *len) {
  size_t l;
  const char *s;
  char *c;
  int t = lua_getfield(L, args, k);
  if (t == LUA_TNIL && !required) {
    lua_pop(L, 1);
    return NULL;
  }
  /* luaL_error does not return; the returns after it say so */
  if (t != LUA_TSTRING && t != LUA_TNUMBER) {
    luaL_error(L, "bad argument '%s' (string expected, got %s)", k,
               luaL_typename(L, -1));
    return NULL;
  }
  s = lua_tolstring(L, -1, &l);
  c = malloc(l + 1);
  if (c == NULL) {
    luaL_error(L, "not enough memory");
    return NULL;
  }
  memcpy(c, s, l + 1);
  lua_pop(L, 1);
  if (len != NULL)
    *len = l;
  else if (strlen(c) != l) {
    free(c);
    luaL_error(L, "bad argument '%s' (string without NUL expected)", k);
    return NULL;
  }
  return c;
}

static void check_keys(lua_State *L, int args, const char *const *keys) {
  aclua_check_keys(L, args, keys, "unknown argument");
}

/* Copies the strings of the array (pairs 0) or name->value table
** (pairs 1) at idx into one malloc'd block, pointers or ac_kv pairs
** first, then the bytes. The block is stored in *out, which the job owns,
** before anything else can raise. */
static void copy_block(lua_State *L, int idx, int pairs, void **out,
                       size_t *count) {
  size_t n = 0, total = 0, len, i = 0;
  size_t slot = pairs ? sizeof(struct ac_kv) : sizeof(char *);
  char *bytes;
  const char *s;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    int vt = lua_type(L, -1);
    if ((vt != LUA_TSTRING && vt != LUA_TNUMBER) ||
        (pairs ? lua_type(L, -2) != LUA_TSTRING : !lua_isinteger(L, -2)))
      luaL_error(L, pairs ? "bad argument 'env' (string names and values "
                 "expected)" : "bad argument 'command' (an array of "
                 "strings expected)");
    lua_tolstring(L, -1, &len);       /* a value: may be converted */
    total += len + 1;
    if (pairs)
      total += strlen(lua_tostring(L, -2)) + 1;
    n++;
    lua_pop(L, 1);
  }
  if (!pairs && n != (size_t)lua_rawlen(L, idx))
    luaL_error(L, "bad argument 'command' (an array expected)");
  *out = malloc((n + 1) * slot + total);
  if (*out == NULL) {
    luaL_error(L, "not enough memory");
    return;                           /* not reached: luaL_error raises */
  }
  bytes = (char *)*out + (n + 1) * slot;
  if (pairs) {
    struct ac_kv *kv = *out;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
      s = lua_tolstring(L, -2, &len);
      memcpy(bytes, s, len + 1);
      kv[i].key = bytes;
      bytes += len + 1;
      s = lua_tolstring(L, -1, &len);
      memcpy(bytes, s, len + 1);
      kv[i].value = bytes;
      bytes += len + 1;
      i++;
      lua_pop(L, 1);
    }
  } else {
    char **argv = *out;
    for (i = 0; i < n; i++) {
      lua_rawgeti(L, idx, (lua_Integer)i + 1);
      s = lua_tolstring(L, -1, &len);
      memcpy(bytes, s, len + 1);
      argv[i] = bytes;
      bytes += len + 1;
      lua_pop(L, 1);
    }
    argv[n] = NULL;
  }
  *count = n;
}

static void exec_common(lua_State *L, int args, struct job *j) {
  int isnum, t;
  lua_Number v;
  if (lua_getfield(L, args, "timeout") != LUA_TNIL) {
    char text[64];
    struct ac_error e;
    v = lua_tonumberx(L, -1, &isnum);
    if (!isnum)
      luaL_error(L, "bad argument 'timeout' (seconds expected)");
    /* a bad number is the library's EINVAL, as for the blocking call */
    if (ac_format_timeout((double)v, !lua_isinteger(L, -1), text,
                          sizeof text, &e) != AC_OK)
      aclua_raise(L, &e);
    j->o.timeout = (double)v;
    j->o.timeout_is_float = !lua_isinteger(L, -1);
  }
  lua_pop(L, 1);
  t = lua_getfield(L, args, "env");
  if (t == LUA_TTABLE)
    copy_block(L, lua_gettop(L), 1, (void **)&j->env, &j->nenv);
  else if (t != LUA_TNIL)
    luaL_error(L, "bad argument 'env' (table expected)");
  lua_pop(L, 1);
  j->o.env = j->env;
  j->o.nenv = j->nenv;
  lua_getfield(L, args, "check");
  j->check = lua_toboolean(L, -1);
  lua_pop(L, 1);
}

static void read_args(lua_State *L, int args, struct job *j) {
  static const char *const k_exec[] = { "command", "env", "working_dir",
                                        "timeout", "check", NULL };
  static const char *const k_run[] = { "language", "code", "env",
                                       "timeout", "check", NULL };
  static const char *const k_write[] = { "content", "path", NULL };
  static const char *const k_move[] = { "from", "to", NULL };
  static const char *const k_path[] = { "path", NULL };
  static const char *const k_stop[] = { "timeout", NULL };
  lua_Number v;
  int t, isnum;
  switch (j->op) {
  case OP_EXEC:
    check_keys(L, args, k_exec);
    t = lua_getfield(L, args, "command");
    if (t == LUA_TTABLE)
      copy_block(L, lua_gettop(L), 0, (void **)&j->argv, &j->argc);
    lua_pop(L, 1);
    if (t != LUA_TTABLE)
      j->line = opt_string(L, args, "command", 1, NULL);
    j->working_dir = opt_string(L, args, "working_dir", 0, NULL);
    j->o.working_dir = j->working_dir;
    exec_common(L, args, j);
    break;
  case OP_RUN:
    check_keys(L, args, k_run);
    j->a = opt_string(L, args, "language", 1, NULL);
    j->data = opt_string(L, args, "code", 1, &j->len);
    exec_common(L, args, j);
    break;
  case OP_WRITE:
    check_keys(L, args, k_write);
    j->data = opt_string(L, args, "content", 1, &j->len);
    j->a = opt_string(L, args, "path", 1, NULL);
    break;
  case OP_UPLOAD:
  case OP_DOWNLOAD:
    check_keys(L, args, k_move);
    j->a = opt_string(L, args, "from", 1, NULL);
    j->b = opt_string(L, args, "to", 1, NULL);
    /* upload_file(local, remote) and download_file(remote, local) both
    ** take from, then to */
    break;
  case OP_LIST:
  case OP_READ:
    check_keys(L, args, k_path);
    j->a = opt_string(L, args, "path", j->op == OP_READ, NULL);
    if (j->a == NULL) {
      j->a = strdup(".");
      if (j->a == NULL)
        luaL_error(L, "not enough memory");
    }
    break;
  case OP_STOP:
    check_keys(L, args, k_stop);
    if (lua_getfield(L, args, "timeout") != LUA_TNIL) {
      v = lua_tonumberx(L, -1, &isnum);
      if (!isnum || !(v > 0) || v > 1e6)
        luaL_error(L, "bad argument 'timeout' (seconds expected)");
      j->stop_ms = (long)(v * 1000.0) + 1;
    }
    lua_pop(L, 1);
    break;
  }
}

/* ---------------------------------------------------------------------- */
/* Module functions                                                        */

static struct ljob *check_job(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, JOB_MT);
}

/***
** async.submit(session, op, args) -> job
** Queues op on session for a worker thread. Raises agentcube.Error
** (ECLOSED: the session was stopped; EBUSY: a call or job runs on it;
** EUNSUPPORTED: its client has a Lua auth provider), or a string for a
** bad op, argument or key.
*/
static int mod_submit(lua_State *L) {
  struct pool *p = get_pool(L);
  struct aclua_native *n;
  struct hold *h;
  struct ljob *lj;
  struct job *j;
  int op, ok;

  luaL_checkudata(L, 1, AC_SESSION_MT);
  op = luaL_checkoption(L, 2, NULL, op_names);
  if (lua_isnoneornil(L, 3)) {
    lua_settop(L, 2);
    lua_newtable(L);
  }
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  aclua_safe_point(L);
  /* closed first, then acquire (rule 8) */
  lj = lua_newuserdatauv(L, sizeof *lj, 1);        /* ci, op, args, job */
  lj->j = NULL;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, 4, 1);         /* the job anchors its session */
  luaL_setmetatable(L, JOB_MT);
  j = calloc(1, sizeof *j);
  if (j == NULL)
    return luaL_error(L, "not enough memory");
  lj->j = j;
  j->pool = p;
  j->op = (enum op)op;
  read_args(L, 3, j);
  n = session_native(L, 1);
  if (n == NULL)
    return aclua_raisef(L, AC_ECLOSED, "the session was stopped; this "
                        "client cannot be used any more");
  for (h = p->holds; h != NULL && h->n != n; h = h->next)
    ;
  if (n->busy && (op != OP_STOP || h == NULL))
    return aclua_raisef(L, AC_EBUSY, "session %s is busy: a call or job "
                        "is still running on it", ac_session_id(n->s));
  if (n->cb != NULL)
    return aclua_raisef(L, AC_EUNSUPPORTED, "session %s has a Lua auth "
                        "provider, which cannot run on a worker thread",
                        ac_session_id(n->s));
  if (!p->live)
    return luaL_error(L, "agentcube.async: the pool is closed");
  if (h == NULL) {                    /* owned by the pool from here */
    h = calloc(1, sizeof *h);
    if (h == NULL)
      return luaL_error(L, "not enough memory");
    h->n = n;
    h->next = p->holds;
    p->holds = h;
  }
  j->n = n;
  j->s = n->s;
  pthread_mutex_lock(&p->mu);
  ok = maybe_spawn(p, op == OP_STOP);
  if (ok) {
    h->count++;
    n->busy = 1;
    j->busy_held = 1;
    j->state = J_QUEUED;
    j->t_queued = now();
    if (op == OP_STOP) {              /* first in line */
      j->next = p->head;
      p->head = j;
      if (p->tail == NULL)
        p->tail = j;
    } else {
      if (p->tail != NULL)
        p->tail->next = j;
      else
        p->head = j;
      p->tail = j;
    }
    p->queued++;
    pthread_cond_broadcast(&p->work);
  }
  pthread_mutex_unlock(&p->mu);
  if (!ok) {
    if (h->count == 0) {              /* nothing holds it: unlink */
      p->holds = h->next;
      free(h);
    }
    return aclua_raisef(L, AC_ESYSTEM, "could not start a worker thread");
  }
  return 1;
}

/***
** async.wait_any(jobs, timeout_ms) -> job, index | nil
** Returns the first finished job of the array (and its index), waiting
** up to timeout_ms (0: just look) for one to finish. Never raises for
** the jobs' own failures (see job:result()).
*/
static int mod_wait_any(lua_State *L) {
  struct pool *p = get_pool(L);
  struct job **js;
  lua_Integer ms;
  struct timespec dl;
  size_t n, i, found = 0;
  double end;

  luaL_checktype(L, 1, LUA_TTABLE);
  ms = luaL_optinteger(L, 2, 0);
  luaL_argcheck(L, ms >= 0, 2, "not a duration");
  lua_settop(L, 2);
  n = (size_t)lua_rawlen(L, 1);
  js = lua_newuserdatauv(L, (n ? n : 1) * sizeof *js, 0);  /* scratch */
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, 1, (lua_Integer)i + 1);
    js[i] = check_job(L, -1)->j;
    lua_pop(L, 1);
  }
  end = now() + (double)ms / 1000.0;
  clock_gettime(CLOCK_MONOTONIC, &dl);
  dl.tv_sec += (time_t)(ms / 1000);
  dl.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (dl.tv_nsec >= 1000000000L) {
    dl.tv_sec++;
    dl.tv_nsec -= 1000000000L;
  }
  if (!p->live)
    return 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    for (i = 0; i < n && !found; i++)
      if (js[i] != NULL &&
          (js[i]->state == J_DONE || js[i]->state == J_CANCELLED))
        found = i + 1;
    if (found || now() >= end)
      break;
    if (pthread_cond_timedwait(&p->done, &p->mu, &dl) == ETIMEDOUT)
      end = 0;                        /* look once more, then stop */
  }
  pthread_mutex_unlock(&p->mu);
  if (!found)
    return 0;
  lua_rawgeti(L, 1, (lua_Integer)found);
  session_settle(L, js[found - 1], lua_gettop(L), 1);
  lua_pushinteger(L, (lua_Integer)found);
  return 2;
}

/***
** async.supported(session) -> true | false, reason
** Whether jobs can run on session (stopped, busy and Lua-auth sessions
** cannot).
*/
static int mod_supported(lua_State *L) {
  struct aclua_native *n = session_native(L, 1);
  const char *why = NULL;
  if (n == NULL)
    why = "the session was stopped";
  else if (n->busy)
    why = "the session is busy";
  else if (n->cb != NULL)
    why = "the session's client has a Lua auth provider";
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
** The most jobs that run at once, and so the most worker threads the
** pool starts (1..ACASYNC_MAX_THREADS). More workers started earlier
** stay, idle.
*/
static int mod_configure(lua_State *L) {
  struct pool *p = get_pool(L);
  static const char *const keys[] = { "threads", NULL };
  lua_Integer t;
  int prev = p->max_threads;
  luaL_checktype(L, 1, LUA_TTABLE);
  check_keys(L, 1, keys);
  if (lua_getfield(L, 1, "threads") != LUA_TNIL) {
    t = luaL_checkinteger(L, -1);
    luaL_argcheck(L, t >= 1 && t <= ACASYNC_MAX_THREADS, 1,
                  "threads out of range");
    pthread_mutex_lock(&p->mu);
    p->max_threads = (int)t;
    pthread_cond_broadcast(&p->work);  /* a raise may free jobs */
    pthread_mutex_unlock(&p->mu);
  }
  lua_pushinteger(L, prev);
  return 1;
}

/* ---------------------------------------------------------------------- */
/* Job methods                                                             */

static enum jstate job_state(struct job *j) {
  enum jstate st;
  pthread_mutex_lock(&j->pool->mu);
  st = j->state;
  pthread_mutex_unlock(&j->pool->mu);
  return st;
}

static void push_exec(lua_State *L, const struct ac_exec_result *r) {
  lua_createtable(L, 0, 4);
  lua_pushlstring(L, r->out ? r->out : "", r->out_len);
  lua_setfield(L, -2, "stdout");
  lua_pushlstring(L, r->err ? r->err : "", r->err_len);
  lua_setfield(L, -2, "stderr");
  lua_pushinteger(L, r->exit_code);
  lua_setfield(L, -2, "exit_code");
  lua_pushnumber(L, r->duration);
  lua_setfield(L, -2, "duration");
}

/***
** job:result() -> true, result | nil, agentcube.Error
** The outcome of a finished job, converted on this thread. Raises when
** the job is still queued or running.
*/
static int job_result(lua_State *L) {
  struct ljob *lj = check_job(L, 1);
  struct job *j = lj->j;
  struct ac_error err;
  enum jstate st;
  int isexec;
  luaL_argcheck(L, j != NULL, 1, "job released");
  st = job_state(j);
  if (st != J_DONE && st != J_CANCELLED)
    return luaL_error(L, "agentcube.async: the job is not finished");
  lua_settop(L, 1);
  session_settle(L, j, 1, 1);
  if (st == J_CANCELLED) {
    lua_pushnil(L);
    ac_error_set(&err, AC_EINTERRUPTED, "the job was cancelled");
    aclua_push_error(L, &err);
    return 2;
  }
  isexec = j->op == OP_EXEC || j->op == OP_RUN;
  if (isexec && (j->rc == AC_OK || (j->rc == AC_ECOMMAND && !j->check))) {
    lua_pushboolean(L, 1);
    push_exec(L, &j->exec);
    return 2;
  }
  if (isexec && j->rc == AC_ECOMMAND) {
    lua_pushnil(L);
    aclua_push_error(L, &j->err);
    lua_pushinteger(L, j->exec.exit_code);
    lua_setfield(L, -2, "exit_code");
    lua_pushlstring(L, j->exec.err ? j->exec.err : "", j->exec.err_len);
    lua_setfield(L, -2, "stderr");
    lua_pushlstring(L, j->exec.out ? j->exec.out : "", j->exec.out_len);
    lua_setfield(L, -2, "stdout");
    lua_pushstring(L, j->exec.command ? j->exec.command : "");
    lua_setfield(L, -2, "command");
    return 2;
  }
  if (j->rc != AC_OK) {
    lua_pushnil(L);
    aclua_push_error(L, &j->err);
    return 2;
  }
  if (j->op == OP_LIST) {
    /* the box (slot 2, to-be-closed) owns the parsed JSON meanwhile */
    struct aclua_box *box = aclua_box_new(L, ACLUA_BOX_JSON);
    if (aclua_push_json(L, box, j->list.json ? j->list.json : "[]",
                        j->list.json ? strlen(j->list.json) : 2,
                        &err) != AC_OK) {
      lua_pushnil(L);
      aclua_push_error(L, &err);
      return 2;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, -2);                             /* box, true, list */
    return 2;
  }
  lua_pushboolean(L, 1);
  if (j->op == OP_READ) {
    lua_createtable(L, 0, 1);
    lua_pushlstring(L, j->bytes ? j->bytes : "", j->nbytes);
    lua_setfield(L, -2, "content");
  } else {
    lua_newtable(L);
  }
  return 2;
}

/***
** job:cancel() -> boolean
** true when the job was still queued and now will not run; false when it
** already runs (it goes on; best effort) or is over.
*/
static int job_cancel(lua_State *L) {
  struct ljob *lj = check_job(L, 1);
  struct job *j = lj->j;
  int cancelled = 0;
  luaL_argcheck(L, j != NULL, 1, "job released");
  pthread_mutex_lock(&j->pool->mu);
  if (j->state == J_QUEUED) {
    unqueue(j->pool, j);
    cancelled = 1;
    pthread_cond_broadcast(&j->pool->done);
  } else if (j->state == J_RUNNING) {
    j->cancel = 1;
  }
  pthread_mutex_unlock(&j->pool->mu);
  if (cancelled)
    session_settle(L, j, 1, 1);
  lua_pushboolean(L, cancelled);
  return 1;
}

/***
** job:state() -> "queued" | "running" | "done" | "cancelled"
*/
static int job_state_m(lua_State *L) {
  static const char *const names[] = { "new", "queued", "running", "done",
                                       "cancelled" };
  struct ljob *lj = check_job(L, 1);
  luaL_argcheck(L, lj->j != NULL, 1, "job released");
  lua_pushstring(L, names[job_state(lj->j)]);
  return 1;
}

/***
** job:times() -> queued, started, finished (nil for what did not happen)
*/
static int job_times(lua_State *L) {
  struct ljob *lj = check_job(L, 1);
  struct job *j = lj->j;
  double t[3];
  int i;
  luaL_argcheck(L, j != NULL, 1, "job released");
  pthread_mutex_lock(&j->pool->mu);
  t[0] = j->t_queued;
  t[1] = j->t_started;
  t[2] = j->t_finished;
  pthread_mutex_unlock(&j->pool->mu);
  for (i = 0; i < 3; i++) {
    if (t[i] > 0)
      lua_pushnumber(L, (lua_Number)t[i]);
    else
      lua_pushnil(L);
  }
  return 3;
}

/*
** __gc and __close: idempotent, never raises, never does network I/O.
** A queued job is unqueued; a running one is waited for (its worker uses
** the session this job keeps alive). The session's busy mark is cleared;
** a close deferred meanwhile is left to the session.
*/
static int job_release(lua_State *L) {
  struct ljob *lj = luaL_testudata(L, 1, JOB_MT);
  struct job *j;
  struct pool *p;
  if (lj == NULL || lj->j == NULL)
    return 0;
  j = lj->j;
  p = j->pool;
  if (p->live) {
    pthread_mutex_lock(&p->mu);
    if (j->state == J_QUEUED)
      unqueue(p, j);
    while (j->state == J_RUNNING)
      pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
  }
  lj->j = NULL;                       /* released first */
  session_settle(L, j, 1, 0);
  job_free(j);
  return 0;
}

static int job_tostring(lua_State *L) {
  struct ljob *lj = check_job(L, 1);
  if (lj->j == NULL)
    lua_pushliteral(L, "agentcube.async.Job (released)");
  else
    lua_pushfstring(L, "agentcube.async.Job (%s, %p)",
                    op_names[lj->j->op], (void *)lj->j);
  return 1;
}

int luaopen_agentcube_async(lua_State *L) {
  static const luaL_Reg fns[] = {
    { "submit", mod_submit },
    { "wait_any", mod_wait_any },
    { "supported", mod_supported },
    { "now", mod_now },
    { "configure", mod_configure },
    { NULL, NULL }
  };
  static const luaL_Reg methods[] = {
    { "result", job_result },
    { "cancel", job_cancel },
    { "state", job_state_m },
    { "times", job_times },
    { NULL, NULL }
  };
  static const luaL_Reg job_mt[] = {
    { "__gc", job_release },
    { "__close", job_release },
    { "__tostring", job_tostring },
    { NULL, NULL }
  };
  pthread_condattr_t ca;
  struct pool *p;

  luaL_checkversion(L);
  if (luaL_newmetatable(L, JOB_MT)) {
    luaL_setfuncs(L, job_mt, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, POOL_MT)) {
    lua_pushcfunction(L, pool_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  /* One pool per state, kept in the registry under its metatable name's
  ** sibling key; created closed, then initialised (rule 8). */
  if (lua_getfield(L, LUA_REGISTRYINDEX, POOL_MT ".instance") ==
      LUA_TNIL) {
    lua_pop(L, 1);
    p = lua_newuserdatauv(L, sizeof *p, 0);
    memset(p, 0, sizeof *p);
    luaL_setmetatable(L, POOL_MT);
    p->max_threads = ACASYNC_THREADS;
    if (pthread_mutex_init(&p->mu, NULL) != 0 ||
        pthread_condattr_init(&ca) != 0)
      return luaL_error(L, "agentcube.async: cannot create a mutex");
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_cond_init(&p->work, NULL) != 0 ||
        pthread_cond_init(&p->done, &ca) != 0) {
      pthread_condattr_destroy(&ca);
      return luaL_error(L, "agentcube.async: cannot create a condition");
    }
    pthread_condattr_destroy(&ca);
    p->live = 1;
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, POOL_MT ".instance");
  }                                                /* pool */
  luaL_newlibtable(L, fns);                        /* pool, M */
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, fns, 1);           /* every function: pool upvalue */
  return 1;
}
