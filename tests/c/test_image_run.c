/*
** test_image_run.c -- running an image build tool: the progress it shows
** (a line per phase, or one redrawn line on a terminal, with apt's
** packages and bytes counted), the tool's own words when it fails (its
** first "E:" line, else its last line; a signal as 128+N), and the
** runtime's own files in an image's /etc. The tools are shell scripts
** standing in for mmdebstrap: the runner only reads their output.
*/
#include "image_int.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static int write_text(const char *path, const char *s, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  int ok_ = fd >= 0 && write(fd, s, strlen(s)) == (ssize_t)strlen(s);
  if (fd >= 0)
    close(fd);
  return ok_ && chmod(path, mode) == 0 ? 0 : -1;
}

/* Runs the script text as "mmdebstrap" (found through PATH); out gets the
** progress, returned in text. */
static enum ac_code run_script(const char *script, int tty, char *text,
                               size_t textsz, struct ac_error *err) {
  char path[128];
  char *argv[] = { "mmdebstrap", "--variant=apt", NULL };
  FILE *out = tmpfile();
  enum ac_code rc;
  size_t n;

  snprintf(path, sizeof path, "%s/mmdebstrap", dir);
  if (out == NULL || write_text(path, script, 0755) != 0)
    return AC_ESYSTEM;
  rc = img_run_tool(argv, "starting", out, tty, err);
  rewind(out);
  n = fread(text, 1, textsz - 1, out);
  text[n] = '\0';
  fclose(out);
  return rc;
}

static void progress(void) {
  static const char script[] =
    "#!/bin/sh\n"
    "echo 'I: running apt-get update'\n"
    "echo 'I: downloading packages'\n"
    "echo 'Get:1 http://deb.debian.org/debian bookworm/main a 1.0 [1500 kB]'\n"
    "echo 'Get:2 http://deb.debian.org/debian bookworm/main b 2.0 [2 MB]'\n"
    "echo 'Get:3 http://deb.debian.org/debian bookworm/main c 3.0 [500 B]'\n"
    "printf 'I: done, no newline'\n";
  struct ac_error e;
  char text[4096];

  tcase("progress: a line per phase, apt's packages and bytes counted");
  is_int(run_script(script, 0, text, sizeof text, &e), AC_OK, "exit 0");
  ok(strstr(text, "[mmdebstrap] starting (0 packages fetched, 0.0 MB)\n")
     != NULL, "the first phase");
  ok(strstr(text, "[mmdebstrap] downloading packages (0 packages") != NULL,
     "an I: line starts a phase");
  ok(strstr(text, "running apt-get update") == NULL,
     "'I: running' lines are not phases");
  ok(strstr(text, "[mmdebstrap] I: done") == NULL &&
     strstr(text, "[mmdebstrap] done, no newline (3 packages fetched, "
            "3.5 MB)\n") != NULL,
     "a last line without a newline counts, and so do the packages");
  is_int(run_script(script, 1, text, sizeof text, &e), AC_OK,
         "on a terminal");
  ok(strstr(text, "\r\033[K[mmdebstrap] downloading packages  2 packages "
            "fetched, 3.5 MB") != NULL, "one line redrawn per package");
  ok(text[strlen(text) - 1] == '\n', "and a newline at the end");
}

