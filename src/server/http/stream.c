/*
** stream.c -- response bodies made off the event loop (see stream.h).
*/
#include "stream.h"
#include "budget.h"
#include "workers.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct stream {
  pthread_mutex_t mu;
  struct MHD_Connection *conn;   /* NULL once the response is gone */
  struct workers *workers;
  atomic_int *suspensions;       /* the server's count (request.h) */
  char *buf;
  size_t len, pos, cap;
  int ended, error;
  int suspended;                 /* the reader suspended the connection */
  int refilling;                 /* a refill job is queued or running */
  int holds;                     /* the response, the producer */
  int pooled;                    /* charged to the request pool */
  size_t charged;                /* bytes of it held, prepaid included */
  void (*refill)(void *, struct stream *);
  void (*free_ud)(void *);
  void *ud;
};

static void release(struct stream *s) {
  int last;
  pthread_mutex_lock(&s->mu);
  last = --s->holds == 0;
  pthread_mutex_unlock(&s->mu);
  if (!last)
    return;
  if (s->free_ud)
    s->free_ud(s->ud);
  if (s->charged)
    budget_pool_give(s->charged);
  pthread_mutex_destroy(&s->mu);
  free(s->buf);
  free(s);
}

struct stream *stream_new(struct req *r) {
  struct stream *s = calloc(1, sizeof *s);
  if (s == NULL)
    return NULL;
  pthread_mutex_init(&s->mu, NULL);
  s->conn = r->conn;
  s->workers = r->srv->workers;
  s->suspensions = &r->srv->suspended;
  s->holds = 1;                  /* the producer's */
  return s;
}

void stream_set_refill(struct stream *s,
                       void (*refill)(void *ud, struct stream *s), void *ud,
                       void (*free_ud)(void *ud)) {
  s->refill = refill;
  s->ud = ud;
  s->free_ud = free_ud;
}

/* Wakes the reader; called with the lock held. */
static void wake(struct stream *s) {
  if (s->suspended && s->conn) {
    s->suspended = 0;
    MHD_resume_connection(s->conn);
    atomic_fetch_sub(s->suspensions, 1);
  }
}

static void run_refill(void *arg) {
  struct stream *s = arg;
  s->refill(s->ud, s);
  pthread_mutex_lock(&s->mu);
  s->refilling = 0;
  wake(s);
  pthread_mutex_unlock(&s->mu);
  release(s);       /* the job's hold: the response may be gone by now */
}

static ssize_t reader(void *cls, uint64_t pos, char *out, size_t max) {
  struct stream *s = cls;
  ssize_t n;
  (void)pos;
  pthread_mutex_lock(&s->mu);
  if (s->pos < s->len) {
    n = (ssize_t)(s->len - s->pos < max ? s->len - s->pos : max);
    memcpy(out, s->buf + s->pos, (size_t)n);
    s->pos += (size_t)n;
    if (s->pos == s->len)
      s->pos = s->len = 0;
    pthread_mutex_unlock(&s->mu);
    return n;
  }
  if (s->ended) {
    n = s->error ? MHD_CONTENT_READER_END_WITH_ERROR
                 : MHD_CONTENT_READER_END_OF_STREAM;
    pthread_mutex_unlock(&s->mu);
    return n;
  }
  /* Nothing yet: step out of the event loop until there is. */
  if (s->refill && !s->refilling) {
    s->refilling = 1;
    s->holds++;
    if (workers_submit(s->workers, run_refill, s) != 0) {
      s->holds--;
      s->refilling = 0;
      pthread_mutex_unlock(&s->mu);
      return MHD_CONTENT_READER_END_WITH_ERROR;
    }
  }
  s->suspended = 1;
  atomic_fetch_add(s->suspensions, 1);
  MHD_suspend_connection(s->conn);
  pthread_mutex_unlock(&s->mu);
  return 0;
}

static void response_gone(void *cls) {
  struct stream *s = cls;
  pthread_mutex_lock(&s->mu);
  s->conn = NULL;
  pthread_mutex_unlock(&s->mu);
  release(s);
}

struct MHD_Response *stream_response(struct stream *s, uint64_t size) {
  struct MHD_Response *resp;
  pthread_mutex_lock(&s->mu);
  s->holds++;
  pthread_mutex_unlock(&s->mu);
  resp = MHD_create_response_from_callback(size, 64 * 1024, reader, s,
                                           response_gone);
  if (resp == NULL)
    release(s);
  return resp;
}

int stream_write(struct stream *s, const void *data, size_t len) {
  int rc = 0;
  pthread_mutex_lock(&s->mu);
  if (s->conn == NULL || s->ended) {
    pthread_mutex_unlock(&s->mu);
    return 0;                    /* nobody reads any more */
  }
  if (s->pos > 0 && s->len + len > s->cap) {
    memmove(s->buf, s->buf + s->pos, s->len - s->pos);
    s->len -= s->pos;
    s->pos = 0;
  }
  if (s->len + len > s->cap) {
    size_t cap = s->cap ? s->cap : 4096;
    char *grown;
    while (cap < s->len + len)
      cap *= 2;
    if ((grown = realloc(s->buf, cap)) == NULL)
      rc = -1;
    else {
      s->buf = grown;
      s->cap = cap;
    }
  }
  if (rc == 0) {
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    wake(s);
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

void stream_end(struct stream *s, int error) {
  pthread_mutex_lock(&s->mu);
  if (!s->ended) {
    s->ended = 1;
    s->error = error;
  }
  wake(s);
  pthread_mutex_unlock(&s->mu);
}

int stream_use_pool(struct stream *s, size_t prepaid) {
  if (!budget_pool_take(prepaid))
    return -1;
  pthread_mutex_lock(&s->mu);
  s->pooled = 1;
  s->charged += prepaid;
  pthread_mutex_unlock(&s->mu);
  return 0;
}

int stream_room(struct stream *s, size_t len) {
  int ok = 1;
  pthread_mutex_lock(&s->mu);
  if (s->pooled && s->len - s->pos + len > s->charged) {
    /* What the buffer would hold, compacted, rounded up like
    ** stream_write grows it. */
    size_t cap = s->charged ? s->charged : 4096;
    while (cap < s->len - s->pos + len)
      cap *= 2;
    if (budget_pool_take(cap - s->charged))
      s->charged = cap;
    else
      ok = 0;
  }
  pthread_mutex_unlock(&s->mu);
  return ok;
}

size_t stream_buffered(struct stream *s) {
  size_t n;
  pthread_mutex_lock(&s->mu);
  n = s->len - s->pos;
  pthread_mutex_unlock(&s->mu);
  return n;
}

void stream_detach(struct stream *s) {
  if (s)
    release(s);
}
