/*
** fuzz_json_body.c -- every route's JSON body goes through the budget
** check and jansson; the route handlers then read fields of the result.
** Invariant: a body the check lets through parses within the value
** budget (bounded memory), and no input crashes either step.
*/
#include "budget.h"
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

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
    /* what the routes read */
    (void)json_string_value(json_object_get(j, "path"));
    (void)json_array_size(json_object_get(j, "command"));
    json_decref(j);
  }
  return 0;
}
