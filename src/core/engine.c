/*
** engine.c -- the one engine every operation runs on: a libcurl multi
** handle driven through curl_multi_socket_action, its sockets and timers
** gathered in one epoll set whose descriptor is what a host polls.
**
** The epoll set holds libcurl's sockets (as libcurl asks through the
** socket callback), a timerfd armed for the earlier of libcurl's timeout
** and the next retry of a job, and an eventfd that ac_engine_interrupt
** writes (async-signal-safe). So the one descriptor becomes readable for
** every kind of news, and nothing ever runs on a thread of ours: libcurl's
** callbacks run inside curl_multi_socket_action, called from
** ac_engine_poll on the host's thread, and the host's callbacks run after
** it returns, from queues the libcurl callbacks filled.
**
** Retries follow the transport's policy (http.c): the easy handle leaves
** the multi handle, the job waits on the timer, and the same request goes
** out again.
*/
#include "job.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define ENGINE_SLICE_MS 50            /* interrupt flag checked this often */

struct ac_engine {
  CURLM *multi;
  int epfd;
  int tfd;                            /* timerfd */
  int efd;                            /* eventfd: interrupt, cancel */
  ac_job *jobs;                       /* every job not yet freed */
  long long curl_due;                 /* libcurl's timer; -1 none */
  volatile sig_atomic_t interrupted;  /* set by ac_engine_interrupt */
  const volatile sig_atomic_t *flag;  /* the host's interrupt flag */
  int completed;                      /* jobs completed in this poll */
  int delivering;                     /* inside deliver(): no recursion */
};

/* ---------------------------------------------------------------------- */
/* Timers and sockets                                                      */

static void arm_timer(ac_engine *e) {
  long long due = e->curl_due, now = ac_mono_ms();
  struct itimerspec its;
  for (ac_job *j = e->jobs; j != NULL; j = j->next) {
    if (j->retry_at > 0 && (due < 0 || j->retry_at < due))
      due = j->retry_at;
    if (j->in_multi && j->req.idle_timeout_ms > 0) {
      long long idle = j->x.last_move_ms + j->req.idle_timeout_ms + 1;
      if (due < 0 || idle < due)
        due = idle;
    }
  }
  memset(&its, 0, sizeof its);
  if (due >= 0) {
    long long in = due - now;
    if (in <= 0) {
      its.it_value.tv_nsec = 1;       /* now: 0 would disarm */
    } else {
      its.it_value.tv_sec = in / 1000;
      its.it_value.tv_nsec = (in % 1000) * 1000000L;
    }
  }
  timerfd_settime(e->tfd, 0, &its, NULL);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *ud) {
  ac_engine *e = ud;
  (void)multi;
  e->curl_due = timeout_ms < 0 ? -1 : ac_mono_ms() + timeout_ms;
  arm_timer(e);
  return 0;
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *ud,
                     void *sockp) {
  ac_engine *e = ud;
  struct epoll_event ev;
  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    epoll_ctl(e->epfd, EPOLL_CTL_DEL, s, NULL);
    curl_multi_assign(e->multi, s, NULL);
    return 0;
  }
  memset(&ev, 0, sizeof ev);
  ev.data.fd = s;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
    ev.events |= EPOLLIN;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
    ev.events |= EPOLLOUT;
  if (sockp == NULL) {
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, s, &ev) != 0 && errno == EEXIST)
      epoll_ctl(e->epfd, EPOLL_CTL_MOD, s, &ev);
    curl_multi_assign(e->multi, s, e);
  } else {
    epoll_ctl(e->epfd, EPOLL_CTL_MOD, s, &ev);
  }
  return 0;
}

enum ac_code ac_engine_new(ac_engine **out, struct ac_error *err) {
  ac_engine *e = calloc(1, sizeof *e);
  struct epoll_event ev;
  *out = NULL;
  if (e == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  e->epfd = e->tfd = e->efd = -1;
  e->curl_due = -1;
  e->epfd = epoll_create1(EPOLL_CLOEXEC);
  e->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  e->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (e->epfd < 0 || e->tfd < 0 || e->efd < 0) {
    enum ac_code rc = ac_error_errno(err, AC_ESYSTEM, errno, "engine");
    ac_engine_free(e);
    return rc;
  }
  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN;
  ev.data.fd = e->tfd;
  epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->tfd, &ev);
  ev.data.fd = e->efd;
  epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->efd, &ev);
  e->multi = curl_multi_init();
  if (e->multi == NULL) {
    ac_engine_free(e);
    return ac_error_set(err, AC_ENOMEM, "curl_multi_init failed");
  }
  curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
  curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
  curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
  *out = e;
  return AC_OK;
}

