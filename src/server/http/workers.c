/*
** workers.c -- the blocking-work pool (see workers.h).
*/
#include "workers.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define IDLE_EXIT_S 5

struct job {
  void (*fn)(void *);
  void *arg;
  struct job *next;
};

struct workers {
  pthread_mutex_t mu;
  pthread_cond_t more;           /* a job was queued or stop was asked */
  pthread_cond_t gone;           /* a thread left */
  struct job *head, *tail;
  unsigned min, max, threads, idle;
  size_t queued;                 /* jobs in the queue */
  int stopping;
};

static void *worker_main(void *arg) {
  struct workers *w = arg;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    struct job *j;
    while (w->head == NULL && !w->stopping) {
      struct timespec until;
      int rc = 0;
      w->idle++;
      if (w->threads > w->min) {
        /* a grown pool shrinks back after a few idle seconds */
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += IDLE_EXIT_S;
        rc = pthread_cond_timedwait(&w->more, &w->mu, &until);
      } else {
        pthread_cond_wait(&w->more, &w->mu);   /* idle costs nothing */
      }
      w->idle--;
      if (rc == ETIMEDOUT && w->head == NULL && w->threads > w->min)
        goto leave;
    }
    if ((j = w->head) == NULL)
      break;                     /* stopping and nothing left */
    if ((w->head = j->next) == NULL)
      w->tail = NULL;
    w->queued--;
    pthread_mutex_unlock(&w->mu);
    j->fn(j->arg);
    free(j);
    pthread_mutex_lock(&w->mu);
  }
leave:
  w->threads--;
  pthread_cond_broadcast(&w->gone);
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

/* Starts one detached thread; called with the lock held. */
static int spawn(struct workers *w) {
  pthread_t t;
  pthread_attr_t a;
  int rc;
  pthread_attr_init(&a);
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  /* Jobs are shallow; a smaller stack keeps a grown pool cheap. */
  pthread_attr_setstacksize(&a, 512 * 1024);
  rc = pthread_create(&t, &a, worker_main, w);
  pthread_attr_destroy(&a);
  if (rc == 0)
    w->threads++;
  return rc == 0 ? 0 : -1;
}

struct workers *workers_start(unsigned min, unsigned max) {
  struct workers *w = calloc(1, sizeof *w);
  if (w == NULL)
    return NULL;
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->more, NULL);
  pthread_cond_init(&w->gone, NULL);
  w->min = min ? min : 1;
  w->max = max < w->min ? w->min : max;
  pthread_mutex_lock(&w->mu);
  for (unsigned i = 0; i < w->min; i++)
    if (spawn(w) != 0)
      break;
  pthread_mutex_unlock(&w->mu);
  if (w->threads == 0) {
    workers_stop(w);
    return NULL;
  }
  return w;
}

int workers_submit(struct workers *w, void (*fn)(void *), void *arg) {
  struct job *j = malloc(sizeof *j);
  if (j == NULL)
    return -1;
  j->fn = fn;
  j->arg = arg;
  j->next = NULL;
  pthread_mutex_lock(&w->mu);
  if (w->tail)
    w->tail->next = j;
  else
    w->head = j;
  w->tail = j;
  w->queued++;
  /* Grow when nobody is free to take it: a long command must not make
  ** the next request wait. */
  if (w->queued > w->idle && w->threads < w->max)
    spawn(w);
  pthread_cond_signal(&w->more);
  pthread_mutex_unlock(&w->mu);
  return 0;
}

void workers_stop(struct workers *w) {
  if (w == NULL)
    return;
  pthread_mutex_lock(&w->mu);
  w->stopping = 1;
  pthread_cond_broadcast(&w->more);
  while (w->threads > 0)
    pthread_cond_wait(&w->gone, &w->mu);
  pthread_mutex_unlock(&w->mu);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->more);
  pthread_cond_destroy(&w->gone);
  free(w);
}
