/*
** cgroup.c -- the sandbox's cgroups (layout described in cgroup.h).
**
** One code path serves both host kinds. A "hierarchy" is a mount we use:
** on a v1/hybrid host each v1 controller we need (memory, pids, cpu, and
** freezer as a kill fallback) plus the v2 core tree for cgroup.kill; on a
** pure v2 host the single unified tree does everything. A controller that
** a hybrid host has moved to its v2 tree is used there with v2 files.
*/
#include "cgroup.h"
#include "sandbox_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/vfs.h>
#include <unistd.h>

#define CG_ROOT "/sys/fs/cgroup"

/* How long to wait for a killed cgroup to empty, and for rmdir to stop
** returning EBUSY (dying tasks linger for a few milliseconds). */
#define CG_EMPTY_WAIT_MS 30000
#define CG_RMDIR_WAIT_MS 5000

static int is_fs(const char *path, long magic) {
  struct statfs sf;
  return statfs(path, &sf) == 0 && (long)sf.f_type == magic;
}

static int file_exists(const char *dir, const char *name) {
  char *p = sbxu_join(dir, name);
  int ok = p && access(p, F_OK) == 0;
  free(p);
  return ok;
}

/* (sbxu_join fails only when malloc does, which sets errno ENOMEM) */
static int write_in(const char *dir, const char *name, const char *value) {
  char *p = sbxu_join(dir, name);
  int rc, saved;
  if (p == NULL)
    return -1;
  rc = sbxu_write_file(p, value);
  saved = errno;
  free(p);
  errno = saved;
  return rc;
}

static long read_in(const char *dir, const char *name, char *buf,
                    size_t size) {
  char *p = sbxu_join(dir, name);
  long rc;
  int saved;
  if (p == NULL)
    return -1;
  rc = sbxu_read_file(p, buf, size);
  saved = errno;
  free(p);
  errno = saved;
  return rc;
}

/* 1 when the space-separated list has word w. */
static int has_word(const char *list, const char *w) {
  size_t n = strlen(w);
  const char *p = list;
  while ((p = strstr(p, w)) != NULL) {
    if ((p == list || p[-1] == ' ' || p[-1] == ',') &&
        (p[n] == '\0' || p[n] == ' ' || p[n] == '\n' || p[n] == ','))
      return 1;
    p += n;
  }
  return 0;
}

/* The server's own cgroup path for a v1 controller, or for the v2 tree when
** ctrl is "". Returns a malloc'd path or NULL. */
static char *self_cgroup(const char *text, const char *ctrl) {
  const char *line = text;
  while (line && *line) {
    const char *c1 = strchr(line, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    const char *end = strchr(line, '\n');
    if (end == NULL)
      end = line + strlen(line);
    if (c1 && c2 && c2 < end) {
      size_t clen = (size_t)(c2 - c1 - 1);
      char ctrls[128];
      if (clen < sizeof ctrls) {
        memcpy(ctrls, c1 + 1, clen);
        ctrls[clen] = '\0';
        if ((ctrl[0] == '\0' && clen == 0 && strncmp(line, "0:", 2) == 0) ||
            (ctrl[0] != '\0' && has_word(ctrls, ctrl))) {
          size_t plen = (size_t)(end - c2 - 1);
          char *p = malloc(plen + 1);
          if (p) {
            memcpy(p, c2 + 1, plen);
            p[plen] = '\0';
          }
          return p;
        }
      }
    }
    line = *end ? end + 1 : NULL;
  }
  return NULL;
}

/* Creates <mount><self>/<name>; returns the malloc'd path or NULL with a
** reason in why. */
static char *make_parent(const char *mount, const char *self,
                         const char *name, char *why, size_t whysz) {
  char *base = sbxu_join(mount, self), *dir;
  if (base == NULL)
    return NULL;
  dir = sbxu_join(base, name);
  free(base);
  if (dir == NULL)
    return NULL;
  if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
    snprintf(why, whysz, "cannot create %s: %s", dir, strerror(errno));
    free(dir);
    return NULL;
  }
  return dir;
}

static struct cg_hier *add_hier(struct cg_runtime *cg, char *parent,
                                unsigned what, int percmd) {
  struct cg_hier *h = &cg->h[cg->n++];
  h->parent = parent;
  h->what = what;
  h->percmd = percmd;
  return h;
}

