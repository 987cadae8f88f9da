/*
** mcp_backend.c -- every libagentcube call of the MCP server, and the
** table of the sessions it knows.
**
** Clients: a small pool, each client with its own interrupt flag, so that
** cancelling one tool call aborts exactly its request while the others
** keep their connections (and connection reuse keeps a call cheap). A
** session is attached to whichever pooled client runs the call (attaching
** does no I/O).
**
** Endpoint: WORKLOAD_MANAGER_URL/ROUTER_URL when set (a cluster, as the
** SDK reads them), else the local runtime, started on first use.
*/
#include "mcp.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 16
#define RELEASE_TIMEOUT_MS 10000

struct slot {
  ac_client *client;
  ac_engine *engine;            /* for streamed commands, made on demand */
  ac_session *sess;             /* the session it last served (cached) */
  volatile sig_atomic_t intr;   /* the client's interrupt flag */
  mcp_cancel_flag *watch;       /* the call it serves now */
  int busy;
};

struct known {
  struct known *next;
  char *id;
  const void *owner;
  int created;                  /* by this server (deleted at the end) */
  int pinned;                   /* by create_session */
  time_t created_at, used_at;
};

struct mcp_backend {
  pthread_mutex_t mu;
  pthread_cond_t freed;
  struct mcp_options o;
  int resolved, use_env;
  struct ac_local_endpoint ep;
  struct slot slots[MAX_CLIENTS];
  int nslots;
  struct known *known;
};

