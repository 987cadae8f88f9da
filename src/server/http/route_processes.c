/*
** route_processes.c -- background processes of the live sandbox
** (docs/extensions.md): start, list, get, output (an event stream, live
** with follow), stdin, signal, wait.
*/
#include "duration.h"
#include "exec_args.h"
#include "live.h"
#include "reply.h"
#include "routes.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *state_name(enum sbx_proc_state s) {
  switch (s) {
  case SBX_PROC_RUNNING: return "running";
  case SBX_PROC_EXITED: return "exited";
  case SBX_PROC_KILLED: return "killed";
  case SBX_PROC_TIMED_OUT: return "timed_out";
  }
  return "unknown";
}

/* The JSON of a process record. */
static json_t *live_proc_json(const struct sbx_proc_info *p) {
  char t0[40], t1[40];
  json_t *argv = json_array();
  for (size_t i = 0; argv && p->argv && p->argv[i]; i++)
    json_array_append_new(argv, json_string(p->argv[i]));
  return json_pack("{s:I, s:i, s:o, s:s, s:o, s:s, s:o, s:I, s:I}",
                   "id", (json_int_t)p->id, "pid", p->pid, "command", argv,
                   "state", state_name(p->state),
                   "exit_code", p->state == SBX_PROC_RUNNING
                     ? json_null() : json_integer(p->exit_code),
                   "start_time", fapi_rfc3339(p->start, t0),
                   "end_time", p->state == SBX_PROC_RUNNING
                     ? json_null() : json_string(fapi_rfc3339(p->end, t1)),
                   "output_bytes", (json_int_t)p->output_bytes,
                   "output_kept_from", (json_int_t)p->kept_from);
}

/* The {id} of the path; 0 when it is not a process id (ids start at 1). */
static unsigned proc_id(const struct req *r) {
  char *end;
  unsigned long v;
  errno = 0;
  v = strtoul(r->live_id, &end, 10);
  if (errno || *end || r->live_id[0] < '1' || r->live_id[0] > '9' ||
      v > 0xFFFFFFFFul)
    return 0;
  return (unsigned)v;
}

static enum MHD_Result reply_sbx(struct req *r, const struct ac_error *err) {
  if (err->code == AC_ENOTFOUND)
    return reply_error(r, FAM_PICOD, 404, "process %s not found",
                       r->live_id);
  return reply_error(r, FAM_PICOD, live_status(err->code), "%s", err->msg);
}

static enum MHD_Result reply_record(struct req *r, unsigned status,
                                    unsigned id) {
  struct sbx_proc_info p;
  struct ac_error err;
  json_t *o;
  if (sbx_proc_get(r->sess->box, id, &p, &err) != AC_OK)
    return reply_sbx(r, &err);
  o = live_proc_json(&p);
  sbx_proc_info_free(&p);
  return reply_json(r, status, o);
}

/* A JSON object body; absent is {} when empty_ok. NULL: 400 queued. */
static json_t *body_object(struct req *r, int empty_ok) {
  json_error_t jerr;
  json_t *body;
  if (r->len == 0 && empty_ok)
    return json_object();
  body = r->body ? json_loadb(r->body, r->len, 0, &jerr) : NULL;
  if (!json_is_object(body)) {
    json_decref(body);
    reply_error(r, FAM_PICOD, 400, "request body must be a JSON object");
    return NULL;
  }
  return body;
}

static enum MHD_Result start(struct req *r) {
  const struct ac_template *tpl = r->sess->tpl;
  json_t *body = body_object(r, 0), *in;
  struct exec_args a;
  struct sbx_exec_request er;
  struct sbx_proc_info p;
  struct ac_error err;
  enum MHD_Result ret = MHD_YES;
  char msg[512];

  memset(&a, 0, sizeof a);
  if (body == NULL)
    return MHD_YES;
  in = json_object_get(body, "stdin");
  if (in && !json_is_null(in) && !json_is_boolean(in)) {
    ret = reply_error(r, FAM_PICOD, 400, "stdin must be a boolean");
    goto out;
  }
  /* No timeout unless one is given: a background process lives until it
  ** ends, is signalled, or the session ends. */
  if (!exec_args_parse(body, tpl, 0, &a, msg, sizeof msg)) {
    ret = reply_error(r, FAM_PICOD, 400, "%s", msg);
    goto out;
  }
  if (!exec_args_request(r, &a, &er))
    goto out;
  if (sbx_proc_start(r->sess->box, &er, json_is_true(in), &p, &err) !=
      AC_OK) {
    ret = reply_error(r, FAM_PICOD, live_status(err.code),
                      "Failed to start process: %s", err.msg);
    goto out;
  }
  ret = reply_json(r, 201, live_proc_json(&p));
  sbx_proc_info_free(&p);
out:
  exec_args_free(&a);
  json_decref(body);
  return ret;
}

