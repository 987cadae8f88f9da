/*
** fileapi_fmt.c -- the text forms PicoD puts on the wire: Go FileMode
** strings, request mode parsing, RFC 3339 timestamps.
*/
#include "fileapi_int.h"

#include <stdio.h>
#include <string.h>

/* Go prints os.FileMode type and special bits as letters, in this fixed
** order ("dalTLDpSugct?"), then the nine permission bits. Linux stat
** never yields a, l or T. */
char *fapi_mode_string(mode_t mode, char *buf) {
  static const char rwx[] = "rwxrwxrwx";
  size_t w = 0;
  int dev = 0, chr = 0;

  switch (mode & S_IFMT) {
  case S_IFDIR: buf[w++] = 'd'; break;
  case S_IFLNK: buf[w++] = 'L'; break;
  case S_IFBLK: dev = 1; break;
  case S_IFCHR: dev = chr = 1; break;
  case S_IFIFO: buf[w++] = 'p'; break;
  case S_IFSOCK: buf[w++] = 'S'; break;
  case S_IFREG: break;
  default: break;             /* '?' is appended below */
  }
  if (dev)
    buf[w++] = 'D';
  if (mode & S_ISUID)
    buf[w++] = 'u';
  if (mode & S_ISGID)
    buf[w++] = 'g';
  if (chr)
    buf[w++] = 'c';
  if (mode & S_ISVTX)
    buf[w++] = 't';
  switch (mode & S_IFMT) {
  case S_IFDIR: case S_IFLNK: case S_IFBLK: case S_IFCHR: case S_IFIFO:
  case S_IFSOCK: case S_IFREG:
    break;
  default:
    buf[w++] = '?';
    break;
  }
  if (w == 0)
    buf[w++] = '-';
  for (int i = 0; i < 9; i++)
    buf[w++] = (mode & (1u << (8 - i))) ? rwx[i] : '-';
  buf[w] = '\0';
  return buf;
}

/* Like Go's strconv.ParseUint(s, 8, 32) followed by PicoD's "<= 0777"
** check: octal digits only, no sign, no prefix, no spaces. */
mode_t fapi_parse_mode(const char *s) {
  unsigned long v = 0;

  if (s == NULL || *s == '\0')
    return 0644;
  for (; *s; s++) {
    if (*s < '0' || *s > '7')
      return 0644;
    v = v * 8 + (unsigned long)(*s - '0');
    if (v > 0777)               /* also stops any overflow */
      return 0644;
  }
  return (mode_t)v;
}

char *fapi_rfc3339(struct timespec ts, char *buf) {
  struct tm tm;
  char frac[12];
  long ns = ts.tv_nsec;
  time_t sec = ts.tv_sec;
  size_t fl = 0;

  /* A valid timespec has 0 <= tv_nsec < 1e9; normalise anything else. */
  if (ns < 0 || ns >= 1000000000L) {
    sec += ns / 1000000000L;
    ns %= 1000000000L;
    if (ns < 0) {
      ns += 1000000000L;
      sec--;
    }
  }
  if (gmtime_r(&sec, &tm) == NULL) {
    /* Only for years beyond int: print the epoch rather than garbage. */
    memset(&tm, 0, sizeof tm);
    tm.tm_year = 70;
    tm.tm_mday = 1;
    ns = 0;
  }
  if (ns != 0) {
    int d = 9;
    frac[0] = '.';
    while (ns % 10 == 0) {
      ns /= 10;
      d--;
    }
    /* d digits, zero-padded on the left: ".000000001" */
    snprintf(frac + 1, sizeof frac - 1, "%0*ld", d, ns);
    fl = (size_t)d + 1;
  }
  frac[fl] = '\0';
  snprintf(buf, 40, "%04d-%02d-%02dT%02d:%02d:%02d%sZ",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
           tm.tm_min, tm.tm_sec, frac);
  return buf;
}