enum ac_code mcp_backend_new(const struct mcp_options *o,
                             struct mcp_backend **out, struct ac_error *err) {
  struct mcp_backend *b = calloc(1, sizeof *b);
  if (b == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  pthread_mutex_init(&b->mu, NULL);
  pthread_cond_init(&b->freed, NULL);
  b->o = *o;
  *out = b;
  return AC_OK;
}

void mcp_backend_free(struct mcp_backend *b) {
  if (b == NULL)
    return;
  for (int i = 0; i < b->nslots; i++) {
    ac_session_free(b->slots[i].sess);
    ac_engine_free(b->slots[i].engine);
    ac_client_free(b->slots[i].client);
  }
  while (b->known != NULL) {
    struct known *k = b->known;
    b->known = k->next;
    free(k->id);
    free(k);
  }
  pthread_cond_destroy(&b->freed);
  pthread_mutex_destroy(&b->mu);
  free(b);
}

/* Finds the endpoint once (under b->mu): the local runtime may have to be
** started, which every later client then shares. */
static enum ac_code resolve(struct mcp_backend *b, struct ac_error *err) {
  const char *wm = getenv("WORKLOAD_MANAGER_URL");
  const char *rt = getenv("ROUTER_URL");
  enum ac_code rc;

  if (b->resolved)
    return AC_OK;
  if ((wm != NULL && *wm) || (rt != NULL && *rt)) {
    b->use_env = 1;
  } else {
    rc = ac_local_default(&b->o.verbose, &b->ep, err);
    if (rc != AC_OK)
      return rc;
  }
  b->resolved = 1;
  return AC_OK;
}

static enum ac_code new_client(struct mcp_backend *b, struct slot *s,
                               struct ac_error *err) {
  struct ac_client_config cfg;
  ac_client_config_init(&cfg);
  if (!b->use_env) {
    cfg.workload_manager_url = b->ep.url;
    cfg.router_url = b->ep.url;
    cfg.auth_token = b->ep.token;
  } else {
    /* the token variables of AgentCube's MCP server */
    cfg.auth_token = getenv("API_TOKEN");
    if (cfg.auth_token == NULL || !*cfg.auth_token)
      cfg.auth_token = getenv("AGENTCUBE_API_TOKEN");
  }
  cfg.verbose = b->o.verbose;
  cfg.interrupt = &s->intr;
  return ac_client_new(&cfg, &s->client, err);
}

static enum ac_code take(struct mcp_backend *b, mcp_cancel_flag *cancel,
                         struct slot **out, struct ac_error *err) {
  enum ac_code rc;
  struct slot *s = NULL;

  pthread_mutex_lock(&b->mu);
  rc = resolve(b, err);
  while (rc == AC_OK && s == NULL) {
    for (int i = 0; i < b->nslots && s == NULL; i++)
      if (!b->slots[i].busy)
        s = &b->slots[i];
    if (s == NULL && b->nslots < MAX_CLIENTS) {
      rc = new_client(b, &b->slots[b->nslots], err);
      if (rc == AC_OK)
        s = &b->slots[b->nslots++];
    } else if (s == NULL) {
      pthread_cond_wait(&b->freed, &b->mu);
    }
  }
  if (s != NULL) {
    s->busy = 1;
    s->watch = cancel;
    s->intr = cancel != NULL && *cancel;
  }
  pthread_mutex_unlock(&b->mu);
  *out = s;
  return rc;
}

static void put(struct mcp_backend *b, struct slot *s) {
  pthread_mutex_lock(&b->mu);
  s->busy = 0;
  s->watch = NULL;
  s->intr = 0;
  pthread_cond_signal(&b->freed);
  pthread_mutex_unlock(&b->mu);
}

void mcp_backend_cancel(struct mcp_backend *b, mcp_cancel_flag *cancel) {
  pthread_mutex_lock(&b->mu);
  for (int i = 0; i < b->nslots; i++)
    if (b->slots[i].busy && b->slots[i].watch == cancel)
      b->slots[i].intr = 1;
  pthread_mutex_unlock(&b->mu);
}

/* The slot's session object for id (borrowed: it stays cached on the
** slot, which one thread uses at a time), so that a run of calls on one
** session does not rebuild it every time. */
static enum ac_code attach(struct mcp_backend *b, struct slot *s,
                           const char *id, ac_session **out,
                           struct ac_error *err) {
  enum ac_code rc;
  *out = NULL;
  if (s->sess != NULL && !ac_session_closed(s->sess) &&
      !strcmp(ac_session_id(s->sess), id)) {
    *out = s->sess;
    return AC_OK;
  }
  ac_session_free(s->sess);
  s->sess = NULL;
  rc = ac_session_attach(s->client, id, b->o.template_name, b->o.ns,
                         &s->sess, err);
  *out = s->sess;
  return rc;
}

/* ---- the table of known sessions ---- */

static struct known *find(struct mcp_backend *b, const char *id) {
  for (struct known *k = b->known; k != NULL; k = k->next)
    if (!strcmp(k->id, id))
      return k;
  return NULL;
}

static void remember(struct mcp_backend *b, const void *owner,
                     const char *id, int created, int pinned) {
  struct known *k;
  pthread_mutex_lock(&b->mu);
  k = find(b, id);
  if (k == NULL && (k = calloc(1, sizeof *k)) != NULL) {
    k->id = strdup(id);
    if (k->id == NULL) {
      free(k);
      k = NULL;
    } else {
      k->owner = owner;
      k->created = created;
      k->pinned = pinned;
      k->created_at = time(NULL);
      k->next = b->known;
      b->known = k;
    }
  }
  if (k != NULL)
    k->used_at = time(NULL);
  pthread_mutex_unlock(&b->mu);
}

static void forget(struct mcp_backend *b, const char *id) {
  pthread_mutex_lock(&b->mu);
  for (struct known **p = &b->known; *p != NULL; p = &(*p)->next)
    if (!strcmp((*p)->id, id)) {
      struct known *k = *p;
      *p = k->next;
      free(k->id);
      free(k);
      break;
    }
  pthread_mutex_unlock(&b->mu);
}

void mcp_backend_touch(struct mcp_backend *b, const void *owner,
                       const char *id) {
  remember(b, owner, id, 0, 0);
}

json_t *mcp_backend_sessions(struct mcp_backend *b, const void *owner) {
  json_t *a = json_array();
  char created[32], used[32];
  pthread_mutex_lock(&b->mu);
  for (struct known *k = b->known; k != NULL && a != NULL; k = k->next) {
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ",
             gmtime(&k->created_at));
    strftime(used, sizeof used, "%Y-%m-%dT%H:%M:%SZ", gmtime(&k->used_at));
    json_array_append_new(a, json_pack("{s:s, s:b, s:b, s:s, s:s}",
      "session_id", k->id, "created_by_this_server", k->created,
      "this_connection", k->owner == owner, "first_used", created,
      "last_used", used));
  }
  pthread_mutex_unlock(&b->mu);
  return a;
}

/* ---- sessions ---- */