int ac_engine_fd(const ac_engine *e) {
  return e->epfd;
}

void ac_engine_interrupt(ac_engine *e) {
  uint64_t one = 1;
  ssize_t n;
  e->interrupted = 1;
  n = write(e->efd, &one, sizeof one);
  (void)n;
}

void ac_engine_set_interrupt_flag(ac_engine *e,
                                  const volatile sig_atomic_t *flag) {
  e->flag = flag;
}

static int interrupted(const ac_engine *e) {
  return e->interrupted || (e->flag != NULL && *e->flag);
}

/* ---------------------------------------------------------------------- */
/* Jobs                                                                    */

static void detach_transfer(ac_job *j) {
  if (j->easy != NULL && j->in_multi && j->eng != NULL)
    curl_multi_remove_handle(j->eng->multi, j->easy);
  j->in_multi = 0;
}

static void free_transfer(ac_job *j) {
  detach_transfer(j);
  if (j->easy != NULL)
    curl_easy_cleanup(j->easy);
  j->easy = NULL;
  free(j->url);
  free(j->body);
  curl_slist_free_all(j->headers);
  j->url = j->body = NULL;
  j->headers = NULL;
  j->retry_at = 0;
}

static void complete(ac_job *j, enum ac_code rc) {
  if (j->done)
    return;
  free_transfer(j);
  j->done = 1;
  j->done_pending = 1;
  j->rc = rc;
  if (rc == AC_OK)
    ac_error_clear(&j->err);
  else if (j->err.code == AC_OK || j->err.msg[0] == '\0')
    ac_error_set(&j->err, rc, "%s: %s", j->op, ac_strerror(rc));
  j->err.code = rc;
  if (j->eng != NULL)
    j->eng->completed++;
}

