/*
** image_store.c -- the image store on disk: building into a private
** directory renamed into place, locking, users, listing and removal.
**
** Why a rename: a reader (a box, `image ls`) sees an image complete or
** not at all, whatever happens to the build (crash, Ctrl-C, apt error).
** Why flock: two builders of one image (two servers, two shells) must
** not both write it; the second waits and then finds it built. Locks go
** away with their process, so a killed build blocks nobody.
*/
#include "image.h"
#include "image_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

static int on_demand;

void img_set_build_on_demand(int on) {
  on_demand = on;
}

/* {====================================================== trees */

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *f) {
  (void)st;
  (void)f;
  if (flag == FTW_DP)
    rmdir(path);
  else
    unlink(path);
  return 0;
}

/* Mounts below dir (a killed mmdebstrap may leave proc, sys, dev binds),
** deepest first. */
static void detach_mounts(const char *dir) {
  FILE *f = fopen("/proc/self/mountinfo", "r");
  char line[8192], mp[4096];
  char *list[256];
  size_t n = 0, dlen = strlen(dir);
  if (f == NULL)
    return;
  while (n < 256 && fgets(line, sizeof line, f))
    if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 &&
        strncmp(mp, dir, dlen) == 0 && mp[dlen] == '/')
      list[n++] = strdup(mp);
  fclose(f);
  while (n > 0) {
    char *p = list[--n];
    if (p)
      umount2(p, MNT_DETACH);
    free(p);
  }
}

int img_rmtree(const char *dir) {
  struct stat st;
  if (lstat(dir, &st) < 0)
    return errno == ENOENT ? 0 : -1;
  if (geteuid() == 0)
    detach_mounts(dir);
  /* make every directory writable first (cp -a of a read-only tree) */
  nftw(dir, rm_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
  return lstat(dir, &st) < 0 && errno == ENOENT ? 0 : -1;
}

static unsigned long long tree_bytes;

static int add_size(const char *path, const struct stat *st, int flag,
                    struct FTW *f) {
  (void)path;
  (void)flag;
  (void)f;
  tree_bytes += (unsigned long long)st->st_blocks * 512;
  return 0;
}

unsigned long long img_tree_size(const char *dir) {
  tree_bytes = 0;
  nftw(dir, add_size, 32, FTW_PHYS | FTW_MOUNT);
  return tree_bytes;
}

/* }====================================================== */

/* {====================================================== locks, users */

static char *path2(const char *a, const char *b, const char *c) {
  size_t n = strlen(a) + strlen(b) + strlen(c) + 2;
  char *p = malloc(n);
  if (p)
    snprintf(p, n, "%s/%s%s", a, b, c);
  return p;
}

int img_lock(const char *store, const char *id, int op) {
  char *p = path2(store, id, ".lock");
  int fd, e;
  if (p == NULL)
    return -1;
  fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  free(p);
  if (fd < 0)
    return -1;
  while (flock(fd, op) < 0) {
    if (errno == EINTR && !img_interrupted)
      continue;
    e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

static FILE *fopen_at(int dfd, const char *name) {
  int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
  if (f == NULL && fd >= 0)
    close(fd);
  return f;
}

static void box_key(const char *box_dir, char out[17]) {
  uint64_t h = 1469598103934665603ULL;            /* FNV-1a */
  for (const unsigned char *p = (const unsigned char *)box_dir; *p; p++)
    h = (h ^ *p) * 1099511628211ULL;
  snprintf(out, 17, "%016llx", (unsigned long long)h);
}

unsigned img_users(const char *store, const char *id) {
  char *udir = path2(store, id, ".users");
  DIR *d = udir ? opendir(udir) : NULL;
  struct dirent *e;
  unsigned n = 0;
  if (d == NULL) {
    free(udir);
    return 0;
  }
  while ((e = readdir(d)) != NULL) {
    char box[4200] = "";
    struct stat st;
    FILE *f;
    if (e->d_name[0] == '.')
      continue;
    if ((f = fopen_at(dirfd(d), e->d_name)) != NULL) {
      if (fgets(box, sizeof box, f) == NULL)
        box[0] = '\0';
      fclose(f);
    }
    if (box[0] && stat(box, &st) == 0)
      n++;
    else
      unlinkat(dirfd(d), e->d_name, 0);   /* its box is gone */
  }
  closedir(d);
  free(udir);
  return n;
}

/* The box stops being a user of every other image (a slot's directory is
** reused by boxes of other templates). */
static void forget_box(const char *store, const char *key, const char *id) {
  DIR *d = opendir(store);
  struct dirent *e;
  size_t idlen = strlen(id);
  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    char *p;
    if (n < 7 || strcmp(e->d_name + n - 6, ".users") != 0 ||
        (n - 6 == idlen && strncmp(e->d_name, id, idlen) == 0))
      continue;
    if ((p = path2(store, e->d_name, "")) != NULL) {
      char *f = path2(p, key, "");
      if (f)
        unlink(f);
      free(f);
    }
    free(p);
  }
  closedir(d);
}

int img_is_built(const struct img_spec *s) {
  char *p = path2(s->store, s->id, "/image.json");
  struct stat st;
  int ok = p && stat(p, &st) == 0;
  free(p);
  return ok;
}

static enum ac_code not_built(const struct img_spec *s,
                              struct ac_error *err) {
  char what[160];
  img_spec_describe(s, what, sizeof what);
  return ac_error_set(err, AC_ECONFIG,
                      "template '%s': image %s is not built; run: agentcube "
                      "image build%s%s --image-dir %s %s", s->template_name,
                      s->id, s->config_path ? " --config " : "",
                      s->config_path ? s->config_path : "", s->store,
                      s->template_name);
}

enum ac_code img_use(const struct img_spec *s, const char *box_dir,
                     struct ac_error *err) {
  char key[17], *udir = NULL, *entry = NULL;
  enum ac_code rc = AC_OK;
  int lock, fd;

  if (s == NULL)
    return AC_OK;
  if (!img_is_built(s)) {
    int built;
    if (!on_demand)
      return not_built(s, err);
    rc = img_build(s, stderr, 0, &built, err);
    if (rc)
      return rc;
  }
  lock = img_lock(s->store, s->id, LOCK_SH | LOCK_NB);
  if (lock < 0)
    return ac_error_set(err, AC_ECONFIG, "template '%s': image %s is being "
                        "built or removed right now; try again when that is "
                        "done", s->template_name, s->id);
  if (!img_is_built(s)) {          /* removed before we got the lock */
    close(lock);
    return not_built(s, err);
  }
  box_key(box_dir, key);
  forget_box(s->store, key, s->id);
  udir = path2(s->store, s->id, ".users");
  entry = udir ? path2(udir, key, "") : NULL;
  if (entry == NULL) {
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    goto out;
  }
  if (mkdir(udir, 0755) < 0 && errno != EEXIST) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "images: mkdir %s", udir);
    goto out;
  }
  fd = open(entry, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
            0644);
  if (fd < 0 || write(fd, box_dir, strlen(box_dir)) !=
                (ssize_t)strlen(box_dir)) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "images: writing %s", entry);
    unlink(entry);
  }
  if (fd >= 0)
    close(fd);
