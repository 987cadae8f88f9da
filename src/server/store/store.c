/*
** store.c -- sessions of the local runtime: records, lifetime, warm pool.
**
** One mutex guards the table; nothing slow (box creation, unmounting,
** writing records of other sessions) happens under it. A janitor thread
** does the slow work in the background: it destroys the boxes of deleted
** sessions once no request uses them, refills the warm pools, reaps expired
** and idle sessions, and writes activity times to disk.
*/
#include "store.h"
#include "image.h"
#include "admission.h"
#include "session_record.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uuid.h>

#define SLOT_COUNT AC_STORE_UIDS

struct pool_box {
  struct pool_box *next;
  const struct ac_template *tpl;
  struct sbx_box *box;
  unsigned slot;
};

struct ac_store {
  char *dir, *sessions_dir, *boxes_dir;
  const struct ac_config *cfg;
  struct sbx_runtime *rt;
  unsigned reap_ms;
  uid_t uid_base;               /* session uids: uid_base + slot */

  pthread_mutex_t mu;
  pthread_cond_t wake;          /* janitor: work queued or stopping */
  struct srv_session **live;     /* live sessions */
  size_t nlive, caplive;
  struct srv_session **doomed;   /* gone, box to destroy when refs == 0 */
  size_t ndoomed, capdoomed;
  struct pool_box *pool;
  unsigned char slot_used[SLOT_COUNT / 8];
  const struct ac_template **slot_tpl;  /* what each used slot's box was
                                           made for: admission sums them */
  unsigned creating;            /* sessions being created */
  int stopping;
  time_t pool_retry_at;         /* after a failed warm box: wait until */
  pthread_t janitor;
  int janitor_started;
};

/* {====================================================== slots and dirs */

static int slot_test(struct ac_store *st, unsigned s) {
  return st->slot_used[s / 8] & (1u << (s % 8));
}

static void slot_mark(struct ac_store *st, unsigned s, int used) {
  if (!used && st->slot_tpl)
    st->slot_tpl[s] = NULL;
  if (used)
    st->slot_used[s / 8] |= (unsigned char)(1u << (s % 8));
  else
    st->slot_used[s / 8] &= (unsigned char)~(1u << (s % 8));
}

/* Called with the lock held. Slot 0 is never handed out. */
static int slot_alloc(struct ac_store *st, unsigned *out) {
  for (unsigned s = 1; s < SLOT_COUNT; s++) {
    if (!slot_test(st, s)) {
      slot_mark(st, s, 1);
      *out = s;
      return 0;
    }
  }
  return -1;
}

/* What every box holds now, for admission. Called with the lock held. */
static void usage(struct ac_store *st, struct adm_usage *u) {
  memset(u, 0, sizeof *u);
  u->sessions = (unsigned)st->nlive + st->creating;
  for (unsigned s = 1; s < SLOT_COUNT; s++) {
    const struct ac_template *tpl;
    char img[4300];
    struct stat sb;
    if (!slot_test(st, s))
      continue;
    u->boxes++;
    if ((tpl = st->slot_tpl[s]) == NULL)
      continue;
    u->memory += tpl->limits.memory_bytes;
    snprintf(img, sizeof img, "%s/%u/disk.img", st->boxes_dir, s);
    if (tpl->limits.disk_bytes && lstat(img, &sb) == 0) {
      unsigned long long used = (unsigned long long)sb.st_blocks * 512;
      u->images++;
      if (used < tpl->limits.disk_bytes)
        u->disk_unused += tpl->limits.disk_bytes - used;
    }
  }
}

/* Admission of a new box for tpl. Called with the lock held. */
static enum ac_code admit(struct ac_store *st, const struct ac_template *tpl,
                          int is_session, struct ac_error *err) {
  struct adm_usage u;
  usage(st, &u);
  return ac_admit(st->cfg, &u, tpl, is_session,
                  sbx_runtime_switches_uid(st->rt), st->boxes_dir, err);
}

