/*
** serve.c -- `agentcube serve`: options, start-up, signals, shutdown.
**
** Start-up order matters: the state directory lock first (one server per
** state directory), then the token, the configuration, the sandbox runtime,
** the session store (which restores sessions and cleans leftovers), and
** only then the listening socket, so that a client never reaches a server
** that is not ready. serve.json in the state directory tells clients where
** the server listens; it exists only while the server runs.
*/
#include "serve.h"
#include "agentcube.h"
#include "check_report.h"
#include "config.h"
#include "image.h"
#include "lockfile.h"
#include "statedir.h"
#include "uid_range.h"
#include "http_server.h"
#include "sandbox.h"
#include "store.h"
#include "token.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

struct serve_opts {
  const char *listen;
  const char *state_dir;
  const char *config;
  const char *image_dir;             /* image.h; NULL: <state>/images */
  int build_images;
  int no_auth, daemon, check, quiet;
  unsigned reap_ms;
};

static const char usage_text[] =
  "usage: agentcube serve [--listen ADDR:PORT] [--state-dir DIR]\n"
  "                       [--config FILE] [--no-auth] [--daemon] [--check]\n"
  "\n"
  "Serves the AgentCube HTTP API (control plane, Router and sandbox\n"
  "routes) on one address and runs each session's commands in an isolated\n"
  "sandbox on this machine.\n"
  "\n"
  "  --listen ADDR:PORT  address to listen on (default 127.0.0.1:8080;\n"
  "                      port 0 picks a free port)\n"
  "  --state-dir DIR     sessions, token and logs (default $AGENTCUBE_HOME\n"
  "                      or ~/.agentcube, the home of the passwd entry\n"
  "                      when HOME is unset)\n"
  "  --config FILE       templates and limits (YAML)\n"
  "  --no-auth           do not require the bearer token\n"
  "  --daemon            run in the background; log to DIR/serve.log\n"
  "  --check             print which protections are active, then exit\n"
  "  --quiet             no access log\n"
  "  --image-dir DIR     the image store (default DIR/images)\n"
  "  --build-images      build the templates' missing images first (and\n"
  "                      any that goes missing when a session needs it)\n";

static int parse_opts(int argc, char **argv, struct serve_opts *o) {
  static const struct option longopts[] = {
    { "listen", required_argument, NULL, 'l' },
    { "state-dir", required_argument, NULL, 's' },
    { "config", required_argument, NULL, 'c' },
    { "no-auth", no_argument, NULL, 'n' },
    { "daemon", no_argument, NULL, 'd' },
    { "check", no_argument, NULL, 'k' },
    { "quiet", no_argument, NULL, 'q' },
    { "reap-interval-ms", required_argument, NULL, 'r' },
    { "image-dir", required_argument, NULL, 'I' },
    { "build-images", no_argument, NULL, 'B' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  int c;
  char *end;

  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 'l': o->listen = optarg; break;
    case 's': o->state_dir = optarg; break;
    case 'c': o->config = optarg; break;
    case 'n': o->no_auth = 1; break;
    case 'd': o->daemon = 1; break;
    case 'k': o->check = 1; break;
    case 'q': o->quiet = 1; break;
    case 'I': o->image_dir = optarg; break;
    case 'B': o->build_images = 1; break;
    case 'r':
      o->reap_ms = (unsigned)strtoul(optarg, &end, 10);
      if (*end || o->reap_ms == 0) {
        fprintf(stderr, "agentcube serve: --reap-interval-ms needs a "
                "positive number\n");
        return -1;
      }
      break;
    case 'h':
      fputs(usage_text, stdout);
      exit(0);
    default:
      fputs(usage_text, stderr);
      return -1;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "agentcube serve: unexpected argument '%s'\n%s",
            argv[optind], usage_text);
    return -1;
  }
  return 0;
}

