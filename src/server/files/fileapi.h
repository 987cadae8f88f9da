/*
** fileapi.h -- the host side of the sandbox file API.
**
** Paths are the client's sandbox paths. A relative path is relative to
** /workspace; an absolute path must lie in one of the session's persistent
** trees (/workspace, /tmp, /home/sandbox), anything else is refused with
** AC_EACCESS. Paths are cleaned lexically first ("a/../b" is fine, "../x"
** escapes and is refused; "//workspace//x/" is "/workspace/x"). Paths over
** 4095 bytes or with a component over 255 bytes are AC_EINVAL.
**
** Every host-side lookup goes through openat2(RESOLVE_IN_ROOT |
** RESOLVE_NO_MAGICLINKS) below the box's root fd, so symlinks planted by
** sandboxed code resolve inside the session's filesystem, never on the host
** (a link to /etc/passwd means <root>/etc/passwd: not found). Where openat2
** answers ENOSYS (Linux < 5.6, valgrind) a component-by-component walk
** with O_NOFOLLOW gives the same confinement (fileapi_walk.c). All
** operations run with the calling thread's fsuid/fsgid switched to the
** session's uid/gid, no supplementary groups and no effective capabilities
** (when the process is root; only for the length of each call, and only on
** the calling thread), so that the quota and file permissions apply and
** root's DAC override is never used on trees the sandbox controls. A root
** process must give a non-zero uid and gid (else AC_ECONFIG). Writes go to
** a temporary file that is renamed into place, so a reader never sees a
** half-written file and a symlink at the target is replaced, not followed.
**
** Errors (err->msg is suitable for the client):
**   AC_EACCESS   path refused ("access denied: path '<p>' is outside the
**                session's workspace"), or permission denied for the
**                session's uid, a /proc magic link, a symlink loop
**   AC_ENOTFOUND "File not found" / "Directory not found"
**   AC_EINVAL    "Path is a directory, not a file", "Path is not a
**                directory", a FIFO/socket/device, a bad or too long path,
**                a non-directory or dangling link where a parent must be
**   AC_ELIMIT    the session's disk is full (ENOSPC, EDQUOT) or the file
**                is over the file size limit (EFBIG)
**   AC_EBUSY     the file changed under us while being opened; retry
**   AC_ENOMEM, AC_ECONFIG (root with uid/gid 0), AC_ESYSTEM
**
** Thread safety: every function may be called from any thread, at the
** same time as others; a writer may move between threads between calls,
** but is used by one thread at a time.
*/
#ifndef AGENTCUBE_FILEAPI_H
#define AGENTCUBE_FILEAPI_H

#include "ac_error.h"

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

/* Where a session's filesystem is, and as whom to touch it. */
struct fapi_root {
  int rootfd;        /* O_PATH dir fd of the box root (sbx_box_rootfd) */
  uid_t uid;         /* session uid/gid; used only when running as root */
  gid_t gid;
};

/* What a file operation reports back (PicoD's FileInfo). */
struct fapi_info {
  char path[4096];   /* workspace-relative inside /workspace ("a/b.txt",
                        "." for /workspace itself), else absolute */
  char name[256];    /* basename of the resolved file (downloads follow
                        symlinks, as PicoD reports the target's name) */
  long long size;
  mode_t mode;       /* st_mode, type bits included */
  struct timespec mtime;
};

/* One entry of a directory listing (PicoD's list item; is_dir is
** S_ISDIR(mode)). */
struct fapi_entry {
  char name[256];
  long long size;    /* lstat size: a symlink's is its target's length */
  mode_t mode;       /* lstat st_mode: symlinks are not followed */
  struct timespec mtime;
};

/* Maps a client path to the path below the box root ("workspace/a/b",
** "tmp/x", "home/sandbox/y"; "" and "." give "workspace"), cleaned,
** without touching the filesystem. out must hold 4096 bytes. */
enum ac_code fapi_map_path(const char *client_path, char *out, size_t outsz,
                           struct ac_error *err);

/* The staging directory of uploads, below the box root: FAPI_STAGE_PARENT
** is the server's (0700), FAPI_STAGE_DIR the session's (0700). The box
** layout creates both; the sandbox never sees them. */
#define FAPI_STAGE_PARENT ".agentcube"
#define FAPI_STAGE_DIR FAPI_STAGE_PARENT "/uploads"

/* Removes what crashed uploads left: everything in the staging directory
** and, with legacy, the temporary files earlier versions left next to
** their targets in the session trees (regular files of the session named
** ".agentcube-upload-" and 12 letters or digits, mode 0600, one link; at
** most 64 directories deep; a walk of every tree, so once per box). Runs
** with the session's credentials. *removed (may be NULL) gets the count.
** Fails only when the credentials cannot be switched. */
enum ac_code fapi_sweep(const struct fapi_root *root, int legacy,
                        unsigned long long *removed, struct ac_error *err);

