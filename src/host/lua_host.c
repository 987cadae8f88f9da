/*
** lua_host.c -- the host's Lua state, protected calls and interrupts,
** following lua.c: a C signal cannot touch a Lua state, so SIGINT only sets
** a flag and a hook; the hook raises the error at the next Lua instruction,
** and libagentcube sees the same flag and aborts a transfer in flight.
*/
#include "lua_host.h"
#include "embed.h"
#include "lua_coverage.h"
#include "shown.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

int luaopen_agentcube_core(lua_State *L);

volatile sig_atomic_t ac_host_interrupted;

/* lua.c keeps the running state in a static for the same reason: the
** signal handler has no other way to reach it. */
static lua_State *running_state;

/* {====================================================== interrupts */

static void hook_stop(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

/* Whether the next interrupt raises an error in Lua (scripts, the REPL)
** or only sets the flag for code that polls it (the workflow engine, which
** must get to delete its sessions). */
static int raise_on_signal = 1;

static void on_signal(int sig) {
  int mask = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
  signal(sig, SIG_DFL);           /* a second ^C kills the process */
  ac_host_interrupted = 1;
  if (running_state && raise_on_signal)
    lua_sethook(running_state, hook_stop, mask, 1);
}

void ac_host_polled_interrupts(int polled) {
  raise_on_signal = !polled;
}

/* Whether the error at idx is an agentcube.Error with code
** EINTERRUPTED: a call the binding cut short on Ctrl-C. Raw lookups. */
static int interrupted_error(lua_State *L, int idx) {
  int yes = 0;
  if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx))
    return 0;
  luaL_getmetatable(L, "agentcube.Error");
  if (lua_rawequal(L, -1, -2)) {
    lua_pushliteral(L, "code");
    lua_rawget(L, idx);
    yes = lua_type(L, -1) == LUA_TSTRING &&
          strcmp(lua_tostring(L, -1), "EINTERRUPTED") == 0;
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  return yes;
}

static int msghandler(lua_State *L) {
  const char *msg;
  /* the binding's own Ctrl-C handling ended the call: an interruption
  ** for the exit status (130), like the hook's */
  if (interrupted_error(L, 1))
    ac_host_interrupted = 1;
  msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else
      msg = lua_pushfstring(L, "(error object is a %s value)",
                            luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int ac_host_docall(lua_State *L, int narg, int nres) {
  int status, base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  running_state = L;
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  status = lua_pcall(L, narg, nres, base);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  running_state = NULL;
  lua_remove(L, base);
  return status;
}

void ac_host_report(lua_State *L, const char *progname) {
  const char *msg = lua_tostring(L, -1);
  if (msg == NULL)
    msg = "(error object is not a string)";
  /* an agentcube.Error already reads "agentcube: CODE: ..." */
  size_t n = progname ? strlen(progname) : 0;
  if (progname && !strncmp(msg, progname, n) && !strncmp(msg + n, ": ", 2))
    progname = NULL;
  fprintf(stderr, "%s%s", progname ? progname : "", progname ? ": " : "");
  ac_shown_fputs(msg, stderr);
  fputc('\n', stderr);
  fflush(stderr);
  lua_pop(L, 1);
}

int ac_host_error_status(lua_State *L, int idx) {
  (void)L;
  (void)idx;
  return ac_host_interrupted ? 130 : 1;
}

/* }====================================================== */

/* {====================================================== the state */

/* package.preload loader for an embedded module; upvalue 1 is the index
** entry, as a light userdata (the table is static). */
static int load_embedded(lua_State *L) {
  const struct ac_embedded *e = lua_touserdata(L, lua_upvalueindex(1));
  const char *dir = getenv("AGENTCUBE_LUA_DIR");
  if (dir && *dir) {
    /* development: the source tree wins over the copy in the binary */
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->chunkname + 1);
    if (luaL_loadfilex(L, path, "t") == LUA_OK)
      goto loaded;
    lua_pop(L, 1);
  }
  /* precompiled by the build from our own sources (embed_gen.sh) */
  if (luaL_loadbufferx(L, (const char *)e->src, e->len, e->chunkname, "b"))
    return lua_error(L);
loaded:
  lua_pushstring(L, e->module);
  lua_call(L, 1, 1);
  return 1;
}

static int open_state(lua_State *L) {
  luaL_checkversion(L);
  lua_gc(L, LUA_GCSTOP);
  luaL_openlibs(L);
  /* agentcube.core is linked in; the Lua side comes from the binary */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_agentcube_core);
  lua_setfield(L, -2, "agentcube.core");
  for (const struct ac_embedded *e = ac_embedded_modules; e->module; e++) {
    lua_pushlightuserdata(L, (void *)e);
    lua_pushcclosure(L, load_embedded, 1);
    lua_setfield(L, -2, e->module);
  }
  lua_pop(L, 1);
  /* libagentcube polls this flag during transfers (see the module) */
  lua_pushlightuserdata(L, (void *)&ac_host_interrupted);
  lua_setfield(L, LUA_REGISTRYINDEX, "agentcube.interrupt");
  lua_gc(L, LUA_GCRESTART);
  lua_gc(L, LUA_GCGEN, 0, 0);
  ac_host_coverage_start(L);     /* AGENTCUBE_LUA_COVERAGE only */
  return 0;
}

/* The allocator of a capped state: lauxlib's, refusing to grow past the
** cap. Lua turns a refusal into a "not enough memory" error, after an
** emergency collection. One capped state per process (the check). */
struct capped {
  lua_Alloc f;
  void *ud;
  size_t limit;
  long long used;
};
static struct capped capped;

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  struct capped *c = ud;
  long long old = ptr != NULL ? (long long)osize : 0;
  void *p;
  if (nsize > 0 && (long long)nsize > old &&
      c->used + ((long long)nsize - old) > (long long)c->limit)
    return NULL;
  p = c->f(c->ud, ptr, osize, nsize);
  if (p != NULL || nsize == 0)
    c->used += (long long)nsize - old;
  return p;
}

lua_State *ac_host_newstate_capped(size_t limit) {
  lua_State *L = luaL_newstate();
  if (L == NULL)
    return NULL;
  capped.f = lua_getallocf(L, &capped.ud);
  capped.limit = limit;
  capped.used = 0;
  lua_setallocf(L, capped_alloc, &capped);
  lua_pushcfunction(L, open_state);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    fprintf(stderr, "agentcube: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return NULL;
  }
  return L;
}

lua_State *ac_host_newstate(void) {
  lua_State *L = luaL_newstate();
  if (L == NULL)
    return NULL;
  lua_pushcfunction(L, open_state);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    fprintf(stderr, "agentcube: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return NULL;
  }
  return L;
}

void ac_host_argtable(lua_State *L, char **argv, int argc, int script) {
  lua_createtable(L, argc - script - 1 > 0 ? argc - script - 1 : 0,
                  script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/* }====================================================== */
