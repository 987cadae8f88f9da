/*
** image_run.c -- running a build tool (mmdebstrap, umoci, cp) with a
** progress display, and the runtime's own files in an image's /etc.
**
** Progress: the tool's stdout and stderr are read line by line. Phases
** are mmdebstrap's "I: ..." lines; "Get:N ... [SIZE]" lines of apt count
** packages fetched and bytes. On a terminal one line is redrawn; else a
** line per phase. The last lines are kept: a failing build reports the
** tool's own error (apt's "E: Unable to locate package ...").
*/
#include "image.h"
#include "image_int.h"
#include "sandbox_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

volatile int img_interrupted;

#define TAIL 24

struct progress {
  FILE *out;
  int tty;
  const char *tool;
  char phase[160];
  unsigned fetched;
  double bytes;
  char tail[TAIL][512];     /* the last lines, a ring; long ones cut */
  unsigned ntail;
  char err_line[200];      /* the first "E: " line */
};

static void show(struct progress *p) {
  if (p->out == NULL)
    return;
  if (strcmp(p->tool, "mmdebstrap") != 0)   /* no packages to count */
    fprintf(p->out, "[%s] %s%s", p->tool, p->phase, p->tty ? "" : "\n");
  else if (p->tty)
    fprintf(p->out, "\r\033[K[%s] %s  %u packages fetched, %.1f MB",
            p->tool, p->phase, p->fetched, p->bytes / 1e6);
  else
    fprintf(p->out, "[%s] %s (%u packages fetched, %.1f MB)\n", p->tool,
            p->phase, p->fetched, p->bytes / 1e6);
  fflush(p->out);
}

static double apt_size(const char *s) {
  double v;
  char unit[8] = "";
  if (sscanf(s, "[%lf %7[kMG]B]", &v, unit) == 2)
    return v * (unit[0] == 'k' ? 1e3 : unit[0] == 'M' ? 1e6 : 1e9);
  if (sscanf(s, "[%lf B]", &v) == 1)
    return v;
  return 0;
}

static void on_line(struct progress *p, char *line) {
  char *lb;
  snprintf(p->tail[p->ntail++ % TAIL], sizeof p->tail[0], "%s", line);
  if (strncmp(line, "E: ", 3) == 0 && p->err_line[0] == '\0')
    snprintf(p->err_line, sizeof p->err_line, "%s", line + 3);
  if (strncmp(line, "I: ", 3) == 0 && strncmp(line, "I: running", 10)) {
    snprintf(p->phase, sizeof p->phase, "%s", line + 3);
    show(p);
  } else if (strncmp(line, "Get:", 4) == 0 && (lb = strrchr(line, '['))) {
    p->fetched++;
    p->bytes += apt_size(lb);
    if (p->tty)
      show(p);
  }
}

enum ac_code img_run_tool(char *const argv[], const char *phase, FILE *out,
                          int tty, struct ac_error *err) {
  struct progress p = { .out = out, .tty = tty, .tool = argv[0] };
  char buf[8192];
  size_t len = 0;
  int fds[2], status = -1, killed = 0;   /* -1: not known, a failure */
  pid_t pid;
  enum ac_code rc = AC_OK;

  snprintf(p.phase, sizeof p.phase, "%s", phase);
  show(&p);
  if (pipe2(fds, O_CLOEXEC) < 0)
    return ac_error_errno(err, AC_ESYSTEM, errno, "images: pipe");
  pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return ac_error_errno(err, AC_ESYSTEM, errno, "images: fork");
  }
  if (pid == 0) {
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0)
      dup2(null, 0);
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    execvp(argv[0], argv);
    fprintf(stderr, "E: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  for (;;) {
    struct pollfd pf = { fds[0], POLLIN, 0 };
    ssize_t n;
    if (img_interrupted && !killed) {
      kill(pid, SIGTERM);            /* the tool cleans up its mounts */
      killed = 1;
    }
    if (poll(&pf, 1, 200) <= 0)
      continue;
    n = read(fds[0], buf + len, sizeof buf - 1 - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    len += (size_t)n;
    buf[len] = '\0';
    char *start = buf, *nl;
    while ((nl = strchr(start, '\n')) != NULL) {
      *nl = '\0';
      on_line(&p, start);
      start = nl + 1;
    }
    len = strlen(start);
    memmove(buf, start, len + 1);
    if (len == sizeof buf - 1) {        /* a very long line */
      on_line(&p, buf);
      len = 0;
    }
  }
  if (len)
    on_line(&p, buf);
  close(fds[0]);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (out && tty)
    fputc('\n', out);
  if (img_interrupted) {
    rc = ac_error_set(err, AC_EINTERRUPTED, "interrupted");
  } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const char *why = p.err_line[0] ? p.err_line : NULL;
    if (out) {                         /* the tool's own words */
      unsigned first = p.ntail > TAIL ? p.ntail - TAIL : 0;
      for (unsigned i = first; i < p.ntail; i++)
        fprintf(out, "  | %s\n", p.tail[i % TAIL]);
    }
    if (why == NULL && p.ntail)
      why = p.tail[(p.ntail - 1) % TAIL];
    rc = ac_error_set(err, AC_ECOMMAND, "%s failed (exit %d): %s", argv[0],
                      WIFEXITED(status) ? WEXITSTATUS(status)
                                        : 128 + WTERMSIG(status),
                      why ? why : "no output");
  }
  return rc;
}

static int put_file(int dfd, const char *name, const char *data) {
  size_t len = strlen(data);
  int fd;
  unlinkat(dfd, name, 0);             /* a symlink (resolv.conf) goes too */
  fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
              O_NOFOLLOW, 0644);
  if (fd < 0)
    return -1;
  if ((size_t)write(fd, data, len) != len || fchmod(fd, 0644) < 0) {
    close(fd);
    return -1;
  }
  return close(fd);
}

enum ac_code img_finalize_etc(const char *root, struct ac_error *err) {
  static const char *const drop[] = {
    "shadow", "shadow-", "gshadow", "gshadow-", "passwd-", "group-",
    "subuid", "subgid", "machine-id", "hostname",
  };
  char path[4200];
  int dfd;
  snprintf(path, sizeof path, "%s/etc", root);
  if (mkdir(path, 0755) < 0 && errno != EEXIST)
    return ac_error_errno(err, AC_ESYSTEM, errno, "images: mkdir %s", path);
  dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0)
    return ac_error_errno(err, AC_ESYSTEM, errno, "images: %s", path);
  for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
    unlinkat(dfd, drop[i], 0);
  if (put_file(dfd, "passwd", sbx_passwd) < 0 ||
      put_file(dfd, "group", sbx_group) < 0 ||
      put_file(dfd, "hosts", sbx_hosts) < 0 ||
      put_file(dfd, "hostname", "sandbox\n") < 0 ||
      put_file(dfd, "resolv.conf", "") < 0) {
    int e = errno;
    close(dfd);
    return ac_error_errno(err, AC_ESYSTEM, e, "images: writing %s", path);
  }
  close(dfd);
  return AC_OK;
}
