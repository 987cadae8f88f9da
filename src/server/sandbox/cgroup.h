/*
** cgroup.h -- the sandbox's cgroups on cgroup v1/hybrid and pure v2 hosts.
**
** Layout: under the cgroup the server itself runs in (per hierarchy, read
** from /proc/self/cgroup), a runtime parent named after the state directory
** ("agentcube-<hash>"), one directory per box below it, and one directory
** per running command below the box:
**
**   <hier><self>/agentcube-<hash>/box-<hash>/cmd-<n>
**
** Limits (memory, pids, cpu) are set on the box. A command joins its own
** cmd-<n> directory in the hierarchies that kill or count per command
** (cgroup v2 core: cgroup.kill; v1 memory: OOM counter; v1 freezer when
** there is no cgroup.kill) and joins the box directory directly in the
** others (v1 pids and cpu). Several commands of one box can therefore run
** at once and be killed separately.
**
** Nothing here is async-signal-safe except that the fds returned by
** cg_cmd_join_fds may be written by a child between clone and exec.
*/
#ifndef AGENTCUBE_CGROUP_H
#define AGENTCUBE_CGROUP_H

#include "ac_error.h"

#include <stddef.h>

#define CG_MAX_HIER 5

/* What the runtime does in one hierarchy. */
enum {
  CG_W_MEM    = 1 << 0,   /* memory limit and OOM counting */
  CG_W_PIDS   = 1 << 1,   /* pids.max */
  CG_W_CPU    = 1 << 2,   /* cpu quota */
  CG_W_KILL   = 1 << 3,   /* cgroup.kill (v2 core) */
  CG_W_FREEZE = 1 << 4,   /* freeze + SIGKILL fallback */
  CG_W_V2     = 1 << 5    /* this hierarchy is cgroup v2 */
};

struct cg_hier {
  char *parent;           /* <mount><self>/agentcube-<hash>, malloc'd */
  unsigned what;          /* CG_W_* */
  int percmd;             /* commands get their own child directory */
};

struct cg_runtime {
  int mode;                      /* 0 none, 1 v1/hybrid, 2 pure v2 */
  struct cg_hier h[CG_MAX_HIER];
  int n;
  int has_memsw;                 /* v1: memory.memsw.* (swap counted) */
  /* Why each facility is off; "" when it is on. */
  char why_mem[160], why_pids[160], why_cpu[160], why_kill[160];
  char layout[96];               /* "v1 (hybrid, v2 core at ...)" */
};

struct cg_box {
  char *dir[CG_MAX_HIER];        /* box directory per hierarchy */
  int n;
};

struct cg_cmd {
  char *dir[CG_MAX_HIER];        /* per-command dirs (NULL where joined
                                    at box level) */
  int join[CG_MAX_HIER];         /* O_WRONLY cgroup.procs fds to join */
  int njoin;
  int oom_efd;                   /* v1 OOM eventfd, or -1 */
  int n;
};

/* Detects the layout and creates the runtime parents named `name`.
** Failing facilities are switched off with a reason (never an error:
** unprivileged servers run without cgroups). */
void cg_runtime_init(struct cg_runtime *cg, const char *name);

/* cg_runtime_init, pretending that cgroup.kill (CG_INIT_NO_KILL) and/or
** cgroup.freeze (CG_INIT_NO_V2_FREEZE) do not exist, as on kernels before
** 5.14 and 5.2: exercises the fallback kills. */
enum { CG_INIT_NO_KILL = 1, CG_INIT_NO_V2_FREEZE = 2 };
void cg_runtime_init_ex(struct cg_runtime *cg, const char *name,
                        unsigned flags);
/* The runtime on the cgroup v2 tree mounted at mount, the server's own
** cgroup being self there: what cg_runtime_init_ex does on a pure v2
** host (mount /sys/fs/cgroup, self from /proc/self/cgroup); the tests
** also give it trees laid out by hand. */
void cg_runtime_init_v2(struct cg_runtime *cg, const char *name,
                        unsigned flags, const char *mount, const char *self);
void cg_runtime_free(struct cg_runtime *cg);

/* 1 when the facility is on. */
int cg_has(const struct cg_runtime *cg, unsigned what);

/* Creates (or re-attaches to) the box cgroups `name`, removes stale
** command cgroups of an earlier server (killing their processes), and
** applies the limits; 0 means "no limit" for each value. */
enum ac_code cg_box_open(const struct cg_runtime *cg, const char *name,
                         unsigned long long memory_bytes, unsigned pids,
                         unsigned cpu_millis, struct cg_box *box,
                         struct ac_error *err);

/* Kills every process of every command of the box (SIGKILL). */
void cg_box_kill(const struct cg_runtime *cg, const struct cg_box *box);

/* Kills, waits until empty, removes the box directories and frees them. */
void cg_box_remove(const struct cg_runtime *cg, struct cg_box *box);

/* cg_box_remove for the box cgroups `name` without a cg_box (whatever of
** them exists). */
void cg_box_purge(const struct cg_runtime *cg, const char *name);

/* Frees the in-memory box without touching cgroupfs. */
void cg_box_free(struct cg_box *box);

/* Creates the per-command cgroups `name` below the box and opens the fds
** the child writes "0" into. */
enum ac_code cg_cmd_create(const struct cg_runtime *cg,
                           const struct cg_box *box, const char *name,
                           struct cg_cmd *cmd, struct ac_error *err);

/* SIGKILLs every process of the command (cgroup.kill, or the freezer
** fallback). */
void cg_cmd_kill(const struct cg_runtime *cg, const struct cg_cmd *cmd);

/* OOM kills counted in the command's memory cgroup so far (0 when there
** is no memory cgroup). */
unsigned long long cg_cmd_oom_kills(const struct cg_runtime *cg,
                                    const struct cg_cmd *cmd);

/* Kills what is left, waits until empty, removes the directories, closes
** the fds and frees the struct's contents. */
void cg_cmd_destroy(const struct cg_runtime *cg, struct cg_cmd *cmd);

/* 1 when the command's cgroups still hold processes. */
int cg_cmd_populated(const struct cg_runtime *cg, const struct cg_cmd *cmd);

/* A live sandbox's cgroup (a cg_cmd named "live") holds the sandbox's
** init, and one child "c<id>" per command in the hierarchy that has
** cgroup.kill; the init creates and joins those children itself, through
** a directory fd (cgroup v2 delegation). */

/* Index of the hierarchy whose directory has cgroup.kill, or -1. */
int cg_cmd_kill_index(const struct cg_runtime *cg, const struct cg_cmd *cmd);

/* Delegates the kill hierarchy's directory (chown of the directory and its
** cgroup.procs when chown_to) and returns an O_DIRECTORY fd of it, or -1
** when there is none or it failed. */
int cg_cmd_delegate(const struct cg_runtime *cg, const struct cg_cmd *cmd,
                    int chown_to, unsigned uid, unsigned gid);

/* cgroup.kill of the child `name`; -1 when it does not exist. */
int cg_cmd_kill_child(const struct cg_runtime *cg, const struct cg_cmd *cmd,
                      const char *name);

/* 1 when the child `name` still holds processes. */
int cg_cmd_child_populated(const struct cg_runtime *cg,
                           const struct cg_cmd *cmd, const char *name);

/* rmdir of the child `name`: 0 when it is gone, -1 (EBUSY) when not yet. */
int cg_cmd_remove_child(const struct cg_runtime *cg, const struct cg_cmd *cmd,
                        const char *name);

#endif