/* On a v2 tree, moves the server into a leaf so that its own cgroup may
** delegate controllers (the "no internal processes" rule). Done only when
** the server is alone in its cgroup; anything else is not ours to move. */
static int v2_vacate_self(const char *selfdir, const char *name) {
  char buf[256], *leaf, pid[32];
  long n = read_in(selfdir, "cgroup.procs", buf, sizeof buf);
  int rc = -1;
  snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (n <= 0 || strcmp(buf, pid) != 0)
    return -1;
  leaf = sbxu_fmt("%s/%s-server", selfdir, name);
  if (leaf == NULL)
    return -1;
  if ((mkdir(leaf, 0755) == 0 || errno == EEXIST) &&
      write_in(leaf, "cgroup.procs", "0") == 0)
    rc = 0;
  free(leaf);
  return rc;
}

/* Sets up the v2 tree at mount: cgroup.kill / cgroup.freeze, plus any of
** memory, pids, cpu in `want` that it offers (delegated down to the boxes
** through cgroup.subtree_control). Returns the CG_W_* bits it took. */
static unsigned setup_v2(struct cg_runtime *cg, const char *mount,
                         const char *self, const char *name,
                         unsigned want, unsigned flags) {
  static const struct { unsigned bit; const char *ctrl; } ctrls[] = {
    { CG_W_MEM, "memory" }, { CG_W_PIDS, "pids" }, { CG_W_CPU, "cpu" },
  };
  char avail[512], enable[64] = "", why[160] = "";
  char *selfdir = sbxu_join(mount, self), *parent = NULL;
  unsigned got = CG_W_V2;
  size_t i;

  if (selfdir == NULL)
    return 0;
  if (read_in(selfdir, "cgroup.controllers", avail, sizeof avail) < 0)
    avail[0] = '\0';
  for (i = 0; i < sizeof ctrls / sizeof ctrls[0]; i++) {
    if ((want & ctrls[i].bit) && has_word(avail, ctrls[i].ctrl)) {
      size_t l = strlen(enable);
      snprintf(enable + l, sizeof enable - l, "%s+%s", l ? " " : "",
               ctrls[i].ctrl);
      got |= ctrls[i].bit;
    }
  }
  parent = make_parent(mount, self, name, why, sizeof why);
  if (parent == NULL) {
    snprintf(cg->why_kill, sizeof cg->why_kill, "%s",
             why[0] ? why : "out of memory");
    free(selfdir);
    return 0;
  }
  if (enable[0] && write_in(selfdir, "cgroup.subtree_control", enable) < 0 &&
      !(errno == EBUSY && v2_vacate_self(selfdir, name) == 0 &&
        write_in(selfdir, "cgroup.subtree_control", enable) == 0)) {
    snprintf(why, sizeof why, "cannot delegate controllers from %s: %s",
             selfdir, strerror(errno));
    got &= ~(unsigned)(CG_W_MEM | CG_W_PIDS | CG_W_CPU);
  }
  if (enable[0] && (got & (CG_W_MEM | CG_W_PIDS | CG_W_CPU)) &&
      write_in(parent, "cgroup.subtree_control", enable) < 0) {
    snprintf(why, sizeof why, "cannot delegate controllers in %s: %s",
             parent, strerror(errno));
    got &= ~(unsigned)(CG_W_MEM | CG_W_PIDS | CG_W_CPU);
  }
  if (why[0]) {
    if (want & CG_W_MEM)
      snprintf(cg->why_mem, sizeof cg->why_mem, "%s", why);
    if (want & CG_W_PIDS)
      snprintf(cg->why_pids, sizeof cg->why_pids, "%s", why);
    if (want & CG_W_CPU)
      snprintf(cg->why_cpu, sizeof cg->why_cpu, "%s", why);
  }
  if (!(flags & CG_INIT_NO_KILL) && file_exists(parent, "cgroup.kill"))
    got |= CG_W_KILL;
  else if (!(flags & CG_INIT_NO_V2_FREEZE) &&
           file_exists(parent, "cgroup.freeze"))
    got |= CG_W_FREEZE;
  if (!(got & CG_W_KILL))
    snprintf(cg->why_kill, sizeof cg->why_kill,
             "no cgroup.kill (kernel before 5.14)%s",
             (got & CG_W_FREEZE) ? "; using cgroup.freeze + SIGKILL" : "");
  add_hier(cg, parent, got, 1);
  free(selfdir);
  return got;
}

