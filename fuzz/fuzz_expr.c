/*
** fuzz_expr.c -- the workflow expression language (${{ ... }}): parsing,
** checking and evaluation in its sandbox with a small context. An
** expression may fail with a message; it may not raise past expand, nor
** run unbounded.
*/
#include "fuzz_lua.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char driver[] =
  "local src = ...\n"
  "local expr = require 'agentcube.workflow.expr'\n"
  "expr.check(src)\n"
  "local env = expr.env{ inputs = { name = 'x', n = 3, list = { 1, 2 } },\n"
  "  steps = { a = { outputs = { v = '1' }, exit_code = 0 } },\n"
  "  env = { HOME = '/h' }, workflow = { name = 'w' } }\n"
  "local ok, v = expr.expand(src, env)\n"
  "assert(type(ok) == 'boolean', 'expand returned no status')\n"
  "expr.expand('${{ ' .. src .. ' }}', env)\n"
  "expr.condition(src, env)\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_lua_run(driver, (const char *)data, size);
  return 0;
}
