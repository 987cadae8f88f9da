/*
** sandbox_pts.c -- a devpts instance of each box's own, with a maximum.
**
** Pseudo-terminals are counted host-wide (kernel.pty.max): with bwrap's
** own devpts instance, which has no maximum, one session could take every
** pty of the host and of every other container. A root server mounts a
** devpts instance per box with max=<ptys> in the box's tree root (0710,
** out of the sandbox's and other host users' reach) and binds it on
** /dev/pts, where /dev/ptmx already points.
*/
#include "sandbox_int.h"
#include "sandbox_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>

enum ac_code sbx_pts_args(struct sbx_box *box, struct sbx_args *a,
                          struct ac_error *err) {
  char opts[96], *path;
  struct stat st;

  if (!box->rt->root || box->limits.ptys == 0 || box->fs.root == NULL)
    return AC_OK;
  if ((path = sbxu_join(box->fs.root, "devpts")) == NULL)
    return ac_error_set(err, AC_ENOMEM, "sandbox: out of memory");
  if (mkdir(path, 0755) < 0 && errno != EEXIST) {
    ac_error_errno(err, AC_ESYSTEM, errno, "sandbox: mkdir %s", path);
    free(path);
    return AC_ESYSTEM;
  }
  /* an instance left by a server that was killed goes first */
  sbx_private_unmount(path);
  if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
    ac_error_set(err, AC_ESYSTEM, "sandbox: %s is not a directory", path);
    free(path);
    return AC_ESYSTEM;
  }
  snprintf(opts, sizeof opts, "newinstance,ptmxmode=0666,mode=0620,max=%u",
           box->limits.ptys);
  if (mount("devpts", path, "devpts", MS_NOSUID | MS_NOEXEC, opts) < 0) {
    ac_error_errno(err, AC_ESYSTEM, errno, "sandbox: devpts on %s", path);
    free(path);
    return AC_ESYSTEM;
  }
  sbx_args_add(a, "--dev-bind");
  sbx_args_add(a, path);
  sbx_args_add(a, "/dev/pts");
  free(path);
  return AC_OK;
}