/* A v1 controller at CG_ROOT/<ctrl>; returns 1 when it was set up. */
static int setup_v1(struct cg_runtime *cg, const char *text, const char *ctrl,
                    const char *name, unsigned what, int percmd, char *why,
                    size_t whysz) {
  char *mount = sbxu_join(CG_ROOT, ctrl), *self = NULL, *parent = NULL;
  int ok = 0;
  if (mount == NULL)
    return 0;
  if (!is_fs(mount, CGROUP_SUPER_MAGIC)) {
    snprintf(why, whysz, "no v1 %s hierarchy at %s", ctrl, mount);
    goto out;
  }
  self = self_cgroup(text, ctrl);
  if (self == NULL) {
    snprintf(why, whysz, "/proc/self/cgroup has no %s line", ctrl);
    goto out;
  }
  parent = make_parent(mount, self, name, why, whysz);
  if (parent == NULL)
    goto out;
  add_hier(cg, parent, what, percmd);
  ok = 1;
out:
  free(mount);
  free(self);
  return ok;
}

void cg_runtime_init(struct cg_runtime *cg, const char *name) {
  cg_runtime_init_ex(cg, name, 0);
}

/* Why each facility that nothing took is off, unless a reason was given. */
static void default_whys(struct cg_runtime *cg) {
  if (!cg_has(cg, CG_W_MEM) && !cg->why_mem[0])
    snprintf(cg->why_mem, sizeof cg->why_mem, "memory controller not "
             "available");
  if (!cg_has(cg, CG_W_PIDS) && !cg->why_pids[0])
    snprintf(cg->why_pids, sizeof cg->why_pids, "pids controller not "
             "available");
  if (!cg_has(cg, CG_W_CPU) && !cg->why_cpu[0])
    snprintf(cg->why_cpu, sizeof cg->why_cpu, "cpu controller not "
             "available");
}

void cg_runtime_init_v2(struct cg_runtime *cg, const char *name,
                        unsigned flags, const char *mount, const char *self) {
  memset(cg, 0, sizeof *cg);
  cg->mode = 2;
  snprintf(cg->layout, sizeof cg->layout, "v2 (unified) at %s", mount);
  setup_v2(cg, mount, self, name, CG_W_MEM | CG_W_PIDS | CG_W_CPU, flags);
  default_whys(cg);
}

void cg_runtime_init_ex(struct cg_runtime *cg, const char *name,
                        unsigned flags) {
  char text[8192];
  char *uself = NULL;
  unsigned want_v2 = 0;

  memset(cg, 0, sizeof *cg);
  if (sbxu_read_file("/proc/self/cgroup", text, sizeof text) < 0) {
    snprintf(cg->why_mem, sizeof cg->why_mem, "cannot read "
             "/proc/self/cgroup: %s", strerror(errno));
    memcpy(cg->why_pids, cg->why_mem, sizeof cg->why_pids);
    memcpy(cg->why_cpu, cg->why_mem, sizeof cg->why_cpu);
    memcpy(cg->why_kill, cg->why_mem, sizeof cg->why_kill);
    snprintf(cg->layout, sizeof cg->layout, "none");
    return;
  }
  uself = self_cgroup(text, "");
  if (is_fs(CG_ROOT, CGROUP2_SUPER_MAGIC) && uself) {
    cg_runtime_init_v2(cg, name, flags, CG_ROOT, uself);
    free(uself);
    return;
  }
  if (is_fs(CG_ROOT, CGROUP2_SUPER_MAGIC)) {
    cg->mode = 2;
    snprintf(cg->layout, sizeof cg->layout, "v2 (unified) at %s", CG_ROOT);
    snprintf(cg->why_kill, sizeof cg->why_kill, "no 0:: line in "
             "/proc/self/cgroup");
  } else if (is_fs(CG_ROOT, TMPFS_MAGIC) || is_fs(CG_ROOT "/memory",
                                                 CGROUP_SUPER_MAGIC)) {
    const char *umount = CG_ROOT "/unified";
    cg->mode = 1;
    if (!setup_v1(cg, text, "memory", name, CG_W_MEM, 1, cg->why_mem,
                  sizeof cg->why_mem))
      want_v2 |= CG_W_MEM;
    else
      cg->has_memsw = file_exists(cg->h[cg->n - 1].parent,
                                  "memory.memsw.limit_in_bytes");
    if (!setup_v1(cg, text, "pids", name, CG_W_PIDS, 0, cg->why_pids,
                  sizeof cg->why_pids))
      want_v2 |= CG_W_PIDS;
    if (!setup_v1(cg, text, "cpu", name, CG_W_CPU, 0, cg->why_cpu,
                  sizeof cg->why_cpu))
      want_v2 |= CG_W_CPU;
    if (is_fs(umount, CGROUP2_SUPER_MAGIC) && uself) {
      unsigned got;
      snprintf(cg->layout, sizeof cg->layout,
               "v1 (hybrid; v2 core at %s)", umount);
      got = setup_v2(cg, umount, uself, name, want_v2, flags);
      if (got & CG_W_MEM)
        cg->why_mem[0] = '\0';
      if (got & CG_W_PIDS)
        cg->why_pids[0] = '\0';
      if (got & CG_W_CPU)
        cg->why_cpu[0] = '\0';
    } else {
      snprintf(cg->layout, sizeof cg->layout, "v1 (no v2 tree)");
      snprintf(cg->why_kill, sizeof cg->why_kill, "no cgroup v2 tree for "
               "cgroup.kill");
    }
    if (!cg_has(cg, CG_W_KILL | CG_W_FREEZE)) {
      char fwhy[160];
      if (setup_v1(cg, text, "freezer", name, CG_W_FREEZE, 1, fwhy,
                   sizeof fwhy)) {
        size_t l = strlen(cg->why_kill);
        snprintf(cg->why_kill + l, sizeof cg->why_kill - l,
                 "; using the v1 freezer + SIGKILL");
      }
    }
  } else {
    snprintf(cg->layout, sizeof cg->layout, "none");
    snprintf(cg->why_kill, sizeof cg->why_kill, "no cgroup filesystem "
             "at %s", CG_ROOT);
  }
  default_whys(cg);
  free(uself);
}

