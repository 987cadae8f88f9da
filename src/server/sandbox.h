/*
** sandbox.h -- runs untrusted commands in per-session sandboxes.
**
** A *runtime* holds what is detected once per server: whether we are root,
** the cgroup layout (v1/hybrid/v2), the compiled seccomp filter, the path of
** bwrap. A *box* is one session's sandbox: its persistent filesystem (a
** loop-mounted ext4 image with a disk quota when root, a plain directory
** otherwise) holding workspace/, tmp/ and home/sandbox/, its cgroups with
** the session's limits, and its host uid. Every command is a fresh bwrap
** instance inside the box; processes never outlive their command.
**
** Thread safety: a runtime is shared by all threads after init; a box may
** run several commands at once from different threads.
*/
#ifndef AGENTCUBE_SANDBOX_H
#define AGENTCUBE_SANDBOX_H

#include "ac_error.h"

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

struct sbx_runtime;
struct sbx_box;

/* Limits of one session; 0 means "no limit" for every field. */
struct sbx_limits {
  unsigned long long memory_bytes;  /* memory cgroup, swap included */
  unsigned long long disk_bytes;    /* session image size (quota) */
  unsigned long long fsize_bytes;   /* RLIMIT_FSIZE per process */
  unsigned pids;                    /* pids cgroup (tasks, threads too) */
  unsigned cpu_millis;              /* CPU quota, 1000 = one full CPU */
  unsigned nofile;                  /* RLIMIT_NOFILE */
  int network;                      /* 1: share the host network */
};

/* Detects the host's facilities and prepares shared state.
** state_dir: the server's state directory (cgroup names derive from it).
** On success *out is owned by the caller: free with sbx_runtime_free. */
enum ac_code sbx_runtime_init(struct sbx_runtime **out, const char *state_dir,
                              struct ac_error *err);
void sbx_runtime_free(struct sbx_runtime *rt);

/* Prints the protection table of `agentcube serve --check`: one line per
** protection, "on" or "off", and why when off. Returns the number of
** protections that are off. */
int sbx_runtime_report(const struct sbx_runtime *rt, FILE *out);

/* 1 when the runtime can give each session its own host uid (root). */
int sbx_runtime_switches_uid(const struct sbx_runtime *rt);

/* Creates a new box in directory dir (which must not exist yet) for the
** given host uid/gid (ignored when not root) and limits. The box is ready
** to run commands when this returns. *out is owned by the caller. */
enum ac_code sbx_box_create(struct sbx_runtime *rt, const char *dir,
                            uid_t uid, const struct sbx_limits *limits,
                            struct sbx_box **out, struct ac_error *err);

/* Re-attaches to a box that sbx_box_create made earlier (after a server
** restart, even after kill -9): mounts its image again if needed, re-creates
** its cgroups. Fails with AC_ENOTFOUND when dir holds no complete box. */
enum ac_code sbx_box_open(struct sbx_runtime *rt, const char *dir,
                          uid_t uid, const struct sbx_limits *limits,
                          struct sbx_box **out, struct ac_error *err);

/* Kills every process of the box, then frees the in-memory handle and leaves
** the box on disk (server shutdown). NULL is allowed. */
void sbx_box_close(struct sbx_box *box);

/* Kills every process of the box, unmounts and deletes everything the box
** owns on disk and in cgroupfs, and frees the handle. NULL is allowed.
** Waits for running sbx_exec calls on other threads to return first. */
void sbx_box_destroy(struct sbx_box *box);

/* An O_PATH directory fd of the box's filesystem root (the directory that
** holds workspace/, tmp/, home/sandbox/). Owned by the box. */
int sbx_box_rootfd(const struct sbx_box *box);
uid_t sbx_box_uid(const struct sbx_box *box);
gid_t sbx_box_gid(const struct sbx_box *box);

struct sbx_exec_request {
  const char *const *argv;   /* NULL-terminated, argv[0] looked up in PATH */
  const char *const *env;    /* extra "NAME=value" entries or NULL */
  const char *working_dir;   /* absolute sandbox path; NULL = /workspace */
  long long timeout_ns;      /* <= 0: times out at once, never starts */
  size_t max_output;         /* cap per stream in bytes; 0 = 16 MiB */
};

struct sbx_exec_result {
  int exit_code;      /* 124 timeout; 128+n killed by signal n (bwrap's
                         convention); 1 when the program cannot start */
  int timed_out;      /* the wall timeout fired; the tree was killed */
  int oom_killed;     /* the memory cgroup killed a process */
  char *out, *err;    /* NUL-terminated, malloc'd, owned by the result */
  size_t out_len, err_len;
  int out_truncated, err_truncated;  /* more output was discarded */
  struct timespec start, end;        /* CLOCK_REALTIME */
};

/* Runs one command in the box and waits for it (or its timeout). A non-zero
** exit status is a result, not an error: errors are failures to run at all.
** On success the caller frees *res with sbx_exec_result_free. */
enum ac_code sbx_exec(struct sbx_box *box, const struct sbx_exec_request *req,
                      struct sbx_exec_result *res, struct ac_error *err);
void sbx_exec_result_free(struct sbx_exec_result *res);

#endif
