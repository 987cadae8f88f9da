/*
** conns.c -- connection records, caps, header timeouts, hang-ups and
** session aborts (see conns.h).
*/
#include "conns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define BUCKETS 256
#define SWEEP_SLACK_MS 5     /* wake a little after a deadline, not
                                   before it */
#define REFUSED_GRACE_MS 2000   /* an over-cap connection that sends no
                                   request is closed after this */

struct addr_count {
  char addr[INET6_ADDRSTRLEN];
  unsigned n;
  struct addr_count *next;
};

struct conn {
  int fd;
  char addr[INET6_ADDRSTRLEN];
  struct addr_count *ac;
  enum conn_refusal refused;
  long long since_ms;           /* opened, or its last answer was sent */
  int in_request;
  int shut;                     /* already shut down */
  const void *key;
  void (*on_hangup)(void *), *hangup_ud;
  int watched;
  void (*on_abort)(void *), *abort_ud;
  struct conn *prev, *next;
};

struct conns {
  pthread_mutex_t mu;
  struct conns_limits lim;
  struct conn *head;
  unsigned total;
  struct addr_count *table[BUCKETS];
  int epfd, stopfd, wakefd;
  pthread_t thread;
  int started;
};

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned hash(const char *s) {
  unsigned h = 2166136261u;
  while (*s)
    h = (h ^ (unsigned char)*s++) * 16777619u;
  return h % BUCKETS;
}

/* Closes the socket for reading and writing: libmicrohttpd sees the end
** of the connection on its next look and closes it; the fd itself stays
** theirs. Called with the lock held, and only for a live record, so the
** fd cannot have been reused. */
static void shut(struct conn *k) {
  if (!k->shut) {
    k->shut = 1;
    shutdown(k->fd, SHUT_RDWR);
  }
}

/* Makes the sweeper look again (a deadline may now be nearer). */
static void poke(struct conns *c) {
  uint64_t one = 1;
  if (write(c->wakefd, &one, sizeof one) < 0) {
    /* the counter is full: the sweeper has a wake-up pending anyway */
  }
}

static void *sweeper(void *arg) {
  struct conns *c = arg;
  struct epoll_event ev[64];
  int wait_ms = -1;
  for (;;) {
    /* Asleep until the next deadline or event: an idle server wakes
    ** nobody. */
    int n = epoll_wait(c->epfd, ev, 64, wait_ms);
    long long now, next = -1;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < n; i++) {
      struct conn *k = ev[i].data.ptr;
      if (k == NULL) {            /* the stop eventfd */
        pthread_mutex_unlock(&c->mu);
        return NULL;
      }
      if (k == (struct conn *)c) {  /* a poke */
        uint64_t v;
        if (read(c->wakefd, &v, sizeof v) < 0) {
          /* nothing to read: another look is harmless */
        }
        continue;
      }
      /* Watched records are still alive: unwatch happens under the lock
      ** before a record is freed. */
      if (k->watched) {
        epoll_ctl(c->epfd, EPOLL_CTL_DEL, k->fd, NULL);
        k->watched = 0;
        k->on_hangup(k->hangup_ud);
      }
    }
    now = now_ms();
    for (struct conn *k = c->head; k; k = k->next) {
      long long limit = k->refused ? REFUSED_GRACE_MS
                                   : (long long)c->lim.header_timeout_ms;
      if (k->in_request || limit <= 0 || k->shut)
        continue;
      if (now - k->since_ms > limit)
        shut(k);
      else if (next < 0 || k->since_ms + limit < next)
        next = k->since_ms + limit;
    }
    wait_ms = next < 0 ? -1 : (int)(next - now + SWEEP_SLACK_MS);
    pthread_mutex_unlock(&c->mu);
  }
}

struct conns *conns_start(const struct conns_limits *lim) {
  struct conns *c = calloc(1, sizeof *c);
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
  if (c == NULL)
    return NULL;
  pthread_mutex_init(&c->mu, NULL);
  c->lim = *lim;
  c->epfd = c->stopfd = c->wakefd = -1;
  struct epoll_event wev = { .events = EPOLLIN };
  c->epfd = epoll_create1(EPOLL_CLOEXEC);
  c->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  c->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  wev.data.ptr = c;
  if (c->epfd < 0 || c->stopfd < 0 || c->wakefd < 0 ||
      epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->stopfd, &ev) != 0 ||
      epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->wakefd, &wev) != 0 ||
      pthread_create(&c->thread, NULL, sweeper, c) != 0) {
    conns_stop(c);
    return NULL;
  }
  c->started = 1;
  return c;
}

void conns_stop(struct conns *c) {
  if (c == NULL)
    return;
  if (c->started) {
    uint64_t one = 1;
    if (write(c->stopfd, &one, sizeof one) < 0)
      perror("agentcube: conns");
    pthread_join(c->thread, NULL);
  }
  if (c->epfd >= 0)
    close(c->epfd);
  if (c->stopfd >= 0)
    close(c->stopfd);
  if (c->wakefd >= 0)
    close(c->wakefd);
  for (size_t i = 0; i < BUCKETS; i++)
    while (c->table[i]) {
      struct addr_count *a = c->table[i];
      c->table[i] = a->next;
      free(a);
    }
  while (c->head) {
    struct conn *k = c->head;
    c->head = k->next;
    free(k);
  }
  pthread_mutex_destroy(&c->mu);
  free(c);
}

