/*
** main.c -- the agentcube executable: dispatches subcommands.
*/
#include "serve.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#ifndef AGENTCUBE_VERSION
#define AGENTCUBE_VERSION "0.1.0"
#endif

static const char usage_text[] =
  "usage: agentcube COMMAND [ARGS]\n"
  "\n"
  "  serve [--listen ADDR:PORT] [--state-dir DIR] [--config FILE]\n"
  "        [--no-auth] [--daemon] [--check]\n"
  "                      run the local AgentCube runtime\n"
  "  --help              this text\n"
  "  --version           the version\n";

int main(int argc, char **argv) {
  int status;
  if (argc < 2) {
    fputs(usage_text, stderr);
    return 2;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    fputs(usage_text, stdout);
    return 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("agentcube %s\n", AGENTCUBE_VERSION);
    return 0;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (!strcmp(argv[1], "serve")) {
    status = ac_serve_main(argc - 1, argv + 1);
  } else {
    fprintf(stderr, "agentcube: unknown command '%s'\n%s", argv[1],
            usage_text);
    status = 2;
  }
  curl_global_cleanup();
  return status;
}
