/*
** test_token.c -- the server's bearer token file: created once (0600, 64
** hex characters) and read back the same; refused when another uid owns
** it, when others may read it, when it holds no token, when it is a
** symlink, or when the state directory cannot take it; compared only in
** full.
*/
#include "tap.h"
#include "token.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64], path[128];

static int write_text(const char *p, const char *s, mode_t mode) {
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  int ok_ = fd >= 0 && write(fd, s, strlen(s)) == (ssize_t)strlen(s);
  if (fd >= 0)
    close(fd);
  return ok_ && chmod(p, mode) == 0 ? 0 : -1;
}

static void created_once(void) {
  char a[AC_TOKEN_LEN + 1], b[AC_TOKEN_LEN + 1];
  struct ac_error e;
  struct stat st;

  tcase("a token is created once, 0600, and read back the same");
  is_int(ac_token_load(dir, a, &e), AC_OK, "created");
  is_int(strlen(a), AC_TOKEN_LEN, "64 characters");
  ok(strspn(a, "0123456789abcdef") == AC_TOKEN_LEN, "hex: %s", a);
  ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600 &&
     st.st_uid == geteuid(), "the file is 0600, ours");
  is_int(ac_token_load(dir, b, &e), AC_OK, "loaded again");
  is_str(b, a, "the same token");
  ok(ac_token_equal(a, b, strlen(b)), "equal in full");
  b[AC_TOKEN_LEN - 1] ^= 1;
  ok(!ac_token_equal(a, b, AC_TOKEN_LEN), "one character off: not equal");
  ok(!ac_token_equal(a, a, AC_TOKEN_LEN - 1), "a prefix: not equal");
  unlink(path);
}

static void refused(void) {
  char t[AC_TOKEN_LEN + 1];
  struct ac_error e;
  char good[AC_TOKEN_LEN + 2];

  tcase("a token file that cannot be trusted is refused, with the fix");
  memset(good, 'a', AC_TOKEN_LEN);
  good[AC_TOKEN_LEN] = '\n';
  good[AC_TOKEN_LEN + 1] = '\0';
  REQUIRE(write_text(path, good, 0600) == 0, "a token file");
  is_int(ac_token_load(dir, t, &e), AC_OK, "a good one loads (control)");
  REQUIRE(chmod(path, 0644) == 0, "made readable by others");
  is_int(ac_token_load(dir, t, &e), AC_EACCESS, "refused");
  ok(strstr(e.msg, "readable by others (mode 644); make it 0600") != NULL,
     "says so: %s", e.msg);
  REQUIRE(write_text(path, "short\n", 0600) == 0, "a file without a token");
  is_int(ac_token_load(dir, t, &e), AC_ECONFIG, "refused");
  ok(strstr(e.msg, "does not hold a token") != NULL, "says so: %s", e.msg);
  REQUIRE(write_text(path, good, 0600) == 0, "a good token again");
  {
    char other[160];
    snprintf(other, sizeof other, "%s/elsewhere", dir);
    REQUIRE(rename(path, other) == 0 && symlink(other, path) == 0,
            "the token a symlink to another file");
    is_int(ac_token_load(dir, t, &e), AC_ESYSTEM, "a symlink is not "
           "followed");
    ok(strstr(e.msg, "cannot open") != NULL, "says so: %s", e.msg);
    unlink(path);
    unlink(other);
  }
  if (geteuid() == 0) {
    REQUIRE(write_text(path, good, 0600) == 0 &&
            chown(path, 200123, 200123) == 0, "a token of another uid");
    is_int(ac_token_load(dir, t, &e), AC_EACCESS, "refused");
    ok(strstr(e.msg, "belongs to uid 200123") != NULL &&
       strstr(e.msg, "remove it") != NULL, "says so: %s", e.msg);
    unlink(path);
  } else {
    skip_check("a token of another uid", "not root: cannot chown");
  }
}

static void no_state_dir(void) {
  char t[AC_TOKEN_LEN + 1], missing[160];
  struct ac_error e;

  tcase("a state directory that is missing: cannot create the token");
  snprintf(missing, sizeof missing, "%s/missing", dir);
  is_int(ac_token_load(missing, t, &e), AC_ESYSTEM, "refused");
  ok(strstr(e.msg, "cannot create") != NULL && strstr(e.msg, missing),
     "names the file: %s", e.msg);
}

int main(void) {
  plan(3);
  snprintf(dir, sizeof dir, "/tmp/agentcube-token.XXXXXX");
  if (mkdtemp(dir) == NULL)
    return done_testing();
  snprintf(path, sizeof path, "%s/token", dir);
  created_once();
  refused();
  no_state_dir();
  rmdir(dir);
  return done_testing();
}
