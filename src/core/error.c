/*
** error.c -- the ac_error carrier: code names, texts, and formatting.
*/
#include "agentcube/ac_error.h"

#include <stdio.h>
#include <string.h>

/* A switch with no default: -Wswitch then reports any code left out. */
const char *ac_strerror(enum ac_code code) {
  switch (code) {
  case AC_OK: return "success";
#define AC_ERR(name, text) case AC_##name: return text;
#include "agentcube/errors.def"
#undef AC_ERR
  case AC_CODE_LAST: break;
  }
  return "unknown error";
}

const char *ac_codename(enum ac_code code) {
  switch (code) {
  case AC_OK: return "OK";
#define AC_ERR(name, text) case AC_##name: return #name;
#include "agentcube/errors.def"
#undef AC_ERR
  case AC_CODE_LAST: break;
  }
  return "EUNKNOWN";
}

void ac_error_clear(struct ac_error *err) {
  if (err == NULL)
    return;
  err->code = AC_OK;
  err->http_status = 0;
  err->msg[0] = '\0';
}

enum ac_code ac_error_vset(struct ac_error *err, enum ac_code code,
                           const char *fmt, va_list ap) {
  if (err == NULL)
    return code;
  err->code = code;
  err->http_status = 0;
  if (fmt == NULL || vsnprintf(err->msg, sizeof err->msg, fmt, ap) <= 0)
    snprintf(err->msg, sizeof err->msg, "%s", ac_strerror(code));
  return code;
}

enum ac_code ac_error_set(struct ac_error *err, enum ac_code code,
                          const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ac_error_vset(err, code, fmt, ap);
  va_end(ap);
  return code;
}

enum ac_code ac_error_errno(struct ac_error *err, enum ac_code code,
                            int errnum, const char *fmt, ...) {
  va_list ap;
  size_t len;
  if (err == NULL)
    return code;
  va_start(ap, fmt);
  ac_error_vset(err, code, fmt, ap);
  va_end(ap);
  len = strlen(err->msg);
  if (len < sizeof err->msg)
    snprintf(err->msg + len, sizeof err->msg - len, ": %s",
             strerror(errnum));
  return code;
}