/* Streaming write: begin creates parent directories (0755 less the
** process umask, like PicoD) and an unnamed file (O_TMPFILE) in the
** target's directory; data appends; commit gives it the target's name and
** fills *info (may be NULL); abort drops it. When a file exists at the
** target, commit links the new one under a temporary name in the box's
** staging directory (FAPI_STAGE_DIR) and renames it over the target: the
** session's trees never show a temporary name, and a crash between the
** two leaves a file only in the staging directory, which fapi_sweep
** empties. (Without O_TMPFILE the file is named from the start, in the
** staging directory; a root without a staging directory gets the
** temporary names next to the target.) path must not be
** empty. mode applies to new files only, masked with 0777 and a umask of
** 022 whatever the process umask is (0755 gives -rwxr-xr-x, 0777 gives
** -rwxr-xr-x); an existing regular file keeps its permission bits (not
** setuid/setgid) but gets the session's ownership; a symlink, FIFO etc. at
** the target is replaced. A directory at the target fails in begin (and
** commit) with AC_EINVAL. After a failed data call the caller still owns
** w and should abort; further data and commit calls fail (AC_EINVAL), so
** a partial file never replaces the target. Exactly one of commit/abort
** must follow a successful begin; both free w, whether they succeed or
** not. abort(NULL) is a no-op. */
struct fapi_writer;
enum ac_code fapi_write_begin(const struct fapi_root *root, const char *path,
                              mode_t mode, struct fapi_writer **w,
                              struct ac_error *err);
enum ac_code fapi_write_data(struct fapi_writer *w, const void *data,
                             size_t len, struct ac_error *err);
enum ac_code fapi_write_commit(struct fapi_writer *w, struct fapi_info *info,
                               struct ac_error *err);
void fapi_write_abort(struct fapi_writer *w);

/* Opens a regular file for reading. *fd (O_RDONLY|O_CLOEXEC) is owned by
** the caller; it is -1 on failure. FIFOs, sockets and devices are refused
** without ever being opened (so without blocking). info may be NULL. */
enum ac_code fapi_open_read(const struct fapi_root *root, const char *path,
                            int *fd, struct fapi_info *info,
                            struct ac_error *err);

/* Lists the direct children of a directory ("" and "." are /workspace),
** sorted bytewise by name, dot-files included, "." and ".." left out
** (in-progress uploads have no name there), symlinks not
** followed; entries whose lstat fails are skipped. On success *entries
** (malloc'd, never NULL, *count of them) is owned by the caller: free with
** free(). At most max_entries are returned, the first ones in sorted
** order; *truncated says whether more were left out. Memory stays about
** max_entries * sizeof(struct fapi_entry) (~300 bytes) whatever the size
** of the directory. */
enum ac_code fapi_list(const struct fapi_root *root, const char *path,
                       size_t max_entries, struct fapi_entry **entries,
                       size_t *count, int *truncated, struct ac_error *err);

/* Creates a directory and its parents (0755 less the process umask) when
** missing; used for an execute request's working_dir. Fails with AC_EINVAL
** when it, or a parent, exists as a non-directory. */
enum ac_code fapi_mkdirs(const struct fapi_root *root, const char *path,
                         struct ac_error *err);

/* File operations of the local runtime. The last component of every path
** is acted on, never followed (stat of a symlink describes the link).
** The session's trees themselves can be stat'ed, never removed or renamed
** (AC_EACCESS).
**   stat:   AC_ENOTFOUND when missing.
**   remove: a file, a symlink or an empty directory; a non-empty directory
**           only with recursive (else AC_EEXIST); *removed counts entries.
**   mkdir:  mode masked with 0777, less the process umask; parents creates
**           missing parents (0755) and accepts an existing directory;
**           AC_EEXIST when it exists as a non-directory (or at all,
**           without parents); AC_ENOTFOUND for a missing parent.
**   rename: AC_EEXIST when to exists and !overwrite, or is a non-empty
**           directory. info describes the destination. */
enum ac_code fapi_stat(const struct fapi_root *root, const char *path,
                       struct fapi_info *info, struct ac_error *err);
enum ac_code fapi_remove(const struct fapi_root *root, const char *path,
                         int recursive, unsigned long long *removed,
                         struct ac_error *err);
enum ac_code fapi_mkdir(const struct fapi_root *root, const char *path,
                        int parents, mode_t mode, struct fapi_info *info,
                        struct ac_error *err);
enum ac_code fapi_rename(const struct fapi_root *root, const char *from,
                         const char *to, int overwrite,
                         struct fapi_info *info, struct ac_error *err);

/* Go FileMode notation of an st_mode: type/special letters in the order
** "dalTLDpSugct?" then rwx bits ("-rw-r--r--", "drwxr-xr-x", "Lrwxrwxrwx",
** "dtrwxrwxrwx", "urwxr-xr-x", "Dcrw-rw-rw-", "prw-r--r--").
** buf must hold 24 bytes. Returns buf. */
char *fapi_mode_string(mode_t mode, char *buf);

/* Parses a request mode string as octal ("0644", "755"); NULL, empty,
** unparsable ("abc", "0x1ff", "-1", " 644", "0778") or above 0777 gives
** 0644, like PicoD. */
mode_t fapi_parse_mode(const char *s);

/* RFC 3339 with up to 9 fractional digits, trailing zeros trimmed, "Z".
** buf must hold 40 bytes. Returns buf. */
char *fapi_rfc3339(struct timespec ts, char *buf);

#endif
