/*
** sandbox.c -- the sandbox runtime: what this host offers, detected once,
** and the `agentcube serve --check` report.
*/
#include "sandbox.h"
#include "sandbox_int.h"
#include "sandbox_net.h"
#include "sandbox_util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* The self-test runs as this uid when we are root (nobody). */
#define PROBE_UID 65534
#define SELFTEST_MS 20000

static const char *const bwrap_paths[] = {
  "/usr/bin/bwrap", "/usr/local/bin/bwrap", "/bin/bwrap",
};
static const char *const mkfs_paths[] = {
  "/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4", "/usr/bin/mkfs.ext4",
};

static void find_tools(struct sbx_runtime *rt) {
  size_t i;
  struct stat st;
  for (i = 0; i < sizeof bwrap_paths / sizeof bwrap_paths[0]; i++) {
    if (access(bwrap_paths[i], X_OK) == 0) {
      snprintf(rt->bwrap, sizeof rt->bwrap, "%s", bwrap_paths[i]);
      break;
    }
  }
  if (rt->bwrap[0] == '\0')
    snprintf(rt->why_bwrap, sizeof rt->why_bwrap, "bubblewrap not found "
             "(apt-get install bubblewrap)");
  else if (stat(rt->bwrap, &st) == 0 && (st.st_mode & S_ISUID))
    snprintf(rt->why_bwrap, sizeof rt->why_bwrap, "%s is setuid; the "
             "design assumes a non-setuid bwrap", rt->bwrap);
  for (i = 0; i < sizeof mkfs_paths / sizeof mkfs_paths[0]; i++) {
    if (access(mkfs_paths[i], X_OK) == 0) {
      snprintf(rt->mkfs, sizeof rt->mkfs, "%s", mkfs_paths[i]);
      break;
    }
  }
  if (rt->mkfs[0] == '\0')
    snprintf(rt->why_mkfs, sizeof rt->why_mkfs, "mkfs.ext4 not found "
             "(apt-get install e2fsprogs)");
}

/* Root: the world-searchable directory boxes are published under (see
** boxfs.h), one per state directory. NULL when it cannot be made. */
static void make_pub(struct sbx_runtime *rt) {
  static const char top[] = "/run/agentcube";
  char *p;
  if (!rt->root)
    return;
  if ((mkdir(top, 0711) < 0 && errno != EEXIST) || chmod(top, 0711) < 0)
    return;
  p = sbxu_fmt("%s/%016llx", top,
               (unsigned long long)sbxu_hash(rt->state_dir));
  if (p && (mkdir(p, 0711) == 0 || errno == EEXIST) && chmod(p, 0711) == 0)
    rt->pub = p;
  else
    free(p);
}

static void check_userns(struct sbx_runtime *rt) {
  char buf[32];
  if (sbxu_read_file("/proc/sys/user/max_user_namespaces", buf,
                     sizeof buf) > 0 && strtol(buf, NULL, 10) == 0) {
    snprintf(rt->why_userns, sizeof rt->why_userns,
             "user.max_user_namespaces is 0");
    return;
  }
  if (sbxu_read_file("/proc/sys/kernel/unprivileged_userns_clone", buf,
                     sizeof buf) > 0 && strtol(buf, NULL, 10) == 0) {
    snprintf(rt->why_userns, sizeof rt->why_userns,
             "kernel.unprivileged_userns_clone is 0");
    return;
  }
  rt->userns_ok = 1;
}