out:
  free(entry);
  free(udir);
  close(lock);
  return rc;
}

/* }====================================================== */

/* {====================================================== building */

static enum ac_code write_info(const struct img_spec *s, const char *dir,
                               double secs, unsigned long long size,
                               struct ac_error *err) {
  char what[512], *p = path2(dir, "image.json", "");
  json_t *j;
  int bad;
  img_spec_describe(s, what, sizeof what);
  j = json_pack("{s:s, s:s, s:I, s:f, s:I}", "id", s->id, "source", what,
                "built_at", (json_int_t)time(NULL), "build_seconds", secs,
                "size", (json_int_t)size);
  bad = p == NULL || j == NULL || json_dump_file(j, p, JSON_INDENT(2)) != 0;
  json_decref(j);
  free(p);
  return bad ? ac_error_set(err, AC_ESYSTEM, "images: cannot write "
                            "image.json in %s", dir) : AC_OK;
}

static char *cat2(const char *a, const char *b) {
  char *p = malloc(strlen(a) + strlen(b) + 1);
  if (p)
    sprintf(p, "%s%s", a, b);
  return p;
}

static char *join_packages(char *const *pk) {
  size_t n = 1;
  char *out;
  for (size_t i = 0; pk[i]; i++)
    n += strlen(pk[i]) + 1;
  if ((out = calloc(1, n)) == NULL)
    return NULL;
  for (size_t i = 0; pk[i]; i++) {
    if (i)
      strcat(out, ",");
    strcat(out, pk[i]);
  }
  return out;
}

