/*
** mcp_main.c -- `agentcube mcp`: options, then the chosen transport.
**
** The environment variables of AgentCube's own MCP server are read as
** defaults (CODE_INTERPRETER_NAME, AGENTCUBE_NAMESPACE,
** CODE_INTERPRETER_SESSION_TTL, MCP_TRANSPORT, MCP_HOST, MCP_PORT; the
** endpoints and API_TOKEN in the backend), so a host configured for it
** only changes its command line.
*/
#include "mcp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
  "usage: agentcube mcp [--transport stdio|http] [--listen ADDR:PORT]\n"
  "                     [--template NAME] [--namespace NS] [--ttl SECONDS]\n"
  "                     [--files-dir DIR] [--keep] [--idle-timeout SECONDS]\n"
  "                     [-v]\n"
  "\n"
  "A Model Context Protocol server: the sandbox as tools (run_code,\n"
  "execute_command, files, sessions) for AI agents. stdio by default;\n"
  "--transport http serves Streamable HTTP at http://ADDR:PORT/mcp\n"
  "(default 127.0.0.1:8000). Without WORKLOAD_MANAGER_URL and ROUTER_URL\n"
  "it uses the local runtime, started on first use. Sessions it creates\n"
  "are deleted when the client disconnects, unless --keep. upload_file and\n"
  "download_file exist only with --files-dir, and only inside DIR.\n";

static const char *env_or(const char *name, const char *dflt) {
  const char *v = getenv(name);
  return v != NULL && *v ? v : dflt;
}

static int number(const char *opt, const char *s, long long min,
                  long long *out) {
  char *end;
  long long v = strtoll(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < min) {
    fprintf(stderr, "agentcube mcp: %s needs a whole number >= %lld, "
            "not '%s'\n", opt, min, s);
    return 0;
  }
  *out = v;
  return 1;
}

/* Whether opt is one of the options that take a value: an unknown option
** is named as unknown, also when it is the last word. */
static int takes_value(const char *opt) {
  static const char *const names[] = {
    "--transport", "--listen", "--host", "--port", "--template",
    "--namespace", "--files-dir", "--ttl", "--idle-timeout", NULL
  };
  for (int i = 0; names[i] != NULL; i++)
    if (!strcmp(opt, names[i]))
      return 1;
  return 0;
}

int ac_mcp_main(int argc, char **argv) {
  struct mcp_options o;
  struct mcp_backend *b = NULL;
  struct mcp_hostdir *hostdir = NULL;
  struct ac_error err;
  static char listen[300];
  const char *host = env_or("MCP_HOST", NULL), *port = env_or("MCP_PORT",
                                                              NULL);
  long long v;
  int status;

  memset(&o, 0, sizeof o);
  o.transport = env_or("MCP_TRANSPORT", "stdio");
  o.template_name = env_or("CODE_INTERPRETER_NAME", AC_DEFAULT_NAME);
  o.ns = env_or("AGENTCUBE_NAMESPACE", AC_DEFAULT_NAMESPACE);
  o.ttl = AC_DEFAULT_TTL;
  if (!number("CODE_INTERPRETER_SESSION_TTL",
              env_or("CODE_INTERPRETER_SESSION_TTL", "3600"), 1, &o.ttl))
    return 2;
  o.idle_timeout = 1800;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    int takes = 1;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(usage, stdout);
      return 0;
    } else if (!strcmp(a, "--keep")) {
      o.keep = 1, takes = 0;
    } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
      o.verbose = 1, takes = 0;
    } else if (a[0] != '-') {
      fprintf(stderr, "agentcube mcp: unexpected argument\n%s", usage);
      return 2;
    } else if (!takes_value(a)) {
      fprintf(stderr, "agentcube mcp: unknown option %s\n%s", a, usage);
      return 2;
    } else if (val == NULL) {
      fprintf(stderr, "agentcube mcp: missing value\n%s", usage);
      return 2;
    } else if (!strcmp(a, "--transport")) {
      o.transport = val;
    } else if (!strcmp(a, "--listen")) {
      o.listen = val;
    } else if (!strcmp(a, "--host")) {
      host = val;
    } else if (!strcmp(a, "--port")) {
      port = val;
    } else if (!strcmp(a, "--template")) {
      o.template_name = val;
    } else if (!strcmp(a, "--namespace")) {
      o.ns = val;
    } else if (!strcmp(a, "--files-dir")) {
      o.files_dir = val;
    } else if (!strcmp(a, "--ttl")) {
      if (!number(a, val, 1, &o.ttl))
        return 2;
    } else if (!strcmp(a, "--idle-timeout")) {
      if (!number(a, val, 1, &v))
        return 2;
      o.idle_timeout = (long)v;
    }
    i += takes;
  }
  if (!strcmp(o.transport, "streamable-http"))
    o.transport = "http";
  if (strcmp(o.transport, "stdio") && strcmp(o.transport, "http")) {
    fprintf(stderr, "agentcube mcp: --transport must be stdio or http, not "
            "'%s'\n", o.transport);
    return 2;
  }
  if (o.listen == NULL) {
    snprintf(listen, sizeof listen, "%s:%s", host ? host : "127.0.0.1",
             port ? port : "8000");
    o.listen = listen;
  }
  if (o.files_dir != NULL &&
      mcp_hostdir_open(o.files_dir, &hostdir, &err) != AC_OK) {
    fprintf(stderr, "agentcube mcp: %s\n", err.msg);
    return 2;
  }
  if (mcp_backend_new(&o, &b, &err) != AC_OK) {
    fprintf(stderr, "agentcube mcp: %s\n", err.msg);
    mcp_hostdir_close(hostdir);
    return 1;
  }
  if (!strcmp(o.transport, "http"))
    status = mcp_http_run(&o, b, hostdir);
  else
    status = mcp_stdio_run(&o, b, hostdir);
  mcp_backend_free(b);
  mcp_hostdir_close(hostdir);
  return status;
}
