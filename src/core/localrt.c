/*
** localrt.c -- the local runtime default: with no
** WORKLOAD_MANAGER_URL/ROUTER_URL, a client talks to the user's local
** `agentcube serve`, whose state lives in $AGENTCUBE_HOME (default
** ~/.agentcube), and starts one in the background when none runs.
**
** A serve.json left behind by a server that died (kill -9, reboot) must
** not be trusted: the server is live only when its pid exists and its
** /health answers. Starting runs `agentcube serve --daemon --listen
** 127.0.0.1:0 --state-dir HOME`, which exits 0 once the server is ready
** (after it wrote serve.json), so no polling race is needed; when two
** clients start one at the same time, the loser's server refuses the
** state directory lock and the loser reads the winner's serve.json.
**
** The binary: $AGENTCUBE_BIN, else this process when it is agentcube
** itself, else the agentcube installed with the object holding this code
** (PREFIX/bin for PREFIX/lib/lua/5.4/agentcube/core.so or PREFIX/lib/
** libagentcube.so, or the build tree's build/agentcube), else PATH.
**
** This is the one place that finds the local runtime: the Lua module, the
** host and C programs all reach it through ac_client_new (it is the
** default local_default hook), and `sessions` through ac_local_find.
*/
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#define START_TIMEOUT_MS 30000
#define HEALTH_TIMEOUT_MS 2000

extern char **environ;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t discard(char *p, size_t size, size_t n, void *ud) {
  (void)p;
  (void)ud;
  return size * n;
}

/* GET url/health answers 2xx within HEALTH_TIMEOUT_MS. */
static int healthy(const char *url) {
  char u[sizeof ((struct ac_local_endpoint *)0)->url + 16];
  CURL *e = curl_easy_init();
  long status = 0;
  CURLcode cc;
  if (e == NULL)
    return 0;
  snprintf(u, sizeof u, "%s/health", url);
  curl_easy_setopt(e, CURLOPT_URL, u);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)HEALTH_TIMEOUT_MS);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)HEALTH_TIMEOUT_MS);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
  /* serve.json is only a hint: whatever URL it names, speak plain HTTP to
  ** it, follow nothing */
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http");
#else
  curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTP);
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS, (long)CURLPROTO_HTTP);
#endif
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  cc = curl_easy_perform(e);
  if (cc == CURLE_OK)
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(e);
  return cc == CURLE_OK && status >= 200 && status <= 299;
}

/* AC_OK when a live server runs for home (out filled); AC_ENOTFOUND when
** none does (a stale serve.json counts as none). */
static enum ac_code live_state(const char *home,
                               struct ac_local_endpoint *out,
                               struct ac_error *err) {
  long pid;
  enum ac_code rc = ac_local_read_state_pid(home, out, &pid, err);
  if (rc != AC_OK)
    return rc;
  if (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno != EPERM) ||
      !healthy(out->url)) {
    explicit_bzero(out, sizeof *out);
    return ac_error_set(err, AC_ENOTFOUND, "no live local server in %s",
                        home);
  }
  /* Before the token goes anywhere: the listener must be the process
  ** serve.json names, and that process ours (or root's). */
  if (ac_local_listener_is(out->url, (pid_t)pid) != 1) {
    explicit_bzero(out, sizeof *out);
    return ac_error_set(err, AC_EACCESS, "%s/serve.json names %s, but the "
                        "process listening there is not the server it "
                        "names (pid %ld): not sending the token", home,
                        out->url, pid);
  }
  return AC_OK;
}

enum ac_code ac_local_find(struct ac_local_endpoint *out,
                           struct ac_error *err) {
  char home[PATH_MAX];
  enum ac_code rc = ac_local_home(home, sizeof home, err);
  memset(out, 0, sizeof *out);
  return rc != AC_OK ? rc : live_state(home, out, err);
}

int ac_local_live(const char *home, const char *url) {
  struct ac_local_endpoint ep;
  struct ac_error err;
  long pid;
  size_t n;
  int live;
  if (home[0] == '\0' ||
      ac_local_read_state_pid(home, &ep, &pid, &err) != AC_OK)
    return 0;
  n = strlen(ep.url);
  while (n > 0 && ep.url[n - 1] == '/')
    n--;                              /* the client keeps no trailing '/' */
  live = strlen(url) == n && strncmp(ep.url, url, n) == 0 && pid > 0 &&
         (kill((pid_t)pid, 0) == 0 || errno == EPERM);
  explicit_bzero(&ep, sizeof ep);
  return live;
}

/* Where this shared object lives, to find the agentcube installed with
** it. dir receives its directory; 0 when unknown (a static host). */
static int module_dir(char *dir, size_t size) {
  Dl_info info;
  char *slash;
  if (dladdr((void *)module_dir, &info) == 0 || info.dli_fname == NULL ||
      strchr(info.dli_fname, '/') == NULL)
    return 0;
  if (snprintf(dir, size, "%s", info.dli_fname) >= (int)size)
    return 0;
  slash = strrchr(dir, '/');
  *slash = '\0';
  return 1;
}

