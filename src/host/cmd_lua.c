/*
** cmd_lua.c -- `agentcube [options] [script [args]]`, lua5.4's command line
** with agentcube preloaded, so that any tool that runs `lua` can run the
** host instead (busted --lua=build/agentcube).
*/
#include "cli.h"
#include "lua_host.h"
#include "repl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

struct opts {
  int interactive, version, warnings, script;  /* script: argv index */
};

static int bad_usage(const char *usage, const char *what) {
  fprintf(stderr, "agentcube: %s\n%s", what, usage);
  return 2;
}

/* Parses lua.c's options; returns 0, or an exit status on a usage error. */
static int parse(int argc, char **argv, struct opts *o, const char *usage) {
  int i;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-')
      break;
    if (!strcmp(a, "--")) {
      i++;
      break;
    }
    if (!strcmp(a, "-"))
      break;
    if (!strcmp(a, "-i"))
      o->interactive = 1;
    else if (!strcmp(a, "-v"))
      o->version = 1;
    else if (!strcmp(a, "-W"))
      o->warnings = 1;
    else if (!strcmp(a, "-E"))
      ;  /* environment variables are not read by the host anyway */
    else if (!strcmp(a, "-e") || !strcmp(a, "-l")) {
      if (++i >= argc)
        return bad_usage(usage, "'-e' and '-l' need an argument");
    } else if ((a[1] == 'e' || a[1] == 'l') && a[2])
      ;  /* -estat, -lmod */
    else {
      char msg[128];
      snprintf(msg, sizeof msg, "unrecognized option '%s'", a);
      return bad_usage(usage, msg);
    }
  }
  o->script = i < argc ? i : 0;
  return 0;
}

/* Runs -e and -l in order, like lua.c's runargs. */
static int run_args(lua_State *L, char **argv, int upto) {
  for (int i = 1; i < upto; i++) {
    const char *a = argv[i], *v;
    int status;
    if (a[0] != '-' || (a[1] != 'e' && a[1] != 'l'))
      continue;
    v = a[2] ? a + 2 : argv[++i];
    if (a[1] == 'e') {
      status = luaL_loadbuffer(L, v, strlen(v), "=(command line)");
      if (status == LUA_OK)
        status = ac_host_docall(L, 0, 0);
    } else {
      lua_getglobal(L, "require");
      lua_pushstring(L, v);
      status = ac_host_docall(L, 1, 1);
      if (status == LUA_OK)
        lua_setglobal(L, v);
    }
    if (status != LUA_OK) {
      int st = ac_host_error_status(L, -1);
      ac_host_report(L, "agentcube");
      return st;
    }
  }
  return 0;
}

static int run_script(lua_State *L, char **argv, int argc, int script) {
  const char *fname = argv[script];
  int status, n;
  if (!strcmp(fname, "-") && strcmp(argv[script - 1], "--"))
    fname = NULL;                            /* stdin */
  status = luaL_loadfilex(L, fname, "t");
  if (status != LUA_OK) {
    ac_host_report(L, "agentcube");
    return 1;
  }
  n = argc - script - 1;
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (int i = 1; i <= n; i++)
    lua_pushstring(L, argv[script + i]);
  status = ac_host_docall(L, n, 0);
  if (status != LUA_OK) {
    int st = ac_host_error_status(L, -1);
    ac_host_report(L, "agentcube");
    return st;
  }
  return 0;
}

int ac_cmd_lua(int argc, char **argv, const char *usage) {
  struct opts o = { 0, 0, 0, 0 };
  lua_State *L;
  int status = parse(argc, argv, &o, usage);

  if (status)
    return status;
  if ((L = ac_host_newstate()) == NULL)
    return 1;
  if (o.warnings)
    lua_warning(L, "@on", 0);
  ac_host_argtable(L, argv, argc, o.script ? o.script : 0);
  /* the banner, as lua.c prints it: asked for, or before a prompt */
  if (o.version || ((o.interactive || (!o.script && argc == 1)) &&
                    isatty(STDIN_FILENO)))
    printf("agentcube %s (%s)\n", AC_HOST_VERSION, LUA_RELEASE);
  /* agentcube is there from the start, as in the REPL */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "agentcube");
  if (ac_host_docall(L, 1, 1) != LUA_OK) {
    ac_host_report(L, "agentcube");
    lua_close(L);
    return 1;
  }
  lua_setglobal(L, "agentcube");
  status = run_args(L, argv, o.script ? o.script : argc);
  if (status == 0 && o.script)
    status = run_script(L, argv, argc, o.script);
  if (status == 0 && (o.interactive || (!o.script && argc == 1))) {
    if (isatty(STDIN_FILENO))
      status = ac_repl_loop(L);
    else
      status = ac_repl_stdin(L);
  } else if (status == 0 && !o.script && !o.version && !o.interactive &&
             argc > 1) {
    /* only -e/-l given: done, like lua.c */
  }
  lua_close(L);   /* deletes every session the script still owns */
  return status;
}
