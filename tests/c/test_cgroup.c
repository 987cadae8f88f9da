/*
** test_cgroup.c -- the sandbox's cgroups on their own: the limits a box
** writes into the controllers' files, removal with processes still
** running (a box, a command left by a killed server, a live sandbox's
** per-command child), and what the runtime says when controllers or the
** whole cgroup filesystem are missing, when /proc/self/cgroup lacks a
** line or names a cgroup that is not there, and when a limit file or a
** command's cgroup cannot be written or made.
**
** Root only. The real hierarchies of this host are used where they exist;
** the other layouts are made in a private mount namespace (cgroup2, a
** bare tmpfs or a ramfs mounted over /sys/fs/cgroup, the v1 memory
** hierarchy alone, no /proc or a /proc/self/cgroup of our own), and the
** limit files of each cgroup version are checked on a directory laid out
** like a box of it (a v1 host offers no v2 files, and a cgroupfs file
** cannot be removed to see the box fail).
*/
#include "cgroup.h"
#include "tap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char name[64];            /* the runtime parent's name */

/* {====================================================== helpers */

static const char *read_text(const char *dir, const char *file) {
  static char buf[4][256];
  static int i;
  char *b = buf[i++ % 4], path[1024];
  ssize_t n;
  int fd;
  snprintf(path, sizeof path, "%s/%s", dir, file);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  n = fd >= 0 ? read(fd, b, sizeof buf[0] - 1) : -1;
  if (fd >= 0)
    close(fd);
  b[n > 0 ? n : 0] = '\0';
  b[strcspn(b, "\n")] = '\0';
  return b;
}

static int write_text(const char *path, const char *s) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int ok_ = fd >= 0 && write(fd, s, strlen(s)) == (ssize_t)strlen(s);
  if (fd >= 0)
    close(fd);
  return ok_ ? 0 : -1;
}

static int exists(const char *path) {
  return access(path, F_OK) == 0;
}

/* A `sleep` joined to the cgroup.procs fds (or the file at procs). */
static pid_t start_in(const int *join, int njoin, const char *procs) {
  pid_t pid = fork();
  if (pid == 0) {
    for (int i = 0; i < njoin; i++)
      if (write(join[i], "0", 1) != 1)
        _exit(2);
    if (procs) {
      int fd = open(procs, O_WRONLY | O_CLOEXEC);
      if (fd < 0 || write(fd, "0", 1) != 1)
        _exit(3);
    }
    execl("/bin/sleep", "sleep", "1000", (char *)NULL);
    _exit(4);
  }
  /* back once it has joined and exec'd (or died) */
  for (int i = 0; pid > 0 && i < 3000; i++) {
    char path[64], comm[32] = "";
    int fd;
    ssize_t n;
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    n = fd >= 0 ? read(fd, comm, sizeof comm - 1) : -1;
    if (fd >= 0)
      close(fd);
    if (n <= 0 || strcmp(comm, "sleep\n") == 0)
      break;
    usleep(10000);
  }
  return pid;
}

/* Waits for pid (up to 30 s); 1 when it died of SIGKILL. */
static int killed(pid_t pid) {
  for (int i = 0; i < 3000; i++) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL))
        printf("#   pid %d: status 0x%x\n", (int)pid, st);
      return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
    }
    if (r < 0) {
      printf("#   waitpid %d: %s\n", (int)pid, strerror(errno));
      return 0;
    }
    usleep(10000);
  }
  printf("#   pid %d still running after 30 s\n", (int)pid);
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return 0;
}

/* 1 when pid runs (not yet exited, not a zombie). */
static int running(pid_t pid) {
  char path[64], st[512];
  int fd;
  ssize_t n;
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  n = fd >= 0 ? read(fd, st, sizeof st - 1) : -1;
  if (fd >= 0)
    close(fd);
  if (n <= 0)
    return 0;
  st[n] = '\0';
  return strstr(st, ") Z ") == NULL;
}

/* The directories of the runtime's parents, kept to check removal. */
static void free_runtime(struct cg_runtime *cg) {
  cg_runtime_free(cg);
}

static int rm_cb(const char *p, const struct stat *st, int flag,
                 struct FTW *f) {
  (void)st;
  (void)f;
  if (flag == FTW_DP)
    rmdir(p);
  else
    unlink(p);
  return 0;
}

/* Lays out a directory like a box of a fake hierarchy: each of files[]
** empty, and cgroup.events (when listed) saying "populated 0", as the
** kernel's does for an empty cgroup (a removal waits for it otherwise). */
static int lay_out(const char *dir, const char *const *files, size_t n) {
  char p[700];
  for (size_t i = 0; i < n; i++) {
    snprintf(p, sizeof p, "%s/%s", dir, files[i]);
    if (write_text(p, strcmp(files[i], "cgroup.events") == 0
                   ? "populated 0\n" : "") != 0)
      return -1;
  }
  return 0;
}

/* }====================================================== */

/* Whatever a failed case left behind on this host. */
static void purge(void) {
  static const char *boxes[] = {
    "box-limits", "box-busy", "box-stale", "box-live", "box-v2", "box-none"
  };
  struct cg_runtime cg;
  cg_runtime_init(&cg, name);
  for (size_t i = 0; i < sizeof boxes / sizeof boxes[0]; i++)
    cg_box_purge(&cg, boxes[i]);
  cg_runtime_free(&cg);
}

/* {====================================================== this host */

