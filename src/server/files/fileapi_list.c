/*
** fileapi_list.c -- the direct children of a directory, sorted bytewise.
**
** A directory can hold millions of entries, so memory and time stay
** bounded by max_entries: the scan keeps only the max_entries smallest
** names in a max-heap (the largest kept name on top), and stats an entry
** only when it would be kept. The result is the first max_entries names of
** the fully sorted listing.
*/
#include "fileapi_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct heap {
  struct fapi_entry *v;
  size_t n, cap, max;
};

static void heap_swap(struct heap *h, size_t a, size_t b) {
  struct fapi_entry t = h->v[a];
  h->v[a] = h->v[b];
  h->v[b] = t;
}

static void heap_up(struct heap *h, size_t i) {
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (strcmp(h->v[parent].name, h->v[i].name) >= 0)
      break;
    heap_swap(h, parent, i);
    i = parent;
  }
}

static void heap_down(struct heap *h, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, big = i;
    if (l < h->n && strcmp(h->v[l].name, h->v[big].name) > 0)
      big = l;
    if (r < h->n && strcmp(h->v[r].name, h->v[big].name) > 0)
      big = r;
    if (big == i)
      break;
    heap_swap(h, i, big);
    i = big;
  }
}

/* A free slot for one more entry (grown as needed, never beyond max). */
static struct fapi_entry *heap_slot(struct heap *h) {
  if (h->n == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 64;
    struct fapi_entry *v;
    if (cap > h->max)
      cap = h->max;
    v = realloc(h->v, cap * sizeof *v);
    if (v == NULL)
      return NULL;
    h->v = v;
    h->cap = cap;
  }
  return &h->v[h->n];
}

static void entry_fill(struct fapi_entry *e, const char *name, size_t len,
                       const struct stat *st) {
  memcpy(e->name, name, len + 1);
  e->size = (long long)st->st_size;
  e->mode = st->st_mode;
  e->mtime = st->st_mtim;
}

static int entry_cmp(const void *a, const void *b) {
  return strcmp(((const struct fapi_entry *)a)->name,
                ((const struct fapi_entry *)b)->name);
}

/* Reads every entry of dir into h. *truncated when one was left out. */
static enum ac_code scan(DIR *dir, int dfd, struct heap *h, int *truncated,
                         struct ac_error *err) {
  struct dirent *de;
  struct stat st;

  for (;;) {
    const char *name;
    size_t len;

    errno = 0;
    de = readdir(dir);
    if (de == NULL)
      break;
    name = de->d_name;
    /* Every entry is listed, whatever its name: sandboxed code must not
    ** be able to hide a file from the agent. */
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
      continue;
    len = strlen(name);
    if (len > FAPI_NAME_MAX)
      continue;
    /* Full, and not smaller than the largest kept name: left out. */
    if (h->n == h->max &&
        (h->max == 0 || strcmp(name, h->v[0].name) >= 0)) {
      *truncated = 1;
      continue;
    }
    /* Entries that vanish or cannot be stat'ed are skipped, as PicoD. */
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
      continue;
    if (h->n == h->max) {
      /* Replace the largest kept name. */
      *truncated = 1;
      entry_fill(&h->v[0], name, len, &st);
      heap_down(h, 0);
    } else {
      struct fapi_entry *e = heap_slot(h);
      if (e == NULL)
        return ac_error_set(err, AC_ENOMEM, "out of memory");
      entry_fill(e, name, len, &st);
      h->n++;
      heap_up(h, h->n - 1);
    }
  }
  if (errno != 0)
    return ac_error_errno(err, AC_ESYSTEM, errno,
                          "Failed to read directory");
  return AC_OK;
}

enum ac_code fapi_list(const struct fapi_root *root, const char *path,
                       size_t max_entries, struct fapi_entry **entries,
                       size_t *count, int *truncated, struct ac_error *err) {
  enum ac_code rc = AC_OK;
  struct fapi_creds cr;
  struct fapi_path p;
  struct heap h = { NULL, 0, 0, max_entries };
  struct stat st;
  char proc[40];
  DIR *dir = NULL;
  int pfd = -1, dfd = -1, dirdup = -1;

  *entries = NULL;
  *count = 0;
  *truncated = 0;
  fapi__creds_init(&cr);
  rc = fapi__path_parse(path, &p, err);
  if (rc)
    goto out;
  rc = fapi__creds_enter(root, &cr, err);
  if (rc)
    goto out;
  /* O_PATH first: a FIFO or device is never opened, only refused. */
  pfd = fapi__open_in_root(root->rootfd, p.abs + 1, O_PATH);
  if (pfd < 0 || fstat(pfd, &st) != 0) {
    rc = fapi__errno(err, errno, "Directory", path ? path : "");
    goto out;
  }
  if (!S_ISDIR(st.st_mode)) {
    rc = ac_error_set(err, AC_EINVAL, "Path is not a directory");
    goto out;
  }
  /* Reading the directory needs the session's read permission: reopen
  ** exactly this inode through /proc (or, without /proc, look it up once
  ** more and require the same inode). */
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", pfd);
  dfd = open(proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
  if (dfd < 0 && errno == ENOENT)
    dfd = fapi__open_in_root(root->rootfd, p.abs + 1,
                             O_RDONLY | O_DIRECTORY | O_NONBLOCK);
  if (dfd >= 0) {
    struct stat st2;
    if (fstat(dfd, &st2) != 0 || st2.st_dev != st.st_dev ||
        st2.st_ino != st.st_ino) {
      close(dfd);
      dfd = -1;
      errno = ESTALE;
    }
  }
  if (dfd < 0) {
    rc = fapi__errno(err, errno, "Directory", path ? path : "");
    goto out;
  }
  /* fdopendir takes over the fd it gets; fstatat keeps using dfd. */
  dirdup = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
  if (dirdup >= 0)
    dir = fdopendir(dirdup);
  if (dir == NULL) {
    rc = fapi__errno(err, errno, "Directory", path ? path : "");
    goto out;
  }
  dirdup = -1;
  rc = scan(dir, dfd, &h, truncated, err);
  if (rc)
    goto out;
  /* Never NULL on success, even for an empty directory. (Checked before
  ** qsort, whose pointer argument glibc declares non-null.) */
  if (h.v == NULL) {
    h.v = malloc(sizeof *h.v);
    if (h.v == NULL) {
      rc = ac_error_set(err, AC_ENOMEM, "out of memory");
      goto out;
    }
  }
  qsort(h.v, h.n, sizeof *h.v, entry_cmp);
  *entries = h.v;
  *count = h.n;
  h.v = NULL;
out:
  fapi__creds_leave(&cr);
  if (dir)
    closedir(dir);
  if (dirdup >= 0)
    close(dirdup);
  if (dfd >= 0)
    close(dfd);
  if (pfd >= 0)
    close(pfd);
  free(h.v);
  return rc;
}
