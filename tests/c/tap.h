/*
** tap.h -- a tiny Test Anything Protocol emitter for the C unit tests.
**
**   plan(3);                    prints "1..3" before anything runs
**   tcase("name %d", i);        opens a test case (closes the previous one)
**   ok(cond, "name %d", i);     one assertion of the open case
**   is_int(got, want, "name");  equality with a diagnostic on failure
**   is_str(got, want, "name");
**   REQUIRE(cond, "name");      an assertion the rest of the case needs:
**                               on failure the case fails and returns
**   precondition(cond, "name"); the same without returning; neither counts
**                               as a check: a case with no check fails
**   skip_case("why");           the open case did not run, and why
**   skip_check("what", "why");  one check of the case cannot run here
**   return skip_all("why");     the remaining cases cannot run here
**   return done_testing();      closes the last case; exit status 1 when
**                               a case failed or the plan was not kept
**
** A test case is one named behaviour and prints one top-level line,
** "ok N - name" or "not ok N - name"; its assertions print above it as an
** indented subtest (TAP 13). The plan comes first, so a binary that dies
** or returns early is seen to have run fewer cases than it promised.
** An assertion outside any case is a case of its own.
*/
#ifndef AGENTCUBE_TAP_H
#define AGENTCUBE_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_planned = -1, tap_cases, tap_failed;
static int tap_in_case, tap_case_asserts, tap_case_failed, tap_case_skips;
static int tap_case_pre;   /* passed preconditions: not checks */
static char tap_case_name[512], tap_skip_why[1024], tap_last_skip[512];

__attribute__((unused))
static void plan(int n) {
  tap_planned = n;
  printf("1..%d\n", n);
  fflush(stdout);
}

/* Prints the top-level line of the open case. */
static void tap_close_case(void) {
  if (!tap_in_case)
    return;
  tap_in_case = 0;
  tap_cases++;
  /* every check of the case was skipped: the case itself did not run */
  if (tap_case_asserts > 0 && tap_case_skips == tap_case_asserts &&
      !tap_case_failed && tap_skip_why[0] == '\0')
    snprintf(tap_skip_why, sizeof tap_skip_why, "%s", tap_last_skip);
  if (tap_skip_why[0] != '\0') {
    printf("    1..0 # SKIP %s\nok %d - %s # SKIP %s\n", tap_skip_why,
           tap_cases, tap_case_name, tap_skip_why);
    tap_skip_why[0] = '\0';
  } else {
    /* a case whose every assertion was a precondition (or that had
    ** none) checked nothing: that fails */
    if (tap_case_asserts - tap_case_pre - tap_case_skips <= 0) {
      printf("    # no check ran\n");
      tap_case_failed = 1;
    }
    printf("    1..%d\n%sok %d - %s\n", tap_case_asserts,
           tap_case_failed ? "not " : "", tap_cases, tap_case_name);
    if (tap_case_failed)
      tap_failed++;
  }
  fflush(stdout);
}

__attribute__((format(printf, 1, 2), unused))
static void tcase(const char *fmt, ...) {
  va_list ap;
  tap_close_case();
  va_start(ap, fmt);
  vsnprintf(tap_case_name, sizeof tap_case_name, fmt, ap);
  va_end(ap);
  printf("# Subtest: %s\n", tap_case_name);
  tap_in_case = 1;
  tap_case_asserts = 0;
  tap_case_failed = 0;
  tap_case_skips = 0;
  tap_case_pre = 0;
}

/* Marks the open case as not run, with the reason; its assertions so far
** must all have passed (a failure is never turned into a skip). */
__attribute__((unused))
static void skip_case(const char *why) {
  if (tap_in_case && !tap_case_failed)
    snprintf(tap_skip_why, sizeof tap_skip_why, "%s", why);
}

/* The rest of the plan cannot run here: every case not yet run is
** reported as skipped with the reason (none disappears). */
__attribute__((unused))
static int skip_all(const char *why) {
  tap_close_case();
  while (tap_cases < tap_planned)
    printf("ok %d - # SKIP %s\n", ++tap_cases, why);
  fflush(stdout);
  return tap_failed ? 1 : 0;
}

__attribute__((format(printf, 2, 3), unused))
static int ok(int cond, const char *fmt, ...) {
  va_list ap;
  int own = !tap_in_case;
  char name[512];

  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  if (own) {
    tap_cases++;
    if (!cond)
      tap_failed++;
    printf("%sok %d - %s\n", cond ? "" : "not ", tap_cases, name);
  } else {
    tap_case_asserts++;
    if (!cond)
      tap_case_failed = 1;
    printf("    %sok %d - %s\n", cond ? "" : "not ", tap_case_asserts, name);
  }
  fflush(stdout);
  return cond;
}

/* One check of the open case that cannot run here, with the reason; the
** runner names it in its summary. */
__attribute__((unused))
static void skip_check(const char *what, const char *why) {
  if (!tap_in_case) {
    printf("ok %d - %s # SKIP %s\n", ++tap_cases, what, why);
  } else {
    tap_case_asserts++;
    tap_case_skips++;
    snprintf(tap_last_skip, sizeof tap_last_skip, "%s", why);
    printf("    ok %d - %s # SKIP %s\n", tap_case_asserts, what, why);
  }
  fflush(stdout);
}

/* An assertion that something the case needs holds: it fails the case
** like any other, but passing it checks nothing of the behaviour, so a
** case made only of preconditions fails ("no check ran"). */
__attribute__((format(printf, 2, 3), unused))
static int precondition(int cond, const char *fmt, ...) {
  va_list ap;
  char name[512];
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  if (cond && tap_in_case)
    tap_case_pre++;
  return ok(cond, "%s", name);
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

/* A precondition: when it does not hold, the case fails here and the
** function returns (the checks after it are not silently skipped: the
** failed assertion says which precondition broke). */
#define REQUIRE(cond, ...) do {                                          \
    if (!(cond)) {                                                       \
      ok(0, __VA_ARGS__);                                                \
      printf("#   precondition failed (%s:%d): the rest of the case "    \
             "did not run\n", __FILE__, __LINE__);                       \
      return;                                                            \
    }                                                                    \
    precondition(1, __VA_ARGS__);                                        \
  } while (0)

__attribute__((unused))
static int done_testing(void) {
  tap_close_case();
  if (tap_planned < 0) {
    printf("not ok %d - the test binary printed a plan first\n",
           ++tap_cases);
    printf("1..%d\n", tap_cases);
    return 1;
  }
  if (tap_cases != tap_planned) {
    printf("# planned %d test cases, ran %d\n", tap_planned, tap_cases);
    return 1;
  }
  return tap_failed ? 1 : 0;
}

#endif
