/*
** test_statedir.c -- the state directory is checked before the server
** trusts anything in it: every refusal an operator can run into names the
** path and what is wrong; a directory made fresh passes (the control).
** (tests/server/statedir_spec.lua covers the same through the server.)
*/
#include "statedir.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[64] = "/tmp/agentcube-statedir-XXXXXX";

static void path_of(char *buf, size_t n, const char *rel) {
  snprintf(buf, n, "%s/%s", base, rel);
}

static void bad_paths(void) {
  struct ac_error e;
  char p[PATH_MAX + 64], *longp;
  int fd;

  tcase("an empty, over-long, file or unreachable path is refused with "
        "the path");
  is_int(ac_statedir_prepare("", &e), AC_EINVAL, "an empty path");
  is_str(e.msg, "invalid state directory ''", "  says so");
  longp = malloc(PATH_MAX + 16);
  REQUIRE(longp != NULL, "memory");
  memset(longp, 'a', PATH_MAX + 8);
  longp[0] = '/';
  longp[PATH_MAX + 8] = '\0';
  is_int(ac_statedir_prepare(longp, &e), AC_EINVAL, "a path over PATH_MAX");
  ok(strncmp(e.msg, "invalid state directory '/aaa", 29) == 0,
     "  says so: %.40s...", e.msg);
  free(longp);
  path_of(p, sizeof p, "plain-file");
  fd = open(p, O_WRONLY | O_CREAT, 0600);
  REQUIRE(fd >= 0, "a plain file %s", p);
  close(fd);
  is_int(ac_statedir_prepare(p, &e), AC_EACCESS, "a plain file");
  ok(strstr(e.msg, "plain-file is not a directory") != NULL, "  says: %s",
     e.msg);
  path_of(p, sizeof p, "plain-file/below");
  is_int(ac_statedir_prepare(p, &e), AC_ESYSTEM, "a path through a file");
  ok(strstr(e.msg, "cannot check ") && strstr(e.msg, "plain-file/below") &&
     strstr(e.msg, "Not a directory"), "  says: %s", e.msg);
  /* control: a missing directory is made, 0700 */
  path_of(p, sizeof p, "fresh/state");
  is_int(ac_statedir_prepare(p, &e), AC_OK, "a missing one is made");
  {
    struct stat st;
    ok(stat(p, &st) == 0 && (st.st_mode & 0777) == 0700, "  0700");
  }
}

static void unsafe_places(void) {
  struct ac_error e;
  char p[PATH_MAX], q[PATH_MAX];
  int fd;

  tcase("a state directory under another user's directory, or with an "
        "entry others can write, is refused with the reason");
  if (geteuid() != 0) {
    skip_case("needs root to give a directory to another user");
    return;
  }
  path_of(p, sizeof p, "theirs");
  REQUIRE(mkdir(p, 0755) == 0 && chown(p, 12345, 12345) == 0,
          "a directory of uid 12345");
  path_of(q, sizeof q, "theirs/state");
  REQUIRE(mkdir(q, 0700) == 0, "a state directory in it");
  is_int(ac_statedir_prepare(q, &e), AC_EACCESS, "refused");
  ok(strstr(e.msg, "is inside ") && strstr(e.msg, "theirs, which is owned "
     "by another user (owner uid 12345"), "  says: %s", e.msg);
  path_of(q, sizeof q, "mine");
  REQUIRE(mkdir(q, 0700) == 0, "a state directory of ours");
  is_int(ac_statedir_prepare(q, &e), AC_OK, "passes (control)");
  path_of(p, sizeof p, "mine/token");
  fd = open(p, O_WRONLY | O_CREAT, 0600);
  REQUIRE(fd >= 0 && fchmod(fd, 0666) == 0, "a token others can write");
  close(fd);
  is_int(ac_statedir_prepare(q, &e), AC_EACCESS, "refused");
  ok(strstr(e.msg, "mine/token is writable by other users (mode 0666): "
            "remove it or chmod go-w") != NULL, "  says: %s", e.msg);
}

int main(void) {
  char cmd[128];
  int rc;

  plan(2);
  if (mkdtemp(base) == NULL) {
    ok(0, "a temporary directory");
    return done_testing();
  }
  chmod(base, 0755);
  bad_paths();
  unsafe_places();
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
  rc = system(cmd);
  (void)rc;
  return done_testing();
}