struct conn *conns_open(struct conns *c, int fd, const struct sockaddr *sa) {
  struct conn *k = calloc(1, sizeof *k);
  struct addr_count *a;
  unsigned h;
  if (k == NULL)
    return NULL;
  k->fd = fd;
  if (sa && sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
              k->addr, sizeof k->addr);
  else if (sa && sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
              k->addr, sizeof k->addr);
  else
    snprintf(k->addr, sizeof k->addr, "local");
  k->since_ms = now_ms();
  pthread_mutex_lock(&c->mu);
  h = hash(k->addr);
  for (a = c->table[h]; a && strcmp(a->addr, k->addr); a = a->next)
    ;
  if (a == NULL && (a = calloc(1, sizeof *a)) != NULL) {
    snprintf(a->addr, sizeof a->addr, "%s", k->addr);
    a->next = c->table[h];
    c->table[h] = a;
  }
  if (a == NULL) {
    pthread_mutex_unlock(&c->mu);
    free(k);
    return NULL;
  }
  k->ac = a;
  a->n++;
  c->total++;
  if (c->lim.max_total && c->total > c->lim.max_total)
    k->refused = CONN_OVER_TOTAL;
  else if (c->lim.max_per_addr && a->n > c->lim.max_per_addr)
    k->refused = CONN_OVER_ADDR;
  k->next = c->head;
  if (c->head)
    c->head->prev = k;
  c->head = k;
  pthread_mutex_unlock(&c->mu);
  poke(c);
  return k;
}

void conns_close(struct conns *c, struct conn *k) {
  if (k == NULL)
    return;
  pthread_mutex_lock(&c->mu);
  if (k->watched)
    epoll_ctl(c->epfd, EPOLL_CTL_DEL, k->fd, NULL);
  if (k->prev)
    k->prev->next = k->next;
  else
    c->head = k->next;
  if (k->next)
    k->next->prev = k->prev;
  c->total--;
  if (--k->ac->n == 0) {
    struct addr_count **pp = &c->table[hash(k->addr)];
    while (*pp != k->ac)
      pp = &(*pp)->next;
    *pp = k->ac->next;
    free(k->ac);
  }
  pthread_mutex_unlock(&c->mu);
  free(k);
}

enum conn_refusal conn_refusal(const struct conn *k) {
  return k->refused;
}

const char *conn_addr(const struct conn *k) {
  return k->addr;
}

void conns_request_begin(struct conns *c, struct conn *k) {
  pthread_mutex_lock(&c->mu);
  k->in_request = 1;
  pthread_mutex_unlock(&c->mu);
}

void conns_set_key(struct conns *c, struct conn *k, const void *key) {
  pthread_mutex_lock(&c->mu);
  k->key = key;
  pthread_mutex_unlock(&c->mu);
}

void conns_request_end(struct conns *c, struct conn *k) {
  pthread_mutex_lock(&c->mu);
  if (k->watched) {
    epoll_ctl(c->epfd, EPOLL_CTL_DEL, k->fd, NULL);
    k->watched = 0;
  }
  k->in_request = 0;
  k->key = NULL;
  k->on_abort = NULL;
  k->since_ms = now_ms();
  pthread_mutex_unlock(&c->mu);
  poke(c);
}

void conns_watch(struct conns *c, struct conn *k,
                 void (*on_hangup)(void *ud), void *ud) {
  struct epoll_event ev = { .events = EPOLLRDHUP, .data.ptr = k };
  pthread_mutex_lock(&c->mu);
  k->on_hangup = on_hangup;
  k->hangup_ud = ud;
  if (!k->watched && epoll_ctl(c->epfd, EPOLL_CTL_ADD, k->fd, &ev) == 0)
    k->watched = 1;
  pthread_mutex_unlock(&c->mu);
}

void conns_unwatch(struct conns *c, struct conn *k) {
  pthread_mutex_lock(&c->mu);
  if (k->watched) {
    epoll_ctl(c->epfd, EPOLL_CTL_DEL, k->fd, NULL);
    k->watched = 0;
  }
  pthread_mutex_unlock(&c->mu);
}

void conns_on_abort(struct conns *c, struct conn *k,
                    void (*on_abort)(void *ud), void *ud) {
  pthread_mutex_lock(&c->mu);
  k->on_abort = on_abort;
  k->abort_ud = ud;
  pthread_mutex_unlock(&c->mu);
}

unsigned conns_abort_key(struct conns *c, const void *key) {
  unsigned n = 0;
  if (key == NULL)
    return 0;
  pthread_mutex_lock(&c->mu);
  for (struct conn *k = c->head; k; k = k->next)
    if (k->in_request && k->key == key) {
      if (k->on_abort)
        k->on_abort(k->abort_ud);
      shut(k);
      n++;
    }
  pthread_mutex_unlock(&c->mu);
  return n;
}
