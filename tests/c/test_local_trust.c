/* The local runtime's state is not trusted blindly: serve.json and token
** must be ours and not planted through symlinks or writable directories,
** the URL must be plain http to loopback, and the token only goes to a
** listener that is the process serve.json names. */
#include "internal.h"
#include "recorder.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/ac-trust-XXXXXX";

static void put(const char *name, const char *text) {
  char path[512];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  unlink(path);
  f = fopen(path, "w");
  if (f != NULL) {
    fputs(text, f);
    fclose(f);
  }
}

static enum ac_code read_state(struct ac_error *e) {
  struct ac_local_endpoint ep;
  return ac_local_read_state(dir, &ep, e);
}

int main(void) {
  struct ac_error e;
  struct ac_local_endpoint ep;
  struct recorder rec;
  char json[512], path[512];

  plan(7);
  tcase("serve.json: only plain http to loopback is accepted");
  if (!precondition(ac_global_init(NULL) == AC_OK, "library initialised") ||
      !precondition(mkdtemp(dir) != NULL, "state directory %s", dir) ||
      !precondition(rec_start(&rec) == 0, "recording server started"))
    return done_testing();
  signal(SIGPIPE, SIG_IGN);
  put("token", "s3cret\n");
  chmod(dir, 0700);

  /* Positive control. */
  put("serve.json", "{\"url\": \"http://127.0.0.1:8123\", \"pid\": 1}");
  is_int(read_state(&e), AC_OK, "loopback http: accepted");

  put("serve.json", "{\"url\": \"http://10.1.2.3:8080\", \"pid\": 1}");
  is_int(read_state(&e), AC_EACCESS, "another host: EACCESS");
  ok(strstr(e.msg, "loopback") != NULL, "says why: %s", e.msg);
  put("serve.json", "{\"url\": \"https://127.0.0.1:8080\", \"pid\": 1}");
  is_int(read_state(&e), AC_EACCESS, "https: EACCESS");
  put("serve.json", "{\"url\": \"gopher://127.0.0.1:25/\", \"pid\": 1}");
  is_int(read_state(&e), AC_EACCESS, "gopher: EACCESS");
  put("serve.json", "{\"url\": \"http://[::1]:8123\", \"pid\": 1}");
  is_int(read_state(&e), AC_OK, "IPv6 loopback: accepted");

  tcase("a state directory others can write to is refused");
  chmod(dir, 0777);
  is_int(read_state(&e), AC_EACCESS, "world-writable home: EACCESS");
  chmod(dir, 0700);
  is_int(read_state(&e), AC_OK, "mode 0700 again: accepted");

  tcase("serve.json planted as a symlink is refused");
  {
    char real[600];
    snprintf(real, sizeof real, "%s/elsewhere.json", dir);
    rename(strcat(strcpy(path, dir), "/serve.json"), real);
    if (symlink(real, path) != 0)
      printf("# symlink: %s\n", strerror(errno));
    is_int(read_state(&e), AC_EACCESS, "serve.json as a symlink: EACCESS");
    unlink(path);
    rename(real, path);
  }
  tcase("a token planted as a symlink is refused");
  {
    char tok[600];
    snprintf(tok, sizeof tok, "%s/token", dir);
    unlink(tok);
    if (symlink("/etc/hostname", tok) != 0)
      printf("# symlink: %s\n", strerror(errno));
    is_int(read_state(&e), AC_EACCESS, "token as a symlink: EACCESS");
    unlink(tok);
    put("token", "s3cret\n");
  }

  /* The listener must be the process serve.json names. */
  tcase("the listener check tells the socket's holder from another pid");
  ok(ac_local_listener_is(rec.base, getpid()) == 1,
     "this process holds the recorder's socket");
  ok(ac_local_listener_is(rec.base, getppid()) == 0,
     "the parent does not");

  /* End to end: serve.json names the recorder's URL but another pid. */
  tcase("a listener that is not the named server never gets the token");
  setenv("AGENTCUBE_HOME", dir, 1);
  rec_push(&rec, 200, "{\"status\":\"ok\"}");
  snprintf(json, sizeof json, "{\"url\": \"%s\", \"pid\": %ld}", rec.base,
           (long)getppid());
  put("serve.json", json);
  is_int(ac_local_default(NULL, &ep, &e), AC_EACCESS,
         "a listener that is not the named server: EACCESS");
  ok(strstr(e.msg, "not sending the token") != NULL, "says why: %s", e.msg);
  {
    int sent = 0;
    char hv[256];
    for (int i = 0; i < rec_count(&rec); i++)
      if (rec_header(rec_get(&rec, i), "Authorization", hv, sizeof hv))
        sent = 1;
    ok(!sent, "the token was never sent (%d requests)", rec_count(&rec));
  }
  ok(ep.token[0] == '\0', "no token handed out");
  /* Positive control: the named pid is the listener. */
  tcase("the named server's own listener gets the token");
  rec_reset(&rec);
  rec_push(&rec, 200, "{\"status\":\"ok\"}");
  snprintf(json, sizeof json, "{\"url\": \"%s\", \"pid\": %ld}", rec.base,
           (long)getpid());
  put("serve.json", json);
  is_int(ac_local_default(NULL, &ep, &e), AC_OK, "the real listener: OK");
  is_str(ep.token, "s3cret", "token handed out");

  rec_stop(&rec);
  {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
      printf("# cleanup failed\n");
  }
  return done_testing();
}