static uid_t slot_uid(struct ac_store *st, unsigned slot) {
  return sbx_runtime_switches_uid(st->rt) ? (uid_t)(st->uid_base + slot)
                                          : getuid();
}

static void box_dir(struct ac_store *st, unsigned slot, char *buf,
                    size_t len) {
  snprintf(buf, len, "%s/%u", st->boxes_dir, slot);
}

static void record_path(struct ac_store *st, const char *id, char *buf,
                        size_t len) {
  snprintf(buf, len, "%s/%s.json", st->sessions_dir, id);
}

/* }====================================================== */

/* {====================================================== session memory */

static void session_free(struct srv_session *s) {
  if (s == NULL)
    return;
  free(s->name);
  free(s->namespace_);
  free(s);
}

static int push(struct srv_session ***arr, size_t *n, size_t *cap,
                struct srv_session *s) {
  if (*n == *cap) {
    size_t ncap = *cap ? *cap * 2 : 64;
    struct srv_session **grown = realloc(*arr, ncap * sizeof *grown);
    if (grown == NULL)
      return -1;
    *arr = grown;
    *cap = ncap;
  }
  (*arr)[(*n)++] = s;
  return 0;
}

/* Called with the lock held. */
static struct srv_session *find_live(struct ac_store *st, const char *id,
                                    size_t *index) {
  for (size_t i = 0; i < st->nlive; i++) {
    if (strcmp(st->live[i]->id, id) == 0) {
      if (index)
        *index = i;
      return st->live[i];
    }
  }
  return NULL;
}

/* A session is idle only while no request uses it: a command that runs
** longer than the idle timeout must not have its sandbox reaped under it.
** The hard lifetime applies regardless. Called with the lock held. */
static int expired(const struct srv_session *s, time_t now) {
  return now >= s->expires_at ||
         (s->refs == 0 && now - s->last_activity >= s->idle_timeout_s);
}

/* Moves a live session to the doomed list: its record is removed and its
** processes are killed now; the janitor frees the box when nobody uses it.
** Called with the lock held. */
static void doom_locked(struct ac_store *st, size_t index) {
  struct srv_session *s = st->live[index];
  char path[4200];

  st->live[index] = st->live[--st->nlive];
  s->gone = 1;
  record_path(st, s->id, path, sizeof path);
  unlink(path);
  if (s->box)
    sbx_box_kill(s->box);
  if (push(&st->doomed, &st->ndoomed, &st->capdoomed, s) != 0) {
    /* No memory to queue it: leave the box on disk, the next start removes
    ** it as a leftover. The slot stays taken until then. */
    sbx_box_close(s->box);
    session_free(s);
  }
  pthread_cond_signal(&st->wake);
}

/* }====================================================== */

/* {====================================================== loading */

static void purge_box_dir(struct ac_store *st, const char *dir) {
  struct ac_error err;
  if (sbx_box_purge(st->rt, dir, &err) != AC_OK)
    fprintf(stderr, "agentcube: cannot remove %s: %s\n", dir, err.msg);
}