static void find_binary(char *bin, size_t size) {
  const char *env = getenv("AGENTCUBE_BIN");
  char dir[PATH_MAX];
  if (env != NULL && env[0] != '\0') {
    snprintf(bin, size, "%s", env);
    return;
  }
  if (module_dir(dir, sizeof dir)) {
    int n;
    /* PREFIX/lib/lua/5.4/agentcube/core.so -> PREFIX/bin/agentcube */
    n = snprintf(bin, size, "%s/../../../../bin/agentcube", dir);
    if (n > 0 && (size_t)n < size && access(bin, X_OK) == 0)
      return;
    /* BUILD/lua/agentcube/core.so -> BUILD/agentcube */
    n = snprintf(bin, size, "%s/../../agentcube", dir);
    if (n > 0 && (size_t)n < size && access(bin, X_OK) == 0)
      return;
  }
  {
    /* the host itself is the server's binary */
    char self[PATH_MAX];
    const char *b;
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
      self[n] = '\0';
      b = strrchr(self, '/');
      if (b != NULL && strcmp(b + 1, "agentcube") == 0 &&
          (size_t)n < size) {
        memcpy(bin, self, (size_t)n + 1);
        return;
      }
    }
  }
  snprintf(bin, size, "agentcube");    /* posix_spawnp searches PATH */
}

/* Collects what the child writes (up to size - 1 bytes) until it has
** exited and the pipe is drained, or the deadline passes (then the child is
** killed). The daemon's own server process may keep the pipe open when it
** cannot redirect its output, so the child's exit ends the wait too.
** Returns the wait status, or -1. */
static int wait_child(pid_t pid, int fd, char *buf, size_t size,
                      long long deadline) {
  size_t len = 0;
  int st = -1, exited = 0;
  buf[0] = '\0';
  for (;;) {
    struct pollfd p = { fd, POLLIN, 0 };
    char chunk[512];
    ssize_t n = 0;
    if (!exited) {
      pid_t w = waitpid(pid, &st, WNOHANG);
      if (w == pid || (w < 0 && errno != EINTR))
        exited = 1;
      if (w < 0)
        st = -1;
    }
    if (now_ms() >= deadline) {
      if (!exited) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        st = -1;
      }
      break;
    }
    if (poll(&p, 1, exited ? 0 : 20) > 0)
      n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n > 0 && len + 1 < size) {
      size_t take = (size_t)n < size - 1 - len ? (size_t)n : size - 1 - len;
      memcpy(buf + len, chunk, take);
      len += take;
      buf[len] = '\0';
    }
    if (n > 0)
      continue;
    if (exited)
      break;
    if ((p.revents & (POLLHUP | POLLERR)) != 0) {
      struct timespec ts = { 0, 20 * 1000000L };   /* EOF: wait for exit */
      nanosleep(&ts, NULL);
    }
  }
  while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
    buf[--len] = '\0';
  return st;
}

static enum ac_code start_server(const char *home, int verbose,
                                 struct ac_error *err) {
  enum ac_code rc = AC_OK;
  char bin[PATH_MAX + 64], output[1024];
  char *argv[] = { bin, "serve", "--daemon", "--listen", "127.0.0.1:0",
                   "--state-dir", (char *)home, NULL };
  posix_spawn_file_actions_t fa;
  long long deadline = now_ms() + START_TIMEOUT_MS;
  int fds[2] = { -1, -1 }, st, e;
  pid_t pid;

  find_binary(bin, sizeof bin);
  if (verbose)
    fprintf(stderr, "agentcube: starting the local runtime: %s serve "
            "--daemon --state-dir %s\n", bin, home);
  if (pipe2(fds, O_CLOEXEC) != 0)
    return ac_error_errno(err, AC_ESYSTEM, errno, "pipe");
  if (posix_spawn_file_actions_init(&fa) != 0) {
    rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    goto out;
  }
  /* stdout (the URL) and stderr (why it failed) into the pipe; nothing
  ** else of this process (open files, sockets) into the daemon */
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  e = posix_spawnp(&pid, bin, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  fds[1] = -1;
  if (e != 0) {
    rc = ac_error_errno(err, AC_ECONFIG, e, "cannot run the local runtime "
                        "'%s' (set AGENTCUBE_BIN, or WORKLOAD_MANAGER_URL "
                        "and ROUTER_URL)", bin);
    goto out;
  }
  st = wait_child(pid, fds[0], output, sizeof output, deadline);
  if (st == -1) {
    rc = ac_error_set(err, AC_ETIMEOUT, "the local runtime (%s serve "
                      "--daemon) did not start within %d s", bin,
                      START_TIMEOUT_MS / 1000);
  } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    /* Another client may have started one for the same directory: its
    ** serve.json decides. */
    if (strstr(output, "another agentcube server") == NULL)
      rc = ac_error_set(err, AC_ECONNECT, "the local runtime failed to "
                        "start: %s", output[0] ? output : "no output");
  }
out:
  if (fds[0] >= 0)
    close(fds[0]);
  if (fds[1] >= 0)
    close(fds[1]);
  return rc;
}

enum ac_code ac_local_default(void *ud, struct ac_local_endpoint *out,
                                 struct ac_error *err) {
  enum ac_code rc;
  char home[PATH_MAX];
  int verbose = ud != NULL ? *(const int *)ud : 0;
  long long deadline;

  rc = ac_local_home(home, sizeof home, err);
  if (rc != AC_OK)
    return rc;
  rc = live_state(home, out, err);
  if (rc != AC_ENOTFOUND)
    return rc;
  ac_error_clear(err);
  rc = start_server(home, verbose, err);
  if (rc != AC_OK)
    return rc;
  /* Ready means serve.json is written; a racing starter may need a moment
  ** longer, bounded. */
  deadline = now_ms() + 5000;
  for (;;) {
    struct timespec ts = { 0, 50 * 1000000L };
    rc = live_state(home, out, err);
    if (rc != AC_ENOTFOUND || now_ms() >= deadline)
      break;
    nanosleep(&ts, NULL);
  }
  if (rc == AC_ENOTFOUND)
    rc = ac_error_set(err, AC_ECONNECT, "the local runtime started but "
                      "%s/serve.json names no live server", home);
  return rc;
}