static void failures(void) {
  struct ac_error e;
  char text[16384], script[12000];

  tcase("a failing tool: its own error, its last lines, its signal");
  is_int(run_script("#!/bin/sh\necho 'I: resolving'\n"
                    "echo 'E: Unable to locate package nosuch' >&2\n"
                    "echo 'E: a second error'\nexit 100\n", 0, text,
                    sizeof text, &e), AC_ECOMMAND, "exit 100 fails");
  is_str(e.msg, "mmdebstrap failed (exit 100): Unable to locate package "
         "nosuch", "the first E: line");
  ok(strstr(text, "  | E: a second error\n") != NULL,
     "the tool's last lines shown");
  is_int(run_script("#!/bin/sh\necho 'W: something odd'\nexit 1\n", 0,
                    text, sizeof text, &e), AC_ECOMMAND, "exit 1 fails");
  is_str(e.msg, "mmdebstrap failed (exit 1): W: something odd",
         "without an E: line, the last line");
  is_int(run_script("#!/bin/sh\nkill -9 $$\n", 0, text, sizeof text, &e),
         AC_ECOMMAND, "killed");
  is_str(e.msg, "mmdebstrap failed (exit 137): no output",
         "a signal as 128+N, and no output said so");
  /* a line longer than the reader's buffer, then an error */
  snprintf(script, sizeof script, "#!/bin/sh\nhead -c 10000 /dev/zero | "
           "tr '\\0' x\necho\necho 'E: after a long line'\nexit 2\n");
  is_int(run_script(script, 0, text, sizeof text, &e), AC_ECOMMAND,
         "exit 2 after a 10000-byte line");
  is_str(e.msg, "mmdebstrap failed (exit 2): after a long line",
         "the long line did not hide the error");
}

static void finalize_etc(void) {
  struct ac_error e;
  char root[128], etc[160], p[256], buf[64];
  struct stat st;

  tcase("an image's /etc gets the runtime's files; errors say where");
  snprintf(root, sizeof root, "%s/img", dir);
  snprintf(etc, sizeof etc, "%s/etc", root);
  REQUIRE(mkdir(root, 0755) == 0 && mkdir(etc, 0755) == 0, "a root");
  snprintf(p, sizeof p, "%s/shadow", etc);
  REQUIRE(write_text(p, "root:x:::\n", 0600) == 0, "a shadow file");
  snprintf(p, sizeof p, "%s/resolv.conf", etc);
  REQUIRE(symlink("/etc/resolv.conf", p) == 0, "resolv.conf a symlink");
  is_int(img_finalize_etc(root, &e), AC_OK, "finalized");
  snprintf(p, sizeof p, "%s/shadow", etc);
  ok(lstat(p, &st) != 0, "shadow removed");
  snprintf(p, sizeof p, "%s/resolv.conf", etc);
  ok(lstat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0,
     "resolv.conf an empty file, not the link");
  snprintf(p, sizeof p, "%s/hostname", etc);
  {
    FILE *f = fopen(p, "re");
    buf[0] = '\0';
    if (f) {
      if (fgets(buf, sizeof buf, f) == NULL)
        buf[0] = '\0';
      fclose(f);
    }
  }
  is_str(buf, "sandbox\n", "hostname");
  snprintf(p, sizeof p, "%s/passwd", etc);
  REQUIRE(unlink(p) == 0 && mkdir(p, 0755) == 0, "passwd a directory");
  is_int(img_finalize_etc(root, &e), AC_ESYSTEM, "refused");
  ok(strstr(e.msg, "images: writing") != NULL, "says so: %s", e.msg);
  rmdir(p);
  snprintf(p, sizeof p, "%s/missing/root", dir);
  is_int(img_finalize_etc(p, &e), AC_ESYSTEM, "a missing root");
  ok(strstr(e.msg, "images: mkdir") != NULL, "says so: %s", e.msg);
}

int main(void) {
  char path[4200];
  const char *old = getenv("PATH");

  plan(3);
  snprintf(dir, sizeof dir, "/tmp/agentcube-imgrun.XXXXXX");
  if (mkdtemp(dir) == NULL)
    return done_testing();
  snprintf(path, sizeof path, "%s:%s", dir, old ? old : "/usr/bin:/bin");
  setenv("PATH", path, 1);
  progress();
  failures();
  finalize_etc();
  snprintf(path, sizeof path, "rm -rf '%s'", dir);
  if (system(path) != 0)
    printf("# could not remove %s\n", dir);
  return done_testing();
}
