/*
** utf8.c -- UTF-8 validation with replacement of invalid bytes.
*/
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

/* Length of the valid sequence at s (1-4), or 0 when it is invalid. */
static size_t valid_seq(const unsigned char *s, size_t left) {
  unsigned char c = s[0];
  size_t n;
  unsigned lo = 0x80, hi = 0xBF;

  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    n = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;          /* no overlong forms */
    if (c == 0xED) hi = 0x9F;          /* no surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;          /* nothing above U+10FFFF */
  } else
    return 0;
  if (left < n || s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < n; i++)
    if (s[i] < 0x80 || s[i] > 0xBF)
      return 0;
  return n;
}

char *utf8_sanitize(const char *s, size_t len, size_t *outlen) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0, bad = 0, o = 0;
  char *out;

  while (i < len) {
    size_t n = valid_seq(u + i, len - i);
    if (n == 0) {
      bad++;
      n = 1;
    }
    i += n;
  }
  *outlen = len;
  if (bad == 0)
    return (char *)s;
  if ((out = malloc(len + bad * 2 + 1)) == NULL)
    return NULL;
  for (i = 0; i < len;) {
    size_t n = valid_seq(u + i, len - i);
    if (n == 0) {
      memcpy(out + o, "\xEF\xBF\xBD", 3);
      o += 3;
      i++;
    } else {
      memcpy(out + o, s + i, n);
      o += n;
      i += n;
    }
  }
  out[o] = '\0';
  *outlen = o;
  return out;
}

int utf8_valid(const char *s, size_t len) {
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < len;) {
    size_t n = valid_seq(u + i, len - i);
    if (n == 0)
      return 0;
    i += n;
  }
  return 1;
}

char *utf8_escape_name(const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *u = (const unsigned char *)s;
  char *out = malloc(len * 4 + 1), *o = out;
  if (out == NULL)
    return NULL;
  for (size_t i = 0; i < len;) {
    size_t n = valid_seq(u + i, len - i);
    if (n == 0) {
      *o++ = '\\';
      *o++ = 'x';
      *o++ = hex[u[i] >> 4];
      *o++ = hex[u[i] & 15];
      i++;
    } else if (u[i] == '\\') {
      *o++ = '\\';
      *o++ = '\\';
      i++;
    } else {
      memcpy(o, s + i, n);
      o += n;
      i += n;
    }
  }
  *o = '\0';
  return out;
}