static enum ac_code run_builder(const struct img_spec *s, const char *tmp,
                                FILE *out, int tty, struct ac_error *err) {
  char *root = path2(tmp, "rootfs", ""), *bundle = path2(tmp, "bundle", "");
  enum ac_code rc = AC_OK;
  struct stat st;

  if (root == NULL || bundle == NULL) {
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
  } else if (s->kind == IMG_DEBIAN) {
    char *inc = join_packages(s->packages), *incopt = NULL, *archopt = NULL;
    if (inc && (incopt = cat2("--include=", inc)) &&
        (archopt = cat2("--architectures=", s->arch))) {
      char *argv[] = {
        "mmdebstrap", "--variant=essential", incopt, archopt,
        "--verbose",
        /* what is asked for and what it depends on; Recommends would
        ** pull in scipy and sympy for pandas, tk for matplotlib */
        "--aptopt=APT::Install-Recommends \"false\"",
        /* documentation and translations are of no use in a sandbox */
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        "--dpkgopt=path-exclude=/usr/share/info/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        s->suite, root, s->mirror, NULL,
      };
      rc = img_run_tool(argv, "mmdebstrap", out, tty, err);
    } else {
      rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    }
    free(inc);
    free(incopt);
    free(archopt);
  } else if (s->kind == IMG_ROOTFS) {
    char *src = path2(s->dir, ".", "");
    if (stat(s->dir, &st) < 0 || !S_ISDIR(st.st_mode))
      rc = ac_error_errno(err, AC_ENOTFOUND, errno ? errno : ENOTDIR,
                          "image rootfs %s", s->dir);
    else if (src == NULL || mkdir(root, 0755) < 0)
      rc = ac_error_errno(err, AC_ESYSTEM, errno, "images: mkdir %s", root);
    else {
      char *argv[] = { "cp", "-a", "--reflink=auto", "--no-preserve=links",
                       src, root, NULL };
      rc = img_run_tool(argv, "copying", out, tty, err);
    }
    free(src);
  } else {
    char *ref = malloc(strlen(s->dir) + strlen(s->tag) + 2);
    if (stat(s->dir, &st) < 0 || !S_ISDIR(st.st_mode))
      rc = ac_error_errno(err, AC_ENOTFOUND, errno ? errno : ENOTDIR,
                          "image oci layout %s", s->dir);
    else if (ref == NULL)
      rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    else {
      sprintf(ref, "%s:%s", s->dir, s->tag);
      char *argv[] = { "umoci", "unpack", "--image", ref, bundle, NULL,
                       NULL };
      if (geteuid() != 0) {
        argv[1] = "unpack";
        argv[2] = "--rootless";
        argv[3] = "--image";
        argv[4] = ref;
        argv[5] = bundle;
      }
      rc = img_run_tool(argv, "umoci unpack", out, tty, err);
      if (rc == AC_OK) {
        char *br = path2(bundle, "rootfs", "");
        if (br == NULL || rename(br, root) < 0)
          rc = ac_error_errno(err, AC_ESYSTEM, errno, "images: %s", bundle);
        free(br);
        img_rmtree(bundle);
      }
    }
    free(ref);
  }
  free(root);
  free(bundle);
  return rc;
}

static int mkdir_p(const char *dir) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", dir);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      if (mkdir(buf, 0755) < 0 && errno != EEXIST)
        return -1;
      *p = '/';
    }
  return mkdir(buf, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

enum ac_code img_build(const struct img_spec *s, FILE *out, int tty,
                       int *built, struct ac_error *err) {
  char pid[32], *tmp = NULL, *final = NULL, *root = NULL;
  enum ac_code rc = AC_OK;
  double t0 = now_s();
  int lock;

  *built = 0;
  if (mkdir_p(s->store) < 0)
    return ac_error_errno(err, AC_ESYSTEM, errno, "images: mkdir %s",
                          s->store);
  img_store_sweep(s->store);
  lock = img_lock(s->store, s->id, LOCK_EX | LOCK_NB);
  if (lock < 0 && errno == EWOULDBLOCK) {
    if (out)
      fprintf(out, "%s: waiting for another build of this image\n", s->id);
    lock = img_lock(s->store, s->id, LOCK_EX);
  }
  if (lock < 0)
    return img_interrupted
           ? ac_error_set(err, AC_EINTERRUPTED, "interrupted")
           : ac_error_errno(err, AC_ESYSTEM, errno, "images: locking %s/%s",
                            s->store, s->id);
  if (img_is_built(s))
    goto out;                        /* built already: nothing to do */
  snprintf(pid, sizeof pid, "-%ld", (long)getpid());
  tmp = malloc(strlen(s->store) + strlen(s->id) + 40);
  final = path2(s->store, s->id, "");
  if (tmp == NULL || final == NULL) {
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    goto out;
  }
  sprintf(tmp, "%s/.build-%s%s", s->store, s->id, pid);
  root = path2(tmp, "rootfs", "");
  img_rmtree(tmp);
  img_rmtree(final);                 /* a directory without image.json */
  if (root == NULL || mkdir(tmp, 0755) < 0) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "images: mkdir %s", tmp);
    goto out;
  }
  rc = run_builder(s, tmp, out, tty, err);
  if (rc == AC_OK && img_interrupted)
    rc = ac_error_set(err, AC_EINTERRUPTED, "interrupted");
  if (rc == AC_OK)
    rc = img_finalize_etc(root, err);
  if (rc == AC_OK)
    rc = write_info(s, tmp, now_s() - t0, img_tree_size(root), err);
  if (rc == AC_OK && rename(tmp, final) < 0)
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "images: rename to %s",
                        final);
  if (rc == AC_OK)
    *built = 1;
  else
    img_rmtree(tmp);