static enum MHD_Result list(struct req *r) {
  struct sbx_proc_info *v;
  struct ac_error err;
  size_t n;
  json_t *arr;
  if (sbx_proc_list(r->sess->box, &v, &n, &err) != AC_OK)
    return reply_error(r, FAM_PICOD, live_status(err.code), "%s", err.msg);
  arr = json_array();
  for (size_t i = 0; arr && i < n; i++)
    json_array_append_new(arr, live_proc_json(&v[i]));
  sbx_proc_list_free(v, n);
  return reply_json(r, 200, json_pack("{s:o}", "processes", arr));
}

/* {====================================================== output */

static void on_output_done(void *ud, const struct sbx_exec_result *res,
                           const struct sbx_ctx_result *ctx) {
  struct live_state *ls = ud;
  (void)ctx;
  ndjson_flush(&ls->nd);
  if (res) {          /* NULL: not following and the process still runs */
    json_t *ev = live_exit_json(res);
    struct sbx_proc_info p;
    struct ac_error err;
    /* The same state as the process's record (events come without the
    ** sandbox's lock, so asking for the record here is allowed). */
    if (ev && sbx_proc_get(ls->r->sess->box, ls->proc_id, &p, &err) ==
              AC_OK) {
      json_object_set_new(ev, "state", json_string(state_name(p.state)));
      sbx_proc_info_free(&p);
    }
    ndjson_event(ls->nd.s, ev);
  }
  stream_end(ls->nd.s, 0);
}

static enum MHD_Result output(struct req *r, unsigned id) {
  const char *off = MHD_lookup_connection_value(r->conn,
                                                MHD_GET_ARGUMENT_KIND,
                                                "offset");
  const char *fol = MHD_lookup_connection_value(r->conn,
                                                MHD_GET_ARGUMENT_KIND,
                                                "follow");
  struct sbx_task_events ev = { live_on_output, live_on_dropped,
                                 on_output_done };
  unsigned long long offset = 0;
  struct live_state *ls;
  struct sbx_task *task;
  struct ac_error err;
  struct sbx_proc_info p;
  int follow = fol && (!strcmp(fol, "1") || !strcasecmp(fol, "true"));

  if (off && *off) {
    char *end;
    errno = 0;
    offset = strtoull(off, &end, 10);
    if (errno || *end || off[0] == '-')
      return reply_error(r, FAM_PICOD, 400, "offset must be a whole "
                         "number of bytes");
  }
  /* Unknown processes are answered before the stream starts. */
  if (sbx_proc_get(r->sess->box, id, &p, &err) != AC_OK)
    return reply_sbx(r, &err);
  sbx_proc_info_free(&p);
  if ((ls = live_state_new(r)) == NULL)
    return reply_error(r, FAM_PICOD, 500, "out of memory");
  ls->proc_id = id;
  if (live_stream_open(r, ls) != 0)
    return MHD_YES;
  if (sbx_proc_watch(r->sess->box, id, offset, follow, &ev, ls, &task,
                     &err) != AC_OK) {
    ndjson_event(ls->nd.s, json_pack("{s:s, s:s, s:i}", "type", "error",
                                     "error", err.msg, "code",
                                     (int)live_status(err.code)));
    stream_end(ls->nd.s, 0);
    return MHD_YES;
  }
  live_set_task(r, task);
  return MHD_YES;
}

/* }====================================================== */

static enum MHD_Result write_stdin(struct req *r, unsigned id) {
  const char *eof = MHD_lookup_connection_value(r->conn,
                                                MHD_GET_ARGUMENT_KIND, "eof");
  struct ac_error err;
  int close_it = eof && (!strcmp(eof, "1") || !strcasecmp(eof, "true"));
  if (sbx_proc_write(r->sess->box, id, r->body ? r->body : "", r->len,
                     close_it, &err) != AC_OK) {
    if (err.code == AC_EBUSY)
      return reply_error(r, FAM_PICOD, 409, "process %s has no open stdin",
                         r->live_id);
    return reply_sbx(r, &err);
  }
  return reply_json(r, 200, json_pack("{s:I}", "written",
                                      (json_int_t)r->len));
}

/* "TERM", "SIGTERM", "term" or a number. 0 when unknown. */
static int parse_signal(json_t *v) {
  static const struct { const char *name; int sig; } names[] = {
    { "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT },
    { "KILL", SIGKILL }, { "TERM", SIGTERM }, { "USR1", SIGUSR1 },
    { "USR2", SIGUSR2 }, { "STOP", SIGSTOP }, { "CONT", SIGCONT },
    { "ALRM", SIGALRM }, { "PIPE", SIGPIPE }, { "ABRT", SIGABRT },
    { "WINCH", SIGWINCH },
  };
  const char *s;
  if (json_is_integer(v))
    return json_integer_value(v) > 0 && json_integer_value(v) < 65
      ? (int)json_integer_value(v) : 0;
  if (!json_is_string(v))
    return 0;
  s = json_string_value(v);
  if (!strncasecmp(s, "SIG", 3))
    s += 3;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcasecmp(s, names[i].name))
      return names[i].sig;
  if (*s >= '1' && *s <= '9') {
    char *end;
    long n = strtol(s, &end, 10);
    return *end == '\0' && n < 65 ? (int)n : 0;
  }
  return 0;
}

