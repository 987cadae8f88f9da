/*
** sandbox_args.c -- the bwrap command line, built once per runtime (host
** layout: /usr, the merged-/usr symlinks, the /etc snapshot of
** sandbox_etc.c) and once per box (namespaces, mounts); sbx_exec only
** appends the per-command part. Options travel NUL-separated through
** --args FD, so they never show in /proc/1/cmdline and need no quoting.
*/
#include "sandbox_int.h"
#include "sandbox_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void sbx_args_addn(struct sbx_args *a, const char *s, size_t n) {
  if (a->oom)
    return;
  if (a->len + n + 1 > a->cap) {
    size_t cap = a->cap ? a->cap : 1024;
    char *p;
    while (a->len + n + 1 > cap)
      cap *= 2;
    p = realloc(a->p, cap);
    if (p == NULL) {
      a->oom = 1;
      return;
    }
    a->p = p;
    a->cap = cap;
  }
  memcpy(a->p + a->len, s, n);
  a->p[a->len + n] = '\0';
  a->len += n + 1;
}

void sbx_args_add(struct sbx_args *a, const char *s) {
  sbx_args_addn(a, s, strlen(s));
}

void sbx_args_free(struct sbx_args *a) {
  free(a->p);
  a->p = NULL;
  a->len = a->cap = 0;
  a->oom = 0;
}

static void add3(struct sbx_args *a, const char *x, const char *y,
                 const char *z) {
  sbx_args_add(a, x);
  sbx_args_add(a, y);
  if (z)
    sbx_args_add(a, z);
}

/* /lib, /bin, ...: a symlink into /usr on merged-/usr hosts (recreated as
** the same symlink), else a read-only bind of the directory. */
static void add_top_dir(struct sbx_args *a, const char *name) {
  char path[64], target[64];
  struct stat st;
  ssize_t n;
  snprintf(path, sizeof path, "/%s", name);
  if (lstat(path, &st) < 0)
    return;
  if (S_ISLNK(st.st_mode)) {
    n = readlink(path, target, sizeof target - 1);
    if (n <= 0)
      return;
    target[n] = '\0';
    add3(a, "--symlink", target, path);
  } else if (S_ISDIR(st.st_mode)) {
    add3(a, "--ro-bind", path, path);
  }
}

enum ac_code sbx_layout_build(struct sbx_runtime *rt, struct ac_error *err) {
  static const char *const tops[] = {
    "bin", "sbin", "lib", "lib64", "lib32", "libx32",
  };
  struct sbx_args a = { 0 };
  char num[16];
  size_t i;

  add3(&a, "--ro-bind", "/usr", "/usr");
  for (i = 0; i < sizeof tops / sizeof tops[0]; i++)
    add_top_dir(&a, tops[i]);
  snprintf(num, sizeof num, "%d", SBX_FD_ETC);
  add3(&a, "--ro-bind-fd", num, "/etc");
  for (i = 0; sbx_etc_binds[i]; i++) {
    char path[80];
    snprintf(path, sizeof path, "/etc/%s", sbx_etc_binds[i]);
    add3(&a, "--ro-bind-try", path, path);
  }
  if (a.oom) {
    sbx_args_free(&a);
    return ac_error_set(err, AC_ENOMEM, "sandbox: out of memory");
  }
  rt->layout = a.p;
  rt->layout_len = a.len;
  return AC_OK;
}

enum ac_code sbx_prefix_build(struct sbx_box *box, struct ac_error *err) {
  const struct sbx_runtime *rt = box->rt;
  const struct sbx_limits *lim = &box->limits;
  struct sbx_args a = { 0 };
  unsigned long long shm = 64ULL << 20;
  char num[32];
  static const struct { int fd; const char *dest; } binds[] = {
    { SBX_FD_WS, "/workspace" },
    { SBX_FD_TMP, "/tmp" },
    { SBX_FD_HOME, "/home/sandbox" },
  };

  sbx_args_add(&a, "--unshare-all");
  /* with network, the launcher has joined the session's own namespace
  ** already (sandbox_net.c): bwrap keeps it */
  if (lim->network)
    sbx_args_add(&a, "--share-net");
  sbx_args_add(&a, "--unshare-user");
  sbx_args_add(&a, "--disable-userns");
  snprintf(num, sizeof num, "%d", SBX_UID);
  add3(&a, "--uid", num, NULL);
  snprintf(num, sizeof num, "%d", SBX_GID);
  add3(&a, "--gid", num, NULL);
  sbx_args_add(&a, "--die-with-parent");
  sbx_args_add(&a, "--new-session");
  add3(&a, "--hostname", "sandbox", NULL);
  if (lim->image_root == NULL)
    sbx_args_addn(&a, rt->layout, rt->layout_len - 1);
  else if (sbx_image_layout(box, &a, err) != AC_OK) {
    sbx_args_free(&a);
    return err->code;
  }
  /* DNS for boxes with network: the namespace's resolver (pasta forwards
  ** it to the host's), onto the snapshot's empty resolv.conf. */
  if (lim->network && (lim->netpol == NULL || lim->netpol->dns)) {
    snprintf(num, sizeof num, "%d", SBX_FD_RESOLV);
    add3(&a, "--ro-bind-data", num, "/etc/resolv.conf");
  }
  add3(&a, "--proc", "/proc", NULL);
  sbx_mask_args(&a);
  add3(&a, "--dev", "/dev", NULL);
  if (sbx_pts_args(box, &a, err) != AC_OK) {
    sbx_args_free(&a);
    return err->code;
  }
  /* tmpfs pages are charged to the memory cgroup and cannot be swapped
  ** out, so /dev/shm stays well below the memory limit. */
  if (lim->memory_bytes && lim->memory_bytes / 4 < shm)
    shm = lim->memory_bytes / 4;
  if (shm < (1ULL << 20))
    shm = 1ULL << 20;
  snprintf(num, sizeof num, "%llu", shm);
  add3(&a, "--perms", "1777", NULL);
  add3(&a, "--size", num, NULL);
  add3(&a, "--tmpfs", "/dev/shm", NULL);
  add3(&a, "--dir", "/var", NULL);
  add3(&a, "--symlink", "../tmp", "/var/tmp");
  for (size_t i = 0; i < sizeof binds / sizeof binds[0]; i++) {
    snprintf(num, sizeof num, "%d", binds[i].fd);
    add3(&a, "--bind-fd", num, binds[i].dest);
  }
  if (a.oom) {
    sbx_args_free(&a);
    return ac_error_set(err, AC_ENOMEM, "sandbox: out of memory");
  }
  box->prefix = a.p;
  box->prefix_len = a.len;
  return AC_OK;
}
