/*
** shown.c -- see shown.h. Byte-wise: UTF-8 text passes unchanged except
** the C1 range (U+0080..U+009F, encoded 0xC2 0x80..0x9F), which terminals
** also obey as controls.
*/
#include "shown.h"

void ac_shown_fputs(const char *s, FILE *f) {
  const unsigned char *p = (const unsigned char *)s;
  for (; *p != '\0'; p++) {
    if (*p == '\n' || *p == '\t' || (*p >= 0x20 && *p != 0x7f && *p != 0xc2))
      fputc(*p, f);
    else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
      fprintf(f, "\\u%04x", (unsigned)*++p);
    else if (*p == 0xc2)
      fputc(*p, f);
    else
      fprintf(f, "\\x%02x", (unsigned)*p);
  }
}
