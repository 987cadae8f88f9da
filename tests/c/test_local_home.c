/* Where the local runtime's state lives, and whether it is trusted: one
** answer for the server, the host and the Lua module (ac_local_home,
** ac_local_home_check). The path: $AGENTCUBE_HOME, else $HOME/.agentcube,
** else the passwd entry's home (never a shared directory). Trusted: a real
** directory of this user (or root) that nobody else can write. */
#include "agentcube.h"
#include "tap.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/ac-home-XXXXXX";

static enum ac_code home_of(char *buf, size_t size, struct ac_error *e) {
  return ac_local_home(buf, size, e);
}

static char path[4200];

static void resolution(void) {
  struct ac_error e;
  char got[4096], want[4200];
  struct passwd *pw;

  tcase("AGENTCUBE_HOME wins, then HOME/.agentcube");
  setenv("AGENTCUBE_HOME", "/some/state", 1);
  setenv("HOME", dir, 1);
  is_int(home_of(got, sizeof got, &e), AC_OK, "resolved");
  is_str(got, "/some/state", "AGENTCUBE_HOME as given");
  setenv("AGENTCUBE_HOME", "", 1);            /* empty: as if unset */
  is_int(home_of(got, sizeof got, &e), AC_OK, "resolved");
  snprintf(want, sizeof want, "%s/.agentcube", dir);
  is_str(got, want, "HOME/.agentcube");
  is_int(home_of(got, 8, &e), AC_ETOOBIG, "a buffer too small: ETOOBIG");

  tcase("HOME unset or empty: the passwd entry's home, never /tmp");
  unsetenv("AGENTCUBE_HOME");
  pw = getpwuid(getuid());
  REQUIRE(pw != NULL && pw->pw_dir[0] != '\0', "uid %u has a passwd home",
          (unsigned)getuid());
  snprintf(want, sizeof want, "%s/.agentcube", pw->pw_dir);
  unsetenv("HOME");
  is_int(home_of(got, sizeof got, &e), AC_OK, "HOME unset: resolved");
  is_str(got, want, "HOME unset: passwd home");
  setenv("HOME", "", 1);
  is_int(home_of(got, sizeof got, &e), AC_OK, "HOME empty: resolved");
  is_str(got, want, "HOME empty: passwd home");
}

static void checks(void) {
  struct ac_error e;

  is_int(ac_local_home_check(path, 0, &e), AC_ENOTFOUND,
         "missing, not created: ENOTFOUND");
  is_int(ac_local_home_check(path, 1, &e), AC_OK, "created");
  {
    struct stat st;
    ok(lstat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
       (st.st_mode & 0777) == 0700, "made as a directory, mode 0700");
  }
  is_int(ac_local_home_check(path, 1, &e), AC_OK, "existing: still OK");

}

static void refusals(void) {
  struct ac_error e;


  {
    char link[4300];
    snprintf(link, sizeof link, "%s/link", dir);
    REQUIRE(symlink(path, link) == 0, "symlink: %s", strerror(errno));
    is_int(ac_local_home_check(link, 0, &e), AC_EACCESS,
           "a symlink to a good directory: EACCESS");
    ok(strstr(e.msg, "symbolic link") != NULL, "says why: %s", e.msg);
    is_int(ac_local_home_check(link, 1, &e), AC_EACCESS,
           "create does not follow it either");
  }
  chmod(path, 0777);
  is_int(ac_local_home_check(path, 0, &e), AC_EACCESS,
         "writable by others: EACCESS");
  ok(strstr(e.msg, "0777") != NULL, "names the mode: %s", e.msg);
  chmod(path, 0720);
  is_int(ac_local_home_check(path, 0, &e), AC_EACCESS,
         "writable by the group: EACCESS");
  chmod(path, 0700);
  is_int(ac_local_home_check(path, 0, &e), AC_OK, "0700 again: trusted");
  if (geteuid() == 0) {
    /* root can hand the directory to another user: then it is theirs */
    REQUIRE(chown(path, 65534, 65534) == 0, "chown: %s", strerror(errno));
    is_int(ac_local_home_check(path, 0, &e), AC_EACCESS,
           "owned by uid 65534: EACCESS");
    ok(strstr(e.msg, "65534") != NULL, "names the owner: %s", e.msg);
    REQUIRE(chown(path, 0, 0) == 0, "chown back");
  } else {
    skip_check("owned by another user", "needs root to chown");
  }
  {
    char file[4300];
    FILE *f;
    snprintf(file, sizeof file, "%s/file", dir);
    f = fopen(file, "w");
    if (f != NULL)
      fclose(f);
    is_int(ac_local_home_check(file, 0, &e), AC_EACCESS,
           "a regular file: EACCESS");
  }

}

static void state(void) {
  struct ac_error e;


  {
    struct ac_local_endpoint ep;
    char json[4300];
    FILE *f;
    setenv("AGENTCUBE_HOME", path, 1);
    is_int(ac_local_read_state(NULL, &ep, &e), AC_ENOTFOUND,
           "no serve.json yet: ENOTFOUND");
    snprintf(json, sizeof json, "%s/serve.json", path);
    f = fopen(json, "w");
    REQUIRE(f != NULL, "write serve.json");
    fputs("{\"url\": \"http://127.0.0.1:9\", \"pid\": 1, \"auth\": false}",
          f);
    fclose(f);
    is_int(ac_local_read_state(NULL, &ep, &e), AC_OK, "found");
    is_str(ep.url, "http://127.0.0.1:9", "the URL of serve.json");
    chmod(path, 0777);
    is_int(ac_local_read_state(NULL, &ep, &e), AC_EACCESS,
           "the same check refuses it when others can write the directory");
    chmod(path, 0700);
    unlink(json);
  }
}

int main(void) {
  int made;
  plan(5);
  made = mkdtemp(dir) != NULL;
  snprintf(path, sizeof path, "%s/state", dir);
  resolution();
  tcase("a directory of ours, mode 0700, is trusted; create makes one");
  if (precondition(made, "scratch directory %s", dir))
    checks();
  tcase("a planted symlink, a writable or foreign directory are refused");
  if (precondition(made, "scratch directory %s", dir))
    refusals();
  tcase("the server state is read from the same directory");
  if (precondition(made, "scratch directory %s", dir))
    state();
  {
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
      printf("# could not remove %s\n", dir);
  }
  return done_testing();
}
