/*
** fuzz_config.c -- the server's YAML configuration (templates, limits).
** Loaded from a memfd, as from a file.
*/
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct ac_config cfg;
  struct ac_error err;
  char path[64];
  int fd = memfd_create("config.yaml", MFD_CLOEXEC);

  if (fd < 0)
    return 0;
  if (write(fd, data, size) != (ssize_t)size) {
    close(fd);
    return 0;
  }
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ac_config_defaults(&cfg, &err);
  if (ac_config_load(&cfg, path, &err) == AC_OK)
    (void)ac_config_find(&cfg, "default", "my-interpreter");
  ac_config_free(&cfg);
  close(fd);
  return 0;
}
