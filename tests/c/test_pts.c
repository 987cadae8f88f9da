/*
** test_pts.c -- a box's own devpts instance: mounted with the box's
** maximum (the pty after the last one is refused), bound on /dev/pts in
** the bwrap arguments, a killed server's instance replaced, and a tree
** root where it cannot go reported. Root only, in a private mount
** namespace.
*/
#include "sandbox_int.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

static char top[64];
static struct sbx_runtime rt;

/* Mounts of devpts on path in this namespace, and the options of the
** last one. */
static int devpts_on(const char *path, char *opts, size_t optsz) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  char line[1024];
  int n = 0;
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof line, f)) {
    char mp[512], fstype[64], super[512];
    const char *dash = strstr(line, " - ");
    if (dash == NULL || sscanf(line, "%*s %*s %*s %*s %511s", mp) != 1 ||
        sscanf(dash + 3, "%63s %*s %511s", fstype, super) != 2)
      continue;
    if (strcmp(mp, path) == 0 && strcmp(fstype, "devpts") == 0) {
      n++;
      snprintf(opts, optsz, "%s", super);
    }
  }
  fclose(f);
  return n;
}

static void box_at(struct sbx_box *box, const char *root, unsigned ptys) {
  memset(box, 0, sizeof *box);
  box->rt = &rt;
  box->limits.ptys = ptys;
  box->fs.root = (char *)root;
}

static void instance_with_a_maximum(void) {
  struct sbx_box box;
  struct sbx_args a = { 0 };
  struct ac_error e;
  char path[128], ptmx[160], opts[512] = "", want[300];
  int fds[4], n = 0;

  tcase("a box gets its own devpts with its maximum, bound on /dev/pts");
  box_at(&box, top, 3);
  is_int(sbx_pts_args(&box, &a, &e), AC_OK, "set up");
  snprintf(path, sizeof path, "%s/devpts", top);
  is_int(devpts_on(path, opts, sizeof opts), 1, "one devpts on %s", path);
  ok(strstr(opts, "max=3") != NULL, "max=3: %s", opts);
  snprintf(want, sizeof want, "--dev-bind%c%s%c/dev/pts%c", 0, path, 0, 0);
  ok(a.p != NULL && a.len == strlen(path) + 21 &&
     memcmp(a.p, want, a.len) == 0, "--dev-bind %s /dev/pts", path);
  snprintf(ptmx, sizeof ptmx, "%s/ptmx", path);
  for (int i = 0; i < 4; i++) {
    fds[i] = open(ptmx, O_RDWR | O_NOCTTY | O_CLOEXEC);
    n += fds[i] >= 0;
  }
  is_int(n, 3, "three ptys open");
  ok(fds[3] < 0 && errno == ENOSPC, "the fourth is refused (ENOSPC)");
  for (int i = 0; i < 4; i++)
    if (fds[i] >= 0)
      close(fds[i]);
  sbx_args_free(&a);

  /* a server killed with the instance mounted: the next one replaces
  ** it rather than stacking a second */
  is_int(sbx_pts_args(&box, &a, &e), AC_OK, "set up again");
  is_int(devpts_on(path, opts, sizeof opts), 1,
         "still one devpts instance there");
  sbx_args_free(&a);
  umount2(path, MNT_DETACH);
  rmdir(path);
}

static void nothing_to_do(void) {
  struct sbx_box box;
  struct sbx_args a = { 0 };
  struct ac_error e;
  char path[128];

  tcase("no maximum, or not root: bwrap's own devpts, nothing mounted");
  snprintf(path, sizeof path, "%s/devpts", top);
  box_at(&box, top, 0);
  is_int(sbx_pts_args(&box, &a, &e), AC_OK, "ptys 0");
  rt.root = 0;
  box_at(&box, top, 3);
  is_int(sbx_pts_args(&box, &a, &e), AC_OK, "not root");
  rt.root = 1;
  is_int(a.len, 0, "no arguments");
  ok(access(path, F_OK) != 0, "no devpts directory made");
}

static void cannot_go_there(void) {
  struct sbx_box box;
  struct sbx_args a = { 0 };
  struct ac_error e;
  char root[128], path[160];
  int fd;

  tcase("a devpts that is a file, or a tree root that is gone: an error");
  snprintf(root, sizeof root, "%s/file-root", top);
  snprintf(path, sizeof path, "%s/devpts", root);
  REQUIRE(mkdir(root, 0755) == 0 &&
          (fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) >= 0,
          "devpts a file");
  close(fd);
  box_at(&box, root, 3);
  is_int(sbx_pts_args(&box, &a, &e), AC_ESYSTEM, "refused");
  ok(strstr(e.msg, "devpts is not a directory") != NULL, "says so: %s",
     e.msg);
  snprintf(root, sizeof root, "%s/gone", top);
  box_at(&box, root, 3);
  is_int(sbx_pts_args(&box, &a, &e), AC_ESYSTEM, "a missing tree root");
  ok(strstr(e.msg, "sandbox: mkdir") != NULL &&
     strstr(e.msg, strerror(ENOENT)) != NULL, "says so: %s", e.msg);
  is_int(a.len, 0, "no arguments");
  unlink(path);
  snprintf(root, sizeof root, "%s/file-root", top);
  rmdir(root);
}

int main(void) {
  plan(3);
  if (geteuid() != 0)
    return skip_all("not root: devpts instances are mounted by root");
  if (unshare(CLONE_NEWNS) != 0 ||
      mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0) {
    printf("# private mount namespace: %s\n", strerror(errno));
    return done_testing();
  }
  snprintf(top, sizeof top, "/tmp/agentcube-pts.XXXXXX");
  if (mkdtemp(top) == NULL)
    return done_testing();
  rt.root = 1;
  instance_with_a_maximum();
  nothing_to_do();
  cannot_go_there();
  rmdir(top);
  return done_testing();
}
