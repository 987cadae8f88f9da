/*
** session_record.h -- the on-disk record of one session (JSON).
*/
#ifndef AGENTCUBE_SESSION_RECORD_H
#define AGENTCUBE_SESSION_RECORD_H

#include "ac_error.h"

#include <time.h>

struct ac_record {
  char id[37];
  char *name, *namespace_;       /* malloc'd by ac_record_read */
  time_t created_at, expires_at, last_activity;
  long long idle_timeout_s;
  unsigned slot;
};

/* Writes the record atomically: a temporary file renamed over path. */
enum ac_code ac_record_write(const char *path, const struct ac_record *rec,
                             struct ac_error *err);

/* Reads and validates a record; on success the caller frees it with
** ac_record_free (also safe after a failure). */
enum ac_code ac_record_read(const char *path, struct ac_record *rec,
                            struct ac_error *err);
void ac_record_free(struct ac_record *rec);

#endif
