/*
** sandbox_int.h -- internals shared by sandbox.c (runtime), sandbox_box.c
** (boxes), sandbox_args.c (bwrap arguments), sandbox_spawn.c (the launch
** child) and sandbox_live.c (the live sandbox and its commands). Not a
** public header.
*/
#ifndef AGENTCUBE_SANDBOX_INT_H
#define AGENTCUBE_SANDBOX_INT_H

#include "boxfs.h"
#include "cgroup.h"
#include "sandbox.h"
#include "seccomp_filter.h"

#include <limits.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/types.h>

/* In-sandbox identity: bwrap maps it to the session's host uid. */
#define SBX_UID 1000
#define SBX_GID 1000

/* Child fd layout for bwrap (the numbers appear in the --args text). The
** directories are bound with --bind-fd: bwrap, running as the session
** uid, never needs search permission on the host paths above them (a
** 0700 state directory under /root works). */
enum {
  SBX_FD_STDIN, SBX_FD_STDOUT, SBX_FD_STDERR,
  SBX_FD_ARGS,          /* --args: NUL-separated arguments */
  SBX_FD_SECCOMP,       /* --seccomp: the BPF program */
  SBX_FD_INFO,          /* --info-fd: {"child-pid": N, ...} */
  SBX_FD_ETC,           /* --ro-bind-fd: the /etc snapshot (runtime's) */
  SBX_FD_WS,            /* --bind-fd: workspace (the box's) */
  SBX_FD_TMP,           /* --bind-fd: tmp */
  SBX_FD_HOME,          /* --bind-fd: home/sandbox */
  SBX_FD_AGENT,         /* --ro-bind-data: the agent's executable */
  SBX_FD_SOCK,          /* the live sandbox's agent socket */
  SBX_FD_CGDIR,         /* the agent's delegated cgroup directory */
  SBX_FD_RESOLV,        /* --ro-bind-data: resolv.conf (network only) */
  SBX_NFDS
};

/* fds below this one are opened per command; the others are borrowed
** from the runtime and the box. */
#define SBX_FD_FIRST_BORROWED SBX_FD_ETC

struct sbx_runtime {
  char *state_dir;            /* realpath, malloc'd */
  char cgname[40];            /* "agentcube-<16 hex>" */
  int root;                   /* euid 0: session uids, images, cgroups */
  char bwrap[64];              /* "" when missing (a fixed list) */
  char bwrap_version[32];
  char mkfs[64];               /* "" when missing (a fixed list) */
  int loop_ok;                /* /dev/loop-control usable */
  int userns_ok;              /* unprivileged user namespaces */
  int subreaper_ok;
  int selftest_ok;            /* a real sandbox ran `true` */
  struct scf_program seccomp; /* bpf == NULL when it failed to build */
  struct cg_runtime cg;
  long ncpu;
  char *pub;                  /* /run/agentcube/<hash>: where boxes are
                                 published (root only), or NULL */
  char *etc;                  /* <pub or state_dir>/etc.<pid>, malloc'd */
  int etcfd;                  /* O_PATH fd of etc, or -1 */
  char *layout;               /* NUL-separated bwrap args: /usr, /etc */
  size_t layout_len;
  struct sbx_live_rt *live;   /* the live sandboxes' event thread */
  struct sbx_net_rt *net;     /* session networks (sandbox_net.c), or
                                 NULL: why_net says why */
  char why_net[200];
  char why_bwrap[160], why_mkfs[160], why_loop[160], why_userns[160];
  char why_seccomp[AC_ERROR_SIZE], why_selftest[AC_ERROR_SIZE + 64];
};

/* AC_OK when commands can run here (bwrap, seccomp, self-test). */
enum ac_code sbx_runtime_usable(const struct sbx_runtime *rt,
                                struct ac_error *err);

struct sbx_task;
struct sbx_live_rt;
struct sbx_net_rt;
struct sbx_net;
struct sbx_proc;
struct sbx_ctx;