static void load_records(struct ac_store *st) {
  DIR *d = opendir(st->sessions_dir);
  struct dirent *e;

  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL) {
    char path[4200], bdir[4200];
    struct ac_record rec;
    struct ac_error err;
    struct srv_session *s;
    size_t len = strlen(e->d_name);

    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof path, "%s/%s", st->sessions_dir, e->d_name);
    if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0) {
      unlink(path);          /* a record that was never renamed into place */
      continue;
    }
    if (ac_record_read(path, &rec, &err) != AC_OK ||
        rec.slot == 0 || rec.slot >= SLOT_COUNT ||
        slot_test(st, rec.slot)) {
      fprintf(stderr, "agentcube: dropping unreadable session record %s\n",
              path);
      unlink(path);
      ac_record_free(&rec);
      continue;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL) {
      ac_record_free(&rec);
      break;
    }
    snprintf(s->id, sizeof s->id, "%s", rec.id);
    s->name = rec.name;
    s->namespace_ = rec.namespace_;
    rec.name = rec.namespace_ = NULL;
    s->created_at = rec.created_at;
    s->expires_at = rec.expires_at;
    s->idle_timeout_s = rec.idle_timeout_s;
    s->last_activity = s->persisted_activity = rec.last_activity;
    s->tpl = ac_config_find(st->cfg, s->namespace_, s->name);
    if (s->tpl == NULL)
      s->tpl = &st->cfg->fallback;
    s->slot = rec.slot;
    s->uid = slot_uid(st, rec.slot);
    box_dir(st, rec.slot, bdir, sizeof bdir);
    if (img_use(s->tpl->image, bdir, &err) != AC_OK ||
        sbx_box_open(st->rt, bdir, s->uid, &s->tpl->limits, &s->box,
                     &err) != AC_OK ||
        push(&st->live, &st->nlive, &st->caplive, s) != 0) {
      fprintf(stderr, "agentcube: session %s cannot be restored: %s\n",
              s->id, err.msg);
      unlink(path);
      purge_box_dir(st, bdir);
      sbx_box_close(s->box);
      session_free(s);
      ac_record_free(&rec);
      continue;
    }
    slot_mark(st, rec.slot, 1);
    st->slot_tpl[rec.slot] = s->tpl;
    ac_record_free(&rec);
  }
  closedir(d);
}

/* Removes every box no session record names: warm-pool boxes of the last
** run (the pool refills) and whatever a crash left half-made. */
static void remove_leftover_boxes(struct ac_store *st) {
  DIR *d = opendir(st->boxes_dir);
  struct dirent *e;

  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL) {
    char *end, bdir[4200];
    unsigned long slot;
    if (e->d_name[0] == '.')
      continue;
    slot = strtoul(e->d_name, &end, 10);
    if (*end == '\0' && slot > 0 && slot < SLOT_COUNT &&
        slot_test(st, (unsigned)slot))
      continue;
    snprintf(bdir, sizeof bdir, "%s/%s", st->boxes_dir, e->d_name);
    purge_box_dir(st, bdir);
  }
  closedir(d);
}

/* }====================================================== */

/* {====================================================== records */

static enum ac_code write_record(struct ac_store *st,
                                 const struct srv_session *s, time_t activity,
                                 struct ac_error *err) {
  struct ac_record rec;
  char path[4200];

  memset(&rec, 0, sizeof rec);
  snprintf(rec.id, sizeof rec.id, "%s", s->id);
  rec.name = s->name;
  rec.namespace_ = s->namespace_;
  rec.created_at = s->created_at;
  rec.expires_at = s->expires_at;
  rec.idle_timeout_s = s->idle_timeout_s;
  rec.last_activity = activity;
  rec.slot = s->slot;
  record_path(st, s->id, path, sizeof path);
  return ac_record_write(path, &rec, err);
}

/* }====================================================== */

/* {====================================================== the janitor */

/* Takes a warm box for tpl, or NULL. Called with the lock held. */
static struct pool_box *pool_take(struct ac_store *st,
                                  const struct ac_template *tpl) {
  for (struct pool_box **pp = &st->pool; *pp; pp = &(*pp)->next) {
    if ((*pp)->tpl == tpl) {
      struct pool_box *b = *pp;
      *pp = b->next;
      return b;
    }
  }
  return NULL;
}

static unsigned pool_count(struct ac_store *st,
                           const struct ac_template *tpl) {
  unsigned n = 0;
  for (struct pool_box *b = st->pool; b; b = b->next)
    n += b->tpl == tpl;
  return n;
}

