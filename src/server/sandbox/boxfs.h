/*
** boxfs.h -- a box's persistent filesystem.
**
** bwrap runs as the session uid and resolves every bind source by path
** (it realpath()s even --bind-fd sources), so the session trees must be
** reachable by a path the session uid can search -- while the box
** directory may sit in a private state directory (0700, under /root).
** Root servers therefore *publish* each box under a world-searchable
** directory of the runtime (pub, e.g. /run/agentcube/<hash>, 0711):
**
**   <pub>/<name>/            0710 root:gid the image's mount point, or a bind
**                                       mount of <dir>/root (plain boxes)
**   <pub>/<name>/workspace   0700 uid
**   <pub>/<name>/tmp         1777 uid
**   <pub>/<name>/home        0711 root
**   <pub>/<name>/home/sandbox 0700 uid
**   <pub>/<name>/.agentcube  0700 root  the uploads' staging directory,
**   <pub>/<name>/.agentcube/uploads 0700 uid  never bound into the box
**                                       (FAPI_STAGE_DIR, fileapi.h)
**
** and the box directory holds:
**
**   <dir>/            0700 root (0711 without pub)
**   <dir>/disk.img    0600 root  sparse ext4 image (quota), image boxes
**   <dir>/root/       0710 root:gid the trees of a plain box (no quota)
**   <dir>/box.info    0644 root  written last: "the box is complete"
**
** Without pub (an unprivileged server, whose uid is the sandbox's, or a
** root server without /run) the trees live at <dir>/root and the image, if
** any, is mounted there. The session uid can traverse the tree root but
** cannot list or change it, so it can never swap workspace/ for a symlink.
*/
#ifndef AGENTCUBE_BOXFS_H
#define AGENTCUBE_BOXFS_H

#include "ac_error.h"

#include <sys/types.h>

struct boxfs {
  char *dir;        /* absolute box directory, malloc'd */
  char *root;       /* where the trees are: <pub>/<name> or <dir>/root */
  char *mnt_parent; /* root's parent directory (pub or dir), malloc'd */
  int published;    /* root is <pub>/<name> */
  int image;        /* 1: loop-mounted ext4 image */
  int rootfd;       /* O_PATH|O_DIRECTORY fd of root, or -1 */
  int wsfd;         /* O_PATH fds of root/workspace, root/tmp and */
  int tmpfd;        /* root/home/sandbox, bound into the sandbox with */
  int homefd;       /* bwrap --bind-fd; or -1 */
  uid_t uid;        /* owner of the session trees */
  gid_t gid;
};

/* Creates a new box in dir, which must not exist (AC_EEXIST otherwise).
** pub/name: where to publish it (pub NULL: not published). chown_ids: 1
** when running as root (trees owned by uid/gid). disk_bytes > 0 makes an
** image of that size formatted with mkfs (the path of mkfs.ext4), else a
** plain directory. On failure nothing is left behind. */
enum ac_code boxfs_create(const char *dir, const char *pub, const char *name,
                          int chown_ids, uid_t uid, gid_t gid,
                          unsigned long long disk_bytes, const char *mkfs,
                          struct boxfs *out, struct ac_error *err);

/* Re-attaches to a complete box: reuses a mount that is still there (after
** a crash) or mounts again, then sweeps what crashed uploads left
** (fapi_sweep: the staging directory, and once per box the temporary
** files of earlier versions). AC_ENOTFOUND when dir holds no complete box;
** AC_EINVAL when it belongs to another uid. */
enum ac_code boxfs_open(const char *dir, const char *pub, const char *name,
                        int chown_ids, uid_t uid, struct boxfs *out,
                        struct ac_error *err);

/* Closes the fds and unpublishes/unmounts the box (a loop device detaches
** itself); the files stay. Frees the strings. */
void boxfs_close(struct boxfs *fs);

/* Unmounts and deletes the whole box, then frees the strings. Never
** crosses into another filesystem. */
enum ac_code boxfs_remove(struct boxfs *fs, struct ac_error *err);

/* boxfs_remove for a box without a handle (no box.info needed): unmounts
** <pub>/<name> (pub may be NULL), deletes dir. Missing parts are fine. */
enum ac_code boxfs_purge(const char *dir, const char *pub, const char *name,
                         struct ac_error *err);

/* Deletes a directory tree that holds no mount (the /etc snapshot). A
** missing dir is fine. */
enum ac_code boxfs_rmtree(const char *dir, struct ac_error *err);

/* Loop device minor of the mounted image, or -1 (for tests and --check). */
int boxfs_loop_minor(const struct boxfs *fs);

#endif
