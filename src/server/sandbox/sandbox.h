/*
** sandbox.h -- runs untrusted commands in per-session sandboxes.
**
** A *runtime* holds what is detected once per server: whether we are root,
** the cgroup layout (v1/hybrid/v2), the compiled seccomp filter, the path of
** bwrap, the sandbox's /etc. A *box* is one session's sandbox: its
** persistent filesystem (a loop-mounted ext4 image with a disk quota when
** root, a plain directory otherwise) holding workspace/, tmp/ and
** home/sandbox/, its cgroups with the session's limits, its host uid, and
** its live sandbox: one bwrap instance started with the box and kept until
** it is closed, whose init is our agent; commands are forked inside it
** (sandbox_live.h). A command's processes never outlive the command.
**
** Thread safety: a runtime is shared by all threads after init; a box may
** run several commands at once from different threads (each command has
** cgroups of its own, so a timeout kills only that command).
**
** Process-wide effects of sbx_runtime_init: the server becomes a child
** subreaper (PR_SET_CHILD_SUBREAPER), so orphans of its own children are
** reparented to it; the sandbox reaps those of its commands itself, other
** code that double-forks must reap its own. SIGCHLD must not be ignored
** (SIG_IGN or SA_NOCLDWAIT), or exit statuses are lost.
**
** Paths: state_dir and the box directories may be private (0700, under
** /root). A root server publishes each box's trees under
** /run/agentcube/<hash of state_dir>/box-<hash of dir> (0711), because
** bwrap, running as the session uid, must reach what it binds by path.
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

/* One destination a networked session may reach besides the public
** internet (docs/sandbox.md §7): an address block or a host name
** (resolved when the session's network starts), every port or a range. */
struct sbx_net_allow {
  char *host;                       /* a name, or NULL: addr/prefix */
  int family;                       /* AF_INET or AF_INET6 (addr) */
  unsigned char addr[16];
  unsigned prefix;
  unsigned port_lo, port_hi;        /* 0, 0: every port */
};

/* A template's network policy (`network:` in the config). */
struct sbx_net_policy {
  int public_;                      /* public addresses reachable */
  int dns;                          /* the host's resolver, through the
                                       namespace's 169.254.1.1 */
  size_t nallow;
  struct sbx_net_allow *allow;
};

/* Limits of one session; 0 means "no limit" for every field. */
struct sbx_limits {
  unsigned long long memory_bytes;  /* memory cgroup, swap included; the
                                       per-command /dev/shm tmpfs is sized
                                       min(64 MiB, memory_bytes / 4) */
  unsigned long long disk_bytes;    /* session image size (quota), at least
                                       2 MiB; 0 or not root: a plain
                                       directory without quota */
  unsigned long long fsize_bytes;   /* RLIMIT_FSIZE per process */
  unsigned pids;                    /* pids cgroup (tasks, threads too);
                                       the live sandbox's own 2 processes
                                       (bwrap, agent) count, and with
                                       network its pasta */
  unsigned cpu_millis;              /* CPU quota, 1000 = one full CPU */
  unsigned nofile;                  /* RLIMIT_NOFILE (soft = hard) */
  int network;                      /* 1: a network namespace of its own
                                       with outbound access (pasta) */
  const struct sbx_net_policy *netpol; /* NULL: public addresses and DNS
                                          only; owned by the caller, must
                                          outlive the box */
  unsigned long long proc_output_bytes; /* output kept per background
                                           process (a ring); 0: 1 MiB */
  const char *image_root;           /* NULL: the host's /usr and the /etc
                                       snapshot; else a root filesystem
                                       whose /usr, /etc, /opt are bound
                                       read-only (sandbox_image.c) */
  unsigned ptys;                    /* pseudo-terminals of the box's own
                                       devpts instance (root only; 0:
                                       bwrap's own, no maximum) */
};

/* Detects the host's facilities and prepares shared state: cgroup parents
** named after state_dir ("agentcube-<hash>", below the server's own
** cgroups), the seccomp program, <state_dir>/sandbox-etc (the sandbox's
** /etc, rebuilt at every start), then runs a self-test sandbox. Missing
** facilities are not errors: sbx_runtime_report says what is off, and box
** creation fails with AC_EUNSUPPORTED when commands cannot run at all.
** Errors: AC_ENOTFOUND (no state_dir), AC_ECONFIG (SIGCHLD ignored).
** On success *out is owned by the caller: free with sbx_runtime_free, after
** every box is closed or destroyed. */
enum ac_code sbx_runtime_init(struct sbx_runtime **out, const char *state_dir,
                              struct ac_error *err);
void sbx_runtime_free(struct sbx_runtime *rt);

/* Prints the protection table of `agentcube serve --check`: a heading line,
** then one line per protection, "on" or "off", with what is used or why it
** is off. Returns the number of protections that are off. */
int sbx_runtime_report(const struct sbx_runtime *rt, FILE *out);

/* 1 when the runtime can give each session its own host uid (root). */
int sbx_runtime_switches_uid(const struct sbx_runtime *rt);

