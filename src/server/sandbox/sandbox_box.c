/*
** sandbox_box.c -- a session's box: its filesystem (boxfs), its cgroups,
** and the bookkeeping that lets close/destroy stop running commands.
*/
#include "sandbox.h"
#include "sandbox_int.h"
#include "sandbox_net.h"
#include "sandbox_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static struct sbx_box *box_alloc(struct sbx_runtime *rt,
                                 const struct sbx_limits *limits) {
  static const pthread_mutex_t mu0 = PTHREAD_MUTEX_INITIALIZER;
  static const pthread_cond_t cv0 = PTHREAD_COND_INITIALIZER;
  struct sbx_box *box = calloc(1, sizeof *box);
  if (box == NULL)
    return NULL;
  /* the default initializers, which cannot fail */
  box->mu = mu0;
  box->cv = cv0;
  if (sbx_live_box_init(box) < 0) {
    free(box);
    return NULL;
  }
  box->rt = rt;
  box->fs.rootfd = -1;
  if (limits)
    box->limits = *limits;
  return box;
}

static void box_free(struct sbx_box *box) {
  sbx_live_box_fini(box);
  pthread_cond_destroy(&box->cv);
  pthread_mutex_destroy(&box->mu);
  free(box->prefix);
  free(box);
}

/* The box's name (its cgroups, its published directory): derived from
** its absolute directory, so that a restarted server finds the same ones.
** dir need not exist yet (create) or any more (purge). */
static int box_name(const char *dir_in, char *out, size_t size) {
  char *dir = strdup(dir_in), *abs, *slash, *parent;
  size_t n;
  if (dir == NULL)
    return -1;
  for (n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--)
    dir[n - 1] = '\0';                  /* "box/" is "box" */
  abs = realpath(dir, NULL);
  if (abs == NULL && errno == ENOENT && (slash = strrchr(dir, '/')) &&
      slash[1] != '\0') {
    char *pdir = slash == dir ? strdup("/") : strndup(dir,
                                                      (size_t)(slash - dir));
    parent = pdir ? realpath(pdir, NULL) : NULL;
    if (parent)
      abs = sbxu_fmt("%s%s%s", parent, strcmp(parent, "/") ? "/" : "",
                     slash + 1);
    else if (dir[0] == '/')
      abs = strdup(dir);
    free(parent);
    free(pdir);
  } else if (abs == NULL && errno == ENOENT && dir[0] != '\0' &&
             strchr(dir, '/') == NULL) {
    char *cwd = realpath(".", NULL);
    abs = cwd ? sbxu_fmt("%s/%s", cwd, dir) : NULL;
    free(cwd);
  }
  free(dir);
  if (abs == NULL)
    return -1;
  snprintf(out, size, "box-%016llx", (unsigned long long)sbxu_hash(abs));
  free(abs);
  return 0;
}

/* Cgroups and bwrap prefix, once the filesystem is in place. */
static enum ac_code box_finish(struct sbx_box *box, struct ac_error *err) {
  const struct sbx_limits *l = &box->limits;
  enum ac_code rc;
  rc = cg_box_open(&box->rt->cg, box->cgname, l->memory_bytes, l->pids,
                   l->cpu_millis, &box->cg, err);
  if (rc)
    return rc;
  rc = sbx_prefix_build(box, err);
  if (rc)
    cg_box_remove(&box->rt->cg, &box->cg);
  return rc;
}

static enum ac_code check_uid(const struct sbx_runtime *rt, uid_t uid,
                              struct ac_error *err) {
  if (rt->root && (uid == 0 || uid == (uid_t)-1))
    return ac_error_set(err, AC_EINVAL, "sandbox: session uid must not be "
                        "%ld", (long)(int)uid);
  return AC_OK;
}

