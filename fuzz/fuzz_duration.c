/*
** fuzz_duration.c -- Go duration strings ("1m30s") and Kubernetes
** quantities ("512Mi", "500m") of requests and the configuration.
*/
#include "config.h"
#include "duration.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  long long ns;
  unsigned long long q;
  unsigned milli;
  struct ac_error err;

  if (s == NULL)
    return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  (void)ac_duration_parse(s, &ns, &err);
  (void)ac_parse_quantity(s, &q);
  (void)ac_parse_cpu(s, &milli);
  free(s);
  return 0;
}
