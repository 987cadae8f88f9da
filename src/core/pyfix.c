/*
** pyfix.c -- the SDK's repair of double-escaped newlines in Python code.
**
** The SDK runs ast.parse(code); on a SyntaxError it replaces every
** backslash-n pair by a newline and uses that if it parses. There is no
** Python parser here, so the test is lexical: code is "sound" when every
** string literal and bracket is closed and no backslash stands outside a
** string except as a line continuation. A backslash followed by 'n' outside
** a string is always a Python syntax error, which is the case the SDK's fix
** exists for; code that is sound is never touched.
*/
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 200

static int ident_char(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '_' || c >= 0x80;
}

/* Whether s[i] starts a string literal prefix like r, b, f, rb, Rb, u. */
static size_t prefix_len(const char *s, size_t len, size_t i) {
  size_t n = 0;
  if (i > 0 && ident_char((unsigned char)s[i - 1]))
    return 0;
  while (i + n < len && n < 2 && strchr("rRbBuUfF", s[i + n]) != NULL &&
         s[i + n] != '\0')
    n++;
  if (i + n < len && (s[i + n] == '\'' || s[i + n] == '"'))
    return n;
  return 0;
}

int ac_py_lexically_ok(const char *s, size_t len) {
  char stack[MAX_DEPTH];
  size_t depth = 0, i = 0;
  while (i < len) {
    char c = s[i];
    size_t p;
    if (c == '#') {
      while (i < len && s[i] != '\n')
        i++;
      continue;
    }
    if (c == '\\') {
      if (i + 1 < len && s[i + 1] == '\n') {
        i += 2;
        continue;
      }
      if (i + 2 < len && s[i + 1] == '\r' && s[i + 2] == '\n') {
        i += 3;
        continue;
      }
      return 0;                       /* stray backslash */
    }
    p = prefix_len(s, len, i);
    if (p > 0 || c == '\'' || c == '"') {
      char q;
      int triple;
      i += p;
      q = s[i];
      triple = i + 2 < len && s[i + 1] == q && s[i + 2] == q;
      i += triple ? 3 : 1;
      for (;;) {
        if (i >= len)
          return 0;                   /* unterminated string */
        if (s[i] == '\\') {
          i += 2;
          continue;
        }
        if (!triple && s[i] == '\n')
          return 0;
        if (s[i] == q) {
          if (!triple) {
            i++;
            break;
          }
          if (i + 2 < len && s[i + 1] == q && s[i + 2] == q) {
            i += 3;
            break;
          }
        }
        i++;
      }
      continue;
    }
    if (c == '(' || c == '[' || c == '{') {
      if (depth == MAX_DEPTH)
        return 0;
      stack[depth++] = c == '(' ? ')' : c == '[' ? ']' : '}';
    } else if (c == ')' || c == ']' || c == '}') {
      if (depth == 0 || stack[depth - 1] != c)
        return 0;
      depth--;
    }
    i++;
  }
  return depth == 0;
}

int ac_pyfix_newlines(const char *code, size_t len, char **out,
                      size_t *outlen) {
  char *fixed;
  size_t i, o = 0;
  *out = NULL;
  *outlen = 0;
  if (ac_py_lexically_ok(code, len))
    return 0;
  fixed = malloc(len + 1);
  if (fixed == NULL)
    return -1;
  for (i = 0; i < len; i++) {
    if (code[i] == '\\' && i + 1 < len && code[i + 1] == 'n') {
      fixed[o++] = '\n';
      i++;
    } else {
      fixed[o++] = code[i];
    }
  }
  fixed[o] = '\0';
  if (o == len || !ac_py_lexically_ok(fixed, o)) {
    free(fixed);
    return 0;
  }
  *out = fixed;
  *outlen = o;
  return 1;
}
