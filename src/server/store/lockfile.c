/*
** lockfile.c -- exclusive locks that name their holder (see lockfile.h).
*/
#include "lockfile.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define WAIT_DEAD_HOLDER_MS 2000

/* Whether the holder the file names is a process that no longer exists. */
static int holder_dead(int fd) {
  char buf[32];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  long pid;
  char *end;

  if (n <= 0)
    return 0;
  buf[n] = '\0';
  pid = strtol(buf, &end, 10);
  if (end == buf || pid <= 0 || (*end != ' ' && *end != '\n'))
    return 0;
  return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

int ac_lock_take(int fd, const char *note) {
  struct timespec pause = { 0, 10 * 1000000L };
  char text[4300];
  int n;

  for (int waited = 0;; waited += 10) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
      break;
    if (errno != EWOULDBLOCK)
      return -1;
    if (waited >= WAIT_DEAD_HOLDER_MS || !holder_dead(fd)) {
      errno = EWOULDBLOCK;
      return -1;
    }
    nanosleep(&pause, NULL);
  }
  n = snprintf(text, sizeof text, "%ld %s\n", (long)getpid(), note);
  if (n >= (int)sizeof text)
    n = (int)sizeof text - 1;
  if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n) {
    /* the note is for people and for the next start: the lock counts */
  }
  return 0;
}