void cg_runtime_free(struct cg_runtime *cg) {
  for (int i = 0; i < cg->n; i++) {
    if (cg->h[i].parent) {
      rmdir(cg->h[i].parent);      /* fails while boxes exist: fine */
      free(cg->h[i].parent);
      cg->h[i].parent = NULL;
    }
  }
  cg->n = 0;
}

int cg_has(const struct cg_runtime *cg, unsigned what) {
  for (int i = 0; i < cg->n; i++)
    if (cg->h[i].what & what)
      return 1;
  return 0;
}

/* ---- populated / kill / remove, for one directory ---- */

static int dir_populated(const char *dir, int v2) {
  char buf[64];
  unsigned long long v;
  if (v2) {
    char ev[256];
    if (read_in(dir, "cgroup.events", ev, sizeof ev) < 0)
      return errno == ENOENT ? 0 : 1;
    return sbxu_find_counter(ev, "populated", &v) == 0 ? v != 0 : 1;
  }
  if (read_in(dir, "cgroup.procs", buf, sizeof buf) < 0)
    return errno == ENOENT ? 0 : 1;
  return buf[0] != '\0';
}

/* SIGKILLs every pid listed in dir/cgroup.procs; returns how many. */
static int kill_listed(const char *dir) {
  char *p = sbxu_join(dir, "cgroup.procs"), line[32];
  FILE *f;
  int n = 0;
  if (p == NULL)
    return 0;
  f = fopen(p, "re");
  free(p);
  if (f == NULL)
    return 0;
  while (fgets(line, sizeof line, f)) {
    char *end;
    long pid = strtol(line, &end, 10);
    if (end != line && pid > 0 && kill((pid_t)pid, SIGKILL) == 0)
      n++;
  }
  fclose(f);
  return n;
}

/* Calls fn on each child cgroup of dir (one level: boxes hold commands,
** commands hold nothing we create). */
static void each_child(const char *dir, void (*fn)(const char *, void *),
                       void *arg) {
  DIR *d = opendir(dir);
  struct dirent *e;
  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL) {
    char *sub;
    if (e->d_type != DT_DIR || e->d_name[0] == '.')
      continue;
    sub = sbxu_join(dir, e->d_name);
    if (sub) {
      fn(sub, arg);
      free(sub);
    }
  }
  closedir(d);
}

/* Calls fn on dir and on each of its child cgroups. */
static void each_cgroup(const char *dir, void (*fn)(const char *, void *),
                        void *arg) {
  fn(dir, arg);
  each_child(dir, fn, arg);
}

static void kill_listed_cb(const char *dir, void *arg) {
  (void)arg;
  kill_listed(dir);
}