enum ac_code ac_job_new(ac_engine *e, ac_client *c, ac_session *s,
                        const char *op, const struct ac_job_callbacks *cbs,
                        ac_job **out, struct ac_error *err) {
  ac_job *j;
  *out = NULL;
  if (e == NULL || c == NULL)
    return ac_error_set(err, AC_EINVAL, "%s: NULL engine or client", op);
  j = calloc(1, sizeof *j);
  if (j == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  j->eng = e;
  j->c = ac_client_ref(c);
  j->s = s;
  j->op = op;
  if (cbs != NULL)
    j->cb = *cbs;
  j->chunks_tail = &j->chunks;
  j->exec.exit_code = -1;
  j->exec.duration = -1;
  ac_http_resp_init(&j->resp);
  ac_error_clear(&j->err);
  j->next = e->jobs;
  if (e->jobs != NULL)
    e->jobs->prev = j;
  e->jobs = j;
  *out = j;
  return AC_OK;
}

static void progress_cb(void *ud, curl_off_t dlnow, curl_off_t dltotal,
                        curl_off_t ulnow, curl_off_t ultotal) {
  ac_job *j = ud;
  long long done = ulnow > 0 || ultotal > 0 ? ulnow : dlnow;
  long long total = ulnow > 0 || ultotal > 0 ? ultotal : dltotal;
  if (done != j->prog_done || total != j->prog_total) {
    j->prog_done = done;
    j->prog_total = total;
    j->prog_pending = 1;
    /* ac_session_transfer: downloads count here; an upload counts the
    ** file's bytes in its read callback (these include the multipart
    ** framing). */
    if (j->s != NULL && ulnow == 0 && ultotal == 0) {
      atomic_store(&j->s->xfer_done, done);
      atomic_store(&j->s->xfer_total, total > 0 ? total : -1);
    }
  }
}

/* (Re)starts the job's current request on a fresh attempt. */
static enum ac_code launch(ac_job *j, struct ac_error *err) {
  CURLcode cc;
  CURLMcode mc;
  if (j->easy == NULL) {
    j->easy = curl_easy_init();
    if (j->easy == NULL)
      return ac_error_set(err, AC_ENOMEM, "%s: curl_easy_init failed",
                          j->op);
  } else {
    curl_easy_reset(j->easy);
  }
  memset(&j->x, 0, sizeof j->x);
  j->x.req = &j->req;
  j->x.resp = &j->resp;
  j->x.easy = j->easy;
  j->x.sinking = -1;
  j->x.last_move_ms = ac_mono_ms();
  j->x.progress = progress_cb;
  j->x.progress_ud = j;
  ac_error_clear(&j->x.cb_err);
  j->errbuf[0] = '\0';
  ac_buf_reset(&j->resp.body);
  j->resp.status = 0;
  j->resp.body.max = j->req.max_body;
  cc = ac_http_set_options(j->easy, &j->x, j->errbuf);
  if (cc == CURLE_OK)
    cc = curl_easy_setopt(j->easy, CURLOPT_PRIVATE, (char *)j);
  if (cc == CURLE_OK)
    cc = ac_client_share(j->c, j->easy);
  if (cc != CURLE_OK)
    return ac_error_set(err, cc == CURLE_OUT_OF_MEMORY ? AC_ENOMEM : AC_EIO,
                        "%s: %s", j->op, curl_easy_strerror(cc));
  if (j->req.prepare != NULL) {
    enum ac_code rc = j->req.prepare(j->req.prepare_ud, j->easy, err);
    if (rc != AC_OK)
      return rc;
  }
  ac_http_log(j->c->http, "> %s %s", j->req.method, j->req.url);
  j->started_ms = ac_mono_ms();
  mc = curl_multi_add_handle(j->eng->multi, j->easy);
  if (mc != CURLM_OK)
    return ac_error_set(err, AC_EIO, "%s: %s", j->op,
                        curl_multi_strerror(mc));
  j->in_multi = 1;
  return AC_OK;
}

enum ac_code ac_job_send(ac_job *j, struct ac_http_req *req, char *url,
                         char *body, struct curl_slist *headers,
                         struct ac_error *err) {
  /* The previous transfer's resources go; the easy handle stays (its
  ** options are reset by launch). */
  detach_transfer(j);
  free(j->url);
  free(j->body);
  curl_slist_free_all(j->headers);
  j->url = url;
  j->body = body;
  j->headers = headers;
  j->req = *req;
  j->req.url = url;
  j->req.headers = headers;
  if (body != NULL)
    j->req.body = body;
  j->attempt = 0;
  j->retry_at = 0;
  j->sent = 1;
  if (j->eng == NULL)
    return ac_error_set(err, AC_ECANCELED, "%s: engine is gone", j->op);
  if (interrupted(j->eng))
    return ac_error_set(err, AC_EINTERRUPTED, "%s: interrupted", j->op);
  return launch(j, err);
}

enum ac_code ac_job_abandon(ac_job *j, enum ac_code rc) {
  ac_job_free(j);
  return rc;
}

enum ac_code ac_job_queue_output(ac_job *j, enum ac_stream st,
                                 const char *data, size_t len) {
  struct ac_job_chunk *ch;
  if (len == 0 || j->cb.on_output == NULL)
    return AC_OK;
  ch = malloc(sizeof *ch + len);
  if (ch == NULL)
    return AC_ENOMEM;
  ch->next = NULL;
  ch->stream = st;
  ch->len = len;
  memcpy(ch->data, data, len);
  *j->chunks_tail = ch;
  j->chunks_tail = &ch->next;
  return AC_OK;
}

/* The local runtime names itself in every answer (docs/extensions.md,
** "Runtime identification"); an answer from the Router's address saying
** so lets the client use what only the local runtime understands (run_code
** removing its script, unambiguous file URLs). A cluster never sends it,
** so against one the requests stay the SDK's. */
static void note_runtime(ac_job *j) {
  struct curl_header *h = NULL;
  const char *router = j->c->router_url;
  if (atomic_load(&j->c->runtime_local) || j->req.url == NULL ||
      strncmp(j->req.url, router, strlen(router)) != 0)
    return;
  if (curl_easy_header(j->easy, "X-AgentCube-Runtime", 0, CURLH_HEADER, -1,
                       &h) == CURLHE_OK &&
      strncmp(h->value, "local/", 6) == 0)
    atomic_store(&j->c->runtime_local, 1);
}

/* A transfer ended (cc from libcurl): retry, or hand the outcome to the
** operation's step. */
static void transfer_done(ac_job *j, CURLcode cc) {
  enum ac_code rc;
  long status = 0, reqsize = 0;
  struct ac_error err;
  ac_engine *e = j->eng;

  curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(j->easy, CURLINFO_REQUEST_SIZE, &reqsize);
  curl_multi_remove_handle(e->multi, j->easy);
  j->in_multi = 0;
  j->resp.status = status;
  if (cc == CURLE_OK)
    note_runtime(j);
  if (cc == CURLE_OK)
    ac_http_log(j->c->http, "< %ld %s %s (%lld ms)", status, j->req.method,
                j->req.url, ac_mono_ms() - j->started_ms);
  else
    ac_http_log(j->c->http, "! %s %s: %s", j->req.method, j->req.url,
                j->errbuf[0] ? j->errbuf : curl_easy_strerror(cc));
  if (!j->req.no_retry && j->attempt < ac_http_max_retries(j->c->http) &&
      j->x.abort == ABORT_NONE && ac_http_may_retry(&j->req, cc, status,
                                                    reqsize)) {
    long wait = ac_http_backoff_ms(j->c->http, j->attempt);
    j->attempt++;
    ac_http_log(j->c->http, "retrying %s %s in %ld ms (attempt %d of %d)",
                j->req.method, j->req.url, wait, j->attempt + 1,
                ac_http_max_retries(j->c->http) + 1);
    j->retry_at = ac_mono_ms() + wait;
    arm_timer(e);
    return;
  }
  ac_error_clear(&err);
  if (cc != CURLE_OK)
    rc = ac_http_map_curl(&j->req, cc, &j->x, j->errbuf, &err);
  else if (status < 200 || status > 299)
    rc = ac_http_status_error(&j->req, &j->resp, &err);
  else
    rc = AC_OK;
  j->sent = 0;
  rc = j->step(j, rc, &err);
  if (j->sent && rc == AC_OK)
    return;                           /* the next request is on its way */
  j->err = err;
  complete(j, rc);
}

static void run_retries(ac_engine *e) {
  long long now = ac_mono_ms();
  for (ac_job *j = e->jobs; j != NULL; j = j->next) {
    if (j->done || j->retry_at <= 0 || j->retry_at > now)
      continue;
    j->retry_at = 0;
    {
      struct ac_error err;
      enum ac_code rc;
      ac_error_clear(&err);
      rc = launch(j, &err);
      if (rc != AC_OK) {
        j->err = err;
        complete(j, rc);
      }
    }
  }
}

/* libcurl calls the progress callback only when it works on a transfer,
** so a silent peer is noticed here: a transfer that moved no byte for its
** idle limit ends with AC_ETIMEOUT. */
static void check_idle(ac_engine *e) {
  long long now = ac_mono_ms();
  for (ac_job *j = e->jobs; j != NULL; j = j->next) {
    if (j->done || !j->in_multi || j->req.idle_timeout_ms <= 0 ||
        now - j->x.last_move_ms <= j->req.idle_timeout_ms)
      continue;
    ac_error_set(&j->err, AC_ETIMEOUT, "%s: no data moved for %ld ms",
                 j->op, j->req.idle_timeout_ms);
    {
      struct ac_error err = j->err;
      enum ac_code rc;
      detach_transfer(j);
      j->sent = 0;
      rc = j->step(j, AC_ETIMEOUT, &err);
      if (j->sent && rc == AC_OK)
        continue;
      j->err = err;
      complete(j, rc);
    }
  }
}

static void interrupt_all(ac_engine *e) {
  for (ac_job *j = e->jobs; j != NULL; j = j->next) {
    if (j->done)
      continue;
    ac_error_set(&j->err, AC_EINTERRUPTED, "%s: interrupted", j->op);
    complete(j, AC_EINTERRUPTED);
  }
}

static void read_done(ac_engine *e) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(e->multi, &left)) != NULL) {
    ac_job *j;
    char *p = NULL;
    if (m->msg != CURLMSG_DONE)
      continue;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &p);
    j = (ac_job *)p;
    if (j != NULL && !j->done)
      transfer_done(j, m->data.result);
  }
}

