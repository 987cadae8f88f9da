/*
** test_mcp_hostfiles.c -- host paths confined to --files-dir: what is
** inside opens (the positive controls), what leads out does not.
*/
#include "mcp.h"
#include "tap.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[64], outside[64];

static void put(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
}

static struct mcp_hostdir *d;

static void open_files_dir(void) {
  struct ac_error err;
  char path[256], name[256];

  tcase("a missing --files-dir is refused, an existing one opens");
  snprintf(root, sizeof root, "/tmp/agentcube-hostdir.XXXXXX");
  snprintf(outside, sizeof outside, "/tmp/agentcube-outside.XXXXXX");
  REQUIRE(mkdtemp(root) != NULL, "the files dir %s created", root);
  REQUIRE(mkdtemp(outside) != NULL, "a directory outside %s created",
          outside);
  snprintf(path, sizeof path, "%s/in.txt", root);
  put(path, "in");
  snprintf(path, sizeof path, "%s/secret", outside);
  put(path, "secret");
  snprintf(name, sizeof name, "%s/link", root);
  REQUIRE(symlink(path, name) == 0, "a symlink to a file outside");
  snprintf(name, sizeof name, "%s/dirlink", root);
  REQUIRE(symlink(outside, name) == 0, "a symlink to a directory outside");
  snprintf(path, sizeof path, "%s/sub", root);
  REQUIRE(mkdir(path, 0755) == 0, "a subdirectory");

  is_int(mcp_hostdir_open("/no/such/dir", &d, &err), AC_ENOTFOUND,
         "a missing --files-dir is refused");
  d = NULL;
  is_int(mcp_hostdir_open(root, &d, &err), AC_OK, "open the files dir");
}

static void reads_inside(void) {
  struct ac_error err;
  char path[256];
  int fd;

  tcase("paths inside open: relative, absolute, '..' that stays inside");
  REQUIRE(d != NULL, "the files dir is open");
  fd = mcp_hostdir_open_read(d, "in.txt", &err);
  ok(fd >= 0, "a relative path inside opens");
  close(fd);
  snprintf(path, sizeof path, "%s/in.txt", root);
  fd = mcp_hostdir_open_read(d, path, &err);
  ok(fd >= 0, "an absolute path inside opens");
  close(fd);
  fd = mcp_hostdir_open_read(d, "sub/../in.txt", &err);
  ok(fd >= 0, "'..' that stays inside opens");
  close(fd);
}

static void reads_refused(void) {
  struct ac_error err;
  char path[256];

  tcase("reads refused: '..' out, absolute outside, symlinks, "
        "directories, missing files");
  REQUIRE(d != NULL, "the files dir is open");
  snprintf(path, sizeof path, "../%s/secret", outside + 5);
  ok(mcp_hostdir_open_read(d, path, &err) < 0 && err.code == AC_EACCESS,
     "'..' out is refused: %s", err.msg);
  snprintf(path, sizeof path, "%s/secret", outside);
  ok(mcp_hostdir_open_read(d, path, &err) < 0 && err.code == AC_EACCESS,
     "an absolute path outside is refused");
  ok(mcp_hostdir_open_read(d, "link", &err) < 0 && err.code == AC_EACCESS,
     "a symlink is not followed");
  ok(mcp_hostdir_open_read(d, "dirlink/secret", &err) < 0,
     "a symlinked directory is not followed");
  ok(mcp_hostdir_open_read(d, "sub", &err) < 0 && err.code == AC_EINVAL,
     "a directory is not a file");
  ok(mcp_hostdir_open_read(d, "nope", &err) < 0 && err.code == AC_ENOTFOUND,
     "a missing file");
}

static void parents(void) {
  struct ac_error err;
  char path[256], name[256];
  int fd;

  tcase("new files: parents created inside, never through a symlink, "
        "above or outside");
  REQUIRE(d != NULL, "the files dir is open");
  fd = mcp_hostdir_open_parent(d, "new/deep/out.csv", name, sizeof name,
                               &err);
  ok(fd >= 0 && !strcmp(name, "out.csv"),
     "the parent of a new file is created inside");
  close(fd);
  snprintf(path, sizeof path, "%s/new/deep", root);
  ok(access(path, F_OK) == 0, "  there");
  ok(mcp_hostdir_open_parent(d, "dirlink/x", name, sizeof name, &err) < 0,
     "no parent through a symlink");
  ok(mcp_hostdir_open_parent(d, "../x", name, sizeof name, &err) < 0,
     "no parent above the files dir");
  ok(mcp_hostdir_open_parent(d, "sub/..", name, sizeof name, &err) < 0,
     "'..' is not a file name");
  snprintf(path, sizeof path, "%s/x", outside);
  ok(mcp_hostdir_open_parent(d, path, name, sizeof name, &err) < 0,
     "no absolute parent outside");
  snprintf(path, sizeof path, "%s/x", outside);
  ok(access(path, F_OK) != 0, "nothing was created outside");
}

static void odd_paths(void) {
  struct ac_error err;
  char path[256], name[256];
  struct mcp_hostdir *top = NULL;
  int fd;

  tcase("odd paths: '.' components, a file where a directory should be, "
        "the root as the files dir");
  REQUIRE(d != NULL, "the files dir is open");
  fd = mcp_hostdir_open_parent(d, "./dot//./x.txt", name, sizeof name, &err);
  ok(fd >= 0 && !strcmp(name, "x.txt"), "'.' and empty components are "
     "skipped");
  if (fd >= 0)
    close(fd);
  snprintf(path, sizeof path, "%s/dot", root);
  ok(access(path, F_OK) == 0, "  dot/ was made");
  fd = mcp_hostdir_open_parent(d, "in.txt/x", name, sizeof name, &err);
  ok(fd < 0 && err.code == AC_EIO && strstr(err.msg, "in.txt/x"),
     "a file as a parent directory: EIO naming the path (%s)", err.msg);
  fd = mcp_hostdir_open_read(d, "in.txt/x", &err);
  ok(fd < 0 && err.code == AC_EIO && strstr(err.msg, "Not a directory"),
     "reading through a file: EIO, not a directory (%s)", err.msg);
  /* the whole tree as the files dir: an absolute path is taken as it is */
  is_int(mcp_hostdir_open("/", &top, &err), AC_OK, "'/' as the files dir");
  snprintf(path, sizeof path, "%s/in.txt", root);
  fd = top ? mcp_hostdir_open_read(top, path, &err) : -1;
  ok(fd >= 0, "  an absolute path under it opens");
  if (fd >= 0)
    close(fd);
  mcp_hostdir_close(top);
}

int main(void) {
  char cmd[256];
  int rc;

  plan(5);
  open_files_dir();
  reads_inside();
  reads_refused();
  parents();
  odd_paths();
  rc = done_testing();
  if (d != NULL)
    mcp_hostdir_close(d);
  snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", root, outside);
  if (system(cmd) != 0) {
    printf("# could not remove %s and %s\n", root, outside);
    return 1;
  }
  return rc;
}
