/*
** admission.c -- refusing sessions the host cannot give (see admission.h).
*/
#include "admission.h"

#include <stdio.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>

#define MiB (1024ULL * 1024)

unsigned long long ac_host_memory(void) {
  struct sysinfo si;
  if (sysinfo(&si) != 0)
    return 0;
  return (unsigned long long)si.totalram * si.mem_unit;
}

enum ac_code ac_admit(const struct ac_config *cfg, const struct adm_usage *u,
                      const struct ac_template *tpl, int is_session,
                      int images, const char *boxes_dir,
                      struct ac_error *err) {
  const struct sbx_limits *lim = &tpl->limits;
  struct statvfs vfs;

  if (is_session && cfg->max_sessions && u->sessions >= cfg->max_sessions)
    return ac_error_set(err, AC_ELIMIT, "too many sessions: %u of %u "
                        "(maxSessions); delete one or try again later",
                        u->sessions, cfg->max_sessions);
  if (images && lim->disk_bytes && cfg->max_loop_devices &&
      u->images >= cfg->max_loop_devices)
    return ac_error_set(err, AC_ELIMIT, "no loop device left for a disk "
                        "image: %u in use (maxLoopDevices %u)", u->images,
                        cfg->max_loop_devices);
  if (lim->memory_bytes && cfg->memory_overcommit > 0) {
    unsigned long long host = ac_host_memory();
    double allowed = (double)host * cfg->memory_overcommit;
    if (host && (double)(u->memory + lim->memory_bytes) > allowed)
      return ac_error_set(err, AC_ELIMIT, "memory limits would total %llu "
                          "MiB, over the %.0f MiB allowed (memoryOvercommit "
                          "%.2f x %llu MiB of memory)",
                          (u->memory + lim->memory_bytes) / MiB,
                          allowed / (double)MiB, cfg->memory_overcommit,
                          host / MiB);
  }
  if (statvfs(boxes_dir, &vfs) == 0) {
    unsigned long long avail =
      (unsigned long long)vfs.f_bavail * vfs.f_frsize;
    unsigned long long need = cfg->min_free_disk;
    if (images && lim->disk_bytes && !cfg->disk_overcommit)
      need += lim->disk_bytes + u->disk_unused;
    if (avail < need)
      return ac_error_set(err, AC_ETOOBIG, "not enough disk for a new "
                          "session in %s: %llu MiB free, %llu MiB needed "
                          "(its %llu MiB quota, %llu MiB the other sessions "
                          "may still use, minFreeDisk %llu MiB)", boxes_dir,
                          avail / MiB, need / MiB,
                          images ? lim->disk_bytes / MiB : 0,
                          images && !cfg->disk_overcommit
                            ? u->disk_unused / MiB : 0,
                          cfg->min_free_disk / MiB);
  }
  return AC_OK;
}