/* Runs `true` in a sandbox with the real flags (minus the session binds):
** proves that bwrap, user namespaces, /proc mounting and the seccomp
** program all work here. */
static void self_test(struct sbx_runtime *rt) {
  char *argv[] = { "bwrap", "--args", "3", "--", "/usr/bin/true", NULL };
  char *envp[] = { NULL };
  struct sbx_spawn_plan plan;
  struct sbx_args a = { 0 };
  struct ac_error err;
  struct pollfd pfd;
  char num[16];
  pid_t pid;
  int pidfd, status = -1, efd = -1;

  if (rt->bwrap[0] == '\0' || rt->seccomp.bpf == NULL) {
    snprintf(rt->why_selftest, sizeof rt->why_selftest, "not run: %s",
             rt->bwrap[0] ? "no seccomp program" : "no bwrap");
    return;
  }
  memset(&plan, 0, sizeof plan);
  for (int i = 0; i < SBX_NFDS; i++)
    plan.fds[i] = -1;
  sbx_args_add(&a, "--unshare-all");
  sbx_args_add(&a, "--unshare-user");
  sbx_args_add(&a, "--disable-userns");
  sbx_args_add(&a, "--die-with-parent");
  sbx_args_add(&a, "--new-session");
  /* No separate init: bwrap's outer process then reaps its only child
  ** itself (with an init it may exit first and orphan it to us). */
  sbx_args_add(&a, "--as-pid-1");
  if (!a.oom)
    sbx_args_addn(&a, rt->layout, rt->layout_len - 1);
  sbx_args_add(&a, "--proc");
  sbx_args_add(&a, "/proc");
  sbx_args_add(&a, "--dev");
  sbx_args_add(&a, "/dev");
  sbx_args_add(&a, "--seccomp");
  snprintf(num, sizeof num, "%d", SBX_FD_SECCOMP);
  sbx_args_add(&a, num);
  if (a.oom) {
    snprintf(rt->why_selftest, sizeof rt->why_selftest, "out of memory");
    goto out;
  }
  plan.path = rt->bwrap;
  plan.argv = argv;
  plan.envp = envp;
  plan.nfds = SBX_FD_ETC + 1;
  plan.fds[SBX_FD_STDIN] = open("/dev/null", O_RDONLY | O_CLOEXEC);
  plan.fds[SBX_FD_STDOUT] = open("/dev/null", O_WRONLY | O_CLOEXEC);
  efd = memfd_create("selftest-stderr", MFD_CLOEXEC);
  plan.fds[SBX_FD_STDERR] = efd;
  plan.fds[SBX_FD_ARGS] = sbxu_memfd("bwrap-args", a.p, a.len);
  plan.fds[SBX_FD_SECCOMP] = sbxu_memfd("seccomp", rt->seccomp.bpf,
                                        rt->seccomp.len);
  plan.fds[SBX_FD_INFO] = open("/dev/null", O_WRONLY | O_CLOEXEC);
  plan.fds[SBX_FD_ETC] = rt->etcfd;          /* borrowed */
  if (rt->root) {
    plan.set_ids = 1;
    plan.uid = PROBE_UID;
    plan.gid = PROBE_UID;
  }
  for (int i = 0; i < plan.nfds; i++) {
    if (plan.fds[i] < 0) {
      snprintf(rt->why_selftest, sizeof rt->why_selftest, "setup: %s",
               strerror(errno));
      goto out;
    }
  }
  if (sbx_spawn(&plan, &pid, &pidfd, &err)) {
    snprintf(rt->why_selftest, sizeof rt->why_selftest, "%s", err.msg);
    goto out;
  }
  if (pidfd >= 0) {
    pfd.fd = pidfd;
    pfd.events = POLLIN;
    if (poll(&pfd, 1, SELFTEST_MS) <= 0)
      syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    close(pidfd);
  } else {
    long long end = sbxu_now_ns() + SELFTEST_MS * 1000000LL;
    while (waitpid(pid, &status, WNOHANG) == 0) {
      if (sbxu_now_ns() >= end)
        kill(pid, SIGKILL);
      sbxu_sleep_ms(2);
    }
  }
  while (status == -1 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    rt->selftest_ok = 1;
  } else {
    char msg[200];
    ssize_t n = pread(efd, msg, sizeof msg - 1, 0);
    msg[n > 0 ? n : 0] = '\0';
    msg[strcspn(msg, "\n")] = '\0';
    snprintf(rt->why_selftest, sizeof rt->why_selftest, "bwrap status %d: "
             "%s", status, msg[0] ? msg : "(no message)");
  }
out:
  for (int i = 0; i < SBX_FD_FIRST_BORROWED; i++)
    if (plan.fds[i] >= 0)
      close(plan.fds[i]);
  sbx_args_free(&a);
}