/* Runs the job's commit, once, with the outcome so far. */
static void run_commit(ac_job *j) {
  ac_job_step_fn commit = j->commit;
  struct ac_error err;
  enum ac_code rc;
  if (commit == NULL)
    return;
  j->commit = NULL;
  err = j->err;
  rc = commit(j, j->rc, &err);
  if (rc != j->rc) {
    j->rc = rc;
    j->err = err;
    j->err.code = rc;
  }
}

/* Delivers queued output, progress and completions. A callback may free
** other jobs, so the walk restarts after every delivery. A completion is
** delivered after the job's other events, its commit first. */
static void deliver(ac_engine *e) {
  int again = 1;
  if (e->delivering)
    return;
  e->delivering = 1;
  while (again) {
    again = 0;
    for (ac_job *j = e->jobs; j != NULL; j = j->next) {
      if (j->chunks != NULL) {
        struct ac_job_chunk *ch = j->chunks;
        j->chunks = ch->next;
        if (j->chunks == NULL)
          j->chunks_tail = &j->chunks;
        if (j->cb.on_output != NULL)
          j->cb.on_output(j->cb.ud, j, ch->stream, ch->data, ch->len);
        free(ch);
        again = 1;
        break;
      }
      if (j->prog_pending) {
        j->prog_pending = 0;
        if (j->cb.on_progress != NULL) {
          j->cb.on_progress(j->cb.ud, j, j->prog_done, j->prog_total);
          again = 1;
          break;
        }
      }
      if (j->done && j->done_pending) {
        j->done_pending = 0;
        run_commit(j);
        if (j->cb.on_done != NULL) {
          j->cb.on_done(j->cb.ud, j);
          again = 1;
          break;
        }
      }
    }
  }
  e->delivering = 0;
}