/* Fallback kill without cgroup.kill: freeze so nothing can fork while we
** read the pid lists, SIGKILL everyone, thaw so the signals are delivered
** (docs/sandbox.md §3.2). Freezing is hierarchical in v1 and v2. */
static void freeze_kill(const char *dir, int v2) {
  const char *file = v2 ? "cgroup.freeze" : "freezer.state";
  char buf[64];
  long long deadline;
  if (write_in(dir, file, v2 ? "1" : "FROZEN") < 0)
    return;
  deadline = sbxu_now_ns() + 2000000000LL;
  while (sbxu_now_ns() < deadline) {
    unsigned long long frozen = 0;
    if (v2) {
      char ev[256];
      if (read_in(dir, "cgroup.events", ev, sizeof ev) < 0 ||
          (sbxu_find_counter(ev, "frozen", &frozen) == 0 && frozen))
        break;
    } else if (read_in(dir, file, buf, sizeof buf) < 0 ||
               strncmp(buf, "FROZEN", 6) == 0) {
      break;
    }
    sbxu_sleep_ms(1);
  }
  each_cgroup(dir, kill_listed_cb, NULL);
  write_in(dir, file, v2 ? "0" : "THAWED");
}

static void kill_dir(const struct cg_hier *h, const char *dir) {
  if (h->what & CG_W_KILL)
    write_in(dir, "cgroup.kill", "1");
  else if (h->what & CG_W_FREEZE)
    freeze_kill(dir, (h->what & CG_W_V2) != 0);
}

/* Waits until dir (and, recursively for v1, its children) is empty. */
struct wait_arg { int v2; int busy; };

static void populated_cb(const char *dir, void *arg) {
  struct wait_arg *w = arg;
  if (dir_populated(dir, w->v2))
    w->busy = 1;
}

static int wait_empty(const char *dir, int v2, long ms) {
  long long deadline = sbxu_now_ns() + ms * 1000000LL;
  long nap = 1;
  for (;;) {
    struct wait_arg w = { v2, 0 };
    if (v2)
      w.busy = dir_populated(dir, 1);     /* v2 "populated" is recursive */
    else
      each_cgroup(dir, populated_cb, &w);
    if (!w.busy)
      return 0;
    if (sbxu_now_ns() >= deadline)
      return -1;
    sbxu_sleep_ms(nap);
    if (nap < 20)
      nap *= 2;
  }
}

static int rmdir_retry(const char *dir, long ms) {
  long long deadline = sbxu_now_ns() + ms * 1000000LL;
  long nap = 1;
  while (rmdir(dir) < 0) {
    if (errno == ENOENT)
      return 0;
    if (errno != EBUSY || sbxu_now_ns() >= deadline)
      return -1;
    sbxu_sleep_ms(nap);
    if (nap < 20)
      nap *= 2;
  }
  return 0;
}

static void remove_children(const struct cg_hier *h, const char *boxdir);

/* Kills and removes one stale child cgroup (left by a killed server), and
** the cgroups below it (a live sandbox's per-command ones). */
static void remove_stale(const struct cg_hier *h, const char *dir) {
  int v2 = (h->what & CG_W_V2) != 0;
  if (dir_populated(dir, v2)) {
    kill_dir(h, dir);
    if (!(h->what & (CG_W_KILL | CG_W_FREEZE)))
      kill_listed(dir);
    wait_empty(dir, v2, CG_EMPTY_WAIT_MS);
  }
  remove_children(h, dir);
  rmdir_retry(dir, CG_RMDIR_WAIT_MS);
}

static void remove_stale_cb(const char *dir, void *h) {
  remove_stale(h, dir);
}

static void remove_children(const struct cg_hier *h, const char *boxdir) {
  each_child(boxdir, remove_stale_cb, (void *)h);
}

/* ---- limits ---- */