static void limits_written(void) {
  struct cg_runtime cg;
  struct cg_box box;
  struct ac_error e = { 0 };
  int mem = 0, pids = 0, cpu = 0;

  tcase("a box's memory, pids and cpu limits land in the controllers");
  cg_runtime_init(&cg, name);
  REQUIRE(cg.n > 0, "cgroups on this host (%s)", cg.layout);
  REQUIRE(cg_box_open(&cg, "box-limits", 64ULL << 20, 50, 500, &box, &e) ==
          AC_OK, "box: %s", e.msg);
  for (int i = 0; i < cg.n; i++) {
    const char *d = box.dir[i];
    int v2 = (cg.h[i].what & CG_W_V2) != 0;
    if (cg.h[i].what & CG_W_MEM) {
      mem = 1;
      is_str(read_text(d, v2 ? "memory.max" : "memory.limit_in_bytes"),
             "67108864", "memory limit 64 MiB");
      if (!v2 && cg.has_memsw)
        is_str(read_text(d, "memory.memsw.limit_in_bytes"), "67108864",
               "memory+swap limit the same (no swap)");
    }
    if (cg.h[i].what & CG_W_PIDS) {
      pids = 1;
      is_str(read_text(d, "pids.max"), "50", "pids.max 50");
    }
    if (cg.h[i].what & CG_W_CPU) {
      cpu = 1;
      if (v2) {
        is_str(read_text(d, "cpu.max"), "50000 100000", "cpu.max: half");
      } else {
        is_str(read_text(d, "cpu.cfs_period_us"), "100000", "period");
        is_str(read_text(d, "cpu.cfs_quota_us"), "50000", "quota: half");
      }
    }
  }
  if (!mem)
    ok(cg.why_mem[0] != '\0', "no memory controller, and why: %s",
       cg.why_mem);
  if (!pids)
    ok(cg.why_pids[0] != '\0', "no pids controller, and why: %s",
       cg.why_pids);
  if (!cpu)
    ok(cg.why_cpu[0] != '\0', "no cpu controller, and why: %s", cg.why_cpu);
  /* the same box again without limits: "no limit" in each file */
  cg_box_free(&box);
  REQUIRE(cg_box_open(&cg, "box-limits", 0, 0, 0, &box, &e) == AC_OK,
          "reopened: %s", e.msg);
  for (int i = 0; i < cg.n; i++) {
    int v2 = (cg.h[i].what & CG_W_V2) != 0;
    if (cg.h[i].what & CG_W_PIDS)
      is_str(read_text(box.dir[i], "pids.max"), "max", "pids.max: max");
    if ((cg.h[i].what & CG_W_CPU) && !v2)
      is_str(read_text(box.dir[i], "cpu.cfs_quota_us"), "-1",
             "quota: none");
    if ((cg.h[i].what & CG_W_MEM) && !v2)
      ok(strtoull(read_text(box.dir[i], "memory.limit_in_bytes"), NULL,
                  10) > (1ULL << 40), "memory: unlimited");
  }
  cg_box_remove(&cg, &box);
  free_runtime(&cg);
}

static void box_removed_with_processes(void) {
  struct cg_runtime cg;
  struct cg_box box;
  struct cg_cmd cmd;
  struct ac_error e = { 0 };
  char dirs[CG_MAX_HIER][512];
  pid_t pid;
  int n, left = 0;

  tcase("removing a box kills what still runs in it, then removes it");
  cg_runtime_init(&cg, name);
  REQUIRE(cg.n > 0, "cgroups on this host");
  REQUIRE(cg_box_open(&cg, "box-busy", 0, 0, 0, &box, &e) == AC_OK &&
          cg_cmd_create(&cg, &box, "cmd-1", &cmd, &e) == AC_OK,
          "box and command: %s", e.msg);
  pid = start_in(cmd.join, cmd.njoin, NULL);
  for (int i = 0; i < 500 && !cg_cmd_populated(&cg, &cmd); i++)
    usleep(10000);
  ok(cg_cmd_populated(&cg, &cmd) && running(pid),
     "a process runs in the command's cgroup");
  n = box.n;
  for (int i = 0; i < n; i++)
    snprintf(dirs[i], sizeof dirs[i], "%s", box.dir[i] ? box.dir[i] : "");
  cg_box_remove(&cg, &box);
  ok(killed(pid), "it was SIGKILLed");
  for (int i = 0; i < n; i++)
    left += dirs[i][0] && exists(dirs[i]);
  is_int(left, 0, "the box's cgroups are gone");
  cg_cmd_destroy(&cg, &cmd);          /* closes the fds; dirs are gone */
  free_runtime(&cg);
}

/* A server killed with a command running leaves its cgroups behind; the
** next one meets them when it opens the box or creates the command. */
static void stale_commands(void) {
  struct cg_runtime cg;
  struct cg_box box;
  struct cg_cmd cmd, again;
  struct ac_error e = { 0 };
  char cmddir[512], procs[600];
  pid_t p1, p2;
  int pct = -1;

  tcase("a killed server's commands, processes and all, are cleared");
  cg_runtime_init(&cg, name);
  REQUIRE(cg.n > 0, "cgroups on this host");
  for (int i = 0; i < cg.n; i++)
    if (cg.h[i].percmd) {
      pct = i;
      break;
    }
  REQUIRE(pct >= 0, "a hierarchy with per-command cgroups");
  REQUIRE(cg_box_open(&cg, "box-stale", 0, 0, 0, &box, &e) == AC_OK &&
          cg_cmd_create(&cg, &box, "cmd-1", &cmd, &e) == AC_OK,
          "box and command: %s", e.msg);
  p1 = start_in(cmd.join, cmd.njoin, NULL);
  snprintf(cmddir, sizeof cmddir, "%s", cmd.dir[pct]);
  /* the server dies: its fds close, the cgroups stay */
  for (int i = 0; i < cmd.njoin; i++)
    close(cmd.join[i]);
  if (cmd.oom_efd >= 0)
    close(cmd.oom_efd);
  for (int i = 0; i < CG_MAX_HIER; i++)
    free(cmd.dir[i]);
  cg_box_free(&box);
  for (int i = 0; i < 500 && !running(p1); i++)
    usleep(10000);
  REQUIRE(running(p1) && exists(cmddir), "the command runs on, its "
          "cgroup stays");
  REQUIRE(cg_box_open(&cg, "box-stale", 0, 0, 0, &box, &e) == AC_OK,
          "the next server opens the box: %s", e.msg);
  ok(killed(p1), "the stale command's process was SIGKILLed");
  ok(!exists(cmddir), "its cgroup removed");

  /* a stale command cgroup of the same name as a new command */
  REQUIRE(mkdir(cmddir, 0755) == 0, "a stale cmd-1 again");
  snprintf(procs, sizeof procs, "%s/cgroup.procs", cmddir);
  p2 = start_in(NULL, 0, procs);
  for (int i = 0; i < 500 && !running(p2); i++)
    usleep(10000);
  REQUIRE(running(p2), "a process in it");
  is_int(cg_cmd_create(&cg, &box, "cmd-1", &again, &e), AC_OK,
         "the new command of that name is created");
  ok(killed(p2), "the stale process was SIGKILLed first");
  ok(!cg_cmd_populated(&cg, &again), "the new command's cgroup is empty");
  cg_cmd_destroy(&cg, &again);
  cg_box_remove(&cg, &box);
  free_runtime(&cg);
}

