/*
** sandbox_image.c -- the layout of a box whose template has an image:
** the image's /usr, its merged-/usr symlinks (or directories), /etc and
** /opt, all bound read-only in place of the host's. Nothing is copied per
** session: every box binds the same tree.
**
** bwrap runs as the session uid and needs search permission on the path
** of what it binds, and the image store lives in the (possibly private)
** state directory. A root server therefore publishes each image it uses
** as a read-only, nosuid, nodev bind mount under its world-searchable
** <pub> directory (as boxes are), once; a rebuilt image (new inode) is
** published again. An unprivileged server binds the store's path.
*/
#include "sandbox_int.h"
#include "sandbox_util.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t publish_mu = PTHREAD_MUTEX_INITIALIZER;

static int same_dir(const char *a, const char *b) {
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

/* <pub>/img-<hash of root>, bound read-only from root. malloc'd. */
static char *publish(const struct sbx_runtime *rt, const char *root,
                     struct ac_error *err) {
  char *dst = sbxu_fmt("%s/img-%016llx", rt->pub,
                       (unsigned long long)sbxu_hash(root));
  if (dst == NULL) {
    ac_error_set(err, AC_ENOMEM, "sandbox: out of memory");
    return NULL;
  }
  pthread_mutex_lock(&publish_mu);
  if (!same_dir(dst, root)) {
    umount2(dst, MNT_DETACH);          /* an earlier build of the image */
    if ((mkdir(dst, 0755) < 0 && errno != EEXIST) ||
        mount(root, dst, "none", MS_BIND, NULL) < 0 ||
        mount("none", dst, "none", MS_REMOUNT | MS_BIND | MS_RDONLY |
              MS_NOSUID | MS_NODEV, NULL) < 0) {
      ac_error_errno(err, AC_ESYSTEM, errno, "sandbox: publishing image "
                     "%s", root);
      umount2(dst, MNT_DETACH);
      rmdir(dst);
      free(dst);
      dst = NULL;
    }
  }
  pthread_mutex_unlock(&publish_mu);
  return dst;
}

static void bind_ro(struct sbx_args *a, const char *src, const char *dest) {
  sbx_args_add(a, "--ro-bind");
  sbx_args_add(a, src);
  sbx_args_add(a, dest);
}

enum ac_code sbx_image_layout(struct sbx_box *box, struct sbx_args *a,
                              struct ac_error *err) {
  static const char *const tops[] = {
    "bin", "sbin", "lib", "lib64", "lib32", "libx32",
  };
  const char *root = box->limits.image_root;
  char *base, path[4200], target[256], link[4096];
  struct stat st;

  if (stat(root, &st) < 0 || !S_ISDIR(st.st_mode))
    return ac_error_errno(err, AC_ENOTFOUND, errno ? errno : ENOTDIR,
                          "sandbox: image %s", root);
  base = box->rt->pub ? publish(box->rt, root, err) : strdup(root);
  if (base == NULL)
    return err->code ? err->code
                     : ac_error_set(err, AC_ENOMEM, "sandbox: out of memory");
  snprintf(path, sizeof path, "%s/usr", base);
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    bind_ro(a, path, "/usr");
  for (size_t i = 0; i < sizeof tops / sizeof tops[0]; i++) {
    ssize_t n;
    snprintf(path, sizeof path, "%s/%s", base, tops[i]);
    if (lstat(path, &st) < 0)
      continue;
    snprintf(target, sizeof target, "/%s", tops[i]);
    if (S_ISDIR(st.st_mode)) {
      bind_ro(a, path, target);
    } else if (S_ISLNK(st.st_mode) &&
               (n = readlink(path, link, sizeof link - 1)) > 0) {
      link[n] = '\0';
      sbx_args_add(a, "--symlink");
      sbx_args_add(a, link);
      sbx_args_add(a, target);
    }
  }
  snprintf(path, sizeof path, "%s/etc", base);
  bind_ro(a, path, "/etc");
  snprintf(path, sizeof path, "%s/opt", base);
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    bind_ro(a, path, "/opt");
  free(base);
  return AC_OK;
}

void sbx_image_unpublish_all(struct sbx_runtime *rt) {
  DIR *d;
  struct dirent *e;
  if (rt->pub == NULL || (d = opendir(rt->pub)) == NULL)
    return;
  while ((e = readdir(d)) != NULL) {
    char *p;
    if (strncmp(e->d_name, "img-", 4) != 0)
      continue;
    if ((p = sbxu_join(rt->pub, e->d_name)) != NULL) {
      umount2(p, MNT_DETACH);
      rmdir(p);
    }
    free(p);
  }
  closedir(d);
}
