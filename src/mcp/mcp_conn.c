/*
** mcp_conn.c -- one MCP client connection: the lifecycle (initialize and
** version negotiation first, then tools), the dispatcher, and the calls
** in flight.
**
** tools/call runs on a thread of its own so that the transport keeps
** reading: a notifications/cancelled that arrives while a command runs
** sets the call's cancel flag, which aborts the request in progress (the
** server kills a command whose client went away). A call that carries a
** progressToken gets a notifications/progress every second while it runs,
** always before its response.
*/
#include "mcp_toolkit.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CALLS 64
#define PROGRESS_INTERVAL_MS 1000

struct call {
  struct call *next;
  struct mcp_conn *conn;
  json_t *id;                 /* the request id (own reference) */
  json_t *progress_token;     /* NULL: no progress wanted */
  char *tool;
  json_t *args;
  struct mcp_sink *sink;
  mcp_cancel_flag cancel;
  int finished;               /* guarded by conn->mu */
  int progress;               /* the last progress number sent (conn->mu) */
  long long last_output_ms;   /* when output was last relayed (conn->mu) */
  pthread_cond_t tick;        /* wakes the progress thread early */
};

struct mcp_conn {
  pthread_mutex_t mu;
  pthread_cond_t idle;        /* signalled when a call ends */
  struct mcp_backend *backend;
  struct mcp_hostdir *hostdir;
  char version[16];           /* "" before initialize */
  struct call *calls;
  int ncalls;
};

static const char instructions[] =
  "Runs code and shell commands in isolated AgentCube sandboxes. Each "
  "tool call without session_id gets a fresh sandbox that is deleted "
  "after the call. For several steps, call create_session (or pass "
  "session_reuse=true) and pass the returned session_id to later calls; "
  "files and installed packages persist in a session, but each run_code "
  "is a new process (variables do not). Call stop_session when done. A "
  "session_id that expired is replaced once by a new sandbox (its files "
  "are lost) and the result says so (session_recovered).";

struct mcp_conn *mcp_conn_new(struct mcp_backend *b,
                              struct mcp_hostdir *hostdir) {
  struct mcp_conn *c = calloc(1, sizeof *c);
  if (c == NULL)
    return NULL;
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->idle, NULL);
  c->backend = b;
  c->hostdir = hostdir;
  return c;
}

const char *mcp_conn_version(struct mcp_conn *c) {
  const char *v;
  pthread_mutex_lock(&c->mu);
  v = c->version[0] ? c->version : NULL;
  pthread_mutex_unlock(&c->mu);
  return v;
}

/* Sends msg (stolen) to sink. */
static void emit(struct mcp_sink *sink, json_t *msg, int final) {
  char *text;
  if (msg == NULL) {          /* out of memory building it */
    if (final)
      sink->send(sink, NULL, 1);
    return;
  }
  text = json_dumps(msg, JSON_COMPACT | JSON_REAL_PRECISION(6));
  json_decref(msg);
  sink->send(sink, text, final);
  free(text);
}

static void reply_error(struct mcp_sink *sink, json_t *id, int code,
                        const char *why) {
  emit(sink, mcp_rpc_error(id, code, why), 1);
}

/* ---- initialize ---- */

static json_t *initialize(struct mcp_conn *c, json_t *params, int *code,
                          const char **why) {
  json_t *want = json_object_get(params, "protocolVersion");
  const char *chosen = MCP_PROTOCOL_LATEST;

  if (!json_is_string(want)) {
    *code = MCP_INVALID_PARAMS;
    *why = "initialize needs params.protocolVersion (a string)";
    return NULL;
  }
  /* Negotiation: the client's version when we speak it, else our latest
  ** (the client then decides whether it can go on). */
  for (int i = 0; mcp_protocol_versions[i] != NULL; i++)
    if (!strcmp(json_string_value(want), mcp_protocol_versions[i]))
      chosen = mcp_protocol_versions[i];
  pthread_mutex_lock(&c->mu);
  if (c->version[0]) {
    pthread_mutex_unlock(&c->mu);
    *code = MCP_INVALID_REQUEST;
    *why = "already initialized";
    return NULL;
  }
  snprintf(c->version, sizeof c->version, "%s", chosen);
  pthread_mutex_unlock(&c->mu);
  return json_pack("{s:s, s:{s:{s:b}}, s:{s:s, s:s, s:s}, s:s}",
                   "protocolVersion", chosen,
                   "capabilities", "tools", "listChanged", 0,
                   "serverInfo", "name", "agentcube", "title",
                   "AgentCube code interpreter", "version", AC_VERSION,
                   "instructions", instructions);
}

/* ---- tools/call on its own thread ---- */

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One notifications/progress for the call: a number that only grows, and
** message. */
static void progress(struct call *k, const char *message, size_t len) {
  int n;
  pthread_mutex_lock(&k->conn->mu);
  n = ++k->progress;
  pthread_mutex_unlock(&k->conn->mu);
  emit(k->sink, mcp_rpc_notification("notifications/progress",
         json_pack("{s:O, s:i, s:o}", "progressToken", k->progress_token,
                   "progress", n, "message", mcp_text(message, len))), 0);
}

