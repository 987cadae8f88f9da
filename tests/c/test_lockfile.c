/*
** test_lockfile.c -- a server's exclusive locks (serve.lock, its uid
** block): a live holder is refused at once; a holder killed while a child
** it was starting still shares the lock is waited for, so that a restart
** right after kill -9 does not report another server.
*/
#include "lockfile.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char path[64] = "/tmp/agentcube-lock-XXXXXX";

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static long holder(void) {
  char buf[64] = "";
  int fd = open(path, O_RDONLY);
  ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0)
    close(fd);
  buf[n > 0 ? n : 0] = '\0';
  return strtol(buf, NULL, 10);
}

/* A live holder (a child that keeps the lock until told): refused at once,
** with EWOULDBLOCK; once it is gone the lock is ours. */
static void live_holder(void) {
  int go[2], ready[2], fd;
  pid_t c;
  char b;
  double t0;

  tcase("a live holder is refused at once; free, the lock is taken and "
        "names its holder");
  REQUIRE(pipe(go) == 0 && pipe(ready) == 0, "pipes");
  if ((c = fork()) == 0) {
    int cfd = open(path, O_RDWR);
    char r = ac_lock_take(cfd, "child") == 0 ? 'y' : 'n';
    close(go[1]);               /* so that the parent's close ends read */
    if (write(ready[1], &r, 1) != 1 || read(go[0], &b, 1) < 0)
      _exit(1);
    _exit(0);
  }
  REQUIRE(c > 0 && read(ready[0], &b, 1) == 1 && b == 'y',
          "the child holds the lock");
  fd = open(path, O_RDWR);
  t0 = now();
  errno = 0;
  is_int(ac_lock_take(fd, "me"), -1, "refused while the holder lives");
  is_int(errno, EWOULDBLOCK, "errno EWOULDBLOCK");
  ok(now() - t0 < 1.0, "at once (%.2f s), not after the wait for a dead "
     "holder", now() - t0);
  is_int(holder(), c, "the file names the live holder");
  close(go[1]);
  waitpid(c, NULL, 0);
  is_int(ac_lock_take(fd, "me"), 0, "taken once the holder is gone");
  is_int(holder(), getpid(), "the file names us");
  close(fd);
  close(go[0]);
  close(ready[0]);
  close(ready[1]);
}

/* Lets the dead holder's child go (closes its pipe) a moment later, while
** the main thread waits for the lock. */
static void *release_later(void *arg) {
  struct timespec ts = { 0, 100 * 1000000L };
  nanosleep(&ts, NULL);
  close(*(int *)arg);
  return NULL;
}

/* The holder dies (like a server killed with SIGKILL) while a child it
** forked still shares the locked file description (a child about to exec):
** the child lets go only when told. */
static void dead_holder(void) {
  int p[2], rel[2], fd, rc;
  pid_t a, b = 0;
  pthread_t th;
  double t0, waited;

  tcase("a holder that died while its child still shares the lock is "
        "waited for, not taken for another server");
  REQUIRE(pipe(p) == 0 && pipe(rel) == 0, "pipes");
  if ((a = fork()) == 0) {
    int afd = open(path, O_RDWR);
    pid_t kid;
    if (ac_lock_take(afd, "dying server") != 0)
      _exit(1);
    if ((kid = fork()) == 0) {
      char c;
      close(rel[1]);
      if (read(rel[0], &c, 1) < 0)   /* until the test closes its end */
        _exit(1);
      _exit(0);
    }
    if (write(p[1], &kid, sizeof kid) != sizeof kid)
      _exit(1);
    _exit(0);                   /* the server dies first */
  }
  close(rel[0]);
  REQUIRE(a > 0 && read(p[0], &b, sizeof b) == sizeof b && b > 0,
          "the holder forked a child");
  waitpid(a, NULL, 0);
  fd = open(path, O_RDWR);
  REQUIRE(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0 &&
          errno == EWOULDBLOCK && kill(b, 0) == 0,
          "the dead holder's child still holds the lock");
  REQUIRE(pthread_create(&th, NULL, release_later, &rel[1]) == 0,
          "a thread lets the child go in 100 ms");
  t0 = now();
  rc = ac_lock_take(fd, "restarted server");
  waited = now() - t0;
  pthread_join(th, NULL);
  is_int(rc, 0, "taken once the child lets go");
  ok(waited >= 0.05 && waited < 2.5, "after waiting for it (%.2f s)",
     waited);
  is_int(holder(), getpid(), "the file names us");
  close(fd);
  close(p[0]);
  close(p[1]);
}

int main(void) {
  int fd;

  plan(2);
  fd = mkstemp(path);
  if (fd >= 0)
    close(fd);
  live_holder();
  dead_holder();
  unlink(path);
  return done_testing();
}