enum ac_code sbx_runtime_init(struct sbx_runtime **out, const char *state_dir,
                              struct ac_error *err) {
  struct sbx_runtime *rt;
  struct sigaction sa;
  enum ac_code rc = AC_OK;

  *out = NULL;
  /* Exit statuses are collected with waitpid: auto-reaping would lose
  ** them. */
  if (sigaction(SIGCHLD, NULL, &sa) == 0 &&
      (sa.sa_handler == SIG_IGN || (sa.sa_flags & SA_NOCLDWAIT)))
    return ac_error_set(err, AC_ECONFIG, "sandbox: SIGCHLD is ignored "
                        "(SIG_IGN or SA_NOCLDWAIT); exit statuses would be "
                        "lost");
  rt = calloc(1, sizeof *rt);
  if (rt == NULL)
    return ac_error_set(err, AC_ENOMEM, "sandbox: out of memory");
  rt->etcfd = -1;
  rt->state_dir = realpath(state_dir, NULL);
  if (rt->state_dir == NULL) {
    rc = ac_error_errno(err, errno == ENOENT ? AC_ENOTFOUND : AC_ESYSTEM,
                        errno, "sandbox: state directory %s", state_dir);
    goto out;
  }
  snprintf(rt->cgname, sizeof rt->cgname, "agentcube-%016llx",
           (unsigned long long)sbxu_hash(rt->state_dir));
  rt->root = geteuid() == 0;
  rt->ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (rt->ncpu < 1)
    rt->ncpu = 1;
  find_tools(rt);
  check_userns(rt);
  if (rt->root && access("/dev/loop-control", R_OK | W_OK) == 0)
    rt->loop_ok = 1;
  else
    snprintf(rt->why_loop, sizeof rt->why_loop, "%s", rt->root
             ? "/dev/loop-control is not usable" : "not root");
  {
    struct ac_error serr;
    if (scf_build(&rt->seccomp, &serr))
      snprintf(rt->why_seccomp, sizeof rt->why_seccomp, "%s", serr.msg);
  }
  cg_runtime_init(&rt->cg, rt->cgname);
  rt->subreaper_ok = prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0;
  make_pub(rt);
  rc = sbx_etc_build(rt, err);
  if (rc == AC_OK)
    rc = sbx_layout_build(rt, err);
  if (rc)
    goto out;
  self_test(rt);
  sbx_net_rt_init(rt);
  rc = sbx_live_rt_start(rt, err);
out:
  if (rc) {
    sbx_runtime_free(rt);
    return rc;
  }
  *out = rt;
  return AC_OK;
}

void sbx_runtime_free(struct sbx_runtime *rt) {
  if (rt == NULL)
    return;
  sbx_live_rt_stop(rt);
  sbx_net_rt_free(rt);
  cg_runtime_free(&rt->cg);
  sbx_etc_remove(rt);
  if (rt->pub) {
    sbx_image_unpublish_all(rt);
    rmdir(rt->pub);                /* fails while boxes are published */
    rmdir("/run/agentcube");
    free(rt->pub);
  }
  scf_free(&rt->seccomp);
  free(rt->layout);
  free(rt->state_dir);
  free(rt);
}

int sbx_runtime_switches_uid(const struct sbx_runtime *rt) {
  return rt->root;
}

enum ac_code sbx_runtime_usable(const struct sbx_runtime *rt,
                                struct ac_error *err) {
  if (rt->bwrap[0] == '\0')
    return ac_error_set(err, AC_EUNSUPPORTED, "sandbox: %s", rt->why_bwrap);
  if (rt->seccomp.bpf == NULL)
    return ac_error_set(err, AC_EUNSUPPORTED, "sandbox: no seccomp "
                        "filter: %s", rt->why_seccomp);
  if (!rt->selftest_ok)
    return ac_error_set(err, AC_EUNSUPPORTED, "sandbox: self-test "
                        "failed: %s", rt->why_selftest);
  return AC_OK;
}

/* 1 when the facility `what` lives on a cgroup v2 tree. */
static int on_v2(const struct cg_runtime *cg, unsigned what) {
  for (int i = 0; i < cg->n; i++)
    if (cg->h[i].what & what)
      return (cg->h[i].what & CG_W_V2) != 0;
  return 0;
}

/* One line of the report; returns 1 when the protection is off. */
static int line(FILE *out, const char *name, int on, const char *detail) {
  fprintf(out, "  %-30s %-3s  %s\n", name, on ? "on" : "off",
          detail ? detail : "");
  return !on;
}

