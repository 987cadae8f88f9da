/* The error carrier: names, texts, formatting and truncation. */
#include "ac_error.h"
#include "tap.h"

#include <errno.h>

int main(void) {
  plan(7);
  struct ac_error e;
  char longarg[600];

  is_str(ac_codename(AC_OK), "OK", "AC_OK has a name");
  is_str(ac_codename(AC_ETIMEOUT), "ETIMEOUT", "codename of ETIMEOUT");
  is_str(ac_strerror(AC_ENOTFOUND), "not found", "strerror of ENOTFOUND");
  is_str(ac_codename(AC_CODE_LAST), "EUNKNOWN", "out-of-range code");
  tcase("every code has its own name, distinct from the others");
  for (int c = AC_OK + 1; c < AC_CODE_LAST; c++) {
    const char *name = ac_codename((enum ac_code)c);
    int unique = 1;
    for (int d = AC_OK; d < c; d++)
      unique &= strcmp(name, ac_codename((enum ac_code)d)) != 0;
    ok(name[0] == 'E' && strcmp(name, "EUNKNOWN") != 0 && unique,
       "code %d is named %s", c, name);
  }
  tcase("the carrier: set, errno, truncation, clear, NULL");

  is_int(ac_error_set(&e, AC_EINVAL, "bad %s", "thing"), AC_EINVAL,
         "set returns its code");
  is_str(e.msg, "bad thing", "message is formatted");
  is_int(e.http_status, 0, "status reset");
  ac_error_errno(&e, AC_ESYSTEM, ENOENT, "open %s", "x");
  is_str(e.msg, "open x: No such file or directory", "errno appended");
  memset(longarg, 'a', sizeof longarg - 1);
  longarg[sizeof longarg - 1] = '\0';
  ac_error_set(&e, AC_EIO, "%s", longarg);
  is_int(strlen(e.msg), AC_ERROR_SIZE - 1, "long messages are truncated");
  ac_error_clear(&e);
  is_int(e.code, AC_OK, "clear resets the code");
  is_int(ac_error_set(NULL, AC_EIO, "x"), AC_EIO, "NULL carrier allowed");
  tcase("a message is never empty; unknown codes have a text; NULL "
        "carriers everywhere");
  ac_error_set(&e, AC_ETIMEOUT, "%s", "");
  is_str(e.msg, "operation timed out", "an empty message becomes the code's text");
  ok(e.msg[0] != '\0' && strcmp(e.msg, ac_strerror(AC_ETIMEOUT)) == 0,
     "(that of ETIMEOUT)");
  is_str(ac_strerror(AC_OK), "success", "AC_OK's text");
  is_str(ac_strerror(AC_CODE_LAST), "unknown error", "past the last code");
  is_str(ac_strerror((enum ac_code)-1), "unknown error", "a negative code");
  ac_error_clear(NULL);
  is_int(ac_error_errno(NULL, AC_ESYSTEM, EIO, "x"), AC_ESYSTEM,
         "errno into a NULL carrier: the code");
  return done_testing();
}
