/*
** store.h -- the local runtime's sessions: in memory, on disk, reaped.
**
** State directory layout:
**   <state>/sessions/<id>.json   one record per live session (written to a
**                                temporary name, then renamed: a record is
**                                either complete or absent)
**   <state>/boxes/<uid>/         the session's sandbox (sandbox.h); a box that
**                                no record names is a warm-pool box or a
**                                leftover of a crash, and is removed at start
**
** A session is reference counted: a request holds a reference while it uses
** the session, so a DELETE or the reaper never frees a box under a running
** request; they kill its processes at once and free it when the last
** reference goes.
*/
#ifndef AGENTCUBE_STORE_H
#define AGENTCUBE_STORE_H

#include "ac_error.h"
#include "config.h"
#include "sandbox.h"

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

struct ac_store;

struct srv_session {
  char id[37];
  char *name, *namespace_;
  time_t created_at, expires_at;
  long long idle_timeout_s;
  const struct ac_template *tpl;   /* owned by the config */
  struct sbx_box *box;
  uid_t uid;
  unsigned slot;                   /* names the box: <state>/boxes/<slot> */
  /* below: guarded by the store */
  time_t last_activity;
  time_t persisted_activity;
  int refs;
  int gone;                        /* deleted or reaped; box being killed */
};

/* Opens the state directory: loads every complete session record, re-attaches
** its box, removes leftovers, starts the reaper and the warm-pool filler.
** reap_interval_ms is normally 15000. cfg and rt must outlive the store.
** Session uids are uid_base + slot (uid_range.h) when the runtime switches
** uids. */
enum ac_code ac_store_open(const char *state_dir, const struct ac_config *cfg,
                           struct sbx_runtime *rt, unsigned reap_interval_ms,
                           uid_t uid_base, struct ac_store **out,
                           struct ac_error *err);

/* The number of session uids a store uses (the size of its uid block). */
#define AC_STORE_UIDS 65536U

/* Stops the background threads, kills running commands, writes pending
** activity times and frees memory. Sessions stay on disk for the next start.
** NULL is allowed. */
void ac_store_close(struct ac_store *st);

/* Kills every running command of every session (shutdown). */
void ac_store_kill_all(struct ac_store *st);

/* Creates a session for template tpl. ttl_s <= 0 means the template's
** maximum. On success *out holds a reference: release with
** ac_store_release. */
enum ac_code ac_store_create(struct ac_store *st,
                             const struct ac_template *tpl,
                             const char *namespace_, const char *name,
                             long long ttl_s, struct srv_session **out,
                             struct ac_error *err);

/* Looks a live session up and takes a reference; NULL when unknown. When
** touch is set the idle timer restarts. */
struct srv_session *ac_store_get(struct ac_store *st, const char *id,
                                int touch);
void ac_store_touch(struct ac_store *st, struct srv_session *s);
void ac_store_release(struct ac_store *st, struct srv_session *s);
/* ac_store_release for the deleter: when that was the last reference of a
** deleted session, its box is destroyed on the calling thread (it blocks:
** a worker's thread, never the event loop) instead of by the janitor. */
void ac_store_release_reap(struct ac_store *st, struct srv_session *s);

/* Deletes a session: AC_ENOTFOUND when unknown or already gone. */
enum ac_code ac_store_delete(struct ac_store *st, const char *id,
                             struct ac_error *err);

/* A snapshot of the live sessions, each with a reference taken; release
** every element with ac_store_release and free the array. */
enum ac_code ac_store_list(struct ac_store *st, struct srv_session ***out,
                           size_t *count, struct ac_error *err);

#endif
