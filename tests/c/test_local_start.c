/* Finding and starting the local runtime (ac_local_default, ac_local_find,
** ac_local_live): a serve.json whose server is gone or does not answer is
** not a live server; a runtime binary that cannot run or fails to start
** is a clear error naming it and carrying what it said; a real
** `agentcube serve --daemon` is started in a temporary state directory,
** reached by a zero-configuration client, found again instead of started
** twice, and found when a second start loses the race for the state
** directory. */
#include "internal.h"
#include "recorder.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/ac-lstart-XXXXXX";
static char home[PATH_MAX];
static struct recorder rec;
static int ready;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put(const char *path, const char *text, int mode) {
  FILE *f;
  unlink(path);
  f = fopen(path, "w");
  if (f != NULL) {
    fputs(text, f);
    fclose(f);
  }
  chmod(path, (mode_t)mode);
}

/* A fresh state directory of ours, mode 0700, named sub. */
static void fresh_home(const char *sub) {
  snprintf(home, sizeof home, "%s/%s", dir, sub);
  mkdir(home, 0700);
  setenv("AGENTCUBE_HOME", home, 1);
}

static void put_state(const char *url, long pid) {
  char path[PATH_MAX + 16], json[512];
  snprintf(json, sizeof json, "{\"url\": \"%s\", \"pid\": %ld}", url, pid);
  snprintf(path, sizeof path, "%s/serve.json", home);
  put(path, json, 0600);
  snprintf(path, sizeof path, "%s/token", home);
  put(path, "tok-1\n", 0600);
}

/* A pid that existed and is gone. */
static pid_t dead_pid(void) {
  pid_t p = fork();
  if (p == 0)
    _exit(0);
  if (p > 0)
    waitpid(p, NULL, 0);
  return p;
}

/* The agentcube next to this test's build (BUILD/tests/test_x ->
** BUILD/agentcube), else the default build's (the -O0 rerun builds only
** the tests). "" when there is none. */
static void find_agentcube(char *bin, size_t size) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  char *slash;
  bin[0] = '\0';
  if (n <= 0)
    return;
  self[n] = '\0';
  slash = strrchr(self, '/');
  if (slash == NULL)
    return;
  *slash = '\0';                        /* BUILD/tests */
  if ((size_t)snprintf(bin, size, "%s/../agentcube", self) < size &&
      access(bin, X_OK) == 0)
    return;
  if ((size_t)snprintf(bin, size, "%s/../../build/agentcube", self) < size &&
      access(bin, X_OK) == 0)
    return;
  bin[0] = '\0';
}

