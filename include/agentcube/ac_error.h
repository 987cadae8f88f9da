/*
** ac_error.h -- the one error type of libagentcube.
**
** Every function that can fail returns an enum ac_code and, when the caller
** passes a non-NULL struct ac_error *, fills it with the code, an HTTP status
** when one is known, and a human-readable message. Filling an error never
** allocates, so it works on out-of-memory paths.
*/
#ifndef AGENTCUBE_AC_ERROR_H
#define AGENTCUBE_AC_ERROR_H

#include <stdarg.h>

#define AC_ERROR_SIZE 256

enum ac_code {
  AC_OK = 0,
#define AC_ERR(name, text) AC_##name,
#include "errors.def"
#undef AC_ERR
  AC_CODE_LAST /* never use! */
};

struct ac_error {
  enum ac_code code;
  long http_status;          /* 0 when no HTTP exchange was involved */
  char msg[AC_ERROR_SIZE];   /* NUL-terminated, never empty on failure */
};

/* Static text for a code; never NULL. */
const char *ac_strerror(enum ac_code code);

/* "EINVAL" for AC_EINVAL, "OK" for AC_OK; never NULL. */
const char *ac_codename(enum ac_code code);

/* Fills *err (when err is not NULL) and returns code, so that callers can
** write `return ac_error_set(err, AC_EINVAL, "bad %s", what);`. */
enum ac_code ac_error_set(struct ac_error *err, enum ac_code code,
                          const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

enum ac_code ac_error_vset(struct ac_error *err, enum ac_code code,
                           const char *fmt, va_list ap);

/* Like ac_error_set, and appends ": strerror(errnum)". */
enum ac_code ac_error_errno(struct ac_error *err, enum ac_code code,
                            int errnum, const char *fmt, ...)
  __attribute__((format(printf, 4, 5)));

/* Resets *err to the success state. */
void ac_error_clear(struct ac_error *err);

#endif