static int set_limits(const struct cg_hier *h, const char *dir,
                      unsigned long long mem, unsigned pids,
                      unsigned cpu_millis, int has_memsw, char *what,
                      size_t whatsz) {
  char v[64];
  int v2 = (h->what & CG_W_V2) != 0;

  if (h->what & CG_W_MEM) {
    if (v2) {
      snprintf(v, sizeof v, mem ? "%llu" : "max", mem);
      snprintf(what, whatsz, "memory.max");
      if (write_in(dir, "memory.max", v) < 0)
        return -1;
      snprintf(what, whatsz, "memory.swap.max");
      if (file_exists(dir, "memory.swap.max") &&
          write_in(dir, "memory.swap.max", "0") < 0)
        return -1;
      /* Commands get memory.events and memory.oom.group of their own. */
      snprintf(what, whatsz, "cgroup.subtree_control");
      if (write_in(dir, "cgroup.subtree_control", "+memory") < 0)
        return -1;
    } else {
      snprintf(v, sizeof v, mem ? "%llu" : "-1", mem);
      snprintf(what, whatsz, "memory.limit_in_bytes");
      /* memsw must stay >= the limit: order the writes accordingly. */
      if (write_in(dir, "memory.limit_in_bytes", v) < 0) {
        if (errno != EINVAL || !has_memsw ||
            write_in(dir, "memory.memsw.limit_in_bytes", v) < 0 ||
            write_in(dir, "memory.limit_in_bytes", v) < 0)
          return -1;
      }
      snprintf(what, whatsz, "memory.memsw.limit_in_bytes");
      if (has_memsw && write_in(dir, "memory.memsw.limit_in_bytes", v) < 0)
        return -1;
    }
  }
  if (h->what & CG_W_PIDS) {
    snprintf(v, sizeof v, pids ? "%u" : "max", pids);
    snprintf(what, whatsz, "pids.max");
    if (write_in(dir, "pids.max", v) < 0)
      return -1;
  }
  if (h->what & CG_W_CPU) {
    /* Period 100 ms; the kernel's minimum quota is 1 ms. */
    unsigned long long quota = (unsigned long long)cpu_millis * 100;
    if (cpu_millis && quota < 1000)
      quota = 1000;
    if (v2) {
      if (cpu_millis)
        snprintf(v, sizeof v, "%llu 100000", quota);
      else
        snprintf(v, sizeof v, "max 100000");
      snprintf(what, whatsz, "cpu.max");
      if (write_in(dir, "cpu.max", v) < 0)
        return -1;
    } else {
      snprintf(what, whatsz, "cpu.cfs_period_us");
      if (write_in(dir, "cpu.cfs_period_us", "100000") < 0)
        return -1;
      snprintf(v, sizeof v, cpu_millis ? "%llu" : "-1", quota);
      snprintf(what, whatsz, "cpu.cfs_quota_us");
      if (write_in(dir, "cpu.cfs_quota_us", v) < 0)
        return -1;
    }
  }
  return 0;
}

/* ---- boxes ---- */

enum ac_code cg_box_open(const struct cg_runtime *cg, const char *name,
                         unsigned long long memory_bytes, unsigned pids,
                         unsigned cpu_millis, struct cg_box *box,
                         struct ac_error *err) {
  enum ac_code rc = AC_OK;
  char what[64];
  memset(box, 0, sizeof *box);
  box->n = cg->n;
  for (int i = 0; i < cg->n; i++) {
    const struct cg_hier *h = &cg->h[i];
    char *dir = sbxu_join(h->parent, name);
    if (dir == NULL) {
      rc = ac_error_set(err, AC_ENOMEM, "cgroup: out of memory");
      goto out;
    }
    box->dir[i] = dir;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
      rc = ac_error_errno(err, AC_ESYSTEM, errno, "cgroup: mkdir %s", dir);
      goto out;
    }
    if (h->percmd)
      remove_children(h, dir);
    if (set_limits(h, dir, memory_bytes, pids, cpu_millis, cg->has_memsw,
                   what, sizeof what) < 0) {
      rc = ac_error_errno(err, AC_ESYSTEM, errno, "cgroup: %s/%s", dir,
                          what);
      goto out;
    }
  }
out:
  if (rc)
    cg_box_remove(cg, box);
  return rc;
}

void cg_box_kill(const struct cg_runtime *cg, const struct cg_box *box) {
  int killed = 0;
  for (int i = 0; i < box->n && i < cg->n; i++) {
    if (box->dir[i] && (cg->h[i].what & (CG_W_KILL | CG_W_FREEZE))) {
      kill_dir(&cg->h[i], box->dir[i]);
      killed = 1;
      break;
    }
  }
  if (!killed) {
    /* Only pids/cpu/memory v1 hierarchies: plain SIGKILL of the lists. */
    for (int i = 0; i < box->n && i < cg->n; i++)
      if (box->dir[i])
        each_cgroup(box->dir[i], kill_listed_cb, NULL);
  }
}

void cg_box_remove(const struct cg_runtime *cg, struct cg_box *box) {
  cg_box_kill(cg, box);
  for (int i = 0; i < box->n && i < cg->n; i++) {
    if (box->dir[i] == NULL)
      continue;
    wait_empty(box->dir[i], (cg->h[i].what & CG_W_V2) != 0,
               CG_EMPTY_WAIT_MS);
    remove_children(&cg->h[i], box->dir[i]);
    rmdir_retry(box->dir[i], CG_RMDIR_WAIT_MS);
  }
  cg_box_free(box);
}

