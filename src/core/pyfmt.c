/*
** pyfmt.c -- the "<t>s" timeout strings of the SDK, which writes
** f"{timeout}s": an int prints as an int, a float as Python's repr() (the
** shortest text that reads back as the same double; exponent form when the
** decimal point would sit more than 16 digits right or 4 or more zeros
** left; a ".0" added to integral values).
*/
#include "pyjson.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Shortest round-trip digits of finite v > 0: digits[] without the point,
** and the decimal exponent decpt (value = 0.DIGITS * 10^decpt). Returns
** how many digits were written: at least one. */
static size_t shortest_digits(double v, char *digits, size_t size,
                              int *decpt) {
  char tmp[40], *p, *e;
  size_t n = 0;
  int prec;
  for (prec = 1; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
    if (strtod(tmp, NULL) == v)
      break;
  }
  e = strchr(tmp, 'e');
  assert(e != NULL && size > 1);      /* "%e" of a finite v: D[.DDD]e±XX */
  for (p = tmp; p < e && n + 1 < size; p++)
    if (*p >= '0' && *p <= '9')
      digits[n++] = *p;
  while (n > 1 && digits[n - 1] == '0')
    n--;
  digits[n] = '\0';
  *decpt = (int)strtol(e + 1, NULL, 10) + 1;
  assert(n >= 1);
  return n;
}

void ac_py_float_repr(double v, char *out, size_t size) {
  char digits[32], tmp[64];
  int decpt, nd, i;
  size_t o = 0;
#define PUT(ch) do {                                                     \
    if (o + 1 < sizeof tmp)                                              \
      tmp[o++] = (ch);                                                   \
  } while (0)
  if (v == 0) {
    snprintf(out, size, "%s", signbit(v) ? "-0.0" : "0.0");
    return;
  }
  if (v < 0) {
    PUT('-');
    v = -v;
  }
  nd = (int)shortest_digits(v, digits, sizeof digits, &decpt);
  if (decpt <= -4 || decpt > 16) {          /* 1e-05, 1.5e+16 */
    int x = decpt - 1;
    PUT(digits[0]);
    if (nd > 1)
      PUT('.');
    for (i = 1; i < nd; i++)
      PUT(digits[i]);
    PUT('e');
    PUT(x < 0 ? '-' : '+');
    x = x < 0 ? -x : x;
    if (x >= 100)
      PUT((char)('0' + x / 100));
    PUT((char)('0' + x / 10 % 10));
    PUT((char)('0' + x % 10));
  } else if (decpt <= 0) {                  /* 0.0001 */
    PUT('0');
    PUT('.');
    for (i = 0; i < -decpt; i++)
      PUT('0');
    for (i = 0; i < nd; i++)
      PUT(digits[i]);
  } else {                                  /* 2.5, 30.0 */
    for (i = 0; i < nd || i < decpt; i++) {
      if (i == decpt)
        PUT('.');
      PUT(i < nd ? digits[i] : '0');
    }
    if (decpt >= nd) {
      PUT('.');
      PUT('0');
    }
  }
#undef PUT
  tmp[o] = '\0';
  snprintf(out, size, "%s", tmp);
}

enum ac_code ac_format_timeout(double t, int is_float, char *buf,
                               size_t size, struct ac_error *err) {
  char num[64];
  if (!isfinite(t) || t < 0)
    return ac_error_set(err, AC_EINVAL, "invalid timeout %g", t);
  if (t == 0) {                       /* `timeout or 120` */
    t = 120;
    is_float = 0;
  }
  if (!is_float && t == floor(t) && t < 9e18)
    snprintf(num, sizeof num, "%lld", (long long)t);
  else
    ac_py_float_repr(t, num, sizeof num);
  if ((size_t)snprintf(buf, size, "%ss", num) >= size)
    return ac_error_set(err, AC_ETOOBIG, "timeout buffer too small");
  return AC_OK;
}
