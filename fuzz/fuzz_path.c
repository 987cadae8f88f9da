/*
** fuzz_path.c -- path resolution of the file API: a client path mapped
** to a path below the box root. Invariant: whatever is accepted stays
** below the root (no "..", no leading '/', one of the session's trees).
*/
#include "fileapi.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *path = malloc(size + 1), out[4096];
  struct ac_error err;

  if (path == NULL)
    return 0;
  memcpy(path, data, size);
  path[size] = '\0';
  if (fapi_map_path(path, out, sizeof out, &err) == AC_OK) {
    size_t n = strlen(out);
    if (out[0] == '/' || strstr(out, "/../") || strncmp(out, "../", 3) == 0
        || (n >= 3 && strcmp(out + n - 3, "/..") == 0) ||
        strcmp(out, "..") == 0)
      abort();
    if (strncmp(out, "workspace", 9) && strncmp(out, "tmp", 3) &&
        strncmp(out, "home/sandbox", 12))
      abort();
  }
  (void)fapi_parse_mode(path);
  free(path);
  return 0;
}