/* Creates a box outside the lock; the slot is already reserved. */
static enum ac_code make_box(struct ac_store *st,
                             const struct ac_template *tpl, unsigned slot,
                             struct sbx_box **box, struct ac_error *err) {
  char bdir[4200];
  enum ac_code rc;

  box_dir(st, slot, bdir, sizeof bdir);
  if ((rc = img_use(tpl->image, bdir, err)) != AC_OK)   /* image.h */
    return rc;
  rc = sbx_box_create(st->rt, bdir, slot_uid(st, slot), &tpl->limits, box,
                      err);
  if (rc != AC_OK)
    purge_box_dir(st, bdir);
  return rc;
}

/* Refills one pool box if any template is short. Returns 1 when it did
** some work. Called with the lock held; drops it while creating. */
static int refill_one(struct ac_store *st) {
  const struct ac_config *cfg = st->cfg;
  if (time(NULL) < st->pool_retry_at)
    return 0;
  for (size_t i = 0; i <= cfg->ntemplates; i++) {
    const struct ac_template *tpl =
      i < cfg->ntemplates ? &cfg->templates[i] : &cfg->fallback;
    struct pool_box *b;
    struct ac_error err;
    unsigned slot;

    if (pool_count(st, tpl) >= tpl->warm_pool)
      continue;
    if (admit(st, tpl, 0, &err) != AC_OK) {
      /* the host is full: warm boxes wait, sessions go first */
      st->pool_retry_at = time(NULL) + 10;
      return 0;
    }
    if (slot_alloc(st, &slot))
      continue;
    st->slot_tpl[slot] = tpl;
    if ((b = calloc(1, sizeof *b)) == NULL) {
      slot_mark(st, slot, 0);
      return 0;
    }
    pthread_mutex_unlock(&st->mu);
    if (make_box(st, tpl, slot, &b->box, &err) != AC_OK) {
      fprintf(stderr, "agentcube: warm pool: %s (retrying in 10 s)\n",
              err.msg);
      free(b);
      pthread_mutex_lock(&st->mu);
      slot_mark(st, slot, 0);
      st->pool_retry_at = time(NULL) + 10;
      return 0;   /* do not spin on a persistent failure */
    }
    pthread_mutex_lock(&st->mu);
    b->tpl = tpl;
    b->slot = slot;
    b->next = st->pool;
    st->pool = b;
    return 1;
  }
  return 0;
}

/* Destroys one doomed session whose last reference is gone. Returns 1
** when it did. Called with the lock held; drops it while destroying. */
static int destroy_one(struct ac_store *st) {
  for (size_t i = 0; i < st->ndoomed; i++) {
    struct srv_session *s = st->doomed[i];
    if (s->refs > 0)
      continue;
    st->doomed[i] = st->doomed[--st->ndoomed];
    pthread_mutex_unlock(&st->mu);
    sbx_box_destroy(s->box);
    pthread_mutex_lock(&st->mu);
    slot_mark(st, s->slot, 0);
    session_free(s);
    return 1;
  }
  return 0;
}

/* Writes the activity times that changed since the last write. */
static void persist_activity(struct ac_store *st) {
  size_t i = 0;
  while (i < st->nlive) {
    struct srv_session *s = st->live[i];
    time_t act = s->last_activity;
    struct ac_error err;
    if (act == s->persisted_activity) {
      i++;
      continue;
    }
    s->refs++;
    pthread_mutex_unlock(&st->mu);
    if (write_record(st, s, act, &err) != AC_OK)
      fprintf(stderr, "agentcube: %s\n", err.msg);
    pthread_mutex_lock(&st->mu);
    if (!s->gone) {
      s->persisted_activity = act;
    } else {
      char path[4200];      /* deleted meanwhile: do not resurrect it */
      record_path(st, s->id, path, sizeof path);
      unlink(path);
    }
    if (--s->refs == 0 && s->gone)
      pthread_cond_signal(&st->wake);
    i = 0;                  /* the table may have changed; start over */
  }
}

