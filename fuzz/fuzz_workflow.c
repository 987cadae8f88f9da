/*
** fuzz_workflow.c -- the workflow front end on untrusted YAML: the
** loader (src/lua/yaml_load.c) and the validator. Either may refuse the
** input with a message; neither may raise or crash.
*/
#include "fuzz_lua.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char driver[] =
  "local text = ...\n"
  "local load = require 'agentcube.workflow.load'\n"
  "local validate = require 'agentcube.workflow.validate'\n"
  "local value, marks = load.yaml(text, 'fuzz.yaml')\n"
  "if value == nil then\n"
  "  assert(type(marks) == 'string', 'no message for a refused file')\n"
  "  return\n"
  "end\n"
  "local wf, err = validate.validate(value, { file = 'fuzz.yaml',\n"
  "  marks = marks, source = text, is_lua = false })\n"
  "assert(wf or type(err) == 'string', 'no message for an invalid file')\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_lua_run(driver, (const char *)data, size);
  return 0;
}
