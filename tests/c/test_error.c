/* The error carrier: names, texts, formatting and truncation. */
#include "ac_error.h"
#include "tap.h"

#include <errno.h>

int main(void) {
  struct ac_error e;
  char longarg[600];

  is_str(ac_codename(AC_OK), "OK", "AC_OK has a name");
  is_str(ac_codename(AC_ETIMEOUT), "ETIMEOUT", "codename of ETIMEOUT");
  is_str(ac_strerror(AC_ENOTFOUND), "not found", "strerror of ENOTFOUND");
  is_str(ac_codename(AC_CODE_LAST), "EUNKNOWN", "out-of-range code");
  for (int c = AC_OK + 1; c < AC_CODE_LAST; c++)
    ok(ac_codename((enum ac_code)c)[0] == 'E', "code %d has a name", c);

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
  return done_testing();
}