/* A live sandbox's init makes one child cgroup per command in the
** directory delegated to it. */
static void live_children(void) {
  struct cg_runtime cg;
  struct cg_box box;
  struct cg_cmd cmd;
  struct ac_error e = { 0 };
  struct stat st;
  char child[600], procs[700];
  int k, fd;
  pid_t pid;

  tcase("a live sandbox's per-command children: populated, killed, gone");
  cg_runtime_init(&cg, name);
  if (!cg_has(&cg, CG_W_KILL)) {
    ok(1, "no cgroup.kill: %s", cg.why_kill);
    skip_case("no cgroup.kill on this kernel");
    free_runtime(&cg);
    return;
  }
  REQUIRE(cg_box_open(&cg, "box-live", 0, 0, 0, &box, &e) == AC_OK &&
          cg_cmd_create(&cg, &box, "live", &cmd, &e) == AC_OK,
          "box and live cgroup: %s", e.msg);
  k = cg_cmd_kill_index(&cg, &cmd);
  REQUIRE(k >= 0, "the kill hierarchy");
  fd = cg_cmd_delegate(&cg, &cmd, 1, 200123, 200123);
  ok(fd >= 0, "delegated: a directory fd");
  ok(stat(cmd.dir[k], &st) == 0 && st.st_uid == 200123 &&
     st.st_gid == 200123, "the directory belongs to the sandbox's uid");
  REQUIRE(mkdirat(fd, "c1", 0755) == 0, "the init makes child c1");
  snprintf(child, sizeof child, "%s/c1", cmd.dir[k]);
  snprintf(procs, sizeof procs, "%s/cgroup.procs", child);
  pid = start_in(NULL, 0, procs);
  for (int i = 0; i < 500 && !cg_cmd_child_populated(&cg, &cmd, "c1"); i++)
    usleep(10000);
  ok(cg_cmd_child_populated(&cg, &cmd, "c1"), "c1 populated");
  is_int(cg_cmd_remove_child(&cg, &cmd, "c1"), -1,
         "c1 cannot be removed while it holds a process");
  is_int(cg_cmd_kill_child(&cg, &cmd, "c1"), 0, "c1 killed");
  ok(killed(pid), "its process got SIGKILL");
  for (int i = 0; i < 500 && cg_cmd_child_populated(&cg, &cmd, "c1"); i++)
    usleep(10000);
  ok(!cg_cmd_child_populated(&cg, &cmd, "c1"), "c1 empty");
  is_int(cg_cmd_remove_child(&cg, &cmd, "c1"), 0, "c1 removed");
  ok(!exists(child), "c1 is gone");
  is_int(cg_cmd_remove_child(&cg, &cmd, "c1"), 0, "removing it again: ok");
  is_int(cg_cmd_kill_child(&cg, &cmd, "nope"), -1, "no such child to kill");
  is_int(cg_cmd_child_populated(&cg, &cmd, "nope"), 0,
         "no such child: not populated");
  close(fd);
  cg_cmd_destroy(&cg, &cmd);
  cg_box_remove(&cg, &box);
  free_runtime(&cg);
}

/* }====================================================== */

/* {====================================================== other layouts */

/* cg_runtime_init with fstype mounted over /sys/fs/cgroup (NULL: as is)
** and, with no_proc, a /proc that holds nothing but, when text is not
** NULL, a self/cgroup saying text. */
static int init_text(struct cg_runtime *cg, const char *fstype, int no_proc,
                     const char *text) {
  char path[] = "/proc/self/cgroup";
  if (fstype && mount(fstype, "/sys/fs/cgroup", fstype, 0, NULL) != 0)
    return -1;
  if (no_proc && (mount("tmpfs", "/proc", "tmpfs", 0, "size=16k") != 0 ||
                  (text && (mkdir("/proc/self", 0755) != 0 ||
                            write_text(path, text) != 0)))) {
    umount2("/proc", MNT_DETACH);
    if (fstype)
      umount2("/sys/fs/cgroup", MNT_DETACH);
    return -1;
  }
  cg_runtime_init(cg, name);
  if (no_proc)
    umount2("/proc", MNT_DETACH);
  return 0;
}

static int init_over(struct cg_runtime *cg, const char *fstype,
                     int no_proc) {
  return init_text(cg, fstype, no_proc, NULL);
}

static void no_cgroup_fs(void) {
  struct cg_runtime cg;
  struct cg_box box;
  struct cg_cmd cmd;
  struct ac_error e = { 0 };

  tcase("a bare tmpfs or a ramfs at /sys/fs/cgroup: no controllers, why");
  REQUIRE(init_over(&cg, "tmpfs", 0) == 0, "a tmpfs over /sys/fs/cgroup");
  is_int(cg.n, 0, "no hierarchy used");
  is_str(cg.layout, "v1 (no v2 tree)", "layout");
  ok(strstr(cg.why_mem, "no v1 memory hierarchy at /sys/fs/cgroup/memory")
     != NULL, "memory: %s", cg.why_mem);
  ok(strstr(cg.why_pids, "no v1 pids hierarchy") != NULL, "pids: %s",
     cg.why_pids);
  ok(strstr(cg.why_kill, "no cgroup v2 tree for cgroup.kill") != NULL,
     "kill: %s", cg.why_kill);
  /* boxes and commands still work, with nothing to join */
  is_int(cg_box_open(&cg, "box-none", 1 << 20, 5, 100, &box, &e), AC_OK,
         "a box without cgroups");
  is_int(cg_cmd_create(&cg, &box, "cmd-1", &cmd, &e), AC_OK,
         "a command without cgroups");
  is_int(cmd.njoin, 0, "nothing to join");
  cg_cmd_destroy(&cg, &cmd);
  cg_box_remove(&cg, &box);
  free_runtime(&cg);
  umount2("/sys/fs/cgroup", MNT_DETACH);

  REQUIRE(init_over(&cg, "ramfs", 0) == 0, "a ramfs over /sys/fs/cgroup");
  is_str(cg.layout, "none", "layout: none");
  ok(strstr(cg.why_kill, "no cgroup filesystem at /sys/fs/cgroup") != NULL,
     "kill: %s", cg.why_kill);
  ok(strstr(cg.why_mem, "memory controller not available") != NULL,
     "memory: %s", cg.why_mem);
  free_runtime(&cg);
  umount2("/sys/fs/cgroup", MNT_DETACH);
}

