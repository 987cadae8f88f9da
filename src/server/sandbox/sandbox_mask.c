/*
** sandbox_mask.c -- what a sandbox must not see of the host: the /proc
** entries runc masks by default (its spec's maskedPaths, and its
** readonlyPaths except /proc/sys, which the sandbox's unprivileged uid
** cannot write anyway), plus host-wide files this design adds
** (/proc/cmdline, /proc/config.gz, /proc/locks, ...); and a private mount
** for the /etc snapshot, so /proc/self/mountinfo shows neither the
** server's publish path nor its pid.
*/
#include "sandbox_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

/* Files replaced by a bind of /dev/null. bwrap binds it nodev, so it
** cannot even be opened. Plain binds and tmpfs mounts, never read-only
** ones: for each read-only mount bwrap re-reads mountinfo, a cost paid on
** every command. */
static const char *const masked_files[] = {
  /* runc's maskedPaths */
  "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
  "/proc/timer_stats", "/proc/sched_debug",
  /* runc's readonlyPaths: masked outright, nothing needs them */
  "/proc/sysrq-trigger",
  /* host-wide information this design hides too */
  "/proc/cmdline", "/proc/config.gz", "/proc/locks", "/proc/key-users",
  "/proc/kallsyms", "/proc/kmsg", "/proc/kpagecount", "/proc/kpageflags",
  "/proc/kpagecgroup", "/proc/iomem", "/proc/ioports", "/proc/vmallocinfo",
  "/proc/slabinfo", "/proc/pagetypeinfo", "/proc/mtrr",
  NULL,
};

/* Directories replaced by an empty tmpfs, mode 0555 and 4 KiB. */
static const char *const masked_dirs[] = {
  "/proc/acpi", "/proc/asound", "/proc/scsi",      /* runc's maskedPaths */
  "/proc/bus", "/proc/fs", "/proc/irq",           /* its readonlyPaths */
  "/proc/driver", "/proc/tty",
  NULL,
};

void sbx_mask_args(struct sbx_args *a) {
  struct stat st;
  /* Only what exists on this kernel: bwrap cannot create entries in
  ** /proc, and a missing one needs no mask. */
  for (size_t i = 0; masked_files[i]; i++) {
    if (stat(masked_files[i], &st) != 0 || S_ISDIR(st.st_mode))
      continue;
    sbx_args_add(a, "--bind");
    sbx_args_add(a, "/dev/null");
    sbx_args_add(a, masked_files[i]);
  }
  for (size_t i = 0; masked_dirs[i]; i++) {
    if (stat(masked_dirs[i], &st) != 0 || !S_ISDIR(st.st_mode))
      continue;
    sbx_args_add(a, "--perms");
    sbx_args_add(a, "0555");
    sbx_args_add(a, "--size");
    sbx_args_add(a, "4096");
    sbx_args_add(a, "--tmpfs");
    sbx_args_add(a, masked_dirs[i]);
  }
}

int sbx_private_mount(const char *dir) {
  /* A tmpfs of its own makes the snapshot the root of its filesystem:
  ** mountinfo inside the sandbox then shows "/" as its source path. */
  if (geteuid() != 0)
    return 0;
  if (mount("agentcube-etc", dir, "tmpfs", MS_NOSUID | MS_NODEV,
            "mode=0755,size=256m") != 0)
    return -1;
  return 1;
}

void sbx_private_unmount(const char *dir) {
  while (umount2(dir, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
    ;
}
