/*
** main.c -- the agentcube executable.
**
**   agentcube run FILE [--set k=v]... [--json] [--keep] [-v]
**   agentcube check FILE
**   agentcube repl
**   agentcube serve [...]
**   agentcube sessions [ls | rm ID...]
**   agentcube image build|ls|rm|prune [...]
**   agentcube mcp [--transport stdio|http] [...]
**   agentcube [options] [SCRIPT [ARGS]]     like lua5.4 (-e -l -i -v -W -)
**
** Exit statuses: 0 ok, 1 a step or script failed, 2 invalid workflow or
** usage, 130 interrupted.
*/
#include "cli.h"
#include "image.h"
#include "lua_host.h"
#include "mcp.h"
#include "serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

static const char usage_text[] =
  "usage: agentcube COMMAND [ARGS]\n"
  "\n"
  "  run FILE [--set k=v]... [--json] [--keep] [-v]\n"
  "                      run a workflow (YAML or Lua)\n"
  "  check FILE          validate a workflow without running it\n"
  "  repl                interactive Lua with agentcube loaded\n"
  "  serve [--listen ADDR:PORT] [--state-dir DIR] [--config FILE]\n"
  "        [--no-auth] [--daemon] [--check]\n"
  "                      run the local AgentCube runtime\n"
  "  sessions [ls | rm ID...]\n"
  "                      what the local runtime holds\n"
  "  image build|ls|rm|prune [--config FILE] [...]\n"
  "                      the templates' sandbox images\n"
  "  mcp [--transport stdio|http] [--listen ADDR:PORT] [--template NAME]\n"
  "      [--files-dir DIR] [--keep]\n"
  "                      the sandbox as Model Context Protocol tools\n"
  "  SCRIPT.lua [ARGS]   run a Lua script, like lua5.4\n"
  "  [-e STAT] [-l MOD] [-i] [-v] [-W] [SCRIPT [ARGS]]\n"
  "                      the options of lua5.4\n"
  "  --help, --version\n"
  "\n"
  "Without WORKLOAD_MANAGER_URL and ROUTER_URL, agentcube uses the local\n"
  "runtime in $AGENTCUBE_HOME (default ~/.agentcube), starting it when it\n"
  "is not running.\n";

int main(int argc, char **argv) {
  const char *cmd = argc > 1 ? argv[1] : NULL;
  int status;

  if (cmd && (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") ||
              !strcmp(cmd, "help"))) {
    fputs(usage_text, stdout);
    return 0;
  }
  if (cmd && !strcmp(cmd, "--version")) {
    printf("agentcube %s (%s)\n", AC_HOST_VERSION, LUA_RELEASE);
    return 0;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  /* The local runtime, when the module has to start one, is this very
  ** executable. */
  if (getenv("AGENTCUBE_BIN") == NULL) {
    char *self = realpath("/proc/self/exe", NULL);
    if (self) {
      setenv("AGENTCUBE_BIN", self, 0);
      free(self);
    }
  }
  if (cmd && !strcmp(cmd, "serve"))
    status = ac_serve_main(argc - 1, argv + 1);
  else if (cmd && !strcmp(cmd, "run"))
    status = ac_cmd_run(argc - 1, argv + 1);
  else if (cmd && !strcmp(cmd, "check"))
    status = ac_cmd_check(argc - 1, argv + 1);
  else if (cmd && !strcmp(cmd, "repl"))
    status = ac_cmd_repl(argc - 1, argv + 1);
  else if (cmd && !strcmp(cmd, "image"))
    status = ac_cmd_image(argc - 1, argv + 1);
  else if (cmd && !strcmp(cmd, "sessions"))
    status = ac_cmd_sessions(argc - 1, argv + 1);
  else if (cmd && !strcmp(cmd, "mcp"))
    status = ac_mcp_main(argc - 1, argv + 1);
  else
    status = ac_cmd_lua(argc, argv, usage_text);
  curl_global_cleanup();
  return status;
}