/* Whether pid has ended (gone, or a zombie its new parent has not reaped
** yet: the daemon is not our child). */
static int ended(pid_t pid) {
  char path[64], stat[512] = "";
  FILE *f;
  const char *rp;
  if (kill(pid, 0) != 0)
    return 1;
  snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
  f = fopen(path, "r");
  if (f == NULL)
    return 1;
  if (fgets(stat, sizeof stat, f) == NULL)
    stat[0] = '\0';
  fclose(f);
  rp = strrchr(stat, ')');
  return rp != NULL && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

/* Stops the server serve.json of home names as a user does (SIGTERM: it
** tears down what it made, mounts and cgroups included; SIGKILL would
** leave them), and waits until it is gone, so that removing home races
** with nothing. */
static int end_server(void) {
  struct ac_local_endpoint ep;
  struct ac_error e;
  long pid = 0;
  long long deadline = now_ms() + 30000;
  if (ac_local_read_state_pid(home, &ep, &pid, &e) != AC_OK || pid <= 0)
    return 0;
  kill((pid_t)pid, SIGTERM);
  while (!ended((pid_t)pid) && now_ms() < deadline) {
    struct timespec ts = { 0, 10 * 1000000L };
    nanosleep(&ts, NULL);
  }
  return ended((pid_t)pid);
}

static void test_not_live(void) {
  struct ac_local_endpoint ep;
  struct ac_error e;
  char url[128];

  tcase("a serve.json whose server is gone, or does not answer /health, is "
        "not a live server");
  REQUIRE(ready, "the library, a temporary directory, the recorder");
  fresh_home("stale");
  put_state(rec.base, (long)dead_pid());
  is_int(ac_local_find(&ep, &e), AC_ENOTFOUND, "its pid is gone: ENOTFOUND");
  ok(strstr(e.msg, "no live local server in") != NULL &&
     strstr(e.msg, home) != NULL, "names the state directory: %s", e.msg);
  ok(ep.token[0] == '\0' && ep.url[0] == '\0', "nothing handed out");
  ok(!ac_local_live(home, rec.base), "ac_local_live: not live");

  put_state(rec.base, 0);
  is_int(ac_local_find(&ep, &e), AC_ENOTFOUND, "pid 0: ENOTFOUND");

  /* alive, but /health fails */
  put_state(rec.base, (long)getpid());
  rec_reset(&rec);
  rec_push(&rec, 500, "{\"error\":\"broken\"}");
  is_int(ac_local_find(&ep, &e), AC_ENOTFOUND,
         "/health answers 500: ENOTFOUND");
  is_str(rec_get(&rec, 0)->uri, "/health", "it asked /health");
  snprintf(url, sizeof url, "http://127.0.0.1:%u", rec_dead_port());
  put_state(url, (long)getpid());
  is_int(ac_local_find(&ep, &e), AC_ENOTFOUND,
         "nothing listens there: ENOTFOUND");

  /* the positive control: alive, healthy, and the listener is that pid
  ** (the recorder runs in this process) */
  put_state(rec.base, (long)getpid());
  rec_reset(&rec);
  is_int(ac_local_find(&ep, &e), AC_OK, "a live server is found");
  is_str(ep.url, rec.base, "its URL");
  is_str(ep.token, "tok-1", "its token");
  ok(ac_local_live(home, rec.base), "ac_local_live: live");
  snprintf(url, sizeof url, "%s/", rec.base);
  put_state(url, (long)getpid());
  ok(ac_local_live(home, rec.base), "a trailing '/' in serve.json is the "
     "same server");
  ok(!ac_local_live(home, "http://127.0.0.1:1"), "another URL is not");
  ok(!ac_local_live("", rec.base), "no state directory: not live");
}

static void test_cannot_start(void) {
  struct ac_local_endpoint ep;
  struct ac_error e;
  char path[PATH_MAX + 32], *old_path;
  int verbose = 1, saved, fd;
  char log[2048] = "";

  tcase("a runtime that cannot run, or fails to start, is a clear error "
        "naming it, with what it said");
  REQUIRE(ready, "the library, a temporary directory, the recorder");
  fresh_home("nostart");

  setenv("AGENTCUBE_BIN", "/nonexistent/agentcube", 1);
  is_int(ac_local_default(NULL, &ep, &e), AC_ECONFIG,
         "a binary that does not exist: ECONFIG");
  ok(strstr(e.msg, "/nonexistent/agentcube") != NULL &&
     strstr(e.msg, "AGENTCUBE_BIN") != NULL,
     "names it and what to set: %s", e.msg);

  /* AGENTCUBE_BIN unset: agentcube from PATH, and there is none */
  unsetenv("AGENTCUBE_BIN");
  {
    const char *p = getenv("PATH");
    old_path = p != NULL ? strdup(p) : NULL;
  }
  setenv("PATH", dir, 1);
  is_int(ac_local_default(NULL, &ep, &e), AC_ECONFIG,
         "no agentcube on PATH: ECONFIG");
  ok(strstr(e.msg, "'agentcube'") != NULL, "names what it looked for: %s",
     e.msg);
  if (old_path != NULL) {
    setenv("PATH", old_path, 1);
    free(old_path);
  }

  /* a program that says why it failed; verbose mode says what runs */
  snprintf(path, sizeof path, "%s/failing-runtime", dir);
  put(path, "#!/bin/sh\necho \"cannot listen: $*\" >&2\nexit 3\n", 0700);
  setenv("AGENTCUBE_BIN", path, 1);
  snprintf(log, sizeof log, "%s/stderr.txt", dir);
  fflush(stderr);
  saved = dup(2);
  fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd >= 0)
    dup2(fd, 2);
  is_int(ac_local_default(&verbose, &ep, &e), AC_ECONNECT,
         "a runtime that exits 3: ECONNECT");
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  if (fd >= 0)
    close(fd);
  ok(strstr(e.msg, "failed to start: cannot listen: serve --daemon "
            "--listen 127.0.0.1:0 --state-dir") != NULL &&
     strstr(e.msg, home) != NULL,
     "its output is the message, and shows the arguments: %s", e.msg);
  {
    FILE *f = fopen(log, "r");
    size_t n = f ? fread(log, 1, sizeof log - 1, f) : 0;
    log[n] = '\0';
    if (f != NULL)
      fclose(f);
    ok(strstr(log, "starting the local runtime") != NULL &&
       strstr(log, path) != NULL, "verbose: says what it starts: %s", log);
  }

  setenv("AGENTCUBE_BIN", "/bin/false", 1);
  is_int(ac_local_default(NULL, &ep, &e), AC_ECONNECT,
         "a runtime that fails silently: ECONNECT");
  ok(strstr(e.msg, "failed to start: no output") != NULL, "says so: %s",
     e.msg);
  ok(ep.token[0] == '\0', "no token handed out");
  unsetenv("AGENTCUBE_BIN");
}