void cg_box_purge(const struct cg_runtime *cg, const char *name) {
  struct cg_box box;
  memset(&box, 0, sizeof box);
  box.n = cg->n;
  for (int i = 0; i < cg->n; i++) {
    char *dir = sbxu_join(cg->h[i].parent, name);
    if (dir && access(dir, F_OK) == 0)
      box.dir[i] = dir;
    else
      free(dir);
  }
  cg_box_remove(cg, &box);
}

void cg_box_free(struct cg_box *box) {
  for (int i = 0; i < CG_MAX_HIER; i++) {
    free(box->dir[i]);
    box->dir[i] = NULL;
  }
  box->n = 0;
}

/* ---- commands ---- */

/* v1 OOM notifications: an eventfd registered on memory.oom_control
** through cgroup.event_control. It fires when the memory cgroup (or its
** parent box) is under OOM; the caller then reads the oom_kill counter. */
static int v1_oom_eventfd(const char *dir) {
  char *ctl = sbxu_join(dir, "memory.oom_control"), line[64];
  int efd = -1, ofd = -1;
  if (ctl == NULL)
    return -1;
  ofd = open(ctl, O_RDONLY | O_CLOEXEC);
  free(ctl);
  if (ofd < 0)
    return -1;
  efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd >= 0) {
    snprintf(line, sizeof line, "%d %d", efd, ofd);
    if (write_in(dir, "cgroup.event_control", line) < 0) {
      close(efd);
      efd = -1;
    }
  }
  close(ofd);
  return efd;
}

enum ac_code cg_cmd_create(const struct cg_runtime *cg,
                           const struct cg_box *box, const char *name,
                           struct cg_cmd *cmd, struct ac_error *err) {
  enum ac_code rc = AC_OK;
  memset(cmd, 0, sizeof *cmd);
  cmd->oom_efd = -1;
  cmd->n = box->n;
  for (int i = 0; i < CG_MAX_HIER; i++)
    cmd->join[i] = -1;
  for (int i = 0; i < box->n && i < cg->n; i++) {
    const struct cg_hier *h = &cg->h[i];
    const char *target = box->dir[i];
    char *procs;
    if (h->percmd) {
      cmd->dir[i] = sbxu_join(box->dir[i], name);
      if (cmd->dir[i] == NULL) {
        rc = ac_error_set(err, AC_ENOMEM, "cgroup: out of memory");
        goto out;
      }
      if (mkdir(cmd->dir[i], 0755) < 0) {
        if (errno != EEXIST) {
          rc = ac_error_errno(err, AC_ESYSTEM, errno, "cgroup: mkdir %s",
                              cmd->dir[i]);
          goto out;
        }
        remove_stale(h, cmd->dir[i]);
        if (mkdir(cmd->dir[i], 0755) < 0) {
          rc = ac_error_errno(err, AC_ESYSTEM, errno, "cgroup: mkdir %s",
                              cmd->dir[i]);
          goto out;
        }
      }
      target = cmd->dir[i];
      if ((h->what & CG_W_MEM) && (h->what & CG_W_V2))
        write_in(target, "memory.oom.group", "1");
      if ((h->what & CG_W_MEM) && !(h->what & CG_W_V2))
        cmd->oom_efd = v1_oom_eventfd(target);
    }
    procs = sbxu_join(target, "cgroup.procs");
    if (procs == NULL) {
      rc = ac_error_set(err, AC_ENOMEM, "cgroup: out of memory");
      goto out;
    }
    cmd->join[cmd->njoin] = open(procs, O_WRONLY | O_CLOEXEC);
    if (cmd->join[cmd->njoin] < 0) {
      rc = ac_error_errno(err, AC_ESYSTEM, errno, "cgroup: open %s", procs);
      free(procs);
      goto out;
    }
    cmd->njoin++;
    free(procs);
  }
out:
  if (rc)
    cg_cmd_destroy(cg, cmd);
  return rc;
}

void cg_cmd_kill(const struct cg_runtime *cg, const struct cg_cmd *cmd) {
  for (int i = 0; i < cmd->n && i < cg->n; i++) {
    if (cmd->dir[i] && (cg->h[i].what & (CG_W_KILL | CG_W_FREEZE))) {
      kill_dir(&cg->h[i], cmd->dir[i]);
      return;
    }
  }
  for (int i = 0; i < cmd->n && i < cg->n; i++)
    if (cmd->dir[i])
      kill_listed(cmd->dir[i]);
}