static int write_serve_json(const char *dir, const char *url, int auth) {
  char path[4200], tmp[4300];
  json_t *o = json_pack("{s:s, s:i, s:b}", "url", url, "pid", (int)getpid(),
                        "auth", auth);
  int ok, fd;
  snprintf(path, sizeof path, "%s/serve.json", dir);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  fd = ac_statedir_open(dir, "serve.json.tmp",
                       O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ok = o && fd >= 0 && json_dumpfd(o, fd, JSON_COMPACT) == 0;
  if (fd >= 0 && close(fd) != 0)
    ok = 0;
  ok = ok && rename(tmp, path) == 0;
  json_decref(o);
  return ok ? 0 : -1;
}

/* In --daemon mode the parent waits on this pipe for "url" or an error
** message, so that `agentcube serve --daemon && client` never races. */
static int ready_fd = -1;

static void report_ready(const char *msg) {
  if (ready_fd >= 0) {
    if (write(ready_fd, msg, strlen(msg)) < 0) {
      /* the parent is gone: nothing to tell */
    }
    close(ready_fd);
    ready_fd = -1;
  }
}

static int daemonize(const char *state_dir) {
  int fds[2];
  pid_t pid;
  char buf[1024];
  ssize_t n;
  int logfd;

  if (pipe2(fds, O_CLOEXEC) != 0)
    return -1;
  pid = fork();
  if (pid < 0)
    return -1;
  if (pid > 0) {
    close(fds[1]);
    n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    if (n <= 0) {
      fprintf(stderr, "agentcube serve: the server exited during start-up; "
              "see %s/serve.log\n", state_dir);
      exit(1);
    }
    buf[n] = '\0';
    if (strncmp(buf, "http", 4) != 0) {
      fprintf(stderr, "agentcube serve: %s\n", buf);
      exit(1);
    }
    printf("%s\n", buf);
    exit(0);
  }
  close(fds[0]);
  ready_fd = fds[1];
  setsid();
  logfd = ac_statedir_open(state_dir, "serve.log",
                           O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (logfd >= 0) {
    dup2(logfd, STDOUT_FILENO);
    dup2(logfd, STDERR_FILENO);
    close(logfd);
  }
  logfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (logfd >= 0) {
    dup2(logfd, STDIN_FILENO);
    close(logfd);
  }
  return 0;
}

/* Every connection and every running command holds descriptors; the
** usual soft limit of 1024 would cap the server at a few hundred requests
** in flight, so take what the hard limit allows. */
static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static int fail(const char *what, const struct ac_error *err, int status) {
  char msg[600];
  snprintf(msg, sizeof msg, "%s%s%s", what, *what ? ": " : "", err->msg);
  fprintf(stderr, "agentcube serve: %s\n", msg);
  report_ready(msg);
  return status;
}

int ac_serve_main(int argc, char **argv) {
  struct serve_opts o = { "127.0.0.1:8080", NULL, NULL, NULL, 0, 0, 0, 0, 0,
                          15000 };
  char home[4096], token[AC_TOKEN_LEN + 1], url[400];
  struct ac_config cfg;
  struct sbx_runtime *rt = NULL;
  struct ac_store *store = NULL;
  struct ac_uid_range uids = { 0, 0, -1 };
  struct ac_server *srv = NULL;
  struct ac_server_options so;
  struct ac_error err;
  sigset_t sigs;
  int sig = 0, lockfd = -1, status = 0;

  if (parse_opts(argc, argv, &o) != 0)
    return 2;
  if (o.state_dir == NULL) {
    if (ac_local_home(home, sizeof home, &err) != AC_OK) {
      fprintf(stderr, "agentcube serve: %s\n", err.msg);
      return 2;
    }
    o.state_dir = home;
  }
  ac_config_defaults(&cfg, &err);
  if (o.config && ac_config_load(&cfg, o.config, &err) != AC_OK) {
    fprintf(stderr, "agentcube serve: %s\n", err.msg);
    ac_config_free(&cfg);
    return 2;
  }
  if (ac_statedir_prepare(o.state_dir, &err) != AC_OK) {
    fprintf(stderr, "agentcube serve: %s\n", err.msg);
    ac_config_free(&cfg);
    return 1;
  }
  if (img_serve_setup(&cfg, o.state_dir, o.image_dir, o.config,
                      o.build_images, &err) != AC_OK) {
    fprintf(stderr, "agentcube serve: %s\n", err.msg);
    ac_config_free(&cfg);
    return 1;
  }
  if (o.check) {
    int off;
    if (sbx_runtime_init(&rt, o.state_dir, &err) != AC_OK) {
      fprintf(stderr, "agentcube serve: %s\n", err.msg);
      ac_config_free(&cfg);
      return 1;
    }
    ac_server_report_budgets(&cfg, stdout);
    off = sbx_runtime_report(rt, stdout);
    off += ac_check_report(&cfg, o.state_dir, stdout);
    printf("%d protection%s off\n", off, off == 1 ? "" : "s");
    sbx_runtime_free(rt);
    ac_config_free(&cfg);
    return 0;
  }
  if (o.daemon && daemonize(o.state_dir) != 0) {
    fprintf(stderr, "agentcube serve: cannot start in the background\n");
    ac_config_free(&cfg);
    return 1;
  }
  /* SIGTERM and SIGINT are taken by sigwait below; every thread created
  ** from here on inherits the mask. */
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  /* Orphans of sandboxed commands are reparented to us and reaped. */
  prctl(PR_SET_CHILD_SUBREAPER, 1);

  lockfd = ac_statedir_open(o.state_dir, "serve.lock", O_RDWR | O_CREAT,
                            0600);
  if (lockfd < 0 || ac_lock_take(lockfd, "agentcube serve") != 0) {
    ac_error_set(&err, AC_EBUSY, "another agentcube server uses %s",
                 o.state_dir);
    status = fail("", &err, 1);
    goto out;
  }
  if (!o.no_auth && ac_token_load(o.state_dir, token, &err) != AC_OK) {
    status = fail("token", &err, 1);
    goto out;
  }
  if (sbx_runtime_init(&rt, o.state_dir, &err) != AC_OK) {
    status = fail("sandbox", &err, 1);
    goto out;
  }
  if (sbx_runtime_switches_uid(rt) &&
      ac_uid_range_reserve(o.state_dir, AC_STORE_UIDS, &uids, &err)) {
    status = fail("session uids", &err, 1);
    goto out;
  }
  if (ac_store_open(o.state_dir, &cfg, rt, o.reap_ms, uids.base, &store,
                    &err)) {
    status = fail("sessions", &err, 1);
    goto out;
  }
  so.listen = o.listen;
  so.token = o.no_auth ? NULL : token;
  so.access_log = o.quiet ? NULL : stderr;
  if (ac_server_start(&so, &cfg, store, &srv, url, sizeof url, &err)) {
    status = fail("", &err, 1);
    goto out;
  }
  write_serve_json(o.state_dir, url, !o.no_auth);
  fprintf(stderr, "agentcube serve: listening on %s (state in %s%s)\n", url,
          o.state_dir, o.no_auth ? ", no auth" : "");
  if (!o.daemon)
    printf("%s\n", url);
  fflush(stdout);
  report_ready(url);

  while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP)
    ;                        /* SIGHUP: ignored, the log is reopened by
                                the caller if it rotates */
  fprintf(stderr, "agentcube serve: %s, shutting down\n", strsignal(sig));
  ac_server_quiesce(srv);
  ac_store_kill_all(store);  /* running commands end now, not at timeout */
  ac_server_stop(srv);
  srv = NULL;
  {
    char path[4200];
    snprintf(path, sizeof path, "%s/serve.json", o.state_dir);
    unlink(path);
  }
out:
  ac_server_stop(srv);
  ac_store_close(store);
  sbx_runtime_free(rt);
  ac_config_free(&cfg);
  ac_uid_range_release(&uids);
  if (lockfd >= 0)
    close(lockfd);
  return status;
}
