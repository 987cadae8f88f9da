/*
** fuzz_output.c -- command output and file names on their way into JSON:
** UTF-8 repair, the encoded-size cut, the escaped form of non-UTF-8
** names. Invariants: the cut's encoded size is within the budget and on a
** character boundary; escaped names are valid UTF-8 that jansson takes.
*/
#include "budget.h"
#include "utf8.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  size_t len, budget = size ? data[0] * 7u : 0, fit;
  char *clean = utf8_sanitize(s, size, &len), *esc;
  json_t *j;

  if (clean == NULL)
    return 0;
  if (!utf8_valid(clean, len))
    abort();
  fit = budget_json_fit(clean, len, budget);
  if (fit > len || budget_json_size(clean, fit) > budget ||
      !utf8_valid(clean, fit))
    abort();
  j = json_stringn(clean, fit);
  if (j == NULL)
    abort();
  {
    char *text = json_dumps(j, JSON_ENCODE_ANY);
    if (text == NULL || strlen(text) != budget_json_size(clean, fit) + 2)
      abort();
    free(text);
  }
  json_decref(j);
  if (clean != s)
    free(clean);
  esc = utf8_escape_name(s, size);
  if (esc == NULL)
    return 0;
  /* (a file name holds no NUL; the escaped form ends at the first one) */
  if (!utf8_valid(esc, strlen(esc)) || (j = json_string(esc)) == NULL)
    abort();
  json_decref(j);
  free(esc);
  return 0;
}