enum ac_code sbx_box_create(struct sbx_runtime *rt, const char *dir,
                            uid_t uid, const struct sbx_limits *limits,
                            struct sbx_box **out, struct ac_error *err) {
  struct sbx_box *box;
  unsigned long long disk = 0;
  enum ac_code rc;

  *out = NULL;
  rc = sbx_runtime_usable(rt, err);
  if (rc == AC_OK)
    rc = check_uid(rt, uid, err);
  if (rc)
    return rc;
  box = box_alloc(rt, limits);
  if (box == NULL)
    return ac_error_set(err, AC_ENOMEM, "sandbox: out of memory");
  /* A quota needs root, loop devices and mkfs; without them the box is a
  ** plain directory (sbx_runtime_report says so). */
  if (rt->root && rt->loop_ok && rt->mkfs[0])
    disk = box->limits.disk_bytes;
  if (box_name(dir, box->cgname, sizeof box->cgname) < 0) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "sandbox: %s", dir);
    box_free(box);
    return rc;
  }
  rc = boxfs_create(dir, rt->pub, box->cgname, rt->root, uid, (gid_t)uid,
                    disk, rt->mkfs, &box->fs, err);
  if (rc) {
    box_free(box);
    return rc;
  }
  rc = box_finish(box, err);
  if (rc == AC_OK && (rc = sbx_net_box_start(box, err)) != AC_OK)
    cg_box_remove(&rt->cg, &box->cg);
  if (rc) {
    boxfs_remove(&box->fs, NULL);
    box_free(box);
    return rc;
  }
  sbx_live_box_warm(box);
  *out = box;
  return AC_OK;
}

enum ac_code sbx_box_open(struct sbx_runtime *rt, const char *dir,
                          uid_t uid, const struct sbx_limits *limits,
                          struct sbx_box **out, struct ac_error *err) {
  struct sbx_box *box;
  enum ac_code rc;

  *out = NULL;
  rc = sbx_runtime_usable(rt, err);
  if (rc == AC_OK)
    rc = check_uid(rt, uid, err);
  if (rc)
    return rc;
  box = box_alloc(rt, limits);
  if (box == NULL)
    return ac_error_set(err, AC_ENOMEM, "sandbox: out of memory");
  if (box_name(dir, box->cgname, sizeof box->cgname) < 0) {
    rc = ac_error_errno(err, errno == ENOENT ? AC_ENOTFOUND : AC_ESYSTEM,
                        errno, "sandbox: %s", dir);
    box_free(box);
    return rc;
  }
  rc = boxfs_open(dir, rt->pub, box->cgname, rt->root, uid, &box->fs, err);
  if (rc) {
    box_free(box);
    return rc;
  }
  rc = box_finish(box, err);
  if (rc == AC_OK && (rc = sbx_net_box_start(box, err)) != AC_OK)
    cg_box_remove(&rt->cg, &box->cg);
  if (rc) {
    boxfs_close(&box->fs);
    box_free(box);
    return rc;
  }
  sbx_live_box_warm(box);
  *out = box;
  return AC_OK;
}

void sbx_box_kill(struct sbx_box *box) {
  if (box == NULL)
    return;
  sbx_live_box_kill(box);
}

/* Refuses new commands, takes the live sandbox down (every command in
** flight ends) and waits until every task is released; then removes the
** box's cgroups, killing anything left. */
static void box_stop(struct sbx_box *box) {
  pthread_mutex_lock(&box->mu);
  box->closing = 1;
  pthread_mutex_unlock(&box->mu);
  sbx_live_box_stop(box);
  pthread_mutex_lock(&box->mu);
  while (box->running > 0)
    pthread_cond_wait(&box->cv, &box->mu);
  pthread_mutex_unlock(&box->mu);
  sbx_net_box_stop(box);
  cg_box_remove(&box->rt->cg, &box->cg);
}

void sbx_box_close(struct sbx_box *box) {
  if (box == NULL)
    return;
  box_stop(box);
  boxfs_close(&box->fs);
  box_free(box);
}

void sbx_box_destroy(struct sbx_box *box) {
  if (box == NULL)
    return;
  box_stop(box);
  boxfs_remove(&box->fs, NULL);
  box_free(box);
}

int sbx_box_rootfd(const struct sbx_box *box) {
  return box->fs.rootfd;
}

uid_t sbx_box_uid(const struct sbx_box *box) {
  return box->fs.uid;
}

gid_t sbx_box_gid(const struct sbx_box *box) {
  return box->fs.gid;
}

const char *sbx_box_dir(const struct sbx_box *box) {
  return box->fs.dir;
}

enum ac_code sbx_box_purge(struct sbx_runtime *rt, const char *dir,
                           struct ac_error *err) {
  char name[32];
  if (box_name(dir, name, sizeof name) < 0)
    return errno == ENOENT ? AC_OK
           : ac_error_errno(err, AC_ESYSTEM, errno, "sandbox: %s", dir);
  cg_box_purge(&rt->cg, name);
  return boxfs_purge(dir, rt->pub, name, err);
}
