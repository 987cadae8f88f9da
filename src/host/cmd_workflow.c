/*
** cmd_workflow.c -- `agentcube run` and `agentcube check`: argument
** parsing here, the work in the Lua workflow engine (agentcube.workflow).
*/
#include "cli.h"
#include "shown.h"
#include "lua_host.h"
#include "repl.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

static const char run_usage[] =
  "usage: agentcube run FILE [--set NAME=VALUE]... [--json] [--keep] [-v]\n"
  "  --set NAME=VALUE  set a workflow input (repeatable)\n"
  "  --json            print a machine-readable report on stdout\n"
  "  --keep            keep every session the workflow created\n"
  "  -v, --verbose     show each step's stdout and stderr while it runs,\n"
  "                    line by line: 'ID | line' (stdout), 'ID ! line'\n"
  "                    (stderr); and the Lua frames of a failed lua step\n"
  "Ctrl-C or SIGTERM cancels the running commands, runs the finally steps\n"
  "and deletes the sessions the run created (exit 130).\n";

/* opts.interrupted: whether ^C or SIGTERM arrived. */
static int l_interrupted(lua_State *L) {
  lua_pushboolean(L, ac_host_interrupted != 0);
  return 1;
}

/* Calls agentcube.workflow[fn](path, opts); opts is on the stack top. */
static int call_engine(lua_State *L, const char *fn, const char *path,
                       int *status) {
  int top = lua_gettop(L), rc;           /* opts at top */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "agentcube.workflow");
  rc = ac_host_docall(L, 1, 1);
  if (rc != LUA_OK)
    goto fail;
  lua_getfield(L, -1, fn);
  lua_remove(L, -2);                     /* opts, fn */
  lua_pushstring(L, path);
  lua_pushvalue(L, top);                 /* opts, fn, path, opts */
  rc = ac_host_docall(L, 2, 2);
  if (rc != LUA_OK)
    goto fail;
  return 0;
fail:
  *status = ac_host_error_status(L, -1);
  ac_host_report(L, "agentcube");
  return -1;
}

int ac_cmd_run(int argc, char **argv) {
  const char *file = NULL;
  lua_State *L;
  int status = 0;

  if ((L = ac_host_newstate()) == NULL)
    return 1;
  lua_newtable(L);                                   /* opts */
  lua_newtable(L);
  lua_setfield(L, -2, "set");
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--set") || !strncmp(a, "--set=", 6)) {
      const char *kv = a[5] == '=' ? a + 6 : (i + 1 < argc ? argv[++i] : NULL);
      const char *eq = kv ? strchr(kv, '=') : NULL;
      if (eq == NULL || eq == kv) {
        fprintf(stderr, "agentcube run: --set needs NAME=VALUE\n%s",
                run_usage);
        lua_close(L);
        return 2;
      }
      lua_getfield(L, -1, "set");
      lua_pushlstring(L, kv, (size_t)(eq - kv));
      lua_pushstring(L, eq + 1);
      lua_settable(L, -3);
      lua_pop(L, 1);
    } else if (!strcmp(a, "--json")) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "json");
    } else if (!strcmp(a, "--keep")) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "keep");
    } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "verbose");
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(run_usage, stdout);
      lua_close(L);
      return 0;
    } else if (a[0] == '-' || file) {
      fprintf(stderr, "agentcube run: unexpected argument '%s'\n%s", a,
              run_usage);
      lua_close(L);
      return 2;
    } else {
      file = a;
    }
  }
  if (file == NULL) {
    fputs(run_usage, stderr);
    lua_close(L);
    return 2;
  }
  lua_pushcfunction(L, l_interrupted);
  lua_setfield(L, -2, "interrupted");
  lua_pushboolean(L, isatty(STDOUT_FILENO));
  lua_setfield(L, -2, "tty");
  ac_host_polled_interrupts(1);
  if (call_engine(L, "run", file, &status) == 0)
    status = (int)luaL_optinteger(L, -2, 1);
  lua_close(L);        /* deletes every session the run still owns */
  return status;
}

#define CHECK_MEMORY_LIMIT ((size_t)512 << 20)

int ac_cmd_check(int argc, char **argv) {
  lua_State *L;
  int status = 0;

  if (argc != 2 || argv[1][0] == '-') {
    fprintf(stderr, "usage: agentcube check FILE\n");
    return 2;
  }
  /* the module bounds what a checked file may spend; this caps the whole
  ** process, also against one big allocation between two of its looks */
  if ((L = ac_host_newstate_capped(CHECK_MEMORY_LIMIT)) == NULL)
    return 1;
  lua_newtable(L);
  if (call_engine(L, "check", argv[1], &status) == 0) {
    if (lua_toboolean(L, -2)) {
      ac_shown_fputs(argv[1], stdout);
      printf(": ok\n");
      status = 0;
    } else {
      ac_shown_fputs(luaL_optstring(L, -1, "invalid workflow"), stderr);
      fputc('\n', stderr);
      status = 2;
    }
  }
  lua_close(L);
  return status;
}

int ac_cmd_repl(int argc, char **argv) {
  char *args[] = { argv[0], (char *)"-i", NULL };
  (void)argc;
  return ac_cmd_lua(2, args, "usage: agentcube repl\n");
}
