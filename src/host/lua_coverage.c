/*
** lua_coverage.c -- the host's Lua line counter (see lua_coverage.h).
**
** lua5.4 gets its counter through LUA_INIT; the host ignores LUA_INIT (a
** user's LUA_INIT is not meant for it), so it counts in C instead: a line
** hook on each state it creates (coroutines inherit it), with the lines
** kept per source file in this process, and written once at exit (atexit
** also covers os.exit and states never closed). The Lua code is run by
** one thread at a time, so the tables need no lock.
*/
#include "lua_coverage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cov_file {
  char *source;              /* chunk name without its '@' */
  unsigned char *hit;        /* hit[line] != 0: the line ran */
  int cap;
};

static char *cov_dir;
static struct cov_file *cov_files;
static int cov_nfiles, cov_capfiles, cov_failed;

/* Ours: the embedded modules ("@agentcube/x.lua") and their development
** copies in a source tree (AGENTCUBE_LUA_DIR=.../lua). */
static int is_ours(const char *source) {
  return !strncmp(source, "@agentcube/", 11) ||
         (source[0] == '@' && strstr(source, "/lua/agentcube/") != NULL);
}

static struct cov_file *file_of(const char *source) {
  struct cov_file *f;
  for (int i = 0; i < cov_nfiles; i++)
    if (!strcmp(cov_files[i].source, source + 1))
      return &cov_files[i];
  if (cov_nfiles == cov_capfiles) {
    int ncap = cov_capfiles ? 2 * cov_capfiles : 16;
    struct cov_file *p = realloc(cov_files, (size_t)ncap * sizeof *p);
    if (p == NULL)
      return NULL;
    cov_files = p;
    cov_capfiles = ncap;
  }
  f = &cov_files[cov_nfiles];
  if ((f->source = strdup(source + 1)) == NULL)
    return NULL;
  f->hit = NULL;
  f->cap = 0;
  cov_nfiles++;
  return f;
}

static void mark(struct cov_file *f, int line) {
  if (line < 0)
    return;
  if (line >= f->cap) {
    int ncap = line + 1 > 2 * f->cap ? line + 256 : 2 * f->cap;
    unsigned char *p = realloc(f->hit, (size_t)ncap);
    if (p == NULL) {
      cov_failed = 1;
      return;
    }
    memset(p + f->cap, 0, (size_t)(ncap - f->cap));
    f->hit = p;
    f->cap = ncap;
  }
  f->hit[line] = 1;
}

static void on_line(lua_State *L, lua_Debug *ar) {
  struct cov_file *f;
  if (!lua_getinfo(L, "S", ar) || !is_ours(ar->source))
    return;
  if ((f = file_of(ar->source)) == NULL) {
    cov_failed = 1;
    return;
  }
  mark(f, ar->currentline);
}

static void dump(void) {
  char path[4096];
  FILE *out;
  int fd;

  if (cov_nfiles == 0)
    return;
  if (snprintf(path, sizeof path, "%s/%ld.XXXXXX.hits", cov_dir,
               (long)getpid()) >= (int)sizeof path ||
      (fd = mkstemps(path, 5)) < 0 || (out = fdopen(fd, "w")) == NULL) {
    fprintf(stderr, "agentcube: AGENTCUBE_LUA_COVERAGE: cannot write "
            "in %s\n", cov_dir);
    return;
  }
  for (int i = 0; i < cov_nfiles; i++)
    for (int line = 0; line < cov_files[i].cap; line++)
      if (cov_files[i].hit[line])
        fprintf(out, "%s\t%d\n", cov_files[i].source, line);
  if (fclose(out) != 0 || cov_failed)
    fprintf(stderr, "agentcube: AGENTCUBE_LUA_COVERAGE: %s is incomplete\n",
            path);
}

void ac_host_coverage_start(lua_State *L) {
  const char *dir = getenv("AGENTCUBE_LUA_COVERAGE");
  if (dir == NULL || dir[0] == '\0')
    return;
  if (cov_dir == NULL) {
    if ((cov_dir = strdup(dir)) == NULL)
      return;
    atexit(dump);
  }
  lua_sethook(L, on_line, LUA_MASKLINE, 0);
}
