/*
** test_fileapi_sys.c -- what the file API tells a client for each way a
** file operation can fail (the errno of the kernel turned into an error
** code and a message that names the client's path, never the host's),
** and acting as the session in a server that is not root (nothing to
** give up: the thread's ids and groups stay as they are).
*/
#include "fileapi_int.h"
#include "child_exit.h"
#include "tap.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/wait.h>
#include <unistd.h>

static void errors(void) {
  static const struct {
    int errnum;
    enum ac_code code;
    const char *msg;
  } cases[] = {
    { ENOENT, AC_ENOTFOUND, "/workspace/a.txt not found" },
    { ENOTDIR, AC_ENOTFOUND, "/workspace/a.txt not found" },
    { EACCES, AC_EACCESS, "access denied: permission denied for 'a.txt'" },
    { EPERM, AC_EACCESS, "access denied: permission denied for 'a.txt'" },
    { EXDEV, AC_EACCESS, "access denied: path 'a.txt' is outside the "
      "session's workspace" },
    { ELOOP, AC_EACCESS, "access denied: path 'a.txt' has too many levels of "
      "symbolic links or a /proc magic link" },
    { EROFS, AC_EACCESS, "access denied: 'a.txt' is on a read-only file "
      "system" },
    { ENAMETOOLONG, AC_EINVAL, "path is too long" },
    { EISDIR, AC_EINVAL, "Path is a directory, not a file" },
    { ENOSPC, AC_ELIMIT, "no space left: the session's disk is full" },
    { EDQUOT, AC_ELIMIT, "disk quota exceeded: the session's disk is full" },
    { EFBIG, AC_ELIMIT, "file too large for the session's file size limit" },
    { EMLINK, AC_ELIMIT, "too many links or subdirectories in a directory "
      "of 'a.txt'" },
    { ESTALE, AC_EBUSY, "'a.txt' changed while it was being opened; try "
      "again" },
    { ENOMEM, AC_ENOMEM, "out of memory" },
  };
  struct ac_error e = { 0 };
  char want[256];

  tcase("each errno: its error code, and a message with the client's path");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    is_int(fapi__errno(&e, cases[i].errnum, "/workspace/a.txt", "a.txt"),
           cases[i].code, "%s: code %d", strerror(cases[i].errnum),
           (int)cases[i].code);
    is_str(e.msg, cases[i].msg, "%s: the message", strerror(cases[i].errnum));
  }
  snprintf(want, sizeof want, "file operation on 'a.txt' failed: %s",
           strerror(EIO));
  is_int(fapi__errno(&e, EIO, "/workspace/a.txt", "a.txt"), AC_ESYSTEM,
         "any other errno: a system error");
  is_str(e.msg, want, "with the errno's text");
}

/* In a child that is not root (0 kept only as its saved uid, for
** child_exit): enter changes nothing, leave restores nothing. */
static void unprivileged(void) {
  int st;
  pid_t pid;

  tcase("a server that is not root acts as itself: nothing to give up");
  if (geteuid() != 0) {
    ok(1, "not root");
    skip_case("not root: cannot make a child of another uid");
    return;
  }
  pid = fork();
  if (pid == 0) {
    struct fapi_root r = { -1, 0, 0 };      /* uid 0: refused as root */
    struct fapi_creds c;
    struct ac_error e = { 0 };
    gid_t g[4];
    int code = 0;
    if (setgroups(0, NULL) < 0 || setresgid(200123, 200123, 200123) < 0 ||
        setresuid(200123, 200123, 0) < 0)
      _exit(2);
    if (fapi__creds_enter(&r, &c, &e) != AC_OK)
      code |= 4;                /* not refused: nothing to switch */
    if (setfsuid((uid_t)-1) != 200123 || setfsgid((gid_t)-1) != 200123 ||
        getgroups(4, g) != 0)
      code |= 8;
    fapi__creds_leave(&c);
    if (setfsuid((uid_t)-1) != 200123)
      code |= 16;
    child_exit(code);
  }
  REQUIRE(pid > 0 && waitpid(pid, &st, 0) == pid, "a child of uid 200123");
  is_int(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0,
         "enter succeeds, ids and groups unchanged, leave too (4: refused, "
         "8: changed, 16: changed by leave)");
}

int main(void) {
  plan(2);
  errors();
  unprivileged();
  return done_testing();
}