static size_t reap_locked(struct ac_store *st) {
  time_t now = time(NULL);
  size_t reaped = 0;
  for (size_t i = 0; i < st->nlive;) {
    if (expired(st->live[i], now)) {
      doom_locked(st, i);
      reaped++;
    } else {
      i++;
    }
  }
  return reaped;
}

static void *janitor_main(void *arg) {
  struct ac_store *st = arg;
  struct timespec next;

  clock_gettime(CLOCK_MONOTONIC, &next);
  pthread_mutex_lock(&st->mu);
  while (!st->stopping) {
    struct timespec now;
    if (destroy_one(st) || refill_one(st))
      continue;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > next.tv_sec ||
        (now.tv_sec == next.tv_sec && now.tv_nsec >= next.tv_nsec)) {
      reap_locked(st);
      persist_activity(st);
      next = now;
      next.tv_sec += st->reap_ms / 1000;
      next.tv_nsec += (long)(st->reap_ms % 1000) * 1000000L;
      if (next.tv_nsec >= 1000000000L) {
        next.tv_sec++;
        next.tv_nsec -= 1000000000L;
      }
      continue;
    }
    pthread_cond_timedwait(&st->wake, &st->mu, &next);
  }
  pthread_mutex_unlock(&st->mu);
  return NULL;
}

/* }====================================================== */

/* {====================================================== public API */

static int mkdir_p(const char *dir, mode_t mode) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", dir);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(buf, mode) != 0 && errno != EEXIST)
      return -1;
    *p = '/';
  }
  return mkdir(buf, mode) == 0 || errno == EEXIST ? 0 : -1;
}

static char *join(const char *a, const char *b) {
  size_t len = strlen(a) + strlen(b) + 2;
  char *s = malloc(len);
  if (s)
    snprintf(s, len, "%s/%s", a, b);
  return s;
}

enum ac_code ac_store_open(const char *state_dir, const struct ac_config *cfg,
                           struct sbx_runtime *rt, unsigned reap_interval_ms,
                           uid_t uid_base, struct ac_store **out,
                           struct ac_error *err) {
  struct ac_store *st = calloc(1, sizeof *st);
  enum ac_code rc = AC_OK;

  if (st == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  st->cfg = cfg;
  st->rt = rt;
  st->reap_ms = reap_interval_ms ? reap_interval_ms : 15000;
  st->uid_base = uid_base;
  pthread_mutex_init(&st->mu, NULL);
  {
    /* the janitor's deadlines are on the monotonic clock */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&st->wake, &ca);
    pthread_condattr_destroy(&ca);
  }
  st->dir = strdup(state_dir);
  st->slot_tpl = calloc(SLOT_COUNT, sizeof *st->slot_tpl);
  st->sessions_dir = join(state_dir, "sessions");
  st->boxes_dir = join(state_dir, "boxes");
  if (!st->dir || !st->sessions_dir || !st->boxes_dir || !st->slot_tpl) {
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    goto out;
  }
  if (mkdir_p(st->sessions_dir, 0700) != 0 ||
      mkdir_p(st->boxes_dir, 0711) != 0) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "cannot create %s/{%s}",
                        state_dir, "sessions,boxes");
    goto out;
  }
  /* Other users must be able to traverse to their session's box, but not
  ** list the boxes of other sessions. */
  chmod(st->boxes_dir, 0711);
  load_records(st);
  remove_leftover_boxes(st);
  if (pthread_create(&st->janitor, NULL, janitor_main, st) != 0) {
    rc = ac_error_set(err, AC_ESYSTEM, "cannot start the janitor thread");
    goto out;
  }
  st->janitor_started = 1;
out:
  if (rc != AC_OK) {
    ac_store_close(st);
    st = NULL;
  }
  *out = st;
  return rc;
}

void ac_store_kill_all(struct ac_store *st) {
  pthread_mutex_lock(&st->mu);
  for (size_t i = 0; i < st->nlive; i++)
    sbx_box_kill(st->live[i]->box);
  pthread_mutex_unlock(&st->mu);
}