static void no_proc(void) {
  struct cg_runtime cg;

  tcase("without /proc/self/cgroup: no cgroups, and why");
  REQUIRE(init_over(&cg, NULL, 1) == 0, "an empty /proc");
  is_int(cg.n, 0, "no hierarchy used");
  is_str(cg.layout, "none", "layout: none");
  ok(strstr(cg.why_mem, "cannot read /proc/self/cgroup") != NULL,
     "memory: %s", cg.why_mem);
  is_str(cg.why_kill, cg.why_mem, "the same reason for kill");
  free_runtime(&cg);
}

/* text without its line for ctrl (":ctrl:"), or with that line's path
** replaced by path; into out. */
static void edit_line(const char *text, const char *ctrl, const char *path,
                      char *out, size_t size) {
  size_t len = 0;
  out[0] = '\0';
  for (const char *l = text, *nl; *l; l = nl + 1) {
    const char *c = strchr(l, ':');
    nl = strchr(l, '\n');
    if (nl == NULL)
      nl = l + strlen(l) - 1;
    if (c && strncmp(c + 1, ctrl, strlen(ctrl)) == 0 &&
        c[1 + strlen(ctrl)] == ':') {
      if (path)
        len += (size_t)snprintf(out + len, size - len, "%.*s%s\n",
                                (int)(c + 2 + strlen(ctrl) - l), l, path);
    } else {
      len += (size_t)snprintf(out + len, size - len, "%.*s",
                              (int)(nl + 1 - l), l);
    }
    if (len >= size || nl[0] == '\0' || nl[1] == '\0')
      break;
  }
}

/* What a container or an odd init shows in /proc/self/cgroup: a
** controller without its line, a path the runtime cannot create its
** parent under, the last line without its newline; on a v2-only host no
** "0::" line, or one naming a cgroup that is not there. */
static void odd_self_cgroup(void) {
  struct cg_runtime cg, real;
  char text[4096], edited[4096], v2ctl[256];
  FILE *f = fopen("/proc/self/cgroup", "re");
  size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;

  if (f)
    fclose(f);
  text[n] = '\0';
  tcase("/proc/self/cgroup: a line missing, a cgroup that cannot be made");
  cg_runtime_init(&real, name);
  if (real.mode != 1 || !cg_has(&real, CG_W_MEM) || !strstr(text, ":pids:")
      || !strstr(text, ":memory:")) {
    ok(1, "this host's layout: %s", real.layout);
    skip_case("needs a v1 host with memory and pids hierarchies");
    free_runtime(&real);
    return;
  }
  snprintf(v2ctl, sizeof v2ctl, "%s",
           read_text("/sys/fs/cgroup/unified", "cgroup.controllers"));

  edit_line(text, "pids", NULL, edited, sizeof edited);
  REQUIRE(init_text(&cg, NULL, 1, edited) == 0, "no pids line");
  if (strstr(v2ctl, "pids") == NULL)
    is_str(cg.why_pids, "/proc/self/cgroup has no pids line",
           "no pids line: pids off, and why");
  else
    skip_check("no pids line: pids off", "the v2 tree offers pids");
  ok(cg_has(&cg, CG_W_MEM) && cg.why_mem[0] == '\0',
     "memory, whose line is there, is on");
  free_runtime(&cg);

  edit_line(text, "memory", "/agentcube-cgtest-none/deeper", edited,
            sizeof edited);
  REQUIRE(init_text(&cg, NULL, 1, edited) == 0, "a memory cgroup not there");
  if (strstr(v2ctl, "memory") == NULL) {
    char want[256];
    snprintf(want, sizeof want, "cannot create /sys/fs/cgroup/memory/"
             "agentcube-cgtest-none/deeper/%s: %s", name, strerror(ENOENT));
    ok(!cg_has(&cg, CG_W_MEM), "memory off");
    is_str(cg.why_mem, want, "and why");
  } else {
    skip_check("a memory cgroup not there: memory off",
               "the v2 tree offers memory");
  }
  free_runtime(&cg);

  /* the last line without its newline: read all the same */
  n = strlen(text);
  while (n > 0 && text[n - 1] == '\n')
    text[--n] = '\0';
  REQUIRE(init_text(&cg, NULL, 1, text) == 0, "no final newline");
  is_int(cg.n, real.n, "the same hierarchies as the real file");
  is_str(cg.layout, real.layout, "the same layout");
  free_runtime(&cg);
  free_runtime(&real);

  edit_line(text, "", NULL, edited, sizeof edited);
  REQUIRE(init_text(&cg, "cgroup2", 1, edited) == 0, "v2, no 0:: line");
  is_int(cg.n, 0, "v2 without a 0:: line: no hierarchy");
  is_str(cg.why_kill, "no 0:: line in /proc/self/cgroup", "and why");
  free_runtime(&cg);
  umount2("/sys/fs/cgroup", MNT_DETACH);

  REQUIRE(init_text(&cg, "cgroup2", 1,
                    "0::/agentcube-cgtest-none/deeper\n") == 0,
          "v2, a 0:: cgroup not there");
  {
    char want[256];
    snprintf(want, sizeof want, "cannot create /sys/fs/cgroup/"
             "agentcube-cgtest-none/deeper/%s: %s", name, strerror(ENOENT));
    is_int(cg.n, 0, "no hierarchy");
    is_str(cg.why_kill, want, "and why");
  }
  free_runtime(&cg);
  umount2("/sys/fs/cgroup", MNT_DETACH);
}

