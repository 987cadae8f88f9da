/*
** uid_range.h -- the block of host uids a root server hands its sessions.
**
** Two servers on one host must never give out the same uid: per-uid
** kernel limits (processes, inotify, keyrings, ...) would be shared
** between their sessions. Each block is reserved by an flock on
** /run/agentcube/uids/<base>.lock, held while the server runs; a block
** never overlaps /etc/subuid, /etc/subgid, or any user or group that
** exists. The state directory remembers its block (uid-base), because
** its sessions' files belong to those uids across restarts.
*/
#ifndef AGENTCUBE_UID_RANGE_H
#define AGENTCUBE_UID_RANGE_H

#include "ac_error.h"

#include <sys/types.h>

struct ac_uid_range {
  uid_t base;          /* first uid; base + count - 1 the last */
  unsigned count;
  int lockfd;          /* -1 when nothing is held */
};

/* Reserves count uids for state_dir (the one it used before when it is
** free). AC_EBUSY when the state directory's block is held by another
** server or now overlaps a user; AC_ESYSTEM when no block is free. */
enum ac_code ac_uid_range_reserve(const char *state_dir, unsigned count,
                                  struct ac_uid_range *out,
                                  struct ac_error *err);
void ac_uid_range_release(struct ac_uid_range *r);

/* Whether [base, base+count) overlaps /etc/subuid, /etc/subgid, or a user
** or group id that exists (the reason in why). */
int ac_uid_range_conflicts(uid_t base, unsigned count, char *why,
                           size_t whysz);

/* Whether [base, base+count) overlaps a range of file, in the format of
** /etc/subuid ("name:start:count" lines); the owner in why. */
int ac_uid_range_sub_overlaps(const char *file, uid_t base, unsigned count,
                              char *why, size_t whysz);

#endif