/* Output as it arrives, each chunk one notification (stderr marked). */
static void relay_output(void *ud, int is_stderr, const char *data,
                         size_t len) {
  struct call *k = ud;
  pthread_mutex_lock(&k->conn->mu);
  k->last_output_ms = now_ms();
  pthread_mutex_unlock(&k->conn->mu);
  if (!is_stderr) {
    progress(k, data, len);
  } else {
    char *m = malloc(len + 10);
    if (m == NULL)
      return;
    memcpy(m, "[stderr] ", 9);
    memcpy(m + 9, data, len);
    progress(k, m, len + 9);
    free(m);
  }
}

/* A heartbeat while the call runs without output (a silent command, or a
** server that cannot stream), so the client sees it is alive. */
static void *progress_main(void *ud) {
  struct call *k = ud;
  struct mcp_conn *c = k->conn;
  long long start = now_ms();

  pthread_mutex_lock(&c->mu);
  while (!k->finished) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += PROGRESS_INTERVAL_MS / 1000;
    if (pthread_cond_timedwait(&k->tick, &c->mu, &until) != ETIMEDOUT ||
        k->finished || now_ms() - k->last_output_ms < PROGRESS_INTERVAL_MS)
      continue;
    pthread_mutex_unlock(&c->mu);
    {
      char msg[96];
      double secs = (double)(now_ms() - start) / 1000.0;
      int n = snprintf(msg, sizeof msg, "%s running for %.0f s", k->tool,
                       secs);
      progress(k, msg, (size_t)n);
    }
    pthread_mutex_lock(&c->mu);
  }
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

static void call_free(struct call *k) {
  json_decref(k->id);
  json_decref(k->progress_token);
  json_decref(k->args);
  free(k->tool);
  pthread_cond_destroy(&k->tick);
  k->sink->unref(k->sink);
  free(k);
}

static void *call_main(void *ud) {
  struct call *k = ud;
  struct mcp_conn *c = k->conn;
  struct mcp_tools_ctx ctx = { c->backend, c->hostdir, c, &k->cancel,
                               NULL, NULL };
  pthread_t ticker;
  int ticking = 0;
  json_t *result;
  struct call **p;

  if (k->progress_token != NULL) {
    ctx.output = relay_output;
    ctx.output_ud = k;
    ticking = pthread_create(&ticker, NULL, progress_main, k) == 0;
  }
  result = mcp_tools_call(&ctx, k->tool, k->args);

  pthread_mutex_lock(&c->mu);
  k->finished = 1;
  pthread_cond_signal(&k->tick);
  pthread_mutex_unlock(&c->mu);
  if (ticking)
    pthread_join(ticker, NULL);

  /* A cancelled request gets no response (the client has forgotten it);
  ** the sink still learns that nothing more will come. */
  if (k->cancel) {
    json_decref(result);
    k->sink->send(k->sink, NULL, 1);
  } else {
    emit(k->sink, mcp_rpc_result(k->id, result), 1);
  }

  pthread_mutex_lock(&c->mu);
  for (p = &c->calls; *p != NULL; p = &(*p)->next)
    if (*p == k) {
      *p = k->next;
      break;
    }
  c->ncalls--;
  pthread_cond_broadcast(&c->idle);
  pthread_mutex_unlock(&c->mu);
  call_free(k);
  return NULL;
}

static void tools_call(struct mcp_conn *c, json_t *id, json_t *params,
                       struct mcp_sink *sink) {
  json_t *name = json_object_get(params, "name");
  json_t *args = json_object_get(params, "arguments");
  json_t *meta = json_object_get(params, "_meta");
  json_t *token = json_object_get(meta, "progressToken");
  struct call *k;
  pthread_attr_t attr;
  pthread_t th;
  char why[160];

  if (!json_is_string(name)) {
    reply_error(sink, id, MCP_INVALID_PARAMS,
                "tools/call needs params.name (a string)");
    return;
  }
  if (args != NULL && !json_is_object(args) && !json_is_null(args)) {
    reply_error(sink, id, MCP_INVALID_PARAMS,
                "params.arguments must be an object");
    return;
  }
  if (!mcp_tools_exists(json_string_value(name))) {
    snprintf(why, sizeof why, "Unknown tool: %.100s",
             json_string_value(name));
    reply_error(sink, id, MCP_INVALID_PARAMS, why);
    return;
  }
  if (token != NULL && !json_is_string(token) && !json_is_integer(token))
    token = NULL;
  k = calloc(1, sizeof *k);
  if (k == NULL) {
    reply_error(sink, id, MCP_INTERNAL_ERROR, "out of memory");
    return;
  }
  k->conn = c;
  k->id = json_incref(id);
  k->progress_token = json_incref(token);
  k->tool = strdup(json_string_value(name));
  k->args = json_is_object(args) ? json_deep_copy(args) : json_object();
  k->sink = sink;
  sink->ref(sink);
  pthread_cond_init(&k->tick, NULL);
  if (k->tool == NULL || k->args == NULL) {
    call_free(k);
    reply_error(sink, id, MCP_INTERNAL_ERROR, "out of memory");
    return;
  }
  pthread_mutex_lock(&c->mu);
  if (c->ncalls >= MAX_CALLS) {
    pthread_mutex_unlock(&c->mu);
    call_free(k);
    reply_error(sink, id, MCP_INTERNAL_ERROR,
                "too many tool calls in flight on this connection");
    return;
  }
  k->next = c->calls;
  c->calls = k;
  c->ncalls++;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&th, &attr, call_main, k) != 0) {
    c->calls = k->next;
    c->ncalls--;
    pthread_mutex_unlock(&c->mu);
    call_free(k);
    reply_error(sink, id, MCP_INTERNAL_ERROR, "cannot start a thread");
  } else {
    pthread_mutex_unlock(&c->mu);
  }
  pthread_attr_destroy(&attr);
}

