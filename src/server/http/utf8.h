/*
** utf8.h -- making command output safe to put in a JSON string.
*/
#ifndef AGENTCUBE_UTF8_H
#define AGENTCUBE_UTF8_H

#include <stddef.h>

/* Returns s itself when s[0..len) is valid UTF-8; otherwise a malloc'd copy
** in which every invalid byte is replaced by U+FFFD (as Go's encoding/json
** does), with its length in *outlen. NULL when out of memory. */
char *utf8_sanitize(const char *s, size_t len, size_t *outlen);

/* 1 when s[0..len) is valid UTF-8. */
int utf8_valid(const char *s, size_t len);

/* A file name that is not valid UTF-8, made printable and reversible:
** every invalid byte becomes "\xHH" and every backslash "\\". Returns a
** malloc'd string or NULL when out of memory. */
char *utf8_escape_name(const char *s, size_t len);

#endif
