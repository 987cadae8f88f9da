/*
** tap.h -- a tiny Test Anything Protocol emitter for the C unit tests.
**
**   ok(cond, "name %d", i);     one test line
**   is_int(got, want, "name");  equality with a diagnostic on failure
**   is_str(got, want, "name");
**   return done_testing();      prints the plan; exit status 1 on failure
*/
#ifndef AGENTCUBE_TAP_H
#define AGENTCUBE_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_run, tap_failed;

__attribute__((format(printf, 2, 3), unused))
static int ok(int cond, const char *fmt, ...) {
  va_list ap;
  tap_run++;
  if (!cond)
    tap_failed++;
  printf("%sok %d - ", cond ? "" : "not ", tap_run);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  fflush(stdout);
  return cond;
}

#define is_int(got, want, ...) do {                                      \
    long long got_ = (long long)(got), want_ = (long long)(want);        \
    if (!ok(got_ == want_, __VA_ARGS__))                                 \
      printf("#   got %lld, want %lld (%s:%d)\n", got_, want_,           \
             __FILE__, __LINE__);                                        \
  } while (0)

#define is_str(got, want, ...) do {                                      \
    const char *got_ = (got), *want_ = (want);                           \
    int same_ = got_ && want_ ? strcmp(got_, want_) == 0 : got_ == want_;\
    if (!ok(same_, __VA_ARGS__))                                         \
      printf("#   got \"%s\", want \"%s\" (%s:%d)\n",                    \
             got_ ? got_ : "(null)", want_ ? want_ : "(null)",           \
             __FILE__, __LINE__);                                        \
  } while (0)

__attribute__((unused))
static int done_testing(void) {
  printf("1..%d\n", tap_run);
  return tap_failed ? 1 : 0;
}

#endif
