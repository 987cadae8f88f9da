/*
** sandbox_util.c -- helpers shared by the sandbox modules.
*/
#include "sandbox_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

char *sbxu_join(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  int slash = !(la && a[la - 1] == '/') && !(lb && b[0] == '/');
  char *p = malloc(la + lb + 2);
  if (p == NULL)
    return NULL;
  memcpy(p, a, la);
  if (slash)
    p[la++] = '/';
  memcpy(p + la, b, lb + 1);
  return p;
}

char *sbxu_fmt(const char *fmt, ...) {
  va_list ap;
  int n;
  char *p;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return NULL;
  p = malloc((size_t)n + 1);
  if (p == NULL)
    return NULL;
  va_start(ap, fmt);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return p;
}

int sbxu_write_file(const char *path, const char *s) {
  size_t len = strlen(s);
  ssize_t n;
  int saved, fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return -1;
  n = write(fd, s, len);
  saved = errno;
  close(fd);
  if (n < 0) {
    errno = saved;
    return -1;
  }
  if ((size_t)n != len) {
    errno = EIO;
    return -1;
  }
  return 0;
}

long sbxu_read_file(const char *path, char *buf, size_t size) {
  size_t len = 0;
  int saved, fd;
  if (size == 0) {
    errno = EINVAL;
    return -1;
  }
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return -1;
  while (len < size - 1) {
    ssize_t n = read(fd, buf + len, size - 1 - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      saved = errno;
      close(fd);
      errno = saved;
      return -1;
    }
    if (n == 0)
      break;
    len += (size_t)n;
  }
  close(fd);
  buf[len] = '\0';
  return (long)len;
}

int sbxu_find_counter(const char *text, const char *key,
                      unsigned long long *out) {
  size_t klen = strlen(key);
  const char *p = text;
  while (p && *p) {
    if (strncmp(p, key, klen) == 0 && p[klen] == ' ') {
      char *end;
      errno = 0;
      *out = strtoull(p + klen + 1, &end, 10);
      if (errno == 0 && end != p + klen + 1)
        return 0;
      return -1;
    }
    p = strchr(p, '\n');
    if (p)
      p++;
  }
  return -1;
}

uint64_t sbxu_hash(const char *s) {
  uint64_t h = 14695981039346656037ULL;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  return h;
}

void sbxu_sleep_ms(long ms) {
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
}

long long sbxu_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int sbxu_memfd(const char *name, const void *data, size_t len) {
  ssize_t n;
  int saved, fd = memfd_create(name, MFD_CLOEXEC);
  if (fd < 0)
    return -1;
  /* A memfd takes a write whole or not at all (out of memory); pwrite
  ** leaves the offset at 0 for the reader. */
  n = len > 0 ? pwrite(fd, data, len, 0) : 0;
  if (n != (ssize_t)len) {
    saved = n < 0 ? errno : EIO;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}