static void cancelled(struct mcp_conn *c, json_t *params) {
  json_t *rid = json_object_get(params, "requestId");
  pthread_mutex_lock(&c->mu);
  for (struct call *k = c->calls; k != NULL; k = k->next)
    if (rid != NULL && json_equal(k->id, rid)) {
      k->cancel = 1;
      pthread_cond_signal(&k->tick);
      mcp_backend_cancel(c->backend, &k->cancel);
    }
  pthread_mutex_unlock(&c->mu);
}

/* ---- dispatch ---- */

static void request(struct mcp_conn *c, const char *method, json_t *id,
                    json_t *params, struct mcp_sink *sink) {
  int code = MCP_INTERNAL_ERROR;
  const char *why = "out of memory";
  json_t *r;
  int ready = mcp_conn_version(c) != NULL;

  if (!strcmp(method, "initialize")) {
    r = initialize(c, params, &code, &why);
  } else if (!strcmp(method, "ping")) {
    r = json_object();
  } else if (!ready) {
    code = MCP_INVALID_REQUEST;
    why = "the server is not initialized: send initialize first";
    r = NULL;
  } else if (!strcmp(method, "tools/list")) {
    r = json_pack("{s:o}", "tools", mcp_tools_list(c->hostdir != NULL));
  } else if (!strcmp(method, "tools/call")) {
    tools_call(c, id, params, sink);
    return;
  } else {
    char msg[160];
    snprintf(msg, sizeof msg, "Method not found: %.100s", method);
    reply_error(sink, id, MCP_METHOD_NOT_FOUND, msg);
    return;
  }
  if (r == NULL)
    reply_error(sink, id, code, why);
  else
    emit(sink, mcp_rpc_result(id, r), 1);
}

int mcp_conn_handle(struct mcp_conn *c, const char *text, size_t len,
                    struct mcp_sink *sink) {
  json_error_t jerr;
  json_t *msg = json_loadb(text, len, JSON_DECODE_ANY, &jerr), *id, *params;
  const char *why, *method;
  int code, is_request = 0;
  char detail[200];

  if (msg == NULL) {
    snprintf(detail, sizeof detail, "Parse error: %s (column %d)",
             jerr.text, jerr.column);
    reply_error(sink, NULL, MCP_PARSE_ERROR, detail);
    return 1;
  }
  params = json_object_get(msg, "params");
  if (params == NULL)
    params = json_null();
  switch (mcp_rpc_classify(msg, &id, &code, &why)) {
  case MCP_BAD:
    /* The error answers the request when its id was readable; a
    ** notification's error has no one to go to but is still said, with a
    ** null id, as JSON-RPC asks for invalid requests. */
    reply_error(sink, id, code, why);
    is_request = 1;
    break;
  case MCP_REQUEST:
    method = json_string_value(json_object_get(msg, "method"));
    request(c, method, id, params, sink);
    is_request = 1;
    break;
  case MCP_NOTIFICATION:
    method = json_string_value(json_object_get(msg, "method"));
    if (!strcmp(method, "notifications/cancelled"))
      cancelled(c, params);
    /* notifications/initialized and anything unknown: nothing to say */
    break;
  case MCP_RESPONSE:
    break;                    /* we send no requests; nothing awaits it */
  }
  json_decref(msg);
  return is_request;
}

void mcp_conn_close(struct mcp_conn *c) {
  if (c == NULL)
    return;
  pthread_mutex_lock(&c->mu);
  for (struct call *k = c->calls; k != NULL; k = k->next) {
    k->cancel = 1;
    pthread_cond_signal(&k->tick);
    mcp_backend_cancel(c->backend, &k->cancel);
  }
  while (c->ncalls > 0)
    pthread_cond_wait(&c->idle, &c->mu);
  pthread_mutex_unlock(&c->mu);
  mcp_backend_release(c->backend, c);
  pthread_cond_destroy(&c->idle);
  pthread_mutex_destroy(&c->mu);
  free(c);
}
