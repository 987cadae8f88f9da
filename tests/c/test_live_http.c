/*
** The HTTP side of the live sandbox's routes without a server: the status
** each sandbox error becomes (docs/extensions.md) and the fields of the
** "exit" event of a stream.
*/
#include "live.h"
#include "tap.h"

#include <math.h>

static void test_statuses(void) {
  static const struct {
    enum ac_code code;
    unsigned status;
  } map[] = {
    { AC_EINVAL, 400 },     { AC_ENOTFOUND, 404 }, { AC_EBUSY, 409 },
    { AC_EEXIST, 409 },     { AC_ELIMIT, 429 },    { AC_ECLOSED, 503 },
    { AC_EUNSUPPORTED, 503 }, { AC_ESYSTEM, 500 }, { AC_ENOMEM, 500 },
    { AC_ETOOBIG, 413 },
  };
  tcase("sandbox errors become the contract's statuses");
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    is_int(live_status(map[i].code), map[i].status, "%s: %u",
           ac_codename(map[i].code), map[i].status);
}

static void test_exit_event(void) {
  struct sbx_exec_result res;
  json_t *ev;
  tcase("the exit event carries the result's fields");
  memset(&res, 0, sizeof res);
  res.exit_code = 124;
  res.timed_out = 1;
  res.err_truncated = 1;
  res.start = (struct timespec){ 1700000000, 250000000 };
  res.end = (struct timespec){ 1700000002, 0 };
  ev = live_exit_json(&res);
  if (!ok(ev != NULL, "made"))
    return;
  is_str(json_string_value(json_object_get(ev, "type")), "exit", "type");
  is_int(json_integer_value(json_object_get(ev, "exit_code")), 124,
         "exit_code");
  ok(fabs(json_real_value(json_object_get(ev, "duration")) - 1.75) < 1e-9,
     "duration from start to end, in seconds");
  is_str(json_string_value(json_object_get(ev, "start_time")),
         "2023-11-14T22:13:20.25Z", "start_time in RFC 3339");
  ok(json_is_true(json_object_get(ev, "timed_out")) &&
     json_is_false(json_object_get(ev, "oom_killed")) &&
     json_is_false(json_object_get(ev, "stdout_truncated")) &&
     json_is_true(json_object_get(ev, "stderr_truncated")),
     "the flags");
  json_decref(ev);
}

int main(void) {
  plan(2);
  test_statuses();
  test_exit_event();
  return done_testing();
}