out:
  free(tmp);
  free(final);
  free(root);
  close(lock);
  return rc;
}

/* }====================================================== */

/* {====================================================== the store */

static int pid_gone(const char *name) {
  const char *dash = strrchr(name, '-');
  long pid = dash ? strtol(dash + 1, NULL, 10) : 0;
  return pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

void img_store_sweep(const char *store) {
  DIR *d = opendir(store);
  struct dirent *e;
  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL) {
    if ((strncmp(e->d_name, ".build-", 7) == 0 ||
         strncmp(e->d_name, ".trash-", 7) == 0) && pid_gone(e->d_name)) {
      char *p = path2(store, e->d_name, "");
      if (p)
        img_rmtree(p);
      free(p);
    }
  }
  closedir(d);
}

static int cmp_info(const void *a, const void *b) {
  return strcmp(((const struct img_info *)a)->id,
                ((const struct img_info *)b)->id);
}

enum ac_code img_store_list(const char *store, struct img_info **out,
                            size_t *n, struct ac_error *err) {
  DIR *d = opendir(store);
  struct dirent *e;
  size_t cap = 0;
  *out = NULL;
  *n = 0;
  if (d == NULL)
    return errno == ENOENT ? AC_OK
           : ac_error_errno(err, AC_ESYSTEM, errno, "images: %s", store);
  while ((e = readdir(d)) != NULL) {
    char *p;
    json_t *j;
    struct img_info *i;
    if (e->d_name[0] == '.' || strchr(e->d_name, '.') ||
        strlen(e->d_name) >= sizeof i->id)
      continue;
    p = path2(store, e->d_name, "/image.json");
    j = p ? json_load_file(p, 0, NULL) : NULL;
    free(p);
    if (j == NULL)
      continue;                       /* not complete */
    if (*n == cap) {
      struct img_info *g = realloc(*out, (cap = cap ? cap * 2 : 8) *
                                         sizeof *g);
      if (g == NULL) {
        json_decref(j);
        closedir(d);
        return ac_error_set(err, AC_ENOMEM, "out of memory");
      }
      *out = g;
    }
    i = &(*out)[(*n)++];
    memset(i, 0, sizeof *i);
    memcpy(i->id, e->d_name, strlen(e->d_name) + 1);
    snprintf(i->source, sizeof i->source, "%s",
             json_string_value(json_object_get(j, "source")) ?
             json_string_value(json_object_get(j, "source")) : "");
    i->size = (unsigned long long)json_integer_value(json_object_get(j,
                                                                     "size"));
    i->built_at = (time_t)json_integer_value(json_object_get(j,
                                                             "built_at"));
    i->build_seconds = json_number_value(json_object_get(j,
                                                         "build_seconds"));
    i->users = img_users(store, i->id);
    json_decref(j);
  }
  closedir(d);
  if (*n)
    qsort(*out, *n, sizeof **out, cmp_info);
  return AC_OK;
}

enum ac_code img_store_remove(const char *store, const char *id,
                              struct ac_error *err) {
  char *final = path2(store, id, ""), *trash = NULL, *users = NULL;
  enum ac_code rc = AC_OK;
  unsigned n;
  struct stat st;
  int lock;

  if (final == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  if (strchr(id, '/') || id[0] == '.' || lstat(final, &st) < 0) {
    free(final);
    return ac_error_set(err, AC_ENOTFOUND, "no image %s in %s", id, store);
  }
  lock = img_lock(store, id, LOCK_EX | LOCK_NB);
  if (lock < 0) {
    free(final);
    return ac_error_set(err, AC_EBUSY, "image %s is being built or used "
                        "by a session being created", id);
  }
  if ((n = img_users(store, id)) > 0) {
    rc = ac_error_set(err, AC_EBUSY, "image %s is in use by %u session%s",
                      id, n, n == 1 ? "" : "s");
    goto out;
  }
  trash = malloc(strlen(store) + strlen(id) + 40);
  users = path2(store, id, ".users");
  if (trash == NULL || users == NULL) {
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    goto out;
  }
  sprintf(trash, "%s/.trash-%s-%ld", store, id, (long)getpid());
  if (rename(final, trash) < 0) {
    rc = ac_error_errno(err, AC_ESYSTEM, errno, "images: rename %s", final);
    goto out;
  }
  img_rmtree(trash);
  img_rmtree(users);
out:
  free(final);
  free(trash);
  free(users);
  close(lock);
  return rc;
}

/* }====================================================== */