/* The live sandbox of a box (sandbox_live.c); every field is protected by
** the runtime's live mutex. */
enum { SBX_LIVE_DOWN, SBX_LIVE_STARTING, SBX_LIVE_UP };
struct sbx_live_ep {
  struct sbx_box *box;
  int kind;                   /* 1 socket, 2 bwrap's pidfd, 3 OOM (v1) */
};
struct sbx_live {
  int state;
  int spawned;                /* STARTING: bwrap runs, no HELLO yet */
  int sock;                   /* our end of the agent socket, or -1 */
  pid_t pid;                  /* bwrap */
  int pidfd;
  int errfd;                  /* memfd holding bwrap's stderr */
  pid_t agent_pid;            /* host pid of the agent (from HELLO) */
  int agent_pidfd;            /* pins it: reaped by us if bwrap died first */
  struct cg_cmd cg;           /* the "live" cgroup of the sandbox */
  int have_cg, cgdirfd, percmd_cg;
  unsigned long long oom_base;
  pthread_mutex_t send_mu;    /* one writer on the socket at a time */
  struct sbx_task *tasks;     /* in flight */
  struct sbx_proc *procs;     /* background processes, oldest first */
  unsigned next_proc;
  struct sbx_task *watches;   /* process watches not yet ended */
  struct sbx_ctx *ctxs;       /* language contexts, newest first */
  struct sbx_ctx *ctx_graveyard; /* deleted, interpreter not yet gone */
  unsigned next_ctx;
  unsigned next_id;
  unsigned long long down_epoch;
  unsigned long long launches;
  struct sbx_live_ep ep_sock, ep_pid, ep_oom;
  char why[AC_ERROR_SIZE];    /* why the last launch failed */
};

struct sbx_box {
  struct sbx_runtime *rt;
  struct sbx_live live;
  struct boxfs fs;
  struct cg_box cg;
  char cgname[32];            /* "box-<16 hex>" */
  struct sbx_limits limits;
  struct sbx_net *net;        /* its network (sandbox_net.c), or NULL */
  char *prefix;               /* NUL-separated bwrap args for this box */
  size_t prefix_len;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int closing;                /* close/destroy started: refuse new tasks */
  unsigned running;           /* tasks started and not yet released */
};

/* ---- sandbox_args.c ---- */

/* A growing buffer of NUL-terminated strings. */
struct sbx_args {
  char *p;
  size_t len, cap;
  int oom;                    /* an append failed: the buffer is unusable */
};

void sbx_args_add(struct sbx_args *a, const char *s);
void sbx_args_addn(struct sbx_args *a, const char *s, size_t n);
void sbx_args_free(struct sbx_args *a);

/* The host layout every sandbox gets: /usr, the merged-/usr symlinks and
** the /etc snapshot. Fills rt->layout. */
enum ac_code sbx_layout_build(struct sbx_runtime *rt, struct ac_error *err);

/* The per-box prefix: namespaces, layout, /proc, /dev, the session binds.
** Fills box->prefix. */
enum ac_code sbx_prefix_build(struct sbx_box *box, struct ac_error *err);

/* ---- sandbox_image.c ---- */

/* For a box with limits.image_root: appends the image's /usr, top-level
** links, /etc and /opt (instead of rt->layout), publishing the image
** first when root. */
enum ac_code sbx_image_layout(struct sbx_box *box, struct sbx_args *a,
                              struct ac_error *err);

/* Unmounts the images published under rt->pub (runtime shutdown). */
void sbx_image_unpublish_all(struct sbx_runtime *rt);
/* ---- sandbox_mask.c ---- */

/* Appends the bwrap operations that mask host information in /proc (after
** --proc). */
void sbx_mask_args(struct sbx_args *a);

/* Mounts a private tmpfs on dir when root: 1 done, 0 not root, -1 failed
** (errno). sbx_private_unmount detaches whatever is mounted there. */
int sbx_private_mount(const char *dir);
void sbx_private_unmount(const char *dir);