unsigned long long cg_cmd_oom_kills(const struct cg_runtime *cg,
                                    const struct cg_cmd *cmd) {
  char buf[512];
  unsigned long long v = 0;
  for (int i = 0; i < cmd->n && i < cg->n; i++) {
    const struct cg_hier *h = &cg->h[i];
    if (!(h->what & CG_W_MEM) || cmd->dir[i] == NULL)
      continue;
    if (read_in(cmd->dir[i], (h->what & CG_W_V2) ? "memory.events"
                : "memory.oom_control", buf, sizeof buf) < 0)
      return 0;
    if (sbxu_find_counter(buf, "oom_kill", &v) < 0)
      v = 0;
    return v;
  }
  return 0;
}

int cg_cmd_populated(const struct cg_runtime *cg, const struct cg_cmd *cmd) {
  for (int i = 0; i < cmd->n && i < cg->n; i++)
    if (cmd->dir[i] &&
        dir_populated(cmd->dir[i], (cg->h[i].what & CG_W_V2) != 0))
      return 1;
  return 0;
}

void cg_cmd_destroy(const struct cg_runtime *cg, struct cg_cmd *cmd) {
  if (cg_cmd_populated(cg, cmd))
    cg_cmd_kill(cg, cmd);
  for (int i = 0; i < cmd->njoin; i++)
    if (cmd->join[i] >= 0)
      close(cmd->join[i]);
  cmd->njoin = 0;
  if (cmd->oom_efd >= 0)
    close(cmd->oom_efd);
  cmd->oom_efd = -1;
  for (int i = 0; i < cmd->n && i < cg->n; i++) {
    if (cmd->dir[i] == NULL)
      continue;
    wait_empty(cmd->dir[i], (cg->h[i].what & CG_W_V2) != 0,
               CG_EMPTY_WAIT_MS);
    remove_children(&cg->h[i], cmd->dir[i]);
    rmdir_retry(cmd->dir[i], CG_RMDIR_WAIT_MS);
  }
  for (int i = 0; i < CG_MAX_HIER; i++) {
    free(cmd->dir[i]);
    cmd->dir[i] = NULL;
  }
  cmd->n = 0;
}

/* ---- a live sandbox's per-command cgroups ---- */

int cg_cmd_kill_index(const struct cg_runtime *cg, const struct cg_cmd *cmd) {
  for (int i = 0; i < cmd->n && i < cg->n; i++)
    if (cmd->dir[i] && (cg->h[i].what & CG_W_KILL))
      return i;
  return -1;
}

int cg_cmd_delegate(const struct cg_runtime *cg, const struct cg_cmd *cmd,
                    int chown_to, unsigned uid, unsigned gid) {
  int i = cg_cmd_kill_index(cg, cmd), fd;
  char *procs;
  if (i < 0)
    return -1;
  if (chown_to) {
    procs = sbxu_join(cmd->dir[i], "cgroup.procs");
    if (procs == NULL || chown(cmd->dir[i], uid, gid) < 0 ||
        chown(procs, uid, gid) < 0) {
      free(procs);
      return -1;
    }
    free(procs);
  }
  fd = open(cmd->dir[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  return fd;
}

int cg_cmd_kill_child(const struct cg_runtime *cg, const struct cg_cmd *cmd,
                      const char *name) {
  int i = cg_cmd_kill_index(cg, cmd), rc;
  char *dir;
  if (i < 0)
    return -1;
  dir = sbxu_join(cmd->dir[i], name);
  if (dir == NULL)
    return -1;
  rc = write_in(dir, "cgroup.kill", "1");
  free(dir);
  return rc;
}

int cg_cmd_child_populated(const struct cg_runtime *cg,
                           const struct cg_cmd *cmd, const char *name) {
  int i = cg_cmd_kill_index(cg, cmd), rc;
  char *dir;
  if (i < 0)
    return 0;
  dir = sbxu_join(cmd->dir[i], name);
  if (dir == NULL)
    return 1;
  rc = dir_populated(dir, 1);
  free(dir);
  return rc;
}

int cg_cmd_remove_child(const struct cg_runtime *cg, const struct cg_cmd *cmd,
                        const char *name) {
  int i = cg_cmd_kill_index(cg, cmd), rc;
  char *dir;
  if (i < 0)
    return 0;
  dir = sbxu_join(cmd->dir[i], name);
  if (dir == NULL)
    return -1;
  rc = rmdir(dir) == 0 || errno == ENOENT ? 0 : -1;
  free(dir);
  return rc;
}
