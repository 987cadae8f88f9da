/*
** duration.c -- a parser for Go duration strings.
**
** Follows the grammar of Go's time.ParseDuration: an optional sign, then one
** or more "<decimal number><unit>" pairs, units ns us µs μs ms s m h. A bare
** "0" is allowed; any other number needs a unit. Overflow is an error.
*/
#include "duration.h"

#include <stdint.h>
#include <string.h>

struct unit { const char *name; long long ns; };

static const struct unit units[] = {
  { "ns", 1LL }, { "us", 1000LL }, { "\xc2\xb5s", 1000LL },
  { "\xce\xbcs", 1000LL }, { "ms", 1000000LL }, { "s", 1000000000LL },
  { "m", 60000000000LL }, { "h", 3600000000000LL },
};

static enum ac_code invalid(struct ac_error *err, const char *why,
                            const char *s) {
  return ac_error_set(err, AC_EINVAL, "time: %s duration \"%s\"", why, s);
}

enum ac_code ac_duration_parse(const char *s, long long *ns,
                               struct ac_error *err) {
  const char *p = s;
  int neg = 0;
  long double total = 0;

  if (*p == '-' || *p == '+')
    neg = *p++ == '-';
  if (strcmp(p, "0") == 0) {
    *ns = 0;
    return AC_OK;
  }
  if (*p == '\0')
    return invalid(err, "invalid", s);
  while (*p) {
    long double whole = 0, frac = 0, scale = 1;
    int digits = 0;
    size_t best = 0, ulen;
    const struct unit *u = NULL;

    if (!(*p == '.' || (*p >= '0' && *p <= '9')))
      return invalid(err, "invalid", s);
    for (; *p >= '0' && *p <= '9'; p++, digits++)
      whole = whole * 10 + (*p - '0');
    if (*p == '.') {
      p++;
      for (; *p >= '0' && *p <= '9'; p++, digits++) {
        scale /= 10;
        frac += (*p - '0') * scale;
      }
    }
    if (digits == 0)
      return invalid(err, "invalid", s);
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
      ulen = strlen(units[i].name);
      if (strncmp(p, units[i].name, ulen) == 0 && ulen > best) {
        /* "m" must not swallow the "m" of "ms" */
        best = ulen;
        u = &units[i];
      }
    }
    if (u == NULL) {
      if (*p == '\0')
        return invalid(err, "missing unit in", s);
      return ac_error_set(err, AC_EINVAL,
                          "time: unknown unit \"%.*s\" in duration \"%s\"",
                          (int)strcspn(p, "0123456789."), p, s);
    }
    p += best;
    total += (whole + frac) * (long double)u->ns;
    if (total > (long double)INT64_MAX)
      return invalid(err, "invalid", s);
  }
  *ns = (long long)(neg ? -total : total);
  return AC_OK;
}