/* One round: wait up to ms for any descriptor, then act on what is ready. */
static void engine_round(ac_engine *e, long ms) {
  struct epoll_event evs[16];
  int n, running;
  if (interrupted(e)) {
    e->interrupted = 0;               /* a call ends what runs now only */
    interrupt_all(e);
    return;
  }
  n = epoll_wait(e->epfd, evs, 16, (int)ms);
  for (int i = 0; i < n; i++) {
    int fd = evs[i].data.fd;
    if (fd == e->tfd) {
      uint64_t x;
      ssize_t r = read(e->tfd, &x, sizeof x);
      (void)r;
      if (e->curl_due >= 0 && e->curl_due <= ac_mono_ms()) {
        e->curl_due = -1;
        curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0,
                                 &running);
      }
      run_retries(e);
      check_idle(e);
      arm_timer(e);
    } else if (fd == e->efd) {
      uint64_t x;
      ssize_t r = read(e->efd, &x, sizeof x);
      (void)r;
    } else {
      int mask = 0;
      if (evs[i].events & EPOLLIN)
        mask |= CURL_CSELECT_IN;
      if (evs[i].events & EPOLLOUT)
        mask |= CURL_CSELECT_OUT;
      if (evs[i].events & (EPOLLERR | EPOLLHUP))
        mask |= CURL_CSELECT_ERR;
      curl_multi_socket_action(e->multi, fd, mask, &running);
    }
  }
  /* A timer that fell due while we were busy elsewhere. */
  if (e->curl_due >= 0 && e->curl_due <= ac_mono_ms()) {
    e->curl_due = -1;
    curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  }
  read_done(e);
  check_idle(e);
  if (interrupted(e)) {
    e->interrupted = 0;
    interrupt_all(e);
  }
}

static int any_running(const ac_engine *e) {
  for (const ac_job *j = e->jobs; j != NULL; j = j->next)
    if (!j->done)
      return 1;
  return 0;
}

int ac_engine_poll(ac_engine *e, long timeout_ms) {
  long long deadline = timeout_ms < 0 ? -1 : ac_mono_ms() + timeout_ms;
  int completed;
  e->completed = 0;
  for (;;) {
    long ms = ENGINE_SLICE_MS;
    if (deadline >= 0) {
      long long left = deadline - ac_mono_ms();
      if (left < ms)
        ms = left < 0 ? 0 : (long)left;
    }
    engine_round(e, ms);
    if (e->completed > 0 || interrupted(e) || !any_running(e))
      break;
    if (deadline >= 0 && ac_mono_ms() >= deadline)
      break;
    /* Deliver output and progress while waiting for a completion. */
    deliver(e);
  }
  completed = e->completed;
  deliver(e);
  return completed;
}

void ac_engine_free(ac_engine *e) {
  if (e == NULL)
    return;
  while (e->jobs != NULL) {
    ac_job *j = e->jobs;
    free_transfer(j);
    if (!j->done) {
      ac_error_set(&j->err, AC_ECANCELED, "%s: engine freed", j->op);
      complete(j, AC_ECANCELED);
    }
    e->jobs = j->next;
    j->prev = j->next = NULL;
    j->eng = NULL;
  }
  if (e->multi != NULL)
    curl_multi_cleanup(e->multi);
  if (e->epfd >= 0)
    close(e->epfd);
  if (e->tfd >= 0)
    close(e->tfd);
  if (e->efd >= 0)
    close(e->efd);
  free(e);
}