void ac_store_close(struct ac_store *st) {
  if (st == NULL)
    return;
  pthread_mutex_lock(&st->mu);
  st->stopping = 1;
  pthread_cond_broadcast(&st->wake);
  pthread_mutex_unlock(&st->mu);
  if (st->janitor_started)
    pthread_join(st->janitor, NULL);
  pthread_mutex_lock(&st->mu);
  persist_activity(st);
  /* Deleted sessions still queued: finish them, nobody uses them now. */
  while (st->ndoomed > 0) {
    struct srv_session *s = st->doomed[--st->ndoomed];
    pthread_mutex_unlock(&st->mu);
    sbx_box_destroy(s->box);
    session_free(s);
    pthread_mutex_lock(&st->mu);
  }
  pthread_mutex_unlock(&st->mu);
  for (size_t i = 0; i < st->nlive; i++) {
    sbx_box_close(st->live[i]->box);
    session_free(st->live[i]);
  }
  while (st->pool) {
    struct pool_box *b = st->pool;
    st->pool = b->next;
    sbx_box_destroy(b->box);
    free(b);
  }
  free(st->live);
  free(st->doomed);
  free(st->slot_tpl);
  free(st->dir);
  free(st->sessions_dir);
  free(st->boxes_dir);
  pthread_mutex_destroy(&st->mu);
  pthread_cond_destroy(&st->wake);
  free(st);
}

enum ac_code ac_store_create(struct ac_store *st,
                             const struct ac_template *tpl,
                             const char *namespace_, const char *name,
                             long long ttl_s, struct srv_session **out,
                             struct ac_error *err) {
  struct srv_session *s = calloc(1, sizeof *s);
  struct pool_box *warm;
  struct sbx_box *box = NULL;
  unsigned slot = 0;
  uuid_t uu;
  enum ac_code rc = AC_OK;
  long long life;

  *out = NULL;
  if (s == NULL || !(s->name = strdup(name)) ||
      !(s->namespace_ = strdup(namespace_))) {
    session_free(s);
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  }
  pthread_mutex_lock(&st->mu);
  warm = pool_take(st, tpl);
  /* a warm box is already counted: only the session cap applies then */
  if ((rc = warm ? ac_admit(st->cfg, &(struct adm_usage){
                              .sessions = (unsigned)st->nlive + st->creating },
                            tpl, 1, 0, st->boxes_dir, err)
                 : admit(st, tpl, 1, err)) != AC_OK) {
    if (warm) {
      warm->next = st->pool;
      st->pool = warm;
    }
    pthread_mutex_unlock(&st->mu);
    session_free(s);
    return rc;
  }
  if (warm == NULL && slot_alloc(st, &slot) != 0) {
    pthread_mutex_unlock(&st->mu);
    session_free(s);
    return ac_error_set(err, AC_ELIMIT, "too many sessions");
  }
  if (warm == NULL)
    st->slot_tpl[slot] = tpl;
  st->creating++;
  pthread_cond_signal(&st->wake);          /* refill what we took */
  pthread_mutex_unlock(&st->mu);
  if (warm) {
    box = warm->box;
    slot = warm->slot;
    free(warm);
  } else if ((rc = make_box(st, tpl, slot, &box, err)) != AC_OK) {
    goto fail;
  }
  uuid_generate_random(uu);
  uuid_unparse_lower(uu, s->id);
  s->tpl = tpl;
  s->box = box;
  s->slot = slot;
  s->uid = slot_uid(st, slot);
  s->created_at = time(NULL);
  life = tpl->max_duration_s;
  if (ttl_s > 0 && ttl_s < life)
    life = ttl_s;
  s->expires_at = s->created_at + (time_t)life;
  s->idle_timeout_s = tpl->session_timeout_s;
  s->last_activity = s->persisted_activity = s->created_at;
  if ((rc = write_record(st, s, s->last_activity, err)) != AC_OK)
    goto fail;
  pthread_mutex_lock(&st->mu);
  if (push(&st->live, &st->nlive, &st->caplive, s) != 0) {
    char path[4200];
    pthread_mutex_unlock(&st->mu);   /* creating-- happens under fail: */
    record_path(st, s->id, path, sizeof path);
    unlink(path);
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    goto fail;
  }
  s->refs = 1;
  st->creating--;
  pthread_mutex_unlock(&st->mu);
  *out = s;
  return AC_OK;
fail:
  sbx_box_destroy(box);
  pthread_mutex_lock(&st->mu);
  slot_mark(st, slot, 0);
  st->creating--;
  pthread_mutex_unlock(&st->mu);
  session_free(s);
  return rc;
}