/* ---- sandbox_pts.c ---- */

/* Mounts the box's own devpts instance (at most limits.ptys ptys; root
** only) and appends the bind onto /dev/pts (after --dev). */
enum ac_code sbx_pts_args(struct sbx_box *box, struct sbx_args *a,
                          struct ac_error *err);

/* ---- sandbox_etc.c ---- */

/* Synthesized /etc files. */
extern const char sbx_passwd[], sbx_group[], sbx_hosts[];

/* /etc subdirectories bound from the host onto the snapshot (NULL-ended;
** "ssl/certs" style paths below /etc). */
extern const char *const sbx_etc_binds[];

/* Builds the /etc snapshot in <pub or state_dir>/etc.<pid> (rt->etc),
** removing snapshots of servers that are gone. */
enum ac_code sbx_etc_build(struct sbx_runtime *rt, struct ac_error *err);

/* Deletes the snapshot and frees rt->etc. */
void sbx_etc_remove(struct sbx_runtime *rt);

/* ---- sandbox_spawn.c ---- */

struct sbx_rlimit {
  int resource;
  struct rlimit lim;
};

/* Everything the launch child does, computed before it exists: between
** clone and execve it only makes async-signal-safe system calls. */
struct sbx_spawn_plan {
  const char *path;            /* executable */
  char *const *argv;
  char *const *envp;
  int fds[SBX_NFDS];           /* fds[i] becomes fd i; -1: left closed */
  int nfds;
  const int *join;             /* cgroup.procs fds: the child writes "0" */
  int njoin;
  struct sbx_rlimit rl[8];
  int nrl;
  int netns;                   /* > 0: a network namespace fd joined
                               ** before the uid switch (0: none) */
  int set_ids;                 /* drop groups, switch to uid/gid */
  uid_t uid;
  gid_t gid;
};

/* Starts the child (clone with CLONE_VM|CLONE_VFORK, like posix_spawn) and
** returns its pid and a pidfd (O_CLOEXEC) owned by the caller; the pidfd is
** -1 when the kernel has no pidfd_open. Fails with the failing step and
** errno when the child could not reach execve. */
enum ac_code sbx_spawn(const struct sbx_spawn_plan *plan, pid_t *pid,
                       int *pidfd, struct ac_error *err);

/* ---- sandbox_live.c ---- */

/* Starts / stops the event thread of the live sandboxes. */
enum ac_code sbx_live_rt_start(struct sbx_runtime *rt, struct ac_error *err);
void sbx_live_rt_stop(struct sbx_runtime *rt);

/* Per box: initialises box->live; asks for the sandbox to be launched
** ahead of the first command (warm); stops it (kills everything running,
** waits until the sandbox is gone). */
int sbx_live_box_init(struct sbx_box *box);
void sbx_live_box_warm(struct sbx_box *box);
void sbx_live_box_stop(struct sbx_box *box);
void sbx_live_box_fini(struct sbx_box *box);

/* Kills every command in flight of the box (sbx_box_kill). */
void sbx_live_box_kill(struct sbx_box *box);

/* One output stream of a task: kept (or, streaming, counted) up to max
** bytes; what is past it is dropped and flagged. */
struct sbx_obuf {
  char *p;                     /* malloc'd, NULL until the first byte */
  size_t len, cap, max;
  int truncated;
  const struct sbx_mem_pool *pool;  /* charged for cap, or NULL */
  size_t charged;              /* what pool holds for this buffer */
  int refused;                 /* pool said no: nothing more is kept */
};

/* Keeps up to b->max bytes of data, growing the buffer against its pool
** (keep 0: a streamed task, only counted); returns how many were kept.
** Commands and context runs share it (sandbox_live.c). */
size_t sbx_obuf_add(struct sbx_obuf *b, const char *data, size_t len,
                    int keep);

#endif