int mcp_backend_pinned(struct mcp_backend *b, const char *id) {
  struct known *k;
  int pinned;
  pthread_mutex_lock(&b->mu);
  k = find(b, id);
  pinned = k != NULL && k->pinned;
  pthread_mutex_unlock(&b->mu);
  return pinned;
}

enum ac_code mcp_backend_create(struct mcp_backend *b, const void *owner,
                                int pinned, mcp_cancel_flag *cancel,
                                char **id, struct ac_error *err) {
  struct ac_session_opts so = { b->o.template_name, b->o.ns, b->o.ttl, NULL };
  char meta[96];
  struct slot *s;
  ac_session *sess = NULL;
  enum ac_code rc = take(b, cancel, &s, err);

  *id = NULL;
  if (rc != AC_OK)
    return rc;
  /* Who made it, for `agentcube sessions` and for whoever cleans up. */
  snprintf(meta, sizeof meta, "{\"createdBy\":\"agentcube-mcp\","
           "\"pid\":%ld}", (long)getpid());
  so.metadata_json = meta;
  rc = ac_session_create(s->client, &so, &sess, err);
  put(b, s);
  if (rc != AC_OK)
    return rc;
  *id = strdup(ac_session_id(sess));
  ac_session_free(sess);
  if (*id == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  remember(b, owner, *id, 1, pinned);
  return AC_OK;
}

static enum ac_code stop_within(struct mcp_backend *b, const char *id,
                                long ms, struct ac_error *err) {
  struct slot *s;
  ac_session *sess;
  enum ac_code rc = take(b, NULL, &s, err);
  if (rc != AC_OK)
    return rc;
  rc = attach(b, s, id, &sess, err);
  if (rc == AC_OK) {
    rc = ms > 0 ? ac_session_stop_within(sess, ms, err)
                : ac_session_stop(sess, err);
  }
  put(b, s);
  if (rc == AC_OK)
    forget(b, id);
  return rc;
}

enum ac_code mcp_backend_stop(struct mcp_backend *b, const char *id,
                              struct ac_error *err) {
  return stop_within(b, id, 0, err);
}

int mcp_backend_release(struct mcp_backend *b, const void *owner) {
  int n = 0;
  for (;;) {
    char *id = NULL;
    struct known *k;
    struct ac_error err;
    pthread_mutex_lock(&b->mu);
    for (k = b->known; k != NULL; k = k->next)
      if (k->owner == owner)
        break;
    if (k != NULL && (!k->created || b->o.keep)) {
      /* not ours to delete: just forget who used it */
      k->owner = NULL;
      pthread_mutex_unlock(&b->mu);
      continue;
    }
    if (k != NULL)
      id = strdup(k->id);
    pthread_mutex_unlock(&b->mu);
    if (k == NULL)
      break;
    if (id == NULL)
      break;
    if (stop_within(b, id, RELEASE_TIMEOUT_MS, &err) == AC_OK)
      n++;
    else
      fprintf(stderr, "agentcube mcp: could not delete session %s: %s\n",
              id, err.msg);
    forget(b, id);
    free(id);
  }
  return n;
}

/* ---- commands and files ---- */

struct output_relay {
  mcp_output_fn fn;
  void *ud;
};

static void on_output(void *ud, ac_job *j, enum ac_stream stream,
                      const char *data, size_t len) {
  struct output_relay *r = ud;
  (void)j;
  r->fn(r->ud, stream == AC_STREAM_STDERR, data, len);
}

/* The command as a job on the slot's engine, its output relayed as it
** comes; the call's cancel flag is the engine's interrupt flag, so a
** cancellation closes the connection, which ends the command on the
** local runtime. */
static enum ac_code exec_job(struct slot *s, ac_session *sess,
                             const struct mcp_exec *x,
                             const struct ac_exec_opts *eo,
                             mcp_cancel_flag *cancel, mcp_output_fn output,
                             void *output_ud, struct ac_exec_result *res,
                             struct ac_error *err) {
  struct output_relay relay = { output, output_ud };
  struct ac_job_callbacks cbs = { 0 };
  ac_job *job = NULL;
  enum ac_code rc;

  if (s->engine == NULL && (rc = ac_engine_new(&s->engine, err)) != AC_OK)
    return rc;
  ac_engine_set_interrupt_flag(s->engine, cancel != NULL ? cancel
                                                         : &s->intr);
  cbs.on_output = on_output;
  cbs.ud = &relay;
  if (x->language != NULL)
    rc = ac_start_run_code(s->engine, sess, x->language, x->code,
                           x->code_len, eo, &cbs, &job, err);
  else if (x->shell) {
    const char *argv[3] = { "bash", "-c", x->command };
    rc = ac_start_exec(s->engine, sess, argv, 3, eo, &cbs, &job, err);
  } else {
    rc = ac_start_exec_line(s->engine, sess, x->command, eo, &cbs, &job,
                            err);
  }
  if (rc == AC_OK) {
    ac_job_wait(job, -1);
    rc = ac_job_result(job, err);
    ac_job_take_exec(job, res);
  }
  ac_job_free(job);
  ac_engine_set_interrupt_flag(s->engine, &s->intr);
  return rc;
}

enum ac_code mcp_backend_exec(struct mcp_backend *b, const char *id,
                              const struct mcp_exec *x,
                              mcp_cancel_flag *cancel, mcp_output_fn output,
                              void *output_ud, struct ac_exec_result *res,
                              struct ac_error *err) {
  struct ac_exec_opts eo = { 0 };
  struct slot *s;
  ac_session *sess;
  enum ac_code rc;

  memset(res, 0, sizeof *res);
  res->exit_code = -1;
  res->duration = -1;
  rc = take(b, cancel, &s, err);
  if (rc != AC_OK)
    return rc;
  rc = attach(b, s, id, &sess, err);
  if (rc == AC_OK) {
    eo.timeout = x->timeout;
    eo.env = x->env;
    eo.nenv = x->nenv;
    if (x->language == NULL)
      eo.working_dir = x->working_dir;
    if (output != NULL) {
      eo.stream = 1;
      rc = exec_job(s, sess, x, &eo, cancel, output, output_ud, res, err);
    } else if (x->language != NULL) {
      rc = ac_session_run_code(sess, x->language, x->code, x->code_len, &eo,
                               res, err);
    } else if (x->shell) {
      const char *argv[3] = { "bash", "-c", x->command };
      rc = ac_session_exec(sess, argv, 3, &eo, res, err);
    } else {
      rc = ac_session_exec_line(sess, x->command, &eo, res, err);
    }
  }
  put(b, s);
  if (rc == AC_OK || rc == AC_ECOMMAND)
    remember(b, NULL, id, 0, 0);
  return rc;
}

enum ac_code mcp_backend_argv(const char *line, int shell, json_t **argv,
                              struct ac_error *err) {
  char **words = NULL;
  size_t n = 0;
  enum ac_code rc = AC_OK;

  *argv = json_array();
  if (shell) {
    json_array_append_new(*argv, json_string("bash"));
    json_array_append_new(*argv, json_string("-c"));
    json_array_append_new(*argv, json_string(line));
    return AC_OK;
  }
  rc = ac_shlex_split(line, &words, &n, err);
  for (size_t i = 0; rc == AC_OK && i < n; i++)
    json_array_append_new(*argv, json_string(words[i]));
  ac_argv_free(words);
  if (rc == AC_OK && n == 0)
    rc = ac_error_set(err, AC_EINVAL, "the command is empty");
  if (rc != AC_OK) {
    json_decref(*argv);
    *argv = NULL;
  }
  return rc;
}

static const enum ac_ext_op ext_ops[] = {
  [MCP_PROC_SPAWN] = AC_EXT_PROCESS_SPAWN,
  [MCP_PROC_LIST] = AC_EXT_PROCESS_LIST,
  [MCP_PROC_OUTPUT] = AC_EXT_PROCESS_OUTPUT,
  [MCP_PROC_SIGNAL] = AC_EXT_PROCESS_SIGNAL,
  [MCP_CTX_CREATE] = AC_EXT_CONTEXT_CREATE,
  [MCP_CTX_RUN] = AC_EXT_CONTEXT_RUN,
  [MCP_FS_REMOVE] = AC_EXT_FS_REMOVE,
  [MCP_FS_MKDIR] = AC_EXT_FS_MKDIR,
  [MCP_FS_STAT] = AC_EXT_FS_STAT,
  [MCP_FS_RENAME] = AC_EXT_FS_RENAME,
};

enum ac_code mcp_backend_ext(struct mcp_backend *b, const char *id,
                             const struct mcp_ext_req *req,
                             mcp_cancel_flag *cancel, mcp_output_fn output,
                             void *output_ud, json_t **answer,
                             struct ac_error *err) {
  struct output_relay relay = { output, output_ud };
  struct ac_job_callbacks cbs = { 0 };
  struct ac_ext_call call = { 0 };
  struct slot *s;
  ac_session *sess = NULL;
  ac_job *job = NULL;
  char *body = NULL;
  enum ac_code rc;

  *answer = NULL;
  rc = take(b, cancel, &s, err);
  if (rc != AC_OK)
    return rc;
  call.op = ext_ops[req->op];
  call.id = req->id;
  call.path = req->path;
  call.offset = req->offset;
  call.timeout = req->timeout;
  if (req->body != NULL) {
    body = json_dumps(req->body, JSON_COMPACT);
    call.json = body;
  }
  if (output != NULL) {
    cbs.on_output = on_output;
    cbs.ud = &relay;
  }
  rc = attach(b, s, id, &sess, err);
  if (rc == AC_OK && s->engine == NULL)
    rc = ac_engine_new(&s->engine, err);
  if (rc == AC_OK) {
    ac_engine_set_interrupt_flag(s->engine, cancel != NULL ? cancel
                                                           : &s->intr);
    rc = ac_start_ext(s->engine, sess, &call, &cbs, &job, err);
    if (rc == AC_OK) {
      ac_job_wait(job, -1);
      rc = ac_job_result(job, err);
      if (rc == AC_OK) {
        *answer = json_loads(ac_job_json(job), JSON_DECODE_ANY, NULL);
        if (*answer == NULL)
          rc = ac_error_set(err, AC_EPROTO, "malformed answer");
      }
    }
    ac_job_free(job);
    ac_engine_set_interrupt_flag(s->engine, &s->intr);
  }
  free(body);
  put(b, s);
  return rc;
}

/* Runs one file operation on a pooled client. */
#define WITH_SESSION(b, id, err, call)                                  \
  do {                                                                  \
    struct slot *s_;                                                    \
    ac_session *sess;                                                   \
    enum ac_code rc_ = take((b), NULL, &s_, (err));                     \
    if (rc_ != AC_OK)                                                   \
      return rc_;                                                       \
    rc_ = attach((b), s_, (id), &sess, (err));                          \
    if (rc_ == AC_OK)                                                   \
      rc_ = (call);                                                     \
    put((b), s_);                                                       \
    return rc_;                                                         \
  } while (0)

enum ac_code mcp_backend_write(struct mcp_backend *b, const char *id,
                               const char *path, const void *data,
                               size_t len, struct ac_error *err) {
  WITH_SESSION(b, id, err, ac_session_write_file(sess, path, data, len,
                                                 err));
}

enum ac_code mcp_backend_read(struct mcp_backend *b, const char *id,
                              const char *path, size_t max, char **data,
                              size_t *len, struct ac_error *err) {
  *data = NULL;
  *len = 0;
  WITH_SESSION(b, id, err, ac_session_read_file(sess, path, max, data, len,
                                                err));
}

static enum ac_code list_json(ac_session *sess, const char *path,
                              json_t **files, struct ac_error *err) {
  struct ac_file_list l = { 0 };
  enum ac_code rc = ac_session_list_files(sess, path, &l, err);
  if (rc == AC_OK) {
    *files = json_loads(l.json != NULL ? l.json : "[]", 0, NULL);
    if (*files == NULL)
      rc = ac_error_set(err, AC_EPROTO, "malformed file list");
  }
  ac_file_list_free(&l);
  return rc;
}

enum ac_code mcp_backend_list(struct mcp_backend *b, const char *id,
                              const char *path, json_t **files,
                              struct ac_error *err) {
  *files = NULL;
  WITH_SESSION(b, id, err, list_json(sess, path, files, err));
}

enum ac_code mcp_backend_upload(struct mcp_backend *b, const char *id,
                                const char *local, const char *remote,
                                struct ac_error *err) {
  WITH_SESSION(b, id, err, ac_session_upload_file(sess, local, remote, err));
}

enum ac_code mcp_backend_download(struct mcp_backend *b, const char *id,
                                  const char *remote, const char *local,
                                  struct ac_error *err) {
  WITH_SESSION(b, id, err, ac_session_download_file(sess, remote, local,
                                                    err));
}
