/*
** lua_coverage.c -- the host's Lua line counter (see lua_coverage.h).
**
** The host ignores LUA_INIT (a user's LUA_INIT is not meant for it), so it
** installs the counter itself; lua5.4 loads the same code as a C module
** (tests/coverage/lua_lines.c). A line hook in C on each state
** (coroutines inherit it), with the lines
** kept per source file in this process, and written once at exit (atexit
** also covers os.exit and states never closed). The Lua code is run by
** one thread at a time, so the tables need no lock.
**
** A state has one hook, and the engine sets its own with debug.sethook
** for a while (the budgets of expressions, lua steps and `check`), then
** restores what debug.gethook gave it. So that the counting goes on under
** those hooks, and their save and restore work, debug.sethook and
** debug.gethook are replaced by versions that keep the Lua code's hook
** beside the counter: the counter's C hook calls it for the events it
** asked for, as lua5.4's own hook dispatcher would.
*/
#include "lua_coverage.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

struct cov_file {
  char *source;              /* chunk name without its '@' */
  unsigned char *hit;        /* hit[line] != 0: the line ran */
  int cap;
};

static char *cov_dir;
static struct cov_file *cov_files;
static int cov_nfiles, cov_capfiles, cov_failed;

/* registry key of { [thread] = { hook, mask string, count, mask } } */
static const char hooks_key = 'h';

/* {====================================================== counting */

/* Ours: the embedded modules ("@agentcube/x.lua") and the files of a
** source tree (".../lua/agentcube/x.lua": AGENTCUBE_LUA_DIR, or lua5.4's
** package.path). */
static int is_ours(const char *source) {
  return !strncmp(source, "@agentcube/", 11) ||
         !strncmp(source, "@lua/agentcube/", 15) ||
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
    size_t need = (size_t)line + 256, ncap = 2 * (size_t)f->cap;
    unsigned char *p;
    if (ncap < need)
      ncap = need;                    /* at least 256: never 0 */
    if (ncap > INT_MAX || (p = realloc(f->hit, ncap)) == NULL) {
      cov_failed = 1;
      return;
    }
    memset(p + f->cap, 0, ncap - (size_t)f->cap);
    f->hit = p;
    f->cap = (int)ncap;
  }
  f->hit[line] = 1;
}

static void count_line(lua_State *L, lua_Debug *ar) {
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

/* }====================================================== */

/* {====================================================== the Lua hooks */

/* Counts a line, then calls the hook the Lua code set on this thread, if
** it asked for this event (ldblib's hookf does the same). */
static void on_event(lua_State *L, lua_Debug *ar) {
  static const char *const names[] = {
    "call", "return", "line", "count", "tail call"
  };
  if (ar->event == LUA_HOOKLINE)
    count_line(L, ar);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &hooks_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  lua_pushthread(L);
  if (lua_rawget(L, -2) != LUA_TTABLE) {
    lua_pop(L, 2);
    return;
  }
  lua_rawgeti(L, -1, 4);
  if (!(lua_tointeger(L, -1) & (1 << ar->event))) {
    lua_pop(L, 3);
    return;
  }
  lua_pop(L, 1);
  lua_rawgeti(L, -1, 1);
  lua_pushstring(L, names[ar->event]);
  if (ar->currentline >= 0)
    lua_pushinteger(L, ar->currentline);
  else
    lua_pushnil(L);
  lua_call(L, 2, 0);
  lua_pop(L, 2);
}

/* The thread argument of debug.sethook/gethook: *arg is 1 when given. */
static lua_State *thread_arg(lua_State *L, int *arg) {
  if (lua_type(L, 1) == LUA_TTHREAD) {
    *arg = 1;
    return lua_tothread(L, 1);
  }
  *arg = 0;
  return L;
}

/* Pushes the hooks table and the key of thread L1 (at index 1 or the
** running thread). */
static void push_hooks_and_key(lua_State *L, int arg) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &hooks_key);
  if (arg)
    lua_pushvalue(L, 1);
  else
    lua_pushthread(L);
}

/* debug.sethook([thread,] [hook, mask [, count]]) */
static int cov_sethook(lua_State *L) {
  int arg, mask = 0, count;
  lua_State *L1 = thread_arg(L, &arg);
  const char *smask;

  if (lua_isnoneornil(L, arg + 1)) {
    lua_settop(L, arg + 1);
    push_hooks_and_key(L, arg);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_sethook(L1, on_event, LUA_MASKLINE, 0);
    return 0;
  }
  smask = luaL_checkstring(L, arg + 2);
  luaL_checktype(L, arg + 1, LUA_TFUNCTION);
  count = (int)luaL_optinteger(L, arg + 3, 0);
  if (strchr(smask, 'c'))
    mask |= LUA_MASKCALL;
  if (strchr(smask, 'r'))
    mask |= LUA_MASKRET;
  if (strchr(smask, 'l'))
    mask |= LUA_MASKLINE;
  if (count > 0)
    mask |= LUA_MASKCOUNT;
  push_hooks_and_key(L, arg);
  lua_createtable(L, 4, 0);
  lua_pushvalue(L, arg + 1);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, arg + 2);
  lua_rawseti(L, -2, 2);
  lua_pushinteger(L, count);
  lua_rawseti(L, -2, 3);
  /* a tail call is a call to the hook's eyes, as in ldblib */
  lua_pushinteger(L, mask | ((mask & LUA_MASKCALL) << LUA_HOOKTAILCALL));
  lua_rawseti(L, -2, 4);
  lua_rawset(L, -3);
  lua_sethook(L1, on_event, mask | LUA_MASKLINE, count);
  return 0;
}

/* debug.gethook([thread]): the Lua code's hook, never the counter. */
static int cov_gethook(lua_State *L) {
  int arg;
  thread_arg(L, &arg);
  push_hooks_and_key(L, arg);
  if (lua_rawget(L, -2) != LUA_TTABLE) {
    luaL_pushfail(L);
    return 1;
  }
  lua_rawgeti(L, -1, 1);
  lua_rawgeti(L, -2, 2);
  lua_rawgeti(L, -3, 3);
  return 3;
}

/* }====================================================== */

void ac_host_coverage_start(lua_State *L) {
  const char *dir = getenv("AGENTCUBE_LUA_COVERAGE");
  if (dir == NULL || dir[0] == '\0')
    return;
  if (cov_dir == NULL) {
    if ((cov_dir = strdup(dir)) == NULL)
      return;
    atexit(dump);
  }
  /* the Lua code's hooks, by thread, held weakly as ldblib holds them */
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &hooks_key);
  if (lua_getglobal(L, "debug") == LUA_TTABLE) {
    lua_pushcfunction(L, cov_sethook);
    lua_setfield(L, -2, "sethook");
    lua_pushcfunction(L, cov_gethook);
    lua_setfield(L, -2, "gethook");
  }
  lua_pop(L, 1);
  lua_sethook(L, on_event, LUA_MASKLINE, 0);
}