struct srv_session *ac_store_get(struct ac_store *st, const char *id,
                                int touch) {
  struct srv_session *s;
  size_t i;
  time_t now = time(NULL);

  pthread_mutex_lock(&st->mu);
  s = find_live(st, id, &i);
  if (s && expired(s, now)) {
    doom_locked(st, i);     /* do not wait for the reaper: 404 is exact */
    s = NULL;
  }
  if (s) {
    s->refs++;
    if (touch)
      s->last_activity = now;
  }
  pthread_mutex_unlock(&st->mu);
  return s;
}

void ac_store_touch(struct ac_store *st, struct srv_session *s) {
  pthread_mutex_lock(&st->mu);
  s->last_activity = time(NULL);
  pthread_mutex_unlock(&st->mu);
}

void ac_store_release(struct ac_store *st, struct srv_session *s) {
  if (s == NULL)
    return;
  pthread_mutex_lock(&st->mu);
  if (--s->refs == 0 && s->gone)
    pthread_cond_signal(&st->wake);
  pthread_mutex_unlock(&st->mu);
}

void ac_store_release_reap(struct ac_store *st, struct srv_session *s) {
  if (s == NULL)
    return;
  pthread_mutex_lock(&st->mu);
  if (--s->refs == 0 && s->gone) {
    for (size_t i = 0; i < st->ndoomed; i++) {
      if (st->doomed[i] != s)
        continue;
      /* Ours now, not the janitor's: destroyed on this thread, so that
      ** deletes are paid by the clients that make them and never pile up
      ** behind one janitor. */
      st->doomed[i] = st->doomed[--st->ndoomed];
      pthread_mutex_unlock(&st->mu);
      sbx_box_destroy(s->box);
      pthread_mutex_lock(&st->mu);
      slot_mark(st, s->slot, 0);
      session_free(s);
      break;
    }
    pthread_cond_signal(&st->wake);   /* a slot is free: refill */
  }
  pthread_mutex_unlock(&st->mu);
}

enum ac_code ac_store_delete(struct ac_store *st, const char *id,
                             struct ac_error *err) {
  size_t i;
  pthread_mutex_lock(&st->mu);
  if (find_live(st, id, &i) == NULL) {
    pthread_mutex_unlock(&st->mu);
    return ac_error_set(err, AC_ENOTFOUND,
                        "Session ID %s not found, maybe already deleted", id);
  }
  doom_locked(st, i);
  pthread_mutex_unlock(&st->mu);
  return AC_OK;
}

enum ac_code ac_store_list(struct ac_store *st, struct srv_session ***out,
                           size_t *count, struct ac_error *err) {
  struct srv_session **arr;
  time_t now = time(NULL);
  size_t n = 0;

  pthread_mutex_lock(&st->mu);
  arr = malloc((st->nlive ? st->nlive : 1) * sizeof *arr);
  if (arr == NULL) {
    pthread_mutex_unlock(&st->mu);
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < st->nlive; i++) {
    if (expired(st->live[i], now))
      continue;
    st->live[i]->refs++;
    arr[n++] = st->live[i];
  }
  pthread_mutex_unlock(&st->mu);
  *out = arr;
  *count = n;
  return AC_OK;
}

/* }====================================================== */