static enum MHD_Result send_signal(struct req *r, unsigned id) {
  json_t *body = body_object(r, 0);
  struct ac_error err;
  enum MHD_Result ret;
  int sig;
  if (body == NULL)
    return MHD_YES;
  sig = parse_signal(json_object_get(body, "signal"));
  json_decref(body);
  if (sig == 0)
    return reply_error(r, FAM_PICOD, 400, "signal must be a signal name "
                       "such as \"TERM\" or a number");
  if (sbx_proc_signal(r->sess->box, id, sig, &err) != AC_OK)
    return reply_sbx(r, &err);
  ret = reply_record(r, 200, id);
  return ret;
}

/* {====================================================== wait */

static void on_wait_output(void *ud, enum sbx_stream st,
                           unsigned long long off, const char *data,
                           size_t len) {
  (void)ud; (void)st; (void)off; (void)data; (void)len;
}

static void on_wait_done(void *ud, const struct sbx_exec_result *res,
                         const struct sbx_ctx_result *ctx) {
  struct live_state *ls = ud;
  (void)res; (void)ctx;
  pthread_mutex_lock(&ls->mu);
  ls->done = 1;
  pthread_cond_signal(&ls->cv);
  pthread_mutex_unlock(&ls->mu);
}

/* Waits on this worker (the connection is suspended meanwhile) for the
** process to end, the timeout, or the client to go away. */
static enum MHD_Result wait_for(struct req *r, unsigned id) {
  json_t *body = body_object(r, 1), *t;
  struct sbx_task_events ev = { on_wait_output, NULL, on_wait_done };
  struct live_state *ls;
  struct sbx_task *task;
  struct sbx_proc_info p;
  struct ac_error err;
  long long timeout_ns = -1;
  struct timespec until;

  if (body == NULL)
    return MHD_YES;
  t = json_object_get(body, "timeout");
  if (t && !json_is_null(t)) {
    if (!json_is_string(t) ||
        (*json_string_value(t) &&
         ac_duration_parse(json_string_value(t), &timeout_ns, &err) != AC_OK)) {
      json_decref(body);
      return reply_error(r, FAM_PICOD, 400, "timeout must be a duration "
                         "string such as \"30s\"");
    }
  }
  json_decref(body);
  if (sbx_proc_get(r->sess->box, id, &p, &err) != AC_OK)
    return reply_sbx(r, &err);
  if ((ls = live_state_new(r)) == NULL) {
    sbx_proc_info_free(&p);
    return reply_error(r, FAM_PICOD, 500, "out of memory");
  }
  pthread_mutex_init(&ls->mu, NULL);
  pthread_cond_init(&ls->cv, NULL);
  ls->has_sync = 1;
  /* Watch from the end of what it has written: only the end matters. */
  if (sbx_proc_watch(r->sess->box, id, p.output_bytes, 1, &ev, ls, &task,
                     &err) != AC_OK) {
    sbx_proc_info_free(&p);
    return reply_sbx(r, &err);
  }
  sbx_proc_info_free(&p);
  live_set_task(r, task);
  clock_gettime(CLOCK_REALTIME, &until);
  if (timeout_ns >= 0) {
    until.tv_sec += timeout_ns / 1000000000LL;
    until.tv_nsec += timeout_ns % 1000000000LL;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
  }
  pthread_mutex_lock(&ls->mu);
  while (!ls->done) {
    if (timeout_ns < 0) {
      /* Without a limit, look at the client now and then: one gone
      ** frees this worker (its hang-up cancels the watch). */
      struct timespec tick;
      clock_gettime(CLOCK_REALTIME, &tick);
      tick.tv_sec += 1;
      pthread_cond_timedwait(&ls->cv, &ls->mu, &tick);
    } else if (pthread_cond_timedwait(&ls->cv, &ls->mu, &until) != 0) {
      break;
    }
  }
  pthread_mutex_unlock(&ls->mu);
  return reply_record(r, 200, id);
}

/* }====================================================== */

enum MHD_Result route_processes(struct req *r) {
  unsigned id = 0;
  if (r->op != OP_PROC_START && r->op != OP_PROC_LIST &&
      (id = proc_id(r)) == 0)
    return reply_error(r, FAM_PICOD, 404, "process %s not found",
                       r->live_id);
  switch (r->op) {
  case OP_PROC_START: return start(r);
  case OP_PROC_LIST: return list(r);
  case OP_PROC_GET: return reply_record(r, 200, id);
  case OP_PROC_OUTPUT: return output(r, id);
  case OP_PROC_STDIN: return write_stdin(r, id);
  case OP_PROC_SIGNAL: return send_signal(r, id);
  case OP_PROC_WAIT: return wait_for(r, id);
  default: break;
  }
  return reply_text(r, 404, "404 page not found");
}