int sbx_runtime_report(const struct sbx_runtime *rt, FILE *out) {
  const struct cg_runtime *cg = &rt->cg;
  char d[512];
  int off = 0;

  fprintf(out, "sandbox: bubblewrap %s, state %s, cgroups %s\n",
          rt->bwrap[0] ? rt->bwrap : "(missing)", rt->state_dir,
          cg->layout[0] ? cg->layout : "none");
  if (rt->selftest_ok)
    snprintf(d, sizeof d, "ran /usr/bin/true in a full sandbox as uid %d",
             rt->root ? PROBE_UID : (int)getuid());
  else
    snprintf(d, sizeof d, "%s", rt->why_selftest);
  off += line(out, "sandbox self-test", rt->selftest_ok, d);
  off += line(out, "bubblewrap (not setuid)",
              rt->bwrap[0] && !rt->why_bwrap[0],
              rt->why_bwrap[0] ? rt->why_bwrap : rt->bwrap);
  off += line(out, "user namespaces", rt->userns_ok,
              rt->userns_ok ? "sandbox uid 1000 maps to one host uid"
              : rt->why_userns);
  off += line(out, "uid switching", rt->root, rt->root
              ? "each session runs as its own unprivileged host uid"
              : "not root: every session runs as the server's uid");
  off += line(out, "pid/mount/ipc/uts/cgroup ns", rt->selftest_ok,
              "bwrap --unshare-all; new pid namespace per command");
  off += line(out, "network isolation", rt->selftest_ok,
              "new network namespace (loopback only) unless the session "
              "asks for network");
  off += sbx_net_report(rt, out);
  off += line(out, "empty environment", 1,
              "bwrap exec'd with envp={}, --clearenv, args via --args fd");
  off += line(out, "nested user namespaces", rt->selftest_ok,
              "blocked (--disable-userns)");
  if (rt->seccomp.bpf)
    snprintf(d, sizeof d, "%u rules, %u BPF instructions (%s)",
             rt->seccomp.nrules, rt->seccomp.ninsns, rt->seccomp.arches);
  else
    snprintf(d, sizeof d, "%s", rt->why_seccomp);
  off += line(out, "seccomp filter", rt->seccomp.bpf != NULL, d);
  if (cg_has(cg, CG_W_MEM))
    snprintf(d, sizeof d, "%s", on_v2(cg, CG_W_MEM)
             ? "cgroup v2 memory.max, swap.max=0, oom.group=1"
             : cg->has_memsw ? "cgroup v1 memory + memsw (swap counted)"
             : "cgroup v1 memory (swap not accounted)");
  else
    snprintf(d, sizeof d, "%s", cg->why_mem);
  off += line(out, "memory limit", cg_has(cg, CG_W_MEM), d);
  off += line(out, "OOM detection", cg_has(cg, CG_W_MEM),
              cg_has(cg, CG_W_MEM) ? "per-command oom_kill counter; the "
              "rest of the command is killed" : cg->why_mem);
  off += line(out, "pids limit", cg_has(cg, CG_W_PIDS),
              !cg_has(cg, CG_W_PIDS) ? cg->why_pids
              : on_v2(cg, CG_W_PIDS) ? "cgroup v2 pids.max (bwrap's 2 "
              "processes count)" : "cgroup v1 pids.max (bwrap's 2 processes "
              "count)");
  off += line(out, "cpu limit", cg_has(cg, CG_W_CPU),
              !cg_has(cg, CG_W_CPU) ? cg->why_cpu
              : on_v2(cg, CG_W_CPU) ? "cgroup v2 cpu.max"
              : "cgroup v1 cpu.cfs_quota_us");
  if (cg_has(cg, CG_W_KILL))
    snprintf(d, sizeof d, "cgroup.kill per command; SIGKILL to the pid "
             "namespace's init first");
  else
    snprintf(d, sizeof d, "%s%s", cg->why_kill, cg_has(cg, CG_W_FREEZE)
             ? "" : "; falling back to killing bwrap (pid namespace)");
  off += line(out, "cgroup whole-tree kill",
              cg_has(cg, CG_W_KILL | CG_W_FREEZE), d);
  if (rt->root && rt->loop_ok && rt->mkfs[0])
    snprintf(d, sizeof d, "per-session ext4 image (%s), loop-mounted "
             "nosuid,nodev", rt->mkfs);
  else
    snprintf(d, sizeof d, "%s; plain directories, no quota",
             !rt->loop_ok ? rt->why_loop : rt->why_mkfs);
  off += line(out, "disk quota (loop image)",
              rt->root && rt->loop_ok && rt->mkfs[0], d);
  off += line(out, "private state paths", rt->pub != NULL || !rt->root,
              rt->pub ? "boxes published under /run/agentcube; the state "
              "directory may be 0700" : rt->root ? "cannot create "
              "/run/agentcube: state and box directories must be "
              "searchable (0711)" : "sandboxes run as the server's uid");
  off += line(out, "rlimits", 1,
              "FSIZE, NOFILE, CORE=0, CPU backstop per command");
  off += line(out, "orphan reaping", rt->subreaper_ok,
              rt->subreaper_ok ? "PR_SET_CHILD_SUBREAPER"
              : "PR_SET_CHILD_SUBREAPER failed");
  return off;
}