/* ---------------------------------------------------------------------- */
/* Waiting, cancelling, results                                            */

int ac_job_done(const ac_job *j) {
  return j->done;
}

int ac_job_wait(ac_job *j, long timeout_ms) {
  long long deadline = timeout_ms < 0 ? -1 : ac_mono_ms() + timeout_ms;
  ac_engine *e = j->eng;
  while (!j->done && e != NULL) {
    long ms = ENGINE_SLICE_MS;
    if (deadline >= 0) {
      long long left = deadline - ac_mono_ms();
      if (left <= 0)
        break;
      if (left < ms)
        ms = (long)left;
    }
    engine_round(e, ms);
    deliver(e);
  }
  if (e != NULL)
    deliver(e);
  if (j->done)
    run_commit(j);                    /* waited for from inside a delivery */
  return j->done;
}

enum ac_code ac_job_result(const ac_job *j, struct ac_error *err) {
  if (!j->done)
    return ac_error_set(err, AC_EBUSY, "%s: still running", j->op);
  /* read from inside a delivery (ac_engine_poll nested in a callback):
  ** the outcome includes the commit. Jobs are allocated by ac_job_new,
  ** never const objects, so the cast is sound. */
  run_commit((ac_job *)(uintptr_t)j);
  if (err != NULL)
    *err = j->err;
  return j->rc;
}

void ac_job_cancel(ac_job *j) {
  if (j == NULL)
    return;
  if (j->done) {
    /* ended, but its completion not delivered yet: a success whose last
    ** action has not run can still be cancelled */
    if (j->commit != NULL && j->rc == AC_OK) {
      j->rc = AC_ECANCELED;
      ac_error_set(&j->err, AC_ECANCELED, "%s: cancelled", j->op);
    }
    return;
  }
  ac_error_set(&j->err, AC_ECANCELED, "%s: cancelled", j->op);
  ac_job_complete(j, AC_ECANCELED);
}

void ac_job_complete(ac_job *j, enum ac_code rc) {
  if (j->done)
    return;
  complete(j, rc);
  if (j->eng != NULL) {
    uint64_t one = 1;
    ssize_t n = write(j->eng->efd, &one, sizeof one);   /* on_done news */
    (void)n;
  }
}

void ac_job_free(ac_job *j) {
  struct ac_job_chunk *ch;
  if (j == NULL)
    return;
  if (j->done)
    run_commit(j);                    /* a success is kept even unread */
  free_transfer(j);
  if (j->eng != NULL) {
    if (j->prev != NULL)
      j->prev->next = j->next;
    else
      j->eng->jobs = j->next;
    if (j->next != NULL)
      j->next->prev = j->prev;
  }
  if (j->cleanup != NULL)
    j->cleanup(j);
  while ((ch = j->chunks) != NULL) {
    j->chunks = ch->next;
    free(ch);
  }
  ac_http_resp_free(&j->resp);
  ac_exec_result_free(&j->exec);
  if (j->session != NULL)
    ac_session_free(j->session);
  free(j->data);
  ac_file_list_free(&j->files);
  free(j->json);
  ac_client_free(j->c);
  free(j);
}

void ac_job_take_exec(ac_job *j, struct ac_exec_result *out) {
  *out = j->exec;
  memset(&j->exec, 0, sizeof j->exec);
  j->exec.exit_code = -1;
  j->exec.duration = -1;
}

ac_session *ac_job_take_session(ac_job *j) {
  ac_session *s = j->session;
  j->session = NULL;
  return s;
}

char *ac_job_take_data(ac_job *j, size_t *len) {
  char *d = j->data;
  if (len != NULL)
    *len = j->data_len;
  j->data = NULL;
  j->data_len = 0;
  return d;
}

void ac_job_take_files(ac_job *j, struct ac_file_list *out) {
  *out = j->files;
  memset(&j->files, 0, sizeof j->files);
}

const char *ac_job_json(const ac_job *j) {
  return j->json;
}

enum ac_code ac_job_finish_blocking(ac_job *j, struct ac_error *err) {
  ac_job_wait(j, -1);
  return ac_job_result(j, err);
}
