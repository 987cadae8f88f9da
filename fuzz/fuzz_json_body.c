/*
** fuzz_json_body.c -- every route's JSON body goes through the budget
** check and jansson; then the fields the routes read: command, env,
** working_dir and timeout of execute, processes and contexts through the
** routes' own exec_args_parse. Invariants: a body the check lets through
** parses within the value budget (bounded memory); an accepted command has
** an argv[0]; a refusal says why; nothing crashes or leaks.
*/
#include "budget.h"
#include "config.h"
#include "exec_args.h"
#include "fuzz_noagent.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t count(json_t *j) {
  size_t n = 1, i;
  const char *k;
  json_t *v;
  if (json_is_object(j))
    json_object_foreach(j, k, v) n += count(v);
  else if (json_is_array(j))
    json_array_foreach(j, i, v) n += count(v);
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct ac_config cfg;
  static int ready;
  json_error_t jerr;
  const char *why;
  json_t *j;

  if (!ready) {
    struct ac_error err;
    ac_config_defaults(&cfg, &err);
    cfg.max_json_nodes = 5000;
    cfg.max_json_depth = 32;
    ready = 1;
  }
  j = budget_json_load(&cfg, (const char *)data, size, &jerr, &why);
  if (j) {
    if (count(j) > cfg.max_json_nodes)
      abort();            /* the pre-check let too many values through */
    /* what the routes read: execute, processes and contexts take their
    ** command, env, working_dir and timeout through exec_args_parse,
    ** with the fallback template's defaults */
    {
      struct exec_args a;
      char msg[512];
      memset(&a, 0, sizeof a);
      if (exec_args_parse(j, &cfg.fallback, 60000000000LL, &a, msg,
                          sizeof msg)) {
        if (a.argv == NULL || a.argv[0] == NULL)
          abort();        /* accepted without a command */
      } else if (msg[0] == '\0') {
        abort();          /* refused without saying why */
      }
      exec_args_free(&a);
    }
    (void)json_string_value(json_object_get(j, "path"));
    json_decref(j);
  }
  return 0;
}