struct restore {
  char from[PATH_MAX + 32], to[PATH_MAX + 32];
};

static void *restore_later(void *ud) {
  struct restore *r = ud;
  struct timespec ts = { 0, 150 * 1000000L };
  nanosleep(&ts, NULL);
  rename(r->from, r->to);
  return NULL;
}

static void test_real_start(void) {
  struct ac_local_endpoint ep, again;
  struct ac_client_config cfg;
  struct ac_error e;
  ac_client *c = NULL;
  char bin[PATH_MAX], *json = NULL;
  struct restore r;
  pthread_t t;
  enum ac_code rc;

  tcase("a real agentcube serve --daemon: started once, reached without "
        "configuration, found again, found after losing a start race");
  REQUIRE(ready, "the library, a temporary directory, the recorder");
  find_agentcube(bin, sizeof bin);
  if (bin[0] == '\0') {
    skip_check("starting the real local runtime",
               "no agentcube binary built next to the tests");
    return;
  }
  fresh_home("real");
  /* the real binary, with a configuration that makes no sandboxes ahead
  ** of time: this test needs none, and they are slow to make and undo */
  {
    char wrapper[PATH_MAX + 32], yaml[PATH_MAX + 32], text[3 * PATH_MAX];
    snprintf(yaml, sizeof yaml, "%s/serve.yaml", dir);
    put(yaml, "default:\n  warmPoolSize: 0\n", 0600);
    snprintf(wrapper, sizeof wrapper, "%s/agentcube-no-pool", dir);
    snprintf(text, sizeof text, "#!/bin/sh\nexec '%s' \"$@\" --config "
             "'%s'\n", bin, yaml);
    put(wrapper, text, 0700);
    setenv("AGENTCUBE_BIN", wrapper, 1);
  }
  rc = ac_local_default(NULL, &ep, &e);
  is_int(rc, AC_OK, "started: %s", rc ? e.msg : "ok");
  ok(strncmp(ep.url, "http://127.0.0.1:", 17) == 0, "on loopback: %s",
     ep.url);
  ok(strlen(ep.token) > 0, "with its token");
  ok(ac_local_live(home, ep.url), "live");

  /* the client with no URLs at all reaches it, with the token */
  ac_client_config_init(&cfg);
  unsetenv("WORKLOAD_MANAGER_URL");
  unsetenv("ROUTER_URL");
  cfg.sa_token_path = "";
  is_int(ac_client_new(&cfg, &c, &e), AC_OK, "a zero-configuration client");
  is_str(c ? ac_client_router_url(c) : "", ep.url, "talks to it");
  rc = ac_session_list(c, &json, &e);
  is_int(rc, AC_OK, "lists its sessions: %s", rc ? e.msg : "ok");
  ok(json != NULL && strstr(json, "\"sessions\":[]") != NULL,
     "none yet: %s", json ? json : "(null)");
  free(json);
  ac_client_free(c);

  /* a second call finds the same server instead of starting another */
  is_int(ac_local_default(NULL, &again, &e), AC_OK, "found again");
  is_str(again.url, ep.url, "the same server");

  /* serve.json is away for a moment: a second start loses the state
  ** directory's lock, and the winner's serve.json decides */
  snprintf(r.to, sizeof r.to, "%s/serve.json", home);
  snprintf(r.from, sizeof r.from, "%s/serve.json.away", home);
  rename(r.to, r.from);
  if (pthread_create(&t, NULL, restore_later, &r) == 0) {
    rc = ac_local_default(NULL, &again, &e);
    is_int(rc, AC_OK, "a start that loses the race finds the winner: %s",
           rc ? e.msg : "ok");
    is_str(again.url, ep.url, "the same server");
    pthread_join(t, NULL);
  }
  precondition(end_server(), "the server is gone");
  unsetenv("AGENTCUBE_BIN");
}

int main(void) {
  plan(3);
  signal(SIGPIPE, SIG_IGN);
  ready = ac_global_init(NULL) == AC_OK && mkdtemp(dir) != NULL &&
          chmod(dir, 0700) == 0 && rec_start(&rec) == 0;
  if (!ready)
    printf("# setup failed: every case fails its precondition\n");
  test_not_live();
  test_cannot_start();
  test_real_start();
  if (ready)
    rec_stop(&rec);
  {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
      printf("# cleanup failed\n");
  }
  return done_testing();
}
