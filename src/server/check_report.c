/*
** check_report.c -- protections and budgets for `serve --check`.
*/
#include "check_report.h"
#include "admission.h"
#include "sandbox_net.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define MiB (1024ULL * 1024)

static int line(FILE *out, const char *name, int on, const char *detail) {
  fprintf(out, "  %-30s %-3s  %s\n", name, on ? "on" : "off", detail);
  return !on;
}

/* A number from /proc/sys, or -1. */
static long sysctl_num(const char *path) {
  FILE *f = fopen(path, "re");
  long v = -1;
  if (f) {
    if (fscanf(f, "%ld", &v) != 1)
      v = -1;
    fclose(f);
  }
  return v;
}

/* Whether the state directory's filesystem supports unnamed files. */
static int tmpfile_ok(const char *dir) {
  int fd = open(dir, O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
  if (fd < 0)
    return 0;
  close(fd);
  return 1;
}

int ac_check_report(const struct ac_config *cfg, const char *state_dir,
                    FILE *out) {
  int off = 0, root = geteuid() == 0;
  unsigned long long mem = ac_host_memory();
  struct statvfs vfs;
  char d[256];

  off += line(out, "state directory checks", 1,
              "owner, mode, ancestors and symlinks checked; opened "
              "O_NOFOLLOW");
  off += line(out, "/proc masking", 1,
              "runc's masked and read-only paths, cmdline, config.gz, "
              "locks, ...");
  off += line(out, "private /etc mount", root,
              root ? "tmpfs snapshot: mountinfo shows no server path"
                   : "not root: mountinfo shows the state directory");
  off += line(out, "session URL binding", 1,
              "a session answers only under its own namespace/name");
  off += line(out, "unnamed upload files", tmpfile_ok(state_dir),
              "O_TMPFILE: invisible to the sandbox, gone after kill -9");
  snprintf(d, sizeof d, "own uid block; per session: %ld inotify "
           "instances, %ld keys (kernel per-uid limits)",
           sysctl_num("/proc/sys/fs/inotify/max_user_instances"),
           sysctl_num("/proc/sys/kernel/keys/maxkeys"));
  off += line(out, "per-uid kernel resources", root, root ? d
              : "not root: every session shares the server's uid");
  snprintf(d, sizeof d, "a devpts instance per box, at most `ptys` of "
           "the host's %ld", sysctl_num("/proc/sys/kernel/pty/max"));
  off += line(out, "pseudo-terminals", root, root ? d
              : "not root: bwrap's devpts, no maximum");
  off += line(out, "admission control", 1,
              "session cap, loop devices, memory overcommit, disk "
              "reservation (503/507)");
  fprintf(out, "budgets:\n");
  fprintf(out, "  %-30s %llu MiB (execute %llu KiB, control %llu KiB, "
          "uploads %llu MiB)\n", "request bodies: JSON upload",
          cfg->max_json_bytes / MiB, cfg->max_execute_bytes / 1024,
          cfg->max_control_bytes / 1024, cfg->max_upload_bytes / MiB);
  fprintf(out, "  %-30s depth %u, %u values\n", "JSON bodies",
          cfg->max_json_depth, cfg->max_json_nodes);
  fprintf(out, "  %-30s %llu MiB%s\n", "memory of requests in flight",
          cfg->max_request_memory / MiB,
          cfg->max_request_memory ? "" : " (no limit)");
  fprintf(out, "  %-30s %u\n", "requests in flight", cfg->max_inflight);
  fprintf(out, "  %-30s %u\n", "sessions", cfg->max_sessions);
  fprintf(out, "  %-30s %u\n", "loop devices", cfg->max_loop_devices);
  if (cfg->memory_overcommit > 0)
    snprintf(d, sizeof d, "%.2f x %llu MiB = %.0f MiB of memory limits",
             cfg->memory_overcommit, mem / MiB,
             cfg->memory_overcommit * (double)mem / (double)MiB);
  else
    snprintf(d, sizeof d, "off (memory limits not summed)");
  fprintf(out, "  %-30s %s\n", "memory overcommit", d);
  if (statvfs(state_dir, &vfs) == 0)
    snprintf(d, sizeof d, "%s; keep %llu MiB free (%llu MiB free now)",
             cfg->disk_overcommit ? "overcommit allowed"
                                  : "every quota reserved",
             cfg->min_free_disk / MiB,
             (unsigned long long)vfs.f_bavail * vfs.f_frsize / MiB);
  else
    snprintf(d, sizeof d, "keep %llu MiB free", cfg->min_free_disk / MiB);
  fprintf(out, "  %-30s %s\n", "disk", d);
  fprintf(out, "  %-30s %llu MiB per stream, counted encoded\n",
          "command output (default)", (unsigned long long)
          cfg->fallback.max_output / MiB);
  fprintf(out, "network policies:\n");
  for (size_t i = 0; i <= cfg->ntemplates; i++) {
    const struct ac_template *t = i < cfg->ntemplates ? &cfg->templates[i]
                                                      : &cfg->fallback;
    if (i == cfg->ntemplates && cfg->strict)
      break;
    fprintf(out, "  %-30s ", t->name ? t->name : "(any other name)");
    if (t->limits.network)
      sbx_net_policy_print(t->limits.netpol, out);
    else
      fprintf(out, "no network (loopback only)");
    fputc('\n', out);
  }
  return off;
}
