/*
** admission.h -- refusing a session the host cannot give (503 / 507).
**
** Before a box is made the store sums what its boxes already hold and asks
** here: the session cap (maxSessions), loop devices for disk images
** (maxLoopDevices), summed memory limits against memoryOvercommit x the
** host's memory, and disk: every image's unused quota is reserved, so the
** new image plus what the others may still grow to must fit in the free
** space of the boxes' filesystem, keeping minFreeDisk free
** (diskOvercommit: true only keeps minFreeDisk).
*/
#ifndef AGENTCUBE_ADMISSION_H
#define AGENTCUBE_ADMISSION_H

#include "ac_error.h"
#include "config.h"

/* What the existing boxes hold (warm, live, being made or destroyed). */
struct adm_usage {
  unsigned sessions;                  /* live or being created */
  unsigned boxes;                     /* every box */
  unsigned images;                    /* boxes with a loop-mounted image */
  unsigned long long memory;          /* summed memory limits */
  unsigned long long disk_unused;     /* quota the images may still use */
};

/* AC_OK, AC_ELIMIT (503: sessions, loop devices, memory) or AC_ETOOBIG
** (507: disk) with a message saying which limit and the numbers.
** is_session: 0 for a warm-pool box (no session counted). images: boxes
** get loop-mounted images of tpl->limits.disk_bytes. */
enum ac_code ac_admit(const struct ac_config *cfg, const struct adm_usage *u,
                      const struct ac_template *tpl, int is_session,
                      int images, const char *boxes_dir,
                      struct ac_error *err);

/* The host's memory in bytes (MemTotal), 0 when unknown. */
unsigned long long ac_host_memory(void);

#endif
