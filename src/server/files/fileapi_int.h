/*
** fileapi_int.h -- what the fileapi*.c files share and nobody else uses.
**
** fileapi_path.c  lexical cleaning and mapping of client paths
** fileapi_fmt.c   mode strings, mode parsing, RFC 3339 timestamps
** fileapi_sys.c   per-thread credential switching, openat2, errno mapping
** fileapi_walk.c  the openat2 lookups for kernels (or valgrind) without it
** fileapi.c       write, read and mkdirs
** fileapi_list.c  directory listing
** fileapi_stage.c the uploads' staging directory and the crash sweep
*/
#ifndef AGENTCUBE_FILEAPI_INT_H
#define AGENTCUBE_FILEAPI_INT_H

#include "fileapi.h"

#include <stdint.h>
#include <sys/stat.h>

#define FAPI_HIDDEN __attribute__((visibility("hidden")))

/* Longest client path and longest path handed to the kernel (PATH_MAX
** counts the NUL). */
#define FAPI_PATH_MAX 4095
#define FAPI_NAME_MAX 255

/* Temporary upload names start with this (in the staging directory; next
** to the target only in earlier versions, or without a staging dir). */
#define FAPI_TMP_PREFIX ".agentcube-upload-"

/* A client path after cleaning. abs is the sandbox view ("/workspace/a/b",
** "/tmp/x", "/home/sandbox"); abs + 1 is the path below the box root that
** every lookup uses. treelen is the length of the tree part of abs + 1
** ("workspace" 9, "tmp" 3, "home/sandbox" 12), so abs[1 + treelen] is
** either '\0' (the tree itself) or '/'. */
struct fapi_path {
  char abs[FAPI_PATH_MAX + 2];
  size_t len;       /* strlen(abs) */
  size_t treelen;
};

/* Cleans and maps client (NULL counts as ""). AC_EACCESS when it leaves
** the session's trees, AC_EINVAL when too long. */
FAPI_HIDDEN enum ac_code fapi__path_parse(const char *client,
                                          struct fapi_path *p,
                                          struct ac_error *err);

/* 1 when abs (a cleaned sandbox path) lies in one of the session's
** trees; *treelen then gets the tree part's length as in fapi_path. */
FAPI_HIDDEN int fapi__path_in_tree(const char *abs, size_t *treelen);

/* The FileInfo form of a sandbox path: "a/b" or "." inside /workspace,
** the absolute path elsewhere. Fails (-1) when out is too small. */
FAPI_HIDDEN int fapi__path_report(const char *abs, char *out, size_t outsz);

/* Fills info from a stat and the sandbox path (abs) of the file. */
FAPI_HIDDEN void fapi__info_fill(struct fapi_info *info, const char *abs,
                                 const struct stat *st);

/* The saved credentials of the calling thread while it acts as the
** session (see fileapi_sys.c). */
struct fapi_creds {
  int switched;
  int fsuid, fsgid;
  int ngroups;
  gid_t *groups;          /* groups_buf or malloc'd */
  gid_t groups_buf[32];
  uint32_t cap_eff[2];
};

/* The "nothing switched" state, so that leave is always safe. */
static inline void fapi__creds_init(struct fapi_creds *c) {
  c->switched = 0;
  c->ngroups = 0;
  c->groups = c->groups_buf;
}

/* Makes the calling thread act as the session's uid/gid on the filesystem,
** with no supplementary groups and no effective capabilities, when the
** process runs as root; a no-op otherwise. */
FAPI_HIDDEN enum ac_code fapi__creds_enter(const struct fapi_root *root,
                                           struct fapi_creds *c,
                                           struct ac_error *err);
/* Restores what enter saved. Safe after a failed or no-op enter. */
FAPI_HIDDEN void fapi__creds_leave(struct fapi_creds *c);

/* openat2 with EAGAIN and EINTR retried; -1 with errno on failure. */
FAPI_HIDDEN int fapi__openat2(int dirfd, const char *path, int flags,
                              mode_t mode, unsigned long long resolve);

/* The same lookup without openat2, one component at a time (see
** fileapi_walk.c); fapi__openat2 uses it when openat2 gives ENOSYS. */
FAPI_HIDDEN int fapi__walk(int dirfd, const char *path, int flags,
                           mode_t mode, unsigned long long resolve);

/* For tests: 1 makes fapi__openat2 always use fapi__walk. */
FAPI_HIDDEN void fapi__force_walk(int on);
FAPI_HIDDEN int fapi__walk_forced(void);

/* Opens the staging directory below the box root (flags | O_DIRECTORY,
** no symlink followed); -1 with errno when there is none. Needs the
** server's credentials: the session cannot search its parent. */
FAPI_HIDDEN int fapi__open_stage(int rootfd, int flags);

/* openat2(rootfd, rel, flags, IN_ROOT | NO_MAGICLINKS). */
FAPI_HIDDEN int fapi__open_in_root(int rootfd, const char *rel, int flags);

/* What a failed errno means for the client, as a code and message.
** what: "File", "Directory" (for "... not found"); client: the path as
** the client wrote it. */
FAPI_HIDDEN enum ac_code fapi__errno(struct ac_error *err, int errnum,
                                     const char *what, const char *client);

#endif