/* A v1 host with the memory controller alone: no v2 tree, no freezer.
** Limits and the OOM counter still work; commands are killed by
** signalling the processes their cgroups list. */
static void v1_memory_alone(void) {
  struct cg_runtime cg;
  struct cg_box box;
  struct cg_cmd cmd, other, third;
  struct ac_error e = { 0 };
  char boxdir[512];
  pid_t p1, p2, p3;

  tcase("v1 memory alone: limits, OOM counter, kill by listing");
  REQUIRE(mount("tmpfs", "/sys/fs/cgroup", "tmpfs", 0, "size=16k") == 0 &&
          mkdir("/sys/fs/cgroup/memory", 0755) == 0,
          "a tmpfs over /sys/fs/cgroup");
  if (mount("cgroup", "/sys/fs/cgroup/memory", "cgroup", 0, "memory") != 0) {
    ok(1, "mount the v1 memory hierarchy: %s", strerror(errno));
    skip_case("no v1 memory controller on this host");
    umount2("/sys/fs/cgroup", MNT_DETACH);
    return;
  }
  cg_runtime_init(&cg, name);
  is_str(cg.layout, "v1 (no v2 tree)", "layout");
  REQUIRE(cg.n == 1 && cg_has(&cg, CG_W_MEM), "one hierarchy: memory");
  ok(!cg_has(&cg, CG_W_KILL | CG_W_FREEZE), "no way to kill a cgroup");
  is_str(cg.why_kill, "no cgroup v2 tree for cgroup.kill", "and why");
  is_str(cg.why_pids, "no v1 pids hierarchy at /sys/fs/cgroup/pids",
         "pids off, and why");
  REQUIRE(cg_box_open(&cg, "box-mem", 32ULL << 20, 10, 100, &box, &e) ==
          AC_OK && cg_cmd_create(&cg, &box, "cmd-1", &cmd, &e) == AC_OK &&
          cg_cmd_create(&cg, &box, "cmd-2", &other, &e) == AC_OK,
          "box and commands: %s", e.msg);
  is_str(read_text(box.dir[0], "memory.limit_in_bytes"), "33554432",
         "memory limit 32 MiB");
  ok(cmd.oom_efd >= 0, "an OOM eventfd per command");
  is_int(cg_cmd_oom_kills(&cg, &cmd), 0, "no OOM kill counted yet");
  is_int(cg_cmd_kill_index(&cg, &cmd), -1, "no cgroup.kill hierarchy");
  is_int(cg_cmd_delegate(&cg, &cmd, 1, 200123, 200123), -1,
         "nothing to delegate");
  is_int(cg_cmd_kill_child(&cg, &cmd, "c1"), -1, "no child to kill");
  is_int(cg_cmd_child_populated(&cg, &cmd, "c1"), 0, "nor populated");
  is_int(cg_cmd_remove_child(&cg, &cmd, "c1"), 0, "nor to remove");
  REQUIRE(cg_cmd_create(&cg, &box, "cmd-3", &third, &e) == AC_OK,
          "a third command: %s", e.msg);
  p1 = start_in(cmd.join, cmd.njoin, NULL);
  p2 = start_in(other.join, other.njoin, NULL);
  p3 = start_in(third.join, third.njoin, NULL);
  for (int i = 0; i < 500 && !(cg_cmd_populated(&cg, &cmd) &&
                               cg_cmd_populated(&cg, &other) &&
                               cg_cmd_populated(&cg, &third)); i++)
    usleep(10000);
  ok(cg_cmd_populated(&cg, &cmd) && cg_cmd_populated(&cg, &other) &&
     cg_cmd_populated(&cg, &third), "a process runs in each command");
  cg_cmd_kill(&cg, &cmd);
  ok(killed(p1), "the command's process is SIGKILLed");
  ok(running(p2) && running(p3), "the other commands' are not");
  cg_cmd_destroy(&cg, &other);
  ok(killed(p2), "destroying a command kills what still runs in it");
  ok(running(p3), "not the third");
  cg_cmd_destroy(&cg, &cmd);
  snprintf(boxdir, sizeof boxdir, "%s", box.dir[0]);
  cg_box_free(&box);
  /* a restarted server has no handle: it purges the box by name */
  cg_box_purge(&cg, "box-mem");
  ok(killed(p3), "purging the box kills the rest");
  ok(!exists(boxdir), "and removes it");
  cg_cmd_destroy(&cg, &third);
  free_runtime(&cg);
  umount2("/sys/fs/cgroup/memory", MNT_DETACH);
  umount2("/sys/fs/cgroup", MNT_DETACH);
}

/* cgroup2 over /sys/fs/cgroup: the unified layout, whatever this host
** has; controllers it cannot delegate are off, with the reason. */
static void unified(void) {
  struct cg_runtime cg;
  struct cg_box box;
  struct cg_cmd cmd;
  struct ac_error e = { 0 };
  char parent[512] = "";
  pid_t pid;

  tcase("cgroup v2 mounted alone: the unified layout, kill per command");
  REQUIRE(init_over(&cg, "cgroup2", 0) == 0, "cgroup2 over /sys/fs/cgroup");
  is_int(cg.mode, 2, "pure v2 mode");
  is_str(cg.layout, "v2 (unified) at /sys/fs/cgroup", "layout");
  REQUIRE(cg.n == 1, "one hierarchy (%d)", cg.n);
  snprintf(parent, sizeof parent, "%s", cg.h[0].parent);
  ok(exists(parent), "its parent cgroup was made");
  ok(cg_has(&cg, CG_W_KILL | CG_W_FREEZE), "a way to kill: %s",
     cg.why_kill[0] ? cg.why_kill : "cgroup.kill");
  if (!cg_has(&cg, CG_W_MEM))
    ok(cg.why_mem[0] != '\0', "memory off, and why: %s", cg.why_mem);
  if (cg_box_open(&cg, "box-v2", 0, 0, 0, &box, &e) == AC_OK &&
      cg_cmd_create(&cg, &box, "cmd-1", &cmd, &e) == AC_OK) {
    pid = start_in(cmd.join, cmd.njoin, NULL);
    for (int i = 0; i < 500 && !cg_cmd_populated(&cg, &cmd); i++)
      usleep(10000);
    ok(cg_cmd_populated(&cg, &cmd), "a command runs in its cgroup");
    if (!cg_has(&cg, CG_W_MEM))
      is_int(cg_cmd_oom_kills(&cg, &cmd), 0, "no memory cgroup: no OOM "
             "kill counted");
    cg_cmd_kill(&cg, &cmd);
    ok(killed(pid), "killed through the v2 tree");
    cg_cmd_destroy(&cg, &cmd);
    cg_box_remove(&cg, &box);
  } else {
    ok(0, "box and command: %s", e.msg);
  }
  free_runtime(&cg);
  ok(!exists(parent), "the parent cgroup removed");
  umount2("/sys/fs/cgroup", MNT_DETACH);
}