/* Creates a new box in directory dir (which must not exist yet; its parent
** must) for the given host uid (gid = uid; both ignored when not root;
** never 0) and limits. The box is ready to run commands when this returns.
** Errors: AC_EEXIST, AC_EINVAL, AC_EUNSUPPORTED (no working sandbox
** here), AC_ESYSTEM. On failure nothing is left behind. *out is owned by
** the caller. */
enum ac_code sbx_box_create(struct sbx_runtime *rt, const char *dir,
                            uid_t uid, const struct sbx_limits *limits,
                            struct sbx_box **out, struct ac_error *err);

/* Re-attaches to a box that sbx_box_create made earlier (after a server
** restart, even after kill -9): reuses its image's mount if it is still
** there, mounts it again otherwise, re-creates its cgroups (killing and
** removing leftover command cgroups) and applies limits (the disk size is
** fixed at creation). Fails with AC_ENOTFOUND when dir holds no complete
** box, AC_EINVAL when it belongs to another uid. */
enum ac_code sbx_box_open(struct sbx_runtime *rt, const char *dir,
                          uid_t uid, const struct sbx_limits *limits,
                          struct sbx_box **out, struct ac_error *err);

/* Kills the commands running in the box now, without waiting: their
** sbx_exec calls return soon with exit code 137. The box stays usable.
** Takes only the box's own lock briefly, so it may be called with other
** locks held. NULL is allowed. */
void sbx_box_kill(struct sbx_box *box);

/* Kills every process of the box, removes its cgroups, unmounts its image
** and frees the in-memory handle, leaving the files on disk (server
** shutdown). Waits for running sbx_exec calls on other threads to return
** first. NULL is allowed. */
void sbx_box_close(struct sbx_box *box);

/* Kills every process of the box, unmounts and deletes everything the box
** owns on disk and in cgroupfs, and frees the handle. NULL is allowed.
** Waits for running sbx_exec calls on other threads to return first. */
void sbx_box_destroy(struct sbx_box *box);

/* Deletes what a box directory holds without a handle: for boxes that
** cannot be opened any more (a create interrupted by a crash, so
** sbx_box_open says AC_ENOTFOUND) or that the session store forgot. Kills
** leftover processes in its cgroups, unmounts its image, removes the
** directory. A dir that does not exist is not an error. */
enum ac_code sbx_box_purge(struct sbx_runtime *rt, const char *dir,
                           struct ac_error *err);

/* An O_PATH directory fd of the box's filesystem root (the directory that
** holds workspace/, tmp/, home/sandbox/). Owned by the box. */
int sbx_box_rootfd(const struct sbx_box *box);
uid_t sbx_box_uid(const struct sbx_box *box);
gid_t sbx_box_gid(const struct sbx_box *box);

/* The box directory as an absolute path (realpath). Owned by the box. */
const char *sbx_box_dir(const struct sbx_box *box);

/* A memory pool that buffered output is charged to (the server's request
** memory, maxRequestMemory): take returns 1 when n more bytes may be held,
** give hands them back. */
struct sbx_mem_pool {
  int (*take)(size_t n);
  void (*give)(size_t n);
};

struct sbx_exec_request {
  const char *const *argv;   /* NULL-terminated, argv[0] looked up in PATH */
  const char *const *env;    /* extra "NAME=value" entries or NULL; they
                                override PATH, HOME=/home/sandbox,
                                TMPDIR=/tmp, LANG=C.UTF-8 */
  const char *working_dir;   /* absolute sandbox path; NULL = /workspace */
  long long timeout_ns;      /* <= 0: times out at once, never starts */
  size_t max_output;         /* cap per stream in bytes; 0 = 16 MiB */
  const struct sbx_mem_pool *pool;  /* buffered output is charged here as
                                       its buffers grow (given back when
                                       the task goes); NULL: not charged */
};

struct sbx_exec_result {
  int exit_code;      /* 124 timeout; 128+n killed by signal n (137 after
                         an OOM kill, or when the box's sandbox died); 1
                         when the program cannot start (the agent prints
                         why on stderr: no such program, no such
                         working_dir) */
  int timed_out;      /* the wall timeout fired; the tree was killed */
  int oom_killed;     /* the memory cgroup killed a process; the rest of
                         the command was killed too */
  char *out, *err;    /* NUL-terminated, malloc'd, owned by the result;
                         err ends with "\nCommand timed out after N
                         seconds" on a timeout */
  size_t out_len, err_len;
  int out_truncated, err_truncated;  /* more output was discarded (the
                                        command kept running) */
  int pool_refused;   /* ... because the request's memory pool could not
                         hold more (the truncated flag is set too) */
  struct timespec start, end;        /* CLOCK_REALTIME */
};

/* Runs one command in the box and waits for it (or its timeout). A non-zero
** exit status is a result, not an error: errors are failures to run at all
** (AC_EINVAL for a bad request, AC_ECLOSED when the box is closing,
** AC_ESYSTEM when the sandbox cannot start). stdin is /dev/null. It is
** sbx_exec_start (sandbox_live.h) and a wait. On success the caller frees
** *res with sbx_exec_result_free. */
enum ac_code sbx_exec(struct sbx_box *box, const struct sbx_exec_request *req,
                      struct sbx_exec_result *res, struct ac_error *err);
void sbx_exec_result_free(struct sbx_exec_result *res);

#endif
