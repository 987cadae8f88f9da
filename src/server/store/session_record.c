/*
** session_record.c -- session records as small JSON files.
*/
#include "session_record.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

enum ac_code ac_record_write(const char *path, const struct ac_record *rec,
                             struct ac_error *err) {
  char tmp[4200];
  json_t *o;
  int fd, ok;

  o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:i}",
                "sessionId", rec->id, "name", rec->name,
                "namespace", rec->namespace_,
                "createdAt", (json_int_t)rec->created_at,
                "expiresAt", (json_int_t)rec->expires_at,
                "lastActivityAt", (json_int_t)rec->last_activity,
                "idleTimeout", (json_int_t)rec->idle_timeout_s,
                "slot", (int)rec->slot);
  if (o == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)gettid());
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
            0600);
  if (fd < 0) {
    json_decref(o);
    return ac_error_errno(err, AC_ESYSTEM, errno, "cannot write %s", tmp);
  }
  ok = json_dumpfd(o, fd, JSON_COMPACT) == 0;
  json_decref(o);
  if (close(fd) != 0 || !ok) {
    unlink(tmp);
    return ac_error_set(err, AC_EIO, "cannot write %s", tmp);
  }
  if (rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return ac_error_errno(err, AC_ESYSTEM, e, "cannot rename %s", tmp);
  }
  return AC_OK;
}

enum ac_code ac_record_read(const char *path, struct ac_record *rec,
                            struct ac_error *err) {
  json_error_t jerr;
  json_t *o;
  const char *id, *name, *ns;
  json_int_t created, expires, activity, idle;
  int slot, fd;

  memset(rec, 0, sizeof rec[0]);
  /* never through a symlink planted among the records */
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return ac_error_errno(err, AC_EIO, errno, "cannot open %s", path);
  o = json_loadfd(fd, 0, &jerr);
  close(fd);
  if (o == NULL)
    return ac_error_set(err, AC_EIO, "%s: %s", path, jerr.text);
  if (json_unpack_ex(o, &jerr, 0, "{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:i}",
                     "sessionId", &id, "name", &name, "namespace", &ns,
                     "createdAt", &created, "expiresAt", &expires,
                     "lastActivityAt", &activity, "idleTimeout", &idle,
                     "slot", &slot) != 0 ||
      strlen(id) != 36 || slot <= 0 || idle <= 0) {
    json_decref(o);
    return ac_error_set(err, AC_EIO, "%s: not a session record", path);
  }
  memcpy(rec->id, id, 37);
  rec->name = strdup(name);
  rec->namespace_ = strdup(ns);
  rec->created_at = (time_t)created;
  rec->expires_at = (time_t)expires;
  rec->last_activity = (time_t)activity;
  rec->idle_timeout_s = idle;
  rec->slot = (unsigned)slot;
  json_decref(o);
  if (!rec->name || !rec->namespace_) {
    ac_record_free(rec);
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  }
  return AC_OK;
}

void ac_record_free(struct ac_record *rec) {
  free(rec->name);
  free(rec->namespace_);
  rec->name = rec->namespace_ = NULL;
}
