/* The local runtime's state files, as they can be found broken or
** planted: serve.json or token that is a directory or a FIFO, a "url" that
** is no URL, a token too long to send; a state directory that cannot be
** made; listener checks given nonsense. Each is refused with a message
** naming the file; the good state beside it is read. */
#include "internal.h"
#include "tap.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/ac-lstate-XXXXXX";
static char home[512];
static int ready;

static void put(const char *name, const char *text) {
  char path[700];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s", home, name);
  unlink(path);
  rmdir(path);
  f = fopen(path, "w");
  if (f != NULL) {
    fputs(text, f);
    fclose(f);
  }
  chmod(path, 0600);
}

static void fresh(const char *sub) {
  snprintf(home, sizeof home, "%s/%s", dir, sub);
  mkdir(home, 0700);
}

static enum ac_code read_state(struct ac_local_endpoint *ep,
                               struct ac_error *e) {
  return ac_local_read_state(home, ep, e);
}

static void test_planted_files(void) {
  struct ac_local_endpoint ep;
  struct ac_error e;
  char path[700];

  tcase("serve.json or token that is a directory or a FIFO is not trusted");
  REQUIRE(ready, "the library and a temporary directory");
  fresh("planted");
  snprintf(path, sizeof path, "%s/serve.json", home);
  REQUIRE(mkdir(path, 0700) == 0, "serve.json made a directory");
  is_int(read_state(&ep, &e), AC_EACCESS, "serve.json a directory: EACCES");
  ok(strstr(e.msg, "is not a regular file") != NULL &&
     strstr(e.msg, path) != NULL, "names it and why: %s", e.msg);
  rmdir(path);
  REQUIRE(mkfifo(path, 0600) == 0, "serve.json made a FIFO");
  is_int(read_state(&ep, &e), AC_EACCESS,
         "serve.json a FIFO: EACCES, without blocking on it");
  unlink(path);

  put("serve.json", "{\"url\": \"http://127.0.0.1:8123\", \"pid\": 1}");
  snprintf(path, sizeof path, "%s/token", home);
  REQUIRE(mkdir(path, 0700) == 0, "token made a directory");
  is_int(read_state(&ep, &e), AC_EACCESS, "token a directory: EACCES");
  ok(strstr(e.msg, "token") != NULL, "names it: %s", e.msg);
  ok(ep.token[0] == '\0' && ep.url[0] == '\0', "nothing handed out");
  rmdir(path);

  /* the positive control: the same state with a token file */
  put("token", "t0k\n");
  is_int(read_state(&ep, &e), AC_OK, "a regular token file: read");
  is_str(ep.token, "t0k", "its token");
}

static void test_bad_contents(void) {
  struct ac_local_endpoint ep;
  struct ac_error e;
  char *tok;

  tcase("a \"url\" that is no URL, a token too long to send");
  REQUIRE(ready, "the library and a temporary directory");
  fresh("contents");
  put("serve.json", "{\"url\": \"no url at all\", \"pid\": 1}");
  is_int(read_state(&ep, &e), AC_EPROTO, "not a URL: EPROTO");
  ok(strstr(e.msg, "\"url\" is not a URL") != NULL &&
     strstr(e.msg, "serve.json") != NULL, "says so: %s", e.msg);

  put("serve.json", "{\"url\": \"http://127.0.0.1:8123\", \"pid\": 1}");
  tok = malloc(5000);
  REQUIRE(tok != NULL, "memory");
  memset(tok, 'a', 4999);
  tok[4999] = '\0';
  put("token", tok);
  free(tok);
  is_int(read_state(&ep, &e), AC_ETOOBIG, "a 4999-byte token: ETOOBIG");
  ok(strstr(e.msg, "token too long") != NULL, "says so: %s", e.msg);
  ok(ep.token[0] == '\0' && ep.url[0] == '\0', "nothing handed out");
  put("token", "short");
  is_int(read_state(&ep, &e), AC_OK, "control: a short token is read");
}

static void test_homes_and_listeners(void) {
  struct ac_error e;
  char path[700];

  tcase("a state directory that cannot be made; listener checks given "
        "nonsense");
  REQUIRE(ready, "the library and a temporary directory");
  is_int(ac_local_home_check(NULL, 1, &e), AC_EINVAL, "no directory given");
  is_int(ac_local_home_check("", 0, &e), AC_EINVAL, "an empty one");
  snprintf(path, sizeof path, "%s/missing/parent/home", dir);
  is_int(ac_local_home_check(path, 1, &e), AC_ENOTFOUND,
         "its parent is missing: ENOTFOUND");
  ok(strstr(e.msg, "cannot create") != NULL && strstr(e.msg, path) != NULL,
     "names it: %s", e.msg);
  snprintf(path, sizeof path, "%s/made", dir);
  is_int(ac_local_home_check(path, 1, &e), AC_OK,
         "control: a missing home whose parent exists is made");

  ok(ac_local_listener_is("not a url", getpid()) == 0, "not a URL: no");
  ok(ac_local_listener_is("http://127.0.0.1:1", 0) == 0, "pid 0: no");
  {
    pid_t gone = fork();
    if (gone == 0)
      _exit(0);
    waitpid(gone, NULL, 0);
    ok(ac_local_listener_is("http://127.0.0.1:1", gone) == 0,
       "a pid that is gone: no");
  }
}

int main(void) {
  plan(3);
  ready = ac_global_init(NULL) == AC_OK && mkdtemp(dir) != NULL;
  if (!ready)
    printf("# setup failed: every case fails its precondition\n");
  test_planted_files();
  test_bad_contents();
  test_homes_and_listeners();
  {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
      printf("# cleanup failed\n");
  }
  return done_testing();
}