/* The v2 files a v1 host has none of, on a directory laid out like a v2
** box: the values and their format, and a missing file named. */
static void v2_files(void) {
  static const char *files[] = {
    "memory.max", "memory.swap.max", "cgroup.subtree_control", "pids.max",
    "cpu.max", "cgroup.events"
  };
  struct cg_runtime cg;
  struct cg_box box;
  struct ac_error e = { 0 };
  char tmpl[] = "/tmp/agentcube-cgv2.XXXXXX", *top, boxdir[600], p[700];

  tcase("v2 limit files: memory.max, memory.swap.max, pids.max, cpu.max");
  top = mkdtemp(tmpl);
  REQUIRE(top != NULL, "a directory");
  memset(&cg, 0, sizeof cg);
  cg.mode = 2;
  cg.n = 1;
  cg.h[0].parent = top;
  cg.h[0].what = CG_W_MEM | CG_W_PIDS | CG_W_CPU | CG_W_V2;
  cg.h[0].percmd = 1;
  snprintf(boxdir, sizeof boxdir, "%s/box-v2", top);
  REQUIRE(mkdir(boxdir, 0755) == 0, "the box directory");
  REQUIRE(lay_out(boxdir, files, sizeof files / sizeof files[0]) == 0,
          "the box's files");
  REQUIRE(cg_box_open(&cg, "box-v2", 100ULL << 20, 64, 5, &box, &e) ==
          AC_OK, "box: %s", e.msg);
  is_str(read_text(boxdir, "memory.max"), "104857600", "memory.max");
  is_str(read_text(boxdir, "memory.swap.max"), "0", "no swap");
  is_str(read_text(boxdir, "cgroup.subtree_control"), "+memory",
         "commands get memory files of their own");
  is_str(read_text(boxdir, "pids.max"), "64", "pids.max");
  is_str(read_text(boxdir, "cpu.max"), "1000 100000",
         "cpu.max: 5 millicores rounds up to the kernel's 1 ms minimum");
  cg_box_free(&box);
  /* cgroupfs files take each write whole; these need emptying */
  REQUIRE(lay_out(boxdir, files, sizeof files / sizeof files[0]) == 0,
          "the files emptied");
  REQUIRE(cg_box_open(&cg, "box-v2", 0, 0, 0, &box, &e) == AC_OK,
          "reopened: %s", e.msg);
  is_str(read_text(boxdir, "memory.max"), "max", "memory.max: max");
  is_str(read_text(boxdir, "cpu.max"), "max 100000", "cpu.max: max");
  cg_box_free(&box);
  /* a host without swap accounting has no memory.swap.max: fine */
  snprintf(p, sizeof p, "%s/memory.swap.max", boxdir);
  REQUIRE(unlink(p) == 0, "no memory.swap.max");
  is_int(cg_box_open(&cg, "box-v2", 1ULL << 20, 0, 0, &box, &e), AC_OK,
         "a box without swap accounting opens: %s", e.msg);
  is_str(read_text(boxdir, "memory.max"), "1048576", "its memory.max");
  cg_box_free(&box);
  cg.h[0].parent = NULL;
  nftw(top, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* The v2 setup on a tree laid out like a pure v2 host's (this host may
** have none with controllers): memory, pids and cpu delegated from the
** server's cgroup and the runtime's, or the reason they are not; the
** kill and freeze files found or not. */
static void v2_delegation(void) {
  char tmpl[] = "/tmp/agentcube-cgdel.XXXXXX", *top, srv[600], par[700];
  char p[800], want[1024];
  struct cg_runtime cg;

  tcase("v2 delegation: memory, pids, cpu given to the runtime, or why not");
  top = mkdtemp(tmpl);
  REQUIRE(top != NULL, "a directory");
  snprintf(srv, sizeof srv, "%s/srv", top);
  snprintf(par, sizeof par, "%s/%s", srv, name);
  snprintf(p, sizeof p, "%s/cgroup.controllers", srv);
  REQUIRE(mkdir(srv, 0755) == 0 && mkdir(par, 0755) == 0 &&
          write_text(p, "cpuset cpu io memory hugetlb pids rdma\n") == 0 &&
          lay_out(srv, (const char *[]){ "cgroup.subtree_control" }, 1) == 0 &&
          lay_out(par, (const char *[]){ "cgroup.subtree_control",
                                         "cgroup.kill" }, 2) == 0,
          "the server's cgroup offering them, the runtime's");
  cg_runtime_init_v2(&cg, name, 0, top, "/srv");
  snprintf(want, sizeof want, "v2 (unified) at %s", top);
  is_str(cg.layout, want, "layout");
  REQUIRE(cg.n == 1, "one hierarchy");
  ok(cg.h[0].what == (CG_W_MEM | CG_W_PIDS | CG_W_CPU | CG_W_KILL | CG_W_V2),
     "memory, pids, cpu and cgroup.kill there");
  is_str(read_text(srv, "cgroup.subtree_control"), "+memory +pids +cpu",
         "delegated from the server's cgroup");
  is_str(read_text(par, "cgroup.subtree_control"), "+memory +pids +cpu",
         "and from the runtime's");
  ok(!cg.why_mem[0] && !cg.why_pids[0] && !cg.why_cpu[0] && !cg.why_kill[0],
     "nothing said to be off");
  free_runtime(&cg);

  snprintf(p, sizeof p, "%s/cgroup.subtree_control", srv);
  REQUIRE(unlink(p) == 0 && mkdir(p, 0755) == 0,
          "the server's cgroup refuses to delegate");
  cg_runtime_init_v2(&cg, name, 0, top, "/srv");
  snprintf(want, sizeof want, "cannot delegate controllers from %s: %s", srv,
           strerror(EISDIR));
  ok(!cg_has(&cg, CG_W_MEM | CG_W_PIDS | CG_W_CPU), "no controller taken");
  is_str(cg.why_mem, want, "memory: why");
  is_str(cg.why_pids, want, "pids: why");
  is_str(cg.why_cpu, want, "cpu: why");
  ok(cg_has(&cg, CG_W_KILL), "cgroup.kill is used all the same");
  free_runtime(&cg);
  REQUIRE(rmdir(p) == 0 && write_text(p, "") == 0, "it accepts again");

  snprintf(p, sizeof p, "%s/cgroup.subtree_control", par);
  REQUIRE(unlink(p) == 0, "the runtime's cgroup cannot delegate");
  cg_runtime_init_v2(&cg, name, 0, top, "/srv");
  snprintf(want, sizeof want, "cannot delegate controllers in %s: %s", par,
           strerror(ENOENT));
  ok(!cg_has(&cg, CG_W_MEM | CG_W_PIDS | CG_W_CPU), "no controller taken");
  is_str(cg.why_mem, want, "why");
  free_runtime(&cg);

  snprintf(p, sizeof p, "%s/cgroup.controllers", srv);
  REQUIRE(unlink(p) == 0, "no controllers offered");
  cg_runtime_init_v2(&cg, name, 0, top, "/srv");
  ok(cg.n == 1 && cg.h[0].what == (CG_W_KILL | CG_W_V2), "cgroup.kill only");
  is_str(cg.why_mem, "memory controller not available", "memory: why");
  free_runtime(&cg);

  snprintf(p, sizeof p, "%s/cgroup.kill", par);
  REQUIRE(unlink(p) == 0 && lay_out(par, (const char *[]){ "cgroup.freeze" },
                                    1) == 0, "cgroup.freeze, no cgroup.kill");
  cg_runtime_init_v2(&cg, name, 0, top, "/srv");
  ok(cg_has(&cg, CG_W_FREEZE) && !cg_has(&cg, CG_W_KILL), "the freezer");
  is_str(cg.why_kill, "no cgroup.kill (kernel before 5.14); using "
         "cgroup.freeze + SIGKILL", "and why");
  free_runtime(&cg);
  snprintf(p, sizeof p, "%s/cgroup.freeze", par);
  REQUIRE(unlink(p) == 0, "neither");
  cg_runtime_init_v2(&cg, name, 0, top, "/srv");
  ok(!cg_has(&cg, CG_W_FREEZE | CG_W_KILL), "no way to kill a cgroup");
  is_str(cg.why_kill, "no cgroup.kill (kernel before 5.14)", "and why");
  free_runtime(&cg);
  nftw(top, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* The v1 files on a directory laid out like a v1 box (memory with swap
** accounting, pids and cpu in one place): the values and the order. */
static void v1_files(void) {
  static const char *files[] = {
    "memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "pids.max",
    "cpu.cfs_period_us", "cpu.cfs_quota_us", "cgroup.procs"
  };
  struct cg_runtime cg;
  struct cg_box box;
  struct ac_error e = { 0 };
  char tmpl[] = "/tmp/agentcube-cgv1.XXXXXX", *top, boxdir[600];

  tcase("v1 limit files: limit_in_bytes, memsw, pids.max, cfs quota");
  top = mkdtemp(tmpl);
  REQUIRE(top != NULL, "a directory");
  memset(&cg, 0, sizeof cg);
  cg.mode = 1;
  cg.n = 1;
  cg.has_memsw = 1;
  cg.h[0].parent = top;
  cg.h[0].what = CG_W_MEM | CG_W_PIDS | CG_W_CPU;
  snprintf(boxdir, sizeof boxdir, "%s/box-v1", top);
  REQUIRE(mkdir(boxdir, 0755) == 0, "the box directory");
  REQUIRE(lay_out(boxdir, files, sizeof files / sizeof files[0]) == 0,
          "the box's files");
  REQUIRE(cg_box_open(&cg, "box-v1", 100ULL << 20, 64, 2500, &box, &e) ==
          AC_OK, "box: %s", e.msg);
  is_str(read_text(boxdir, "memory.limit_in_bytes"), "104857600",
         "memory.limit_in_bytes");
  is_str(read_text(boxdir, "memory.memsw.limit_in_bytes"), "104857600",
         "memsw: the same, so swap cannot add to it");
  is_str(read_text(boxdir, "pids.max"), "64", "pids.max");
  is_str(read_text(boxdir, "cpu.cfs_period_us"), "100000", "100 ms period");
  is_str(read_text(boxdir, "cpu.cfs_quota_us"), "250000",
         "2.5 cpus: 250 ms a period");
  cg_box_free(&box);
  cg.h[0].parent = NULL;
  nftw(top, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Each limit file the box cannot write (the controller missing there, or
** something else in its place) fails the box, naming the file. */
static void limit_file_failures(void) {
  static const char *v1[] = {
    "memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "pids.max",
    "cpu.cfs_period_us", "cpu.cfs_quota_us", "cgroup.procs"
  };
  static const char *v2[] = {
    "memory.max", "memory.swap.max", "cgroup.subtree_control", "pids.max",
    "cpu.max", "cgroup.events"
  };
  static const struct { int v2; const char *file; int as_dir; } bad[] = {
    { 0, "memory.limit_in_bytes", 0 }, { 0, "memory.memsw.limit_in_bytes", 0 },
    { 0, "pids.max", 0 }, { 0, "cpu.cfs_period_us", 0 },
    { 0, "cpu.cfs_quota_us", 0 },
    { 1, "memory.max", 0 }, { 1, "memory.swap.max", 1 },
    { 1, "cgroup.subtree_control", 0 }, { 1, "pids.max", 0 },
    { 1, "cpu.max", 0 },
  };
  struct cg_runtime cg;
  struct cg_box box;
  struct ac_error e = { 0 };
  char tmpl[] = "/tmp/agentcube-cgbad.XXXXXX", *top, boxdir[600], p[700];
  char want[1024];

  tcase("a limit file that cannot be written fails the box and is named");
  top = mkdtemp(tmpl);
  REQUIRE(top != NULL, "a directory");
  snprintf(boxdir, sizeof boxdir, "%s/box-bad", top);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memset(&cg, 0, sizeof cg);
    cg.n = 1;
    cg.has_memsw = 1;
    cg.h[0].parent = top;
    cg.h[0].what = CG_W_MEM | CG_W_PIDS | CG_W_CPU |
                   (bad[i].v2 ? CG_W_V2 : 0);
    REQUIRE((mkdir(boxdir, 0755) == 0 || errno == EEXIST) &&
            (bad[i].v2 ? lay_out(boxdir, v2, sizeof v2 / sizeof v2[0])
             : lay_out(boxdir, v1, sizeof v1 / sizeof v1[0])) == 0,
            "v%d box files", bad[i].v2 + 1);
    snprintf(p, sizeof p, "%s/%s", boxdir, bad[i].file);
    REQUIRE(unlink(p) == 0 && (!bad[i].as_dir || mkdir(p, 0755) == 0),
            "%s %s", bad[i].file, bad[i].as_dir ? "a directory" : "missing");
    snprintf(want, sizeof want, "cgroup: %s: %s", p,
             strerror(bad[i].as_dir ? EISDIR : ENOENT));
    is_int(cg_box_open(&cg, "box-bad", 1ULL << 30, 10, 1000, &box, &e),
           AC_ESYSTEM, "v%d, %s %s: the box fails", bad[i].v2 + 1,
           bad[i].file, bad[i].as_dir ? "a directory" : "missing");
    is_str(e.msg, want, "the message names it");
    rmdir(p);
  }
  nftw(top, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *de;
  int n = 0;
  while (d && (de = readdir(d)) != NULL)
    n += de->d_name[0] != '.';
  if (d)
    closedir(d);
  return n;
}

/* A command's cgroup that cannot be made (its box is gone, a stale one
** will not go) or joined (not a cgroup filesystem: no cgroup.procs). */
static void command_failures(void) {
  struct cg_runtime cg;
  struct cg_box box;
  struct cg_cmd cmd;
  struct ac_error e = { 0 };
  char tmpl[] = "/tmp/agentcube-cgcmd.XXXXXX", *top, boxdir[600];
  char want[1024], p[700];
  int fds;

  tcase("a command whose cgroup cannot be made or joined fails, and says "
        "where");
  top = mkdtemp(tmpl);
  REQUIRE(top != NULL, "a directory");
  memset(&cg, 0, sizeof cg);
  cg.n = 1;
  cg.h[0].parent = top;
  cg.h[0].what = CG_W_MEM;
  cg.h[0].percmd = 1;
  memset(&box, 0, sizeof box);
  box.n = 1;
  snprintf(boxdir, sizeof boxdir, "%s/box-cmd", top);
  box.dir[0] = boxdir;
  fds = count_fds();

  snprintf(want, sizeof want, "cgroup: mkdir %s/cmd-1: %s", boxdir,
           strerror(ENOENT));
  is_int(cg_cmd_create(&cg, &box, "cmd-1", &cmd, &e), AC_ESYSTEM,
         "the box's cgroup is gone: the command fails");
  is_str(e.msg, want, "names the directory");
  {
    struct cg_box b2;
    cg.h[0].parent = boxdir;          /* a runtime parent that is gone */
    snprintf(want, sizeof want, "cgroup: mkdir %s/box-x: %s", boxdir,
             strerror(ENOENT));
    is_int(cg_box_open(&cg, "box-x", 0, 0, 0, &b2, &e), AC_ESYSTEM,
           "the runtime's cgroup is gone: a box fails");
    is_str(e.msg, want, "names the directory");
    cg.h[0].parent = top;
  }

  REQUIRE(mkdir(boxdir, 0755) == 0, "the box's cgroup");
  snprintf(p, sizeof p, "%s/cmd-1", boxdir);
  REQUIRE(mkdir(p, 0755) == 0 && write_text(strcat(p, "/junk"), "x") == 0,
          "a stale cmd-1 that rmdir cannot remove");
  snprintf(want, sizeof want, "cgroup: mkdir %s/cmd-1: %s", boxdir,
           strerror(EEXIST));
  is_int(cg_cmd_create(&cg, &box, "cmd-1", &cmd, &e), AC_ESYSTEM,
         "a stale command cgroup that stays: the command fails");
  is_str(e.msg, want, "names it");
  ok(exists(p), "what was in it is left alone");

  snprintf(want, sizeof want, "cgroup: open %s/cmd-2/cgroup.procs: %s",
           boxdir, strerror(ENOENT));
  is_int(cg_cmd_create(&cg, &box, "cmd-2", &cmd, &e), AC_ESYSTEM,
         "no cgroup.procs to join: the command fails");
  is_str(e.msg, want, "names the file");
  snprintf(p, sizeof p, "%s/cmd-2", boxdir);
  ok(!exists(p), "the command's directory is removed again");
  is_int(count_fds(), fds, "no descriptor left open");

  /* the OOM counter of memory.oom_control: kernels before 4.13 have no
  ** oom_kill line there */
  REQUIRE(mkdir(p, 0755) == 0, "a command's memory directory");
  memset(&cmd, 0, sizeof cmd);
  cmd.n = 1;
  cmd.dir[0] = p;
  is_int(cg_cmd_oom_kills(&cg, &cmd), 0, "no memory.oom_control: 0");
  snprintf(want, sizeof want, "%s/memory.oom_control", p);
  REQUIRE(write_text(want, "oom_kill_disable 0\nunder_oom 0\n") == 0,
          "one without oom_kill");
  is_int(cg_cmd_oom_kills(&cg, &cmd), 0, "no oom_kill line: 0");
  REQUIRE(write_text(want, "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
          == 0, "one that counted 3");
  is_int(cg_cmd_oom_kills(&cg, &cmd), 3, "3 OOM kills");
  cg.h[0].parent = NULL;
  nftw(top, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* }====================================================== */

int main(void) {
  plan(14);
  if (geteuid() != 0)
    return skip_all("not root: cgroups and mounts need root");
  snprintf(name, sizeof name, "agentcube-cgtest-%ld", (long)getpid());
  limits_written();
  box_removed_with_processes();
  stale_commands();
  live_children();
  v2_files();
  v2_delegation();
  v1_files();
  limit_file_failures();
  command_failures();
  purge();
  /* the other layouts in a mount namespace of this process's own */
  if (unshare(CLONE_NEWNS) != 0 ||
      mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0) {
    printf("# private mount namespace: %s\n", strerror(errno));
    return done_testing();    /* the cases missing fail the plan */
  }
  no_cgroup_fs();
  no_proc();
  odd_self_cgroup();
  v1_memory_alone();
  unified();
  purge();
  return done_testing();
}
