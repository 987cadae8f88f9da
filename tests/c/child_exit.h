/*
** child_exit.h -- how a forked child of a C test ends.
**
**   child_exit(code);   _exit(code), after writing the child's line
**                       counts when the test is built with --coverage
**
** A child must not run the parent's atexit handlers or flush its stdio
** (the TAP lines would print twice), so it ends with _exit; but gcov
** writes its counts at exit, and what the child ran (an unprivileged
** runtime, a server's removal as the session's uid) would be lost. The
** coverage build (make COV=1) defines AGENTCUBE_COVERAGE.
**
** A child that plays an unprivileged server drops to another uid but
** keeps 0 as its saved uid (setresuid(uid, uid, 0): no effective
** capability, geteuid() != 0, and every program it starts is wholly
** unprivileged), so that it can take root back here to write the counts
** next to the root-owned build.
*/
#ifndef AGENTCUBE_CHILD_EXIT_H
#define AGENTCUBE_CHILD_EXIT_H

#include <unistd.h>

#ifdef AGENTCUBE_COVERAGE
extern void __gcov_dump(void);
#endif

__attribute__((noreturn, unused))
static void child_exit(int code) {
#ifdef AGENTCUBE_COVERAGE
  if (geteuid() != 0 && setresuid((uid_t)-1, 0, (uid_t)-1) != 0)
    _exit(code);
  __gcov_dump();
#endif
  _exit(code);
}

#endif
